"""harness/production.py: recoveries and clocks in production terms."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from harness.matrix import Settings
from harness.production import clock_lines, duration, production_recovery
from harness.result import ScenarioResult

SETTINGS = asdict(Settings())


def result(backend: str, configuration: str, fault: str, kind: str, recovery_s: float | None,
           fault_at_s: float = 1.5, healed_at_s: float = 7.3, **knobs: Any) -> ScenarioResult:
    return ScenarioResult(
        scenario=f"{backend}.{configuration}.{fault}", backend=backend,
        configuration=configuration, configuration_summary="", guarantee="at-least-once",
        fault=fault, fault_description="", seed=1, valid=True, validity="", verdict="holds",
        reason="", counts={}, recovery_s=recovery_s, stuck_locations={}, fault_at_s=fault_at_s,
        healed_at_s=healed_at_s, settings=dict(SETTINGS), knobs=knobs, fault_kind=kind)


def test_a_visibility_timeout_recovery_in_production_terms() -> None:
    r = result("celery-redis", "acks-late-prefetch-1", "sigkill-worker", "worker-death", 10.58)
    assert production_recovery(r) == ("10.6 s here; about 1 h 0 min in production (visibility "
                                      "timeout 3600 s, not 15 s)")


def test_an_arq_recovery_waits_for_the_in_progress_key_of_the_job_timeout_it_ran() -> None:
    r = result("arq", "arq-max-tries-5", "sigkill-worker", "worker-death", 14.95)
    assert production_recovery(r) == ("14.9 s here; about 5 min 5 s in production (in-progress "
                                      "key expiry 310 s, not 20 s)")
    longer = result("arq", "arq-job-timeout-30", "sigkill-worker", "worker-death", 36.67,
                    arq_job_timeout=30)
    assert production_recovery(longer) == ("36.7 s here; about 5 min 7 s in production "
                                           "(in-progress key expiry 310 s, not 40 s)")


def test_a_clock_that_ran_out_during_the_fault_changes_how_long_a_fault_must_last() -> None:
    r = result("celery-redis", "acks-late-prefetch-1", "sigstop-worker", "stall", -0.01,
               fault_at_s=1.4, healed_at_s=26.5)
    assert production_recovery(r) == (
        "0.0 s after healing here, but the visibility timeout (15 s) ran out during the 25 s "
        "fault, so the redelivery came while it lasted; in production (3600 s) only a fault "
        "lasting about 1 h 0 min would do the same")
    before = result("arq", "arq-max-tries-5", "sigstop-worker", "stall", -1.2,
                    fault_at_s=1.4, healed_at_s=26.5)
    assert production_recovery(before) == (
        "1.2 s before healing here, but the in-progress key expiry (20 s) ran out during the "
        "25 s fault, so the redelivery came while it lasted; in production (310 s) only a fault "
        "lasting about 5 min 15 s would do the same")


@pytest.mark.parametrize("r", [
    result("celery-redis", "acks-late-prefetch-1", "sigkill-worker", "worker-death", None),
    result("celery-redis", "acks-late-prefetch-4", "sigterm-worker", "worker-death", 3.6),
    result("celery-rabbitmq", "rabbit-acks-late", "sigkill-worker", "worker-death", 2.0),
    result("fastapi", "fastapi-graceful-10", "sigkill-worker", "worker-death", 2.0),
    result("shop", "shop", "sigkill-worker", "worker-death", 2.0),  # not in the registry
    result("celery-redis", "shop", "sigkill-worker", "worker-death", 2.0),  # a team's own app
])
def test_no_production_recovery_without_a_compressed_clock(r: ScenarioResult) -> None:
    assert production_recovery(r) is None


def test_clock_lines_name_every_compressed_clock_with_its_source() -> None:
    lines = clock_lines("celery-redis", SETTINGS)
    assert lines[0] == ("visibility timeout: 15 s here, 3600 s in production "
                        "(kombu/transport/redis.py Channel.visibility_timeout = 3600)")
    assert lines[1].startswith("restore sweep period: 2 s here, 100 s in production (kombu/")
    assert lines[2].startswith("SIGSTOP window: 25 s here, 3610 s in production (")
    assert [line.split(":")[0] for line in clock_lines("arq", SETTINGS)] == [
        "job_timeout", "in-progress key expiry", "SIGSTOP window"]
    assert clock_lines("celery-rabbitmq", SETTINGS) == []
    assert clock_lines("fastapi", SETTINGS) == []
    assert clock_lines("shop", SETTINGS) == []  # a name the registry does not hold


@pytest.mark.parametrize(("seconds", "words"), [
    (0.4, "about 0 s"), (42.4, "about 42 s"), (59.6, "about 1 min 0 s"),
    (320.0, "about 5 min 20 s"), (1500.0, "about 25 min"), (3596.0, "about 1 h 0 min"),
    (3600.0, "about 1 h 0 min"), (5400.0, "about 1 h 30 min"),
])
def test_durations_in_human_units(seconds: float, words: str) -> None:
    assert duration(seconds) == words
