"""The profile reference page and JSON Schema, both derived from the models."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from builder.profile.model import Profile


def json_schema() -> str:
    schema = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "builder cluster profile"
    return json.dumps(schema, indent=2) + "\n"


def submodel(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *typing.get_args(annotation)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
        for inner in typing.get_args(c):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def value_kind(field: FieldInfo) -> str | None:
    """'duration' or 'size' for a field of those types (pydantic keeps their parser in field.metadata)."""
    for m in field.metadata:
        fn = getattr(m, "func", None)
        if fn is not None and fn.__name__ == "parse_duration":
            return "duration"
        if fn is not None and fn.__name__ == "parse_size":
            return "size"
    return None


def _type_name(annotation: Any) -> str:
    meta = getattr(annotation, "__metadata__", ())
    for m in meta:
        fn = getattr(m, "func", None)
        if fn is not None and fn.__name__ == "parse_duration":
            return "duration"
        if fn is not None and fn.__name__ == "parse_size":
            return "size"
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(annotation) if a is not type(None)) + " (optional)"
    origin = typing.get_origin(annotation)
    if origin is list:
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        return "mapping"
    if typing.get_origin(annotation) is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    return getattr(annotation, "__name__", str(annotation))


def _default(name: str, field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):
        return "(see below)"
    if value_kind(field) == "duration" and isinstance(value, int):
        return f"`{value // 1000}s`" if value % 1000 == 0 else f"`{value}ms`"
    return f"`{json.dumps(value)}`"


def fields(model: type[BaseModel] = Profile, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(path, type, default, help) for every setting, depth-first."""
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        rows.append((path, value_kind(field) or _type_name(field.annotation), _default(name, field),
                     field.description or ""))
        sub = submodel(field.annotation)
        if sub is not None:
            is_list = typing.get_origin(field.annotation) is list
            rows.extend(fields(sub, f"{path}[].") if is_list else fields(sub, f"{path}."))
    return rows


def markdown() -> str:
    lines = [
        "# Profile reference",
        "",
        "Generated from the schema by `builder schema --markdown`; do not edit by hand.",
        "Durations take `500ms`, `2s`, `5m`, `1h` or a number of seconds; sizes take `512M`, `2G` or bytes.",
        "",
        "| setting | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for path, typ, default, help_ in fields():
        lines.append(f"| `{path}` | {typ} | {default} | {help_.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
