"""The matrix: which (configuration, fault) cases a run holds, and the scenario settings.

The backends and their configurations live in the registry (harness/backends/); each
configuration names the faults it meets in the default matrix.

Everything a user can name on the command line is checked here, before anything starts: an
unknown name or an impossible value gives one error naming what is wrong and what is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from harness.backend import Configuration
from harness.backends import REGISTRY, configurations

BACKENDS = tuple(REGISTRY)
# Matrix profiles: the backends a run holds when it names none. "default" is the matrix of
# ``make durability``; "clusters" the clustered brokers (``make durability PROFILE=clusters``).
PROFILES: dict[str, tuple[str, ...]] = {
    p: tuple(b.name for b in REGISTRY.values() if b.matrix_profile == p)
    for p in dict.fromkeys(b.matrix_profile for b in REGISTRY.values())
}


class MatrixError(ValueError):
    """A backend, configuration, fault or setting that does not exist or cannot be."""


# Every built-in configuration, from the backends' own modules (harness/backends/).
CONFIGURATIONS: dict[str, Configuration] = configurations()


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
    # A cluster node partitioned or paused this long: past every failure detector of the
    # cluster profile (RabbitMQ net_ticktime 10 s declares a node down after 10-15 s; Sentinel's
    # down-after-milliseconds 2 s and its failover within ~4 s).
    partition_window_s: float = 20.0
    visibility_timeout_s: int = 15  # Redis transport: unacked messages come back after this
    restore_interval_s: int = 2  # kombu's sweep for such messages
    late_after_s: float = 5.0  # completed later than heal + this is late
    drain_s: float = 60.0  # after healing, wait at most this long for every task
    quiet_s: float = 2.0  # the drain ends once nothing ran and the broker held nothing this long
    ready_s: float = 60.0  # bound for any service to become ready
    # The cost phase of every control (harness/cost.py), on its containers after its check: a
    # backlog of this many zero-length tasks drained (throughput; 0: not measured) ...
    cost_tasks: int = 400
    # ... and this many submitted at this rate to running workers (latency; 0: not measured).
    # Both 0: no cost phase at all.
    cost_latency_tasks: int = 100
    cost_latency_rate: float = 50.0  # tasks per second: below every configuration's capacity

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
        for name in ("fault_window_s", "stop_window_s", "partition_window_s",
                     "late_after_s", "drain_s", "quiet_s", "ready_s"):
            if not 0 <= getattr(self, name) <= 3600:
                problems.append(f"{name}={getattr(self, name)} (valid: 0..3600)")
        for name in ("cost_tasks", "cost_latency_tasks"):
            if not 0 <= getattr(self, name) <= 10_000:
                problems.append(f"{name}={getattr(self, name)} (valid: 0..10000, 0: not measured)")
        if not 0 < self.cost_latency_rate <= 1000:
            problems.append(f"cost_latency_rate={self.cost_latency_rate} (valid: >0 and <=1000)")
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


def profile(name: str) -> tuple[str, ...]:
    """The backends of a matrix profile."""
    if name not in PROFILES:
        raise MatrixError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}")
    return PROFILES[name]


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


def must_lose(configuration: str, fault: str) -> bool:
    """The configuration's backend makes loss certain under this fault (keyed on its knobs)."""
    from harness.faults import FAULTS

    config = CONFIGURATIONS[configuration]
    if config.target is not None:  # its settings are known once its workers report them
        return False
    return config.owner.must_lose(config.knobs, FAULTS[fault].kind, fault)


def with_self_proof(cases: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The selected (configuration, fault) cases plus what every run needs to prove itself:
    a no-fault control for each selected configuration, and one case known to lose work."""
    chosen = list(dict.fromkeys(cases))
    for configuration in dict.fromkeys(c for c, _ in cases):
        if (configuration, "none") not in chosen:
            chosen.insert(0, (configuration, "none"))
    if not any(must_lose(c, f) for c, f in chosen):
        chosen.append(PROOF_LOSS)
        if (PROOF_LOSS[0], "none") not in chosen:
            chosen.insert(0, (PROOF_LOSS[0], "none"))
    return chosen


def default_pairs() -> list[tuple[str, str]]:
    """The default matrix: each configuration with the faults it meets (its own ``meets``)."""
    return [(c.name, f) for c in CONFIGURATIONS.values() for f in c.meets]


def target_cases(name: str, faults: list[str] | None) -> list[tuple[str, str]]:
    """A team's target's cases: its control and the faults it meets (narrowed to ``faults``
    when named), then what proves the run measures (a configuration known to lose work)."""
    from harness.faults import FAULTS

    config = CONFIGURATIONS[name]
    if faults:
        unmet = [FAULTS[f].unmet(config) for f in faults if not FAULTS[f].applies(config)]
        if unmet:
            raise MatrixError("; ".join(unmet))
    chosen = [(name, f) for f in config.meets if not faults or f in faults]
    chosen = with_self_proof([(name, "none"), *chosen])
    fault_order = list(FAULTS)
    return sorted(chosen, key=lambda cf: (cf[0] != name, fault_order.index(cf[1])))


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
                if not FAULTS[f].applies(CONFIGURATIONS[c]):
                    raise MatrixError(FAULTS[f].unmet(CONFIGURATIONS[c]))
                wanted.append((c, f))
    else:
        wanted = default_pairs()
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
    return sorted(with_self_proof(wanted), key=lambda cf: order_key(*cf))


def scenario_id(configuration: Configuration, fault: str) -> str:
    """A scenario's name in results and reports, and the prefix of its task ids."""
    return f"{configuration.backend}.{configuration.name}.{fault}"


def order_key(configuration: str, fault: str) -> tuple[int, int, int]:
    """Where a case comes in a run: grouped by backend, then configuration, then fault, in the
    registry's order (a name the registry does not know, such as a team's target, goes last)."""
    from harness.faults import FAULTS

    config = CONFIGURATIONS.get(configuration)
    configs, faults = list(CONFIGURATIONS), list(FAULTS)
    return (BACKENDS.index(config.backend) if config else len(BACKENDS),
            configs.index(configuration) if config else len(configs),
            faults.index(fault) if fault in faults else len(faults))


def shard_cases(cases: list[tuple[str, str]], index: int, count: int, settings: Settings,
                durations: Mapping[str, float] | None = None) -> list[tuple[str, str]]:
    """Shard ``index`` of ``count`` of ``cases`` (harness/shard.py), with its own self-proof.

    A case weighs what it took before (``durations``, seconds by scenario id), else what it
    waits for: about 14 s of tasks and drain, plus its fault's window.
    """
    from harness.faults import FAULTS
    from harness.shard import split

    def weight(case: tuple[str, str]) -> float:
        config = CONFIGURATIONS[case[0]]
        known = (durations or {}).get(scenario_id(config, case[1]))
        return known if known else 14.0 + FAULTS[case[1]].window(config.settings(settings))

    return with_self_proof(split(cases, count, weight)[index - 1])
