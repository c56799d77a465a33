from django.urls import path, register_converter

from workspaces import views


class ResourceKindConverter:
    """`warehouses|models|destinations|syncs` in the URL ↔ the service's kind (`warehouse`, …)."""

    regex = "|".join(views.PLURALS)

    def to_python(self, value: str) -> str:
        return views.PLURALS[value]

    def to_url(self, value: str) -> str:
        return views.KINDS[value].plural if value in views.KINDS else value


register_converter(ResourceKindConverter, "kind")

app_name = "workspaces"

W = "w/<slug:ws_slug>/"

urlpatterns = [
    path("", views.home, name="home"),
    path(W, views.overview, name="overview"),
    path(W + "members/", views.members, name="members"),
    path(W + "members/add/", views.member_add, name="member_add"),
    path(W + "members/<str:user_id>/role/", views.member_role, name="member_role"),
    path(W + "members/<str:user_id>/remove/", views.member_remove, name="member_remove"),
    path(W + "delete/", views.workspace_delete, name="delete"),
    path(W + "syncs/<str:public_id>/runs/", views.sync_runs, name="sync_runs"),
    path(W + "<kind:kind>/", views.resource_list, name="resource_list"),
    path(W + "<kind:kind>/new/", views.resource_form, name="resource_create"),
    path(W + "<kind:kind>/<str:public_id>/", views.resource_form, name="resource_edit"),
    path(W + "<kind:kind>/<str:public_id>/delete/", views.resource_delete, name="resource_delete"),
]
