"""The matrix: backends, their configurations (each claiming a guarantee), faults, and settings.

Everything a user can name on the command line is checked here, before anything starts: an
unknown name or an impossible value gives one error naming what is wrong and what is valid.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from harness.checker import Guarantee

BACKENDS = ("celery-redis",)
FAULTS = ("none", "sigkill-worker", "cut-worker-broker")


class MatrixError(ValueError):
    """A backend, configuration, fault or setting that does not exist or cannot be."""


@dataclass(frozen=True)
class Configuration:
    """One way to configure a backend, and the delivery guarantee that way claims."""

    backend: str
    name: str
    guarantee: Guarantee
    environment: tuple[tuple[str, str], ...]
    summary: str

    def env(self) -> dict[str, str]:
        return dict(self.environment)


def _celery(acks_late: bool, prefetch: int) -> Configuration:
    mode = "acks-late" if acks_late else "acks-early"
    return Configuration(
        backend="celery-redis",
        name=f"{mode}-prefetch-{prefetch}",
        # Celery's docs: acks early means a task may be lost if the worker crashes mid-execution
        # (at most once); task_acks_late with task_reject_on_worker_lost means it is redelivered
        # and may run again (at least once).
        guarantee=Guarantee.AT_LEAST_ONCE if acks_late else Guarantee.AT_MOST_ONCE,
        environment=(
            ("CHAOS_ACKS_LATE", str(acks_late).lower()),
            ("CHAOS_REJECT_ON_WORKER_LOST", str(acks_late).lower()),
            ("CHAOS_PREFETCH_MULTIPLIER", str(prefetch)),
        ),
        summary=(
            "task_acks_late=True, task_reject_on_worker_lost=True"
            if acks_late
            else "Celery defaults (acks early)"
        )
        + f", worker_prefetch_multiplier={prefetch}",
    )


CONFIGURATIONS: dict[str, Configuration] = {
    c.name: c for c in (_celery(late, p) for late in (False, True) for p in (1, 4))
}


@dataclass(frozen=True)
class Settings:
    """Scenario settings. Times in seconds; all bounded."""

    tasks: int = 40
    submit_rate: float = 10.0  # tasks per second
    task_min_s: float = 0.6
    task_max_s: float = 1.4
    fault_after_started: int = 8  # fire once this many executions have started ...
    fault_window_s: float = 4.0  # ... and heal this long after firing
    visibility_timeout_s: int = 15  # Redis transport: unacked messages come back after this
    restore_interval_s: int = 2  # kombu's sweep for such messages
    late_after_s: float = 5.0  # completed later than heal + this is late
    drain_s: float = 60.0  # after healing, wait at most this long for every task
    quiet_s: float = 2.0  # the drain ends once nothing ran and the broker held nothing this long
    ready_s: float = 60.0  # bound for any service to become ready

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.tasks <= 10_000:
            problems.append(f"tasks={self.tasks} (valid: 1..10000)")
        if not 0 < self.submit_rate <= 1000:
            problems.append(f"submit_rate={self.submit_rate} (valid: >0 and <=1000)")
        if not 0 <= self.task_min_s <= self.task_max_s <= 60:
            problems.append(
                f"task_min_s={self.task_min_s}, task_max_s={self.task_max_s} "
                "(valid: 0 <= min <= max <= 60)"
            )
        if not 1 <= self.fault_after_started <= self.tasks:
            problems.append(
                f"fault_after_started={self.fault_after_started} (valid: 1..tasks={self.tasks})"
            )
        for name in ("fault_window_s", "late_after_s", "drain_s", "quiet_s", "ready_s"):
            if not 0 <= getattr(self, name) <= 3600:
                problems.append(f"{name}={getattr(self, name)} (valid: 0..3600)")
        if not 1 <= self.visibility_timeout_s <= 86_400:
            problems.append(f"visibility_timeout_s={self.visibility_timeout_s} (valid: 1..86400)")
        if not 1 <= self.restore_interval_s <= self.visibility_timeout_s:
            problems.append(
                f"restore_interval_s={self.restore_interval_s} "
                f"(valid: 1..visibility_timeout_s={self.visibility_timeout_s})"
            )
        if problems:
            raise MatrixError("impossible settings: " + "; ".join(problems))

    def with_overrides(self, overrides: dict[str, str]) -> Settings:
        """Settings with ``name=value`` strings applied, unknown names refused."""
        known = {f.name: f for f in fields(self)}
        values: dict[str, Any] = {}
        for name, text in overrides.items():
            if name not in known:
                raise MatrixError(f"unknown setting {name!r}; valid: {', '.join(sorted(known))}")
            kind = type(getattr(self, name))
            try:
                values[name] = kind(text)
            except ValueError:
                raise MatrixError(f"setting {name}={text!r}: expected {kind.__name__}") from None
        return replace(self, **values)


def configuration(name: str) -> Configuration:
    if name not in CONFIGURATIONS:
        raise MatrixError(f"unknown configuration {name!r}; valid: {', '.join(CONFIGURATIONS)}")
    return CONFIGURATIONS[name]


def fault(name: str) -> str:
    if name not in FAULTS:
        raise MatrixError(f"unknown fault {name!r}; valid: {', '.join(FAULTS)}")
    return name


def backend(name: str) -> str:
    if name not in BACKENDS:
        raise MatrixError(f"unknown backend {name!r}; valid: {', '.join(BACKENDS)}")
    return name


def select(names: str | None, valid: tuple[str, ...] | list[str], kind: str) -> list[str]:
    """A comma-separated selection (or all when empty), each name checked."""
    if not names:
        return list(valid)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in valid]
    if unknown:
        raise MatrixError(f"unknown {kind} {', '.join(unknown)}; valid: {', '.join(valid)}")
    return chosen


PROOF_LOSS = ("acks-early-prefetch-1", "sigkill-worker")  # known to lose work under a kill


def with_self_proof(cases: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The selected (configuration, fault) cases plus what every run needs to prove itself:
    a no-fault control for each selected configuration, and one case known to lose work."""
    chosen = list(dict.fromkeys(cases))
    for configuration in dict.fromkeys(c for c, _ in cases):
        if (configuration, "none") not in chosen:
            chosen.insert(0, (configuration, "none"))
    if not any(c.startswith("acks-early") and f == "sigkill-worker" for c, f in chosen):
        chosen.append(PROOF_LOSS)
        if (PROOF_LOSS[0], "none") not in chosen:
            chosen.insert(0, (PROOF_LOSS[0], "none"))
    return chosen
