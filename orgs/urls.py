from django.urls import path

from orgs import views

app_name = "orgs"

urlpatterns = [
    path("orgs/new/", views.org_create, name="create"),
    path("o/<slug:org_slug>/", views.overview, name="overview"),
]
