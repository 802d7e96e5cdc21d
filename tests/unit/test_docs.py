"""A fresh clone is self-contained: no file cites a document outside the repo, and every
citation of the project's own docs (docs/*.md, "docs/compute.md §X") resolves."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# Names of the design documents that lived beside the project; spelled in pieces so this
# file does not cite them itself.
OUTSIDE = re.compile(
    "|".join(
        [
            r"SECURITY\.md",
            "COMPUTE" + "-SPEC",
            r"ARCHITECTURE\.md",
            "STACK" + "-NOTES",
            r"\.\./shared\b",
            "/work/" + r"shared\b",
        ]
    )
)
DOC_CITE = re.compile(r"\bdocs/([A-Za-z0-9_.-]+\.md)\b")
SECTION = re.compile(r"§\s?(\d+[a-z]?(?:\.\d+)?)(?:\(([a-z])\))?")
HEADING = re.compile(r"^(#+)\s+(\S+)")
ITEM = re.compile(r"^\s*(?:[-*]\s+)?\*{0,2}\(([a-z])\)")
SKIP_DIRS = {".git", ".venv", ".venv-peers", "target", "node_modules", "__pycache__"}


@cache
def project_files() -> tuple[Path, ...]:
    """Tracked files plus new ones not ignored (what the next commit can hold)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
        ]
    return tuple(ROOT / n for n in sorted(names) if (ROOT / n).is_file())


def text_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    if b"\0" in raw[:8192]:
        return []  # binary
    return raw.decode("utf-8", errors="replace").splitlines()


@cache
def compute_sections() -> dict[str, list[str]]:
    """Section id (first word of a heading, trailing dot dropped) -> the lines under it."""
    sections: dict[str, list[str]] = {}
    body: list[str] | None = None
    for line in (DOCS / "compute.md").read_text(encoding="utf-8").splitlines():
        m = HEADING.match(line)
        if m:
            body = sections.setdefault(m.group(2).rstrip(".").lstrip("§"), [])
            continue
        if body is not None:
            body.append(line)
    return sections


def compute_citations(line: str) -> list[tuple[str, str | None]]:
    """The § references of a line that cites docs/compute.md (every § after the mention)."""
    at = line.find("docs/compute.md")
    if at < 0:
        return []
    return [(m.group(1), m.group(2)) for m in SECTION.finditer(line, at)]


def missing_section(section: str, item: str | None) -> str | None:
    body = compute_sections().get(section)
    if body is None:
        return f"no section {section}"
    if item is not None and not any(
        (m := ITEM.match(line)) and m.group(1) == item for line in body
    ):
        return f"section {section} has no item ({item})"
    return None


def test_no_file_cites_documents_outside_the_repo() -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}"
        for path in project_files()
        for n, line in enumerate(text_lines(path), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "cite docs/ instead of documents outside the repo:\n" + "\n".join(hits)


def test_the_docs_exist_and_the_index_lists_them() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for name in ("architecture.md", "security.md", "compute.md"):
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
        assert f"({name})" in index, f"docs/README.md does not link {name}"


def test_every_cited_doc_exists() -> None:
    missing = [
        f"{path.relative_to(ROOT)}:{n}: docs/{m.group(1)}"
        for path in project_files()
        for n, line in enumerate(text_lines(path), 1)
        for m in DOC_CITE.finditer(line)
        if not (DOCS / m.group(1)).is_file()
    ]
    assert not missing, "cited docs that do not exist:\n" + "\n".join(missing)


def test_every_cited_compute_section_exists() -> None:
    broken = [
        f"{path.relative_to(ROOT)}:{n}: §{section}{f'({item})' if item else ''}: {why}"
        for path in project_files()
        for n, line in enumerate(text_lines(path), 1)
        for section, item in compute_citations(line)
        if (why := missing_section(section, item)) is not None
    ]
    assert not broken, "citations of docs/compute.md that do not resolve:\n" + "\n".join(broken)


def test_compute_doc_keeps_the_numbering_the_code_uses() -> None:
    # Sections 0..8 are cited by number; §2.5(c) is the shape of a deep citation.
    for section in [str(i) for i in range(9)] + ["3a", "3b", "3c"]:
        assert section in compute_sections(), f"docs/compute.md lacks section {section}"
    assert missing_section("2.5", "c") is None
    assert missing_section("2.5", "z") is not None
    assert compute_citations("see docs/compute.md §2.5(c) and §1") == [("2.5", "c"), ("1", None)]


def test_security_doc_keeps_the_headings_the_team_fills_in() -> None:
    headings = {
        line.strip()
        for line in (DOCS / "security.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }
    for heading in (
        "## SQL explorer sandbox",
        "## Runaway query limits",
        "## Login throttling and device cookies",
        "## Client IP and trusted proxies",
        "## Look-alike usernames",
        "## Session tokens",
        "## Request bodies and security headers",
        "## Privacy: export and erasure",
        "## Market data validation",
        "## Rendering user text",
        "## Fuzz and browser suites",
    ):
        assert heading in headings, f"docs/security.md lacks {heading!r}"


TEST_CITE = re.compile(r"(tests/[\w/]+\.py)|::(\w+)")


def cited_tests(path: Path) -> list[tuple[str, str]]:
    """(file, test) pairs cited as `tests/x.py::name`; a bare `::name` belongs to the test
    file named last before it."""
    out: list[tuple[str, str]] = []
    last: str | None = None
    for m in TEST_CITE.finditer("\n".join(text_lines(path))):
        if m.group(1):
            last = m.group(1)
        elif last is not None:
            out.append((last, m.group(2)))
    return out


def test_every_cited_test_exists() -> None:
    """The security model and the README name the tests that prove each control: each
    named test must exist, so the docs cannot drift from the suite."""
    missing = []
    for doc in (DOCS / "security.md", ROOT / "README.md"):
        pairs = cited_tests(doc)
        assert pairs, f"{doc.name} cites no test"
        for file, name in pairs:
            target = ROOT / file
            if not target.is_file() or not re.search(
                rf"^\s*(?:async )?def {name}\(", target.read_text(encoding="utf-8"), re.M
            ):
                missing.append(f"{doc.name}: {file}::{name}")
    assert not missing, "cited tests that do not exist:\n" + "\n".join(missing)
