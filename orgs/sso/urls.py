from django.urls import path

from orgs.sso import views

app_name = "sso"

urlpatterns = [
    path("sso/", views.sso_signin, name="signin"),
    path("sso/<slug:org_slug>/login/", views.sso_login, name="login"),
    path("sso/<slug:org_slug>/saml/metadata/", views.saml_metadata, name="saml_metadata"),
    path("sso/<slug:org_slug>/saml/acs/", views.saml_acs, name="saml_acs"),
    path("sso/<slug:org_slug>/saml/complete/", views.saml_complete, name="saml_complete"),
    path("sso/<slug:org_slug>/oidc/callback/", views.oidc_callback, name="oidc_callback"),
    path("o/<slug:org_slug>/sso/", views.sso_settings, name="settings"),
    path(
        "o/<slug:org_slug>/sso/refresh-metadata/",
        views.saml_metadata_refresh,
        name="saml_refresh",
    ),
]
