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
from harness.fault import KINDS, Fault
from harness.faults import FAULTS, BrpopWindowKill, WarmRestarts, window_records
from harness.matrix import CONFIGURATIONS, Settings
from harness.target import Target
from harness.world import World
from queue_chaos_agent.ledger import LedgerWriter, read_ledger
from tests.unit.build import scenario_result

# Faults whose window is no timer: the heal (or the fault itself) waits for the worker.
ENDS_BY_ITSELF = ("sigterm-worker", "sigterm-worker-group", "warm-restarts")
# The cluster profile's faults (harness/clusterfaults.py): on the node leading the task queue.
CLUSTER = ("leader-sigkill", "leader-partition", "leader-sigstop", "rolling-restart")
BROKER_OR_LINK = ("broker-sigkill", "broker-restart", "cut-worker-broker",
                  "blackhole-worker-broker", "latency-worker-broker", "cut-producer-broker")


def brokered(backend: str) -> bool:
    """A single broker every client reaches through Toxiproxy (not FastAPI's app, nor a cluster,
    whose clients reach its nodes directly)."""
    return Capability.BROKERED in REGISTRY[backend].capabilities


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
    assert fault.target in ("worker", "broker", "producer", "leader"), name


def test_targets() -> None:
    assert {n for n, f in FAULTS.items() if f.target == "broker"} == {
        "broker-sigkill", "broker-restart"}
    assert {n for n, f in FAULTS.items() if f.target == "producer"} == {"cut-producer-broker"}
    assert {n for n, f in FAULTS.items() if f.target == "leader"} == set(CLUSTER)


def test_brokered_backends_are_those_with_a_broker() -> None:
    brokered = {n for n, b in REGISTRY.items() if Capability.BROKERED in b.capabilities}
    clustered = {n for n, b in REGISTRY.items() if Capability.CLUSTERED in b.capabilities}
    assert clustered == {"celery-rabbitmq-cluster", "celery-redis-sentinel", "arq-sentinel"}
    # A cluster's clients reach its nodes directly, not through Toxiproxy: not "brokered".
    assert brokered == set(REGISTRY) - {"fastapi"} - clustered


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
        celery = ("celery-redis", "celery-rabbitmq", "celery-rabbitmq-cluster",
                  "celery-redis-sentinel")
        expected = (config.backend in celery and prefork) or (
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
        assert applies(name, configuration) is brokered(config.backend), configuration
    assert not applies(name, "rabbit-cluster-quorum") and not applies(name, "sentinel-acks-late")


@pytest.mark.parametrize("name", ["none", "sigkill-worker", "sigterm-worker", "sigstop-worker",
                                  "crash-after-effect"])
def test_process_faults_apply_everywhere(name: str) -> None:
    for configuration in CONFIGURATIONS:
        assert applies(name, configuration), configuration


def test_window_is_the_fault_window_by_default() -> None:
    settings = Settings(fault_window_s=3.5, stop_window_s=30.0)
    for name, fault in FAULTS.items():
        if name not in ("sigstop-worker", *ENDS_BY_ITSELF, *CLUSTER):
            assert fault.window(settings) == 3.5, name


def test_sigstop_lasts_the_stop_window_and_sigterm_waits_for_the_exit() -> None:
    settings = Settings(fault_window_s=3.5, stop_window_s=30.0)
    assert FAULTS["sigstop-worker"].window(settings) == 30.0
    for name in ENDS_BY_ITSELF:
        assert FAULTS[name].window(settings) == 0.0, name
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


# -- sigterm-worker-group and warm-restarts: outside the default matrix --------------------------


def test_the_shutdown_faults_are_in_no_configuration_of_the_default_matrix() -> None:
    """Each costs more than one scenario's worth of time and answers a reproduction's question
    (kombu#1836, celery#4354/#7950): ``queue-chaos reproduce`` runs them, the matrix does not."""
    assert {n for n, f in FAULTS.items() if not f.in_matrix} == {"sigterm-worker-group",
                                                                  "warm-restarts", *CLUSTER}
    for name in ("sigterm-worker-group", "warm-restarts"):
        assert not [c.name for c in CONFIGURATIONS.values() if name in c.meets], name
        assert FAULTS[name].kind == "worker-death" and FAULTS[name].target == "worker"


def test_sigterm_worker_group_applies_where_tasks_run_in_pool_children() -> None:
    for name in CONFIGURATIONS:
        assert applies("sigterm-worker-group", name) is applies("sigkill-pool-child", name), name
    assert applies("sigterm-worker-group", "acks-late-prefetch-1")
    message = FAULTS["sigterm-worker-group"].unmet(CONFIGURATIONS["acks-late-solo"])
    assert message == ("fault sigterm-worker-group needs pool-children, which configuration "
                       "acks-late-solo (backend celery-redis) does not have: its tasks run in "
                       "the worker's main process, where this fault is sigterm-worker")


def test_warm_restarts_apply_to_every_brokered_backend() -> None:
    for name, config in CONFIGURATIONS.items():
        assert applies("warm-restarts", name) is brokered(config.backend), name
    assert FAULTS["warm-restarts"].unmet(CONFIGURATIONS["fastapi-graceful-10"]).startswith(
        "fault warm-restarts needs brokered, which configuration fastapi-graceful-10")


def test_sigterm_worker_group_signals_every_process_and_counts_what_it_cut(
        tmp_path: Path) -> None:
    world, seen = fake_world(tmp_path, FakeRedisBroker())
    exited: list[str] = []
    cast(Any, world).wait_exited = exited.append
    fault = FAULTS["sigterm-worker-group"]
    fault.inject(world, "worker1")
    fault.heal(world, "worker1")
    assert seen.signals == [("worker1", "SIGTERM")]  # signal_all: every process at once
    assert exited == ["worker1"]
    records = [
        {"kind": "started", "task": "a", "execution": "ea", "worker": "w1", "pid": 8, "t": 1.0},
        {"kind": "started", "task": "b", "execution": "eb", "worker": "w1", "pid": 7, "t": 1.5},
        {"kind": "completed", "task": "a", "execution": "ea", "worker": "w1", "pid": 8,
         "t": 2.9},
    ]
    # The children die: only what never ended was cut (a, finished by the warm shutdown, not).
    assert fault.interrupted(records, "w1", 2.0) == ["b"]
    assert fault.interrupted(records, None, 2.0) == []


def restart_world(tmp_path: Path, busy_after: int) -> tuple[World, list[tuple[str, str]]]:
    """A world whose worker is ready after each restart and runs a task again after the first
    ``busy_after`` of them (each restart and each run a real ledger record)."""
    ledger = LedgerWriter(tmp_path, "worker")
    ledger.write("worker_ready", worker="worker1")
    ledger.write("started", task="t0", execution="e0", worker="worker1", pid=8)
    calls: list[tuple[str, str]] = []
    notes = LedgerWriter(tmp_path, "harness-faults")
    restarts = [0]

    def ready(name: str, since: float) -> None:
        restarts[0] += 1
        ledger.write("worker_ready", worker=name)
        if restarts[0] <= busy_after:
            n = restarts[0]
            ledger.write("started", task=f"t{n}", execution=f"e{n}", worker=name, pid=8)

    world = SimpleNamespace(
        ledger_dir=tmp_path, clock=lambda: 42.0,
        cluster=SimpleNamespace(signal=lambda name, sig: calls.append((name, sig)),
                                restart=lambda name: calls.append((name, "start"))),
        wait_exited=lambda name: calls.append((name, "exited")),
        wait_worker_ready=ready,
        note=lambda kind, **fields: notes.write(kind, **fields),
    )
    return cast(World, world), calls


def test_warm_restarts_restart_mid_task_each_time_up_to_their_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert WarmRestarts.RESTARTS == 20  # as many as celery#4354's reporter needed
    monkeypatch.setattr(WarmRestarts, "RESTARTS", 5)
    world, calls = restart_world(tmp_path, busy_after=10)
    fault = FAULTS["warm-restarts"]
    fault.inject(world, "worker1")
    one = [("worker1", "SIGTERM"), ("worker1", "exited"), ("worker1", "start")]
    assert calls == one * 5
    records = read_ledger([tmp_path]).records
    made = [r for r in records if r["kind"] == "warm_restart"]
    assert [(r["restart"], r["in_flight"]) for r in made] == [
        (1, ["t0"]), (2, ["t1"]), (3, ["t2"]), (4, ["t3"]), (5, ["t4"])]
    (ended,) = read_ledger([tmp_path]).of_kind("warm_restarts_ended")
    assert (ended["restarts"], ended["reason"]) == (5, "all 5 done")
    # Interrupted: whatever ran at any of the restarts (none of these tasks ever ended).
    assert fault.interrupted(records, "worker1", 0.0) == ["t0", "t1", "t2", "t3", "t4"]
    assert fault.interrupted(records, "worker2", 0.0) == []


def test_warm_restarts_end_early_once_the_worker_runs_no_task(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Submissions over, the restarted worker stays idle: the series ends, bounded, and says
    why, rather than restarting an idle worker (which would test nothing) or waiting on."""
    monkeypatch.setattr(WarmRestarts, "BUSY_S", 0.2)
    world, calls = restart_world(tmp_path, busy_after=1)
    FAULTS["warm-restarts"].inject(world, "worker1")
    assert [sig for _, sig in calls].count("SIGTERM") == 2
    (ended,) = read_ledger([tmp_path]).of_kind("warm_restarts_ended")
    assert ended["restarts"] == 2
    assert ended["reason"] == "worker1 ran no task within 0.2s of its restart"


def test_the_shutdown_faults_are_explained_as_warm_shutdowns_not_the_visibility_timeout() -> None:
    """kombu restores a closing channel's unacknowledged messages at once: no recovery after
    either fault waited for the visibility timeout, and a loss is said in the threads' terms."""
    redis = REGISTRY["celery-redis"]

    def result(fault: str, **knobs: Any) -> Any:
        return scenario_result(
            fault=fault, fault_kind="worker-death", fault_target="worker2",
            configuration="acks-early-prefetch-4", recovery_s=3.0,
            settings={"visibility_timeout_s": 15},
            knobs={"acks_late": False, "pool": "prefork", **knobs})

    for fault in ("sigterm-worker", "sigterm-worker-group", "warm-restarts"):
        assert redis.recovery_clock(result(fault)) is None, fault
    assert redis.recovery_clock(result("sigkill-worker")) is not None
    said = redis.lost_unstarted(result("warm-restarts"), "2")
    assert said is not None and "celery#4354" in said and "pending BRPOP" in said
    said = redis.lost(result("warm-restarts"), 2)
    assert said is not None and "should lose none" in said
    said = redis.lost(result("sigterm-worker-group", acks_late=True,
                             reject_on_worker_lost=True), 1)
    assert said is not None and "kombu#1836" in said
    said = redis.lost(result("sigterm-worker-group", acks_late=True), 1)
    assert said is not None and "task_reject_on_worker_lost" in said
    said = redis.fresh_redeliveries(result("warm-restarts"), 3)
    assert said is not None and "at warm shutdown" in said


# -- cluster faults: the clusters profile only -------------------------------------------------


@pytest.mark.parametrize("name", CLUSTER)
def test_cluster_faults_need_a_clustered_broker_and_say_so(name: str) -> None:
    fault = FAULTS[name]
    assert fault.kind == "cluster" and fault.target == "leader"
    assert fault.needs == frozenset({Capability.CLUSTERED})
    for configuration, config in CONFIGURATIONS.items():
        clustered = Capability.CLUSTERED in REGISTRY[config.backend].capabilities
        assert applies(name, configuration) is clustered, configuration
    assert applies(name, "rabbit-cluster-quorum") and applies(name, "sentinel-acks-late")
    assert fault.unmet(CONFIGURATIONS["rabbit-acks-late-quorum"]) == (
        f"fault {name} needs clustered, which configuration rabbit-acks-late-quorum "
        "(backend celery-rabbitmq) does not have")


@pytest.mark.parametrize("name", CLUSTER)
def test_cluster_faults_are_in_no_configuration_of_the_default_profile(name: str) -> None:
    assert not FAULTS[name].in_matrix
    default = [c.name for c in CONFIGURATIONS.values()
               if REGISTRY[c.backend].matrix_profile == "default" and name in c.meets]
    assert default == []
    # ... and every configuration of the clusters profile meets it
    clusters = [c for c in CONFIGURATIONS.values()
                if REGISTRY[c.backend].matrix_profile == "clusters"]
    assert clusters and all(name in c.meets for c in clusters)


@pytest.mark.parametrize("name", CLUSTER)
def test_cluster_faults_hold_the_node_out_for_the_partition_window(name: str) -> None:
    settings = Settings(fault_window_s=3.5, stop_window_s=30.0, partition_window_s=17.0)
    # a rolling restart ends by itself, with every node back
    assert FAULTS[name].window(settings) == (0.0 if name == "rolling-restart" else 17.0)
    # past RabbitMQ's net_ticktime (10 s) and Sentinel's down-after (2 s), by default
    assert Settings().partition_window_s > 10


@pytest.mark.parametrize("name", ["leader-partition", "leader-sigstop"])
def test_a_partition_or_freeze_the_cluster_never_felt_is_invalid(name: str) -> None:
    fault = FAULTS[name]
    assert fault.validity({}, [], 5.0) is not None
    felt_before = [{"kind": "target_down", "t": 4.0, "node": "rabbitmq1", "after_s": 0.1}]
    assert fault.validity({}, felt_before, 5.0) is not None
    felt = [{"kind": "target_down", "t": 9.0, "node": "rabbitmq1", "after_s": 4.0}]
    assert fault.validity({}, felt, 5.0) is None


@pytest.mark.parametrize("name", ["leader-sigkill", "rolling-restart"])
def test_a_kill_or_restart_is_felt_by_construction(name: str) -> None:
    assert FAULTS[name].validity({}, [], 5.0) is None
