"""Two-factor sign-in (TOTP): enrolment, recovery codes, the sign-in step and org enforcement.

A device is stored only once confirmed with a real code; until then the new secret lives in
the session. Each accepted TOTP step is remembered (last_used_step) so a code cannot be
replayed; recovery codes are stored hashed and each works once.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlencode

import pyotp
import segno
from django.contrib import messages
from django.contrib.auth import login
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from audit.services import record
from config.errors import Conflict, PermissionDenied, RateLimited, ValidationFailed
from members.models import TwoFactorDevice, User
from members.tokens import hash_token

ISSUER = "SignalSmith"
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 300
PENDING_SECONDS = 300
SETUP_SESSION_KEY = "two_factor_setup_secret"
PENDING_SESSION_KEY = "two_factor_pending"


# --- reading ---------------------------------------------------------------------------------


def has_two_factor(user) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return TwoFactorDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def device_of(user) -> TwoFactorDevice | None:
    return TwoFactorDevice.objects.filter(user=user, confirmed_at__isnull=False).first()


def orgs_requiring_two_factor(user):
    """Live orgs that require 2FA and whose workspaces or membership the user has."""
    from orgs.models import GovernancePolicy, Organization

    requiring = GovernancePolicy.objects.filter(
        kind=GovernancePolicy.Kind.REQUIRE_TWO_FACTOR, value__enabled=True
    ).values("organization_id")
    return (
        Organization.objects.alive()
        .filter(pk__in=requiring)
        .filter(Q(memberships__user=user) | Q(workspaces__memberships__user=user))
        .distinct()
        .order_by("name")
    )


# --- TOTP and recovery codes -----------------------------------------------------------------


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth:// URI as an inline SVG QR code (no external service sees the secret)."""
    return segno.make(uri, error="m").svg_inline(scale=4, dark="#111827", light="#ffffff")


def _clean_code(code: str) -> str:
    return "".join(ch for ch in str(code or "").lower() if ch.isalnum())


def _totp_step(secret: str, code: str, after_step: int) -> int | None:
    """The time step (±1 for clock drift) whose code matches, if later than `after_step`."""
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = totp.timecode(timezone.now())
    for step in (now - 1, now, now + 1):
        if step > after_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _hash_recovery(code: str) -> str:
    return hash_token(_clean_code(code))


def _new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def _check_failures(user: User) -> None:
    if (cache.get(f"2fa-fail:{user.public_id}") or 0) >= MAX_FAILURES:
        raise RateLimited(
            "Too many wrong codes. Wait a few minutes and try again.",
            retry_after=FAILURE_WINDOW_SECONDS,
            code="two_factor_throttled",
        )


def _note_failure(user: User) -> None:
    key = f"2fa-fail:{user.public_id}"
    cache.add(key, 0, FAILURE_WINDOW_SECONDS)
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, FAILURE_WINDOW_SECONDS)


def _wrong_code() -> ValidationFailed:
    return ValidationFailed(
        "That code is not valid (or was already used). Try the current code from your app.",
        fields={"code": "Wrong or already used code."},
        code="invalid_code",
    )


def _use_code(device: TwoFactorDevice, code: str) -> str:
    """Accept a TOTP code or an unused recovery code on a locked device; returns which."""
    cleaned = _clean_code(code)
    step = _totp_step(device.secret, cleaned, device.last_used_step)
    if step is not None:
        device.last_used_step = step
        device.save(update_fields=["last_used_step"])
        return "totp"
    digest = _hash_recovery(cleaned)
    remaining = [h for h in device.recovery_code_hashes if not hmac.compare_digest(h, digest)]
    if len(cleaned) == 10 and len(remaining) < len(device.recovery_code_hashes):
        device.recovery_code_hashes = remaining
        device.save(update_fields=["recovery_code_hashes"])
        return "recovery"
    raise _wrong_code()


def _locked_device(user: User) -> TwoFactorDevice:
    device = (
        TwoFactorDevice.objects.select_for_update()
        .filter(user=user, confirmed_at__isnull=False)
        .first()
    )
    if device is None:
        raise Conflict("Two-factor sign-in is not turned on.", code="two_factor_off")
    return device


# --- services --------------------------------------------------------------------------------


@transaction.atomic
def two_factor_enable(*, user: User, secret: str, code: str) -> list[str]:
    """Confirm a new secret with a real code; returns the recovery codes (shown once)."""
    User.objects.select_for_update().filter(pk=user.pk).first()
    if has_two_factor(user):
        raise Conflict("Two-factor sign-in is already on.", code="two_factor_on")
    _check_failures(user)
    step = _totp_step(secret or "", _clean_code(code), 0) if secret else None
    if step is None:
        _note_failure(user)
        raise _wrong_code()
    codes = _new_recovery_codes()
    TwoFactorDevice.objects.update_or_create(
        user=user,
        defaults={
            "secret": secret,
            "confirmed_at": timezone.now(),
            "last_used_step": step,
            "recovery_code_hashes": [_hash_recovery(c) for c in codes],
        },
    )
    record(actor=user, action="account.two_factor_enabled", target=user)
    return codes


@transaction.atomic
def two_factor_verify(*, user: User, code: str) -> str:
    """Check a sign-in code (TOTP once per step, or a recovery code once); "totp"/"recovery"."""
    _check_failures(user)
    device = _locked_device(user)
    try:
        used = _use_code(device, code)
    except ValidationFailed:
        _note_failure(user)
        raise
    if used == "recovery":  # a one-time credential is gone: worth a line in the log
        remaining = len(device.recovery_code_hashes)
        record(
            actor=user,
            action="account.recovery_code_used",
            target=user,
            details={"remaining": remaining},
        )
    return used


@transaction.atomic
def recovery_codes_regenerate(*, user: User, code: str) -> list[str]:
    """New recovery codes (the old ones stop working); needs a current code."""
    _check_failures(user)
    device = _locked_device(user)
    try:
        _use_code(device, code)
    except ValidationFailed:
        _note_failure(user)
        raise
    codes = _new_recovery_codes()
    device.recovery_code_hashes = [_hash_recovery(c) for c in codes]
    device.save(update_fields=["recovery_code_hashes"])
    record(actor=user, action="account.recovery_codes_regenerated", target=user)
    return codes


@transaction.atomic
def two_factor_disable(*, user: User, code: str) -> None:
    """Turn 2FA off with a current code, unless an org the user is in requires it."""
    required = list(orgs_requiring_two_factor(user).values_list("name", flat=True))
    if required:
        raise Conflict(
            f"{', '.join(required)} requires two-factor sign-in, so it cannot be turned off.",
            code="two_factor_required_by_org",
        )
    _check_failures(user)
    device = _locked_device(user)
    try:
        _use_code(device, code)
    except ValidationFailed:
        _note_failure(user)
        raise
    device.delete()
    record(actor=user, action="account.two_factor_disabled", target=user)


# --- sign-in step ----------------------------------------------------------------------------


def signin_complete(
    request,
    user: User,
    next_url: str,
    backend: str | None = None,
    break_glass_org: int | None = None,
    sso_org: int | None = None,
):
    """After the password (or an SSO sign-in): sign in, or hold the user at the code step if
    they have 2FA.

    `break_glass_org`: an owner signing in with a password while their org requires SSO (only
    allowed with 2FA); the sign-in is audited once the code is right. `sso_org`: the org whose
    identity provider signed the user in. Both are remembered in the session, which is what
    required SSO checks on the org's pages (orgs/sso/enforcement.py).
    """
    backend = backend or getattr(user, "backend", None) or "members.backends.EmailBackend"
    if not has_two_factor(user):
        login(request, user, backend=backend)
        _remember_how(request, sso_org=sso_org, break_glass_org=break_glass_org)
        return redirect(next_url)
    request.session.cycle_key()
    request.session[PENDING_SESSION_KEY] = {
        "user": user.pk,
        "backend": backend,
        "next": next_url if isinstance(next_url, str) else "",
        "at": timezone.now().timestamp(),
        "break_glass_org": break_glass_org,
        "sso_org": sso_org,
    }
    return redirect("members:two_factor_verify")


def pending_signin(request) -> tuple[User, dict] | None:
    """The user who passed the password step and still owes a code (within 5 minutes)."""
    pending = request.session.get(PENDING_SESSION_KEY)
    if not pending or timezone.now().timestamp() - pending.get("at", 0) > PENDING_SECONDS:
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    user = User.objects.filter(pk=pending["user"], is_active=True).first()
    return (user, pending) if user else None


def finish_signin(request, user: User, pending: dict) -> None:
    request.session.pop(PENDING_SESSION_KEY, None)
    if pending.get("break_glass_org"):
        from orgs.models import Organization

        org = Organization.objects.alive().filter(pk=pending["break_glass_org"]).first()
        if org is not None:
            with transaction.atomic():
                record(
                    actor=user,
                    action="sso.break_glass_signin",
                    organization=org,
                    target=user,
                    details={"source": "password+2fa"},
                )
    login(request, user, backend=pending["backend"])
    _remember_how(
        request, sso_org=pending.get("sso_org"), break_glass_org=pending.get("break_glass_org")
    )


def _remember_how(request, *, sso_org: int | None, break_glass_org: int | None) -> None:
    """After login(): which orgs this session may use under required SSO."""
    from orgs.sso.enforcement import SESSION_BREAK_GLASS, SESSION_SSO_ORGS

    for key, org_pk in ((SESSION_SSO_ORGS, sso_org), (SESSION_BREAK_GLASS, break_glass_org)):
        if org_pk:
            request.session[key] = sorted({*request.session.get(key, []), int(org_pk)})


# --- enforcement -----------------------------------------------------------------------------


def must_enrol(user, organization_id: int | None) -> bool:
    """True when the org requires 2FA and the user has not turned it on."""
    if not organization_id or user is None or not user.is_authenticated:
        return False
    from orgs.governance import requires_two_factor

    return requires_two_factor(organization_id) and not has_two_factor(user)


def enforce(request, organization_id: int | None) -> HttpResponse | None:
    """For page guards: a redirect to the org's SSO when it requires SSO of this person and
    the session did not come through it; a redirect to enrolment when the org requires 2FA
    the user lacks."""
    user = getattr(request, "user", None)
    if not organization_id or user is None or not user.is_authenticated:
        return None
    from orgs.models import GovernancePolicy
    from orgs.sso.enforcement import session_gate

    Kind = GovernancePolicy.Kind
    values = dict(  # both page-level policies in one query
        GovernancePolicy.objects.filter(
            organization_id=organization_id, kind__in=[Kind.REQUIRE_SSO, Kind.REQUIRE_TWO_FACTOR]
        ).values_list("kind", "value")
    )
    sso_required = bool((values.get(Kind.REQUIRE_SSO) or {}).get("enabled"))
    if sso_required and (to_sso := session_gate(request, organization_id, required=True)):
        return to_sso
    if not (values.get(Kind.REQUIRE_TWO_FACTOR) or {}).get("enabled") or has_two_factor(user):
        return None
    from orgs.models import Organization

    name = Organization.objects.filter(pk=organization_id).values_list("name", flat=True).first()
    messages.warning(request, f"{name} requires two-factor sign-in. Set it up to continue.")
    url = reverse("members:two_factor") + "?" + urlencode({"next": request.get_full_path()})
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def api_check(user, organization_id: int | None) -> None:
    """For the API: 403 `two_factor_required` when the org requires 2FA the user lacks."""
    if must_enrol(user, organization_id):
        raise PermissionDenied(
            "This organization requires two-factor sign-in. Turn it on in your account "
            "(Account › Two-factor sign-in) to use its workspaces.",
            code="two_factor_required",
        )
