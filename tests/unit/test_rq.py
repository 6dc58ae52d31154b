"""harness/backends/rq.py and the stdlib part of queue_chaos_agent/rq.py: RQ's claims from its
knobs, its job ids, its forensics (against a fake of the few Redis commands they read: the real
ones run in the container tests and the scenarios), its clocks and its explanations."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

from harness.backend import Capability
from harness.backends import REGISTRY
from harness.backends.rq import RqForensics, RqKnobs
from harness.checker import Guarantee
from harness.explain import explain
from harness.faults import FAULTS
from harness.matrix import CONFIGURATIONS, Settings
from harness.result import ScenarioResult
from queue_chaos_agent.rq import job_id_for, task_id_of

RQ = REGISTRY["rq"]
# RQ's own rule (rq/job.py JOB_ID_PATTERN): what a custom job id may hold.
JOB_ID = re.compile(r"[A-Za-z0-9_-]+")


@pytest.mark.parametrize(("knobs", "expected"), [
    (RqKnobs(), Guarantee.AT_MOST_ONCE),  # no Retry: nothing runs a job again
    (RqKnobs(rq_retry_max=3), Guarantee.AT_LEAST_ONCE),
    (RqKnobs(rq_retry_max=3, idempotent=True), Guarantee.EFFECTIVELY_ONCE),
    (RqKnobs(idempotent=True), Guarantee.AT_MOST_ONCE),  # a key cannot bring a failed job back
    (RqKnobs(rq_retry_max=1, rq_worker_class="SimpleWorker"), Guarantee.AT_LEAST_ONCE),
])
def test_rq_claims_follow_from_retry(knobs: RqKnobs, expected: Guarantee) -> None:
    assert RQ.guarantee(knobs) is expected


def test_rq_knobs_refuse_impossible_values() -> None:
    with pytest.raises(ValueError, match="rq_worker_class='Gevent'; valid: Worker, SimpleWorker"):
        RqKnobs(rq_worker_class="Gevent")
    with pytest.raises(ValueError, match="rq_retry_max=-1"):
        RqKnobs(rq_retry_max=-1)
    with pytest.raises(ValueError, match="rq_job_timeout=0"):
        RqKnobs(rq_job_timeout=0)


def test_capabilities_follow_retry_and_the_work_horse() -> None:
    assert RQ.capabilities_of(RqKnobs()) == {Capability.BROKERED, Capability.POOL_CHILDREN}
    assert RQ.capabilities_of(RqKnobs(rq_retry_max=3, rq_worker_class="SimpleWorker")) == {
        Capability.BROKERED, Capability.REDELIVERS, Capability.LEASE}
    assert FAULTS["sigkill-pool-child"].applies(CONFIGURATIONS["rq-no-retry"])
    assert not FAULTS["sigkill-pool-child"].applies(CONFIGURATIONS["rq-simple-worker-retry-3"])


def test_configurations_say_what_they_run_and_the_workers_report_it() -> None:
    assert CONFIGURATIONS["rq-no-retry"].summary == (
        "RQ Worker (forks a work horse per job), no Retry (RQ's default), job_timeout=10s")
    assert "Retry(max=3)" in CONFIGURATIONS["rq-retry-3"].summary
    assert "drain=150s" in CONFIGURATIONS["rq-retry-3"].summary
    assert "SimpleWorker" in CONFIGURATIONS["rq-simple-worker-retry-3"].summary
    ready = {"retry_max": 3, "retry_intervals": [0], "job_timeout": 10, "worker_class": "Worker",
             "worker_class_name": "rq.worker.worker_classes.Worker", "worker_ttl": 20,
             "job_monitoring_interval": 5, "maintenance_interval": 5, "result_ttl": 60,
             "queue": "chaos", "task": "queue_chaos_agent.rq.probe"}
    config = CONFIGURATIONS["rq-retry-3"]
    assert config.mismatch(config.running(ready, False)) is None
    wrong = CONFIGURATIONS["rq-no-retry"]
    assert "rq_retry_max declared 0, running 3" in str(wrong.mismatch(wrong.running(ready, False)))


def test_the_scenario_hands_the_workers_rqs_compressed_clocks() -> None:
    env = CONFIGURATIONS["rq-retry-3"].variables(Settings(), {})
    assert env["CHAOS_RQ_RETRY_MAX"] == "3"
    assert (env["CHAOS_RQ_MONITORING_INTERVAL"], env["CHAOS_RQ_MAINTENANCE_INTERVAL"],
            env["CHAOS_RQ_WORKER_TTL"]) == ("5", "5", "20")


@pytest.mark.parametrize("task", [
    "rq.rq-no-retry.sigkill-worker.17", "rq.rq-retry-3.none~attempt-2.3",
    "rq.rq-retry-3.none~cost-tput.120", "a_b__c._d_x", "naïve task/1",
])
def test_job_ids_are_ones_rq_accepts_and_map_back_to_their_task(task: str) -> None:
    job = job_id_for(task)
    assert JOB_ID.fullmatch(job), job
    assert task_id_of(job) == task


def test_must_lose_without_retry_under_a_kill_only() -> None:
    assert RQ.must_lose(RqKnobs(), "worker-death", "sigkill-worker")
    assert RQ.must_lose(RqKnobs(), "worker-death", "sigkill-pool-child")
    assert not RQ.must_lose(RqKnobs(), "worker-death", "sigterm-worker")
    assert not RQ.must_lose(RqKnobs(rq_retry_max=3), "worker-death", "sigkill-worker")


# -- forensics --------------------------------------------------------------------------------


@dataclass
class FakeRedis:
    """The Redis commands RqForensics uses, on in-memory lists, sorted sets and hashes."""

    lists: dict[str, list[str]] = field(default_factory=dict)
    zsets: dict[str, dict[str, float]] = field(default_factory=dict)
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)

    def llen(self, key: str) -> int:
        return len(self.lists.get(key, []))

    def lrange(self, key: str, start: int, end: int) -> list[bytes]:
        return [v.encode() for v in self.lists.get(key, [])]

    def zcard(self, key: str) -> int:
        return len(self.zsets.get(key, {}))

    def zrange(self, key: str, start: int, end: int,
               withscores: bool = False) -> list[Any]:
        items = sorted(self.zsets.get(key, {}).items(), key=lambda kv: kv[1])
        return [(k.encode(), s) for k, s in items] if withscores else [k.encode() for k, _ in items]

    def hget(self, key: str, name: str) -> bytes | None:
        value = self.hashes.get(key, {}).get(name)
        return value.encode() if value is not None else None

    def scan_iter(self, match: str, count: int) -> Iterator[bytes]:
        pattern = re.compile(re.escape(match).replace(r"\*", ".*"))
        keys = [*self.lists, *self.zsets, *self.hashes]
        return iter([k.encode() for k in keys if pattern.fullmatch(k)])

    def delete(self, *keys: bytes) -> None:
        for key in (k.decode() for k in keys):
            self.deleted.append(key)
            for store in (self.lists, self.zsets, self.hashes):
                store.pop(key, None)


def forensics(fake: FakeRedis) -> RqForensics:
    broker = RqForensics(1)
    broker.client.close()
    broker.client = fake  # type: ignore[assignment]
    return broker


def job(task: str, retries_left: int | None) -> tuple[str, dict[str, str]]:
    fields = {"status": "started"}
    if retries_left is not None:
        fields["retries_left"] = str(retries_left)
    return f"rq:job:{job_id_for(task)}", fields


def test_only_what_rq_will_still_run_is_held() -> None:
    later = time.time() + 42
    fake = FakeRedis(
        lists={"rq:queue:chaos": [job_id_for("s.1")],
               "rq:queue:chaos:intermediate": [job_id_for("s.2"), job_id_for("s.3")]},
        zsets={"rq:wip:chaos": {f"{job_id_for('s.4')}:e4": later,
                                f"{job_id_for('s.5')}:e5": later},
               "rq:scheduled:chaos": {job_id_for("s.6"): later},
               "rq:failed:chaos": {job_id_for("s.7"): later}},
        hashes=dict([job("s.2", 2), job("s.3", None), job("s.4", 1), job("s.5", 0),
                     job("s.7", 0)]))
    held = forensics(fake).holdings(Settings())
    assert set(held) == {"s.1", "s.2", "s.4", "s.6"}  # not s.3, s.5 (no retries), s.7 (failed)
    assert held["s.1"] == "queued in list 'rq:queue:chaos'"
    assert "StartedJobRegistry 'rq:wip:chaos'" in held["s.4"]
    assert "expires in 4" in held["s.4"] and "1 retries left" in held["s.4"]
    assert "scheduled for a retry" in held["s.6"]


def test_empty_waits_only_for_what_rq_will_still_run() -> None:
    fake = FakeRedis()
    broker = forensics(fake)
    assert broker.empty()
    fake.zsets["rq:wip:chaos"] = {f"{job_id_for('s.1')}:e": 0.0}
    fake.hashes.update([job("s.1", 0)])
    assert broker.empty(), "a dead run without retries will only be failed"
    fake.hashes.update([job("s.1", 1)])
    assert not broker.empty(), "its cleanup will retry it"
    fake.zsets["rq:wip:chaos"] = {}
    fake.lists["rq:queue:chaos"] = ["x"]
    assert not broker.empty()


def test_reset_with_workers_running_keeps_their_registrations() -> None:
    fake = FakeRedis(lists={"rq:queue:chaos": ["a"], "rq:workers": ["w"]},
                     hashes={"rq:job:a": {}, "rq:worker:w": {}})
    forensics(fake).reset(idle=False)
    assert set(fake.deleted) == {"rq:queue:chaos", "rq:job:a"}
    assert "rq:workers" in fake.lists and "rq:worker:w" in fake.hashes


# -- clocks and explanations ------------------------------------------------------------------


def _result(configuration: str, fault: str, **counts: int) -> ScenarioResult:
    conf = CONFIGURATIONS[configuration]
    base = dict.fromkeys(("lost", "lost_unstarted", "duplicated", "extra_executions",
                          "re_executed", "redelivered", "stuck", "indeterminate", "failed",
                          "recovered", "truncated_records"), 0)
    return ScenarioResult(
        scenario=f"rq.{configuration}.{fault}", backend="rq", configuration=configuration,
        configuration_summary="", guarantee=conf.guarantee.value, fault=fault,
        fault_description="", seed=1, valid=True, validity="", verdict="holds", reason="",
        counts={**base, **counts}, recovery_s=None, stuck_locations={},
        settings=asdict(conf.settings(Settings())), knobs=conf.knobs.as_dict(),
        fault_kind=FAULTS[fault].kind, fault_target="rq-worker1")


@pytest.mark.parametrize(("config", "fault", "governed"), [
    ("rq-retry-3", "sigkill-worker", True),  # the whole worker: its entry must expire
    ("rq-retry-3", "cut-worker-broker", True),
    ("rq-simple-worker-retry-3", "crash-after-effect", True),  # the crash is the worker's
    ("rq-simple-worker-retry-3", "sigkill-worker", True),
    ("rq-retry-3", "crash-after-effect", False),  # only the horse: its worker retries at once
    ("rq-retry-3", "sigkill-pool-child", False),
    ("rq-retry-3", "sigterm-worker", False),
    ("rq-retry-3", "sigstop-worker", True),  # job_timeout, below
    ("rq-retry-3", "broker-sigkill", False),
])
def test_the_recovery_clock_is_the_abandoned_job_cleanup(config: str, fault: str,
                                                         governed: bool) -> None:
    clock = RQ.recovery_clock(_result(config, fault))
    assert (clock is not None) is governed
    if clock is not None and fault == "sigstop-worker":  # the horse's wall-clock timeout
        assert (clock.name, clock.scenario_s, clock.production_s) == ("job_timeout", 10, 180)
    elif clock is not None and config == "rq-retry-3":  # forks: the monitor's heartbeats
        assert (clock.scenario_s, clock.production_s) == (5 + 60 + 5, 30 + 60 + 600)
    elif clock is not None:  # SimpleWorker: no heartbeat while the job runs
        assert (clock.scenario_s, clock.production_s) == (10 + 60 + 5, 180 + 60 + 600)


def test_clocks_state_the_scenarios_values_and_rqs_defaults() -> None:
    clocks = RQ.clocks(asdict(Settings()))
    assert [(c.name, c.scenario_s, c.production_s) for c in clocks][:4] == [
        ("job_timeout", 10, 180), ("job_monitoring_interval", 5, 30),
        ("maintenance_interval", 5, 600), ("worker_ttl", 20, 420)]
    assert all(c.source.startswith("rq/") for c in clocks[:5])
    # The SIGSTOP outlasts job_timeout: the horse's wall-clock timeout fires when it resumes.
    assert (clocks[-1].name, clocks[-1].scenario_s, clocks[-1].production_s) == (
        "SIGSTOP window", 25, 195)


def test_explanations_name_rqs_own_mechanisms() -> None:
    (line,) = explain(_result("rq-no-retry", "sigkill-pool-child", lost=1))
    assert "FailedJobRegistry" in line and "Retry(max=N)" in line
    (line,) = explain(_result("rq-no-retry", "sigkill-worker", lost=1))
    assert "StartedJobRegistry" in line and "AbandonedJobError" in line
    (line,) = explain(_result("rq-no-retry", "sigstop-worker", lost=1))
    assert "job_timeout (10s)" in line and "JobTimeoutException" in line
    lines = explain(_result("rq-retry-3", "crash-after-effect", duplicated=1, extra_executions=1,
                            re_executed=1, redelivered=1))
    assert "work-horse terminated unexpectedly" in lines[0]
    lines = explain(_result("rq-retry-3", "broker-sigkill", lost=3))
    assert "appendonly" in lines[0]
