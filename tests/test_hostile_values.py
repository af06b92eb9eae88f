"""Every text field of the schema refuses a hostile value at validation.

The fields are walked from the model itself, so a field added later is covered
without editing this file. For each one the test first puts a valid value there
(the profile must load: proof that the test reaches the field), then each
hostile value (a newline that would add a line to a generated file, shell and
RPM macro syntax, config separators) and expects exit 2 naming that field.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

from builder.errors import InputError
from builder.profile.load import Source, parse
from builder.profile.model import Profile
from tests.conftest import pbx_ha_data

# Valid values for fields pbx-ha leaves out (or where its value is not a string).
BASE = {
    "cluster.mirror": "http://deb.example.invalid/debian",
    "cluster.stack": "heartbeat",
    "root_password_hash": "$y$j9T$FAKEsaltFAKE$FAKEhashFAKEhashFAKEhash",
    "alerts.smtp.user": "alerts",
    "alerts.smtp.tls_trust_file": "/etc/ssl/certs/ca-certificates.crt",
    "ssh_authorized_keys[]": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEFAKEFAKEFAKEFAKEFAKE fake@test",
    "packages[]": "htop",
    "services[].probe.command[]": "/bin/true",
    "drbd.backing.disks{}": "/dev/vdb",
    "drbd.backing.kind": "disk",
    "heartbeat.ping[]": "192.168.0.1",
}
HOSTILE = [
    "{base}\nEVIL line",
    "{base}\r",
    "{base}\x00",
    "$(reboot)",
    "`reboot`",
    "{base};reboot",
    "{base} extra",
    "%(touch /tmp/builder-pwned)",
    "%{{_topdir}}",
    '{base}"',
    "{base}'",
    "{base}::x",
    "{base}\\",
    "/srv/$(reboot)",
    "{base}; }} on evil {{",
]


@dataclass(frozen=True)
class Leaf:
    path: str  # e.g. services[].probe.command[]
    annotation: Any


def _leaves(model: type[BaseModel], prefix: str = "") -> Iterator[Leaf]:
    for name, field in model.model_fields.items():
        yield from _walk(field.annotation, f"{prefix}{name}")


def _walk(annotation: Any, path: str) -> Iterator[Leaf]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                yield from _walk(arg, path)
        return
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _walk(typing.get_args(annotation)[0], path)
    elif origin is list:
        yield from _walk(typing.get_args(annotation)[0], f"{path}[]")
    elif origin is dict:
        yield from _walk(typing.get_args(annotation)[1], f"{path}{{}}")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _leaves(annotation, f"{path}.")
    elif annotation in (bool, int, float):
        return  # YAML gives these as numbers: nothing of them reaches a file as text
    else:
        yield Leaf(path, annotation)


LEAVES = sorted({leaf.path for leaf in _leaves(Profile)})


def _prepare(data: dict, path: str) -> None:
    """Make room for a field pbx-ha does not use (a probe command, disks)."""
    if path.startswith("services[].probe."):
        data["services"][0]["probe"] = {"command": ["/bin/true"]}
    if path.startswith("drbd.backing.disks") or path == "drbd.backing.kind":
        data["drbd"]["backing"] = {"kind": "disk", "disks": {"kava1": "/dev/vdb", "kava2": "/dev/vdb"}}
    if path.startswith("heartbeat.ping"):
        data["heartbeat"]["ping"] = ["192.168.0.1"]
    if path.startswith("alerts.smtp."):
        data["alerts"]["smtp"]["starttls"] = True


def _set(data: dict, path: str, value: object) -> str:
    """Put value at path (first list item, first mapping entry); returns the path as messages spell it."""
    node: Any = data
    spelled = ""
    parts = path.replace("[]", ".[]").replace("{}", ".{}").split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "[]":
            if not node:
                node.append(None)
            spelled += "[0]"
            if last:
                node[0] = value
            node = node[0]
        elif part == "{}":
            key = next(iter(node))
            spelled += f".{key}"
            if last:
                node[key] = value
            node = node[key]
        else:
            spelled += f".{part}" if spelled else part
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if parts[i + 1] == "[]" else {})
    return spelled


def _base(data: dict, path: str) -> str:
    """A valid value for the field: BASE, else pbx-ha's own, else the schema's default."""
    if path in BASE:
        return BASE[path]
    node: Any = data
    try:
        for part in path.replace("[]", ".[]").replace("{}", ".{}").split("."):
            node = node[0] if part == "[]" else next(iter(node.values())) if part == "{}" else node[part]
        return str(node)
    except (KeyError, IndexError, StopIteration):
        return str(_default(path))


def _default(path: str) -> object:
    from builder.profile.reference import submodel

    model: Any = Profile
    field = None
    for part in path.replace("[]", "").replace("{}", "").split("."):
        field = model.model_fields[part]
        model = submodel(field.annotation)
    assert field is not None
    return field.get_default(call_default_factory=True)


def _load(data: dict) -> Profile:
    import yaml

    return parse(Source("t", "t.yaml", yaml.safe_dump(data), None))


def test_the_walk_finds_the_text_fields() -> None:
    # A guard on the walk itself: these must be among the leaves it covers.
    for path in ("cluster.name", "drbd.mount", "services[].packages.rpm[]", "alerts.smtp.user",
                 "time_servers[]", "drbd.backing.disks{}", "packages[]", "services[].probe.command[]"):
        assert path in LEAVES


@pytest.mark.parametrize("path", LEAVES)
def test_a_hostile_value_is_refused(path: str) -> None:
    data = pbx_ha_data()
    _prepare(data, path)
    base = _base(data, path)
    valid = copy.deepcopy(data)
    _set(valid, path, base)
    _load(valid)  # the valid value loads: the test reaches the field
    for template in HOSTILE:
        value = template.format(base=base)
        hostile = copy.deepcopy(data)
        spelled = _set(hostile, path, value)
        with pytest.raises(InputError) as refused:
            _load(hostile)
            pytest.fail(f"{path}: {value!r} was accepted")
        assert spelled in refused.value.message, (path, value, refused.value.message)
        assert "\nEVIL" not in refused.value.message  # quoted, never a raw line of its own
