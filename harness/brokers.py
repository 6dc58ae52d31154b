"""What the harness asks of a backend's broker (its forensics): is it ready, is it empty,
where does it still hold a task that did not complete (and which timeout would release it), and
which server versions is it running?

Each backend's module (harness/backends/) implements this for its own broker, reading it
directly on its published 127.0.0.1 port, never through a proxy, so a fault on the proxies cannot
blind it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


class Broker(Protocol):
    def ready(self) -> bool: ...

    def reset(self, idle: bool = False) -> None:
        """Empty the broker between scenarios. ``idle``: none of its clients runs now (they
        start afterwards), so it may also drop what clients declare (queues)."""

    def empty(self) -> bool: ...

    def holdings(self, settings: Any) -> dict[str, str]:
        """Task id -> where the broker holds it now, in words (with the timeout releasing it)."""

    def account(self, lost: list[str]) -> tuple[dict[str, str], int]:
        """For tasks otherwise lost, where the broker must still hold them though it cannot
        list them (task -> where), and how many held messages stay unmapped to a task."""

    def server_versions(self) -> dict[str, str]:
        """The broker server's versions as the running service reports them ({name: version},
        e.g. redis-server, rabbitmq-server and erlang), for the report's provenance. Best
        effort: a broker that does not answer gives {}, never an exception (a report must not
        fail for want of a version); {} too where there is no broker."""

    def close(self) -> None: ...


@runtime_checkable
class Clustered(Broker, Protocol):
    """The forensics of a broker made of several nodes (a RabbitMQ cluster, Redis with
    Sentinel): which node leads the task queue, which nodes there are, and whether the cluster
    is whole again after a fault. What a cluster fault (harness/clusterfaults.py) asks before
    it picks its target and after it heals."""

    def leader(self) -> str:
        """The service name of the node leading the task queue now, as the cluster says (a
        quorum queue's leader, a classic queue's home node, Sentinel's primary)."""

    def nodes(self) -> list[str]:
        """The service names of the nodes that hold data (not Sentinels), in file order."""

    def sees_down(self, node: str) -> bool:
        """The rest of the cluster counts ``node`` out now (RabbitMQ's peers list it not
        running; Sentinel flags the primary down or has moved on from it): what shows a
        partition or a freeze was felt. False while it cannot tell."""

    def settled(self) -> bool:
        """Every node is back and agrees: one leader, every member online, replication linked.
        False, never an exception, while a node is down or unreachable."""
