"""A team's target file (``queue-chaos.toml``): what to measure, read and checked.

Pure: standard library only (tomllib), no Docker, no broker. Every problem is one clear error
naming the file, the key, what is wrong and what is valid, raised before anything starts; what
only their app can tell (does it import, is the queue consumed, is the task registered) is
checked by the agent inside the image right after it is built.

    [target]
    name = "shop"                      # names scenarios and the report
    kind = "celery"                    # celery | arq | rq | dramatiq
    app = "shop.celery_app:app"        # celery: module:Celery instance; arq: module:WorkerSettings;
                                       # rq: module:settings class (queues, worker, enqueue options)
                                       # dramatiq: module:settings class (queues, broker options)
    source = "."                       # their code, relative to this file (on PYTHONPATH)
    requirements = "requirements.txt"  # relative to this file
    broker = "redis"                   # celery, dramatiq: redis | rabbitmq; arq, rq: redis
    worker_args = ["--concurrency", "2", "-Q", "default,emails"]  # after `celery -A app worker`
    queue = "emails"                   # where measured tasks are sent; must be consumed
    faults = ["sigkill-worker"]        # optional; absent: every fault that applies

    [task]                             # optional: one of their tasks; absent: the probe task
    name = "shop.tasks.record_order"
    args = [1]
    kwargs = {}

    [settings]                         # optional scenario settings (tasks = 40, ...)
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The agent's own reading of -Q/--queues: one parser for the harness and the worker.
from queue_chaos_agent.config import queues_in_args

TABLES = ("target", "task", "settings")
TARGET_KEYS = ("name", "kind", "app", "source", "requirements", "broker", "worker_args", "queue",
               "faults")
REQUIRED = ("name", "kind", "app", "requirements", "broker", "queue")
TASK_KEYS = ("name", "args", "kwargs")
BROKERS = {"celery": ("redis", "rabbitmq"), "arq": ("redis",), "rq": ("redis",),
           "dramatiq": ("redis", "rabbitmq")}
# Kinds whose workers take their settings from a class in the app, not from arguments.
SETTINGS_CLASS = {"arq": "the WorkerSettings class", "rq": "its settings class",
                  "dramatiq": "its settings class"}
NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class TargetError(ValueError):
    """A target file that cannot be measured as written; the message says where and why."""


@dataclass(frozen=True)
class TaskSpec:
    """One of their own tasks, and how to call it (the harness's task id is its message id)."""

    name: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    path: Path
    name: str
    kind: str
    app: str
    source: Path
    requirements: Path
    broker: str
    queue: str
    worker_args: list[str] = field(default_factory=list)
    faults: tuple[str, ...] = ()
    task: TaskSpec | None = None
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def image_variable(self) -> str:
        """The variable provisioning sets to the target's image tag."""
        return f"CHAOS_TARGET_{self.name.upper().replace('-', '_')}_IMAGE"

    def worker_argv(self) -> list[str]:
        return list(self.worker_args)

    def env(self) -> dict[str, str]:
        """The environment the agent inside the image reads (``queue-chaos-agent check``)."""
        env = {"QUEUE_CHAOS_KIND": self.kind, "QUEUE_CHAOS_APP": self.app,
               "QUEUE_CHAOS_WORKER_ARGS": shlex.join(self.worker_args),
               "QUEUE_CHAOS_QUEUE": self.queue}
        if self.task is not None:
            env |= {"QUEUE_CHAOS_TASK": self.task.name,
                    "QUEUE_CHAOS_TASK_ARGS": json.dumps(self.task.args),
                    "QUEUE_CHAOS_TASK_KWARGS": json.dumps(self.task.kwargs)}
        return env

    def compose_variables(self) -> dict[str, str]:
        """The same, as the compose file's ``CHAOS_*`` variables for the backend's services
        (the kind is the services' own). Worker arguments never go empty: an empty value
        would bring back the built-in configuration's pool and concurrency."""
        env = {f"CHAOS_{k.removeprefix('QUEUE_CHAOS_')}": v for k, v in self.env().items()
               if k != "QUEUE_CHAOS_KIND"}
        env["CHAOS_WORKER_ARGS"] = env["CHAOS_WORKER_ARGS"] or "--loglevel INFO"
        return env


def load(path: Path, known_faults: Collection[str] | None = None) -> Target:
    """The target file at ``path``, checked; paths in it resolve from its folder."""
    if not path.is_file():
        raise TargetError(f"{path}: no such target file (a queue-chaos.toml: see the README, "
                          "'Your own application')")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{path}: not TOML: {exc}") from None
    return parse(data, path, known_faults)


def _unknown(where: str, keys: Collection[str], valid: tuple[str, ...]) -> None:
    for key in keys:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TargetError(f"{where}: unknown key {key!r}{hint}; valid: {', '.join(valid)}")


def parse(data: Mapping[str, Any], path: Path,
          known_faults: Collection[str] | None = None) -> Target:
    where = str(path)
    base = path.parent
    for table in data:
        if table not in TABLES:
            close = difflib.get_close_matches(table, TABLES, n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            raise TargetError(f"{where}: unknown table [{table}]{hint}; valid: "
                              + ", ".join(f"[{t}]" for t in TABLES))
    raw = data.get("target")
    if not isinstance(raw, dict):
        raise TargetError(f"{where}: no [target] table; it names at least "
                          + ", ".join(REQUIRED))
    here = f"{where}: [target]"
    _unknown(here, raw, TARGET_KEYS)
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise TargetError(f"{here} lacks {', '.join(missing)} (required: {', '.join(REQUIRED)})")
    text = {k: raw[k] for k in REQUIRED}
    for key, value in text.items():
        if not isinstance(value, str) or not value.strip():
            raise TargetError(f"{here} {key} = {value!r}: expected a non-empty string")
    name, kind, app = text["name"], text["kind"], text["app"]
    if not NAME.fullmatch(name):
        raise TargetError(f"{here} name = {name!r}: expected lowercase letters, digits and "
                          "dashes, starting with a letter, at most 31 characters")
    if kind not in BROKERS:
        raise TargetError(f"{here} kind = {kind!r}: unknown kind; valid: {', '.join(BROKERS)}")
    module, sep, attribute = app.partition(":")
    if not sep or not DOTTED.fullmatch(module) or not DOTTED.fullmatch(attribute):
        what = "a Celery instance" if kind == "celery" else SETTINGS_CLASS[kind]
        raise TargetError(f"{here} app = {app!r}: expected module:attribute naming {what} "
                          "(e.g. shop.celery_app:app or shop.worker:WorkerSettings)")
    broker = text["broker"]
    if broker not in BROKERS[kind]:
        raise TargetError(f"{here} broker = {broker!r}: {kind} runs on "
                          f"{', '.join(BROKERS[kind])}")
    source = base / str(raw.get("source", "."))
    if not source.is_dir():
        raise TargetError(f"{here} source = {raw.get('source', '.')!r}: no such folder "
                          f"({source})")
    requirements = base / text["requirements"]
    if not requirements.is_file():
        raise TargetError(f"{here} requirements = {text['requirements']!r}: no such file "
                          f"({requirements})")
    worker_args = raw.get("worker_args", [])
    if not isinstance(worker_args, list) or not all(isinstance(a, str) for a in worker_args):
        raise TargetError(f"{here} worker_args = {worker_args!r}: expected a list of strings "
                          '(e.g. ["--concurrency", "2", "-Q", "default"])')
    if kind in SETTINGS_CLASS and worker_args:
        raise TargetError(f"{here} worker_args: {kind} takes its settings from "
                          f"{SETTINGS_CLASS[kind]}; remove worker_args")
    queue = text["queue"]
    consumed = queues_in_args(worker_args)
    if consumed is not None and queue not in consumed:
        raise TargetError(f"{here} queue = {queue!r}: the workers consume only "
                          f"{', '.join(consumed)} (worker_args -Q); measured tasks would wait "
                          "forever")
    faults = raw.get("faults", [])
    if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
        raise TargetError(f"{here} faults = {faults!r}: expected a list of fault names")
    if known_faults is not None:
        for fault in faults:
            if fault not in known_faults:
                raise TargetError(f"{here} faults: unknown fault {fault!r}; valid: "
                                  f"{', '.join(known_faults)}")
    return Target(path=path, name=name, kind=kind, app=app, source=source.resolve(),
                  requirements=requirements.resolve(), broker=broker, queue=queue,
                  worker_args=list(worker_args), faults=tuple(faults),
                  task=_task(data.get("task"), where), settings=_settings(data.get("settings"),
                                                                          where))


def _task(raw: Any, where: str) -> TaskSpec | None:
    if raw is None:
        return None
    here = f"{where}: [task]"
    if not isinstance(raw, dict):
        raise TargetError(f"{here}: expected a table with {', '.join(TASK_KEYS)}")
    _unknown(here, raw, TASK_KEYS)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TargetError(f"{here} name: expected the task's registered name (celery) or the "
                          "function's name (arq)")
    args, kwargs = raw.get("args", []), raw.get("kwargs", {})
    if not isinstance(args, list):
        raise TargetError(f"{here} args = {args!r}: expected a list")
    if not isinstance(kwargs, dict):
        raise TargetError(f"{here} kwargs = {kwargs!r}: expected a table")
    try:
        json.dumps([args, kwargs])
    except TypeError as exc:
        raise TargetError(f"{here}: args and kwargs must be JSON values ({exc})") from None
    return TaskSpec(name, args, kwargs)


def _settings(raw: Any, where: str) -> dict[str, str]:
    """Scenario settings as ``name=value`` text (checked against the settings by the matrix)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or any(isinstance(v, dict | list) for v in raw.values()):
        raise TargetError(f"{where}: [settings]: expected name = value pairs (e.g. tasks = 40)")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items()}
