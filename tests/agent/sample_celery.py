"""A team's Celery app, as the agent finds it: their own settings, their own task, a broker URL
that points nowhere useful (the agent redirects it to the test's Redis)."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

app = Celery("sample", broker="redis://127.0.0.1:1/0")
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="default",
    task_queues=[Queue("default"), Queue("measured")],
    broker_transport_options={"visibility_timeout": 42},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="sample.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="sample.boom")
def boom() -> None:
    raise RuntimeError("their task failed")
