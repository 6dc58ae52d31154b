"""arq: a new WorkerSettings class around the team's own, with the probe function, the ready
record and, when asked, their function's runs recorded.

Their class is never mutated: ``instrument`` returns a new class holding a copy of their
settings. arq reads a settings class's own ``__dict__`` (not inherited attributes) when it builds
its Worker, so the new class copies their attributes rather than subclassing theirs.

Their function is observed by wrapping it, not through ``on_job_start`` / ``after_job_end``.
Read from arq 0.28's worker.py: those hooks get only ``ctx`` (job id, try, enqueue time, score),
not the function's name, so they cannot tell their function from the probe or any other; and
``after_job_end`` runs after success, failure, retry and cancellation alike, with nothing in
``ctx`` saying which. A wrapper sees the run's outcome where it happens (returned, raised
``Retry``, cancelled, raised) and records ``completed`` at the same point the probe does: when
the function returns, before arq records the result and removes the job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from arq.connections import RedisSettings
from arq.worker import Function, Retry, func

from queue_chaos_agent import ready, taskbody, versions
from queue_chaos_agent.config import Config
from queue_chaos_agent.ledger import LedgerWriter
from queue_chaos_agent.target import TargetError

PROBE = "queue_chaos_probe"
DEFAULT_QUEUE = "arq:queue"
# arq's Worker defaults, reported when their class does not set one.
DEFAULTS: dict[str, Any] = {"job_timeout": 300, "max_tries": 5, "max_jobs": 10,
                            "keep_result": 3600, "allow_abort_jobs": False}

Coroutine = Callable[..., Awaitable[Any]]


def require_version() -> None:
    versions.require("arq", versions.version_of("arq"), *versions.ARQ)


def is_settings(obj: Any) -> bool:
    """A WorkerSettings class: a class with a ``functions`` (or ``cron_jobs``) attribute."""
    return isinstance(obj, type) and ("functions" in vars(obj) or "cron_jobs" in vars(obj))


def function_names(settings_cls: type) -> list[str]:
    names = []
    for entry in vars(settings_cls).get("functions", []) or []:
        names.append(entry if isinstance(entry, str) else
                     entry.name if isinstance(entry, Function) else entry.__qualname__)
    return names


def queue_name(settings_cls: type) -> str:
    return str(vars(settings_cls).get("queue_name") or DEFAULT_QUEUE)


def check(settings_cls: type, config: Config) -> None:
    """Raise TargetError (one line) when the worker could not measure what the config names."""
    theirs = queue_name(settings_cls)
    if config.queue is not None and config.queue != theirs:
        raise TargetError(f"QUEUE_CHAOS_QUEUE={config.queue!r}: the arq worker consumes only its "
                          f"queue_name {theirs!r}; set it to that or leave it unset")
    if config.task is not None and config.task not in function_names(settings_cls):
        raise TargetError(f"QUEUE_CHAOS_TASK={config.task!r} is not one of the worker's "
                          f"functions: {', '.join(function_names(settings_cls)) or 'none'}")


SENTINEL_PORT = 26379  # Sentinel's own port, when a sentinel:// URL names none


def from_url(url: str, master: str = "mymaster") -> RedisSettings:
    """RedisSettings for a ``redis://`` URL (arq's ``from_dsn``), or for Sentinels given as
    kombu writes them, ``sentinel://host:port;sentinel://host:port...``, which ``from_dsn``
    refuses: arq's Sentinel settings take the Sentinels as a list of (host, port) and the
    primary's name (``master``) apart. Beware: arq's Sentinel connection ignores
    ``conn_timeout`` (arq/connections.py passes no socket timeout to redis-py's Sentinel), so
    a client of a frozen or cut-off primary waits as long as TCP does."""
    if not url.startswith("sentinel://"):
        return RedisSettings.from_dsn(url)
    hosts = [(part.hostname or "", part.port or SENTINEL_PORT)
             for part in map(urlparse, url.split(";"))]
    return RedisSettings(host=hosts, sentinel=True, sentinel_master=master)


def redis_settings(settings_cls: type, url: str | None) -> RedisSettings:
    """Their redis_settings, or the harness's URL with their connection bounds (and, for
    Sentinels, the primary's name) kept."""
    theirs = vars(settings_cls).get("redis_settings") or RedisSettings()
    if url is None:
        return theirs
    target = from_url(url, theirs.sentinel_master)
    return dataclasses.replace(target, conn_timeout=theirs.conn_timeout,
                               conn_retries=theirs.conn_retries,
                               conn_retry_delay=theirs.conn_retry_delay)


def instrument(settings_cls: type, queue: str, function_name: str | None = None, *,
               broker_url: str | None = None, ledger_dir: str = "/ledger",
               idempotent: bool = False, bare: bool = False) -> type:
    """A new WorkerSettings class: theirs plus the probe, readiness and observation.
    ``bare``: the probe only sleeps, writing nothing (the benchmark's baseline)."""
    require_version()
    ledger = LedgerWriter(ledger_dir, "worker")
    attributes = {k: v for k, v in vars(settings_cls).items()
                  if not (k.startswith("__") and k.endswith("__"))}

    async def probe(ctx: dict[str, Any], task_id: str, duration: float) -> None:
        """The shared body; ``await asyncio.sleep`` so the event loop (and arq's polling) runs
        on. arq counts runs per job id (arq:retry:<id>) before each start: job_try > 1 means the
        job was run, or at least claimed, before."""
        if bare:
            await asyncio.sleep(duration)
            return
        job_try: int = ctx["job_try"]
        run = taskbody.Run(ledger, ledger_dir, task_id, redelivered=job_try > 1,
                           job_try=job_try)
        await asyncio.sleep(duration)
        run.finish(idempotent)

    probe.__qualname__ = probe.__name__ = PROBE  # arq names a bare coroutine by its __qualname__
    functions = [_observed(f, function_name, ledger, ledger_dir) for f in
                 attributes.get("functions", []) or []]
    their_startup: Coroutine | None = attributes.get("on_startup")

    async def on_startup(ctx: dict[str, Any]) -> None:
        """Theirs first (their ctx is ready before anything runs), then the ready record: arq
        calls on_startup after its pool has answered a ping, so the worker reaches Redis."""
        if their_startup is not None:
            await their_startup(ctx)
        ready.write(ledger, "arq", effective(attributes, queue, function_name), idempotent,
                    probe=function_name is None)

    attributes.update(
        functions=[*functions, probe],
        redis_settings=redis_settings(settings_cls, broker_url),
        on_startup=on_startup,
        queue_name=queue,
    )
    return type(f"Instrumented{settings_cls.__name__}", (), attributes)


def _observed(entry: Any, function_name: str | None, ledger: LedgerWriter,
              ledger_dir: str) -> Any:
    """Their function wrapped when it is the one measured; any other entry as it was."""
    if isinstance(entry, str) and entry == function_name:
        entry = func(entry)  # an import path: arq would import it the same way
    if isinstance(entry, Function):
        if entry.name != function_name:
            return entry
        return dataclasses.replace(entry, coroutine=_wrap(entry.coroutine, ledger, ledger_dir))
    if function_name is None or isinstance(entry, str) or entry.__qualname__ != function_name:
        return entry
    return _wrap(entry, ledger, ledger_dir)


def _wrap(coroutine: Coroutine, ledger: LedgerWriter, ledger_dir: str) -> Coroutine:
    @functools.wraps(coroutine)  # keeps __qualname__: the name arq registers it under
    async def observed(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        job_try: int = ctx["job_try"]
        run = taskbody.Run(ledger, ledger_dir, ctx["job_id"], redelivered=job_try > 1,
                           job_try=job_try)
        try:
            result = await coroutine(ctx, *args, **kwargs)
        except Retry as exc:
            run.end("retried", reason=repr(exc)[:300])
            raise
        except asyncio.CancelledError:
            run.end("cancelled")
            raise
        except Exception as exc:
            run.end("failed", error=repr(exc)[:300])
            raise
        run.finish()  # completed, then the crash-after-effect marker if armed
        return result

    return observed


def effective(attributes: dict[str, Any], queue: str, function_name: str | None
              ) -> dict[str, Any]:
    """The durability-relevant settings the worker is built with (arq's defaults where theirs
    set none); a Function's own timeout or max_tries wins for the function measured."""
    values = {name: attributes.get(name, default) for name, default in DEFAULTS.items()}
    if function_name is not None:
        for entry in attributes.get("functions", []) or []:
            if isinstance(entry, Function) and entry.name == function_name:
                if entry.timeout_s is not None:
                    values["job_timeout"] = entry.timeout_s
                if entry.max_tries is not None:
                    values["max_tries"] = entry.max_tries
    job_timeout = values["job_timeout"]
    if hasattr(job_timeout, "total_seconds"):
        values["job_timeout"] = job_timeout.total_seconds()
    keep_result = values["keep_result"]
    if hasattr(keep_result, "total_seconds"):
        values["keep_result"] = keep_result.total_seconds()
    return {**values, "queue_name": queue, "task": function_name or PROBE}
