"""What Dramatiq does under faults, whatever its broker: knobs, claims and explanations shared by
Dramatiq on Redis and Dramatiq on RabbitMQ (one image, one settings class; an ``amqp://`` URL
builds the RabbitmqBroker instead of the RedisBroker).

Read in dramatiq 2.2.1's source (the version the image pins, ``backends/dramatiq/
requirements.txt``):

* A worker acknowledges a message only after its actor has run: ``WorkerThread.process_message``
  runs it and then hands it to ``ConsumerThread.post_process_message``, which acks it (or, once
  it has failed for good, nacks it into the dead-letter queue ``<queue>.XQ``) and retries the
  ack for as long as the broker connection is down (dramatiq/worker.py). A message whose worker
  dies mid-run stays unacknowledged, and the broker gives it to another worker: at least once.
  Dramatiq's documentation claims exactly that (docs/source/best_practices.rst, "Retriable
  Actors": messages are delivered to their actors at least once, so running an actor several
  times for one message must be safe, i.e. idempotent).
* Exceptions are retried by the ``Retries`` middleware (``max_retries`` 20, exponential backoff
  through the delay queue ``<queue>.DQ``); a crash is not an exception: it is the broker's
  redelivery that runs the message again. The probe never raises, so Retries plays no part.
* ``Worker.stop`` (SIGTERM) lets running messages finish, then requeues the ones it had
  prefetched into its in-memory work queue (``Worker.stop``: "Requeueing in-memory messages").
* The ``dramatiq`` command's main process does not restart a worker process that died: it stops
  the others and exits ("Worker with PID %r exited unexpectedly ... Shutting down", cli.py
  ``main``); the agent runs the Worker in the container's own process, so both end the same way
  and the container's restart brings a new worker.

So every configuration claims at least once, and effectively once with an idempotency key
checked before the side effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from harness.backend import Backend, Knobs
from harness.checker import Guarantee

if TYPE_CHECKING:
    from harness.result import ScenarioResult

WORKER_DEATH = "worker-death"
LINK = "link"
STALL = "stall"
BROKER_KIND = "broker"


@dataclass(frozen=True)
class DramatiqKnobs(Knobs):
    """Dramatiq's settings as the built-in settings class reads them (``CHAOS_DRAMATIQ_*``):
    ``dramatiq_threads`` is the Worker's ``worker_threads`` (the command's default is 8; two,
    as the other backends' pools); ``idempotent`` guards the side effect with a key."""

    dramatiq_threads: int = 2
    idempotent: bool = False

    def __post_init__(self) -> None:
        if self.dramatiq_threads < 1:
            raise ValueError(f"dramatiq_threads={self.dramatiq_threads}; valid: 1 or more")


class Dramatiq(Backend):
    """The parts of Dramatiq's behaviour that do not depend on the broker."""

    kind = "dramatiq"
    image = "dramatiq"
    libraries: ClassVar[tuple[str, ...]] = ("dramatiq",)

    def guarantee(self, knobs: Any) -> Guarantee:
        """Acks after processing: at least once; an idempotency key: effectively once."""
        return Guarantee.EFFECTIVELY_ONCE if knobs.idempotent else Guarantee.AT_LEAST_ONCE

    def describe(self, knobs: Any) -> str:
        parts = [f"Dramatiq Worker, worker_threads={knobs.dramatiq_threads}, acks after "
                 "processing (its only mode)", *self.broker_parts(knobs)]
        if knobs.idempotent:
            parts.append("idempotency key checked before the side effect")
        return ", ".join(parts)

    def broker_parts(self, knobs: Any) -> list[str]:
        return []

    def read_knobs(self, effective: Mapping[str, Any], idempotent: bool) -> dict[str, Any]:
        return {"dramatiq_threads": int(effective["threads"]), "idempotent": idempotent}

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        if r.fault == "crash-after-effect":
            return ("the worker died after the side effect but before Dramatiq acknowledged the "
                    "message (it acks only after the actor returns), so the broker gave it to "
                    "another worker, which ran it again")
        return None

    def retried(self) -> str:
        return "redelivered it"
