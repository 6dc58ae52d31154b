"""A settings class: how a team's RQ or Dramatiq worker is named to the agent.

Neither library has an app object the way Celery does, nor arq's WorkerSettings, so the agent
loads a plain class (``QUEUE_CHAOS_APP=module:Class``) whose attributes are the worker's and the
producer's settings, each falling back to the library's default (the backend module's
``DEFAULTS``), and whose ``queues`` lists what the worker consumes. One place for what the two
agents read the same way; each library's own settings stay in its module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_chaos_agent.config import Config
from queue_chaos_agent.target import TargetError


def is_settings(obj: Any) -> bool:
    """A settings class: a class with a ``queues`` attribute of its own."""
    return isinstance(obj, type) and "queues" in vars(obj)


def setting(settings_cls: type, name: str, defaults: Mapping[str, Any]) -> Any:
    """The class's own value of ``name``, else the library's default."""
    return vars(settings_cls).get(name, defaults[name])


def queues(settings_cls: type) -> list[str]:
    return [str(q) for q in vars(settings_cls).get("queues") or []]


def queue_name(settings_cls: type) -> str:
    """The queue the probe uses: the first the worker consumes."""
    found = queues(settings_cls)
    return found[0] if found else "default"


def check_queues(settings_cls: type, config: Config, library: str, probe: str) -> None:
    """Raise TargetError (one line) when the worker consumes no queue, not the one the config
    names, or the config names a task of theirs (these agents measure their ``probe`` only)."""
    theirs = queues(settings_cls)
    if not theirs:
        raise TargetError(f"QUEUE_CHAOS_APP={config.app!r}: its queues list is empty; name the "
                          "queues the worker consumes")
    if config.queue is not None and config.queue not in theirs:
        raise TargetError(f"QUEUE_CHAOS_QUEUE={config.queue!r} is not one of the worker's queues: "
                          f"{', '.join(theirs)}")
    if config.task is not None:
        raise TargetError(f"QUEUE_CHAOS_TASK={config.task!r}: the {library} agent measures its "
                          f"probe {probe} only; leave it unset")
