"""builder/pipeline.py: one flat list of named steps; each command runs its plan, in order, timed."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from builder import pipeline
from builder.cli import main
from builder.errors import InputError
from builder.profile.model import Profile
from tests.conftest import FAKE_SECRETS, pbx_ha_data, write_profile

NAMES = [name for name, _step in pipeline.STEPS]


def _context(command: str, **options: object) -> pipeline.Context:
    return pipeline.Context(command, options=argparse.Namespace(**options))


def test_the_steps_in_order() -> None:
    assert NAMES == ["load", "check", "secrets", "render", "write", "out", "package", "repo", "image"]


@pytest.mark.parametrize("command", sorted(pipeline.PLANS))
def test_every_plan_checks_everything_before_the_secrets_then_renders(command: str) -> None:
    plan = pipeline.PLANS[command]
    assert plan[:4] == ("load", "check", "secrets", "render")
    assert [n for n in NAMES if n in plan] == list(plan)  # a subsequence of STEPS: run() keeps that order
    assert command in pipeline.CHECKS


def test_render_runs_load_to_write_and_nothing_after(pbx_profile: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ctx = pipeline.run(_context("render", profile=str(pbx_profile), out=str(out)))
    assert list(ctx.timings) == ["load", "check", "secrets", "render", "write"]
    assert all(seconds >= 0 for seconds in ctx.timings.values())
    assert ctx.outputs == [out] and (out / "etc/ha.d/ha.cf").is_file()
    assert ctx.packages == []


def test_a_bad_out_stops_at_the_check_before_the_secrets(tmp_path: Path) -> None:
    profile = write_profile(tmp_path, pbx_ha_data())
    profile.with_name("cluster.secrets").unlink()
    ctx = _context("render", profile=str(profile), out=str(profile))  # --out the profile itself
    with pytest.raises(InputError, match="--out"):
        pipeline.run(ctx)
    assert list(ctx.timings) == ["load", "check"]  # the failed step is timed too
    assert not profile.with_name("cluster.secrets").exists()


def test_each_step_is_logged_with_its_time_and_the_command_sums_up(pbx_profile: Path, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="builder")
    assert main(["render", "-p", str(pbx_profile), "-o", str(tmp_path / "out")]) == 0
    steps = [m for m in caplog.messages if m.startswith("step ")]
    assert [m.split(":")[0] for m in steps] == [f"step {n}" for n in pipeline.PLANS["render"]]
    assert all(m.endswith(" s") for m in steps)
    summary = [r for r in caplog.records if r.getMessage().startswith("render took ")]
    assert len(summary) == 1 and summary[0].levelno == logging.INFO
    assert "load " in summary[0].getMessage() and "write " in summary[0].getMessage()


def _fake_build_image(calls: list[dict[str, object]]) -> Callable[..., list[Path]]:
    """build_image without mkosi: records what it was given."""

    def build_image(profile: Profile, debs: list[Path], out: Path, formats: tuple[str, ...], cache: Path | None,
                    node: str | None, progress: object) -> list[Path]:
        calls.append({"debs": [d.name for d in debs], "present": all(d.is_file() for d in debs), "out": out,
                      "formats": formats, "node": node, "cache": cache, "paths": debs})
        out.mkdir(parents=True, exist_ok=True)
        image = out / f"{profile.cluster.name}.qcow2"
        image.write_bytes(b"QFI\xfb")
        return [image]

    return build_image


def test_image_packages_a_deb_into_scratch_then_builds_the_image(pbx_profile: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(pipeline.imaging, "build_image", _fake_build_image(calls))
    out, cache = tmp_path / "images", tmp_path / "cache"
    argv = ["image", "-p", str(pbx_profile), "-o", str(out), "--cache-dir", str(cache), "-f", "qcow2",
            "--node", "kava1", "--build-number", "7"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert printed.out == f"{out / 'pbx-ha.qcow2'}\n"
    assert "Building the cluster package" in printed.err and "image ready" in printed.err
    [call] = calls
    assert call["debs"] == ["pbx-ha-cluster_1.0-7_all.deb"] and call["present"]
    assert call["out"] == out and call["formats"] == ("qcow2",) and call["node"] == "kava1" and call["cache"] == cache
    assert not any(p.exists() for p in call["paths"])  # type: ignore[attr-defined]  # scratch: gone after the run
    assert json.loads((out / ".builder-output").read_text())["command"] == "image"


def test_a_failed_render_makes_no_output_folder(pbx_profile: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise InputError("refused by the test")

    monkeypatch.setattr(pipeline, "render_tree", refuse)
    for command in ("package", "repo", "image"):
        out = tmp_path / command
        argv = [command, "-p", str(pbx_profile), "-o", str(out)]
        assert main(argv + (["--cache-dir", str(tmp_path / "cache")] if command == "image" else [])) == 2
        assert not out.exists()


def test_node_image_for_the_lab_bench_runs_render_package_image(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.profile.load import load_profile

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(pipeline.imaging, "build_image", _fake_build_image(calls))
    outputs = pipeline.node_image(load_profile("pbx-ha"), FAKE_SECRETS, tmp_path / "bench", "qcow2")
    assert [p.name for p in outputs] == ["pbx-ha.qcow2"]
    [call] = calls
    assert call["formats"] == ("qcow2",) and call["cache"] is None and call["node"] is None
    assert not (tmp_path / "bench" / ".builder-output").exists()  # the bench's own folder: no out step
