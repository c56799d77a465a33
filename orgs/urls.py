from django.urls import path

from orgs import usage_views, views

app_name = "orgs"

urlpatterns = [
    path("orgs/new/", views.org_create, name="create"),
    path("o/<slug:org_slug>/", views.overview, name="overview"),
    path("o/<slug:org_slug>/usage/", usage_views.usage, name="usage"),
]
