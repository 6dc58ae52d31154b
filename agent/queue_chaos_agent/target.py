"""Loading a team's app from ``module:attribute``, with one clear line when it cannot be used.

The agent never asks the team to change their code, so every way their path can be wrong (the
module does not import, the attribute is missing, it is not what the kind needs) is reported as
one line naming what is wrong and what would be valid.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any


class TargetError(RuntimeError):
    """The app path cannot be used; the message is the one line to print."""


def importable_from_cwd() -> None:
    """A console script does not put the working directory on sys.path (``celery -A`` and
    ``arq`` do); a team's ``proj.app`` usually lives right there."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def load(path: str, what: str, accepts: Callable[[Any], bool]) -> Any:
    """The object at ``module:attribute`` when ``accepts`` it; ``what`` names the kind wanted
    ("a Celery app", "an arq WorkerSettings class") in the errors."""
    module_name, _, attribute = path.partition(":")
    importable_from_cwd()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # their import may fail any way; say how, in one line
        raise TargetError(f"QUEUE_CHAOS_APP={path!r}: module {module_name!r} does not import: "
                          f"{type(exc).__name__}: {_one_line(exc)}") from exc
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise TargetError(f"QUEUE_CHAOS_APP={path!r}: {module_name} has no attribute "
                              f"{attribute!r}; {what} in it: {candidates(module, accepts)}")
        obj = getattr(obj, part)
    if not accepts(obj):
        raise TargetError(f"QUEUE_CHAOS_APP={path!r}: {attribute} is a {type(obj).__name__}, not "
                          f"{what}; {what} in {module_name}: {candidates(module, accepts)}")
    return obj


def candidates(module: ModuleType, accepts: Callable[[Any], bool]) -> str:
    names = sorted(name for name, value in vars(module).items()
                   if not name.startswith("_") and _safe(accepts, value))
    return ", ".join(f"{module.__name__}:{n}" for n in names) or "none"


def _safe(accepts: Callable[[Any], bool], value: Any) -> bool:
    try:
        return accepts(value)
    except Exception:
        return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
