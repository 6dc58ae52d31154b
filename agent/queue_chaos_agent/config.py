"""The agent's configuration: environment variables, every one checked when the agent starts.

A bad value ends the agent with one line naming the variable, what it holds and what is valid,
before any library is imported: the harness runs ``queue-chaos-agent check`` right after building
an image, so a typo shows up there rather than as a worker that never becomes ready.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from queue_chaos_agent import knobs

KINDS = ("celery", "arq", "rq", "dramatiq")
DEFAULT_LEDGER_DIR = "/ledger"
# The schemes a redirected broker URL may have: Celery's and Dramatiq's Redis and AMQP brokers
# (Celery's Redis also through Sentinel); arq and RQ are Redis.
BROKER_SCHEMES = {
    "celery": ("redis", "rediss", "sentinel", "amqp", "amqps", "pyamqp"),
    "arq": ("redis", "rediss", "sentinel"),
    "rq": ("redis", "rediss"),
    "dramatiq": ("redis", "rediss", "amqp", "amqps"),
}
# What each kind that takes no worker arguments takes its settings from instead.
SETTINGS_CLASS = {"arq": "the WorkerSettings class", "rq": "its settings class",
                  "dramatiq": "its settings class"}


class ConfigError(ValueError):
    """A variable holds something the agent cannot use; the message is the one line to print."""


@dataclass(frozen=True)
class Config:
    kind: str
    app: str  # module:attribute
    worker_args: list[str] = field(default_factory=list)
    broker_url: str | None = None
    queue: str | None = None  # None: the app's default queue
    task: str | None = None  # one of their tasks to measure; None: the probe
    task_args: list[Any] = field(default_factory=list)
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    ledger_dir: str = DEFAULT_LEDGER_DIR
    idempotent: bool = False
    # The task body without the ledger (CHAOS_BARE): only for measuring what the ledger costs
    # (``queue-chaos bench``); a scenario never runs bare, it could count nothing.
    bare: bool = False

    @property
    def module(self) -> str:
        return self.app.partition(":")[0]

    @property
    def attribute(self) -> str:
        return self.app.partition(":")[2]


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def app_path(name: str, value: str | None) -> str:
    if value is None:
        raise ConfigError(f"{name} is not set: expected module:attribute (e.g. proj.celery:app)")
    module, sep, attribute = value.partition(":")
    if not sep or not module or not attribute or not all(
        part.isidentifier() for part in (*module.split("."), *attribute.split("."))
    ):
        raise ConfigError(f"{name}={value!r}: expected module:attribute (e.g. proj.celery:app)")
    return value


def broker_url(name: str, value: str | None, kind: str) -> str | None:
    """The URL, each of its parts checked: Celery takes several ``;``-separated ones (kombu's
    failover list over a cluster's nodes, or the Sentinels of a ``sentinel://`` broker), and
    arq Sentinels written the same way."""
    if value is None:
        return None
    parts = value.split(";") if kind in ("celery", "arq") else [value]
    schemes = BROKER_SCHEMES[kind]
    for part in parts:
        parsed = urlparse(part)
        if parsed.scheme not in schemes or not parsed.hostname:
            raise ConfigError(f"{name}={value!r}: expected a {kind} broker URL "
                              f"({', '.join(s + '://host:port' for s in schemes)})")
        try:
            parsed.port  # noqa: B018 - urlparse checks the port only when it is read
        except ValueError:
            raise ConfigError(f"{name}={value!r}: the port is not a number") from None
    return value


def json_value(name: str, value: str | None, kind: type) -> Any:
    if value is None:
        return kind()
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r}: not JSON ({exc})") from None
    if not isinstance(parsed, kind):
        expected = "a JSON array" if kind is list else "a JSON object"
        raise ConfigError(f"{name}={value!r}: expected {expected}")
    return parsed


def from_env(env: Mapping[str, str] | None = None) -> Config:
    """Every QUEUE_CHAOS_* variable (and the CHAOS_* knobs the task body reads), checked."""
    env = os.environ if env is None else env
    kind = (_get(env, "QUEUE_CHAOS_KIND") or "").lower()
    if kind not in KINDS:
        raise ConfigError(f"QUEUE_CHAOS_KIND={env.get('QUEUE_CHAOS_KIND', '')!r}: expected one of "
                          f"{', '.join(KINDS)}")
    raw_args = env.get("QUEUE_CHAOS_WORKER_ARGS", "")
    try:
        worker_args = shlex.split(raw_args)
    except ValueError as exc:
        raise ConfigError(f"QUEUE_CHAOS_WORKER_ARGS={raw_args!r}: not a shell word list ({exc})"
                          ) from None
    if kind in SETTINGS_CLASS and worker_args:
        raise ConfigError(f"QUEUE_CHAOS_WORKER_ARGS={raw_args!r}: {kind} takes its settings from "
                          f"{SETTINGS_CLASS[kind]}; leave it empty")
    try:
        idempotent = knobs.flag("CHAOS_IDEMPOTENT", env=env)
        bare = knobs.flag("CHAOS_BARE", env=env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return Config(
        kind=kind,
        app=app_path("QUEUE_CHAOS_APP", _get(env, "QUEUE_CHAOS_APP")),
        worker_args=worker_args,
        # The compose file hands each client its own proxy's URL as CHAOS_BROKER_URL (what the
        # built-in apps read): a team's app is redirected to it unless told otherwise.
        broker_url=broker_url(
            "QUEUE_CHAOS_BROKER_URL",
            _get(env, "QUEUE_CHAOS_BROKER_URL") or _get(env, "CHAOS_BROKER_URL"), kind),
        queue=_get(env, "QUEUE_CHAOS_QUEUE"),
        task=_get(env, "QUEUE_CHAOS_TASK"),
        task_args=json_value("QUEUE_CHAOS_TASK_ARGS", _get(env, "QUEUE_CHAOS_TASK_ARGS"), list),
        task_kwargs=json_value("QUEUE_CHAOS_TASK_KWARGS", _get(env, "QUEUE_CHAOS_TASK_KWARGS"),
                               dict),
        ledger_dir=_get(env, "CHAOS_LEDGER_DIR") or DEFAULT_LEDGER_DIR,
        idempotent=idempotent,
        bare=bare,
    )


def queues_in_args(args: list[str]) -> list[str] | None:
    """The queues a Celery worker's ``-Q``/``--queues`` names (comma lists, repeatable); None
    when the arguments name none (it then consumes every declared queue)."""
    found: list[str] = []
    named = False
    i = 0
    while i < len(args):
        arg = args[i]
        value: str | None = None
        if arg in ("-Q", "--queues"):
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        elif arg.startswith("--queues="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-Q"):
            value = arg[2:]
        if value is not None:
            named = True
            found += [q.strip() for q in value.split(",") if q.strip()]
        i += 1
    return found if named else None
