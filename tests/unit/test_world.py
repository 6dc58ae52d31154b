"""harness/world.py's scenario start, with the containers and the broker faked: which services
start afresh, and that the broker is emptied before they start, never while they do."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends import REGISTRY
from harness.matrix import CONFIGURATIONS
from harness.topology import Service
from harness.world import Ports, World
from queue_chaos_agent.ledger import LedgerWriter

RABBIT = ("rabbitmq", "rabbit-producer", "rabbit-worker1", "rabbit-worker2")


class FakeCluster:
    """Records what World asks of the containers; a started worker reports ready at once."""

    def __init__(self, log: list[tuple[str, ...]], world: World) -> None:
        self.log = log
        self.world = world
        self.running: set[str] = set()

    def start(self, service: Service) -> None:
        self.log.append(("start", service.name))
        self.running.add(service.name)
        if service.runs_tasks:
            assert self.world.ledger_dir is not None
            LedgerWriter(self.world.ledger_dir, "worker").write("worker_ready",
                                                                worker=service.name)

    def remove(self, name: str) -> None:
        self.log.append(("remove", name))
        self.running.discard(name)

    def is_running(self, name: str) -> bool:
        return name in self.running

    def logs(self, name: str, lines: int = 30) -> str:
        return ""


class FakeBroker:
    def __init__(self, log: list[tuple[str, ...]]) -> None:
        self.log = log

    def ready(self) -> bool:
        return True

    def reset(self, idle: bool = False) -> None:
        self.log.append(("reset", "idle" if idle else "in use"))

    def close(self) -> None:
        return None


@pytest.fixture
def fake_world(monkeypatch: pytest.MonkeyPatch) -> tuple[World, list[tuple[str, ...]]]:
    log: list[tuple[str, ...]] = []
    monkeypatch.setattr(REGISTRY["celery-rabbitmq"], "forensics",
                        lambda port, queue=None: FakeBroker(log))
    the_world = World(object(), "unit", {}, Ports.from_env({}))
    the_world.cluster = FakeCluster(log, the_world)  # type: ignore[assignment]
    the_world.proxies = type("P", (), {"reset": lambda self: None})()
    monkeypatch.setattr(the_world, "_producer_healthy", lambda: True)
    return the_world, log


def begin(world: World, configuration: str, run_dir: Path) -> None:
    world.begin_scenario("celery-rabbitmq", CONFIGURATIONS[configuration].env(), run_dir)


def test_first_start_empties_the_broker_before_any_client_starts(
    fake_world: tuple[World, list[tuple[str, ...]]], tmp_path: Path,
) -> None:
    world, log = fake_world
    begin(world, "rabbit-acks-late", tmp_path)
    starts = [entry[1] for entry in log if entry[0] == "start"]
    assert starts == list(RABBIT)  # broker first
    reset = log.index(("reset", "idle"))
    assert log.index(("start", "rabbitmq")) < reset < log.index(("start", "rabbit-producer"))


def test_unchanged_clients_are_reused_and_the_queue_only_purged(
    fake_world: tuple[World, list[tuple[str, ...]]], tmp_path: Path,
) -> None:
    world, log = fake_world
    begin(world, "rabbit-acks-late", tmp_path)
    log.clear()
    begin(world, "rabbit-acks-late", tmp_path)
    assert log == [("reset", "in use")]


def test_a_touched_worker_starts_afresh_after_the_reset(
    fake_world: tuple[World, list[tuple[str, ...]]], tmp_path: Path,
) -> None:
    world, log = fake_world
    begin(world, "rabbit-acks-late", tmp_path)
    log.clear()
    world.mark_dirty("rabbit-worker1")
    begin(world, "rabbit-acks-late", tmp_path)
    # Fresh workers write to a fresh ledger directory, so both workers start afresh; the
    # producer keeps running, so the queue is purged, not deleted.
    assert log == [("remove", "rabbit-worker1"), ("remove", "rabbit-worker2"),
                   ("reset", "in use"), ("start", "rabbit-worker1"),
                   ("start", "rabbit-worker2")]


def test_a_new_queue_type_restarts_every_client_around_a_deleted_queue(
    fake_world: tuple[World, list[tuple[str, ...]]], tmp_path: Path,
) -> None:
    world, log = fake_world
    begin(world, "rabbit-acks-late-quorum", tmp_path)
    log.clear()
    begin(world, "rabbit-acks-late-confirms", tmp_path)  # quorum -> classic
    clients = RABBIT[1:]
    assert log == [*(("remove", c) for c in clients), ("reset", "idle"),
                   *(("start", c) for c in clients)]
    assert "rabbitmq" not in {entry[1] for entry in log}  # the broker itself is reused
