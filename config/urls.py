from django.contrib import admin
from django.urls import include, path

from config.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("scim/v2/<slug:org_slug>/", include("orgs.scim.urls")),
    path("", include("members.urls")),
    path("account/", include("members.account_urls")),
    path("", include("workspaces.urls")),
    path("", include("orgs.urls")),
    path("", include("support.urls")),
    path("o/<slug:org_slug>/members/", include("members.org_urls")),
    path("o/<slug:org_slug>/audit/", include("audit.urls")),
    path("o/<slug:org_slug>/billing/", include("billing.urls")),
]

# A database that went away is a 503 page, not a 500 (config/dbdown.py).
handler500 = "config.dbdown.server_error"
