"""The topology, read from ``docker-compose.chaos.yml``: the one source of truth for what runs.

The harness does not drive ``docker compose`` (Debian's docker-compose is the old v1 tool and
cannot be relied on); it reads the compose file itself and starts the same containers through the
Docker SDK (harness/containers.py). Only the compose features the file uses are understood; any
other key is an error here, so the file and the harness cannot drift apart silently.

Networks: the first one the file declares is the shared one (Toxiproxy and every single-broker
backend live on it). A clustered backend adds its own: the network its broker nodes peer over,
which a partition fault cuts one node off (harness/clusterfaults.py). A network may fix its
subnet (``ipam``) so that services can have static addresses (``ipv4_address``) and every
container can name them in its /etc/hosts (``extra_hosts``): Redis Sentinel needs that, since
Docker's DNS forgets a killed container's name and Sentinel then never fails over
(docs/clusters-prototype.md).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.paths import COMPOSE_NAME, ROOT

COMPOSE_FILE = ROOT / COMPOSE_NAME
LABEL = "io.queue-chaos"
MANAGED = f"{LABEL}.managed"
ROLE = f"{LABEL}.role"
PROXY = f"{LABEL}.proxy"

TOP_KEYS = {"services", "networks"}
NETWORK_KEYS = {"labels", "driver_opts", "ipam"}
SERVICE_KEYS = {
    "image", "build", "command", "entrypoint", "environment", "ports", "volumes", "networks",
    "labels", "cap_add", "cap_drop", "profiles", "extra_hosts",
}
ATTACHMENT_KEYS = {"ipv4_address", "aliases"}
_VAR = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")


class TopologyError(ValueError):
    """The compose file uses something the harness does not understand."""


@dataclass(frozen=True)
class Port:
    host_ip: str
    host_port: int
    container_port: int


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool


@dataclass(frozen=True)
class Network:
    """A network of the compose file: its driver options, labels and, when services have
    static addresses on it, its subnet."""

    name: str
    options: dict[str, str]
    labels: dict[str, str]
    subnet: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A service on one network: its static address there (None: Docker picks one) and the
    names it answers to there besides its service name."""

    network: str
    ipv4_address: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    command: list[str] | None
    entrypoint: list[str] | None
    environment: dict[str, str]
    ports: list[Port]
    mounts: list[Mount]
    # The networks it is on, the first one the one its container is created on (a broker
    # node's first network is the one its peers reach it over: a partition cuts that one).
    attachments: tuple[Attachment, ...]
    labels: dict[str, str]
    cap_add: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    # The compose variable its image comes from (``${CHAOS_REDIS_IMAGE:-redis:7.2}``), if any:
    # how a report names which image is which.
    image_variable: str | None = None
    # Names in its /etc/hosts (name -> address): names that resolve whether or not their
    # container is alive, unlike Docker's DNS.
    extra_hosts: dict[str, str] = field(default_factory=dict)

    @property
    def network(self) -> str:
        """The network its container is created on."""
        return self.attachments[0].network

    @property
    def role(self) -> str:
        return self.labels.get(ROLE, "")

    @property
    def backend(self) -> str | None:
        """The backend (compose profile) this service belongs to; None when shared by all."""
        return self.profiles[0] if self.profiles else None

    @property
    def runs_tasks(self) -> bool:
        return self.role in ("worker", "app")

    @property
    def takes_submissions(self) -> bool:
        return self.role in ("producer", "app")

    @property
    def proxy(self) -> str | None:
        """The Toxiproxy proxy this service reaches its broker through."""
        return self.labels.get(PROXY)


@dataclass(frozen=True)
class ProxySpec:
    name: str
    listen: str
    upstream: str


@dataclass
class Topology:
    networks: dict[str, Network]
    services: dict[str, Service] = field(default_factory=dict)
    proxies: dict[str, ProxySpec] = field(default_factory=dict)

    @property
    def network(self) -> str:
        """The shared network (the first declared): Toxiproxy's and the single brokers'."""
        return next(iter(self.networks))

    def by_role(self, role: str, backend: str | None = None) -> list[Service]:
        return [s for s in self.services.values()
                if s.role == role and (backend is None or s.backend == backend)]

    def one(self, role: str, backend: str | None = None) -> Service:
        found = self.by_role(role, backend)
        if len(found) != 1:
            where = f" in backend {backend}" if backend else ""
            raise TopologyError(
                f"expected one service with role {role!r}{where}, found {len(found)}")
        return found[0]

    @property
    def backends(self) -> list[str]:
        return list(dict.fromkeys(s.backend for s in self.services.values() if s.backend))

    def of_backend(self, backend: str) -> list[Service]:
        """The backend's own services (not the shared ones), brokers first."""
        own = [s for s in self.services.values() if s.backend == backend]
        return sorted(own, key=lambda s: s.role != "broker")

    def workers(self, backend: str) -> list[Service]:
        return [s for s in self.of_backend(backend) if s.runs_tasks]

    def submission_endpoint(self, backend: str) -> Service:
        found = [s for s in self.of_backend(backend) if s.takes_submissions]
        if len(found) != 1:
            raise TopologyError(f"backend {backend}: expected one producer or app, found "
                                f"{[s.name for s in found]}")
        return found[0]

    def brokers(self, backend: str) -> list[Service]:
        """Every broker-role service of the backend: one, or a cluster's nodes (and, for Redis
        Sentinel, its Sentinels), in the file's order."""
        return self.by_role("broker", backend)

    def broker(self, backend: str) -> Service | None:
        """Its (first) broker: where the forensics start; None without a broker."""
        found = self.brokers(backend)
        return found[0] if found else None


def substitute(value: str, variables: Mapping[str, str]) -> str:
    """Compose-style ``${NAME}`` / ``${NAME:-default}`` interpolation."""

    def repl(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if default is None:  # ${NAME}: set (even to empty) or an error
            if name not in variables:
                raise TopologyError(f"variable {name} is not set and has no default")
            return variables[name]
        return variables.get(name) or default  # ${NAME:-default}: unset or empty -> default

    return _VAR.sub(repl, value)


def variables_used(path: Path = COMPOSE_FILE) -> dict[str, str | None]:
    """Every ``${VAR}`` in the compose file, with its default."""
    return {m.group("name"): m.group("default") for m in _VAR.finditer(path.read_text())}


def port_variables(path: Path = COMPOSE_FILE) -> dict[str, int]:
    """The published-port knobs (``CHAOS_*_PORT``) and their defaults, from the compose file."""
    return {name: int(default) for name, default in variables_used(path).items()
            if name.endswith("_PORT") and default is not None}


def subnet_variables(path: Path = COMPOSE_FILE) -> dict[str, str]:
    """The fixed-subnet knobs (``CHAOS_*_NET``: the first three octets of a /24) and their
    defaults, from the compose file: each run picks free ones (containers.free_subnets)."""
    return {name: default for name, default in variables_used(path).items()
            if name.endswith("_NET") and default is not None}


def load(variables: Mapping[str, str], path: Path = COMPOSE_FILE) -> Topology:
    """Read the compose file with ``variables`` substituted."""
    document = yaml.safe_load(path.read_text())
    _known(path.name, set(document), TOP_KEYS)
    networks = document.get("networks") or {}
    if not networks:
        raise TopologyError(f"{path.name}: declares no network")
    topology = Topology(networks={name: _network(name, spec or {}, variables)
                                  for name, spec in networks.items()})
    for name, raw in (document.get("services") or {}).items():
        topology.services[name] = _service(name, raw, topology, variables, path.parent)
    for proxy in _proxy_config(topology):
        topology.proxies[proxy.name] = proxy
    return topology


def _network(name: str, spec: Mapping[str, Any], variables: Mapping[str, str]) -> Network:
    _known(f"network {name}", set(spec), NETWORK_KEYS)
    subnet = None
    if "ipam" in spec:
        pools = (spec["ipam"] or {}).get("config") or []
        if set(spec["ipam"] or {}) != {"config"} or len(pools) != 1 or set(pools[0]) != {"subnet"}:
            raise TopologyError(f"network {name}: ipam must be {{config: [{{subnet: CIDR}}]}}")
        subnet = substitute(str(pools[0]["subnet"]), variables)
        try:
            ipaddress.IPv4Network(subnet)
        except ValueError:
            raise TopologyError(f"network {name}: subnet {subnet!r} is not an IPv4 CIDR "
                                "(e.g. 10.213.77.0/24)") from None
    return Network(
        name=name,
        options={k: str(v) for k, v in (spec.get("driver_opts") or {}).items()},
        labels={k: str(v) for k, v in (spec.get("labels") or {}).items()},
        subnet=subnet,
    )


def _attachments(name: str, raw: Any, topology: Topology,
                 sub: Callable[[Any], str]) -> tuple[Attachment, ...]:
    """A service's ``networks``: a list of names, or a mapping name -> {ipv4_address, aliases}
    (or nothing), each a declared network; static addresses only inside a declared subnet."""
    if isinstance(raw, list):
        raw = {network: None for network in raw}
    if not isinstance(raw, dict) or not raw:
        raise TopologyError(f"service {name}: networks must list at least one network")
    found = []
    for network, spec in raw.items():
        if network not in topology.networks:
            raise TopologyError(f"service {name}: network {network!r} is not declared "
                                f"(declared: {', '.join(topology.networks)})")
        spec = spec or {}
        _known(f"service {name} on network {network}", set(spec), ATTACHMENT_KEYS)
        address = sub(spec["ipv4_address"]) if "ipv4_address" in spec else None
        subnet = topology.networks[network].subnet
        if address is not None and (subnet is None or not _inside(address, subnet)):
            raise TopologyError(f"service {name}: ipv4_address {address!r} on network {network} "
                                f"needs the network's ipam subnet to hold it (subnet: {subnet})")
        found.append(Attachment(network, address, tuple(sub(a) for a in spec.get("aliases") or [])))
    return tuple(found)


def _inside(address: str, subnet: str) -> bool:
    try:
        return ipaddress.IPv4Address(address) in ipaddress.IPv4Network(subnet)
    except ValueError:
        return False


def _extra_hosts(name: str, raw: Any, sub: Callable[[Any], str]) -> dict[str, str]:
    hosts = {}
    for entry in raw or []:
        host, sep, address = sub(entry).partition(":")
        if not sep or not host or not _inside(address, "0.0.0.0/0"):
            raise TopologyError(f"service {name}: extra_hosts entry {entry!r} must be NAME:IPV4")
        hosts[host] = address
    return hosts


def _service(
    name: str, raw: Mapping[str, Any], topology: Topology, variables: Mapping[str, str],
    base: Path,
) -> Service:
    _known(f"service {name}", set(raw), SERVICE_KEYS)

    def sub(value: Any) -> str:
        return substitute(str(value), variables)

    attachments = _attachments(name, raw.get("networks"), topology, sub)
    if not raw.get("profiles") and [a.network for a in attachments] != [topology.network]:
        raise TopologyError(f"service {name}: a service shared by every backend must be on "
                            f"network [{topology.network}] only")

    def argv(key: str) -> list[str] | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise TopologyError(f"service {name}: {key} must be a list (exec form)")
        return [sub(v) for v in value]

    profiles = raw.get("profiles") or []
    if len(profiles) > 1:
        raise TopologyError(f"service {name}: belongs to one backend (profile) at most")
    if raw.get("cap_drop") != ["ALL"]:
        raise TopologyError(f"service {name}: must drop every capability (cap_drop: [ALL]) and "
                            "add back only what it needs (cap_add)")
    return Service(
        name=name,
        image=sub(raw["image"]),
        command=argv("command"),
        entrypoint=argv("entrypoint"),
        environment={k: sub(v) for k, v in (raw.get("environment") or {}).items()},
        ports=[_port(name, sub(p)) for p in raw.get("ports") or []],
        mounts=[_mount(name, sub(v), base) for v in raw.get("volumes") or []],
        attachments=attachments,
        labels={k: sub(v) for k, v in (raw.get("labels") or {}).items()},
        cap_add=[str(c) for c in raw.get("cap_add") or []],
        profiles=[str(p) for p in profiles],
        image_variable=_image_variable(str(raw["image"])),
        extra_hosts=_extra_hosts(name, raw.get("extra_hosts"), sub),
    )


def _image_variable(text: str) -> str | None:
    """The variable an image reference is made of, when it is one variable alone."""
    found = _VAR.fullmatch(text.strip())
    return found.group("name") if found else None


def _known(where: str, keys: set[str], understood: set[str]) -> None:
    """Refuse keys the harness would silently ignore (compose's ``x-`` extensions excepted)."""
    unknown = {k for k in keys if not k.startswith("x-")} - understood
    if unknown:
        raise TopologyError(
            f"{where}: keys {sorted(unknown)} are not understood by the harness "
            f"(understood: {sorted(understood)})"
        )


def _port(service: str, text: str) -> Port:
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != "127.0.0.1" or not (parts[1] + parts[2]).isdigit():
        raise TopologyError(
            f"service {service}: port {text!r} must be published as 127.0.0.1:HOST:CONTAINER"
        )
    return Port(parts[0], int(parts[1]), int(parts[2]))


def _mount(service: str, text: str, base: Path) -> Mount:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0].startswith(("./", "/")):
        raise TopologyError(f"service {service}: volume {text!r} must be a bind mount SRC:DST[:ro]")
    source = Path(parts[0]) if parts[0].startswith("/") else (base / parts[0]).resolve()
    return Mount(source, parts[1], len(parts) == 3 and parts[2] == "ro")


def _proxy_config(topology: Topology) -> list[ProxySpec]:
    """The proxies Toxiproxy loads at start (its -config file, mounted from the repo)."""
    proxy = topology.one("proxy")
    flag = next((a for a in proxy.command or [] if a.startswith("-config=")), None)
    if flag is None:
        raise TopologyError("the proxy service must start Toxiproxy with -config=FILE")
    target = flag.split("=", 1)[1]
    mount = next((m for m in proxy.mounts if m.target == target), None)
    if mount is None:
        raise TopologyError(f"the proxy's config {target} is not mounted from the repo")
    specs = [ProxySpec(p["name"], p["listen"], p["upstream"]) for p in json.loads(
        mount.source.read_text())]
    names = {s.name for s in specs}
    for service in topology.services.values():
        if service.proxy is not None and service.proxy not in names:
            raise TopologyError(f"service {service.name} names proxy {service.proxy!r}, "
                                f"which {mount.source.name} does not define ({sorted(names)})")
    return specs
