"""harness/backends/dramatiq*.py and the stdlib part of queue_chaos_agent/dramatiq.py: Dramatiq's
claims from its knobs, its forensics on both brokers (against fakes of the few Redis commands
and API answers they read: the real ones run in the container tests and the scenarios), its
clocks and its explanations."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import pytest

from harness.backend import Capability
from harness.backends import REGISTRY
from harness.backends.dramatiq_rabbitmq import DramatiqRabbitForensics, DramatiqRabbitKnobs
from harness.backends.dramatiq_redis import DramatiqRedisForensics, DramatiqRedisKnobs
from harness.checker import Guarantee
from harness.explain import explain
from harness.faults import FAULTS
from harness.matrix import CONFIGURATIONS, Settings
from harness.result import ScenarioResult
from queue_chaos_agent import dramatiq as agent
from queue_chaos_agent.target import TargetError

REDIS = REGISTRY["dramatiq-redis"]
RABBIT = REGISTRY["dramatiq-rabbitmq"]


@pytest.mark.parametrize(("backend", "knobs", "expected"), [
    (REDIS, DramatiqRedisKnobs(), Guarantee.AT_LEAST_ONCE),  # acks after processing
    (REDIS, DramatiqRedisKnobs(idempotent=True), Guarantee.EFFECTIVELY_ONCE),
    (RABBIT, DramatiqRabbitKnobs(), Guarantee.AT_LEAST_ONCE),
    (RABBIT, DramatiqRabbitKnobs(dramatiq_confirm_delivery=True), Guarantee.AT_LEAST_ONCE),
    (RABBIT, DramatiqRabbitKnobs(idempotent=True), Guarantee.EFFECTIVELY_ONCE),
])
def test_dramatiq_claims_at_least_once_and_a_key_makes_it_effectively_once(
        backend: Any, knobs: Any, expected: Guarantee) -> None:
    assert backend.guarantee(knobs) is expected


def test_knobs_refuse_impossible_values() -> None:
    with pytest.raises(ValueError, match="dramatiq_threads=0"):
        DramatiqRedisKnobs(dramatiq_threads=0)


def test_no_pool_children_the_worker_runs_messages_in_its_own_threads() -> None:
    for name in ("dramatiq-redis", "dramatiq-rabbitmq-confirm"):
        assert Capability.POOL_CHILDREN not in CONFIGURATIONS[name].capabilities
        assert Capability.BROKERED in CONFIGURATIONS[name].capabilities
    assert not FAULTS["sigkill-pool-child"].applies(CONFIGURATIONS["dramatiq-redis"])
    assert not FAULTS["brpop-window-kill"].applies(CONFIGURATIONS["dramatiq-redis"])


def test_configurations_say_what_they_run_and_the_workers_report_it() -> None:
    assert CONFIGURATIONS["dramatiq-redis"].summary == (
        "Dramatiq Worker, worker_threads=2, acks after processing (its only mode), on Redis "
        "(RedisBroker)")
    assert "confirm_delivery=True" in CONFIGURATIONS["dramatiq-rabbitmq-confirm"].summary
    ready = {"broker": "rabbitmq", "threads": 2, "confirm_delivery": True, "queue": "chaos",
             "task": agent.PROBE}
    config = CONFIGURATIONS["dramatiq-rabbitmq-confirm"]
    assert config.mismatch(config.running(ready, False)) is None
    wrong = CONFIGURATIONS["dramatiq-rabbitmq"]
    assert "dramatiq_confirm_delivery declared False, running True" in str(
        wrong.mismatch(wrong.running(ready, False)))


def test_the_scenario_hands_the_redis_workers_dramatiqs_compressed_clocks() -> None:
    env = CONFIGURATIONS["dramatiq-redis"].variables(Settings(), {})
    assert (env["CHAOS_DRAMATIQ_HEARTBEAT_TIMEOUT_MS"],
            env["CHAOS_DRAMATIQ_MAINTENANCE_CHANCE"]) == ("10000", "1000000")
    longer = CONFIGURATIONS["dramatiq-redis-heartbeat-30"].variables(Settings(), {})
    assert longer["CHAOS_DRAMATIQ_HEARTBEAT_TIMEOUT_MS"] == "30000"
    assert env["CHAOS_DRAMATIQ_THREADS"] == "2" and env["CHAOS_IDEMPOTENT"] == "false"
    assert "CHAOS_DRAMATIQ_HEARTBEAT_TIMEOUT_MS" not in (
        CONFIGURATIONS["dramatiq-rabbitmq"].variables(Settings(), {}))


# -- the agent's stdlib part ------------------------------------------------------------------


class TheirSettings:
    """A team's settings class, as the agent finds it: what it does not set is Dramatiq's."""

    queues: ClassVar[list[str]] = ["emails", "other"]
    threads: ClassVar[int] = 4


def test_the_agent_reads_a_settings_class_with_dramatiqs_defaults() -> None:
    assert agent.is_settings(TheirSettings) and not agent.is_settings(object())
    assert agent.queue_name(TheirSettings) == "emails"
    assert agent.broker_kind("redis://x:6379/0") == "redis"
    assert agent.broker_kind("amqp://guest:guest@x:5672/%2F") == "rabbitmq"
    with pytest.raises(TargetError, match="expected redis:// or amqp://"):
        agent.broker_kind("kafka://x:1")
    assert agent.effective(TheirSettings, "emails", "redis://x/0") == {
        "broker": "redis", "threads": 4, "queue": "emails", "task": agent.PROBE,
        "heartbeat_timeout": 60000, "maintenance_chance": 1000}
    assert agent.effective(TheirSettings, "emails", "amqp://x//")["confirm_delivery"] is False


# -- forensics --------------------------------------------------------------------------------


@dataclass
class FakeRedis:
    """The Redis commands DramatiqRedisForensics uses, on in-memory keys."""

    lists: dict[str, list[str]] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    zsets: dict[str, dict[str, float]] = field(default_factory=dict)
    hashes: dict[str, dict[str, str]] = field(default_factory=dict)

    def lrange(self, key: str, start: int, end: int) -> list[bytes]:
        return [v.encode() for v in self.lists.get(key, [])]

    def smembers(self, key: str) -> set[bytes]:
        return {v.encode() for v in self.sets.get(key, set())}

    def zrange(self, key: str, start: int, end: int, withscores: bool = False) -> list[Any]:
        items = sorted(self.zsets.get(key, {}).items(), key=lambda kv: kv[1])
        return [(k.encode(), s) for k, s in items] if withscores else [k.encode() for k, _ in items]

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        return {k.encode(): v.encode() for k, v in self.hashes.get(key, {}).items()}

    def hlen(self, key: str) -> int:
        return len(self.hashes.get(key, {}))

    def scan_iter(self, match: str, count: int) -> Iterator[bytes]:
        pattern = re.compile(re.escape(match).replace(r"\*", ".*"))
        keys = [*self.lists, *self.sets, *self.zsets, *self.hashes]
        return iter([k.encode() for k in keys if pattern.fullmatch(k)])


def redis_forensics(fake: FakeRedis) -> DramatiqRedisForensics:
    broker = DramatiqRedisForensics(1)
    broker.client.close()
    broker.client = fake  # type: ignore[assignment]
    return broker


def body(task: str) -> str:
    return json.dumps({"queue_name": "chaos", "actor_name": agent.PROBE, "message_id": task})


def test_only_what_dramatiq_will_still_run_is_held() -> None:
    fake = FakeRedis(
        lists={"dramatiq:chaos": ["r1"]},
        sets={"dramatiq:__acks__.w1.chaos": {"r2", "r3"},
              "dramatiq:__acks__.w1.chaos.DQ": {"r5"}},
        zsets={"dramatiq:__heartbeats__": {"w1": (time.time() - 42) * 1000},
               "dramatiq:chaos.XQ": {"r4": 1.0}},
        hashes={"dramatiq:chaos.msgs": {"r1": body("s.1"), "r2": body("s.2")},
                "dramatiq:chaos.XQ.msgs": {"r4": body("s.4")},
                "dramatiq:chaos.DQ.msgs": {"r5": body("s.5")}})
    held = redis_forensics(fake).holdings(Settings())
    # not r3 (acked: gone from the hash), nor s.4 (dead-lettered: never run again)
    assert set(held) == {"s.1", "s.2", "s.5"}
    assert held["s.1"] == "queued in list 'dramatiq:chaos'"
    assert "dramatiq:__acks__.w1.chaos" in held["s.2"] and "heartbeat_timeout" in held["s.2"]
    assert "last heartbeat 42s ago" in held["s.2"]


def test_empty_waits_for_the_message_hashes() -> None:
    fake = FakeRedis()
    broker = redis_forensics(fake)
    assert broker.empty()
    fake.hashes["dramatiq:chaos.XQ.msgs"] = {"r": body("s.1")}
    assert broker.empty(), "a dead-lettered message will never run again"
    fake.hashes["dramatiq:chaos.msgs"] = {"r": body("s.1")}
    assert not broker.empty()


def test_a_rabbitmq_message_is_named_by_its_bodys_message_id() -> None:
    assert DramatiqRabbitForensics.task_of({"payload": body("s.9")}) == "s.9"
    assert DramatiqRabbitForensics.task_of({"payload": "not json"}) is None
    assert DramatiqRabbitForensics.task_of({"payload_encoding": "base64"}) is None


# -- clocks and explanations ------------------------------------------------------------------


def _result(configuration: str, fault: str, **counts: int) -> ScenarioResult:
    conf = CONFIGURATIONS[configuration]
    base = dict.fromkeys(("lost", "lost_unstarted", "duplicated", "extra_executions",
                          "re_executed", "redelivered", "stuck", "indeterminate", "failed",
                          "recovered", "truncated_records"), 0)
    return ScenarioResult(
        scenario=f"{conf.backend}.{configuration}.{fault}", backend=conf.backend,
        configuration=configuration, configuration_summary="", guarantee=conf.guarantee.value,
        fault=fault, fault_description="", seed=1, valid=True, validity="", verdict="holds",
        reason="", counts={**base, **counts}, recovery_s=None, stuck_locations={},
        settings=asdict(conf.settings(Settings())), knobs=conf.knobs.as_dict(),
        fault_kind=FAULTS[fault].kind, fault_target="dramatiq-worker1")


@pytest.mark.parametrize(("fault", "governed"), [
    ("sigkill-worker", True),  # its acks set waits for its heartbeat to go stale
    ("crash-after-effect", True),
    ("cut-worker-broker", True),
    ("sigstop-worker", True),
    ("sigterm-worker", False),  # it requeues its prefetched messages itself
    ("broker-sigkill", False),
])
def test_the_recovery_clock_is_the_heartbeat_and_maintenance(fault: str, governed: bool) -> None:
    clock = REDIS.recovery_clock(_result("dramatiq-redis", fault))
    assert (clock is not None) is governed
    if clock is not None:
        assert (clock.scenario_s, clock.production_s) == (10 + 1, 60 + 250)
    rabbit = RABBIT.recovery_clock(_result("dramatiq-rabbitmq", fault))
    assert (rabbit is not None) is (fault == "sigstop-worker"), "only a stall waits for it"


def test_clocks_state_the_scenarios_values_and_dramatiqs_defaults() -> None:
    clocks = REDIS.clocks(asdict(Settings()))
    assert [(c.name, c.scenario_s, c.production_s) for c in clocks][:1] == [
        ("heartbeat_timeout", 10, 60)]
    assert all(c.source.startswith("dramatiq/") for c in clocks[:3])
    assert (clocks[-1].name, clocks[-1].scenario_s, clocks[-1].production_s) == (
        "SIGSTOP window", 25, 75)
    assert [(c.name, c.scenario_s, c.production_s) for c in RABBIT.clocks({})] == [
        ("AMQP heartbeat timeout", 10, 60)]


def test_explanations_name_dramatiqs_own_mechanisms() -> None:
    lines = explain(_result("dramatiq-redis", "crash-after-effect", duplicated=1,
                            extra_executions=1, re_executed=1, redelivered=1))
    assert "acknowledged" in lines[0]
    lines = explain(_result("dramatiq-redis", "sigstop-worker", duplicated=1,
                            extra_executions=1, re_executed=1, redelivered=1))
    assert "heartbeat_timeout" in lines[0]
    lines = explain(_result("dramatiq-redis", "broker-sigkill", lost=3))
    assert "appendonly" in lines[0]
    lines = explain(_result("dramatiq-rabbitmq", "broker-sigkill", lost=3))
    assert "confirm_delivery=True" in lines[0]


def test_a_longer_heartbeat_is_read_back_from_the_workers_and_governs_recovery() -> None:
    config = CONFIGURATIONS["dramatiq-redis-heartbeat-30"]
    ready = {"threads": 2, "heartbeat_timeout": 10000}
    assert "dramatiq_heartbeat_timeout_ms declared 30000, running 10000" in str(
        config.mismatch(config.running(ready, False)))
    clock = REDIS.recovery_clock(_result("dramatiq-redis-heartbeat-30", "sigkill-worker"))
    assert clock is not None and (clock.scenario_s, clock.production_s) == (30 + 1, 30 + 250)
    with pytest.raises(ValueError, match="dramatiq_heartbeat_timeout_ms=10; valid: 1000 or more"):
        DramatiqRedisKnobs(dramatiq_heartbeat_timeout_ms=10)
