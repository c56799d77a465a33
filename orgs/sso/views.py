"""Pages of enterprise identity: the owners' settings page, "Sign in with SSO", the SAML
endpoints (SP metadata, SP-initiated login, ACS and the step that signs the browser in) and the
OpenID Connect callback.

The ACS is a cross-site POST from the IdP, which carries no SameSite=Lax session cookie: it
verifies the response and uses up the assertion, then hands over to a same-site GET
(`saml_complete`) that sees the browser's session, checks the response answers a request
*this browser* started (no login CSRF), provisions and signs in. The OIDC callback is a
top-level GET, which carries the session cookie: it checks state, nonce and PKCE against the
session itself.
"""

from __future__ import annotations

import secrets
import time

from csp.decorators import csp_update
from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.apikit import check_rate
from config.errors import DomainError, NotFound, RateLimited
from config.middleware import client_ip
from members import two_factor
from members.models import normalize_email
from orgs.decorators import org_view
from orgs.models import Organization
from orgs.permissions import OrgCapability
from orgs.sso import domains, oidc, oidc_setup, saml
from orgs.sso.enforcement import requires_sso, sso_protocol
from orgs.sso.models import OidcConnection, SamlConnection
from orgs.views import apply_domain_error

SESSION_REQUESTS = "saml_requests"  # {request id: {"org": slug, "next": url, "at": ts}}
SESSION_OIDC = "oidc_requests"  # {state: {"org", "nonce", "verifier", "next", "at"}}
REQUEST_TTL = 15 * 60
HANDOFF_TTL = 120


def _org(slug: str) -> Organization:
    org = Organization.objects.alive().filter(slug=slug).first()
    if org is None:
        raise NotFound("No such organization.")
    return org


# Refusals are audited, but the ACS is open to anyone: one client may add at most this many
# refusal events to an org's log per hour (the page still says why after that).
REFUSALS_AUDITED_PER_CLIENT_HOUR = 30


def _refused(
    request, org: Organization | None, error: DomainError, *, email: str = "", source="saml"
):
    if org is not None:
        try:
            check_rate(
                bucket="sso-refusal",
                key=f"{org.pk}:{client_ip(request) or '-'}",
                limit=REFUSALS_AUDITED_PER_CLIENT_HOUR,
                window=3600,
            )
        except RateLimited:
            pass
        else:
            saml.record_refusal(org, source=source, error=error, email=email)
    return render(
        request,
        "sso/refused.html",
        {"error": error, "org": org, "reason": getattr(error, "reason", error.code)},
        status=403,
    )


def _safe_next(request, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(value, {request.get_host()}, request.is_secure()):
        return value
    return reverse("workspaces:home")


# --- SAML endpoints --------------------------------------------------------------------------


@require_GET
def saml_metadata(request, org_slug):
    """Our SP metadata for the org's IdP admin (entity id, ACS URL, our certificate)."""
    org = _org(org_slug)
    return HttpResponse(saml.sp_metadata(org), content_type="application/samlmetadata+xml")


@require_GET
def sso_login(request, org_slug):
    """Sign-in started here: to the org's SAML IdP or OpenID provider, whichever it uses."""
    org = _org(org_slug)
    conn = oidc.active_oidc(org)
    if conn is not None:
        return _oidc_login(request, org, conn)
    return saml_login(request, org)


def saml_login(request, org: Organization):
    """SP-initiated sign-in: send the browser to the org's IdP with an AuthnRequest."""
    conn = saml.active_connection(org)
    if conn is None:
        raise NotFound(f"{org.name} has not set up single sign-on.", code="sso_not_configured")
    next_url = _safe_next(request, request.GET.get("next"))
    request_id, location = saml.login_redirect(org, conn)
    remember_issued(org, request_id)
    now = time.time()
    pending = {
        k: v
        for k, v in (request.session.get(SESSION_REQUESTS) or {}).items()
        if now - v.get("at", 0) < REQUEST_TTL
    }
    pending[request_id] = {"org": org.slug, "next": next_url, "at": now}
    request.session[SESSION_REQUESTS] = dict(list(pending.items())[-5:])
    return redirect(location)


@csrf_exempt  # the IdP posts here from its own site; the response's signature is the proof
@require_POST
def saml_acs(request, org_slug):
    org = _org(org_slug)
    conn = saml.active_connection(org)
    if conn is None:
        return _refused(
            request,
            org,
            saml.SamlRefused("not_configured", f"{org.name} has not set up single sign-on."),
        )
    # Outstanding requests are checked in saml_complete (this POST has no session cookie);
    # here any recent request id we issued for this org is "outstanding" for pysaml2.
    issued = cache.get(_issued_key(org)) or {}
    try:
        identity = saml.saml_verify(org, conn, request.POST.get("SAMLResponse", ""), issued)
        saml.saml_consume(org=org, identity=identity)
    except saml.SamlRefused as exc:
        return _refused(request, org, exc)
    key = secrets.token_urlsafe(24)
    cache.set(
        f"saml-handoff:{key}",
        {
            "org": org.pk,
            "email": identity.email,
            "full_name": identity.full_name,
            "assertion": identity.assertion_id,
            "in_response_to": identity.in_response_to,
            "relay_state": request.POST.get("RelayState", ""),
        },
        HANDOFF_TTL,
    )
    return redirect(reverse("sso:saml_complete", args=[org.slug]) + f"?k={key}", permanent=False)


def _issued_key(org: Organization) -> str:
    return f"saml-issued:{org.pk}"


def remember_issued(org: Organization, request_id: str) -> None:
    issued = cache.get(_issued_key(org)) or {}
    now = time.time()
    issued = {k: v for k, v in issued.items() if now - float(v or 0) < REQUEST_TTL}
    issued[request_id] = str(now)
    cache.set(_issued_key(org), dict(list(issued.items())[-500:]), REQUEST_TTL)


@require_GET
def saml_complete(request, org_slug):
    org = _org(org_slug)
    handoff = cache.get(f"saml-handoff:{request.GET.get('k', '')}")
    cache.delete(f"saml-handoff:{request.GET.get('k', '')}")
    if not handoff or handoff["org"] != org.pk:
        return _refused(
            request, None, saml.SamlRefused("expired", "This sign-in expired; start again.")
        )
    pending = request.session.get(SESSION_REQUESTS) or {}
    started = pending.pop(handoff["in_response_to"] or "", None)
    request.session[SESSION_REQUESTS] = pending
    conn = saml.active_connection(org)
    if started is None or started.get("org") != org.slug:
        if not (conn and conn.allow_idp_initiated and not handoff["in_response_to"]):
            return _refused(
                request,
                org,
                saml.SamlRefused(
                    "unsolicited",
                    "This sign-in was not started in this browser. Start from the sign-in page.",
                ),
                email=handoff["email"],
            )
        next_url = _safe_next(request, handoff["relay_state"])
    else:
        next_url = started["next"]
    try:
        result = saml.sso_signin(
            org=org,
            email=handoff["email"],
            full_name=handoff["full_name"],
            source="saml",
            ref=handoff["assertion"],
        )
    except DomainError as exc:
        return _refused(request, org, exc, email=handoff["email"])
    if result.joined:
        messages.success(request, f"Welcome to {org.name}.")
    return two_factor.signin_complete(
        request, result.user, next_url, backend="members.backends.EmailBackend", sso_org=org.pk
    )


# --- OpenID Connect --------------------------------------------------------------------------


def _oidc_login(request, org: Organization, conn: OidcConnection):
    """Authorization code flow: state, nonce and the PKCE verifier stay in this session."""
    started = oidc.login_redirect(org, conn)
    now = time.time()
    pending = {
        k: v
        for k, v in (request.session.get(SESSION_OIDC) or {}).items()
        if now - v.get("at", 0) < REQUEST_TTL
    }
    pending[started.state] = {
        "org": org.slug,
        "nonce": started.nonce,
        "verifier": started.verifier,
        "next": _safe_next(request, request.GET.get("next")),
        "at": now,
    }
    request.session[SESSION_OIDC] = dict(list(pending.items())[-5:])
    return redirect(started.url)


@require_GET
def oidc_callback(request, org_slug):
    """The provider sends the browser back here with a code (or an error) and our state."""
    org = _org(org_slug)

    def refuse(error: DomainError, email: str = ""):
        return _refused(request, org, error, email=email, source="oidc")

    conn = oidc.active_oidc(org)
    if conn is None:
        return refuse(
            oidc.OidcRefused("not_configured", f"{org.name} has not set up single sign-on.")
        )
    pending = request.session.get(SESSION_OIDC) or {}
    started = pending.pop(request.GET.get("state", ""), None)  # one use per state
    request.session[SESSION_OIDC] = pending
    if (
        started is None
        or started.get("org") != org.slug
        or time.time() - started.get("at", 0) >= REQUEST_TTL
    ):
        return refuse(
            oidc.OidcRefused(
                "bad_state",
                "This sign-in was not started in this browser, or it is too old (state). "
                "Start again from the sign-in page.",
            )
        )
    error = request.GET.get("error", "")
    if error:
        description = " ".join(request.GET.get("error_description", "").split())[:200]
        return refuse(
            oidc.OidcRefused(
                "idp_error",
                f"The identity provider did not sign you in ({error[:60]}"
                + (f": {description}" if description else "")
                + ").",
            )
        )
    code = request.GET.get("code", "")
    if not code:
        return refuse(oidc.OidcRefused("invalid_response", "The identity provider sent no code."))
    try:
        identity = oidc.oidc_verify(
            org, conn, code=code, verifier=started["verifier"], nonce=started["nonce"]
        )
    except oidc.OidcRefused as exc:
        return refuse(exc)
    try:
        result = saml.sso_signin(
            org=org,
            email=identity.email,
            full_name=identity.full_name,
            source="oidc",
            ref=identity.subject,
        )
    except DomainError as exc:
        return refuse(exc, identity.email)
    if result.joined:
        messages.success(request, f"Welcome to {org.name}.")
    return two_factor.signin_complete(
        request,
        result.user,
        started["next"],
        backend="members.backends.EmailBackend",
        sso_org=org.pk,
    )


# --- "Sign in with SSO" ----------------------------------------------------------------------


class SsoEmailForm(forms.Form):
    email = forms.EmailField(
        label="Work email",
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )


# The form posts here and we answer with a redirect to the org's identity provider, another
# origin: Chromium applies the page's `form-action` to every hop of that redirect, so this
# page (only) lets a form's redirect leave the site. Every other page keeps 'self'.
@csp_update({"form-action": ["https:", "http:"]})
@require_http_methods(["GET", "POST"])
def sso_signin(request):
    """The email's verified domain finds the org; the browser goes on to its IdP."""
    form = SsoEmailForm(request.POST or None)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            email = normalize_email(form.cleaned_data["email"])
            org = domains.org_for_email(email)
            if org is not None and sso_protocol(org) is not None:
                url = reverse("sso:login", args=[org.slug])
                if next_url:
                    from urllib.parse import urlencode

                    url += "?" + urlencode({"next": _safe_next(request, next_url)})
                return redirect(url)
            form.add_error(
                "email",
                f"No organization has set up single sign-on for {email.rsplit('@', 1)[1]}. "
                "Sign in with your password instead.",
            )
        status = 422
    return render(request, "sso/signin.html", {"form": form, "next": next_url}, status=status)


# --- the owners' settings page ---------------------------------------------------------------


class DomainForm(forms.Form):
    domain = forms.CharField(label="Domain", max_length=300, help_text="For example acme.com")


class SamlForm(forms.Form):
    metadata = forms.CharField(
        label="Identity provider metadata (XML)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "<EntityDescriptor …>"}),
    )
    metadata_file = forms.FileField(label="…or upload the metadata file", required=False)
    metadata_url = forms.URLField(
        label="…or fetch it from the IdP's metadata URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Fetched when you save and again every day (or with Refresh now).",
    )
    email_attribute = forms.CharField(label="Email attribute", initial="email", max_length=200)
    name_attribute = forms.CharField(
        label="Name attribute", initial="name", max_length=200, required=False
    )
    allow_idp_initiated = forms.BooleanField(
        label="Allow sign-in started at the identity provider (IdP-initiated)",
        required=False,
        help_text="Off by default: a sign-in must start here, which defeats forged logins.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def clean(self):
        data = super().clean()
        upload = data.get("metadata_file")
        if upload:
            if upload.size > saml.MAX_METADATA_BYTES:
                self.add_error("metadata_file", "That file is too large (over 500 KB).")
            else:
                data["metadata"] = upload.read().decode("utf-8", "replace")
        return data


class OidcForm(forms.Form):
    issuer = forms.CharField(
        label="Issuer URL",
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://acme.okta.com"}),
        help_text="Or its discovery URL (…/.well-known/openid-configuration); read when you save.",
    )
    client_id = forms.CharField(label="Client ID", max_length=255)
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored sealed and never shown again; leave empty to keep the saved one.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)


def _settings_page(request, *, domain_form=None, saml_form=None, oidc_form=None, status=200):
    org = request.org
    conn = SamlConnection.objects.filter(organization=org).first()
    oidc_conn = OidcConnection.objects.filter(organization=org).first()
    if oidc_form is None:
        initial = {"enabled": True}
        if oidc_conn is not None:
            initial = {
                "issuer": oidc_conn.issuer,
                "client_id": oidc_conn.client_id,
                "enabled": oidc_conn.enabled,
            }
        oidc_form = OidcForm(initial=initial)
    if saml_form is None:
        initial = {"enabled": True}
        if conn is not None:
            initial = {
                "metadata": conn.idp_metadata_xml,
                "metadata_url": conn.metadata_url,
                "email_attribute": conn.email_attribute,
                "name_attribute": conn.name_attribute,
                "allow_idp_initiated": conn.allow_idp_initiated,
                "enabled": conn.enabled,
            }
        saml_form = SamlForm(initial=initial)
    return render(
        request,
        "sso/settings.html",
        {
            "org": org,
            "tab": "sso",
            "domains": list(domains.domains_for_org(org)),
            "domain_form": domain_form or DomainForm(),
            "saml_form": saml_form,
            "conn": conn,
            "oidc_form": oidc_form,
            "oidc_conn": oidc_conn,
            "oidc_redirect_uri": oidc.callback_url(org),
            "oidc_scopes": oidc.SCOPES,
            "entity_id": saml.sp_entity_id(org),
            "acs_url": saml.acs_url(org),
            "login_url": request.build_absolute_uri(reverse("sso:login", args=[org.slug])),
            "required": requires_sso(org.pk),
        },
        status=status,
    )


# The settings page's remove buttons: action → (service, what the message calls it).
REMOVALS = {
    "remove_saml": (saml.saml_remove, "SAML"),
    "remove_oidc": (oidc_setup.oidc_remove, "OpenID Connect"),
}


@org_view(OrgCapability.MANAGE_SSO)
def sso_settings(request):
    if request.method != "POST":
        return _settings_page(request)
    action = request.POST.get("action", "")
    org, actor = request.org, request.user
    if action == "add_domain":
        form = DomainForm(request.POST)
        if not form.is_valid():
            return _settings_page(request, domain_form=form, status=422)
        try:
            claim = domains.domain_add(actor=actor, org=org, domain=form.cleaned_data["domain"])
        except DomainError as exc:
            if exc.status == 403:
                raise
            apply_domain_error(form, exc)
            return _settings_page(request, domain_form=form, status=exc.status)
        messages.success(
            request, f"Publish the TXT record below at {claim.domain}, then press Verify."
        )
    elif action in ("verify_domain", "remove_domain"):
        claim = domains.get_domain(org, request.POST.get("domain_id", ""))
        try:
            if action == "verify_domain":
                domains.domain_verify(actor=actor, org=org, claim=claim)
                messages.success(request, f"{claim.domain} is verified.")
            else:
                domains.domain_remove(actor=actor, org=org, claim=claim)
                messages.success(request, f"{claim.domain} removed.")
        except DomainError as exc:
            if exc.status == 403:
                raise
            messages.error(request, exc.message)
            return _settings_page(request, status=exc.status)
    elif action == "save_saml":
        form = SamlForm(request.POST, request.FILES)
        if not form.is_valid():
            return _settings_page(request, saml_form=form, status=422)
        data = form.cleaned_data
        url_wins = bool(data.get("metadata_url")) and not data.get("metadata_file")
        try:
            saml.saml_configure(
                actor=actor,
                org=org,
                # An uploaded file wins, then the URL (fetched again on every save), then the text.
                metadata_xml="" if url_wins else (data.get("metadata") or ""),
                metadata_url="" if data.get("metadata_file") else (data.get("metadata_url") or ""),
                email_attribute=data["email_attribute"],
                name_attribute=data.get("name_attribute") or "",
                allow_idp_initiated=data["allow_idp_initiated"],
                enabled=data["enabled"],
            )
        except DomainError as exc:
            if exc.status == 403:
                raise
            apply_domain_error(form, exc)
            return _settings_page(request, saml_form=form, status=exc.status)
        messages.success(request, "SAML single sign-on saved.")
    elif action in REMOVALS:
        remove, what = REMOVALS[action]
        try:
            remove(actor=actor, org=org)
        except DomainError as exc:
            if exc.status == 403:
                raise
            messages.error(request, exc.message)
            return _settings_page(request, status=exc.status)
        messages.success(request, f"{what} single sign-on removed.")
    elif action == "save_oidc":
        form = OidcForm(request.POST)
        if not form.is_valid():
            return _settings_page(request, oidc_form=form, status=422)
        data = form.cleaned_data
        try:
            oidc_setup.oidc_configure(
                actor=actor,
                org=org,
                issuer=data["issuer"],
                client_id=data["client_id"],
                client_secret=data.get("client_secret") or "",
                enabled=data["enabled"],
            )
        except DomainError as exc:
            if exc.status == 403:
                raise
            apply_domain_error(form, exc)
            return _settings_page(request, oidc_form=form, status=exc.status)
        messages.success(request, "OpenID Connect single sign-on saved.")
    else:
        messages.error(request, "Unknown action.")
        return _settings_page(request, status=422)
    return redirect("sso:settings", org_slug=org.slug)


# --- "Refresh now": IdP metadata configured by URL (orgs/sso/metadata.py) ------------------


@require_POST
@org_view(OrgCapability.MANAGE_SSO)
def saml_metadata_refresh(request):
    from orgs.sso.metadata import saml_metadata_refresh as refresh

    try:
        outcome = refresh(actor=request.user, org=request.org)
    except NotFound as exc:
        messages.error(request, exc.message)
        return redirect("sso:settings", org_slug=request.org.slug)
    if outcome.status == "failed":
        messages.error(request, f"{outcome.message} The metadata we had is kept.")
    else:
        messages.success(request, outcome.message)
    return redirect("sso:settings", org_slug=request.org.slug)
