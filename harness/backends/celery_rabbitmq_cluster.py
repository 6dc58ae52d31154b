"""Celery on a 3-node RabbitMQ cluster: the cluster profile's RabbitMQ backend.

The same Celery image and app as Celery on RabbitMQ; its clients reach the cluster through
kombu's failover list (``amqp://a;amqp://b;amqp://c``, each client starting at another node:
worker 1 at rabbitmq1, worker 2 at rabbitmq2, the producer at rabbitmq3), directly on the
clients' network, not through Toxiproxy. The nodes peer over a network of their own, which a
partition cuts (harness/clusterfaults.py): a cut-off node keeps its clients.

The cluster (topology/rabbitmq-cluster.conf): peer discovery from a fixed list
(``classic_config``), ``cluster_partition_handling = pause_minority`` (the setting RabbitMQ's
partitions guide recommends for a cluster in one place: a node that sees itself in the minority
stops serving its clients until the partition heals), and ``net_ticktime`` 10 s instead of
60 s, so a node is declared down within 10-15 s (docs/clusters-prototype.md measured 63-69 s
with the default).

What RabbitMQ promises (https://www.rabbitmq.com/docs/quorum-queues,
https://www.rabbitmq.com/docs/confirms, https://www.rabbitmq.com/docs/partitions):

* A quorum queue is replicated by Raft over its members (3 here): a message confirmed to the
  publisher is on a majority of them, and the queue survives the loss of a minority. "Data
  safety" is promised for messages *confirmed* by the broker: without publisher confirms "no
  guarantees are made".
* A classic queue lives on one node (its home node): while that node is down the queue is
  unavailable, and a publish to it is routed nowhere (``basic.return`` only with
  ``mandatory``): with confirms but no ``mandatory`` the broker still confirms it.
* With ``pause_minority`` the minority side of a partition pauses instead of diverging.

Configurations: a quorum queue without and with publisher confirms, and a durable classic queue
with confirms for contrast. All acknowledge late with ``task_reject_on_worker_lost``: at least
once is what every one claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import requests

from harness.backend import CLUSTER_FAULTS, Capability, Configuration, lost_by_fault
from harness.backends.celery_rabbitmq import (
    CeleryRabbit,
    CeleryRabbitForensics,
    CeleryRabbitKnobs,
)

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "celery-rabbitmq-cluster"
CLUSTER_TIMEOUT_S = 3  # one node's answer: the API of a node whose peer is down can hang


def node_service(node: str) -> str:
    """``rabbit@rabbitmq2`` -> ``rabbitmq2``: each node is named after its service (the
    compose file's RABBITMQ_NODENAME), so the cluster's own answer names a container."""
    return node.partition("@")[2] or node


class ClusterForensics(CeleryRabbitForensics):
    """Celery on a RabbitMQ cluster, read through every node's management API (each node
    publishes its own port): the task queue's counts and messages as for one node (through the
    first node, which every cluster fault brings back before the drain), plus the cluster's
    own answers a cluster fault asks for: which node leads the queue, and whether every node
    is running again with no partition recorded."""

    def __init__(self, port: int, queue: str | None = None,
                 nodes: Mapping[str, int] | None = None) -> None:
        super().__init__(port, queue)
        self.node_urls = {name: f"http://127.0.0.1:{p}/api" for name, p in (nodes or {}).items()}

    def _get(self, url: str, path: str, **params: str) -> Any:
        response = self.session.get(f"{url}{path}", params=params, timeout=CLUSTER_TIMEOUT_S)
        response.raise_for_status()
        return response.json()

    def _running_alone(self, url: str) -> bool:
        """This node sees every node running and records no partition."""
        try:
            nodes = self._get(url, "/nodes")
        except (requests.RequestException, ValueError):
            return False
        return (len(nodes) == len(self.node_urls)
                and all(n.get("running") and not n.get("partitions") for n in nodes))

    def ready(self) -> bool:
        """Every node answers, listens for AMQP and sees the whole cluster formed."""
        return super().ready() and all(
            self._running_alone(url) for url in self.node_urls.values())

    def nodes(self) -> list[str]:
        return list(self.node_urls)

    def _queue_on(self, url: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], self._get(url, f"/queues/{self.vhost}/{self.queue}"))
        except (requests.RequestException, ValueError):
            return None

    def leader(self) -> str:
        """The quorum queue's leader, or the classic queue's home node."""
        for url in self.node_urls.values():
            queue = self._queue_on(url)
            if queue and (queue.get("leader") or queue.get("node")):
                return node_service(str(queue.get("leader") or queue.get("node")))
        raise LookupError(f"no node of the cluster names a leader of queue {self.queue!r}")

    def sees_down(self, node: str) -> bool:
        """Some other node's API lists ``node`` as not running (its peers have given up on it:
        net_ticktime passed, or its connection closed)."""
        for name, url in self.node_urls.items():
            if name == node:
                continue
            try:
                nodes = self._get(url, "/nodes")
            except (requests.RequestException, ValueError):
                continue
            if any(node_service(str(n.get("name", ""))) == node and not n.get("running")
                   for n in nodes):
                return True
        return False

    def settled(self) -> bool:
        """Every node sees every node running and no partition; a quorum queue has every
        member online and a leader."""
        if not all(self._running_alone(url) for url in self.node_urls.values()):
            return False
        queue = self._queue_on(next(iter(self.node_urls.values())))
        if queue is None:
            return False
        if queue.get("type") == "quorum":
            members, online = queue.get("members") or [], queue.get("online") or []
            return bool(queue.get("leader")) and sorted(members) == sorted(online)
        return bool(queue.get("node"))


class CeleryRabbitCluster(CeleryRabbit):
    name = NAME
    title = "Celery on a RabbitMQ cluster (3 nodes)"
    broker = "rabbitmq-cluster"
    matrix_profile = "clusters"
    capabilities = frozenset({Capability.CLUSTERED, Capability.REDELIVERS})

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return ClusterForensics(port, queue, nodes)

    def broker_parts(self, knobs: Any) -> list[str]:
        return ["3-node cluster (pause_minority, net_ticktime 10 s)", *super().broker_parts(knobs)]

    def note(self, settings: Any) -> str:
        return ("Three RabbitMQ nodes, cluster_partition_handling = pause_minority, net_ticktime "
                "10 s; each client starts at another node and fails over to the next. A quorum "
                "queue is replicated on all three (Raft: a confirmed message is on a majority); "
                "a classic queue lives on its home node only. Every cluster fault takes out the "
                "node leading the task queue, for "
                f"{settings.get('partition_window_s', 20):g} s.")

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        if r.fault_kind != "cluster":
            return super().lost(r, n)
        if r.knobs.get("queue_type") == "classic":
            return (f"{n} lost: the classic queue lives on its home node {r.fault_target}; "
                    "while that node was out the queue was unavailable, and a publish to it was "
                    "routed nowhere yet (without `mandatory`) still confirmed.")
        if not r.knobs.get("confirm_publish"):
            return (f"{n} lost: without publisher confirms a publish returns once it is on the "
                    "socket; RabbitMQ promises a quorum queue's safety only for confirmed "
                    "messages, and these were never confirmed by a majority.")
        return (f"{n} lost although RabbitMQ had confirmed them: a confirmed message of a "
                "quorum queue is on a majority of its members, so this is a broken promise.")

    def promise(self, results: list[ScenarioResult]) -> list[str]:
        return promise_paragraphs(results)

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        if r.fault_kind != "cluster":
            return super().duplicate_cause(r)
        return ("the node a worker was consuming from went away (killed, paused by "
                "pause_minority, or frozen) with the worker's deliveries unacknowledged; the "
                "queue delivered them again to another consumer, and the first run's "
                "acknowledgement went nowhere")


PROMISE = ("RabbitMQ's documentation promises that a message it has *confirmed* to its publisher "
           "is stored on a majority of a quorum queue's members and survives the loss of a "
           "minority of them; for a message published without confirms it makes no promise; "
           "and a classic queue lives on one node, unavailable while that node is out "
           "(rabbitmq.com/docs/quorum-queues, /docs/confirms, /docs/partitions).")


def promise_paragraphs(results: list[ScenarioResult]) -> list[str]:
    """The documented promise, and what the quorum queue with confirms (the configuration the
    promise is about), without them, and the classic queue lost under the cluster faults."""
    faulted = [r for r in results if r.fault_kind == "cluster"]
    if not faulted:
        return []

    def of(queue_type: str, confirms: bool) -> list[ScenarioResult]:
        return [r for r in faulted if r.knobs.get("queue_type") == queue_type
                and bool(r.knobs.get("confirm_publish")) == confirms]

    paragraphs = [PROMISE]
    promised = of("quorum", True)
    if promised:
        lost = sum(int(r.counts.get("lost", 0)) for r in promised)
        verdict = ("**held**" if lost == 0 else "**did not hold**")
        paragraphs.append(
            f"Measured, quorum queue with publisher confirms ({len(promised)} scenarios; lost "
            f"per fault: {lost_by_fault(promised)}): the promise {verdict}"
            + (": no confirmed task was lost while the node leading the queue was killed, cut "
               "off, frozen or restarted." if lost == 0
               else f": {lost} confirmed tasks were lost."))
    why = {"quorum queue without confirms": "RabbitMQ promises nothing for publishes it never "
                                            "confirmed.",
           "classic queue with confirms": "a classic queue is not replicated, and while its home "
                                          "node is out a publish to it is routed nowhere, yet "
                                          "confirmed (no `mandatory` flag): as documented."}
    for label, group in (("quorum queue without confirms", of("quorum", False)),
                         ("classic queue with confirms", of("classic", True))):
        if group:
            lost = sum(int(r.counts.get("lost", 0)) for r in group)
            paragraphs.append(f"For contrast, the {label} lost {lost} (per fault: "
                              f"{lost_by_fault(group)})" + (f": {why[label]}" if lost else "."))
    return [line for p in paragraphs for line in (p, "")][:-1]


def _c(name: str, meets: tuple[str, ...], **knobs: Any) -> Configuration:
    return Configuration(NAME, name, CeleryRabbitKnobs(
        acks_late=True, reject_on_worker_lost=True, prefetch_multiplier=1, **knobs), meets)


CeleryRabbitCluster.configurations = (
    _c("rabbit-cluster-quorum", CLUSTER_FAULTS, queue_type="quorum"),
    _c("rabbit-cluster-quorum-confirms", CLUSTER_FAULTS, queue_type="quorum",
       confirm_publish=True),
    _c("rabbit-cluster-classic-confirms", CLUSTER_FAULTS, confirm_publish=True),
)
BACKEND = CeleryRabbitCluster()
