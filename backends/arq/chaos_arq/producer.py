"""The producer: a FastAPI endpoint that enqueues, the way a real web app hands work to arq.

The answer tells the harness what it knows about the enqueue: ``ok`` when arq returned a Job (its
MULTI/EXEC that writes the job and adds it to the queue succeeded), ``failed`` when arq refused
the id because a job or a result with it already exists (nothing was written), ``indeterminate``
when the call raised or timed out (the transaction may or may not have reached Redis).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import ArqRedis, create_pool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from chaos_arq.worker import redis_settings, work

# Bounds one enqueue or ping: a cut connection is refused at once, but a slow or half-open one
# must not hold the harness's request past its own timeout.
CALL_TIMEOUT_S = 5.0
FUNCTION = work.__name__


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One pool per process, as arq's docs have web apps do; it reconnects by itself after a cut."""
    pool: ArqRedis = await create_pool(redis_settings())
    app.state.arq = pool
    try:
        yield
    finally:
        await pool.aclose()


api = FastAPI(title="queue-chaos producer (arq)", lifespan=lifespan)


class Submit(BaseModel):
    task_id: str = Field(min_length=1, max_length=200)
    duration: float = Field(ge=0, le=600)


def _pool(request: Request) -> ArqRedis:
    pool: ArqRedis = request.app.state.arq
    return pool


@api.get("/health", response_model=None)
async def health(request: Request) -> dict[str, Any] | JSONResponse:
    """Ready when the broker answers through this producer's proxy."""
    try:
        await asyncio.wait_for(_pool(request).ping(), CALL_TIMEOUT_S)
    except Exception as exc:
        return JSONResponse(status_code=503, content={"ok": False, "error": repr(exc)[:500]})
    return {"ok": True}


@api.post("/tasks")
async def submit(body: Submit, request: Request) -> JSONResponse:
    try:
        job = await asyncio.wait_for(
            _pool(request).enqueue_job(FUNCTION, body.task_id, body.duration, _job_id=body.task_id),
            CALL_TIMEOUT_S,
        )
    except Exception as exc:  # any failure mid-enqueue leaves the outcome unknown
        return JSONResponse(
            status_code=503, content={"outcome": "indeterminate", "error": repr(exc)[:500]}
        )
    if job is None:  # arq checked the job and result keys under WATCH and wrote nothing
        return JSONResponse(
            status_code=409, content={"outcome": "failed", "error": "duplicate job id"}
        )
    return JSONResponse(status_code=200, content={"outcome": "ok"})
