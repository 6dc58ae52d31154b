"""Containers: start, signal, restart and remove the topology's services through the Docker SDK.

Every object this module creates carries labels naming the run and the harness process that owns
it, and is removed by those labels, never by a name pattern. ``reap_orphans`` removes what a
harness that died (SIGKILL, power cut) left behind: objects whose owner process is gone.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import os
import tarfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import EndpointConfig, IPAMConfig, IPAMPool

from harness.topology import LABEL, MANAGED, Attachment, Service, Topology

log = logging.getLogger(__name__)

RUN = f"{LABEL}.run"
OWNER = f"{LABEL}.owner"
SERVICE = f"{LABEL}.service"
API_TIMEOUT_S = 30  # every Docker API call is bounded by this


class EngineUnavailable(RuntimeError):
    """No Docker engine answers."""


def client() -> docker.DockerClient:
    """A client for the local engine, or a clear error naming how to get one."""
    try:
        engine = docker.from_env(timeout=API_TIMEOUT_S)
        engine.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(
            f"no Docker engine answers ({exc}). Start one with `make engine` "
            "(installs Debian's docker.io and starts dockerd), or point DOCKER_HOST at one."
        ) from exc
    return engine


def owner_token(pid: int | None = None) -> str:
    """``pid:starttime`` of a process: survives pid reuse, unlike a bare pid."""
    pid = os.getpid() if pid is None else pid
    stat = Path(f"/proc/{pid}/stat").read_text()
    start = stat.rsplit(")", 1)[1].split()[19]
    return f"{pid}:{start}"


def owner_alive(token: str) -> bool:
    pid_text, _, _ = token.partition(":")
    try:
        return owner_token(int(pid_text)) == token
    except (OSError, ValueError, IndexError):
        return False


class Cluster:
    """The running topology of one harness run."""

    def __init__(self, engine: docker.DockerClient, topology: Topology, run_id: str) -> None:
        self.engine = engine
        self.topology = topology
        self.run_id = run_id
        self.labels = {MANAGED: "true", RUN: run_id, OWNER: owner_token()}

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def network_name(self) -> str:
        """The engine's name of the shared network."""
        return self.network_of(self.topology.network)

    def network_of(self, network: str) -> str:
        """The engine's name of one of the topology's networks, in this run."""
        return f"qc-{self.run_id}-{network}"

    def ensure_network(self, network: str | None = None) -> None:
        """Create the network (the shared one by default) unless it exists: with its subnet
        when the compose file fixes one, for services with static addresses on it."""
        spec = self.topology.networks[network or self.topology.network]
        name = self.network_of(spec.name)
        if not self.engine.networks.list(names=[name]):
            ipam = None
            if spec.subnet is not None:
                ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=spec.subnet)])
            self.engine.networks.create(
                name,
                driver="bridge",
                options=spec.options,
                ipam=ipam,
                labels={**spec.labels, **self.labels},
            )

    def container_name(self, service: str) -> str:
        return f"qc-{self.run_id}-{service}"

    def start(self, service: Service) -> Container:
        """Create and start ``service`` afresh (removing an earlier container of it first).

        The service comes from a topology loaded with this scenario's variables, so per-scenario
        settings (configuration, ledger directory) reach the container the compose way.
        """
        name = service.name
        self.remove(name)
        for attachment in service.attachments:
            self.ensure_network(attachment.network)
        first, *others = service.attachments
        for mount in service.mounts:
            if not mount.source.exists():
                mount.source.mkdir(parents=True)
        container = self.engine.containers.create(
            service.image,
            command=service.command,
            entrypoint=service.entrypoint,
            environment=service.environment,
            hostname=service.name,
            name=self.container_name(name),
            labels={**service.labels, **self.labels, SERVICE: name},
            ports={f"{p.container_port}/tcp": (p.host_ip, p.host_port) for p in service.ports},
            volumes={
                str(m.source): {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
                for m in service.mounts
            },
            network=self.network_of(first.network),
            networking_config={
                self.network_of(first.network): self._endpoint(name, first)
            },
            extra_hosts=service.extra_hosts or None,
            detach=True,
            # Least privilege: every capability dropped, only the compose file's cap_add given
            # back. Faults need none inside: signals and pauses come from the engine, cuts from
            # Toxiproxy.
            privileged=False,
            cap_drop=["ALL"],
            cap_add=service.cap_add or None,
            security_opt=["no-new-privileges"],
            init=False,
        )
        for attachment in others:  # before it starts: its processes see every network at once
            self.connect(name, attachment, first=False)
        container.start()
        return container

    def _endpoint(self, name: str, attachment: Attachment) -> EndpointConfig:
        return EndpointConfig(self.engine.api._version, aliases=[name, *attachment.aliases],
                              ipv4_address=attachment.ipv4_address)

    def connect(self, name: str, attachment: Attachment, first: bool = True) -> None:
        """Attach the service's container to a network, with its static address and aliases
        there (a healed partition gives a node back the address its peers know it by).

        The service's own name is an alias on its first network only: a RabbitMQ node on its
        peers' network and its clients' must be found by its name on the peers' one alone, or
        a partition of that network would leave its peers another way to it."""
        found = self.container(name)
        if found is None:
            raise LookupError(f"service {name} has no container in run {self.run_id}")
        aliases = [name, *attachment.aliases] if first else list(attachment.aliases)
        self.engine.networks.get(self.network_of(attachment.network)).connect(
            found, aliases=aliases or None, ipv4_address=attachment.ipv4_address)

    def disconnect(self, name: str, network: str) -> None:
        """Detach the service's container from a network: every peer on it stops hearing from
        it, with no reset sent (a partition, as the network sees one)."""
        found = self.container(name)
        if found is None:
            raise LookupError(f"service {name} has no container in run {self.run_id}")
        self.engine.networks.get(self.network_of(network)).disconnect(found, force=True)

    def container(self, name: str) -> Container | None:
        try:
            return self.engine.containers.get(self.container_name(name))
        except docker.errors.NotFound:
            return None

    def signal(self, name: str, signal: str) -> None:
        """Send ``signal`` to the service's main process (PID 1 of its container)."""
        found = self.container(name)
        if found is None:
            raise LookupError(f"service {name} has no container in run {self.run_id}")
        found.kill(signal=signal)

    def host_pids(self, name: str) -> dict[int, int]:
        """The container's processes: pid inside its namespace -> pid on this host."""
        found = self.container(name)
        if found is None:
            raise LookupError(f"service {name} has no container in run {self.run_id}")
        pids: dict[int, int] = {}
        top = found.top(ps_args="-o pid")
        for row in top.get("Processes") or []:
            host_pid = int(row[0])
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
                    if line.startswith("NSpid:"):
                        pids[int(line.split()[-1])] = host_pid
        return pids

    def kill_process(self, name: str, ns_pid: int, sig: int) -> None:
        """Signal one process of the container, named by its pid inside the container."""
        host_pid = self.host_pids(name).get(ns_pid)
        if host_pid is None:
            raise LookupError(f"{name} has no process {ns_pid} (it may have just exited)")
        os.kill(host_pid, sig)

    def signal_all(self, name: str, sig: int) -> None:
        """Signal every process of the container, by pid (SIGSTOP/SIGCONT a whole worker)."""
        for host_pid in self.host_pids(name).values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(host_pid, sig)

    def restart(self, name: str) -> None:
        """Start a stopped (killed) container again, as a supervisor would."""
        found = self.container(name)
        if found is None:
            raise LookupError(f"service {name} has no container in run {self.run_id}")
        found.start()

    def read_file(self, name: str, path: str) -> bytes:
        """The bytes of ``path`` inside the service's container (the engine's archive copy:
        nothing runs in the container, so it works on images with no shell or tools)."""
        found = self.container(name)
        if found is None:
            raise LookupError(f"service {name} has no container in run {self.run_id}")
        stream, _ = found.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            extracted = archive.extractfile(member) if member is not None else None
            if extracted is None:
                raise LookupError(f"{path} in {name} is not a regular file")
            return extracted.read()

    def remove(self, name: str) -> None:
        found = self.container(name)
        if found is not None:
            with contextlib.suppress(docker.errors.NotFound):
                # Force removal kills a frozen (paused) container too, without thawing it: a thawed
                # worker would run tasks after the check, into a ledger already counted.
                found.remove(force=True)

    def is_running(self, name: str) -> bool:
        """Its process exists: running, or frozen (paused) mid-run, which is not dead, so not
        for a supervisor to start again, nor for a scenario to replace silently."""
        found = self.container(name)
        if found is None:
            return False
        found.reload()
        return bool(found.status in ("running", "paused"))

    def logs(self, name: str, lines: int = 30) -> str:
        found = self.container(name)
        if found is None:
            return f"[{name}: no container]"
        text = found.logs(tail=lines).decode(errors="replace")
        return f"--- last {lines} log lines of {name} ---\n{text}"

    def all_logs(self, lines: int = 30) -> str:
        return "\n".join(self.logs(name, lines) for name in self.topology.services)

    def teardown(self) -> int:
        """Remove every object of this run; returns how many were removed."""
        return remove_labelled(self.engine, {RUN: self.run_id})

    def save_logs(self, directory: Path) -> None:
        """Keep each container's full log beside the run's ledger, for re-analysis."""
        directory.mkdir(parents=True, exist_ok=True)
        for name in self.topology.services:
            found = self.container(name)
            if found is not None:
                (directory / f"{name}.log").write_bytes(found.logs())


# 10.213.N.0/24 candidates: private, and outside Docker's own default pools (172.17-31.0.0/16
# and 192.168.0.0/16), from which it gives every network without a fixed subnet one: a fixed
# 172.30.N.0/24 collided with a run's own `chaos` network once Docker had handed out 172.30/16.
SUBNET_RANGE = range(64, 255)


def free_subnets(engine: docker.DockerClient, wanted: Mapping[str, str],
                 run_id: str) -> dict[str, str]:
    """For each fixed-subnet knob (name -> default prefix such as ``10.213.77``), a /24 prefix
    no network of the engine uses now: two runs (or two worlds of one run) side by side cannot
    both own 10.213.77.0/24, and Docker refuses an overlapping pool. The search starts at a
    place the run id decides, on a multiple of the knobs' count, so worlds starting at the same
    moment rarely race for one (only when their run ids pick the same block)."""
    used: set[ipaddress.IPv4Network] = set()
    for network in engine.networks.list():
        for pool in (network.attrs.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                used.add(ipaddress.IPv4Network(pool["Subnet"], strict=False))
    block = max(1, len(wanted))
    start = zlib.crc32(run_id.encode()) % (len(SUBNET_RANGE) // block) * block
    candidates = [f"10.213.{SUBNET_RANGE[(start + i) % len(SUBNET_RANGE)]}"
                  for i in range(len(SUBNET_RANGE))]
    chosen: dict[str, str] = {}
    for name in wanted:
        for prefix in candidates:
            net = ipaddress.IPv4Network(f"{prefix}.0/24")
            if prefix not in chosen.values() and not any(net.overlaps(u) for u in used):
                chosen[name] = prefix
                break
        else:
            raise RuntimeError(f"no free /24 in 10.213.64-254.0 for {name}: remove stale "
                               "Docker networks (`docker network prune`)")
    return chosen


def _labelled(engine: docker.DockerClient, labels: Mapping[str, str]) -> Iterator[Any]:
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    # sparse: the listing itself, no inspect per container, which would race with a container
    # being removed meanwhile (NotFound); the listing carries labels and mounts.
    yield from engine.containers.list(all=True, filters=filters, sparse=True)
    yield from engine.networks.list(filters=filters)
    yield from engine.volumes.list(filters=filters)


def labels_of(obj: Any) -> dict[str, str]:
    """Labels of a container (under Config) or of a network or volume (top level)."""
    labels = obj.attrs.get("Config", {}).get("Labels") or obj.attrs.get("Labels") or {}
    return dict(labels)


def remove_labelled(engine: docker.DockerClient, labels: Mapping[str, str]) -> int:
    """Remove containers first, then networks and volumes, that carry all ``labels``."""
    removed = 0
    for obj in list(_labelled(engine, labels)):
        with contextlib.suppress(docker.errors.NotFound):
            if isinstance(obj, Container):
                obj.remove(force=True, v=True)
            else:
                obj.remove()
            removed += 1
    return removed


def reap_orphans(engine: docker.DockerClient) -> int:
    """Remove objects left by harness processes that are gone (e.g. SIGKILLed)."""
    owners: set[str] = set()
    for obj in _labelled(engine, {MANAGED: "true"}):
        token = labels_of(obj).get(OWNER)
        if token and not owner_alive(token):
            owners.add(token)
    removed = sum(remove_labelled(engine, {MANAGED: "true", OWNER: t}) for t in owners)
    if removed:
        log.warning("reaped %d objects left behind by dead harness runs", removed)
    return removed


def count_managed(engine: docker.DockerClient) -> int:
    """How many labelled objects exist (for tests that nothing was left behind)."""
    return sum(1 for _ in _labelled(engine, {MANAGED: "true"}))



def owned_by_process(engine: docker.DockerClient, pid: int) -> list[Any]:
    """Labelled objects whose owner is (or was) process ``pid``: for tests of clean-up."""
    found = []
    for obj in _labelled(engine, {MANAGED: "true"}):
        if str(labels_of(obj).get(OWNER, "")).startswith(f"{pid}:"):
            found.append(obj)
    return found
