"""The README's claims name their tests, and those tests exist.

Every bullet of "What you can rely on" and every row of the "Validation" table names the
tests that fail if the claim is false (``test_x.py::test_name``, a bare ``::test_name``
continuing the last file named, or a whole ``test_x.py``); docs/testing.md repeats them as a
"claim → test" table for reviewers. A renamed or deleted test, or a new claim without a
test, fails here instead of leaving the README citing nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
_REF = re.compile(r"`((?:test_\w+\.py)?(?:::\w+)?)`")


def cited_tests(text: str, /) -> list[tuple[str, str | None]]:
    """``(file, test or None)`` for every test reference in ``text``, in order."""
    out, current = [], None
    for m in _REF.finditer(text):
        file, _, test = m.group(1).partition("::")
        current = file or current
        if current and (file or test):
            out.append((current, test or None))
    return out


def missing_tests(refs: list[tuple[str, str | None]], /, tests: Path = TESTS) -> list[str]:
    """The references in ``refs`` naming no file in ``tests`` or no test function in it."""
    defined: dict[str, set[str]] = {}
    missing = []
    for file, test in refs:
        path = tests / file
        if not path.is_file():
            missing.append(file)
            continue
        if file not in defined:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            defined[file] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if test is not None and test not in defined[file]:
            missing.append(f"{file}::{test}")
    return missing


def _section(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end)]


def _claims() -> list[tuple[str, str]]:
    """``(claim, its text)`` for each README bullet and Validation row."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rely = _section(readme, "## What you can rely on", "## Validation")
    table = _section(readme, "## Validation", "## Performance")
    out = [(re.match(r"\*\*(.+?)\*\*", b).group(1), b) for b in re.split(r"\n- ", rely)[1:]]
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith(("| what |", "|---")):
            out.append((line.split("|")[1].strip(), line))
    return out


def test_the_checker_finds_a_missing_test_and_a_missing_file():
    text = "(`test_docs.py::test_no_such_test`, `::cited_tests`, `test_nowhere.py`)"
    refs = cited_tests(text)
    assert refs == [
        ("test_docs.py", "test_no_such_test"),
        ("test_docs.py", "cited_tests"),
        ("test_nowhere.py", None),
    ]
    assert missing_tests(refs) == ["test_docs.py::test_no_such_test", "test_nowhere.py"]


CLAIMS = _claims()


@pytest.mark.parametrize(("claim", "text"), CLAIMS, ids=[c[:50] for c, _ in CLAIMS])
def test_every_readme_claim_names_tests_that_exist(claim, text):
    refs = cited_tests(text)
    assert refs, f"README claim {claim!r} names no test"
    assert missing_tests(refs) == [], claim


def test_every_test_in_the_claim_table_of_docs_testing_exists():
    doc = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    table = _section(doc, "## Claims and their tests", "## The install")
    refs = cited_tests(table)
    assert len(refs) >= len(CLAIMS)
    assert missing_tests(refs) == []


def test_the_claim_table_of_docs_testing_lists_each_claims_readme_tests():
    """docs/testing.md's row for a claim names the tests its README text names, no fewer."""
    doc = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    table = _section(doc, "## Claims and their tests", "## The install")
    rows = {}
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| claim (README section)"):
            claim = re.sub(r" \((?:rely on|Validation)\)$", "", line.split(" | ")[0][2:])
            rows[claim] = set(cited_tests(line))
    for claim, text in CLAIMS:
        key = claim.rstrip(".")
        assert key in rows, f"docs/testing.md has no row for the README claim {key!r}"
        assert set(cited_tests(text)) <= rows[key], (key, set(cited_tests(text)) - rows[key])


def _crash_cases() -> dict[str, list]:
    """``INGEST_CASES`` and ``FEATURES_CASES`` of test_crash.py, read without importing it."""
    tree = ast.parse((TESTS / "test_crash.py").read_text(encoding="utf-8"))
    return {
        n.targets[0].id: ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign)
        and isinstance(n.targets[0], ast.Name)
        and n.targets[0].id in ("INGEST_CASES", "FEATURES_CASES")
    }


def test_the_kill_counts_the_readme_states_are_test_crashs():
    """'N cases, M kills of ingest and features' is what test_crash.py runs: a case kills
    its command at each of its points in turn, so the kills are the points summed."""
    cases = _crash_cases()
    assert sorted(cases) == ["FEATURES_CASES", "INGEST_CASES"]
    all_cases = cases["INGEST_CASES"] + cases["FEATURES_CASES"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"(\d+) cases, (\d+) kills of ingest and features", readme)
    assert m, "the README's 'Kill it any time' no longer states its counts"
    stated = int(m.group(1)), int(m.group(2))
    assert stated == (len(all_cases), sum(len(points) for points, _ in all_cases))
