"""The docs a user gets with the package stand alone: every link stays inside the repository and resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_links_stay_in_the_repository_and_resolve(doc: Path) -> None:
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+://", target) or target.startswith("#"):
            continue  # a web page, or a heading of the same file
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(REPO), f"{doc.name} links outside the repository: {target}"
        assert path.exists(), f"{doc.name} links to a missing file: {target}"


def test_readme_links_the_docs_and_the_license() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for name in ("docs/architecture.md", "docs/configuration.md", "docs/http-api.md", "LICENSE"):
        assert f"]({name})" in text, name
    assert "Apache License" in (REPO / "LICENSE").read_text(encoding="utf-8")
