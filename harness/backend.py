"""What the harness knows of a backend, in one object, and the configurations it runs.

A ``Backend`` holds everything about one kind of target: its title, the image that runs it, its
compose profile, its capabilities (what faults can do to it), its broker forensics, the note the
report prints under its tables, the explanations of what its mechanisms did, and its built-in
configurations. Each backend lives in a module of its own under ``harness/backends/`` and is
registered once in ``harness/backends/__init__.py``; nothing else lists backends by name.

A ``Configuration`` is a target kept as data: a backend plus typed knobs (``acks_late``,
``prefetch_multiplier``, ``max_tries`` ...). Its claimed guarantee and its summary are derived
from the knobs by the backend, so the self-proof and the explanations key on fields, never on
the configuration's name.

A ``Clock`` is a timescale a scenario compresses so that a run fits in minutes (a Redis
visibility timeout of 15 s where kombu's default is an hour): each backend says which of its
clocks a scenario ran compressed and which one governed a recovery, so every number that depends
on one can also be read in production terms (``harness/production.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from harness.checker import Guarantee

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult
    from harness.target import Target


@dataclass(frozen=True)
class Clock:
    """A compressed timescale: what it is, the value the scenario ran, the value production
    runs (the library's default), and where that default is stated, so a reader can check it."""

    name: str  # e.g. "visibility timeout"
    scenario_s: float
    production_s: float
    source: str  # e.g. "kombu/transport/redis.py Channel.visibility_timeout = 3600"


def stall_clock(settings: Mapping[str, Any], outlasts: Clock) -> Clock | None:
    """The SIGSTOP window as a compressed clock, when it outlasts ``outlasts`` (the timeout after
    which a stalled worker's tasks run elsewhere): that is why it is as long as it is, so in
    production a stall does the same only when it outlasts the production timeout by as much.
    None when it does not outlast it (a configuration with a longer timeout of its own)."""
    window = float(settings["stop_window_s"])
    if window <= outlasts.scenario_s:
        return None
    return Clock("SIGSTOP window", window, window - outlasts.scenario_s + outlasts.production_s,
                 f"the scenario's stop_window_s, chosen to outlast the {outlasts.name}; a "
                 f"production stall does the same once it outlasts {outlasts.production_s:g} s")


class Capability(StrEnum):
    """What a backend (under a configuration) has that a fault can act on."""

    BROKERED = "brokered"  # a broker process, reached by every client through Toxiproxy
    POOL_CHILDREN = "pool-children"  # tasks run in child processes of the worker (prefork)
    REDELIVERS = "redelivers"  # an unfinished delivery can come back (acks late, a lease)
    VISIBILITY_TIMEOUT = "visibility-timeout"  # unacked messages return after a timeout
    LEASE = "lease"  # a claimed job returns once its lease key expires (arq)
    IN_PROCESS = "in-process"  # the app runs its own tasks: no broker at all
    CLUSTERED = "clustered"  # the broker is several nodes, one leading the task queue


# The faults a CLUSTERED backend's configurations meet (harness/clusterfaults.py defines them;
# the backends cannot import that module, which builds on the world and so on the registry).
CLUSTER_FAULTS = ("leader-sigkill", "leader-partition", "leader-sigstop", "rolling-restart")


@dataclass(frozen=True)
class Knobs:
    """A backend's settings as typed fields; a subclass per backend.

    ``env`` renders them as the ``CHAOS_*`` variables the compose file hands the containers, so
    every field must have a variable there (a unit test checks it).
    """

    def env(self) -> dict[str, str]:
        return {f"CHAOS_{name.upper()}": _text(value) for name, value in asdict(self).items()}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the defaults (what makes this configuration itself)."""
        default = type(self)()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Configuration:
    """One way to configure a backend: a built-in target.

    ``meets`` names the faults it meets in the default matrix (it always gets a no-fault control
    too); ``overrides`` are scenario settings it fixes for itself (a Redis visibility timeout is
    a transport option a team chooses); ``note`` adds words the fields cannot say.
    """

    backend: str
    name: str
    knobs: Knobs
    meets: tuple[str, ...] = ()
    overrides: tuple[tuple[str, str], ...] = ()
    note: str = ""
    # A team's app (queue-chaos.toml) instead of a built-in one: its image, app, queue, worker
    # arguments and task replace the built-in's; its knobs are what its workers report.
    target: Target | None = None

    @property
    def owner(self) -> Backend:
        from harness.backends import backend  # the registry imports this module

        return backend(self.backend)

    @property
    def guarantee(self) -> Guarantee:
        return self.owner.guarantee(self.knobs)

    @property
    def summary(self) -> str:
        return self.describe(self.knobs)

    def describe(self, knobs: Knobs) -> str:
        """The summary for these knobs (what the workers run): a team's app says whose it is
        and which task was measured."""
        text = self.owner.describe(knobs)
        if self.target is not None:
            task = f"their task {self.target.task.name}" if self.target.task else "the probe task"
            text = (f"{self.target.app} from {self.target.path.name}, measuring {task} on queue "
                    f"{self.target.queue}; running {text}")
        settings = ", ".join(f"{k.removesuffix('_s')}={v}s" if k.endswith("_s") else f"{k}={v}"
                             for k, v in self.overrides)
        extra = "; ".join(x for x in (settings and f"scenario {settings}", self.note) if x)
        return f"{text} ({extra})" if extra else text

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.owner.capabilities_of(self.knobs)

    def env(self) -> dict[str, str]:
        return self.knobs.env()

    def variables(self, settings: Any, images: Mapping[str, str]) -> dict[str, str]:
        """Everything a scenario of this configuration hands the compose file: the knobs, the
        backend's scenario settings and, for a team's target, its app and image."""
        variables = {**self.env(), **self.owner.scenario_env(settings)}
        if self.target is not None:
            variables |= self.target.compose_variables()
            variables[self.owner.image_variable] = images[self.target.image_variable]
        return variables

    def running(self, effective: Mapping[str, Any], idempotent: bool) -> Knobs:
        """The knobs the workers actually run with: these, with every field the backend can
        read from the running app's ``effective`` settings replaced by what it read."""
        read = self.owner.read_knobs(effective, idempotent) if effective else {}
        return replace(self.knobs, **read)

    def mismatch(self, running: Knobs) -> str | None:
        """For a built-in configuration: the fields whose running value differs from the
        declared one (the configuration did not take effect: the run measured something else).
        A team's target declares nothing: what its workers run is what is measured."""
        if self.target is not None:
            return None
        wrong = [f"{name} declared {getattr(self.knobs, name)!r}, running "
                 f"{getattr(running, name)!r}" for name in running.as_dict()
                 if getattr(running, name) != getattr(self.knobs, name)]
        return "; ".join(wrong) or None

    def settings(self, base: Any) -> Any:
        """The run's settings with this configuration's own overrides applied."""
        return base.with_overrides(dict(self.overrides)) if self.overrides else base


class Backend:
    """The base every backend module subclasses (one instance each, in the registry)."""

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[str]  # the library a target file names (celery, arq, fastapi)
    broker: ClassVar[str | None]  # the broker a target file names (redis, rabbitmq; None)
    image: ClassVar[str]  # backends/<image>/ builds it; several backends may share one
    capabilities: ClassVar[frozenset[Capability]]
    knobs_class: ClassVar[type[Knobs]]
    configurations: ClassVar[tuple[Configuration, ...]] = ()
    # Names its built-in configurations had before a rename: reports of past runs carry them.
    former_names: ClassVar[tuple[str, ...]] = ()
    # The distributions (as the workers report them) whose versions decide what it measures:
    # the report's "Measured with" line names these; the JSON keeps every one reported.
    libraries: ClassVar[tuple[str, ...]] = ()
    # The matrix profile it belongs to: "default" (``make durability``), or "clusters" for a
    # clustered broker, whose scenarios are too heavy for the default matrix's time target
    # (``make durability PROFILE=clusters``, its own report).
    matrix_profile: ClassVar[str] = "default"

    @property
    def image_variable(self) -> str:
        """The compose variable naming the image its producer and workers run."""
        return f"CHAOS_{self.image.upper()}_IMAGE"

    def target_knobs(self, worker_args: list[str]) -> Knobs:
        """The knobs a team's target plans with, before its workers say what they run (what
        the worker arguments tell, e.g. Celery's pool); the claim comes from what they run."""
        return self.knobs_class()

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        """The broker's forensics on its first published port (the app's, without a broker),
        reading ``queue`` (None: the built-in apps' queue)."""
        raise NotImplementedError

    @property
    def profile(self) -> str:
        """The compose profile holding its services."""
        return self.name

    def guarantee(self, knobs: Any) -> Guarantee:
        """The delivery guarantee these settings claim, by the backend's own documentation."""
        raise NotImplementedError

    def describe(self, knobs: Any) -> str:
        """A summary of the settings, generated from the fields, in the library's own names."""
        raise NotImplementedError

    def capabilities_of(self, knobs: Any) -> frozenset[Capability]:
        return self.capabilities

    def scenario_env(self, settings: Any) -> dict[str, str]:
        """Variables a scenario's settings give its containers (beyond the knobs)."""
        return {}

    def note(self, settings: Mapping[str, Any]) -> str:
        """The sentence under the backend's tables: the timescales and mechanisms at play."""
        return ""

    def built_in(self, configuration: str) -> bool:
        """Whether ``configuration`` names one of its built-in configurations (now or before a
        rename), not a team's app: only a built-in one runs the scenario's compressed clocks;
        a team's app runs its own settings, which are its production ones."""
        return (configuration in {c.name for c in self.configurations}
                or configuration in self.former_names)

    def clocks(self, settings: Mapping[str, Any]) -> tuple[Clock, ...]:
        """The clocks a scenario with these settings (``ScenarioResult.settings``) runs
        compressed; none for a backend whose timing is the library's own."""
        return ()

    def recovery_clock(self, r: ScenarioResult) -> Clock | None:
        """The compressed clock that governed ``r``'s recovery (the wait before a task lost in
        flight came back), by the mechanism its fault met; None when none did (the broker
        requeued at once, or nothing can bring a task back)."""
        return None

    def read_knobs(self, effective: Mapping[str, Any], idempotent: bool) -> dict[str, Any]:
        """Knob fields read from a worker's ``effective`` settings (its ``worker_ready``
        record): what the running app really uses, whatever its configuration asked for."""
        return {}

    def promise(self, results: list[ScenarioResult]) -> list[str]:
        """Paragraphs saying what the broker's documentation promises and whether ``results``
        (this backend's) held it: the cluster report's last word per broker. None by default:
        the single-broker backends' claims are the configurations' own (the summary)."""
        return []

    def must_lose(self, knobs: Any, fault_kind: str, fault: str) -> bool:
        """Whether this backend's mechanism makes loss certain under the fault (self-proof)."""
        return False

    # -- explanations: backend-specific lines; None falls back to the generic ones --------------

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        return None

    def lost_unstarted(self, r: ScenarioResult, count: str) -> str | None:
        """Lost tasks that never started anywhere, where the backend can say why; ``count`` is
        how many in words ("3", or "3 more" after a line on those that did start)."""
        return None

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        return None

    def fresh_redeliveries(self, r: ScenarioResult, n: int) -> str | None:
        """Tasks redelivered before their first start."""
        return None

    def retried(self) -> str:
        """How the backend runs a task again, in a few words."""
        return "delivered it again"


def lost_by_fault(results: list[ScenarioResult]) -> str:
    """``leader-sigkill 3, leader-sigstop 0``, faults in the order met, trials summed: the lost
    counts a promise paragraph cites (controls left out)."""
    totals: dict[str, int] = {}
    for r in results:
        if r.fault_kind != "none":
            totals[r.fault] = totals.get(r.fault, 0) + int(r.counts.get("lost", 0))
    return ", ".join(f"{fault} {n}" for fault, n in totals.items()) or "no fault run"

