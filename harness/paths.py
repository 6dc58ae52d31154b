"""Where the harness finds what it ships and where it writes what it makes.

Run from a checkout, both are the checkout: the compose file, ``topology/``, ``backends/``,
``agent/`` and ``scenarios/`` in place, ``build/`` and ``runs/`` beside them. Installed with pip
(not editable), what it ships is under ``<prefix>/share/queue-chaos`` (the package's data files)
and what it makes goes to ``.queue-chaos/`` in the directory it runs from, the user's project:
never into site-packages. ``QUEUE_CHAOS_HOME`` moves the latter anywhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

COMPOSE_NAME = "docker-compose.chaos.yml"
_CHECKOUT = Path(__file__).resolve().parent.parent
_INSTALLED = Path(sys.prefix) / "share" / "queue-chaos"


def assets() -> Path:
    """The folder holding the compose file and everything beside it."""
    for candidate in (_CHECKOUT, _INSTALLED):
        if (candidate / COMPOSE_NAME).is_file():
            return candidate
    raise FileNotFoundError(
        f"queue-chaos cannot find {COMPOSE_NAME}: looked in {_CHECKOUT} (a checkout) and "
        f"{_INSTALLED} (an installed package); reinstall it with pip")


ROOT = assets()
IN_CHECKOUT = ROOT == _CHECKOUT


def workdir() -> Path:
    """Where builds and runs go: QUEUE_CHAOS_HOME, else the checkout, else ./.queue-chaos."""
    home = os.environ.get("QUEUE_CHAOS_HOME")
    if home:
        return Path(home).resolve()
    return ROOT if IN_CHECKOUT else Path.cwd().resolve() / ".queue-chaos"


WORK = workdir()
BUILD = WORK / "build"
RUNS = WORK / "runs"


def relative(path: str | os.PathLike[str], base: Path | None = None) -> str:
    """``path`` as a report names it: relative to the work directory (``base``, default WORK),
    so a report carries no machine's absolute paths and still says where, under that machine's
    work directory, its ledgers are. A path outside it is named by its way from there (``..``);
    a relative path (a report's own, or one given relative) is kept; empty stays empty."""
    text = os.fspath(path)
    if not text or not os.path.isabs(text):
        return text
    return Path(os.path.relpath(text, WORK if base is None else base)).as_posix()


def resolve(text: str, base: Path | None = None) -> str:
    """What ``relative`` named, as a path on this machine again: under the work directory
    (``base``, default WORK). An absolute path (an older report's) and an empty one are kept."""
    if not text or os.path.isabs(text):
        return text
    return os.path.normpath((WORK if base is None else base) / text)
