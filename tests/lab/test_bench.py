"""`builder lab bench`: the tutorial variant differs from the profile only in heartbeat's timings."""

from __future__ import annotations

from builder.lab import bench, scenario
from builder.profile.load import load_profile
from builder.profile.model import Profile
from builder.render import render
from tests.conftest import FAKE_SECRETS


def ha_cf(profile: Profile) -> list[str]:
    return render(profile, FAKE_SECRETS).get("/etc/ha.d/ha.cf").data.decode().splitlines()


def test_the_tutorial_variant_has_the_tutorials_timings_and_nothing_else_changed() -> None:
    profile = load_profile("pbx-ha")
    tutorial = bench.tutorial_profile(profile)
    ours, theirs = ha_cf(profile), ha_cf(tutorial)
    changed = sorted(set(theirs) - set(ours))
    assert changed == ["deadtime 30", "initdead 120", "keepalive 2", "warntime 10"]
    assert len(ours) == len(theirs)
    assert profile.heartbeat.deadtime == 3_000  # the profile object is untouched


def test_takeover_is_itemised_per_resource_from_heartbeats_start_times() -> None:
    starts = {"drbddisk": 4.9, "Filesystem": 6.1, "IPaddr2": 11.0, "mariadb": 12.0, "kamailio": 30.5,
              "apache2": 36.0, "MailTo": 41.0}
    items = scenario.itemise(starts, dead_s=4.5, failover_s=43.0)
    assert items["wait_before_first_s"] == 0.4
    assert items["drbddisk"] == 1.2 and items["mariadb"] == 18.5 and items["MailTo"] == 2.0
    assert round(sum(items.values()), 2) == 43.0 - 4.5


def test_ratios() -> None:
    assert bench.ratio(4.5, 30.0) == 0.15
    assert bench.ratio(None, 30.0) is None and bench.ratio(4.5, 0) is None


def test_a_resource_starting_after_the_services_answer_counts_zero() -> None:
    items = scenario.itemise({"drbddisk": 5.0, "apache2": 40.0, "MailTo": 46.0}, dead_s=4.4, failover_s=45.1)
    assert items["MailTo"] == 0.0 and items["apache2"] == 6.0
