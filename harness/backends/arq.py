"""arq on Redis: its forensics, what it does under faults, and the built-in configurations.

arq's "pessimistic execution" (its docs): a job stays in the ``arq:queue`` sorted set until it
finishes, and a worker that dies leaves an ``arq:in-progress:<id>`` key whose expiry (job_timeout
plus a margin) lets another worker retry it: at least once, unless max_tries=1 turns retries off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from harness.backend import Backend, Capability, Configuration, Knobs
from harness.backends.redisbroker import RedisForensics, lost_to_broker_kill
from harness.checker import Guarantee

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "arq"


@dataclass(frozen=True)
class ArqKnobs(Knobs):
    """WorkerSettings fields as the sample worker reads them; job_timeout and max_jobs are
    scenario sizes (arq's own defaults are 300 s and 10)."""

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
    capabilities = frozenset({Capability.BROKERED, Capability.REDELIVERS, Capability.LEASE})

    def forensics(self, port: int, queue: str | None = None) -> Broker:
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

    def note(self, settings: Any) -> str:
        return ("A dead worker's job is retried once its in-progress key expires (job_timeout "
                "plus 10s).")

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


def _c(name: str, knobs: ArqKnobs, meets: tuple[str, ...]) -> Configuration:
    return Configuration(NAME, name, knobs, meets)


Arq.configurations = (
    _c("arq-defaults", ArqKnobs(),
       ("sigkill-worker", "sigterm-worker", "sigstop-worker", "broker-sigkill", "broker-restart",
        "cut-worker-broker", "blackhole-worker-broker", "latency-worker-broker",
        "cut-producer-broker", "crash-after-effect")),
    _c("arq-max-tries-1", ArqKnobs(arq_max_tries=1), ("sigkill-worker", "sigstop-worker")),
    _c("arq-job-timeout-30", ArqKnobs(arq_job_timeout=30), ("sigkill-worker",)),
    _c("arq-max-jobs-8", ArqKnobs(arq_max_jobs=8), ("sigkill-worker",)),
    _c("arq-idempotent", ArqKnobs(idempotent=True), ("sigkill-worker", "crash-after-effect")),
)
BACKEND = Arq()
