"""harness/world.py's scenario start, with the containers and the broker faked: which services
start afresh, and that the broker is emptied before they start, never while they do; what the
world keeps for a report's provenance (images run, servers' versions)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest

from harness.backends import REGISTRY
from harness.matrix import CONFIGURATIONS
from harness.topology import Service
from harness.world import Ports, World
from queue_chaos_agent.ledger import LedgerWriter

RABBIT = ("rabbitmq", "rabbit-producer", "rabbit-worker1", "rabbit-worker2")


class FakeCluster:
    """Records what World asks of the containers; a started worker reports ready at once."""

    engine = None

    def __init__(self, log: list[tuple[str, ...]], world: World) -> None:
        self.log = log
        self.world = world
        self.running: set[str] = set()

    def start(self, service: Service) -> SimpleNamespace:
        self.log.append(("start", service.name))
        self.running.add(service.name)
        if service.runs_tasks:
            assert self.world.ledger_dir is not None
            LedgerWriter(self.world.ledger_dir, "worker").write("worker_ready",
                                                                worker=service.name)
        return SimpleNamespace(attrs={"Image": f"sha256:{service.name}"})

    def read_file(self, name: str, path: str) -> bytes:
        self.log.append(("read", name, path))
        return b"\nmod\tgithub.com/Shopify/toxiproxy/v2\tv2.12.0\th1:x=\n"

    def remove(self, name: str) -> None:
        self.log.append(("remove", name))
        self.running.discard(name)

    def is_running(self, name: str) -> bool:
        return name in self.running

    def logs(self, name: str, lines: int = 30) -> str:
        return ""


class FakeBroker:
    versions: ClassVar[dict[str, str]] = {"rabbitmq-server": "3.10.8", "erlang": "25.2.3"}

    def __init__(self, log: list[tuple[str, ...]]) -> None:
        self.log = log

    def ready(self) -> bool:
        return True

    def server_versions(self) -> dict[str, str]:
        self.log.append(("versions",))
        return dict(self.versions)

    def reset(self, idle: bool = False) -> None:
        self.log.append(("reset", "idle" if idle else "in use"))

    def close(self) -> None:
        return None


class FakeProxies:
    """Toxiproxy's API: ready at once; its version is only in its binary (a local build)."""

    def reset(self) -> None:
        return None

    def wait_ready(self, expected: object) -> None:
        return None

    def server_versions(self, binary: Callable[[], bytes]) -> dict[str, str]:
        return {"toxiproxy": "2.12.0"} if b"v2.12.0" in binary() else {"toxiproxy": "git"}


class FakeEngine:
    """What World.__init__ asks of the engine itself: the networks in use (free_subnets)."""

    def __init__(self) -> None:
        self.networks = SimpleNamespace(list=lambda **_: [])


@pytest.fixture
def fake_world(monkeypatch: pytest.MonkeyPatch) -> tuple[World, list[tuple[str, ...]]]:
    log: list[tuple[str, ...]] = []
    for backend in ("celery-rabbitmq", "celery-redis"):
        monkeypatch.setattr(REGISTRY[backend], "forensics",
                            lambda port, queue=None, nodes=None: FakeBroker(log))
    the_world = World(FakeEngine(), "unit", {}, Ports.from_env({}))
    the_world.cluster = FakeCluster(log, the_world)  # type: ignore[assignment]
    the_world.proxies = FakeProxies()  # type: ignore[assignment]
    monkeypatch.setattr(the_world, "_producer_healthy", lambda: True)
    return the_world, log


def begin(world: World, configuration: str, run_dir: Path) -> None:
    world.begin_scenario("celery-rabbitmq", CONFIGURATIONS[configuration].env(), run_dir)
    while ("versions",) in world_log(world):  # the provenance read is tested on its own
        world_log(world).remove(("versions",))


def world_log(world: World) -> list[tuple[str, ...]]:
    return world.cluster.log  # type: ignore[attr-defined,no-any-return]


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


# -- provenance -------------------------------------------------------------------------------


def test_the_broker_is_asked_its_versions_once_per_backend(
    fake_world: tuple[World, list[tuple[str, ...]]], tmp_path: Path,
) -> None:
    world, log = fake_world
    rabbit = CONFIGURATIONS["rabbit-acks-late"].env()
    world.begin_scenario("celery-rabbitmq", rabbit, tmp_path)
    world.mark_dirty("rabbitmq")  # a broker fault: the broker starts afresh, same image
    world.begin_scenario("celery-rabbitmq", rabbit, tmp_path)
    assert log.count(("versions",)) == 1
    assert world.servers == FakeBroker.versions
    # Each switch of backend reads its broker's anew.
    world.begin_scenario("celery-redis", CONFIGURATIONS["acks-late-prefetch-1"].env(), tmp_path)
    world.begin_scenario("celery-rabbitmq", rabbit, tmp_path)
    assert log.count(("versions",)) == 3


def test_a_broker_that_gave_no_versions_is_asked_again(
    fake_world: tuple[World, list[tuple[str, ...]]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, log = fake_world
    monkeypatch.setattr(FakeBroker, "versions", {})
    begin_twice = CONFIGURATIONS["rabbit-acks-late"].env()
    world.begin_scenario("celery-rabbitmq", begin_twice, tmp_path)
    world.begin_scenario("celery-rabbitmq", begin_twice, tmp_path)
    assert log.count(("versions",)) == 2 and world.servers == {}


def test_toxiproxy_is_read_from_its_binary_and_named_for_proxied_backends(
    fake_world: tuple[World, list[tuple[str, ...]]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, log = fake_world
    monkeypatch.setattr("harness.world.reap_orphans", lambda engine: 0)
    monkeypatch.setattr(world.ports, "check_free", lambda: None)
    world.up()
    assert ("read", "toxiproxy", "/toxiproxy") in log  # the compose file's entrypoint
    world.begin_scenario("celery-rabbitmq", CONFIGURATIONS["rabbit-acks-late"].env(), tmp_path)
    assert world.servers == {**FakeBroker.versions, "toxiproxy": "2.12.0"}
    world.backend = "fastapi"  # no broker, no proxy: Toxiproxy is not in its path
    monkeypatch.setattr(world, "_broker_versions", {})
    assert world.servers == {}


def test_every_image_started_is_kept_by_variable_tag_and_id(
    fake_world: tuple[World, list[tuple[str, ...]]], tmp_path: Path,
) -> None:
    world, _ = fake_world
    begin(world, "rabbit-acks-late", tmp_path)
    assert world.images == {
        ("CHAOS_RABBITMQ_IMAGE", "rabbitmq:3.13-management"): "sha256:rabbitmq",
        # the producer and both workers run one image: the last started names its id
        ("CHAOS_CELERY_IMAGE", "queue-chaos/celery:latest"): "sha256:rabbit-worker2",
    }
