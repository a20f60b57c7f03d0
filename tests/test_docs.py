"""The README stays an entry point: measured figures live once, in docs/, and every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A measured figure: a number with a unit (12.5 ms, 59.4 MB, 41.5 img/s, 3.75x, 290 MB).
FIGURE = re.compile(r"\b\d[\d,]*(?:\.\d+)?\s?(?:ms|MB|GB|MiB|GiB|img/s|req/s|x)(?![\w/])")


def figures(text: str) -> set[str]:
    return {re.sub(r"\s", "", m) for m in FIGURE.findall(text)}


def test_no_measured_figure_is_both_in_the_readme_and_in_docs() -> None:
    readme = figures((ROOT / "README.md").read_text())
    docs = set().union(*(figures(p.read_text()) for p in (ROOT / "docs").glob("*.md")))
    assert readme & docs == set()


def test_readme_is_an_entry_point_not_a_manual() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 170


def test_relative_links_in_readme_and_docs_resolve() -> None:
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # no headings inside code blocks
    return {anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_links_to_a_section_name_a_heading_that_exists() -> None:
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target, fragment in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", page.read_text()):
            linked = (page.parent / target) if target else page
            if "://" not in target and linked.suffix == ".md" and fragment not in anchors(linked):
                broken.append(f"{page.relative_to(ROOT)} -> {target}#{fragment}")
    assert broken == []
