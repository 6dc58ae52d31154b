"""FastAPI BackgroundTasks: the web app is its own queue, with no broker behind it.

``POST /tasks`` answers ``ok`` before the task has run, then Starlette runs the task in the same
process after the response is sent. ``CHAOS_TASK_STYLE`` picks the task's kind, because uvicorn's
graceful-shutdown timeout treats them differently: a sync function runs in an anyio worker thread,
which cancelling its asyncio task cannot stop; an ``async def`` runs on the event loop, where the
cancellation lands at its next ``await``. The only
record of the accepted-but-unfinished task is this process's memory, so a killed or restarted app
loses it: the harness measures exactly that. ``completed`` *is* the side effect whose count the
harness checks (once = fine, twice = duplicated, never = lost).

``GET /pending`` exposes that memory to the harness's forensics: what a fault would lose now.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from queue_chaos_agent import ready
from queue_chaos_agent.knobs import choice, flag
from queue_chaos_agent.ledger import LedgerWriter
from queue_chaos_agent.taskbody import Run, perform

LEDGER_DIR = os.environ.get("CHAOS_LEDGER_DIR", "/ledger")
IDEMPOTENT = flag("CHAOS_IDEMPOTENT")
TASK_STYLE = choice("CHAOS_TASK_STYLE", ("sync", "async"), "sync")

ledger = LedgerWriter(LEDGER_DIR, "app")


class Pending:
    """Task ids accepted but not yet finished in this process (threadpool threads remove them)."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def add(self, task_id: str) -> None:
        with self._lock:
            self._ids.add(task_id)

    def discard(self, task_id: str) -> None:
        with self._lock:
            self._ids.discard(task_id)

    def snapshot(self) -> list[str]:
        with self._lock:
            return sorted(self._ids)


pending = Pending()


def run_task(task_id: str, duration: float) -> None:
    """The background task: sync, so Starlette runs it in a worker thread, off the event loop."""
    try:
        perform(ledger, LEDGER_DIR, task_id, duration, IDEMPOTENT)
    finally:
        pending.discard(task_id)


async def run_task_async(task_id: str, duration: float) -> None:
    """The same task as ``async def``: Starlette awaits it on the event loop."""
    try:
        run = Run(ledger, LEDGER_DIR, task_id)
        await asyncio.sleep(duration)
        run.finish(IDEMPOTENT)
    finally:
        pending.discard(task_id)


def graceful_timeout(argv: list[str]) -> float | None:
    """uvicorn's ``--timeout-graceful-shutdown`` as this process was started with (uvicorn runs
    the app in its own process, so its command line is ours); None when not given."""
    for i, arg in enumerate(argv):
        if arg == "--timeout-graceful-shutdown" and i + 1 < len(argv):
            return float(argv[i + 1])
        if arg.startswith("--timeout-graceful-shutdown="):
            return float(arg.split("=", 1)[1])
    return None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """The harness waits for this record, not for a log line or a sleep. It says what this
    process runs: the task style and uvicorn's graceful-shutdown timeout, read from here."""
    effective = {"task_style": TASK_STYLE,
                 "timeout_graceful_shutdown": graceful_timeout(sys.argv)}
    ready.write(ledger, "fastapi", effective, IDEMPOTENT)
    yield


api = FastAPI(title="queue-chaos app (FastAPI BackgroundTasks)", lifespan=lifespan)


class Submit(BaseModel):
    task_id: str = Field(min_length=1, max_length=200)
    duration: float = Field(ge=0, le=600)


@api.get("/health")
def health() -> dict[str, Any]:
    """Ready when the app serves requests: there is no broker to reach."""
    return {"ok": True}


@api.get("/pending")
def pending_tasks() -> dict[str, list[str]]:
    return {"pending": pending.snapshot()}


@api.post("/tasks")
def submit(body: Submit, background: BackgroundTasks) -> JSONResponse:
    """Accepted once it is in memory: the answer is ``ok`` though nothing durable holds it."""
    pending.add(body.task_id)
    task = run_task_async if TASK_STYLE == "async" else run_task
    background.add_task(task, body.task_id, body.duration)
    return JSONResponse(status_code=200, content={"outcome": "ok"})
