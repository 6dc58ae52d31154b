"""The built-in Celery app: configuration only, from the CHAOS_* knobs.

It defines no task and no producer: the agent (``queue-chaos-agent worker`` / ``producer`` with
``QUEUE_CHAOS_APP=chaos_celery.app:app``) registers its probe task on this app and serves the
producer endpoint, exactly as it does for a team's own app. Pool and concurrency are worker
arguments (QUEUE_CHAOS_WORKER_ARGS in the compose file), as they would be for a team.
"""

from __future__ import annotations

from celery import Celery
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
    if settings.SENTINEL:
        # kombu asks the Sentinels (every one in the URL) for the primary on each connect;
        # master_name is required, and the Sentinels' own sockets are bounded too, so a frozen
        # or cut-off Sentinel is skipped instead of waited for.
        app.conf.broker_transport_options |= {
            "master_name": settings.SENTINEL_MASTER,
            "sentinel_kwargs": {"socket_timeout": 2, "socket_connect_timeout": 2},
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
