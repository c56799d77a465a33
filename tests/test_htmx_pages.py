"""Every page that HTMX swaps: the fragment for a swap, the whole page for a history restore.

htmx 2 sends `HX-Request` together with `HX-History-Restore-Request` when Back misses its
history cache; answering that with a fragment would replace the whole page with a bare region.
"""

import pytest
from django.urls import reverse

from tests.factories import SyncFactory

SWAP = {"HTTP_HX_REQUEST": "true"}
RESTORE = {"HTTP_HX_REQUEST": "true", "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}


def _pages(s):
    sync = SyncFactory(workspace=s.ws_a)
    slug = s.org.slug
    return {
        "members directory": reverse("org_members:directory", args=[slug]),
        "audit log": reverse("audit:log", args=[slug]),
        "usage": reverse("orgs:usage", args=[slug]),
        "governance": reverse("orgs:governance", args=[slug]),
        "billing overview": reverse("billing:overview", args=[slug]),
        "plan change": reverse("billing:plan_change", args=[slug, "team"]),
        "api tokens": reverse("members:tokens"),
        "sync runs": reverse("workspaces:sync_runs", args=[s.ws_a.slug, sync.public_id]),
    }


PAGES = [
    "members directory",
    "audit log",
    "usage",
    "governance",
    "plan change",
    "api tokens",
    "sync runs",
]


@pytest.mark.parametrize("page", PAGES)
def test_swap_gets_the_fragment_history_restore_the_page_and_both_vary(org_setup, login, page):
    s = org_setup
    url = _pages(s)[page]
    client = login(s.owner)

    full = client.get(url)
    swap = client.get(url, **SWAP)
    restore = client.get(url, **RESTORE)

    assert full.status_code == swap.status_code == restore.status_code == 200
    assert b"<html" in full.content
    assert b"<html" not in swap.content, "an HTMX swap gets only the region it replaces"
    assert b"<html" in restore.content, "a history restore gets the whole page"
    for response in (full, swap, restore):
        vary = [v.strip().lower() for v in response.get("Vary", "").split(",")]
        assert "hx-request" in vary


def test_billing_overview_page_varies_on_hx_request(org_setup, login):
    s = org_setup
    response = login(s.owner).get(_pages(s)["billing overview"], **RESTORE)
    assert b"<html" in response.content
    assert "HX-Request" in response["Vary"]
