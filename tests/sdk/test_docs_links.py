"""Every relative link in README.md and docs/*.md resolves: the file (or directory) exists, and a
`#fragment` names a heading of the target as GitHub renders its anchors. Links inside code blocks
and code spans are text, not links, and are not checked; absolute URLs (http:, https:, mailto:)
are outside the repository."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]

INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str, blank_code_spans: bool = True) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1, with code spans blanked out unless
    asked to keep them (a heading's anchor includes their text)."""
    lines = []
    in_fence = False
    for number, line in enumerate(text.split("\n"), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append((number, re.sub(r"`[^`]*`", "``", line) if blank_code_spans else line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation other than `-` and
    `_` removed, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file; a repeated heading gets -1, -2 … as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8"), blank_code_spans=False):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for pattern in (INLINE_LINK, HTML_LINK):
            found.extend((number, match.group(1)) for match in pattern.finditer(line))
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where}: no such file")
        elif fragment:
            if resolved.suffix != ".md":
                problems.append(f"{where}: a fragment into a file that is not Markdown")
            elif unquote(fragment).lower() not in anchors(resolved):
                problems.append(f"{where}: no heading with that anchor in {resolved.relative_to(ROOT)}")
    return problems


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    files = markdown_files()
    assert len(files) >= 10, "the README and the reference under docs/"
    checked = sum(len(links(path)) for path in files)
    assert checked >= 20, f"only {checked} links found: the extraction is broken"
    problems = [problem for path in files for problem in broken_links(path)]
    assert problems == [], "\n".join(problems)


def test_the_readme_links_every_reference_page_in_docs() -> None:
    readme_targets = {target.partition("#")[0] for _, target in links(ROOT / "README.md")}
    missing = [f"docs/{page.name}" for page in sorted((ROOT / "docs").glob("*.md"))
               if f"docs/{page.name}" not in readme_targets]
    assert missing == [], f"pages under docs/ the README's map does not link: {missing}"


def test_the_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n\n## Keys, limits and `load` shedding\n\ntext\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md#keys-limits-and-load-shedding) [top](#readme) [gone](docs/b.md)\n"
        "[bad anchor](docs/a.md#nope) `[in code](docs/c.md)` <img src=\"docs/d.png\">\n"
        "```\n[in a fence](docs/e.md)\n```\n# Readme\n[web](https://example.com/x)\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    problems = broken_links(tmp_path / "README.md")
    assert [p.split(": ", 1)[1] for p in problems] == [
        "docs/b.md: no such file",
        "docs/a.md#nope: no heading with that anchor in docs/a.md",
        "docs/d.png: no such file",
    ], problems
