"""CSV exports never hand a spreadsheet a formula (OWASP CSV injection): a member named
`=HYPERLINK("http://x","y")` reaches the audit export, the usage CSV and the access report CSV
as text with a leading quote, through the one writer in config/csvsafe.py."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.utils import timezone

from billing.models import DailyWorkspaceUsage
from config.csvsafe import FORMULA_STARTS, safe_cell
from orgs.services import workspace_create_linked

FORMULA = '=HYPERLINK("http://x","y")'
NEUTRALISED = "'" + FORMULA


def _cells(response) -> list[str]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return [cell for row in csv.reader(io.StringIO(body.decode())) for cell in row]


@pytest.fixture
def formula_member(org_setup):
    """The org admin calls herself a formula, then acts: her name lands in the audit log."""
    org_setup.owner.full_name = FORMULA
    org_setup.owner.save(update_fields=["full_name"])
    org_setup.admin.full_name = FORMULA
    org_setup.admin.save(update_fields=["full_name"])
    # An audited change by the owner, in a workspace with a formula for a name too.
    ws = workspace_create_linked(actor=org_setup.owner, org=org_setup.org, name=FORMULA)
    DailyWorkspaceUsage.objects.create(
        workspace=ws, day=timezone.now().date(), runs=1, succeeded=1, rows_processed=5
    )
    return org_setup


def test_audit_export_neutralises_formulas(formula_member, login):
    s = formula_member
    cells = _cells(login(s.owner).get(f"/o/{s.org.slug}/audit/export/?format=csv"))
    assert NEUTRALISED in cells  # the actor and the workspace label
    assert FORMULA not in cells
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]


def test_usage_csv_neutralises_formulas(formula_member, login):
    s = formula_member
    cells = _cells(login(s.owner).get(f"/o/{s.org.slug}/usage/?days=7&format=csv"))
    assert NEUTRALISED in cells and FORMULA not in cells


def test_access_report_csv_neutralises_formulas(formula_member, login):
    s = formula_member
    url = f"/o/{s.org.slug}/audit/access/?workspace={s.ws_a.public_id}&format=csv"
    cells = _cells(login(s.owner).get(url))
    assert NEUTRALISED in cells and FORMULA not in cells


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_gets_a_quote(start):
    assert safe_cell(start + "1+1") == "'" + start + "1+1"


@pytest.mark.parametrize("value", ["Acme", "", "'=already quoted", " =x", 42, -1, 0.5, None])
def test_plain_text_and_numbers_stay_as_they_are(value):
    assert safe_cell(value) == value


def test_no_csv_writer_bypasses_the_safe_one():
    """Every download goes through config.csvsafe.csv_writer: no other csv.writer in the app."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] in {"tests", ".venv", "static"} or rel == Path("config/csvsafe.py"):
            continue
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text()):
            offenders.append(str(rel))
    assert offenders == []
