"""The manual stays whole: the README is a short front page, every relative link in it and in docs/
resolves (file and heading), and the MkDocs site builds with --strict."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README_MAX_LINES = 200
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def _prose(text: str) -> str:
    """Markdown without fenced blocks and inline code, where a link is only an example."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc) and GitHub give a heading, for plain headings."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text))


def _anchors(page: Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", FENCE.sub("", page.read_text()), re.M)}


def _broken_links(page: Path, root: Path = REPO, docs: Path = DOCS) -> list[str]:
    """Each relative link of ``page`` whose file or heading is missing, or that leaves docs/ from docs/."""
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif page.is_relative_to(docs) and not dest.is_relative_to(docs):
            broken.append(f"{target}: outside docs/, which the built site does not contain")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return [f"{page.relative_to(root)}: {b}" for b in broken]


def test_readme_is_a_short_front_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    for needed in ("bash scripts/demo.sh", "bash .ci/run", "CONTRIBUTING.md", "--check", "(docs/index.md)"):
        assert needed in readme, f"README.md no longer mentions {needed}"


def test_every_relative_link_resolves():
    broken = [b for page in _markdown_files() for b in _broken_links(page)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_link_checker_catches_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\n## Some `code` here\n")
    (tmp_path / "b.md").write_text("[ok](a.md#some-code-here) [gone](nope.md) [bad](a.md#nothing) `[x](y.md)`\n"
                                   "```\n[in a fence](z.md)\n```\n[web](https://example.org) [out](../c.md)\n")
    (tmp_path.parent / "c.md").write_text("# C\n")
    assert _broken_links(tmp_path / "b.md", tmp_path, tmp_path) == [
        "b.md: nope.md: no such file", "b.md: a.md#nothing: no heading #nothing in a.md",
        "b.md: ../c.md: outside docs/, which the built site does not contain"]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                    reason="mkdocs is not installed (bash scripts/install.sh --dev installs it)")
def test_manual_builds_strictly(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "register_part" in api and "validate_options" in api  # docstrings were rendered
    assert "Worked example" in (site / "contributing" / "index.html").read_text(encoding="utf-8")
