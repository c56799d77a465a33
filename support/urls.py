from django.urls import path

from support import views

app_name = "support"
urlpatterns = [
    path("support/ownership/<str:token>/", views.ownership_confirm, name="ownership_confirm"),
    path("support/view-as/end/", views.view_as_end, name="view_as_end"),
]
