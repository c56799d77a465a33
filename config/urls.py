from django.contrib import admin
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpResponsePermanentRedirect
from django.urls import include, path

from config.api import api


def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says; send them to the static icon."""
    return HttpResponsePermanentRedirect(staticfiles_storage.url("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("scim/v2/<slug:org_slug>/", include("orgs.scim.urls")),
    path("", include("members.urls")),
    path("account/", include("members.account_urls")),
    path("", include("workspaces.urls")),
    path("", include("orgs.urls")),
    path("", include("orgs.sso.urls")),
    path("", include("support.urls")),
    path("o/<slug:org_slug>/members/", include("members.org_urls")),
    path("o/<slug:org_slug>/audit/", include("audit.urls")),
    path("o/<slug:org_slug>/billing/", include("billing.urls")),
    path("o/<slug:org_slug>/reviews/", include("reviews.urls")),
]

# A database that went away is a 503 page, not a 500 (config/dbdown.py).
handler500 = "config.dbdown.server_error"
