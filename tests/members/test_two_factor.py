"""Two-factor sign-in: enrolment with a real TOTP code, recovery codes, the sign-in step, replay
protection, and the org policy that sends members without it to enrol (pages and API)."""

import time

import pyotp
import pytest
from django.urls import reverse

from config.errors import Conflict, PermissionDenied, RateLimited, ValidationFailed
from members import two_factor
from members.models import TwoFactorDevice
from orgs.governance_services import policy_set
from orgs.models import GovernancePolicy
from tests.factories import PASSWORD, UserFactory, add_to_workspace
from workspaces.services import workspace_create

TWO_FACTOR = reverse("members:two_factor")


def enrol_via_page(client, next_url=""):
    """Open the enrolment page, scan the secret, confirm with the current code."""
    page = client.get(TWO_FACTOR, {"next": next_url} if next_url else None)
    assert page.status_code == 200
    secret = page.context["secret"]
    response = client.post(TWO_FACTOR, {"code": pyotp.TOTP(secret).now(), "next": next_url})
    assert response.status_code == 200
    return secret, response


def enrol(user):
    secret = pyotp.random_base32()
    codes = two_factor.two_factor_enable(user=user, secret=secret, code=pyotp.TOTP(secret).now())
    return secret, codes


def next_code(secret):
    """The code of the next time step (accepted for clock drift), so it is not a replay."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def require_two_factor(ns):
    if not two_factor.has_two_factor(ns.owner):
        enrol(ns.owner)
    policy_set(
        actor=ns.owner,
        org=ns.org,
        kind=GovernancePolicy.Kind.REQUIRE_TWO_FACTOR,
        value={"enabled": True},
    )


# --- enrolment -------------------------------------------------------------------------------


def test_enrol_shows_qr_and_confirms_with_a_real_code(owner, login):
    client = login(owner)
    page = client.get(TWO_FACTOR)
    html = page.content.decode()
    assert "<svg" in html and page.context["secret"] in html
    assert not TwoFactorDevice.objects.exists()  # nothing stored until confirmed
    wrong = client.post(TWO_FACTOR, {"code": "000000"})
    assert wrong.status_code == 422
    assert not TwoFactorDevice.objects.exists()
    secret, response = enrol_via_page(client)
    device = TwoFactorDevice.objects.get(user=owner)
    assert device.is_confirmed and device.secret == secret
    codes = response.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(code in response.content.decode() for code in codes)
    # Recovery codes are stored hashed only.
    assert len(device.recovery_code_hashes) == 10
    assert not set(codes) & set(device.recovery_code_hashes)
    assert two_factor.SETUP_SESSION_KEY not in client.session
    # Shown once: the page now only says how many are left.
    again = client.get(TWO_FACTOR).content.decode()
    assert codes[0] not in again and "10 unused recovery codes" in again


def test_enrolment_code_cannot_be_replayed(owner):
    secret = pyotp.random_base32()
    code = pyotp.TOTP(secret).now()
    two_factor.two_factor_enable(user=owner, secret=secret, code=code)
    with pytest.raises(ValidationFailed):
        two_factor.two_factor_verify(user=owner, code=code)
    assert two_factor.two_factor_verify(user=owner, code=next_code(secret)) == "totp"
    with pytest.raises(ValidationFailed):  # the same step twice
        two_factor.two_factor_verify(user=owner, code=next_code(secret))


def test_recovery_code_works_once(owner):
    secret, codes = enrol(owner)
    assert two_factor.two_factor_verify(user=owner, code=codes[0].upper()) == "recovery"
    with pytest.raises(ValidationFailed):
        two_factor.two_factor_verify(user=owner, code=codes[0])
    assert len(TwoFactorDevice.objects.get(user=owner).recovery_code_hashes) == 9


def test_regenerating_recovery_codes_voids_the_old_ones(owner, login):
    secret, old = enrol(owner)
    response = login(owner).post(
        reverse("members:two_factor_recovery_codes"), {"code": next_code(secret)}
    )
    assert response.status_code == 200
    new = response.context["codes"]
    assert len(new) == 10
    with pytest.raises(ValidationFailed):
        two_factor.two_factor_verify(user=owner, code=old[1])
    assert two_factor.two_factor_verify(user=owner, code=new[1]) == "recovery"


def test_wrong_codes_are_throttled(owner):
    enrol(owner)
    for _ in range(two_factor.MAX_FAILURES):
        with pytest.raises(ValidationFailed):
            two_factor.two_factor_verify(user=owner, code="123456x")
    with pytest.raises(RateLimited):
        two_factor.two_factor_verify(user=owner, code="123456")


def test_disable_needs_a_code(owner, login):
    secret, _ = enrol(owner)
    client = login(owner)
    url = reverse("members:two_factor_disable")
    assert client.post(url, {"code": "999999"}).status_code == 422
    assert TwoFactorDevice.objects.filter(user=owner).exists()
    assert client.post(url, {"code": next_code(secret)}).status_code == 302
    assert not TwoFactorDevice.objects.filter(user=owner).exists()


def test_disable_refused_while_an_org_requires_it(org_setup):
    ns = org_setup
    require_two_factor(ns)
    secret = TwoFactorDevice.objects.get(user=ns.owner).secret
    with pytest.raises(Conflict) as exc:
        two_factor.two_factor_disable(user=ns.owner, code=next_code(secret))
    assert "Acme Corp requires two-factor sign-in" in exc.value.message
    assert TwoFactorDevice.objects.filter(user=ns.owner).exists()


# --- sign-in ---------------------------------------------------------------------------------


def test_signin_asks_for_the_code_before_signing_in(owner, client):
    secret, _ = enrol(owner)
    home = reverse("workspaces:home")
    response = client.post(
        reverse("members:signin"), {"email": owner.email, "password": PASSWORD, "next": home}
    )
    assert response.status_code == 302 and response.url == reverse("members:two_factor_verify")
    assert "_auth_user_id" not in client.session  # not signed in yet
    assert client.get(home).status_code == 302  # guarded pages still send to sign-in
    verify = reverse("members:two_factor_verify")
    assert client.get(verify).status_code == 200
    assert client.post(verify, {"code": "000000"}).status_code == 422
    response = client.post(verify, {"code": next_code(secret)})
    assert response.status_code == 302 and response.url == home
    assert client.session["_auth_user_id"] == str(owner.pk)
    assert client.get(home).status_code == 200


def test_signin_with_a_recovery_code_once(owner, client):
    _, codes = enrol(owner)
    signin, verify = reverse("members:signin"), reverse("members:two_factor_verify")
    client.post(signin, {"email": owner.email, "password": PASSWORD})
    assert client.post(verify, {"code": codes[3]}).status_code == 302
    client.post(reverse("members:signout"))
    client.post(signin, {"email": owner.email, "password": PASSWORD})
    assert client.post(verify, {"code": codes[3]}).status_code == 422
    assert "_auth_user_id" not in client.session


def test_verify_step_without_password_goes_back_to_signin(client):
    response = client.get(reverse("members:two_factor_verify"))
    assert response.status_code == 302 and response.url == reverse("members:signin")


def test_signin_without_two_factor_is_unchanged(owner, client):
    response = client.post(reverse("members:signin"), {"email": owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


# --- enforcement by the org policy -----------------------------------------------------------


def test_member_without_two_factor_is_sent_to_enrol_then_passes(org_setup, login):
    ns = org_setup
    require_two_factor(ns)
    client = login(ns.member)
    ws_url = reverse("workspaces:overview", args=[ns.ws_b.slug])
    org_url = reverse("orgs:overview", args=[ns.org.slug])
    for url in (ws_url, org_url, reverse("workspaces:resource_list", args=[ns.ws_b.slug, "syncs"])):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(TWO_FACTOR + "?next=")
    # Enrolment, account and sign-out pages stay reachable.
    assert client.get(TWO_FACTOR).status_code == 200
    assert client.get(reverse("members:password_change")).status_code == 200
    secret, done = enrol_via_page(client, next_url=ws_url)
    assert f'href="{ws_url}"' in done.content.decode()
    assert client.get(ws_url).status_code == 200
    assert client.get(org_url).status_code == 200
    assert client.post(reverse("members:signout")).status_code == 302


def test_htmx_requests_are_redirected_with_hx_redirect(org_setup, login):
    ns = org_setup
    require_two_factor(ns)
    response = login(ns.member).get(
        reverse("workspaces:overview", args=[ns.ws_b.slug]), HTTP_HX_REQUEST="true"
    )
    assert response["HX-Redirect"].startswith(TWO_FACTOR)


def test_direct_workspace_members_are_held_too_and_other_workspaces_are_not(org_setup, login):
    ns = org_setup
    require_two_factor(ns)
    outsider = UserFactory()
    add_to_workspace(outsider, ns.ws_a, source="direct")
    own = workspace_create(actor=outsider, name="Outsider's own")
    client = login(outsider)
    assert client.get(reverse("workspaces:overview", args=[ns.ws_a.slug])).status_code == 302
    assert client.get(reverse("workspaces:overview", args=[own.slug])).status_code == 200


def test_unlinked_workspace_no_longer_requires_two_factor(org_setup, login):
    ns = org_setup
    from orgs.services import workspace_unlink

    require_two_factor(ns)
    add_to_workspace(ns.stranger, ns.ws_b, source="direct")
    client = login(ns.stranger)
    url = reverse("workspaces:overview", args=[ns.ws_b.slug])
    assert client.get(url).status_code == 302
    workspace_unlink(actor=ns.owner, org=ns.org, workspace=ns.ws_b)
    assert client.get(url).status_code == 200


def test_api_check_for_the_api(org_setup):
    ns = org_setup
    two_factor.api_check(ns.member, ns.org.pk)  # no policy: nothing to do
    require_two_factor(ns)
    with pytest.raises(PermissionDenied) as exc:
        two_factor.api_check(ns.member, ns.org.pk)
    assert exc.value.code == "two_factor_required" and exc.value.status == 403
    two_factor.api_check(ns.owner, ns.org.pk)
    enrol(ns.member)
    two_factor.api_check(ns.member, ns.org.pk)


def test_enforcement_costs_one_query_without_the_policy(
    org_setup, login, django_assert_num_queries
):
    ns = org_setup

    class Request:
        user = ns.member

    with django_assert_num_queries(1):
        assert two_factor.enforce(Request(), ns.org.pk) is None
    with django_assert_num_queries(0):
        assert two_factor.enforce(Request(), None) is None


def test_two_factor_changes_are_audited(owner):
    from audit.models import AuditEvent

    def actions():
        return list(
            AuditEvent.objects.filter(actor_user=owner, action__startswith="account.")
            .order_by("seq")
            .values_list("action", flat=True)
        )

    secret, first_codes = enrol(owner)
    assert actions() == ["account.two_factor_enabled"]
    assert two_factor.two_factor_verify(user=owner, code=first_codes[0]) == "recovery"
    assert actions()[-1] == "account.recovery_code_used"
    with pytest.raises(ValidationFailed):
        two_factor.recovery_codes_regenerate(user=owner, code="000000x")
    assert actions()[-1] == "account.recovery_code_used"  # a refused change records nothing
    codes = two_factor.recovery_codes_regenerate(user=owner, code=next_code(secret))
    two_factor.two_factor_disable(user=owner, code=codes[0])
    assert actions() == [
        "account.two_factor_enabled",
        "account.recovery_code_used",
        "account.recovery_codes_regenerated",
        "account.two_factor_disabled",
    ]
