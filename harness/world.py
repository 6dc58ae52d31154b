"""The world a run measures: the topology's containers, its Toxiproxy and its brokers, up and ready.

Toxiproxy starts once per run. A backend's services (broker, producer, workers) start when its
first scenario needs them and are stopped when the run moves on to another backend. Between
scenarios the broker is emptied and the proxies healed; a container is reused when its spec is
unchanged and no fault touched it, and started afresh otherwise, so no scenario inherits another's
killed process, cut connection or queued message.

The world also keeps what a report's provenance needs from it: the image (tag and id) of every
container it started, and the servers' versions as the running services report them: Toxiproxy's
once, a backend's broker's once per switch to that backend (a broker restarted by a fault or a
new scenario runs the same image, so the same version).
"""

from __future__ import annotations

import contextlib
import os
import socket
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path

import docker
import docker.errors
import requests

from harness import topology
from harness.backends import REGISTRY
from harness.brokers import Broker, Clustered
from harness.containers import Cluster, free_subnets, reap_orphans
from harness.observe import UNTAGGED, snapshot
from harness.provenance import ImagesRun
from harness.proxies import ToxiproxyControl
from harness.topology import Service
from harness.waits import WaitTimeout, until
from queue_chaos_agent.ledger import LedgerWriter


class PortTaken(RuntimeError):
    """A port the topology publishes is already in use on 127.0.0.1."""


class Ports:
    """The published ports (compose's ``CHAOS_*_PORT`` knobs), each overridable from the
    environment."""

    def __init__(self, values: Mapping[str, int]) -> None:
        self.values = dict(values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Ports:
        values = {}
        for name, default in topology.port_variables().items():
            text = env.get(name, str(default))
            if not text.isdigit() or not 1024 <= int(text) <= 65535:
                raise ValueError(f"{name}={text!r}: expected a port number 1024..65535")
            values[name] = int(text)
        return cls(values)

    def variables(self) -> dict[str, str]:
        return {name: str(port) for name, port in self.values.items()}

    def moved(self, offset: int) -> Ports:
        """Every port moved up by ``offset``: another world's, side by side with this one."""
        return Ports({name: port + offset for name, port in self.values.items()})

    def check_free(self) -> None:
        for name, port in self.values.items():
            with socket.socket() as probe:
                # As a server binds: connections lingering in TIME-WAIT do not make it taken.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise PortTaken(
                        f"port {port} on 127.0.0.1 ({name}) is already taken; free it or set "
                        f"{name} to a free port (1024..65535)"
                    ) from None


class World:
    def __init__(
        self,
        engine: docker.DockerClient,
        run_id: str,
        images: Mapping[str, str],
        ports: Ports,
        ready_s: float = 60.0,
    ) -> None:
        self.variables = {**images, **ports.variables(),
                          **free_subnets(engine, topology.subnet_variables(), run_id)}
        self.topology = topology.load(self.variables)
        self.cluster = Cluster(engine, self.topology, run_id)
        self.run_id = run_id
        self.ports = ports
        self.ready_s = ready_s
        self.proxies = ToxiproxyControl("127.0.0.1", ports.values["CHAOS_TOXIPROXY_PORT"])
        self.backend: str | None = None
        self.broker: Broker | None = None
        self.ledger_dir: Path | None = None
        self._running: dict[str, Service] = {}  # service -> the spec its container runs
        self._dirty: set[str] = set()  # touched by a fault: start afresh next time
        self._generation = 0
        self._notes: LedgerWriter | None = None
        self._queue: str | None = None  # the task queue the forensics read (None: built-in)
        self._images: dict[tuple[str, str], str] = {}  # (variable, tag) -> id, of what started
        self._toxiproxy_versions: dict[str, str] = {}
        self._broker_versions: dict[str, str] = {}  # the active backend's broker's

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    @property
    def workers(self) -> list[str]:
        assert self.backend is not None, "no backend is active"
        return [s.name for s in self.topology.workers(self.backend)]

    @property
    def producer_url(self) -> str:
        assert self.backend is not None, "no backend is active"
        endpoint = self.topology.submission_endpoint(self.backend)
        return f"http://127.0.0.1:{endpoint.ports[0].host_port}"

    def proxy_of(self, service: str) -> str:
        proxy = self.topology.services[service].proxy
        if proxy is None:
            raise LookupError(f"service {service} does not reach a broker through a proxy")
        return proxy

    def producer_service(self) -> str:
        assert self.backend is not None
        return self.topology.submission_endpoint(self.backend).name

    def broker_service(self) -> str | None:
        assert self.backend is not None
        broker = self.topology.broker(self.backend)
        return broker.name if broker else None

    def broker_services(self) -> list[str]:
        """The backend's broker-role services: one broker, or a cluster's nodes (and
        Sentinels)."""
        assert self.backend is not None
        return [s.name for s in self.topology.brokers(self.backend)]

    def clustered(self) -> Clustered:
        """The active backend's forensics as a cluster's (leader, nodes, settled)."""
        if not isinstance(self.broker, Clustered):
            raise TypeError(f"backend {self.backend}'s broker is not a cluster")
        return self.broker

    def leader(self) -> str:
        """The broker node that leads the task queue now (a quorum queue's leader, a classic
        queue's home node, the Redis primary), as the cluster itself says."""
        return self.clustered().leader()

    def mark_dirty(self, *services: str) -> None:
        self._dirty.update(services)

    @property
    def images(self) -> ImagesRun:
        """Every image a container of this world was started from: (the compose variable that
        chose it, or the service's name; its tag) -> the id the engine ran."""
        return self._images

    @property
    def servers(self) -> dict[str, str]:
        """The servers' versions the active backend's scenarios run on, as the services report
        them: its broker's, and Toxiproxy's when its clients reach the broker through it."""
        assert self.backend is not None, "no backend is active"
        proxied = any(s.proxy for s in self.topology.of_backend(self.backend))
        return {**self._broker_versions, **(self._toxiproxy_versions if proxied else {})}

    # -- shared services ----------------------------------------------------------------------

    def up(self) -> None:
        reap_orphans(self.cluster.engine)  # an orphan may hold our ports: reap before checking
        self.ports.check_free()
        proxy = self.topology.one("proxy")
        self._start(proxy)
        self._wait(lambda: _quietly(lambda: self.proxies.wait_ready(
            self.topology.proxies.values())), "Toxiproxy and its proxies", proxy.name)
        self._toxiproxy_versions = self.proxies.server_versions(lambda: self._executable(proxy))

    def _executable(self, service: Service) -> bytes:
        """The bytes of the service's entrypoint in its container; b"" when they cannot be read
        (best effort: what they are wanted for is a version)."""
        if not service.entrypoint:
            return b""
        try:
            return self.cluster.read_file(service.name, service.entrypoint[0])
        except (docker.errors.DockerException, LookupError, OSError, tarfile.TarError):
            return b""

    def down(self) -> int:
        if self.broker is not None:
            self.broker.close()
        return self.cluster.teardown()

    def _wait(self, probe: object, what: str, service: str) -> None:
        try:
            until(probe, what=what, timeout_s=self.ready_s, interval_s=0.2)  # type: ignore[arg-type]
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{self.cluster.logs(service)}") from exc

    # -- per scenario ----------------------------------------------------------------------------

    def begin_scenario(self, backend: str, variables: Mapping[str, str], run_dir: Path) -> Path:
        """The backend's services running with the scenario's variables, its broker empty, every
        proxy healed. Returns the ledger directory the workers write to."""
        if backend not in REGISTRY:
            raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(REGISTRY)}")
        if self.backend != backend:
            self._switch_to(backend)
        queue = variables.get("CHAOS_QUEUE")
        if queue != self._queue:  # a team's queue, or back to the built-in one
            self._forensics(backend, queue)
        self.proxies.reset()
        wanted = topology.load({**self.variables, **variables,
                                "CHAOS_LEDGER_HOST_DIR": str(self._ledger_dir(run_dir))})
        services = self.topology.of_backend(backend)
        stale = {s.name for s in services if self._stale(wanted.services[s.name])}
        brokers = self.broker_services()
        if stale & set(brokers):  # a new broker: everything connected to it starts afresh too
            stale = {s.name for s in services}
        if stale & set(self.workers):
            # Fresh workers write to a fresh ledger directory: reused ones keep theirs.
            self._generation += 1
            wanted = topology.load({**self.variables, **variables,
                                    "CHAOS_LEDGER_HOST_DIR": str(self._ledger_dir(run_dir))})
            stale |= set(self.workers)
        since = self.clock()
        self.ledger_dir = self._ledger_dir(run_dir)
        self.ledger_dir.mkdir(parents=True, exist_ok=True)
        assert self.broker is not None
        if brokers:
            # Clients to be started afresh go first, then the broker is emptied, then they
            # start: the reset races with none of them. With none left running it may drop what
            # they declare too (a RabbitMQ task queue, declared again by the new clients with
            # this scenario's arguments). A cluster's nodes all start together (they find each
            # other as they boot) and its forensics say when it is formed.
            for service in services:
                if service.name in stale and service.name not in brokers:
                    self.cluster.remove(service.name)
            for name in brokers:
                if name in stale:
                    self._start(wanted.services[name])
            self._wait_broker()
            self.broker.reset(idle={s.name for s in services} - set(brokers) <= stale)
        for service in services:
            if service.name in stale and service.name not in brokers:
                self._start(wanted.services[service.name])
        if not brokers:  # no broker: the probe is the app itself, once it runs
            self._wait(self.broker.ready, f"the {backend} app", self.producer_service())
            self.broker.reset()
        for name in stale:
            if self.topology.services[name].takes_submissions:
                self._wait(self._producer_healthy, f"{name}'s /health", name)
        for name in stale & set(self.workers):
            self.wait_worker_ready(name, since)
        if not self._broker_versions:  # read once the broker answers; asked again until it does
            self._broker_versions = self.broker.server_versions()
        self._dirty.clear()
        return self.ledger_dir

    def _ledger_dir(self, run_dir: Path) -> Path:
        assert self.backend is not None
        return run_dir / "ledger" / f"{self.backend}-{self._generation}"

    def _stale(self, service: Service) -> bool:
        return (
            service.name in self._dirty
            or self._running.get(service.name) != service
            or not self.cluster.is_running(service.name)
        )

    def _start(self, service: Service) -> None:
        container = self.cluster.start(service)
        self._running[service.name] = service
        key = (service.image_variable or service.name, service.image)
        self._images[key] = str(container.attrs.get("Image", ""))

    def _wait_broker(self) -> None:
        assert self.broker is not None
        name = self.broker_service() or self.producer_service()
        self._wait(self.broker.ready, f"the broker {name}", name)

    def _switch_to(self, backend: str) -> None:
        """Stop the previous backend's services (freeing memory and CPU), make this one's broker
        client."""
        if self.backend is not None:
            for service in self.topology.of_backend(self.backend):
                self.cluster.remove(service.name)
                self._running.pop(service.name, None)
        self.backend = backend
        self._generation += 1
        self._broker_versions = {}
        self._forensics(backend, None)

    def _forensics(self, backend: str, queue: str | None) -> None:
        """The broker's forensics, reading ``queue``, on the broker's first published port."""
        if self.broker is not None:
            self.broker.close()
        probe = self.topology.broker(backend) or self.topology.submission_endpoint(backend)
        nodes = {s.name: s.ports[0].host_port for s in self.topology.brokers(backend) if s.ports}
        self.broker = REGISTRY[backend].forensics(probe.ports[0].host_port, queue, nodes)
        self._queue = queue

    def end_scenario(self, logs_dir: Path, touched: set[str]) -> None:
        """Keep the logs; services a fault touched start afresh next time. Best effort on the
        shared services: the next scenario's start checks them anyway."""
        with contextlib.suppress(Exception):
            self.cluster.save_logs(logs_dir)
        self.mark_dirty(*touched)
        with contextlib.suppress(Exception):
            self.proxies.reset()

    def _producer_healthy(self) -> bool:
        try:
            return requests.get(f"{self.producer_url}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def wait_worker_ready(self, name: str, since: float) -> None:
        """Until the worker's ``worker_ready`` ledger record, written after ``since``."""
        assert self.ledger_dir is not None
        ledger_dir = self.ledger_dir

        def ready() -> bool:
            if not self.cluster.is_running(name):
                raise WaitTimeout(f"worker {name} exited while starting\n{self.cluster.logs(name)}")
            return snapshot(ledger_dir, UNTAGGED).ready.get(name, 0.0) > since

        self._wait(ready, f"worker {name} to be ready", name)

    def note(self, kind: str, **fields: object) -> None:
        """A harness record in the scenario's ledger (what a fault did, when)."""
        assert self.ledger_dir is not None
        if self._notes is None or self._notes.directory != self.ledger_dir:
            self._notes = LedgerWriter(self.ledger_dir, "harness-faults")
        self._notes.write(kind, **fields)

    def pid_running(self, worker: str) -> int:
        """The pid (inside its container) of a process of ``worker`` running a task now."""
        assert self.ledger_dir is not None
        pids = snapshot(self.ledger_dir).running_pids.get(worker)
        if not pids:
            raise LookupError(f"{worker} runs no task now")
        return pids[0]

    def wait_exited(self, name: str) -> None:
        self._wait(lambda: not self.cluster.is_running(name), f"{name} to exit", name)

    def restart_broker(self) -> None:
        name = self.broker_service()
        assert name is not None
        self.cluster.restart(name)
        self._wait_broker()

    def revive(self, tolerant: bool = False) -> list[str]:
        """Start again every task-running container of the backend that is not running (killed,
        crashed, shut down), as a supervisor would; returns their names.

        ``tolerant``: a worker that cannot start again is a finding, not a harness failure
        (after a cluster fault, a Celery worker exits at start while its classic queue's home
        node is unreachable): it is recorded (``revive_failed``, with its last words) and the
        scenario goes on without it, its tasks counted where they end up."""
        revived = [name for name in self.workers if not self.cluster.is_running(name)]
        since = self.clock()
        for name in revived:
            self.cluster.restart(name)
        for name in revived:
            try:
                self.wait_worker_ready(name, since)
            except WaitTimeout as exc:
                if not tolerant:
                    raise
                self.note("revive_failed", worker=name, reason=str(exc)[-600:])
        return revived


def _quietly(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except Exception:
        return False
    return True
