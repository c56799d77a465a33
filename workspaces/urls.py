from django.urls import path

from workspaces import views

app_name = "workspaces"

urlpatterns = [
    path("", views.home, name="home"),
    path("w/<slug:ws_slug>/", views.overview, name="overview"),
]
