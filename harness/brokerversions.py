"""Broker versions: which release of each broker a run's scenarios talk to, as an axis.

Teams run the broker their distribution or their cloud ships, and what a broker keeps under a
crash changes between releases (RabbitMQ 4.0 removed classic mirrored queues and made classic
queues version 2 only; quorum queues got a default delivery limit; Redis 8 and its fork Valkey
changed their persistence code paths). So a run names the release of each broker it measures,
``--brokers``, from the catalogue below, and ``queue-chaos versions`` runs one selection once
per *pass* (a set of releases) so its report says what changed between them.

Every release is a Debian package (no registry answers here): the local image is a root
filesystem of that package from that Debian suite, made with mmdebstrap from the machine's own
apt sources with the suite swapped (``harness/images.py``). The suite's release of the package
is what the image holds, and the report names the version the running server reports, not the
name below. On a machine that reaches a registry (``CHAOS_IMAGES=registry``), ``official`` is the
image the compose variable is set to instead.

The defaults are the releases the durability report has always measured: Debian bookworm's
redis-server 7.0 and rabbitmq-server 3.10. The local default Redis image is the harness's base
image (bookworm, with Python), so those two are not built again here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The compose variable each broker's image comes from (every Redis-based backend's broker
# service uses CHAOS_REDIS_IMAGE; every RabbitMQ one CHAOS_RABBITMQ_IMAGE), and the variable
# naming the Redis server's command (Valkey's binary is valkey-server: trixie ships no
# redis-server compatibility name for it, and neither does its official image).
IMAGE_VARIABLES = {"redis": "CHAOS_REDIS_IMAGE", "rabbitmq": "CHAOS_RABBITMQ_IMAGE"}
SERVER_VARIABLE = "CHAOS_REDIS_SERVER"


@dataclass(frozen=True)
class BrokerVersion:
    """One release of one broker: how to build its image locally and which official image
    stands for it with a registry."""

    name: str  # what --brokers says: redis-8.0
    broker: str  # the broker it is a release of: a key of IMAGE_VARIABLES
    suite: str  # the Debian suite whose package it is
    packages: tuple[str, ...]  # what the root filesystem holds
    official: str  # the registry's image of the same release
    server: str = "redis-server"  # the command the broker service runs (Redis-like only)
    default: bool = False  # what a run without --brokers measures

    @property
    def variable(self) -> str:
        return IMAGE_VARIABLES[self.broker]

    def variables(self, image: str) -> dict[str, str]:
        """The compose variables that make a run use this release, whose image is ``image``."""
        out = {self.variable: image}
        if self.broker == "redis":
            out[SERVER_VARIABLE] = self.server
        return out


CATALOGUE: dict[str, BrokerVersion] = {v.name: v for v in (
    BrokerVersion("redis-7.0", "redis", "bookworm", ("redis-server", "procps"), "redis:7.0",
                  default=True),
    BrokerVersion("redis-8.0", "redis", "trixie", ("redis-server", "procps"), "redis:8.0"),
    BrokerVersion("valkey-8.1", "redis", "trixie", ("valkey-server", "procps"),
                  "valkey/valkey:8.1", server="valkey-server"),
    BrokerVersion("rabbitmq-3.10", "rabbitmq", "bookworm", ("rabbitmq-server",),
                  "rabbitmq:3.10-management", default=True),
    BrokerVersion("rabbitmq-4.0", "rabbitmq", "trixie", ("rabbitmq-server",),
                  "rabbitmq:4.0-management"),
)}

# A pass of `queue-chaos versions`: the releases one run of the selection uses. Each broker a
# pass does not name runs its default; a pass that names only one broker (valkey) measures only
# the backends on that broker (the others would repeat the default pass).
PASSES: dict[str, tuple[str, ...]] = {
    "bookworm": ("redis-7.0", "rabbitmq-3.10"),
    "trixie": ("redis-8.0", "rabbitmq-4.0"),
    "valkey": ("valkey-8.1",),
}
DEFAULT_PASSES = tuple(PASSES)


def defaults() -> dict[str, BrokerVersion]:
    """Each broker's default release, by broker."""
    return {v.broker: v for v in CATALOGUE.values() if v.default}


def parse(text: str) -> dict[str, BrokerVersion]:
    """``--brokers``: comma-separated release names (or one pass's name), at most one per
    broker; every broker not named keeps its default. An unknown name, or two releases of one
    broker, is a ValueError naming what is valid."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) == 1 and names[0] in PASSES:
        names = list(PASSES[names[0]])
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        raise ValueError(f"--brokers: unknown broker version {', '.join(unknown)}; valid: "
                         f"{', '.join(CATALOGUE)} (or one of the passes "
                         f"{', '.join(PASSES)})")
    chosen = defaults()
    seen: dict[str, str] = {}
    for name in names:
        version = CATALOGUE[name]
        if version.broker in seen:
            raise ValueError(f"--brokers: {seen[version.broker]} and {name} are both releases "
                             f"of {version.broker}; name one per broker")
        seen[version.broker] = name
        chosen[version.broker] = version
    return chosen


def parse_passes(text: str) -> list[str]:
    """``versions --passes``: comma-separated pass names (none: every pass), each once."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in PASSES]
    if unknown:
        valid = ", ".join(f"{p} ({' + '.join(PASSES[p])})" for p in PASSES)
        raise ValueError(f"--passes: unknown pass {', '.join(unknown)}; valid: {valid}")
    return names or list(DEFAULT_PASSES)


def pass_brokers(name: str) -> set[str]:
    """The brokers a pass names a release for: the only ones it measures."""
    return {CATALOGUE[v].broker for v in PASSES[name]}


def label(chosen: Mapping[str, BrokerVersion]) -> str:
    """The releases a run uses, by name, in broker order: what its report records."""
    return ",".join(chosen[b].name for b in IMAGE_VARIABLES if b in chosen)
