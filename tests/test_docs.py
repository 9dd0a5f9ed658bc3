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


def module_lists(file: str, /) -> dict[str, list]:
    """The module-level list constants of ``tests/file`` (literals, names of other such
    lists and their ``+``), read without importing the module."""
    tree = ast.parse((TESTS / file).read_text(encoding="utf-8"))
    out: dict[str, list] = {}

    def value(node):
        if isinstance(node, ast.Name):
            return out[node.id]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return value(node.left) + value(node.right)
        return ast.literal_eval(node)

    for n in tree.body:
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            try:
                got = value(n.value)
            except (ValueError, KeyError, TypeError, SyntaxError):
                continue
            if isinstance(got, list):
                out[n.targets[0].id] = got
    return out


def _crash_cases() -> dict[str, list]:
    """``INGEST_CASES`` and ``FEATURES_CASES`` of test_crash.py."""
    lists = module_lists("test_crash.py")
    return {k: lists[k] for k in ("INGEST_CASES", "FEATURES_CASES") if k in lists}


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


def _row(what: str, /) -> str:
    """The README Validation row whose first column starts with ``what``."""
    (row,) = [text for claim, text in CLAIMS if claim.startswith(what)]
    return row


def test_the_file_counts_of_validation_rows_are_their_tests_lists():
    """'11 real files' is test_c3d.py's EZC3D_FILES; 'all 19 files' and '11 C3D systems' are
    test_readers.py's ALL and C3D."""
    c3d, readers = module_lists("test_c3d.py"), module_lists("test_readers.py")
    n = int(re.search(r"\((\d+) real files", _row("C3D markers, analogs")).group(1))
    assert n == len(c3d["EZC3D_FILES"]) == len(set(c3d["EZC3D_FILES"]))
    row = _row("Every reader behind")
    assert int(re.search(r"\((\d+) C3D systems", row).group(1)) == len(readers["C3D"])
    assert int(re.search(r"holds on all (\d+) files", row).group(1)) == len(set(readers["ALL"]))


def test_the_real_c3d_count_of_the_readme_is_the_folders(real_dir):
    """'Every real C3D (30 files' is every .c3d of the real data's c3d/ and edge_cases/, the
    list test_c3d_real_files.py runs one case per file on."""
    n = int(re.search(r"\((\d+) files", _row("Every real C3D")).group(1))
    found = [p for d in ("c3d", "edge_cases") for p in (real_dir / d).glob("*")]
    assert n == len([p for p in found if p.suffix.lower() == ".c3d"])
