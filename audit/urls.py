from django.urls import path

from audit import streaming_views, views

app_name = "audit"

urlpatterns = [
    path("", views.log, name="log"),
    path("export/", views.export, name="export"),
    path("events/<str:event_id>/", views.event, name="event"),
    path("access/", views.access_report, name="access_report"),
    path("streaming/", streaming_views.destinations, name="streaming"),
]
