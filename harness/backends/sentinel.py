"""Redis with Sentinel, whichever library drives it: forensics that follow Sentinel's primary and
answer a cluster fault's questions, what Redis documents about it (the promise a report holds
the counts against), and why tasks get lost under its failovers. Celery's and arq's Sentinel
backends build on it (harness/backends/celery_redis_sentinel.py, arq_sentinel.py).

The topology (docker-compose.chaos.yml): two data nodes and three Sentinels (quorum 2,
``down-after-milliseconds`` 2 s, ``failover-timeout`` 10 s; topology/sentinel.sh) on a network of
their own with fixed addresses, every name in every container's /etc/hosts: Docker's DNS forgets
a killed container's name, and a Sentinel resolving it then blocks ~10 s per lookup, tilts and
never fails over (docs/clusters-prototype.md). No Toxiproxy: Sentinel hands its clients the
primary's real address, so a proxy could cut only the Sentinel links. A partition of the primary
cuts it off from everyone on that one network, its clients too; the split brain with clients on
the old primary's side is what freezing it (``leader-sigstop``) can make: clients whose
connections stay open write to it when it wakes up a primary, until Sentinel demotes it.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

import redis

from harness.backend import Backend, lost_by_fault
from harness.backends.redisbroker import REDIS_TIMEOUT_S, RedisForensics

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

MASTER = "chaos"  # Sentinel's name of the monitored primary (CHAOS_SENTINEL_MASTER)
PROBE_TIMEOUT_S = 2  # a frozen or cut-off node must not stall the forensics


class SentinelReads(RedisForensics):
    """A Redis broker's forensics read on whichever data node Sentinel names the primary now
    (every node and Sentinel publishes its own port), plus what a cluster fault asks: the
    primary, whether the Sentinels count it out, and whether they agree again on one primary
    that the other nodes follow. Put it before a library's Redis forensics
    (``class X(SentinelReads, CeleryRedisForensics)``): that class's reads then go to the
    primary. The broker's services are its Sentinels (named ``...sentinel...``) and its data
    nodes (the others), as the compose file names them."""

    def __init__(self, port: int, queue: str | None = None,
                 nodes: Mapping[str, int] | None = None) -> None:
        super().__init__(port, queue)
        self.ports = dict(nodes or {})
        self.clients = {name: redis.Redis(host="127.0.0.1", port=p, socket_timeout=PROBE_TIMEOUT_S,
                                          socket_connect_timeout=PROBE_TIMEOUT_S,
                                          decode_responses=True)
                        for name, p in self.ports.items()}
        self.sentinels = [name for name in self.ports if "sentinel" in name]
        self.data_nodes = [name for name in self.ports if name not in self.sentinels]

    def _each_sentinel(self, *command: str) -> list[Any]:
        """Each answering Sentinel's reply to ``SENTINEL <command...>`` (a frozen or cut-off
        one is skipped). Not redis-py's Sentinel methods: on a plain client (6.4) they pass
        their parsers an option the parsers refuse (TypeError 'once')."""
        replies = []
        for name in self.sentinels:
            try:
                replies.append(self.clients[name].execute_command(  # type: ignore[no-untyped-call]
                    f"SENTINEL {command[0]}", *command[1:]))
            except redis.RedisError:
                continue
        return replies

    def _masters(self) -> list[str]:
        """Each answering Sentinel's primary (the name it announces)."""
        return [str(a[0]) for a in self._each_sentinel("GET-MASTER-ADDR-BY-NAME", MASTER) if a]

    def leader(self) -> str:
        masters = self._masters()
        if not masters or masters[0] not in self.data_nodes:
            raise LookupError(f"no Sentinel names a primary among {self.data_nodes}: {masters}")
        return masters[0]

    def nodes(self) -> list[str]:
        return list(self.data_nodes)

    def sees_down(self, node: str) -> bool:
        """A Sentinel flags ``node`` (the primary) subjectively or objectively down, or names
        another primary already."""
        for state in self._each_sentinel("MASTER", MASTER):
            if not isinstance(state, dict):
                continue
            flags, address = str(state.get("flags", "")), str(state.get("ip", ""))
            if "s_down" in flags or "o_down" in flags or (address and address != node):
                return True
        return False

    def _replication(self, node: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], self.clients[node].info("replication"))
        except redis.RedisError:
            return None

    def settled(self) -> bool:
        """Every Sentinel answers and names the same primary and knows the other Sentinels;
        the primary is the only master, the other nodes its replicas, links up."""
        masters = self._masters()
        if len(masters) != len(self.sentinels) or len(set(masters)) != 1:
            return False
        primary = masters[0]
        peers = self._each_sentinel("SENTINELS", MASTER)
        others = len(self.sentinels) - 1
        if len(peers) != len(self.sentinels) or any(len(p) != others for p in peers):
            return False
        for node in self.data_nodes:
            info = self._replication(node)
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
        self.client.close()
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


def parts(knobs: Any) -> list[str]:
    """The summary's words for the Sentinel topology and its knob."""
    parts = ["Sentinel (quorum 2, down-after 2 s), one replica"]
    if knobs.min_replicas_to_write:
        parts.append(f"min-replicas-to-write {knobs.min_replicas_to_write} "
                     "(min-replicas-max-lag 10)")
    return parts


def note(library: str, how: str, settings: Any) -> str:
    """The sentence under a Sentinel backend's tables."""
    return ("A primary and one replica (asynchronous replication, no persistence), three "
            "Sentinels (quorum 2, down-after-milliseconds 2000, failover-timeout 10000); "
            f"{library} finds the primary through Sentinel ({how}). Every cluster fault takes "
            f"out the primary, for {settings.get('partition_window_s', 20):g} s.")


PROMISE = ("Redis's documentation promises little here, and says so: replication is "
           "asynchronous, and \"Redis Sentinel + Redis replication is not guaranteed to retain "
           "acknowledged writes during failures\"; `min-replicas-to-write` with "
           "`min-replicas-max-lag` bounds the window in which a primary cut off from its "
           "replicas keeps accepting writes, without closing it; and a primary restarted with "
           "persistence off comes back empty and can wipe its replicas "
           "(redis.io/docs/latest/operate/oss_and_stack/management/replication/, .../sentinel/).")


def promise_paragraphs(results: list[ScenarioResult]) -> list[str]:
    """The documented promise, and what each configuration lost under the cluster faults: a
    loss breaks no promise of Redis's, but it does break the library's at-least-once claim,
    which rests on the broker keeping what it acknowledged."""
    faulted = [r for r in results if r.fault_kind == "cluster"]
    if not faulted:
        return []
    lines = [PROMISE, ""]
    total = 0
    for name in dict.fromkeys(r.configuration for r in faulted):
        group = [r for r in faulted if r.configuration == name]
        lost = sum(int(r.counts.get("lost", 0)) for r in group)
        total += lost
        lines.append(f"- `{name}` lost {lost} acknowledged tasks (per fault: "
                     f"{lost_by_fault(group)}).")
    lines += ["", ("Measured against that promise: it **held** in the only sense it can, since "
                   "every loss above is one Redis says can happen; it is the library's "
                   "at-least-once claim, resting on the broker keeping what it acknowledged, "
                   "that these losses break." if total else
                   "Measured: nothing acknowledged was lost here, more than Redis promises; "
                   "the promise **held**.")]
    return lines


def lost(r: ScenarioResult, n: int) -> str:
    """Why tasks were lost under a cluster fault of Redis with Sentinel."""
    if r.fault == "rolling-restart":
        return (f"{n} lost: the primary, restarted with persistence off, came back empty "
                "before Sentinel saw it down (down-after 2 s), stayed the primary, and its "
                "replica copied the empty dataset: what Redis's replication guide warns of.")
    if r.fault == "leader-sigstop":
        return (f"{n} lost: the frozen primary woke up still a primary; clients whose "
                "connections had stayed open wrote to it until Sentinel demoted it (~10 s), "
                "and it discarded those writes for the new primary's dataset.")
    return (f"{n} lost: Redis acknowledged them on the primary, and replication is "
            "asynchronous: what had not reached the replica when it was promoted is gone.")


class SentinelBackend(Backend):
    """What a library's backend becomes on Redis with Sentinel: the cluster profile's, its
    forensics following Sentinel's primary, Redis's promise and the loss explanations above.
    Put it first (``class X(SentinelBackend, CeleryRedis)``): the rest is the library's."""

    broker = "redis-sentinel"
    matrix_profile = "clusters"
    forensics_class: ClassVar[type[SentinelReads]]  # the library's forensics on the primary
    client: ClassVar[tuple[str, str]]  # (library, how it finds the primary), for the note

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return self.forensics_class(port, queue, nodes)

    def note(self, settings: Any) -> str:
        return note(*self.client, settings)

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        return lost(r, n) if r.fault_kind == "cluster" else super().lost(r, n)

    def promise(self, results: list[ScenarioResult]) -> list[str]:
        return promise_paragraphs(results)
