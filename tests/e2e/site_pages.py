"""Every main page of the demo data, per demo person, and the checks each page must pass in
Chromium: no Content-Security-Policy violation, no page-level horizontal scroll at phone
width, no serious or critical axe-core violation.

Used by tests/e2e/test_pages.py; also runnable by hand against `make run`'s demo data.
"""

from __future__ import annotations

from config.roles import Role
from members.models import OrgMembership, User
from orgs.models import Organization
from workspaces.models import Sync, Workspace, WorkspaceMembership

DEMO_PEOPLE = ("alice", "bob", "carol", "dave")  # owner, admin, member, member (seed_demo)
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

# Records every CSP violation the page reports, before any page script runs.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') +
    (e.sourceFile ? ' at ' + e.sourceFile + ':' + e.lineNumber : '') +
    (e.sample ? ' [' + e.sample + ']' : ''));
});
"""


# Rules the issue named, failed whatever axe's impact rating (some are "moderate"/"minor").
ALWAYS_REQUIRED = {
    "color-contrast",
    "link-in-text-block",
    "empty-table-header",
    "aria-prohibited-attr",
    "landmark-unique",
    "landmark-no-duplicate-banner",
    "landmark-no-duplicate-main",
    "bypass",
    "skip-link",
}


def pages_for(email: str) -> list[tuple[str, str]]:
    """(name, path) of every main page this person can open in the demo data."""
    user = User.objects.get(email=email)
    org = Organization.objects.filter(memberships__user=user, deleted_at__isnull=True).first()
    pages = [
        ("home", "/"),
        ("account", "/account/"),
        ("account-password", "/account/password/"),
        ("account-tokens", "/account/tokens/"),
        ("account-two-factor", "/account/two-factor/"),
    ]
    grants = (
        WorkspaceMembership.objects.filter(user=user)
        .select_related("workspace")
        .order_by("-role", "workspace__name")
    )
    grant = grants.first()
    if grant is not None:
        ws = grant.workspace
        base = f"/w/{ws.slug}/"
        pages += [
            ("ws-overview", base),
            ("ws-members", base + "members/"),
            ("ws-warehouses", base + "warehouses/"),
            ("ws-models", base + "models/"),
            ("ws-destinations", base + "destinations/"),
            ("ws-syncs", base + "syncs/"),
        ]
        sync = Sync.objects.filter(workspace=ws).order_by("pk").first()
        if sync is not None:
            pages.append(("ws-sync-runs", f"{base}syncs/{sync.public_id}/runs/"))
            if grant.role >= Role.ADMIN:
                pages.append(("ws-sync-edit", f"{base}syncs/{sync.public_id}/"))
        if grant.role >= Role.ADMIN:
            pages.append(("ws-sync-new", base + "syncs/new/"))
        else:
            pages.append(("ws-forbidden", base + "syncs/new/"))  # 403 inside the workspace
        if grant.role >= Role.OWNER:
            pages.append(("ws-delete", base + "delete/"))
            if sync is not None:
                pages.append(("ws-sync-delete", f"{base}syncs/{sync.public_id}/delete/"))
        pages.append(("method-not-allowed", base + "members/add/"))  # POST-only
    if org is not None:
        role = OrgMembership.objects.get(organization=org, user=user).role
        o = f"/o/{org.slug}/"
        pages += [
            ("org-overview", o),
            ("org-workspaces", o + "workspaces/"),
            ("org-members", o + "members/"),
            ("org-invitations", o + "members/invitations/"),
        ]
        other = OrgMembership.objects.filter(organization=org).exclude(user=user).first()
        pages.append(("org-member-self", f"{o}members/{_membership_id(org, user)}/"))
        if role >= Role.ADMIN:
            pages += [
                ("org-member-other", f"{o}members/{other.public_id}/"),
                ("org-invite", o + "members/invite/"),
                ("org-usage", o + "usage/"),
                ("org-usage-365", o + "usage/?days=365"),
                ("org-audit", o + "audit/"),
                ("org-removed", o + "members/removed/"),
                ("org-audit-search", o + "audit/?q=member"),
                ("org-audit-event", f"{o}audit/events/{_latest_event(org)}/"),
                ("org-access-report", o + "audit/access/"),
                (
                    "org-access-report-ws",
                    f"{o}audit/access/?workspace={_first_ws(org).public_id}",
                ),
            ]
        else:
            pages.append(("org-forbidden", o + "usage/"))  # 403 inside the org layout
        if role >= Role.OWNER:
            pages += [
                ("org-governance", o + "governance/"),
                ("org-billing", o + "billing/"),
                ("org-reviews", o + "reviews/"),
                ("org-reviews-new", o + "reviews/new/"),
                ("org-sso", o + "sso/"),
                ("org-audit-streaming", o + "audit/streaming/"),
                ("org-settings", o + "settings/"),
            ]
            from billing.models import Invoice

            invoice = Invoice.objects.filter(organization=org).first()
            if invoice is not None:
                pages.append(("org-invoice", f"{o}billing/invoices/{invoice.number}/"))
            ws = Workspace.objects.filter(organization=org).order_by("name").first()
            pages.append(("org-unlink", f"{o}workspaces/{ws.public_id}/unlink/"))
    else:
        pages.append(("org-create", "/orgs/new/"))  # Create organization, from a workspace
    pages.append(("not-found", "/o/no-such-org/"))
    return pages


def _first_ws(org):
    return Workspace.objects.filter(organization=org).order_by("name").first()


def _latest_event(org) -> str:
    from audit.models import AuditEvent

    return AuditEvent.objects.filter(organization=org).order_by("-id").first().public_id


def _membership_id(org, user) -> str:
    return OrgMembership.objects.get(organization=org, user=user).public_id


SIGNED_OUT_PAGES = [
    ("signin", "/signin/"),
    ("signup", "/signup/"),
    ("password-reset", "/password-reset/"),
    ("password-reset-sent", "/password-reset/sent/"),
    ("sso-start", "/sso/"),
]


def check_page(page, axe, path: str, *, phone: bool, screenshot=None) -> list[str]:
    """Open path in page (CSP listener installed) and return what is wrong with it."""
    problems = []
    response = page.goto(path)
    page.wait_for_load_state("load")
    if response is None:
        return [f"{path}: no response"]
    if response.status >= 500:
        problems.append(f"{path}: HTTP {response.status}")
    if "content-security-policy" not in response.headers:
        problems.append(f"{path}: no Content-Security-Policy header")
    violations = page.evaluate("window.__cspViolations || []")
    problems += [f"{path}: CSP violation {v}" for v in violations]
    if phone:
        width = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1]:
            problems.append(f"{path}: page scrolls sideways at {width[1]}px ({width[0]}px wide)")
    if screenshot:
        page.screenshot(path=str(screenshot), full_page=True)
    if axe is not None:
        results = axe.run(page)
        for v in results.response["violations"]:
            if v["impact"] in ("serious", "critical") or v["id"] in ALWAYS_REQUIRED:
                targets = ", ".join(str(n["target"]) for n in v["nodes"][:3])
                problems.append(f"{path}: axe {v['impact']} {v['id']}: {v['help']} ({targets})")
    return problems
