"""Every relative link of the guide resolves: README.md, BENCHMARKS.md and docs/**/*.md.

A link is markdown's ``[text](path)`` or ``![alt](path)``, with an optional ``#anchor``; it must
name a file or folder of the repository (relative to the page), and an anchor into a markdown
page must be one of that page's headings, slugged as GitHub slugs them. Links with a scheme
(``https:``, ``mailto:``) and links inside code are not checked.
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def pages() -> list[Path]:
    return [REPO / "README.md", REPO / "BENCHMARKS.md", *sorted((REPO / "docs").rglob("*.md"))]


def prose(text: str) -> str:
    """The page without its fenced blocks and inline code."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces to
    hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    text = re.sub(r"[^\w\- ]", "", text.replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text()))
            if not SCHEME.match(target)]


def broken(page: Path, target: str, root: Path = REPO) -> str | None:
    """Why ``target`` (a link on ``page``) does not resolve inside ``root``, or None."""
    path, _, anchor = target.partition("#")
    where = (page.parent / path).resolve() if path else page
    if not where.exists():
        return "no such file"
    if root not in (where, *where.parents):
        return "outside the repository"
    if anchor and where.suffix == ".md" and anchor not in anchors(where):
        return f"no heading #{anchor} there"
    return None


def test_the_guide_has_pages_and_links():
    assert (REPO / "docs" / "extending.md").is_file()
    assert sum(len(links(page)) for page in pages()) >= 20


def test_every_relative_link_resolves():
    problems = [f"{page.relative_to(REPO)}: ({target}) {why}"
                for page in pages() for target in links(page)
                if (why := broken(page, target)) is not None]
    assert problems == []


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](page.md#title) [gone](missing.md) [bad](page.md#nowhere)\n"
                    "`[code](not-a-link.md)`\n")
    assert [broken(page, target, tmp_path) for target in links(page)] == [
        None, "no such file", "no heading #nowhere there"]


def test_slugs_follow_github():
    assert slug("The README's first search") == "the-readmes-first-search"
    assert slug("The proxy (`--scorer proxy`)") == "the-proxy---scorer-proxy"
    assert slug("Backends on the CPU: TensorFlow vs JAX vs PyTorch") == \
        "backends-on-the-cpu-tensorflow-vs-jax-vs-pytorch"
