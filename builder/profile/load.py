"""Load a profile: YAML -> Profile, or one InputError that lists every problem.

A profile reference is a built-in name (`pbx-ha`) or a path to a YAML file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from builder.errors import InputError
from builder.profile.checks import check
from builder.profile.model import Profile
from builder.profile.problems import Loc, Problem

BUILTIN = resources.files("builder.profile") / "builtin"


def builtin_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in BUILTIN.iterdir() if p.name.endswith(".yaml"))


@dataclass(frozen=True)
class Source:
    """Where a profile came from; secrets and outputs are placed relative to it."""

    ref: str
    name: str  # file name for messages
    text: str
    path: Path | None  # None for built-ins


def resolve(ref: str) -> Source:
    path = Path(ref)
    if path.is_file():
        return Source(ref, str(path), path.read_text(encoding="utf-8"), path.absolute())
    if ref in builtin_names():
        return Source(ref, f"{ref}.yaml (built-in)", (BUILTIN / f"{ref}.yaml").read_text(), None)
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        raise InputError(f"profile file not found: {ref}", hint="give an existing YAML file or a built-in name")
    raise InputError(
        f"no built-in profile named {ref!r}",
        hint=f"built-in profiles: {', '.join(builtin_names())}; or give a path to a YAML file",
    )


def _line_map(text: str) -> dict[Loc, int]:
    """YAML line (1-based) of every key and item, by field path; duplicate keys raise."""
    lines: dict[Loc, int] = {}

    def walk(node: yaml.Node, loc: Loc) -> None:
        lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                k = str(key.value)
                if k in seen:
                    raise InputError(
                        f"line {key.start_mark.line + 1}: key {k!r} appears twice in the same mapping",
                        hint="keep one of them",
                    )
                seen.add(k)
                lines[(*loc, k)] = key.start_mark.line + 1
                walk(value, (*loc, k))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*loc, i))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


def _from_pydantic(err: ValidationError) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        loc: Loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p))
        kind, msg, value = e["type"], e["msg"].removeprefix("Value error, "), e.get("input")
        if kind == "missing":
            problems.append(Problem(loc, "is required but missing", f"add `{loc[-1]}:`"))
        elif kind == "extra_forbidden":
            problems.append(Problem(loc, f"unknown setting {loc[-1]!r}", _suggest(err, loc)))
        elif kind == "literal_error":
            allowed = msg.removeprefix("Input should be ")
            problems.append(Problem(loc, f"{value!r} is not allowed", f"use {allowed}", value))
        else:
            problems.append(Problem(loc, f"{value!r}: {msg}" if _short(value) else msg, _fix_for(kind, msg), value))
    return problems


def _short(value: Any) -> bool:
    return isinstance(value, str | int | float) and len(str(value)) < 80


def _fix_for(kind: str, msg: str) -> str:
    if kind in ("string_pattern_mismatch",):
        return "write a value that matches the pattern above"
    if kind.startswith(("greater", "less")):
        return "choose a value within the bound"
    if kind in ("too_short", "too_long"):
        return "add or remove entries"
    if "duration" in msg or "size" in msg or "path" in msg or "name" in msg or "MAC" in msg:
        return "see the example in the message"
    return "see `builder schema` or docs/profile-reference.md for the expected form"


def _suggest(err: ValidationError, loc: Loc) -> str:
    """Nearest known key for a typo: walk the model's fields along loc."""
    from builder.profile.reference import submodel

    model: type[BaseModel] | None = Profile
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = submodel(field.annotation) if field else None
    known = list(model.model_fields) if model else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"did you mean `{close[0]}`? (remove or rename the key)"
    return f"remove it; known settings here: {', '.join(known)}" if known else "remove it"


def parse(source: Source) -> Profile:
    try:
        data = yaml.safe_load(source.text)
        lines = _line_map(source.text)
    except yaml.YAMLError as e:
        raise InputError(f"{source.name}: not valid YAML: {e}", hint="fix the YAML syntax at the marked line") from None
    if not isinstance(data, dict):
        raise InputError(f"{source.name}: the profile must be a YAML mapping", hint="start with `cluster:`")
    try:
        profile = Profile.model_validate(data)
        problems = check(profile)
    except ValidationError as e:
        profile, problems = None, _from_pydantic(e)
    if problems:
        text = "\n".join(p.render(source.name, _nearest_line(lines, p.loc)) for p in problems)
        n = len(problems)
        raise InputError(f"{source.name}: {n} problem{'s' if n > 1 else ''} in the profile\n{text}")
    assert profile is not None
    return profile


def _nearest_line(lines: dict[Loc, int], loc: Loc) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def load_profile(ref: str) -> Profile:
    return parse(resolve(ref))
