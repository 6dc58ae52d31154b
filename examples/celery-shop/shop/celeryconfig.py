"""The shop's Celery settings: the ones that decide what a crash does to its tasks."""

import os

broker_url = os.environ.get("SHOP_BROKER_URL", "redis://localhost:6379/0")
result_backend = None
task_ignore_result = True

# A task is acknowledged when it finishes, and given back when its worker process dies: the
# shop would rather record an order twice (the store refuses duplicates) than lose it.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

# Unacknowledged messages come back after this long, once a live worker's sweep finds them.
# Short here so a demo redelivers within a minute; kombu's defaults are a 3600 s timeout and a
# sweep every ~100 s (unacked_restore_interval 10 s x unacked_restore_throttle 10).
broker_transport_options = {
    "visibility_timeout": 10,
    "unacked_restore_interval": 2,
    "unacked_restore_throttle": 1,
}

task_default_queue = "default"
task_routes = {"shop.tasks.send_receipt": {"queue": "emails"}}
