"""The producer: a FastAPI endpoint that enqueues, the way a real web app hands work to Celery.

The answer tells the harness what it knows about the enqueue: ``ok`` when the publish returned,
``indeterminate`` when it raised (the message may or may not have reached Redis), ``failed`` only
when the request was refused before any publish was attempted.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from chaos_celery.app import app as celery_app
from chaos_celery.app import work

api = FastAPI(title="queue-chaos producer (celery)")


class Submit(BaseModel):
    task_id: str = Field(min_length=1, max_length=200)
    duration: float = Field(ge=0, le=600)


@api.get("/health")
def health() -> dict[str, Any]:
    """Ready when the broker answers through this producer's proxy."""
    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
    return {"ok": True}


@api.post("/tasks")
def submit(body: Submit) -> JSONResponse:
    try:
        work.apply_async(
            args=[body.task_id, body.duration],
            task_id=body.task_id,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )
    except Exception as exc:  # any failure mid-publish leaves the outcome unknown
        return JSONResponse(
            status_code=503, content={"outcome": "indeterminate", "error": repr(exc)[:500]}
        )
    return JSONResponse(status_code=200, content={"outcome": "ok"})
