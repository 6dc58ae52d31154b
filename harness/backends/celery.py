"""What Celery does under faults, whatever its broker: knobs, claims and explanations shared by
Celery on Redis and Celery on RabbitMQ (one image, one adapter; an ``amqp://`` URL switches the
transport).

Claims follow Celery's documentation: acks early (the default) acknowledges a task when it
starts, so a worker that dies mid-task loses it (at most once); ``task_acks_late`` keeps it in
the broker until it finishes, so it is redelivered and may run again (at least once); an
idempotency key checked before the side effect makes the repeat harmless (effectively once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from harness.backend import Backend, Capability, Knobs
from harness.checker import Guarantee

if TYPE_CHECKING:
    from harness.result import ScenarioResult

POOLS = ("prefork", "threads", "solo")
# The pool's module name (celery.concurrency.<name>), as the agent reports it -> the pool option.
POOL_NAMES = {"thread": "threads"}
WORKER_DEATH = "worker-death"
# Faults that end a worker with a warm shutdown (its main process closes its channel itself):
# SIGTERM of the main process once, or in a series; SIGTERM of the whole process group, whose
# children die mid-task while the main process shuts down warm.
WARM_RESTARTS = "warm-restarts"
GROUP_SIGTERM = "sigterm-worker-group"
WARM_SHUTDOWNS = ("sigterm-worker", WARM_RESTARTS, GROUP_SIGTERM)
# Faults whose pool child dies mid-task while the main process lives on (for a moment at least).
POOL_CHILD_DEATHS = ("sigkill-pool-child", GROUP_SIGTERM)


@dataclass(frozen=True)
class CeleryKnobs(Knobs):
    """Celery's durability settings, as the sample app reads them (``CHAOS_*``); the defaults
    are the compose file's."""

    acks_late: bool = False
    reject_on_worker_lost: bool = False
    prefetch_multiplier: int = 4
    pool: str = "prefork"
    concurrency: int = 2
    idempotent: bool = False

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"pool={self.pool!r}; valid: {', '.join(POOLS)}")

    def env(self) -> dict[str, str]:
        """Pool and concurrency are worker arguments, as a team passes them: one
        ``CHAOS_WORKER_ARGS`` (what follows ``celery -A app worker``) instead of two knobs."""
        env = super().env()
        pool, concurrency = env.pop("CHAOS_POOL"), env.pop("CHAOS_CONCURRENCY")
        return {**env, "CHAOS_WORKER_ARGS": f"--pool {pool} --concurrency {concurrency}"}


def _option(args: list[str], short: str, long: str) -> str | None:
    """The value of a worker option (``-P x``, ``-Px``, ``--pool x``, ``--pool=x``), the last
    one given winning, as in Celery's own parser."""
    found = None
    for i, arg in enumerate(args):
        if arg in (short, long) and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith(long + "="):
            found = arg.split("=", 1)[1]
        elif arg.startswith(short) and len(arg) > len(short) and not arg.startswith("--"):
            found = arg[len(short):]
    return found


class Celery(Backend):
    """The parts of Celery's behaviour that do not depend on the broker."""

    kind = "celery"
    image = "celery"
    libraries: ClassVar[tuple[str, ...]] = ("celery", "kombu", "billiard")

    def target_knobs(self, worker_args: list[str]) -> Knobs:
        """Pool and concurrency as their worker arguments give them (the pool decides whether
        a pool child can be killed); Celery's defaults otherwise (prefork)."""
        knobs = self.knobs_class()
        pool = _option(worker_args, "-P", "--pool")
        concurrency = _option(worker_args, "-c", "--concurrency")
        return replace(knobs, **{
            **({"pool": POOL_NAMES.get(pool, pool)} if pool in (*POOLS, *POOL_NAMES) else {}),
            **({"concurrency": int(concurrency)} if concurrency and concurrency.isdigit()
               else {})})

    def guarantee(self, knobs: Any) -> Guarantee:
        if knobs.acks_late and knobs.idempotent:
            return Guarantee.EFFECTIVELY_ONCE
        return Guarantee.AT_LEAST_ONCE if knobs.acks_late else Guarantee.AT_MOST_ONCE

    def describe(self, knobs: Any) -> str:
        parts = ([f"task_acks_late=True, task_reject_on_worker_lost={knobs.reject_on_worker_lost}"]
                 if knobs.acks_late else ["Celery defaults (acks early)"])
        parts.append(f"worker_prefetch_multiplier={knobs.prefetch_multiplier}")
        if knobs.pool == "solo":
            parts.append("--pool solo (the task runs in the worker's main process)")
        else:
            parts.append(f"--pool {knobs.pool} --concurrency {knobs.concurrency}")
        parts += self.broker_parts(knobs)
        if knobs.idempotent:
            parts.append("idempotency key checked before the side effect")
        return ", ".join(parts)

    def broker_parts(self, knobs: Any) -> list[str]:
        return []

    def capabilities_of(self, knobs: Any) -> frozenset[Capability]:
        if knobs.pool == "prefork":
            return self.capabilities | {Capability.POOL_CHILDREN}
        return self.capabilities

    def read_knobs(self, effective: Mapping[str, Any], idempotent: bool) -> dict[str, Any]:
        pool = str(effective["pool"])
        return {
            "acks_late": bool(effective["task_acks_late"]),
            "reject_on_worker_lost": bool(effective["task_reject_on_worker_lost"]),
            "prefetch_multiplier": int(effective["worker_prefetch_multiplier"]),
            "pool": POOL_NAMES.get(pool, pool),
            "concurrency": int(effective["concurrency"]),
            "idempotent": idempotent,
        }

    def scenario_env(self, settings: Any) -> dict[str, str]:
        # The Redis transport's timeouts are scenario settings (the AMQP transport ignores them).
        return {"CHAOS_VISIBILITY_TIMEOUT": str(settings.visibility_timeout_s),
                "CHAOS_RESTORE_INTERVAL": str(settings.restore_interval_s)}

    def must_lose(self, knobs: Any, fault_kind: str, fault: str) -> bool:
        return not knobs.acks_late and fault == "sigkill-worker"

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        head = f"{n} lost"
        if r.fault == WARM_RESTARTS:
            return (f"{head} across warm restarts of {r.fault_target}: a warm shutdown lets "
                    "running tasks finish and gives reserved ones back, so it should lose none; "
                    "those lost before they started were taken off the queue by a fetch the "
                    "stopping worker never processed (celery#4354, celery#7950).")
        if not r.knobs.get("acks_late") and r.fault_kind == WORKER_DEATH:
            return (f"{head}: they were running on {r.fault_target} when it died, and Celery had "
                    "acknowledged them when they started (acks early), so nothing redelivered "
                    "them. `task_acks_late=True` keeps them in the broker until they finish.")
        if not r.knobs.get("reject_on_worker_lost") and r.fault in POOL_CHILD_DEATHS:
            return (f"{head}: the pool child died mid-task and, without "
                    "`task_reject_on_worker_lost`, Celery acknowledged the message as failed "
                    "(WorkerLostError) instead of requeueing it. "
                    "`task_reject_on_worker_lost=True` requeues it.")
        return None

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        if r.fault == "crash-after-effect":
            return ("the process died after the side effect but before Celery acknowledged the "
                    "task (acks late), so the task was delivered and run again")
        return None
