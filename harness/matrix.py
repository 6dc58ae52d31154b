"""The matrix: backends, their configurations (each claiming a guarantee), faults, and settings.

Everything a user can name on the command line is checked here, before anything starts: an
unknown name or an impossible value gives one error naming what is wrong and what is valid.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from harness.checker import Guarantee

BACKENDS = ("celery-redis", "celery-rabbitmq", "arq", "fastapi")
BACKEND_TITLES = {
    "celery-redis": "Celery on Redis",
    "celery-rabbitmq": "Celery on RabbitMQ",
    "arq": "arq on Redis",
    "fastapi": "FastAPI BackgroundTasks",
}


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
    # Scenario settings this configuration sets for itself (a Redis visibility timeout is a
    # transport option a team chooses, so some configurations fix it): name -> value text.
    overrides: tuple[tuple[str, str], ...] = ()

    def env(self) -> dict[str, str]:
        return dict(self.environment)

    def settings(self, base: Settings) -> Settings:
        """The run's settings with this configuration's own overrides applied."""
        return base.with_overrides(dict(self.overrides)) if self.overrides else base


def _config(backend: str, name: str, guarantee: Guarantee, summary: str,
            **env: str) -> Configuration:
    return Configuration(backend, name, guarantee,
                         tuple((f"CHAOS_{k.upper()}", v) for k, v in env.items()), summary)


def _overriding(configuration: Configuration, **settings: str) -> Configuration:
    """A configuration that also fixes some scenario settings (checked when a run starts)."""
    return replace(configuration, overrides=tuple(settings.items()))


_AMO, _ALO, _EO = Guarantee.AT_MOST_ONCE, Guarantee.AT_LEAST_ONCE, Guarantee.EFFECTIVELY_ONCE
_LATE = {"acks_late": "true", "reject_on_worker_lost": "true"}
_FASTAPI_TASKS = {"task_min_s": "2", "task_max_s": "4"}

# Claims follow each backend's documentation: Celery acks early = a task may be lost if the
# worker dies mid-task (at most once); task_acks_late (+ task_reject_on_worker_lost) = it is
# redelivered and may run again (at least once), on Redis and on RabbitMQ alike; arq's
# "pessimistic execution" = at least once (max_tries=1 turns retries off); BackgroundTasks run in
# the app's own process, fire and forget.
_CONFIGURATIONS = (
    _config("celery-redis", "acks-early-prefetch-1", _AMO,
            "Celery defaults (acks early), worker_prefetch_multiplier=1", prefetch_multiplier="1"),
    _config("celery-redis", "acks-early-prefetch-4", _AMO,
            "Celery defaults (acks early), worker_prefetch_multiplier=4", prefetch_multiplier="4"),
    _config("celery-redis", "acks-late-prefetch-1", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1",
            prefetch_multiplier="1", **_LATE),
    _config("celery-redis", "acks-late-prefetch-4", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=4",
            prefetch_multiplier="4", **_LATE),
    _config("celery-redis", "acks-late-prefetch-16", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=16",
            prefetch_multiplier="16", **_LATE),
    _config("celery-redis", "acks-late-no-reject", _ALO,
            "task_acks_late=True alone (task_reject_on_worker_lost=False), prefetch 1",
            prefetch_multiplier="1", acks_late="true", reject_on_worker_lost="false"),
    _config("celery-redis", "acks-late-threads", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True, --pool threads, prefetch 1",
            prefetch_multiplier="1", pool="threads", **_LATE),
    _config("celery-redis", "acks-early-concurrency-4", _AMO,
            "Celery defaults (acks early), prefork --concurrency 4, prefetch 1",
            prefetch_multiplier="1", concurrency="4"),
    _config("celery-redis", "acks-late-solo", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True, --pool solo (the task runs in "
            "the worker's main process), prefetch 1", prefetch_multiplier="1", pool="solo",
            concurrency="1", **_LATE),
    _overriding(_config("celery-redis", "acks-late-vt-120", _ALO,
                        "task_acks_late=True, task_reject_on_worker_lost=True, prefetch 1, Redis "
                        "visibility_timeout=120s (longer than the drain deadline)",
                        prefetch_multiplier="1", **_LATE),
                visibility_timeout_s="120"),
    _config("celery-redis", "acks-late-idempotent", _EO,
            "task_acks_late=True, task_reject_on_worker_lost=True, prefetch 1, idempotency key "
            "checked before the side effect", prefetch_multiplier="1", idempotent="true", **_LATE),
    _config("celery-redis", "acks-late-aof-everysec", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True, prefetch 1, Redis appendonly "
            "yes, appendfsync everysec", prefetch_multiplier="1", redis_appendonly="yes",
            redis_appendfsync="everysec", **_LATE),
    _config("celery-redis", "acks-late-aof-always", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True, prefetch 1, Redis appendonly "
            "yes, appendfsync always", prefetch_multiplier="1", redis_appendonly="yes",
            redis_appendfsync="always", **_LATE),
    _config("celery-rabbitmq", "rabbit-acks-early", _AMO,
            "Celery defaults (acks early) on RabbitMQ, durable classic queue, "
            "worker_prefetch_multiplier=1", prefetch_multiplier="1"),
    _config("celery-rabbitmq", "rabbit-acks-late", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True on RabbitMQ, durable classic "
            "queue, prefetch 1", prefetch_multiplier="1", **_LATE),
    _config("celery-rabbitmq", "rabbit-acks-late-prefetch-16", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True on RabbitMQ, durable classic "
            "queue, worker_prefetch_multiplier=16", prefetch_multiplier="16", **_LATE),
    _config("celery-rabbitmq", "rabbit-acks-late-quorum", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True on RabbitMQ, quorum queue "
            "(x-queue-type=quorum; global QoS off), prefetch 1", prefetch_multiplier="1",
            queue_type="quorum", **_LATE),
    _config("celery-rabbitmq", "rabbit-acks-late-confirms", _ALO,
            "task_acks_late=True, task_reject_on_worker_lost=True on RabbitMQ, durable classic "
            "queue, publisher confirms (confirm_publish=True), prefetch 1",
            prefetch_multiplier="1", confirm_publish="true", **_LATE),
    _config("celery-rabbitmq", "rabbit-acks-late-idempotent", _EO,
            "task_acks_late=True, task_reject_on_worker_lost=True on RabbitMQ, durable classic "
            "queue, prefetch 1, idempotency key checked before the side effect",
            prefetch_multiplier="1", idempotent="true", **_LATE),
    _config("arq", "arq-defaults", _ALO,
            "arq defaults: max_tries=5; job_timeout=10s, max_jobs=2 (scenario sizes)"),
    _config("arq", "arq-max-tries-1", _AMO, "arq with max_tries=1 (no retry)",
            arq_max_tries="1"),
    _config("arq", "arq-job-timeout-30", _ALO,
            "arq defaults with job_timeout=30s (a dead worker's job waits 40 s for its lease)",
            arq_job_timeout="30"),
    _config("arq", "arq-max-jobs-8", _ALO,
            "arq defaults with max_jobs=8 (eight jobs at once in one worker's event loop)",
            arq_max_jobs="8"),
    _config("arq", "arq-idempotent", _EO,
            "arq defaults with an idempotency key checked before the side effect",
            idempotent="true"),
    # Every FastAPI configuration runs 2-4 s tasks: with the default 0.6-1.4 s every task in
    # flight at SIGTERM ends within a second, and a 1 s graceful timeout never bites. The task
    # style matters to that timeout: uvicorn cancels asyncio tasks, which stops an ``async def``
    # task at its next await but cannot stop a sync task's threadpool thread.
    *(_overriding(c, **_FASTAPI_TASKS) for c in (
        _config("fastapi", "fastapi-graceful-10", _AMO,
                "BackgroundTasks (sync task, run in the threadpool), uvicorn "
                "--timeout-graceful-shutdown 10, tasks 2-4 s", graceful_shutdown_s="10"),
        _config("fastapi", "fastapi-graceful-1", _AMO,
                "BackgroundTasks (sync task, run in the threadpool), uvicorn "
                "--timeout-graceful-shutdown 1 (shorter than the tasks in flight), tasks 2-4 s",
                graceful_shutdown_s="1"),
        _config("fastapi", "fastapi-async-graceful-10", _AMO,
                "BackgroundTasks (async def task, on the event loop), uvicorn "
                "--timeout-graceful-shutdown 10, tasks 2-4 s", graceful_shutdown_s="10",
                task_style="async"),
        _config("fastapi", "fastapi-async-graceful-1", _AMO,
                "BackgroundTasks (async def task, on the event loop), uvicorn "
                "--timeout-graceful-shutdown 1 (shorter than the tasks in flight), tasks 2-4 s",
                graceful_shutdown_s="1", task_style="async"),
    )),
)
CONFIGURATIONS: dict[str, Configuration] = {c.name: c for c in _CONFIGURATIONS}

# The default matrix: which configurations meet which fault (every configuration also gets a
# no-fault control). Chosen so each fault meets the settings that change its outcome, inside CI's
# time budget; any other pair can be asked for with CONFIGS= and FAULTS=.
DEFAULT_PAIRS: dict[str, tuple[str, ...]] = {
    "sigkill-worker": ("acks-early-prefetch-1", "acks-early-prefetch-4",
                       "acks-early-concurrency-4", "acks-late-prefetch-1",
                       "acks-late-prefetch-4", "acks-late-prefetch-16", "acks-late-threads",
                       "acks-late-solo", "acks-late-vt-120", "acks-late-idempotent",
                       "rabbit-acks-early", "rabbit-acks-late", "rabbit-acks-late-prefetch-16",
                       "rabbit-acks-late-quorum", "rabbit-acks-late-idempotent", "arq-defaults",
                       "arq-max-tries-1",
                       "arq-job-timeout-30", "arq-max-jobs-8", "arq-idempotent",
                       "fastapi-graceful-10"),
    "sigkill-pool-child": ("acks-early-prefetch-1", "acks-late-prefetch-1", "acks-late-no-reject",
                           "acks-late-idempotent", "rabbit-acks-early", "rabbit-acks-late",
                           "rabbit-acks-late-quorum"),
    "sigterm-worker": ("acks-early-prefetch-4", "acks-late-prefetch-4", "acks-late-solo",
                       "rabbit-acks-early",
                       "rabbit-acks-late", "arq-defaults", "fastapi-graceful-10",
                       "fastapi-graceful-1", "fastapi-async-graceful-10",
                       "fastapi-async-graceful-1"),
    "sigstop-worker": ("acks-early-prefetch-4", "acks-late-prefetch-1", "rabbit-acks-late",
                       "arq-defaults", "arq-max-tries-1"),
    "broker-sigkill": ("acks-late-prefetch-1", "acks-late-aof-everysec", "acks-late-aof-always",
                       "rabbit-acks-late", "rabbit-acks-late-quorum", "rabbit-acks-late-confirms",
                       "arq-defaults"),
    "broker-restart": ("acks-late-prefetch-1", "acks-late-aof-everysec", "rabbit-acks-late",
                       "arq-defaults"),
    "cut-worker-broker": ("acks-early-prefetch-4", "acks-late-prefetch-1", "acks-late-prefetch-4",
                          "rabbit-acks-early", "rabbit-acks-late", "rabbit-acks-late-prefetch-16",
                          "rabbit-acks-late-idempotent", "arq-defaults"),
    "blackhole-worker-broker": ("acks-early-prefetch-4", "acks-late-prefetch-4",
                                "rabbit-acks-late", "arq-defaults"),
    "latency-worker-broker": ("acks-late-prefetch-4", "rabbit-acks-late", "arq-defaults"),
    "cut-producer-broker": ("acks-late-prefetch-1", "rabbit-acks-late",
                            "rabbit-acks-late-confirms", "arq-defaults"),
    "crash-after-effect": ("acks-early-prefetch-1", "acks-late-prefetch-1", "acks-late-solo",
                           "acks-late-idempotent", "rabbit-acks-early", "rabbit-acks-late",
                           "rabbit-acks-late-quorum", "rabbit-acks-late-idempotent",
                           "arq-defaults", "arq-idempotent",
                           "fastapi-graceful-10"),
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
    stop_window_s: float = 25.0  # SIGSTOP lasts longer than the visibility timeout / arq lease
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
        for name in ("fault_window_s", "stop_window_s", "late_after_s", "drain_s", "quiet_s",
                     "ready_s"):
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


def fault_names() -> tuple[str, ...]:
    from harness.faults import FAULTS  # the catalogue lives with the faults themselves

    return tuple(FAULTS)


def fault(name: str) -> str:
    if name not in fault_names():
        raise MatrixError(f"unknown fault {name!r}; valid: {', '.join(fault_names())}")
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


def cases(
    backends: list[str], configs: list[str] | None, faults: list[str] | None
) -> list[tuple[str, str]]:
    """The (configuration, fault) pairs to run, in run order, self-proof included.

    With neither ``configs`` nor ``faults`` named: the default matrix. With one of them: the
    default matrix narrowed to it. With both: every named pair that applies (a pair that cannot
    apply is an error). Runs are grouped by backend, then configuration, so containers are
    reused as long as their settings hold.
    """
    from harness.faults import FAULTS

    if configs and faults:
        wanted = []
        for c in configs:
            for f in faults:
                if not FAULTS[f].applies(CONFIGURATIONS[c].backend, CONFIGURATIONS[c]):
                    raise MatrixError(f"fault {f} does not apply to configuration {c} "
                                      f"(backend {CONFIGURATIONS[c].backend})")
                wanted.append((c, f))
    else:
        wanted = [(c, f) for f, names in DEFAULT_PAIRS.items() for c in names]
        wanted = [(c, f) for c, f in wanted
                  if (not configs or c in configs) and (not faults or f in faults)]
        if configs and not faults:
            wanted += [(c, "none") for c in configs]
        if faults and "none" in faults and not configs:
            wanted += [(c, "none") for c in CONFIGURATIONS]
    wanted = [(c, f) for c, f in wanted if CONFIGURATIONS[c].backend in backends]
    if not configs and not faults:
        wanted += [(c.name, "none") for c in CONFIGURATIONS.values() if c.backend in backends]
    if not wanted:
        raise MatrixError("the selection names no scenario (backend, configuration and fault "
                          "filters leave nothing)")
    chosen = with_self_proof(wanted)
    fault_order = list(FAULTS)
    config_order = list(CONFIGURATIONS)
    return sorted(chosen, key=lambda cf: (BACKENDS.index(CONFIGURATIONS[cf[0]].backend),
                                          config_order.index(cf[0]), fault_order.index(cf[1])))
