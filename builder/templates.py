"""Where the template folders are: overlays/, debian/, rpm/, man/ and images/.

They live at the top of the repository (the product at a glance). builder/_data/
holds a link to each, which a built wheel and the stdeb package turn into copies,
so a checkout, an editable install and an installed builder find them the same way.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "_data"
FOLDERS = ("overlays", "debian", "rpm", "man", "images")


def folder(name: str) -> Path:
    """A template folder by name, e.g. folder("overlays")."""
    if name not in FOLDERS:
        raise KeyError(f"no template folder {name!r}; there are {', '.join(FOLDERS)}")
    return DATA / name
