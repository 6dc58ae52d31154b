"""The ``worker_ready`` record: the harness waits for it, not for a log line or a sleep.

It keeps what the records had before the agent (``worker`` and the record's own ``t``, which the
harness's observe.py reads; ``main_pid``, ``started_at``) and adds what the running app really
uses: ``effective``, the durability-relevant settings read from the app and the worker after
their configuration was applied (a team's app may set them anywhere), and ``versions`` of the
libraries installed, so a report can say what it measured rather than what it asked for.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, Protocol

from queue_chaos_agent import versions


class Writer(Protocol):
    def write(self, kind: str, **fields: Any) -> dict[str, Any]: ...


def fields(kind: str, effective: dict[str, Any], idempotent: bool,
           probe: bool) -> dict[str, Any]:
    """The record's fields (the ledger adds kind, host, pid, t and wall)."""
    return {
        "worker": socket.gethostname(),
        "main_pid": os.getpid(),
        "started_at": time.monotonic(),
        "backend_kind": kind,
        "idempotent": idempotent,
        "measures": "probe" if probe else "their task",
        "effective": effective,
        "versions": versions.installed(),
    }


def write(ledger: Writer, kind: str, effective: dict[str, Any], idempotent: bool,
          probe: bool = True) -> dict[str, Any]:
    return ledger.write("worker_ready", **fields(kind, effective, idempotent, probe))
