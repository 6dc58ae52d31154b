"""The fault protocol (Jepsen's nemesis, one fault): what it targets, which capabilities of a
backend it needs, when it fired at something (``interrupted``), how it injects and heals.

The catalogue is harness/faults.py (worker, link, broker and producer faults) and
harness/clusterfaults.py (faults on a clustered broker's nodes); both build on this class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from harness.backend import Capability, Configuration
from harness.observe import in_flight_at
from harness.world import World

# What a fault is, for the explanations: a worker process dying (or shutting down), a worker
# frozen, a worker's broker link broken or slowed, the broker down, the producer's link broken.
# A cluster fault (harness/clusterfaults.py) takes one node of a clustered broker out.
KINDS = ("none", "worker-death", "stall", "link", "broker", "producer-link", "cluster")


class Fault:
    name: ClassVar[str]
    description: ClassVar[str]
    kind: ClassVar[str] = "worker-death"
    target: ClassVar[str] = "worker"  # worker | broker | producer
    needs: ClassVar[frozenset[Capability]] = frozenset()  # of the configuration's backend
    control: ClassVar[bool] = False  # the no-fault control: nothing is injected
    # Met by some configuration of the default matrix; False for a fault that only reproductions
    # run (too slow for the time-limited matrix, or telling only under a thread's own workload).
    in_matrix: ClassVar[bool] = True

    def applies(self, configuration: Configuration) -> bool:
        return self.needs <= configuration.capabilities

    def unmet(self, configuration: Configuration) -> str:
        """Why the fault does not apply, in words."""
        missing = ", ".join(sorted(self.needs - configuration.capabilities))
        return (f"fault {self.name} needs {missing}, which configuration {configuration.name} "
                f"(backend {configuration.backend}) does not have")

    def validity(self, counts: dict[str, int], records: Sequence[Mapping[str, Any]] = (),
                 fired_t: float | None = None) -> str | None:
        """What makes a scenario of this fault invalid beyond firing at an idle target, from
        its counts or its records since ``fired_t`` (what the fault saw happen)."""
        return None

    def interrupted(self, records: list[dict[str, Any]], target: str | None,
                    fired_t: float) -> list[str]:
        """The tasks the fault caught mid-task (``target`` None: on any worker); none means the
        scenario measured nothing and is run again."""
        return in_flight_at(records, target, fired_t)

    def window(self, settings: Any) -> float:
        return float(settings.fault_window_s)

    def inject(self, world: World, target: str) -> None:
        raise NotImplementedError

    def heal(self, world: World, target: str) -> None:
        return None

    def touches(self, world: World, target: str) -> set[str]:
        """Services to start afresh in the next scenario."""
        return {target}
