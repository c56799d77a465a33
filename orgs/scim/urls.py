"""/scim/v2/<org-slug>/… (RFC 7644 §3.2); included from config/urls.py."""

from django.urls import path, re_path

from orgs.scim import views

urlpatterns = [
    path("ServiceProviderConfig", views.service_provider_config),
    path("ResourceTypes", views.resource_types),
    path("ResourceTypes/<str:name>", views.resource_types),
    path("Schemas", views.schemas),
    path("Schemas/<str:schema_id>", views.schemas),
    path(".search", views.search),
    path("Users/.search", views.search, {"resource": "Users"}),
    path("Groups/.search", views.search, {"resource": "Groups"}),
    path("Users", views.users),
    path("Users/<str:user_id>", views.user_detail),
    path("Groups", views.groups),
    path("Groups/<str:group_id>", views.group_detail),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
