"""A test is skipped only when an outside program is missing (CONVENTIONS: a missing URL or
attribute fails a test, never skips it). This walks the tests' own source for every skip."""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SKIP = re.compile(r"pytest\.(skip\(|mark\.skip\(|mark\.skipif\(|importorskip\(|mark\.xfail)")
# The outside programs a skip may name (its reason text): nothing else justifies one.
OUTSIDE_PROGRAMS = ("Redis", "PostgreSQL", "Chromium", "RUN_PG_RESTART")


def test_every_skip_names_a_missing_outside_program():
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        if path == Path(__file__).resolve():
            continue
        text = path.read_text()
        for match in SKIP.finditer(text):
            reason = text[match.start() : match.start() + 300]
            named = [p for p in OUTSIDE_PROGRAMS if p in reason]
            found.append((path.relative_to(TESTS).as_posix(), bool(named)))
    assert found, "the walk found no skips at all: the pattern is broken"
    assert [name for name, ok in found if not ok] == []
    # Nor is a missing URL or attribute swallowed by an except.
    swallowed = re.compile(r"except\s*\(?[^:\n]*\b(NoReverseMatch|AttributeError)\b")
    hiding = [p.name for p in TESTS.rglob("*.py") if swallowed.search(p.read_text())]
    assert hiding == []
