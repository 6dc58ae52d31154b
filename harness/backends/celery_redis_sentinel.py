"""Celery on Redis with Sentinel: the cluster profile's Redis backend.

Two data nodes (``redis-primary``, ``redis-replica`` replicating it) and three Sentinels
(quorum 2, ``down-after-milliseconds`` 2 s, ``failover-timeout`` 10 s) on a network of their own
with fixed addresses, every name in every container's /etc/hosts: Docker's DNS forgets a killed
container's name, and a Sentinel resolving it then blocks ~10 s per lookup, tilts and never fails
over (docs/clusters-prototype.md). Celery finds the primary through kombu's Sentinel transport
(``sentinel://sentinel1:26379;sentinel://sentinel2:26379;...`` with ``master_name``), the same
Celery image and app as Celery on Redis. No Toxiproxy: Sentinel hands its clients the primary's
real address, so a proxy could cut only the Sentinel links. A partition of the primary cuts it
off from everyone on that one network, its clients too; the split brain with clients on the old
primary's side is what freezing it (``leader-sigstop``) makes: its clients' connections stay
open, and it wakes up a primary for ~10 s until Sentinel demotes it.

What Redis promises (https://redis.io/docs/latest/operate/oss_and_stack/management/replication/,
https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/):

* Replication is asynchronous: "Redis Sentinel + Redis replication is not guaranteed to retain
  acknowledged writes during failures". A write acknowledged by a primary that then fails over
  may be lost, and an old primary that comes back is made a replica and discards what it
  accepted meanwhile.
* ``min-replicas-to-write N`` with ``min-replicas-max-lag`` (10 s here) makes a primary refuse
  writes when fewer than N replicas acknowledged within the lag: it bounds that window, it does
  not close it ("not a strong guarantee").
* With persistence off, a primary restarted before Sentinel notices comes back empty and its
  replicas copy the empty dataset ("Safety of replication when master has persistence turned
  off").

Configurations: kombu's defaults for Sentinel with late acknowledgement, without and with
``min-replicas-to-write 1``. Both claim at least once (what Celery claims with acks late); what
the broker loses underneath is what the report shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import redis

from harness.backend import Capability, Configuration, lost_by_fault
from harness.backends.celery_rabbitmq_cluster import CLUSTER_FAULTS
from harness.backends.celery_redis import CeleryRedis, CeleryRedisForensics, CeleryRedisKnobs
from harness.backends.redisbroker import REDIS_TIMEOUT_S

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "celery-redis-sentinel"
MASTER = "chaos"  # Sentinel's name of the monitored primary (CHAOS_SENTINEL_MASTER)
DATA_NODES = ("redis-primary", "redis-replica")  # the compose file's data nodes
SENTINELS = ("sentinel1", "sentinel2", "sentinel3")
PROBE_TIMEOUT_S = 2  # a frozen or cut-off node must not stall the forensics


@dataclass(frozen=True)
class CeleryRedisSentinelKnobs(CeleryRedisKnobs):
    """Celery on Redis's settings plus the data nodes' ``min-replicas-to-write`` (0: off,
    Redis's default)."""

    min_replicas_to_write: int = 0


class SentinelForensics(CeleryRedisForensics):
    """kombu's Redis transport read on whichever data node Sentinel names the primary now (every
    node and Sentinel publishes its own port), plus what a cluster fault asks: the primary, and
    whether the Sentinels agree again on one primary that its replica follows."""

    def __init__(self, port: int, queue: str | None = None,
                 nodes: Mapping[str, int] | None = None) -> None:
        super().__init__(port, queue)
        self.clients = {name: redis.Redis(host="127.0.0.1", port=p, socket_timeout=PROBE_TIMEOUT_S,
                                          socket_connect_timeout=PROBE_TIMEOUT_S,
                                          decode_responses=True)
                        for name, p in (nodes or {}).items()}
        self.ports = dict(nodes or {})

    def _each_sentinel(self, *command: str) -> list[Any]:
        """Each answering Sentinel's reply to ``command`` (a frozen or cut-off one is skipped).
        Not redis-py's Sentinel methods: on a plain client (6.4) they pass their parsers an
        option the parsers refuse (TypeError 'once')."""
        replies = []
        for name in SENTINELS:
            try:
                replies.append(self.clients[name].execute_command(  # type: ignore[no-untyped-call]
                    " ".join(command[:2]), *command[2:]))
            except (redis.RedisError, KeyError):
                continue
        return replies

    def _masters(self) -> list[str]:
        """Each answering Sentinel's primary (the name it announces)."""
        return [str(a[0]) for a in self._each_sentinel("SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                                       MASTER) if a]

    def leader(self) -> str:
        masters = self._masters()
        if not masters or masters[0] not in DATA_NODES:
            raise LookupError(f"no Sentinel names a primary among {DATA_NODES}: {masters}")
        return masters[0]

    def nodes(self) -> list[str]:
        return list(DATA_NODES)

    def sees_down(self, node: str) -> bool:
        """A Sentinel flags ``node`` (the primary) subjectively or objectively down, or names
        another primary already."""
        for state in self._each_sentinel("SENTINEL", "MASTER", MASTER):
            if not isinstance(state, dict):
                continue
            flags, ip = str(state.get("flags", "")), str(state.get("ip", ""))
            if "s_down" in flags or "o_down" in flags or (ip and ip != node):
                return True
        return False

    def _role(self, node: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], self.clients[node].info("replication"))
        except (redis.RedisError, KeyError):
            return None

    def settled(self) -> bool:
        """Every Sentinel answers and names the same primary, knows the two other Sentinels,
        and the primary is the only master, with the other node its replica, link up."""
        masters = self._masters()
        if len(masters) != len(SENTINELS) or len(set(masters)) != 1:
            return False
        primary = masters[0]
        peers = self._each_sentinel("SENTINEL", "SENTINELS", MASTER)
        if len(peers) != len(SENTINELS) or any(len(p) != len(SENTINELS) - 1 for p in peers):
            return False
        for node in DATA_NODES:
            info = self._role(node)
            if info is None:
                return False
            if node == primary:
                if info.get("role") != "master" or int(info.get("connected_slaves", 0)) < 1:
                    return False
            elif (info.get("role") != "slave" or info.get("master_link_status") != "up"
                  or info.get("master_host") != primary):
                return False
        return True

    def _on_primary(self) -> None:
        """Point the queue's reads at the node Sentinel names the primary now."""
        try:
            primary = self.leader()
        except LookupError:
            return  # keep the last one: its reads fail or answer as they can
        self.client = redis.Redis(host="127.0.0.1", port=self.ports[primary],
                                  socket_timeout=REDIS_TIMEOUT_S,
                                  socket_connect_timeout=REDIS_TIMEOUT_S)

    def ready(self) -> bool:
        return self.settled()

    def reset(self, idle: bool = False) -> None:
        self._on_primary()
        super().reset(idle)

    def empty(self) -> bool:
        self._on_primary()
        try:
            return super().empty()
        except redis.RedisError:
            return False

    def holdings(self, settings: Any) -> dict[str, str]:
        self._on_primary()
        return super().holdings(settings)

    def server_versions(self) -> dict[str, str]:
        self._on_primary()
        return super().server_versions()

    def close(self) -> None:
        super().close()
        for client in self.clients.values():
            client.close()


class CeleryRedisSentinel(CeleryRedis):
    name = NAME
    title = "Celery on Redis with Sentinel (primary, replica, 3 Sentinels)"
    broker = "redis-sentinel"
    matrix_profile = "clusters"
    knobs_class = CeleryRedisSentinelKnobs
    capabilities = frozenset({Capability.CLUSTERED, Capability.REDELIVERS,
                              Capability.VISIBILITY_TIMEOUT})
    pop_window = ""  # the BRPOP-window fault needs Toxiproxy, which Sentinel's clients bypass

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return SentinelForensics(port, queue, nodes)

    def broker_parts(self, knobs: Any) -> list[str]:
        parts = ["Sentinel (quorum 2, down-after 2 s), one replica",
                 *super().broker_parts(knobs)]
        if knobs.min_replicas_to_write:
            parts.append(f"min-replicas-to-write {knobs.min_replicas_to_write} "
                         "(min-replicas-max-lag 10)")
        return parts

    def note(self, settings: Any) -> str:
        return ("A primary and one replica (asynchronous replication, no persistence), three "
                "Sentinels (quorum 2, down-after-milliseconds 2000, failover-timeout 10000); "
                "Celery finds the primary through Sentinel (kombu's sentinel:// transport). "
                "Every cluster fault takes out the primary, for "
                f"{settings.get('partition_window_s', 20):g} s.")

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        if r.fault_kind != "cluster":
            return super().lost(r, n)
        if r.fault == "rolling-restart":
            return (f"{n} lost: the primary, restarted with persistence off, came back empty "
                    "before Sentinel saw it down (down-after 2 s), stayed the primary, and its "
                    "replica copied the empty dataset: what Redis's replication guide warns of.")
        if r.fault == "leader-sigstop":
            return (f"{n} lost: the frozen primary woke up still a primary; its clients' "
                    "connections had stayed open, so it took their writes until Sentinel "
                    "demoted it (~10 s) and it discarded them for the new primary's dataset.")
        return (f"{n} lost: Redis acknowledged them on the primary, and replication is "
                "asynchronous: what had not reached the replica when it was promoted is gone.")

    def promise(self, results: list[ScenarioResult]) -> list[str]:
        return promise_paragraphs(results)

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        if r.fault_kind != "cluster":
            return super().duplicate_cause(r)
        return ("the task's unacknowledged record came back through the visibility timeout "
                "on the new primary (kombu's unacked hash, replicated), and another worker ran "
                "it again")


PROMISE = ("Redis's documentation promises little here, and says so: replication is "
           "asynchronous, and \"Redis Sentinel + Redis replication is not guaranteed to retain "
           "acknowledged writes during failures\"; `min-replicas-to-write` with "
           "`min-replicas-max-lag` bounds the window in which a primary cut off from its "
           "replicas keeps accepting writes, without closing it; and a primary restarted with "
           "persistence off comes back empty and can wipe its replicas "
           "(redis.io/docs/latest/operate/oss_and_stack/management/replication/, .../sentinel/).")


def promise_paragraphs(results: list[ScenarioResult]) -> list[str]:
    """The documented promise, and what each configuration lost under the cluster faults: a
    loss breaks no promise of Redis's, but it does break Celery's at-least-once claim, which
    rests on the broker keeping what it acknowledged."""
    faulted = [r for r in results if r.fault_kind == "cluster"]
    if not faulted:
        return []
    lines = [PROMISE, ""]
    configurations = list(dict.fromkeys(r.configuration for r in faulted))
    total = 0
    for name in configurations:
        group = [r for r in faulted if r.configuration == name]
        lost = sum(int(r.counts.get("lost", 0)) for r in group)
        total += lost
        lines.append(f"- `{name}` lost {lost} acknowledged tasks (per fault: "
                     f"{lost_by_fault(group)}).")
    lines += ["", ("Measured against that promise: it **held** in the only sense it can, since "
                   "every loss above is one Redis says can happen; it is Celery's at-least-once "
                   "claim, resting on the broker keeping what it acknowledged, that these "
                   "losses break." if total else
                   "Measured: nothing acknowledged was lost here, more than Redis promises; "
                   "the promise **held**.")]
    return lines


def _c(name: str, meets: tuple[str, ...], **knobs: Any) -> Configuration:
    return Configuration(NAME, name, CeleryRedisSentinelKnobs(
        acks_late=True, reject_on_worker_lost=True, prefetch_multiplier=1, **knobs), meets)


CeleryRedisSentinel.configurations = (
    _c("sentinel-acks-late", CLUSTER_FAULTS),
    _c("sentinel-min-replicas-1", CLUSTER_FAULTS, min_replicas_to_write=1),
)
BACKEND = CeleryRedisSentinel()
