from django.urls import path

from orgs import governance_views, usage_views, views
from orgs.scim import pages as scim_pages

app_name = "orgs"

urlpatterns = [
    path("orgs/new/", views.org_create, name="create"),
    path("orgs/new/slug/", views.slug_check, name="slug_check"),
    path("o/<slug:org_slug>/", views.overview, name="overview"),
    path("o/<slug:org_slug>/workspaces/", views.workspaces, name="workspaces"),
    path("o/<slug:org_slug>/workspaces/link/", views.workspace_link, name="link"),
    path("o/<slug:org_slug>/workspaces/new/", views.workspace_create, name="workspace_create"),
    path("o/<slug:org_slug>/workspaces/<str:ws_id>/unlink/", views.workspace_unlink, name="unlink"),
    path(
        "o/<slug:org_slug>/workspaces/<str:ws_id>/delete/",
        views.workspace_delete,
        name="workspace_delete",
    ),
    path("o/<slug:org_slug>/usage/", usage_views.usage, name="usage"),
    path("o/<slug:org_slug>/settings/", views.settings, name="settings"),
    path("o/<slug:org_slug>/settings/transfer/", views.ownership_transfer, name="transfer"),
    path("o/<slug:org_slug>/settings/delete/", views.org_delete, name="delete"),
    path("o/<slug:org_slug>/governance/", governance_views.governance, name="governance"),
    path("o/<slug:org_slug>/scim/", scim_pages.scim_settings, name="scim"),
]
