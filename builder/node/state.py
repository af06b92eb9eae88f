"""The provisioning state file (<state_dir>/state.json).

Each finished step is recorded so that a reboot or power loss resumes where it
stopped. Written atomically (tmp + fsync + rename + fsync dir): after a crash the
file is either the old or the new version, never half of one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from builder.node.context import atomic_write
from builder.node.errors import NodeError

STEPS = ("identity", "host", "disk", "drbd", "services")


class State:
    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data: dict[str, Any] = data or {"format": 1, "done": []}
        self.failed_now = False  # fail() was called on this object (this run)

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            # Atomic writes make this a foreign edit, not a crash: do not guess.
            raise NodeError(f"{path} is not valid JSON ({e}); fix or remove it") from None
        if not isinstance(data, dict) or not isinstance(data.get("done"), list):
            raise NodeError(f"{path} does not look like a clusterctl state file")
        return cls(path, data)

    @property
    def node(self) -> str | None:
        value = self.data.get("node")
        return value if isinstance(value, str) else None

    @property
    def done(self) -> list[str]:
        return [s for s in self.data["done"] if s in STEPS]

    def is_done(self, step: str) -> bool:
        return step in self.data["done"]

    @property
    def complete(self) -> bool:
        return all(self.is_done(s) for s in STEPS)

    @property
    def next_step(self) -> str | None:
        return next((s for s in STEPS if not self.is_done(s)), None)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def finish(self, step: str) -> None:
        if step not in self.data["done"]:
            self.data["done"].append(step)
        error = self.data.get("error")
        if not isinstance(error, dict) or error.get("step") == step:
            self.data.pop("error", None)  # that step failed before: it is fixed now
        self.save()

    def fail(self, step: str, message: str, fix: str = "") -> None:
        """Record why provisioning stopped. The same failure again (next boot)
        keeps its first time and whether it was mailed: one mail per failure."""
        old = self.data.get("error")
        error = {"step": step, "message": message, "fix": fix, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if isinstance(old, dict) and (old.get("step"), old.get("message")) == (step, message):
            error.update({k: old[k] for k in ("since", "mailed") if k in old})
        self.data["error"] = error
        self.failed_now = True
        self.save()

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n", 0o644)
