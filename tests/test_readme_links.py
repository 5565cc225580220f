"""Every relative link and in-document anchor of README.md and docs/*.md resolves.

The README is split between README.md (for people: quick start, the first hour, operations,
reference) and docs/ (benchmarks, internals, protocol details), with links both ways. A link
to a file that is not there, or to a `#anchor` no heading of the target makes, is a dead link
on GitHub; this test finds it. Anchors follow GitHub's heading slugs: lower case, punctuation
dropped (letters, marks and digits of every script kept, so 我的图书馆 stays), spaces turned
into hyphens, a repeated slug numbered -1, -2, ….
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
# [text](target) and ![alt](target); the text may run over a line break, the target may not.
LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def without_code(text: str) -> str:
    """The text with fenced blocks and code spans blanked (links there are not links)."""
    text = FENCE.sub("", text)
    return CODE_SPAN.sub("", text)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (github-slugger's rule)."""
    text = INLINE_LINK.sub(r"\1", heading)
    kept = []
    for char in text.lower():
        if char in " -_" or unicodedata.category(char)[0] in "LMN":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(text):
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def dead_links(path: Path) -> list[str]:
    """Each link of `path` that does not resolve, with why."""
    text = without_code(path.read_text(encoding="utf-8"))
    problems = []
    for match in LINK.finditer(text):
        target = match.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            problems.append(f"{path.name}: {target}: no file {file_part}")
            continue
        if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{path.name}: {target}: no heading makes #{anchor}")
    # A "](" the link pattern did not take is a link it cannot check (a target broken over
    # a line, a space in it): say so rather than pass it silently.
    checked = sum(1 for _ in LINK.finditer(text))
    if text.count("](") != checked:
        problems.append(f"{path.name}: {text.count('](') - checked} links not well formed")
    return problems


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    assert dead_links(path) == []


def test_the_docs_are_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in readme, f"README.md never links docs/{doc.name}"


def test_slugs_follow_github() -> None:
    assert github_slug("Health and metrics (`[ops]`)") == "health-and-metrics-ops"
    assert github_slug("Z39.50 (partner libraries)") == "z3950-partner-libraries"
    assert (
        github_slug("The readers' portal (web OPAC and 我的图书馆 My Library)")
        == "the-readers-portal-web-opac-and-我的图书馆-my-library"
    )
    assert (
        github_slug("Search as readers type it (free text, pinyin, kana readings)")
        == "search-as-readers-type-it-free-text-pinyin-kana-readings"
    )


def test_a_dead_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## 日文书目 (Japanese)\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Twice\n\n## Twice\n\n"
        "[ok](other.md#日文书目-japanese) [ok](#twice-1) [ok](#page)\n"
        "[gone](missing.md) [bad anchor](other.md#other-1) [bad](#twice-2)\n"
        "`[in code](nowhere.md)`\n"
        "[broken\ntext](other.md#other) [broken target](other.md\n#other)\n",
        encoding="utf-8",
    )
    assert dead_links(page) == [
        "page.md: missing.md: no file missing.md",
        "page.md: other.md#other-1: no heading makes #other-1",
        "page.md: #twice-2: no heading makes #twice-2",
        "page.md: 1 links not well formed",
    ]
