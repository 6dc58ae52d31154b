"""The instrumented task body every backend runs: one definition, so backends differ only in how
they deliver the task, never in what the task does.

Standard library only: part of the agent wheel installed in every backend image (and in the
harness's environment, which arms the crash marker).

A run writes ``started``, sleeps for the task's duration, then performs its side effect: the
``completed`` record. The side effect's count is what the checker judges (once = fine, twice =
duplicated, never = lost). Two variants:

* idempotent: before the side effect, claim an idempotency key (a file created with O_EXCL in the
  shared ledger directory: atomic across processes and containers, as a unique constraint in a
  database would be). A run that finds the key taken records ``deduplicated`` instead.
* crash after effect: the harness drops a marker file into the ledger's control directory; the
  next run to finish its side effect consumes it (unlink is atomic: one run wins) and the process
  exits at once, before the task returns to the queue library: the window in which late
  acknowledgement duplicates.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

CONTROL = "control"
CRASH_MARKER = "crash-after-effect"
KEYS = "idempotency-keys"


def crash_marker(ledger_dir: str | os.PathLike[str]) -> Path:
    return Path(ledger_dir) / CONTROL / CRASH_MARKER


def arm_crash(ledger_dir: str | os.PathLike[str]) -> None:
    """Make the next run that completes its side effect crash (used by the harness)."""
    marker = crash_marker(ledger_dir)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def _take_crash(ledger_dir: str) -> bool:
    try:
        crash_marker(ledger_dir).unlink()
    except FileNotFoundError:
        return False
    return True


def _claim(ledger_dir: str, task_id: str) -> bool:
    keys = Path(ledger_dir) / KEYS
    keys.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(keys / task_id, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


class Run:
    """One execution of a task: ``start`` it, wait the task's duration (``time.sleep`` or
    ``asyncio.sleep``, as the backend runs tasks), then ``finish`` it."""

    def __init__(self, ledger: Any, ledger_dir: str, task_id: str, **delivery: Any) -> None:
        # ledger: a LedgerWriter, or anything with its write(kind, **fields) (tests pass fakes).
        # delivery: what the backend says of this delivery (redelivered flag, try number).
        self.ledger = ledger
        self.ledger_dir = ledger_dir
        self.task_id = task_id
        self.execution = uuid.uuid4().hex
        self.worker = socket.gethostname()
        self._write("started", **delivery)

    def _write(self, kind: str, **fields: Any) -> None:
        self.ledger.write(kind, task=self.task_id, execution=self.execution, worker=self.worker,
                          **fields)

    def end(self, kind: str, **fields: Any) -> None:
        """A run of a team's own task that ended without its side effect (``failed``,
        ``retried``, ``revoked``, ``cancelled``): recorded with the same task, execution and
        worker fields as ``started``, so the harness can pair them."""
        self._write(kind, **fields)

    def finish(self, idempotent: bool = False) -> None:
        """The side effect (guarded by an idempotency key when asked), then a crash if armed."""
        if idempotent and not _claim(self.ledger_dir, self.task_id):
            self._write("deduplicated")
            return
        self._write("completed")
        if _take_crash(self.ledger_dir):
            self._write("crashing")
            os._exit(70)


def perform(ledger: Any, ledger_dir: str, task_id: str, duration: float,
            idempotent: bool = False, **delivery: Any) -> None:
    """A whole synchronous execution."""
    run = Run(ledger, ledger_dir, task_id, **delivery)
    time.sleep(duration)
    run.finish(idempotent)
