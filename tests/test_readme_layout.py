"""The README's layout paragraph names every package of the repository, and only real folders.

A package added, renamed or removed without the README following fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def layout_paragraph() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("The layout, one concern per folder")
    return text[start : text.index("tests/test_floors.py", start)]


def test_every_package_is_in_the_layout() -> None:
    packages = sorted(
        path.parent.name for path in REPO.glob("*/__init__.py") if path.parent.name != "tests"
    )
    named = layout_paragraph()
    assert [name for name in packages if f"`{name}/`" not in named] == []


def test_every_folder_the_layout_names_exists() -> None:
    """A top-level folder, or a package's own (`channels/` in `connectors/`)."""
    named = re.findall(r"`([a-z_]+(?:/[a-z_]+)*)/`", layout_paragraph())
    assert named
    missing = [
        folder
        for folder in named
        if not (REPO / folder).is_dir() and not any(p.is_dir() for p in REPO.glob(f"*/{folder}"))
    ]
    assert missing == []
