"""Golden files: compare, or rewrite them with BUILDER_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

UPDATE = os.environ.get("BUILDER_UPDATE_GOLDEN") == "1"


SUFFIX = ".golden"  # so a golden `authkeys` (fake values) is never mistaken for a real one


def check_golden(golden_dir: Path, actual: dict[str, bytes]) -> None:
    """actual maps relative paths to contents; the golden folder must match exactly."""
    actual = {rel + SUFFIX: data for rel, data in actual.items()}
    if UPDATE:
        if golden_dir.exists():
            for old in sorted(golden_dir.rglob("*"), reverse=True):
                old.unlink() if old.is_file() else old.rmdir()
        for rel, data in actual.items():
            dest = golden_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        return
    expected = {str(p.relative_to(golden_dir)): p.read_bytes() for p in golden_dir.rglob("*") if p.is_file()}
    assert sorted(actual) == sorted(expected), "file list differs (BUILDER_UPDATE_GOLDEN=1 to accept)"
    for rel in actual:
        assert actual[rel].decode() == expected[rel].decode(), f"{rel} differs (BUILDER_UPDATE_GOLDEN=1 to accept)"
