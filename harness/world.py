"""The world a run measures: the topology's containers, its Toxiproxy and its broker, up and ready.

Shared services (broker, Toxiproxy, producer app) start once per run and are reset between
scenarios; workers are started afresh for every scenario with that scenario's configuration, so no
scenario inherits another's killed process, cut connection or queued message.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import docker
import redis
import requests

from harness import topology
from harness.containers import Cluster, reap_orphans
from harness.observe import snapshot
from harness.proxies import ToxiproxyControl
from harness.waits import WaitTimeout, until

PORT_VARIABLES = {
    "CHAOS_REDIS_PORT": 16379,
    "CHAOS_TOXIPROXY_PORT": 18474,
    "CHAOS_PRODUCER_PORT": 18000,
}


class PortTaken(RuntimeError):
    """A port the topology publishes is already in use on 127.0.0.1."""


@dataclass(frozen=True)
class Ports:
    redis: int
    toxiproxy: int
    producer: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Ports:
        values = {}
        for name, default in PORT_VARIABLES.items():
            text = env.get(name, str(default))
            if not text.isdigit() or not 1024 <= int(text) <= 65535:
                raise ValueError(f"{name}={text!r}: expected a port number 1024..65535")
            values[name] = int(text)
        return cls(*values.values())

    def variables(self) -> dict[str, str]:
        return dict(zip(PORT_VARIABLES, map(str, (self.redis, self.toxiproxy, self.producer)),
                        strict=True))

    def check_free(self) -> None:
        for name, port in zip(PORT_VARIABLES, (self.redis, self.toxiproxy, self.producer),
                              strict=True):
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
        self.variables = {**images, **ports.variables()}
        self.topology = topology.load(self.variables)
        self.cluster = Cluster(engine, self.topology, run_id)
        self.ports = ports
        self.ready_s = ready_s
        self.proxies = ToxiproxyControl("127.0.0.1", ports.toxiproxy)
        self.redis = redis.Redis(
            host="127.0.0.1", port=ports.redis, socket_timeout=5, socket_connect_timeout=5
        )
        self.producer_url = f"http://127.0.0.1:{ports.producer}"
        self.ledger_dir: Path | None = None

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    @property
    def workers(self) -> list[str]:
        return [s.name for s in self.topology.by_role("worker")]

    def proxy_of(self, service: str) -> str:
        proxy = self.topology.services[service].proxy
        if proxy is None:
            raise LookupError(f"service {service} does not reach its broker through a proxy")
        return proxy

    # -- shared services ----------------------------------------------------------------------

    def up(self) -> None:
        reap_orphans(self.cluster.engine)  # an orphan may hold our ports: reap before checking
        self.ports.check_free()
        for role in ("broker", "proxy"):
            self.cluster.start(self.topology.one(role))
        self._wait(self._redis_answers, "Redis to answer PING", "broker")
        self._wait(lambda: self._quiet(lambda: self.proxies.wait_ready(
            self.topology.proxies.values())), "Toxiproxy and its proxies", "proxy")
        self.cluster.start(self.topology.one("producer"))
        self._wait(self._producer_healthy, "the producer app's /health", "producer")

    def down(self) -> int:
        self.redis.close()
        return self.cluster.teardown()

    def _wait(self, probe: object, what: str, role: str) -> None:
        service = self.topology.one(role).name
        try:
            until(probe, what=what, timeout_s=self.ready_s, interval_s=0.2)  # type: ignore[arg-type]
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{self.cluster.logs(service)}") from exc

    @staticmethod
    def _quiet(call: object) -> bool:
        try:
            call()  # type: ignore[operator]
        except Exception:
            return False
        return True

    def _redis_answers(self) -> bool:
        return self._quiet(self.redis.ping)

    def _producer_healthy(self) -> bool:
        try:
            return requests.get(f"{self.producer_url}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    # -- per scenario ----------------------------------------------------------------------------

    def begin_scenario(self, ledger_dir: Path, variables: Mapping[str, str]) -> None:
        """Fresh workers with the scenario's configuration; healed proxies; an empty broker."""
        for name in self.workers:
            self.cluster.remove(name)
        self.proxies.reset()
        self.redis.flushall()
        ledger_dir.mkdir(parents=True, exist_ok=True)
        self.ledger_dir = ledger_dir
        scenario_topology = topology.load(
            {**self.variables, **variables, "CHAOS_LEDGER_HOST_DIR": str(ledger_dir)}
        )
        since = self.clock()
        for name in self.workers:
            self.cluster.start(scenario_topology.services[name])
        for name in self.workers:
            self.wait_worker_ready(name, since)

    def end_scenario(self, logs_dir: Path) -> None:
        """Best effort on the shared services (the next scenario's start checks them anyway);
        the scenario's own workers are always removed."""
        with contextlib.suppress(Exception):
            self.cluster.save_logs(logs_dir)
        for name in self.workers:
            self.cluster.remove(name)
        with contextlib.suppress(Exception):
            self.proxies.reset()

    def wait_worker_ready(self, name: str, since: float) -> None:
        """Until the worker's ``worker_ready`` ledger record, written after ``since``."""
        assert self.ledger_dir is not None
        ledger_dir = self.ledger_dir

        def ready() -> bool:
            if not self.cluster.is_running(name):
                raise WaitTimeout(f"worker {name} exited while starting\n{self.cluster.logs(name)}")
            return snapshot(ledger_dir).ready.get(name, 0.0) > since

        try:
            until(ready, what=f"worker {name} to be ready", timeout_s=self.ready_s, interval_s=0.2)
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n{self.cluster.logs(name)}") from exc
