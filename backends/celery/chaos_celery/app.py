"""The Celery app and its one instrumented task (the shared body in chaos_taskbody).

``completed`` *is* the side effect whose count the harness checks (once = fine, twice =
duplicated, never = lost).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from celery import Celery, Task
from celery.signals import worker_ready
from chaos_ledger import LedgerWriter
from chaos_taskbody import perform
from kombu import Exchange, Queue

from chaos_celery import settings

app = Celery("chaos", broker=settings.BROKER_URL)
app.conf.update(
    task_default_queue=settings.QUEUE,
    task_ignore_result=True,
    task_acks_late=settings.ACKS_LATE,
    task_reject_on_worker_lost=settings.REJECT_ON_WORKER_LOST,
    worker_prefetch_multiplier=settings.PREFETCH_MULTIPLIER,
    broker_connection_retry_on_startup=True,
    # Celery 5's documented default, set explicitly to keep the deprecation notice out of logs.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    worker_hijack_root_logger=False,
)
if settings.REDIS:
    app.conf.broker_transport_options = {
        # Scenario settings, so that a redelivery can happen inside a run. Production defaults
        # are 3600 s and a sweep every ~100 s (kombu: unacked_restore_interval x throttle).
        "visibility_timeout": settings.VISIBILITY_TIMEOUT,
        "unacked_restore_interval": settings.RESTORE_INTERVAL,
        "unacked_restore_throttle": 1,
        # Bound the producer's publish on a dead connection instead of waiting forever.
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
    }
else:
    # AMQP (RabbitMQ, py-amqp). kombu hands transport options to py-amqp's Connection:
    # confirm_publish makes every publish wait for the broker's Basic.Ack (MessageNacked on a
    # nack), so an `ok` submission means the broker took responsibility for the message.
    app.conf.broker_transport_options = {"confirm_publish": settings.CONFIRM_PUBLISH}
    # The task queue, declared the same way by the producer and the workers (RabbitMQ refuses a
    # redeclaration with other arguments). Durable, like kombu's default; task messages are
    # persistent (task_default_delivery_mode=2). A quorum queue needs per-consumer QoS: Celery
    # turns global QoS off when worker_detect_quorum_queues finds one (RabbitMQ refuses a
    # quorum-queue consumer on a channel with global QoS), so the prefetch count is static,
    # and it enables native delayed delivery for ETA/countdown tasks (unused here).
    app.conf.task_queues = [
        Queue(settings.QUEUE, Exchange(settings.QUEUE, type="direct"),
              routing_key=settings.QUEUE, durable=True,
              queue_arguments={"x-queue-type": "quorum"} if settings.QUEUE_TYPE == "quorum"
              else None),
    ]
    app.conf.worker_detect_quorum_queues = True

ledger = LedgerWriter(settings.LEDGER_DIR, "worker")


@app.task(name="chaos.work", bind=True)
def work(self: Task, task_id: str, duration: float) -> None:
    delivery = self.request.delivery_info or {}
    perform(ledger, settings.LEDGER_DIR, task_id, duration, settings.IDEMPOTENT,
            redelivered=delivery.get("redelivered"))


@worker_ready.connect
def announce_ready(**_: Any) -> None:
    """The harness waits for this record, not for a log line or a sleep."""
    ledger.write(
        "worker_ready",
        worker=socket.gethostname(),
        main_pid=os.getpid(),
        acks_late=settings.ACKS_LATE,
        reject_on_worker_lost=settings.REJECT_ON_WORKER_LOST,
        prefetch_multiplier=settings.PREFETCH_MULTIPLIER,
        visibility_timeout=settings.VISIBILITY_TIMEOUT,
        idempotent=settings.IDEMPOTENT,
        started_at=time.monotonic(),
        **({} if settings.REDIS else {"queue_type": settings.QUEUE_TYPE,
                                      "confirm_publish": settings.CONFIRM_PUBLISH}),
    )
