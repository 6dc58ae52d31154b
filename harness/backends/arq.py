"""arq on Redis: its forensics, what it does under faults, and the built-in configurations.

arq's "pessimistic execution" (its docs): a job stays in the ``arq:queue`` sorted set until it
finishes, and a worker that dies leaves an ``arq:in-progress:<id>`` key whose expiry (job_timeout
plus a margin) lets another worker retry it: at least once, unless max_tries=1 turns retries off.

The margin, read in arq/worker.py (``Worker.__init__``): ``in_progress_timeout_s = max(f.timeout_s
or job_timeout for every function) + 10``, and ``start_jobs`` claims a job with
``psetex(in-progress key, in_progress_timeout_s * 1000)``. So the in-progress key of a job whose
worker died expires job_timeout + 10 s after the job started, and only then can another worker
claim it. Scenarios run job_timeout 10 s (key 20 s) where arq's default is 300 s (key 310 s):
``clocks`` states both, ``recovery_clock`` says when the key's expiry is what a recovery waited
for. A warm shutdown waits for none of it: arq cancels the job, deletes its key and leaves it
queued ("cancelled, will be run again").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from harness.backend import Backend, Capability, Clock, Configuration, Knobs, stall_clock
from harness.backends.redisbroker import RedisForensics, lost_to_broker_kill
from harness.checker import Guarantee

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "arq"
# arq's own defaults and the in-progress key's margin (arq/worker.py, Worker): production's values.
ARQ_JOB_TIMEOUT_S = 300
IN_PROGRESS_MARGIN_S = 10
JOB_TIMEOUT_SOURCE = "arq/worker.py Worker(job_timeout=300)"
IN_PROGRESS_SOURCE = ("arq/worker.py Worker.__init__: in_progress_timeout_s = job_timeout + 10, "
                      "set by psetex when a worker claims the job")
# Faults after which a job waited for its in-progress key to expire: its worker died (SIGKILL;
# a crash, which in arq is the worker's own process), stalled, or lost its link with the key set.
KEY_EXPIRY_KINDS = ("worker-death", "stall", "link")


@dataclass(frozen=True)
class ArqKnobs(Knobs):
    """WorkerSettings fields as the sample worker reads them; job_timeout and max_jobs are
    scenario sizes (arq's own defaults: ``ARQ_JOB_TIMEOUT_S`` and 10), max_tries is arq's."""

    arq_max_tries: int = 5
    arq_job_timeout: int = 10
    arq_max_jobs: int = 2
    idempotent: bool = False


class ArqForensics(RedisForensics):
    """arq: a job stays in the ``arq:queue`` sorted set until it finishes; while one runs, an
    ``arq:in-progress:<id>`` key (with a TTL) keeps other workers off it, and its expiry is what
    lets another worker retry a job whose worker died."""

    QUEUE = "arq:queue"
    IN_PROGRESS = "arq:in-progress:"

    def empty(self) -> bool:
        return cast(int, self.client.zcard(self.queue)) == 0

    def holdings(self, settings: Any) -> dict[str, str]:
        held: dict[str, str] = {}
        for raw in cast(list[bytes], self.client.zrange(self.queue, 0, -1)):
            task = raw.decode()
            ttl = cast(int, self.client.pttl(self.IN_PROGRESS + task))
            if ttl >= 0:
                held[task] = (f"in progress (key {self.IN_PROGRESS}<id>, expires in "
                              f"{ttl / 1000:.0f}s: job_timeout plus arq's margin)")
            elif ttl == -1:
                held[task] = f"in progress (key {self.IN_PROGRESS}<id> without expiry)"
            else:
                held[task] = f"queued in sorted set {self.queue!r}"
        return held



class Arq(Backend):
    name = NAME
    title = "arq on Redis"
    kind = "arq"
    broker = "redis"
    image = "arq"
    knobs_class = ArqKnobs
    libraries = ("arq", "redis")
    # now arq-max-tries-5: its other knobs are scenario sizes
    former_names: ClassVar[tuple[str, ...]] = ("arq-defaults",)
    capabilities = frozenset({Capability.BROKERED, Capability.REDELIVERS, Capability.LEASE})

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return ArqForensics(port, queue)

    def guarantee(self, knobs: Any) -> Guarantee:
        if knobs.arq_max_tries == 1:
            return Guarantee.AT_MOST_ONCE
        return Guarantee.EFFECTIVELY_ONCE if knobs.idempotent else Guarantee.AT_LEAST_ONCE

    def read_knobs(self, effective: Mapping[str, Any], idempotent: bool) -> dict[str, Any]:
        return {"arq_max_tries": int(effective["max_tries"]),
                "arq_job_timeout": int(effective["job_timeout"]),
                "arq_max_jobs": int(effective["max_jobs"]), "idempotent": idempotent}

    def describe(self, knobs: Any) -> str:
        text = (f"arq max_tries={knobs.arq_max_tries}, job_timeout={knobs.arq_job_timeout}s, "
                f"max_jobs={knobs.arq_max_jobs}")
        return text + (", idempotency key checked before the side effect"
                       if knobs.idempotent else "")

    def clocks(self, settings: Mapping[str, Any]) -> tuple[Clock, ...]:
        """job_timeout and the in-progress key's lifetime as the built-in configurations run
        them (``ArqKnobs``' default; a configuration that changes it says so in its summary),
        and the SIGSTOP window that outlasts the key."""
        timeout = float(ArqKnobs().arq_job_timeout)
        key = _in_progress(timeout)
        stall = stall_clock(settings, key)
        return (Clock("job_timeout", timeout, ARQ_JOB_TIMEOUT_S, JOB_TIMEOUT_SOURCE), key,
                *((stall,) if stall else ()))

    def recovery_clock(self, r: ScenarioResult) -> Clock | None:
        """The in-progress key's expiry, for the job_timeout the workers ran, when the fault
        left a job claimed by a worker that could not finish it; not after a warm shutdown
        (arq deletes the key and requeues at once) nor a broker fault (the key went with
        Redis). A team's own app runs its own job_timeout, its production one: nothing was
        compressed."""
        if not self.built_in(r.configuration):
            return None
        if r.fault_kind not in KEY_EXPIRY_KINDS or r.fault == "sigterm-worker":
            return None
        timeout = r.knobs.get("arq_job_timeout", ArqKnobs().arq_job_timeout)
        return _in_progress(float(timeout))

    def note(self, settings: Any) -> str:
        return ("A dead worker's job is retried once its in-progress key expires (job_timeout "
                f"plus {IN_PROGRESS_MARGIN_S}s).")

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        said = lost_to_broker_kill(r, n)
        if said:
            return said
        if r.knobs.get("arq_max_tries") == 1:
            return (f"{n} lost: arq would not run the job again after its first try died "
                    "(max_tries=1). The default max_tries=5 retries it once the in-progress key "
                    "expires.")
        return None

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        return ("arq ran the job again once its in-progress key expired, though the first run "
                "had already done its side effect")

    def retried(self) -> str:
        return "retried it"


def _in_progress(job_timeout_s: float) -> Clock:
    return Clock("in-progress key expiry", job_timeout_s + IN_PROGRESS_MARGIN_S,
                 ARQ_JOB_TIMEOUT_S + IN_PROGRESS_MARGIN_S, IN_PROGRESS_SOURCE)


def _c(name: str, knobs: ArqKnobs, meets: tuple[str, ...]) -> Configuration:
    return Configuration(NAME, name, knobs, meets)


Arq.configurations = (
    # max_tries=5 is arq's default; job_timeout and max_jobs are scenario sizes (ArqKnobs).
    _c("arq-max-tries-5", ArqKnobs(),
       ("sigkill-worker", "sigterm-worker", "sigstop-worker", "broker-sigkill", "broker-restart",
        "cut-worker-broker", "blackhole-worker-broker", "latency-worker-broker",
        "cut-producer-broker", "crash-after-effect")),
    _c("arq-max-tries-1", ArqKnobs(arq_max_tries=1), ("sigkill-worker", "sigstop-worker")),
    _c("arq-job-timeout-30", ArqKnobs(arq_job_timeout=30), ("sigkill-worker",)),
    _c("arq-max-jobs-8", ArqKnobs(arq_max_jobs=8), ("sigkill-worker",)),
    _c("arq-idempotent", ArqKnobs(idempotent=True), ("sigkill-worker", "crash-after-effect")),
)
BACKEND = Arq()
