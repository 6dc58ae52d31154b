"""Dramatiq on RabbitMQ: pika's BlockingConnection through dramatiq's RabbitmqBroker, its
forensics (the management HTTP API, as for Celery on RabbitMQ), and the built-in configurations
that measure it.

Read in dramatiq 2.2.1 (brokers/rabbitmq.py): the broker declares the task queue durable, with a
dead-letter route to ``<queue>.XQ`` (``_declare_queue``: ``durable=True``,
``x-dead-letter-routing-key``), publishes every message persistent (``delivery_mode=2``) and,
only with ``confirm_delivery=True``, on a channel in confirm mode (``channel.confirm_delivery()``,
and ``mandatory`` so an unroutable message raises). Its consumer sets ``basic_qos(prefetch_count
= prefetch)`` (twice the worker threads) and acks after processing; ``requeue`` is a no-op
because RabbitMQ requeues every unacknowledged delivery the moment its channel or connection
closes: there is no clock to wait for, and a worker cut off long enough for its connection to
close (pika's heartbeat, here 10 s) has its deliveries run elsewhere.

One clock is compressed: the AMQP heartbeat timeout, which the agent sets to 10 s on its
connections (``queue_chaos_agent.dramatiq.AMQP_HEARTBEAT_S``); pika's default accepts the
server's proposal (pika/connection.py ``DEFAULT_HEARTBEAT_TIMEOUT = None``; "If the client
specifies a value, it always takes precedence"), RabbitMQ's 60 s. It decides when RabbitMQ gives
up on a stopped worker's connection and requeues its deliveries; a cut or a blackhole ends with
Toxiproxy closing the connections, which requeues them at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.backend import Capability, Clock, Configuration
from harness.backends.celery_rabbitmq import CeleryRabbitForensics
from harness.backends.dramatiq import BROKER_KIND, STALL, Dramatiq, DramatiqKnobs
from queue_chaos_agent.dramatiq import AMQP_HEARTBEAT_S

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "dramatiq-rabbitmq"
RABBITMQ_HEARTBEAT_S = 60
HEARTBEAT = Clock("AMQP heartbeat timeout", AMQP_HEARTBEAT_S, RABBITMQ_HEARTBEAT_S,
                  "pika/connection.py DEFAULT_HEARTBEAT_TIMEOUT = None (the server's proposal); "
                  "RabbitMQ's heartbeat default is 60 s")


@dataclass(frozen=True)
class DramatiqRabbitKnobs(DramatiqKnobs):
    """Dramatiq's settings plus publisher confirms (``RabbitmqBroker(confirm_delivery=...)``),
    which the producer's broker uses."""

    dramatiq_confirm_delivery: bool = False


class DramatiqRabbitForensics(CeleryRabbitForensics):
    """The same queue reads as Celery's on RabbitMQ; a Dramatiq message carries its id in its
    JSON body (``Message.message_id``), not in a header."""

    @staticmethod
    def task_of(message: Mapping[str, Any]) -> str | None:
        payload = message.get("payload")
        if not isinstance(payload, str):
            return None
        try:
            found = json.loads(payload).get("message_id")
        except (ValueError, AttributeError):
            return None
        return str(found) if found else None


class DramatiqRabbit(Dramatiq):
    name = NAME
    title = "Dramatiq on RabbitMQ"
    broker = "rabbitmq"
    knobs_class = DramatiqRabbitKnobs
    libraries = (*Dramatiq.libraries, "pika")
    capabilities = frozenset({Capability.BROKERED, Capability.REDELIVERS})

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return DramatiqRabbitForensics(port, queue)

    def read_knobs(self, effective: Mapping[str, Any], idempotent: bool) -> dict[str, Any]:
        return {**super().read_knobs(effective, idempotent),
                "dramatiq_confirm_delivery": bool(effective.get("confirm_delivery"))}

    def broker_parts(self, knobs: Any) -> list[str]:
        parts = ["on RabbitMQ (durable queue, persistent messages)"]
        if knobs.dramatiq_confirm_delivery:
            parts.append("publisher confirms (confirm_delivery=True)")
        return parts

    def clocks(self, settings: Mapping[str, Any]) -> tuple[Clock, ...]:
        return (HEARTBEAT,)

    def recovery_clock(self, r: ScenarioResult) -> Clock | None:
        """After a SIGSTOP, RabbitMQ requeues the stopped worker's deliveries only once it has
        missed its heartbeats; every other fault closes the connection (or kills the broker)."""
        if not self.built_in(r.configuration) or r.fault_kind != STALL:
            return None
        return HEARTBEAT

    def note(self, settings: Any) -> str:
        return ("RabbitMQ requeues a delivery the moment the channel or connection it went out "
                "on closes (no clock to wait for); Dramatiq declares its queue durable and "
                "publishes persistent messages.")

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        if r.fault_kind == BROKER_KIND:
            if r.knobs.get("dramatiq_confirm_delivery"):
                return (f"{n} lost: RabbitMQ had confirmed them (confirm_delivery) and still "
                        "did not deliver them after its restart.")
            return (f"{n} lost: without confirm_delivery the producer's publish returns once the "
                    "message is written to the socket, before RabbitMQ has it on disk, so the "
                    "kill took what it still held in memory. `confirm_delivery=True` makes the "
                    "publish wait for the broker's confirm.")
        return None

    def duplicate_cause(self, r: ScenarioResult) -> str | None:
        said = super().duplicate_cause(r)
        if said:
            return said
        if r.fault_kind == BROKER_KIND:
            return ("the first run finished while the broker was down, so its ack went nowhere; "
                    "RabbitMQ had the message on disk, unacknowledged, and delivered it again")
        return ("RabbitMQ requeued the unacknowledged delivery when the worker's connection "
                "closed, and another worker ran it while, or after, the first run did its side "
                "effect")

    def fresh_redeliveries(self, r: ScenarioResult, n: int) -> str | None:
        return (f"{n} redelivered before their first start: RabbitMQ requeued them at once "
                "(prefetched by a worker that lost its connection or shut down, or recovered "
                "from disk after a broker restart).")


def _c(name: str, knobs: DramatiqRabbitKnobs, meets: tuple[str, ...]) -> Configuration:
    return Configuration(NAME, name, knobs, meets)


DramatiqRabbit.configurations = (
    _c("dramatiq-rabbitmq", DramatiqRabbitKnobs(),
       ("sigkill-worker", "sigterm-worker", "sigstop-worker", "broker-sigkill",
        "broker-restart", "cut-worker-broker", "blackhole-worker-broker",
        "cut-producer-broker", "crash-after-effect")),
    _c("dramatiq-rabbitmq-confirm", DramatiqRabbitKnobs(dramatiq_confirm_delivery=True),
       ("broker-sigkill", "cut-producer-broker")),
    _c("dramatiq-rabbitmq-idempotent", DramatiqRabbitKnobs(idempotent=True),
       ("sigkill-worker", "crash-after-effect")),
    # The dramatiq command's default of 8 worker threads: a prefetch of 16 (twice the threads),
    # so a killed worker holds more unacknowledged deliveries for RabbitMQ to requeue.
    _c("dramatiq-rabbitmq-threads-8", DramatiqRabbitKnobs(dramatiq_threads=8),
       ("sigkill-worker",)),
)
BACKEND = DramatiqRabbit()
