"""Organization › Audit Log page: access, sentences, filters, HTMX partial, cursor links."""

import re

import pytest

from config.roles import Role
from members.models import OrgMembership
from members.services import member_change_role
from tests.audit.helpers import make_event
from workspaces.models import WorkspaceMembership
from workspaces.services import workspace_member_change_role


def url(org):
    return f"/o/{org.slug}/audit/"


def test_other_org_404_member_403_admin_and_owner_200(org_setup, login):
    s = org_setup
    assert login(s.stranger).get(url(s.org)).status_code == 404
    assert login(s.member).get(url(s.org)).status_code == 403
    assert "admin role" in login(s.member).get(url(s.org)).content.decode()
    assert login(s.admin).get(url(s.org)).status_code == 200
    assert login(s.owner).get(url(s.org)).status_code == 200


def test_events_read_as_sentences_with_expandable_details(org_setup, login):
    s = org_setup
    carol_in_prod = WorkspaceMembership.objects.create(
        user=s.member, workspace=s.ws_a, role=Role.MEMBER
    )
    workspace_member_change_role(actor=s.owner, membership=carol_in_prod, role=Role.ADMIN)
    member_change_role(
        actor=s.owner,
        org=s.org,
        membership=OrgMembership.objects.get(organization=s.org, user=s.member),
        role=Role.ADMIN,
    )
    html = login(s.admin).get(url(s.org)).content.decode()
    assert "Olivia Owner changed Carol Member&#x27;s role from member to admin" in html
    assert (
        "Olivia Owner changed Carol Member&#x27;s role in Production from member to admin" in html
    )
    assert "<details>" in html and "<dt>from role</dt><dd>member</dd>" in html
    # Newest first.
    assert html.index("role from member") < html.index("role in Production")


def test_filters_apply_and_htmx_gets_only_the_events_region(org_setup, login):
    s = org_setup
    make_event(
        s.org, action="resource.created", workspace=s.ws_b, details={"resource_kind": "sync"}
    )
    client = login(s.owner)
    resp = client.get(url(s.org), {"workspace": s.ws_b.public_id, "action": "resource.*"})
    html = resp.content.decode()
    assert resp.status_code == 200
    assert html.count('data-event="') == 1 and "created the sync" in html
    partial = client.get(
        url(s.org), {"workspace": s.ws_b.public_id, "action": "resource.*"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert partial.lstrip().startswith('<div id="events">') and "<html" not in partial
    assert "created the sync" in partial
    # The export links carry the same filter.
    assert f"workspace={s.ws_b.public_id}&amp;action=resource.%2A&amp;format=csv" in partial


def test_bad_filters_show_errors_not_500(org_setup, login):
    resp = login(org_setup.owner).get(url(org_setup.org), {"since": "last tuesday", "cursor": "x"})
    assert resp.status_code == 422
    html = resp.content.decode()
    assert "Use an ISO 8601 date" in html and "Not a valid cursor" in html
    assert 'data-event="' in html  # the unfiltered events still show


def test_until_at_the_end_of_the_calendar_is_a_field_error(org_setup, login):
    client = login(org_setup.owner)
    for path in ("", "export/"):
        resp = client.get(url(org_setup.org) + path, {"until": "9999-12-31"})
        assert resp.status_code == 422, path


def test_older_link_walks_pages_with_real_hrefs(org_setup, login):
    s = org_setup
    for i in range(60):
        make_event(s.org, action="org.updated", details={"i": i})
    client = login(s.owner)
    first = client.get(url(s.org), {"action": "org.updated"}).content.decode()
    m = re.search(r'<a rel="next" href="([^"]+)" hx-get="([^"]+)"', first)
    assert m and m.group(1) == m.group(2) and "cursor=" in m.group(1)
    assert 'hx-push-url="true"' in first
    second = client.get(m.group(1).replace("&amp;", "&")).content.decode()
    ids_first = set(re.findall(r'data-event="([^"]+)"', first))
    ids_second = set(re.findall(r'data-event="([^"]+)"', second))
    assert len(ids_first) == 50 and len(ids_second) == 10 and not ids_first & ids_second
    assert 'rel="next"' not in second and "← Newest" in second


@pytest.mark.parametrize("n", [5, 60])
def test_page_query_count_does_not_grow_with_events(
    org_setup, login, django_assert_max_num_queries, n
):
    for _ in range(n):
        make_event(
            org_setup.org, action="org.updated", workspace=org_setup.ws_a, actor=org_setup.admin
        )
    client = login(org_setup.owner)
    with django_assert_max_num_queries(14):
        assert client.get(url(org_setup.org)).status_code == 200


def test_tab_shows_for_admins_only(org_setup, login):
    assert (
        'href="/o/acme-corp/audit/"' in login(org_setup.admin).get("/o/acme-corp/").content.decode()
    )
    assert (
        'href="/o/acme-corp/audit/"'
        not in login(org_setup.member).get("/o/acme-corp/").content.decode()
    )


def test_filter_choices_are_cached_and_refreshed_by_audited_changes(
    org_setup, login, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    from orgs.services import workspace_create_linked

    s = org_setup
    client = login(s.owner)
    client.get(url(s.org))  # fills the cache of drop-downs and chain status
    with django_assert_max_num_queries(8):
        assert client.get(url(s.org)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        ws = workspace_create_linked(actor=s.owner, org=s.org, name="Fresh Workspace")
    page = client.get(url(s.org)).content.decode()
    assert f'<option value="{ws.public_id}">Fresh Workspace</option>' in page
