"""The ledger: an append-only record of submissions, executions and faults.

Why it looks like this:

* It must sit outside every fault's reach, so it is a directory on the host, bind-mounted into the
  containers that write to it. Killing a worker, the broker or a proxy cannot touch it.
* It must survive SIGKILL of any writer mid-write. Every writer *process* appends to a file of its
  own (the name carries host, pid and a random nonce, because a restarted container reuses pids),
  each record in a single ``write(2)`` on an ``O_APPEND`` descriptor. No two processes ever share
  a file, so a writer killed mid-record can only damage its own last line.
* A damaged record must be detected and counted, never silently dropped. Each line carries a
  CRC32 of its JSON body; a final line without its newline is *truncated*, any line whose checksum
  does not match is *corrupt*. The reader reports both.

This module is standard library only and lives in the agent package (``queue_chaos_agent``),
installed both in the harness's environment and, as one wheel, in every backend image: the
writer and the reader are one module, so the workers write exactly the format the harness reads.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUFFIX = ".ledger"


def encode(record: dict[str, Any]) -> bytes:
    """One record as one line: ``<crc32 hex> <json>\\n``."""
    body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode(line: bytes) -> dict[str, Any] | None:
    """The record in a complete line, or None when its checksum or JSON does not hold."""
    crc, _, body = line.partition(b" ")
    try:
        if len(crc) != 8 or int(crc, 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class LedgerWriter:
    """Appends records for the current process to its own file under ``directory``.

    Safe across ``fork``: a child that inherits the writer opens a file of its own on first use,
    because the file is chosen by the pid that writes.
    """

    def __init__(self, directory: str | os.PathLike[str], role: str) -> None:
        self.directory = Path(directory)
        self.role = role
        self._pid = -1
        self._fd = -1
        self._lock = threading.Lock()  # threads of one process share its file

    def _descriptor(self) -> int:
        pid = os.getpid()
        if pid != self._pid:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{self.role}-{socket.gethostname()}-{pid}-{uuid.uuid4().hex[:8]}{SUFFIX}"
            self._fd = os.open(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = pid
        return self._fd

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one record; it carries the host's monotonic and wall clocks.

        Containers share the host kernel's CLOCK_MONOTONIC, so ``t`` from a worker and from the
        harness are on one time line.
        """
        record: dict[str, Any] = {
            "kind": kind,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "t": time.monotonic(),
            "wall": time.time(),
            **fields,
        }
        data = encode(record)
        with self._lock:
            fd = self._descriptor()
            written = 0
            while written < len(data):  # a regular file takes it whole in practice; be exact
                written += os.write(fd, data[written:])
        return record


@dataclass
class LedgerContents:
    """Everything read back from a ledger directory, damaged records counted apart."""

    records: list[dict[str, Any]] = field(default_factory=list)
    truncated: int = 0
    corrupt: int = 0
    files: int = 0

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") in kinds]


def _wanted(record: dict[str, Any], task_prefix: str | None) -> bool:
    """A record of a task whose id starts with ``task_prefix``, or one of no task
    (``worker_ready``, faults). Judged on the decoded record, never on the line's bytes: a
    worker's ``worker_ready`` names a team's task inside its settings, which a byte search for
    ``"task":"`` would take for a record of another scenario."""
    task = record.get("task")
    return task_prefix is None or not isinstance(task, str) or task.startswith(task_prefix)


def parse_file(data: bytes, contents: LedgerContents, task_prefix: str | None = None) -> None:
    """Add one file's records to ``contents``: a last line with no newline counts as truncated.
    ``task_prefix``: keep only records of those tasks and untagged ones (``_wanted``): a run's
    ledger holds every scenario's records, and keeping them all to check one scenario cost the
    check tens of MB at 10,000 tasks. Damaged lines count whoever wrote them."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends in a newline
    if tail:
        contents.truncated += 1
    for line in lines:
        if not line:
            continue
        record = decode(line)
        if record is None:
            contents.corrupt += 1
        elif _wanted(record, task_prefix):
            contents.records.append(record)


def read_ledger(directories: Iterable[str | os.PathLike[str]],
                task_prefix: str | None = None) -> LedgerContents:
    """Read every ledger file below the given directories (only the records of tasks whose ids
    start with ``task_prefix``, and untagged ones, when given)."""
    contents = LedgerContents()
    for path in _ledger_files(directories):
        contents.files += 1
        parse_file(path.read_bytes(), contents, task_prefix)
    contents.records.sort(key=lambda r: (r.get("t", 0.0), r.get("kind", "")))
    return contents


def _ledger_files(directories: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    for directory in directories:
        base = Path(directory)
        if base.is_dir():
            yield from sorted(base.rglob(f"*{SUFFIX}"))
