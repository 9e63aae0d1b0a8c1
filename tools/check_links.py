"""Check that every relative link and #anchor in README.md and docs/*.md resolves.

A link to a file must name an existing file or folder (relative to the page it is in);
a `#anchor` must match a heading of the target page under GitHub's slug rules (lower case,
punctuation dropped except `-` and `_`, spaces to `-`, `-1`, `-2`... for repeats) or an
explicit `<a id="...">` / `<a name="...">`. Links to other sites (http, https, mailto) are
not fetched. Links inside code blocks and inline code are ignored.

    uv run python tools/check_links.py [ROOT]

Prints one line per broken link and exits 1 when there is one, else 0.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # a link's target, even when its text wraps
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
EXTERNAL = ("http://", "https://", "mailto:")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.split("\n"), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(EXPLICIT_ANCHOR.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def pages(root: Path) -> list[Path]:
    found = [root / "README.md"] if (root / "README.md").is_file() else []
    return found + sorted((root / "docs").glob("*.md"))


def broken_links(root: Path) -> list[str]:
    problems = []
    cache: dict[Path, set[str]] = {}
    for page in pages(root):
        for number, line in prose_lines(page.read_text(encoding="utf-8")):
            line = INLINE_CODE.sub("", line)
            for target in LINK.findall(line):
                if target.startswith(EXTERNAL):
                    continue
                where = f"{page.relative_to(root)}:{number}: {target}"
                file_part, _, anchor = target.partition("#")
                dest = (page.parent / file_part).resolve() if file_part else page.resolve()
                if not dest.exists():
                    problems.append(f"{where}: no such file")
                    continue
                if not anchor:
                    continue
                if dest.is_dir() or dest.suffix.lower() != ".md":
                    problems.append(f"{where}: an anchor into a file that is not Markdown")
                    continue
                if dest not in cache:
                    cache[dest] = anchors(dest)
                if anchor not in cache[dest]:
                    problems.append(f"{where}: no heading or anchor '#{anchor}' there")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent
    problems = broken_links(root)
    for problem in problems:
        print(problem)
    checked = ", ".join(str(p.relative_to(root)) for p in pages(root))
    print(f"{len(problems)} broken link(s) in {checked}" if problems
          else f"all links resolve ({checked})", file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
