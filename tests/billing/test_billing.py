"""docs/rules.md §8: plan limits at their boundary, plan changes, payment methods, billing pages."""

import logging
from datetime import date

import pytest
from django.apps import apps
from django.db import models
from django.db.models.functions import Cast
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from billing import services
from billing.limits import check_member_limit
from billing.models import BillingAccount, DailyWorkspaceUsage, PaymentMethod, Plan
from billing.providers import TestProvider, luhn_ok
from config.errors import (
    Conflict,
    LimitExceeded,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from orgs.services import workspace_create_linked, workspace_link
from workspaces.services import workspace_create

VISA = "4242424242424242"
NEXT_YEAR = date.today().year + 1


def add_card(ns, number=VISA, **kw):
    return services.payment_method_add(
        actor=ns.owner,
        org=ns.org,
        number=number,
        exp_month=12,
        exp_year=NEXT_YEAR,
        cvc=kw.pop("cvc", "123"),
        **kw,
    )


def events(org, action):
    return AuditEvent.objects.filter(organization=org, action=action)


def set_plan(org, code):
    BillingAccount.objects.filter(organization=org).update(plan=Plan.objects.get(code=code))


# --- limits at the boundary ------------------------------------------------------------------


def test_new_org_starts_on_free_plan_with_spec_limits(org_setup):
    plan = BillingAccount.objects.get(organization=org_setup.org).plan
    assert (plan.code, plan.max_workspaces, plan.max_members, plan.max_rows_per_month) == (
        "free",
        5,
        25,
        1_000_000,
    )


def test_linking_allows_the_fifth_workspace_and_refuses_the_sixth(org_setup):
    ns = org_setup  # two linked already
    for i in range(3):
        workspace_link(
            actor=ns.owner, org=ns.org, workspace=workspace_create(actor=ns.owner, name=f"W{i}")
        )
    assert ns.org.workspaces.count() == 5
    sixth = workspace_create(actor=ns.owner, name="Sixth")
    with pytest.raises(LimitExceeded) as exc:
        workspace_link(actor=ns.owner, org=ns.org, workspace=sixth)
    assert exc.value.code == "plan_limit_workspaces"
    assert "Free plan allows 5 linked workspaces" in exc.value.message
    assert reverse("billing:overview", args=[ns.org.slug]) in exc.value.message
    sixth.refresh_from_db()
    assert sixth.organization_id is None


def test_creating_linked_workspace_allowed_to_the_limit_then_refused(org_setup):
    ns = org_setup
    for i in range(3):
        workspace_create_linked(actor=ns.owner, org=ns.org, name=f"New {i}")
    assert ns.org.workspaces.count() == 5
    with pytest.raises(LimitExceeded) as exc:
        workspace_create_linked(actor=ns.owner, org=ns.org, name="One too many")
    assert "5 linked workspaces" in exc.value.message
    assert not ns.org.workspaces.filter(name="One too many").exists()


def test_limit_follows_the_plan(org_setup):
    ns = org_setup
    Plan.objects.filter(code="free").update(max_workspaces=2)
    with pytest.raises(LimitExceeded):
        workspace_create_linked(actor=ns.owner, org=ns.org, name="Third")
    add_card(ns)
    services.plan_change(actor=ns.owner, org=ns.org, plan_code="team")
    workspace_create_linked(actor=ns.owner, org=ns.org, name="Third")
    assert ns.org.workspaces.count() == 3


def test_member_limit_counts_members_and_pending_invitations(org_setup):
    ns = org_setup  # owner, admin, member = 3
    Plan.objects.filter(code="free").update(max_members=4)
    check_member_limit(ns.org)  # the 4th seat is allowed
    with pytest.raises(LimitExceeded) as exc:
        check_member_limit(ns.org, adding=2)
    assert exc.value.code == "plan_limit_members"
    assert "Free plan allows 4 members" in exc.value.message


def test_limit_error_banner_links_to_billing(org_setup):
    ns = org_setup
    Plan.objects.filter(code="free").update(max_workspaces=2)
    with pytest.raises(LimitExceeded) as exc:
        workspace_create_linked(actor=ns.owner, org=ns.org, name="Third")
    html = render_to_string("error.html#banner", {"error": exc.value})
    assert f'href="{reverse("billing:overview", args=[ns.org.slug])}"' in html


# --- plan changes --------------------------------------------------------------------------


def test_upgrade_needs_a_payment_method_then_is_audited(org_setup):
    ns = org_setup
    with pytest.raises(Conflict) as exc:
        services.plan_change(actor=ns.owner, org=ns.org, plan_code="team")
    assert exc.value.code == "payment_method_required"
    add_card(ns)
    services.plan_change(actor=ns.owner, org=ns.org, plan_code="team")
    assert BillingAccount.objects.get(organization=ns.org).plan.code == "team"
    event = events(ns.org, "billing.plan_changed").get()
    assert event.details["before"] == {"plan": "free"}
    assert event.details["after"] == {"plan": "team"}
    assert event.actor_user_id == ns.owner.pk


def test_downgrade_refused_when_usage_exceeds_naming_the_limit(org_setup):
    ns = org_setup
    add_card(ns)
    services.plan_change(actor=ns.owner, org=ns.org, plan_code="team")
    for i in range(4):  # 6 linked workspaces: more than Free's 5
        workspace_create_linked(actor=ns.owner, org=ns.org, name=f"Extra {i}")
    before = AuditEvent.objects.count()
    with pytest.raises(LimitExceeded) as exc:
        services.plan_change(actor=ns.owner, org=ns.org, plan_code="free")
    assert exc.value.code == "plan_limit_downgrade"
    assert "linked workspaces: 6 in use, the Free plan allows 5" in exc.value.message
    assert BillingAccount.objects.get(organization=ns.org).plan.code == "team"
    assert AuditEvent.objects.count() == before
    # At exactly the limit the downgrade goes through.
    ws = ns.org.workspaces.get(name="Extra 3")
    from orgs.services import workspace_unlink

    workspace_unlink(actor=ns.owner, org=ns.org, workspace=ws)
    services.plan_change(actor=ns.owner, org=ns.org, plan_code="free")
    assert BillingAccount.objects.get(organization=ns.org).plan.code == "free"


def test_rows_over_plan_do_not_block_a_downgrade_but_show_a_warning(org_setup, login):
    ns = org_setup
    add_card(ns)
    services.plan_change(actor=ns.owner, org=ns.org, plan_code="team")
    DailyWorkspaceUsage.objects.create(
        workspace=ns.ws_a, day=timezone.localdate(), rows_processed=2_000_000
    )
    services.plan_change(actor=ns.owner, org=ns.org, plan_code="free")
    response = login(ns.owner).get(reverse("billing:overview", args=[ns.org.slug]))
    assert response.status_code == 200
    assert b'data-testid="rows-warning"' in response.content
    assert "2,000,000 rows" in response.content.decode()


@pytest.mark.parametrize(
    ("current", "new", "upgrade"),
    [
        ("free", "team", True),
        ("team", "business", True),
        ("business", "enterprise", True),  # priced by sales, still the top of the catalogue
        ("team", "free", False),
        ("enterprise", "business", False),
        ("team", "team", False),
    ],
)
def test_plan_order_decides_what_is_an_upgrade(db, current, new, upgrade):
    plans = {p.code: p for p in Plan.objects.all()}
    assert services.is_upgrade(plans[current], plans[new]) is upgrade


def test_plan_change_refused_for_admins_and_unknown_plans(org_setup):
    ns = org_setup
    with pytest.raises(PermissionDenied) as exc:
        services.plan_change(actor=ns.admin, org=ns.org, plan_code="team")
    assert "owner" in exc.value.message
    with pytest.raises(NotFound):
        services.plan_change(actor=ns.owner, org=ns.org, plan_code="platinum")
    with pytest.raises(Conflict):
        services.plan_change(actor=ns.owner, org=ns.org, plan_code="free")
    with pytest.raises(PermissionDenied) as exc:
        services.plan_change(actor=ns.owner, org=ns.org, plan_code="enterprise")
    assert exc.value.code == "plan_sales_led"


def test_plan_preview_page_shows_usage_against_new_limits(org_setup, login):
    ns = org_setup
    Plan.objects.filter(code="team").update(max_workspaces=1)
    response = login(ns.owner).get(reverse("billing:plan_change", args=[ns.org.slug, "team"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="plan-preview"' in html
    assert "Exceeds the limit" in html
    assert "Switch to Team</button>" not in html


def test_plan_change_page_post_switches_and_redirects(org_setup, login):
    ns = org_setup
    add_card(ns)
    client = login(ns.owner)
    url = reverse("billing:plan_change", args=[ns.org.slug, "team"])
    response = client.post(url)
    assert response.status_code == 302
    assert BillingAccount.objects.get(organization=ns.org).plan.code == "team"


def test_plan_change_page_shows_refusal(org_setup, login):
    ns = org_setup
    response = login(ns.owner).post(reverse("billing:plan_change", args=[ns.org.slug, "team"]))
    assert response.status_code == 409
    assert b"Add a payment method" in response.content


# --- payment methods -----------------------------------------------------------------------


def test_luhn_and_standard_test_cards():
    for number in ("4242424242424242", "5555555555554444", "378282246310005", "6011111111111117"):
        assert luhn_ok(number)
        token = TestProvider().tokenize(number, 1, NEXT_YEAR, "1234" if number[0] == "3" else "123")
        assert token.last4 == number[-4:]
        assert number not in token.provider_ref
    assert {
        TestProvider().tokenize(n, 1, NEXT_YEAR, c).brand
        for n, c in [
            ("4242424242424242", "123"),
            ("5555555555554444", "123"),
            ("378282246310005", "1234"),
            ("6011111111111117", "123"),
        ]
    } == {"Visa", "Mastercard", "Amex", "Discover"}
    assert not luhn_ok("4242424242424241")


def test_card_stores_only_brand_last_four_expiry_and_reference(org_setup, caplog):
    ns = org_setup
    caplog.set_level(logging.DEBUG)
    pm = add_card(ns, number="4242 4242 4242 4242", cvc="987")
    row = PaymentMethod.objects.filter(pk=pm.pk).values().get()
    assert row["brand"] == "Visa" and row["last4"] == "4242"
    assert (row["exp_month"], row["exp_year"]) == (12, NEXT_YEAR)
    assert row["provider_ref"].startswith("test_card_")
    assert row["is_default"] is True
    for value in row.values():
        assert VISA not in str(value)
    # No text column of any table holds the full number (nor any 6+ digit run of it).
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.CharField | models.TextField | models.JSONField):
                hits = model._default_manager.annotate(
                    _as_text=Cast(field.attname, models.TextField())
                ).filter(_as_text__contains=VISA[:12])
                assert not hits.exists(), f"{model.__name__}.{field.name} holds the card number"
    event = events(ns.org, "billing.payment_method_added").get()
    assert event.details == {
        "brand": "Visa",
        "last4": "4242",
        "exp": f"12/{NEXT_YEAR}",
        "default": True,
    }
    assert VISA not in caplog.text and "987" not in caplog.text


def test_declined_and_invalid_cards_change_nothing(org_setup):
    ns = org_setup
    with pytest.raises(ValidationFailed) as exc:
        add_card(ns, number="4000000000000002")
    assert exc.value.code == "card_declined"
    assert "declined" in exc.value.message
    with pytest.raises(ValidationFailed) as exc:
        add_card(ns, number="4242424242424241")
    assert "number" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        services.payment_method_add(
            actor=ns.owner, org=ns.org, number=VISA, exp_month=1, exp_year=2001, cvc="123"
        )
    assert "expired" in exc.value.fields["exp_month"]
    assert not PaymentMethod.objects.exists()
    assert not events(ns.org, "billing.payment_method_added").exists()


def test_only_owners_add_cards(org_setup):
    ns = org_setup
    with pytest.raises(PermissionDenied):
        services.payment_method_add(
            actor=ns.admin, org=ns.org, number=VISA, exp_month=1, exp_year=NEXT_YEAR, cvc="123"
        )
    with pytest.raises(NotFound):
        services.payment_method_add(
            actor=ns.stranger, org=ns.org, number=VISA, exp_month=1, exp_year=NEXT_YEAR, cvc="123"
        )


def test_default_card_switch_and_removal(org_setup):
    ns = org_setup
    visa = add_card(ns)
    mc = add_card(ns, number="5555555555554444")
    assert not PaymentMethod.objects.get(pk=mc.pk).is_default
    services.payment_method_set_default(actor=ns.owner, org=ns.org, payment_method_id=mc.pk)
    assert list(PaymentMethod.objects.filter(is_default=True).values_list("pk", flat=True)) == [
        mc.pk
    ]
    services.payment_method_remove(actor=ns.owner, org=ns.org, payment_method_id=mc.pk)
    assert PaymentMethod.objects.get().pk == visa.pk
    assert PaymentMethod.objects.get().is_default
    removed = events(ns.org, "billing.payment_method_removed").get()
    assert removed.details["last4"] == "4444"
    assert events(ns.org, "billing.settings_updated").count() == 1  # the default switch


def test_last_card_of_a_paid_plan_cannot_be_removed(org_setup):
    ns = org_setup
    visa = add_card(ns)
    services.plan_change(actor=ns.owner, org=ns.org, plan_code="team")
    with pytest.raises(Conflict) as exc:
        services.payment_method_remove(actor=ns.owner, org=ns.org, payment_method_id=visa.pk)
    assert exc.value.code == "last_payment_method"
    assert PaymentMethod.objects.filter(pk=visa.pk).exists()


def test_other_orgs_card_is_not_found(org_setup, owner):
    ns = org_setup
    from orgs.services import org_create

    other = org_create(actor=owner, name="Other Org")
    pm = services.payment_method_add(
        actor=owner, org=other, number=VISA, exp_month=1, exp_year=NEXT_YEAR, cvc="123"
    )
    with pytest.raises(NotFound):
        services.payment_method_remove(actor=ns.owner, org=ns.org, payment_method_id=pm.pk)


def test_add_card_page_never_echoes_the_number(org_setup, login):
    ns = org_setup
    client = login(ns.owner)
    url = reverse("billing:payment_method_add", args=[ns.org.slug])
    data = {"number": "4000000000000002", "exp_month": 12, "exp_year": NEXT_YEAR, "cvc": "321"}
    response = client.post(url, data)
    assert response.status_code == 422
    html = response.content.decode()
    assert "declined" in html
    assert "4000000000000002" not in html and 'value="321"' not in html
    response = client.post(url, {**data, "number": VISA}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Visa •••• 4242" in response.content.decode()
    assert "<html" not in response.content.decode()
    assert PaymentMethod.objects.get().last4 == "4242"


def test_card_page_actions(org_setup, login):
    ns = org_setup
    a, b = add_card(ns), add_card(ns, number="6011111111111117")
    client = login(ns.owner)
    client.post(reverse("billing:payment_method_default", args=[ns.org.slug, b.pk]))
    assert PaymentMethod.objects.get(pk=b.pk).is_default
    client.post(reverse("billing:payment_method_remove", args=[ns.org.slug, a.pk]))
    assert list(PaymentMethod.objects.values_list("pk", flat=True)) == [b.pk]


# --- billing details -----------------------------------------------------------------------


def test_billing_settings_update_is_audited_with_before_and_after(org_setup):
    ns = org_setup
    services.billing_settings_update(
        actor=ns.owner,
        org=ns.org,
        billing_email=" Billing@Acme.test ",
        company_name="Acme Corp Ltd",
        address="1 Main St",
        tax_id="gb 123 456",
    )
    account = BillingAccount.objects.get(organization=ns.org)
    assert (account.billing_email, account.tax_id) == ("billing@acme.test", "GB123456")
    event = events(ns.org, "billing.settings_updated").get()
    assert event.details["before"]["billing_email"] == "olivia@acme.test"
    assert event.details["after"]["company_name"] == "Acme Corp Ltd"
    # Saving the same values again records nothing.
    services.billing_settings_update(
        actor=ns.owner,
        org=ns.org,
        billing_email="billing@acme.test",
        company_name="Acme Corp Ltd",
        address="1 Main St",
        tax_id="GB123456",
    )
    assert events(ns.org, "billing.settings_updated").count() == 1


def test_bad_billing_details_change_nothing(org_setup, login):
    ns = org_setup
    with pytest.raises(ValidationFailed) as exc:
        services.billing_settings_update(actor=ns.owner, org=ns.org, billing_email="")
    assert "billing_email" in exc.value.fields
    response = login(ns.owner).post(
        reverse("billing:settings", args=[ns.org.slug]),
        {"billing_email": "x@y.test", "tax_id": "bad id!"},
    )
    assert response.status_code == 422
    assert BillingAccount.objects.get(organization=ns.org).billing_email == "olivia@acme.test"
    assert not events(ns.org, "billing.settings_updated").exists()


def test_billing_details_page_saves(org_setup, login):
    ns = org_setup
    response = login(ns.owner).post(
        reverse("billing:settings", args=[ns.org.slug]),
        {"billing_email": "ap@acme.test", "company_name": "Acme", "address": "", "tax_id": ""},
    )
    assert response.status_code == 302
    assert BillingAccount.objects.get(organization=ns.org).billing_email == "ap@acme.test"


# --- pages: who may see them ----------------------------------------------------------------


def billing_urls(ns, pm_id=1):
    slug = ns.org.slug
    return [
        ("get", reverse("billing:overview", args=[slug])),
        ("get", reverse("billing:plan_change", args=[slug, "team"])),
        ("post", reverse("billing:plan_change", args=[slug, "team"])),
        ("post", reverse("billing:settings", args=[slug])),
        ("post", reverse("billing:payment_method_add", args=[slug])),
        ("post", reverse("billing:payment_method_default", args=[slug, pm_id])),
        ("post", reverse("billing:payment_method_remove", args=[slug, pm_id])),
    ]


@pytest.mark.parametrize("who", ["admin", "member"])
def test_non_owners_get_403_on_every_billing_page(org_setup, login, who):
    ns = org_setup
    pm = add_card(ns)
    client = login(getattr(ns, who))
    for method, url in billing_urls(ns, pm.pk):
        response = getattr(client, method)(
            url, {"number": VISA, "cvc": "123"} if method == "post" else None
        )
        assert response.status_code == 403, url
        assert b"owner" in response.content
    assert PaymentMethod.objects.count() == 1
    assert BillingAccount.objects.get(organization=ns.org).plan.code == "free"


def test_non_members_get_404_on_every_billing_page(org_setup, login):
    ns = org_setup
    pm = add_card(ns)
    client = login(ns.stranger)
    for method, url in billing_urls(ns, pm.pk):
        assert getattr(client, method)(url).status_code == 404, url


def test_billing_tab_only_for_owners(org_setup, login):
    ns = org_setup
    url = reverse("orgs:overview", args=[ns.org.slug])
    billing = reverse("billing:overview", args=[ns.org.slug]).encode()
    assert billing in login(ns.owner).get(url).content
    assert billing not in login(ns.admin).get(url).content


def test_overview_page_shows_plan_usage_cards_and_details(
    org_setup, login, django_assert_max_num_queries
):
    ns = org_setup
    add_card(ns)
    client = login(ns.owner)
    with django_assert_max_num_queries(20):
        response = client.get(reverse("billing:overview", args=[ns.org.slug]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-limit="workspaces"' in html and "2 of 5" in html
    assert "3 of 25" in html  # three members, no pending invitations
    assert 'data-plan="business"' in html and "Upgrade to Team" in html
    assert "Visa •••• 4242" in html
    assert 'value="olivia@acme.test"' in html


def test_inviting_allows_the_last_seat_and_refuses_one_more(org_setup):
    from config.roles import Role
    from members.invitations import member_invite
    from members.models import Invitation

    ns = org_setup  # owner, admin, member: 3 seats taken
    Plan.objects.filter(code="free").update(max_members=5)
    member_invite(
        actor=ns.admin,
        org=ns.org,
        emails=["d@acme.test", "e@acme.test"],
        org_role=Role.MEMBER,
        grants={},
    )
    with pytest.raises(LimitExceeded) as exc:
        member_invite(
            actor=ns.admin, org=ns.org, emails=["f@acme.test"], org_role=Role.MEMBER, grants={}
        )
    assert exc.value.code == "plan_limit_members"
    assert "Free plan allows 5 members" in exc.value.message
    assert "3 members and 2 pending invitations" in exc.value.message
    assert reverse("billing:overview", args=[ns.org.slug]) in exc.value.message
    assert Invitation.objects.filter(organization=ns.org).count() == 2
