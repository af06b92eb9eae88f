"""Load a profile: YAML -> Profile, or one InputError that lists every problem.

A profile reference is a built-in name (`pbx-ha`) or a path to a YAML file.
"""

from __future__ import annotations

import difflib
import re
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from builder.errors import InputError
from builder.profile.checks import check
from builder.profile.model import Profile
from builder.profile.problems import Loc, Problem, key_str
from builder.profile.types import shown, spell_duration

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


MAX_BYTES = 1 << 20  # a profile is a few KiB; anything near this is not one
MAX_VALUES = 20_000  # keys, items and scalars after YAML aliases are expanded
MAX_DEPTH = 24
MAX_PROBLEMS = 25


def resolve(ref: str) -> Source:
    if ref in builtin_names() and "/" not in ref:
        return Source(ref, f"{ref}.yaml (built-in)", (BUILTIN / f"{ref}.yaml").read_text(), None)
    path = Path(ref)
    if not ref or not path.exists():
        if "/" in ref or ref.endswith((".yaml", ".yml")) or not ref:
            raise InputError(f"--profile {ref!r}: profile file not found",
                             hint="give an existing YAML file or a built-in name (`builder profiles`)")
        raise InputError(
            f"no built-in profile named {ref!r}",
            hint=f"built-in profiles: {', '.join(builtin_names())}; or give a path to a YAML file",
        )
    return Source(ref, str(path), _read(path), path.absolute())


def _read(path: Path) -> str:
    """The profile's text: a regular file of UTF-8, of a profile's size, else one clear InputError."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
            raise InputError(f"--profile {path}: is {kind}", hint="give the profile's YAML file")
        if st.st_size > MAX_BYTES:
            raise InputError(f"--profile {path}: {st.st_size} bytes is far too big for a profile",
                             hint=f"a profile is a few KiB of YAML; this limit is {MAX_BYTES} bytes")
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise InputError(f"--profile {path}: cannot read it ({e.strerror})",
                         hint="check the path and its permissions") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path}: is UTF-16", hint="save the profile as UTF-8")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: is not UTF-8 text (byte {e.start})",
                         hint="save the profile as UTF-8") from None


def _line_map(root: yaml.Node | None, name: str) -> dict[Loc, int]:
    """YAML line (1-based) of every key and item, by field path; duplicate keys raise.

    Shared (aliased) nodes are walked once per place they appear, so the walk
    is bounded by _check_size first.
    """
    lines: dict[Loc, int] = {}

    def walk(node: yaml.Node, loc: Loc) -> None:
        lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if key.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"):
                    raise InputError(
                        f"{name}:{key.start_mark.line + 1}: key {key_str(str(key.value))!r} is not a setting name",
                        hint="write setting names as words, e.g. `cluster:` (quote a key that looks like a number)",
                    )
                k = str(key.value)
                if k in seen and k != "<<":
                    raise InputError(
                        f"{name}:{key.start_mark.line + 1}: key {key_str(k)!r} appears twice in the same mapping",
                        hint="keep one of them",
                    )
                seen.add(k)
                lines[(*loc, k)] = key.start_mark.line + 1
                walk(value, (*loc, k))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*loc, i))

    if root is not None:
        walk(root, ())
    return lines


def _check_size(root: yaml.Node, name: str) -> None:
    """Refuse an alias bomb, a cycle or deep nesting before anything expands it."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise InputError(f"{name}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep",
                             hint="a profile is a few levels of mappings and lists")
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise InputError(f"{name}:{node.start_mark.line + 1}: a YAML alias refers to itself",
                             hint="remove the recursive anchor")
        active.add(id(node))
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        total = 1 + sum(size(c, depth + 1) for c in children)
        active.discard(id(node))
        sizes[id(node)] = total
        if total > MAX_VALUES:
            raise InputError(f"{name}: expands to more than {MAX_VALUES} values (YAML anchors and aliases)",
                             hint="write the profile out plainly; it needs no alias that repeats a block")
        return total

    size(root, 0)


def _compose(source: Source) -> yaml.Node | None:
    try:
        return yaml.compose(source.text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise InputError(f"{source.name}: nested too deeply to read", hint="a profile is a few levels deep") from None
    except yaml.YAMLError as e:
        raise InputError(f"{source.name}: not valid YAML: {_yaml_problem(e)}",
                         hint="fix the YAML syntax at the line named") from None


def _yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's message without its quote of the file's lines (it may not be a profile at all)."""
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"{where}{shown(e.problem or e.context or 'syntax error', 200)[1:-1]}"
    return shown(str(e).splitlines()[0] if str(e) else "syntax error", 200)[1:-1]


def _data_loc(raw: tuple[int | str, ...], data: Any) -> Loc:
    """pydantic's error location as a path in the profile: its own parts
    (`function-after[...]`, union tags) are dropped, the user's keys are kept,
    whatever characters they hold."""
    loc: list[str | int] = []
    node = data
    for part in raw:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            loc.append(part)
            node = node[part]  # type: ignore[index]
        elif isinstance(node, dict) and isinstance(part, str) and "[" not in part:
            loc.append(part)  # a missing key: the path names where it belongs
            node = None
    return tuple(loc)


def _from_pydantic(err: ValidationError, data: Any) -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        loc = _data_loc(e["loc"], data)
        kind, msg, value = e["type"], e["msg"].removeprefix("Value error, "), e.get("input")
        last = loc[-1] if loc else "(profile)"
        if kind == "missing":
            problems.append(Problem(loc, "is required but missing", f"add `{last}:`"))
        elif kind == "extra_forbidden":
            problems.append(Problem(loc, f"unknown setting {key_str(last)!r}", _suggest(loc)))
        elif kind == "literal_error":
            allowed = msg.removeprefix("Input should be ")
            problems.append(Problem(loc, f"{shown(value)} is not allowed", f"use {allowed}", value))
        elif kind == "value_error":  # our validators' messages quote the value and end with the fix
            what, fix = _split_fix(msg)
            problems.append(Problem(loc, what, fix or _fix_for(kind, msg), value))
        elif _is_duration(loc) and isinstance(value, int) and "ctx" in e:
            problems.append(Problem(loc, _duration_bound(value, e["ctx"]), "choose a value within the bound", value))
        else:
            text = f"{shown(value)}: {msg}" if isinstance(value, str | int | float) else msg
            problems.append(Problem(loc, text, _fix_for(kind, msg), value))
    return problems


def _field_at(loc: Loc) -> Any:
    """The model field a path ends at, or None (walks the models like _suggest)."""
    from builder.profile.reference import submodel

    model: type[BaseModel] | None = Profile
    field = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        model = submodel(field.annotation) if field else None
    return field


def _is_duration(loc: Loc) -> bool:
    from builder.profile.reference import value_kind

    field = _field_at(loc)
    return field is not None and value_kind(field) == "duration"


def _duration_bound(value: int, ctx: dict[str, Any]) -> str:
    for key, words in (("ge", "below the minimum"), ("gt", "not above"), ("le", "above the maximum"),
                       ("lt", "not below")):
        if key in ctx:
            return f"{spell_duration(value)} is {words} {spell_duration(int(ctx[key]))}"
    return f"{spell_duration(value)} is out of bounds"


_FIX = re.compile(r": (?=(write|use|copy|start|save|give|name) )")


def _split_fix(msg: str) -> tuple[str, str | None]:
    """'X is not a MAC address: write six hex pairs' -> ('X is not a MAC address', 'write six hex pairs')."""
    m = _FIX.search(msg)
    return (msg[: m.start()], msg[m.end():]) if m else (msg, None)


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


def _suggest(loc: Loc) -> str:
    """Nearest known key for a typo: walk the model's fields along loc."""
    from builder.profile.reference import submodel

    model: type[BaseModel] | None = Profile
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = submodel(field.annotation) if field else None
    known = list(model.model_fields) if model else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"did you mean `{close[0]}`? (remove or rename the key)"
    return f"remove it; known settings here: {', '.join(known)}" if known else "remove it"


def parse(source: Source) -> Profile:
    root = _compose(source)
    if not isinstance(root, yaml.MappingNode):
        raise InputError(f"{source.name}: the profile must be a YAML mapping", hint="start with `cluster:`")
    _check_size(root, source.name)
    keys = {k.value for k, _ in root.value if isinstance(k, yaml.ScalarNode)}
    if not keys & set(Profile.model_fields):
        raise InputError(f"{source.name}: is not a builder profile (it has none of cluster, nodes, vip, ...)",
                         hint="give a profile; start from `builtin/pbx-ha.yaml` (`builder profiles` lists them)")
    lines = _line_map(root, name=source.name)
    try:
        data = yaml.safe_load(source.text)
    except (yaml.YAMLError, RecursionError) as e:
        problem = _yaml_problem(e) if isinstance(e, yaml.YAMLError) else "nested too deeply"
        raise InputError(f"{source.name}: not valid YAML: {problem}", hint="fix the YAML at the line named") from None
    try:
        profile = Profile.model_validate(data)
        problems = check(profile)
    except ValidationError as e:
        profile, problems = None, _from_pydantic(e, data)
    if problems:
        shown_problems = problems[:MAX_PROBLEMS]
        text = "\n".join(p.render(source.name, _nearest_line(lines, p.loc)) for p in shown_problems)
        if len(problems) > MAX_PROBLEMS:
            text += f"\n... and {len(problems) - MAX_PROBLEMS} more"
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
