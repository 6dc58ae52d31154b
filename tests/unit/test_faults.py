"""harness/faults.py: the catalogue — what each fault targets, where it applies, how long."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from signal import Signals
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harness.backend import Capability
from harness.backends import REGISTRY
from harness.backends.celery_redis import CeleryRedisForensics
from harness.backends.redisbroker import AckEmulation, Handover
from harness.faults import FAULTS, KINDS, BrpopWindowKill, Fault, window_records
from harness.matrix import CONFIGURATIONS, Settings
from harness.target import Target
from harness.world import World
from queue_chaos_agent.ledger import LedgerWriter, read_ledger

BROKER_OR_LINK = ("broker-sigkill", "broker-restart", "cut-worker-broker",
                  "blackhole-worker-broker", "latency-worker-broker", "cut-producer-broker")


def applies(fault: str, configuration: str) -> bool:
    config = CONFIGURATIONS[configuration]
    return FAULTS[fault].applies(config)


def test_registry_names_match() -> None:
    assert "none" in FAULTS
    for name, fault in FAULTS.items():
        assert isinstance(fault, Fault)
        assert fault.name == name


@pytest.mark.parametrize("name", list(FAULTS))
def test_every_fault_has_a_description_and_a_target(name: str) -> None:
    fault = FAULTS[name]
    assert fault.description.strip(), name
    assert not fault.description.endswith("."), name  # the report adds the full stop
    assert fault.target in ("worker", "broker", "producer"), name


def test_targets() -> None:
    assert {n for n, f in FAULTS.items() if f.target == "broker"} == {
        "broker-sigkill", "broker-restart"}
    assert {n for n, f in FAULTS.items() if f.target == "producer"} == {"cut-producer-broker"}


def test_brokered_backends_are_those_with_a_broker() -> None:
    brokered = {n for n, b in REGISTRY.items() if Capability.BROKERED in b.capabilities}
    assert brokered == set(REGISTRY) - {"fastapi"}


def test_faults_ask_for_capabilities_and_say_what_is_missing() -> None:
    for fault in FAULTS.values():
        assert fault.kind in KINDS, fault.name
        assert fault.control is (fault.name == "none")
    message = FAULTS["sigkill-pool-child"].unmet(CONFIGURATIONS["arq-max-tries-5"])
    assert message == ("fault sigkill-pool-child needs pool-children, which configuration "
                       "arq-max-tries-5 (backend arq) does not have")


def test_crash_after_effect_is_valid_only_when_a_task_crashed() -> None:
    fault = FAULTS["crash-after-effect"]
    assert fault.validity({"crashed_runs": 0}) == (
        "no task crashed after its side effect within the fault window")
    assert fault.validity({"crashed_runs": 1}) is None
    assert FAULTS["sigkill-worker"].validity({}) is None


def test_sigkill_pool_child_applies_only_to_celery_with_prefork() -> None:
    for name, config in CONFIGURATIONS.items():
        prefork = getattr(config.knobs, "pool", None) == "prefork"
        forks = getattr(config.knobs, "rq_worker_class", None) == "Worker"  # RQ's work horse
        expected = (config.backend in ("celery-redis", "celery-rabbitmq") and prefork) or (
            config.backend == "rq" and forks)
        assert applies("sigkill-pool-child", name) is expected, name
    assert applies("sigkill-pool-child", "acks-late-prefetch-1")
    assert applies("sigkill-pool-child", "rabbit-acks-late")
    assert not applies("sigkill-pool-child", "acks-late-threads")
    assert not applies("sigkill-pool-child", "arq-max-tries-5")
    assert not applies("sigkill-pool-child", "fastapi-graceful-10")


@pytest.mark.parametrize("name", BROKER_OR_LINK)
def test_broker_and_link_faults_need_a_broker(name: str) -> None:
    for configuration, config in CONFIGURATIONS.items():
        assert applies(name, configuration) is (config.backend != "fastapi"), configuration


@pytest.mark.parametrize("name", ["none", "sigkill-worker", "sigterm-worker", "sigstop-worker",
                                  "crash-after-effect"])
def test_process_faults_apply_everywhere(name: str) -> None:
    for configuration in CONFIGURATIONS:
        assert applies(name, configuration), configuration


def test_window_is_the_fault_window_by_default() -> None:
    settings = Settings(fault_window_s=3.5, stop_window_s=30.0)
    for name, fault in FAULTS.items():
        if name not in ("sigstop-worker", "sigterm-worker"):
            assert fault.window(settings) == 3.5, name


def test_sigstop_lasts_the_stop_window_and_sigterm_waits_for_the_exit() -> None:
    settings = Settings(fault_window_s=3.5, stop_window_s=30.0)
    assert FAULTS["sigstop-worker"].window(settings) == 30.0
    assert FAULTS["sigterm-worker"].window(settings) == 0.0
    # by default the stop outlasts the visibility timeout, so a redelivery can happen
    assert Settings().stop_window_s > Settings().visibility_timeout_s


def test_a_kill_counts_only_the_executions_it_cut() -> None:
    records = [
        {"kind": "started", "task": "a", "execution": "ea", "worker": "w1", "pid": 8, "t": 1.0},
        {"kind": "started", "task": "b", "execution": "eb", "worker": "w1", "pid": 7, "t": 1.5},
        {"kind": "completed", "task": "a", "execution": "ea", "worker": "w1", "pid": 8,
         "t": 2.9},
        {"kind": "process_killed", "worker": "w1", "killed_pid": 8, "t": 3.0},
    ]
    # The child the pool-child kill hit had just finished a: it cut nothing (invalid, re-run).
    assert FAULTS["sigkill-pool-child"].interrupted(records, "w1", 2.8) == []
    assert FAULTS["sigkill-worker"].interrupted(records, "w1", 3.0) == ["b"]
    # A warm shutdown lets tasks finish: what ran when it fired counts.
    assert FAULTS["sigterm-worker"].interrupted(records, "w1", 2.8) == ["a", "b"]


# -- brpop-window-kill: kombu's BRPOP window, reproduced -----------------------------------------


def test_brpop_window_kill_applies_to_kombus_redis_transport_only() -> None:
    for name, config in CONFIGURATIONS.items():
        assert applies("brpop-window-kill", name) is (config.backend == "celery-redis"), name
    fault = FAULTS["brpop-window-kill"]
    assert fault.kind == "worker-death" and fault.target == "worker"
    assert fault.unmet(CONFIGURATIONS["rabbit-acks-late"]) == (
        "fault brpop-window-kill needs a transport that pops a message off the queue before "
        "recording it as unacknowledged (kombu's Redis transport), which configuration "
        "rabbit-acks-late (backend celery-rabbitmq) does not use")
    assert fault.unmet(CONFIGURATIONS["fastapi-graceful-10"]).startswith(
        "fault brpop-window-kill needs brokered, which configuration fastapi-graceful-10")
    team = replace(CONFIGURATIONS["acks-late-prefetch-1"], name="shop",
                   target=cast(Target, SimpleNamespace()))
    assert not fault.applies(team)
    assert "not on a team's target (shop)" in fault.unmet(team)


def test_brpop_window_kill_is_in_the_default_matrix_once_with_acks_late() -> None:
    meeting = [c for c in CONFIGURATIONS.values() if "brpop-window-kill" in c.meets]
    assert [c.name for c in meeting] == ["acks-late-prefetch-1"]
    assert meeting[0].guarantee.value == "at-least-once"


def window(task: str, t: float, worker: str = "w1", lost: bool = True,
           killed_t: float = 5.0) -> dict[str, Any]:
    return {"kind": "brpop_window", "task": task, "worker": worker, "t": t,
            "killed_t": killed_t, "lost_at_kill": lost}


def test_brpop_window_kill_catches_the_window_task_and_what_the_kill_cut() -> None:
    fault = FAULTS["brpop-window-kill"]
    records = [
        {"kind": "started", "task": "run", "execution": "er", "worker": "w1", "pid": 8, "t": 4.0},
        {"kind": "started", "task": "done", "execution": "ed", "worker": "w1", "pid": 9,
         "t": 3.0},
        {"kind": "completed", "task": "done", "execution": "ed", "worker": "w1", "pid": 9,
         "t": 4.5},
        window("popped", 5.1),
    ]
    assert fault.interrupted(records, "w1", 2.0) == ["popped", "run"]
    # Another scenario's record (before this one fired), another worker's, or a task that was
    # recorded after all: nothing caught, so the scenario measured nothing and runs again.
    assert fault.interrupted(records, "w1", 6.0) == []
    assert fault.interrupted(records, "w2", 2.0) == []
    assert fault.interrupted([*records[:3], window("popped", 5.1, lost=False)], "w1", 2.0) == []
    assert fault.interrupted(records[:3], "w1", 2.0) == []
    assert window_records(records, None, 0.0) == [records[3]]


class FakeRedisBroker:
    """The broker's reads, one scripted Handover per call, the last one repeated."""

    def __init__(self, *reads: tuple[set[str], set[str]]) -> None:
        self.reads = [Handover(frozenset(q), frozenset(u)) for q, u in reads]
        self.calls = 0

    def handover(self) -> Handover:
        self.calls += 1
        return self.reads[min(self.calls, len(self.reads)) - 1]


class FakeProxy:
    def __init__(self, name: str) -> None:
        self.name = name
        self.added: list[dict[str, Any]] = []

    def add_toxic(self, **toxic: Any) -> None:
        self.added.append(toxic)

    def toxics(self) -> dict[str, Any]:
        return {t["name"]: t for t in self.added}


def fake_world(tmp_path: Path, broker: FakeRedisBroker) -> tuple[World, SimpleNamespace]:
    """What the fault uses of a world: broker, ledger, proxies, cluster, clock and notes."""
    seen = SimpleNamespace(proxy=FakeProxy("worker1_redis"), signals=[], alive=True)
    notes = LedgerWriter(tmp_path, "harness-faults")

    def signal(name: str, sig: str) -> None:
        seen.signals.append((name, sig))
        seen.alive = False

    def signal_all(name: str, sig: int) -> None:
        seen.signals.append((name, Signals(sig).name))

    world = SimpleNamespace(
        broker=broker, ledger_dir=tmp_path, backend="celery-redis",
        proxies=SimpleNamespace(proxy=lambda name: seen.proxy),
        proxy_of=lambda service: "worker1_redis",
        cluster=SimpleNamespace(signal=signal, signal_all=signal_all,
                                is_running=lambda name: seen.alive),
        clock=lambda: 42.0,
        note=lambda kind, **fields: notes.write(kind, **fields),
    )
    return cast(World, world), seen


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fault's spans, short enough for a unit test."""
    monkeypatch.setattr(BrpopWindowKill, "HOLD_S", 0.05)
    monkeypatch.setattr(BrpopWindowKill, "CONFIRM_S", 0.1)
    monkeypatch.setattr(BrpopWindowKill, "WATCH_S", 1.0)


@pytest.mark.usefixtures("quick")
def test_brpop_window_kill_freezes_proves_kills_and_records(tmp_path: Path) -> None:
    ledger = LedgerWriter(tmp_path, "worker")
    ledger.write("worker_ready", worker="worker1")
    ledger.write("started", task="c", execution="ec", worker="worker1", pid=8)
    # a, b, c queued; then c runs (started, unacked), b is recorded as unacked, a is nowhere,
    # and stays nowhere with the worker frozen: the worker is killed, a recorded lost.
    broker = FakeRedisBroker(({"a", "b", "c"}, set()), (set(), {"b", "c"}))
    world, seen = fake_world(tmp_path, broker)
    assert isinstance(broker, AckEmulation)
    FAULTS["brpop-window-kill"].inject(world, "worker1")
    assert seen.proxy.added == [{"name": "brpop_window_bandwidth", "type": "bandwidth",
                                 "stream": "downstream", "attributes": {"rate": 1}}]
    assert seen.signals == [("worker1", "SIGSTOP"), ("worker1", "SIGKILL")]
    (record,) = read_ledger([tmp_path]).of_kind("brpop_window")
    assert (record["task"], record["worker"], record["killed_t"]) == ("a", "worker1", 42.0)
    assert record["lost_at_kill"] is True and record["held_s"] >= 0.15
    assert (record["freezes"], record["queued"], record["unacked"]) == (1, 0, 2)


@pytest.mark.usefixtures("quick")
def test_brpop_window_kill_thaws_a_worker_whose_candidate_was_recorded(tmp_path: Path) -> None:
    """A task in the window that is recorded once the worker is frozen was not that worker's
    (or it recorded it just before the freeze): thaw it and keep watching, within bounds."""

    class Recorded(FakeRedisBroker):
        def handover(self) -> Handover:
            self.calls += 1
            if self.calls == 1:
                return Handover(frozenset({"a"}), frozenset())
            return Handover(frozenset(), frozenset({"a"} if self.calls > 4 else ()))

    world, seen = fake_world(tmp_path, Recorded())
    fault = FAULTS["brpop-window-kill"]
    fault.inject(world, "worker1")
    assert seen.signals == [("worker1", "SIGSTOP"), ("worker1", "SIGCONT")]
    records = read_ledger([tmp_path]).records
    assert [r["kind"] for r in records] == ["brpop_window_missed"]
    assert "freeze 1: ['a'] recorded within 0.1s of the freeze" in records[0]["reason"]
    assert "recorded nowhere for 0.05s" in records[0]["reason"]  # then the watch ran out
    assert fault.interrupted(records, "worker1", 0.0) == []


@pytest.mark.usefixtures("quick")
def test_brpop_window_kill_without_a_window_kills_nothing(tmp_path: Path) -> None:
    broker = FakeRedisBroker(({"a"}, set()), (set(), {"a"}))  # recorded at once: no window
    world, seen = fake_world(tmp_path, broker)
    FAULTS["brpop-window-kill"].inject(world, "worker1")
    assert seen.signals == []
    records = read_ledger([tmp_path]).records
    assert [r["kind"] for r in records] == ["brpop_window_missed"]


def test_brpop_window_kill_refuses_a_broker_that_cannot_read_both_keys(tmp_path: Path) -> None:
    world, seen = fake_world(tmp_path, FakeRedisBroker())
    world.broker = cast(Any, SimpleNamespace())  # no handover: not kombu's ack emulation
    with pytest.raises(TypeError, match="cannot read the queue and the unacknowledged record"):
        FAULTS["brpop-window-kill"].inject(world, "worker1")
    assert seen.signals == [] and seen.proxy.added == []


class FakePipeline:
    def __init__(self, keys: dict[str, Any]) -> None:
        self.keys = keys
        self.calls: list[tuple[str, str]] = []
        self.queued: list[Any] = []

    def __enter__(self) -> FakePipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def lrange(self, key: str, start: int, end: int) -> None:
        self.calls.append(("lrange", key))
        self.queued.append(self.keys[key])

    def hvals(self, key: str) -> None:
        self.calls.append(("hvals", key))
        self.queued.append(self.keys[key])

    def execute(self) -> list[Any]:
        return list(self.queued)


def message(task: str) -> dict[str, Any]:
    return {"headers": {"id": task}, "properties": {"correlation_id": task}}


def test_kombus_queue_and_unacked_hash_are_read_in_one_transaction() -> None:
    forensics = CeleryRedisForensics(6379)
    pipe = FakePipeline({
        "chaos": [json.dumps(message("q1")).encode(), json.dumps(message("q2")).encode()],
        "unacked": [json.dumps([message("u1"), "chaos", "chaos"]).encode()],
    })
    transactions: list[bool] = []

    def pipeline(transaction: bool) -> FakePipeline:
        transactions.append(transaction)
        return pipe

    forensics.client = cast(Any, SimpleNamespace(pipeline=pipeline))
    assert forensics.handover() == Handover(frozenset({"q1", "q2"}), frozenset({"u1"}))
    assert transactions == [True]
    assert pipe.calls == [("lrange", "chaos"), ("hvals", "unacked")]
