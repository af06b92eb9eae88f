"""The profile reference and JSON Schema come from the models; every setting has help."""

from __future__ import annotations

import json

import pytest

from builder.cli import main
from builder.profile.reference import fields, markdown
from tests.conftest import REPO


def test_every_setting_has_help_text() -> None:
    missing = [path for path, _type, _default, help_ in fields() if len(help_) < 10]
    assert missing == []


def test_reference_page_is_current() -> None:
    page = REPO / "docs" / "profile-reference.md"
    assert page.read_text() == markdown(), "run: builder schema --markdown --out docs/profile-reference.md"


def test_schema_is_json_schema_with_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "builder cluster profile"
    assert schema["additionalProperties"] is False
    heartbeat = schema["$defs"]["Heartbeat"]["properties"]
    assert "deadtime" in heartbeat and heartbeat["deadtime"]["description"]
