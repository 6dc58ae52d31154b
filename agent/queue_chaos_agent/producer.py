"""The producer: a FastAPI endpoint that enqueues, the way a real web app hands work to its queue.

The HTTP contract the harness's workload speaks, for every kind: ``POST /tasks {task_id,
duration}`` answers ``{outcome: ok | indeterminate | failed}``; ``GET /health`` answers 200 once
the broker answers through this producer's proxy. What the outcome means:

* Celery: ``ok`` when the publish returned, ``indeterminate`` when it raised (the message may or
  may not have reached the broker).
* arq: ``ok`` when arq returned a Job (its MULTI/EXEC wrote the job and queued it), ``failed``
  when arq refused the id because a job or result with it exists (nothing was written),
  ``indeterminate`` when the call raised or timed out.
* RQ: ``ok`` when ``enqueue_call`` returned (its pipeline wrote the job hash and pushed its id),
  ``failed`` when RQ refused the id because a job with it exists (``unique=True``: nothing was
  written), ``indeterminate`` when it raised.
* Dramatiq: ``ok`` when ``broker.enqueue`` returned (Redis: its Lua script wrote the message and
  pushed its id; RabbitMQ: the publish returned, after the broker's confirm with
  ``confirm_delivery``), ``indeterminate`` when it raised.

The message's id is the harness's task id (Celery's ``id`` header, arq's job id, Dramatiq's
``message_id``; RQ's job id is
the task id with the characters RQ refuses escaped, ``queue_chaos_agent.rq.job_id_for``); the
probe gets
``(task_id, duration)``, a team's task its own configured args and kwargs. FastAPI, pydantic and
uvicorn are imported here only: images install them beside the team's requirements.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from queue_chaos_agent.config import Config

# Bounds one enqueue or ping: a cut connection is refused at once, but a slow or half-open one
# must not hold the harness's request past its own timeout.
CALL_TIMEOUT_S = 5.0
# Celery's publish retries on a connection error (kombu's ensure), bounded.
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}


class Submit(BaseModel):
    task_id: str = Field(min_length=1, max_length=200)
    duration: float = Field(ge=0, le=600)


def _health(api: FastAPI, ping: Callable[[], object]) -> None:
    """``GET /health`` for a producer whose client is synchronous (FastAPI runs a plain ``def``
    in its threadpool): 200 when ``ping`` answers, 503 with its error, so the harness waits on
    the producer's broker connection, not only on the web server."""

    @api.get("/health", response_model=None)
    def health() -> dict[str, Any] | JSONResponse:
        try:
            ping()
        except Exception as exc:
            return JSONResponse(status_code=503, content={"ok": False, "error": repr(exc)[:500]})
        return {"ok": True}


def _indeterminate(exc: BaseException) -> JSONResponse:
    return JSONResponse(status_code=503,
                        content={"outcome": "indeterminate", "error": repr(exc)[:500]})


def message(config: Config, probe: str, body: Submit) -> tuple[str, list[Any], dict[str, Any]]:
    """(task name, args, kwargs) of the message for one submission."""
    if config.task is None:
        return probe, [body.task_id, body.duration], {}
    return config.task, list(config.task_args), dict(config.task_kwargs)


def celery_api(app: Any, config: Config, queue: str) -> FastAPI:
    from queue_chaos_agent.celery import PROBE

    api = FastAPI(title="queue-chaos producer (celery)")

    def ping() -> None:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    _health(api, ping)

    @api.post("/tasks")
    def submit(body: Submit) -> JSONResponse:
        name, args, kwargs = message(config, PROBE, body)
        try:
            app.send_task(name, args=args, kwargs=kwargs, task_id=body.task_id, queue=queue,
                          retry=True, retry_policy=RETRY_POLICY)
        except Exception as exc:  # any failure mid-publish leaves the outcome unknown
            return _indeterminate(exc)
        return JSONResponse(status_code=200, content={"outcome": "ok"})

    return api


def arq_api(redis_settings: Any, config: Config, queue: str) -> FastAPI:
    from arq.connections import ArqRedis, create_pool

    from queue_chaos_agent.arq import PROBE

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        """One pool per process, as arq's docs have web apps do; it reconnects by itself."""
        pool: ArqRedis = await create_pool(redis_settings, default_queue_name=queue)
        api.state.arq = pool
        try:
            yield
        finally:
            await pool.aclose()

    api = FastAPI(title="queue-chaos producer (arq)", lifespan=lifespan)

    @api.get("/health", response_model=None)
    async def health(request: Request) -> dict[str, Any] | JSONResponse:
        try:
            await asyncio.wait_for(request.app.state.arq.ping(), CALL_TIMEOUT_S)
        except Exception as exc:
            return JSONResponse(status_code=503, content={"ok": False, "error": repr(exc)[:500]})
        return {"ok": True}

    @api.post("/tasks")
    async def submit(body: Submit, request: Request) -> JSONResponse:
        name, args, kwargs = message(config, PROBE, body)
        try:
            job = await asyncio.wait_for(
                request.app.state.arq.enqueue_job(name, *args, _job_id=body.task_id,
                                                  _queue_name=queue, **kwargs),
                CALL_TIMEOUT_S,
            )
        except Exception as exc:  # any failure mid-enqueue leaves the outcome unknown
            return _indeterminate(exc)
        if job is None:  # arq checked the job and result keys under WATCH and wrote nothing
            return JSONResponse(status_code=409,
                                content={"outcome": "failed", "error": "duplicate job id"})
        return JSONResponse(status_code=200, content={"outcome": "ok"})

    return api


def rq_api(settings_cls: type, config: Config, queue: str) -> FastAPI:
    """RQ's enqueue is synchronous (redis-py): plain ``def`` endpoints, which FastAPI runs in its
    threadpool. Every enqueue carries the settings class's enqueue options (job_timeout, Retry,
    result_ttl), the same class the workers load."""
    from rq import Queue
    from rq.exceptions import DuplicateJobError

    from queue_chaos_agent import rq

    connection = rq.connect(config.broker_url or rq.setting(settings_cls, "redis_url"),
                            socket_timeout=CALL_TIMEOUT_S)
    jobs = Queue(queue, connection=connection)
    options = rq.enqueue_options(settings_cls)
    api = FastAPI(title="queue-chaos producer (rq)")

    _health(api, connection.ping)

    @api.post("/tasks")
    def submit(body: Submit) -> JSONResponse:
        name, args, kwargs = message(config, rq.PROBE, body)
        try:
            jobs.enqueue_call(name, args=args, kwargs=kwargs, job_id=rq.job_id_for(body.task_id),
                              unique=True, **options)
        except DuplicateJobError:
            return JSONResponse(status_code=409,
                                content={"outcome": "failed", "error": "duplicate job id"})
        except Exception as exc:  # any failure mid-enqueue leaves the outcome unknown
            return _indeterminate(exc)
        return JSONResponse(status_code=200, content={"outcome": "ok"})

    return api


def dramatiq_api(settings_cls: type, config: Config, queue: str) -> FastAPI:
    """Dramatiq's enqueue is synchronous (redis-py, pika's BlockingConnection, one per thread):
    plain ``def`` endpoints, which FastAPI runs in its threadpool. The broker is built from the
    same settings class as the workers' (confirm_delivery included)."""
    from dramatiq import Message

    from queue_chaos_agent import dramatiq

    broker = dramatiq.make_broker(settings_cls, config.broker_url, queue)
    api = FastAPI(title="queue-chaos producer (dramatiq)")

    _health(api, lambda: dramatiq.ping(broker, queue))

    @api.post("/tasks")
    def submit(body: Submit) -> JSONResponse:
        name, args, kwargs = message(config, dramatiq.PROBE, body)
        try:
            broker.enqueue(Message(queue_name=queue, actor_name=name, args=tuple(args),
                                   kwargs=kwargs, options={}, message_id=body.task_id))
        except Exception as exc:  # any failure mid-enqueue leaves the outcome unknown
            return _indeterminate(exc)
        return JSONResponse(status_code=200, content={"outcome": "ok"})

    return api


def serve(api: FastAPI, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(api, host=host, port=port, access_log=False)
