"""Worlds side by side: one run's scenarios split over N isolated worlds on this machine.

A scenario's tasks are mostly sleeps, so the cores sit idle most of a scenario: several worlds
at once use the machine without changing what each measures. Each world is a shard of the run
(harness/shard.py) in its own pytest process, with its own run id (so its own containers,
network, labels and ledger directories), its own published ports (the defaults moved up by 100
per world) and the run's one seed; the parent merges their reports into one. The worlds build
images one at a time (``images.provision`` holds a lock): the first builds, the others find them.

Stopping the parent (Ctrl-C, SIGTERM) stops every world the same way, so each removes what it
started; a world that does not stop in time is killed and its objects are reaped by owner.

Each world prints its own progress lines (harness/progress.py), which reach the terminal
prefixed ``[world k]``; the parent reads them as they pass and, whenever a world finishes a
scenario, adds one line across all worlds: how many are done of how many, and the time left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from harness.progress import Overall
from harness.world import Ports

PORT_STEP = 100  # world k publishes every port at its default + (k - 1) * PORT_STEP
MAX_WORLDS = 8
STOP_GRACE_S = 90.0  # a world tearing down removes its containers one by one


def auto_worlds(cpus: int | None = None, memory_gib: float | None = None) -> int:
    """How many worlds this machine holds: two per core (a world is mostly idle), at most one
    per 2 GiB of memory (a RabbitMQ world peaks near 1 GiB), between 1 and 4."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    if memory_gib is None:
        try:
            memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        except (ValueError, OSError):
            memory_gib = 2.0
    return max(1, min(4, 2 * cpus, int(memory_gib // 2)))


def parse_worlds(text: str) -> int:
    """``--worlds``: a count 1..8, or ``auto`` (what this machine holds)."""
    if text == "auto":
        return auto_worlds()
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORLDS:
        raise ValueError(f"--worlds {text!r}: expected auto or a count 1..{MAX_WORLDS}")
    return int(text)


def world_ports(index: int, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """World ``index``'s (1-based) ``CHAOS_*_PORT`` variables: the run's ports moved up."""
    return Ports.from_env(env).moved((index - 1) * PORT_STEP).variables()


def xdist_offset(worker: str | None) -> int:
    """How far a pytest-xdist worker's world moves its ports: worker gwN runs its own world,
    side by side with the others, clear of the offsets worlds and test children use (+100 to
    +800). ``worker`` is the worker's id from its own configuration (None: not a worker), never
    from the environment, which the worker's child processes inherit."""
    if worker and worker.startswith("gw") and worker[2:].isdigit():
        return (10 + int(worker[2:])) * PORT_STEP
    return 0


def world_run_id(run_id: str, index: int) -> str:
    """World ``index``'s run id: the run's, marked with its world."""
    return f"{run_id}-w{index}"


def run_of(world_run: str) -> str:
    """The run a world's run id belongs to (a run id of no world: itself)."""
    return world_run.rsplit("-w", 1)[0]


class _Tally:
    """The worlds' progress as their output passes (harness/progress.py ``Overall``), shared by
    the threads that forward it."""

    def __init__(self, worlds: int) -> None:
        self.overall = Overall(worlds)
        self.lock = threading.Lock()

    def read(self, world: int, line: str) -> None:
        """Print the line across all worlds when ``line`` says world ``world`` finished a
        scenario."""
        with self.lock:
            said = self.overall.update(world, line, time.monotonic())
            if said is not None:
                sys.stdout.write(f"{said}\n")
                sys.stdout.flush()


def _forward(stream: IO[str], world: int, log: IO[str], tally: _Tally) -> None:
    """A world's output, line by line, to the terminal (prefixed) and to its log file; its
    progress lines are also counted across the worlds."""
    for line in stream:
        log.write(line)
        log.flush()
        sys.stdout.write(f"[world {world}] {line}")
        sys.stdout.flush()
        tally.read(world, line)


def run_worlds(count: int, command: Sequence[str], base: Path, run_id: str,
               options: Sequence[str]) -> list[tuple[int, Path]]:
    """Run shard k of ``count`` in world k, all at once; returns each world's exit code and the
    directory its report went to."""
    base.mkdir(parents=True, exist_ok=True)
    worlds: list[tuple[subprocess.Popen[str], threading.Thread, Path, IO[str]]] = []
    tally = _Tally(count)
    try:
        for k in range(1, count + 1):
            out = base / f"world-{k}"
            log = (base / f"world-{k}.log").open("w")
            child = subprocess.Popen(
                [*command, *options, f"--shard={k}/{count}", f"--run-id={world_run_id(run_id, k)}",
                 f"--report-dir={out}"],
                env={**os.environ, **world_ports(k)}, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, start_new_session=True)
            assert child.stdout is not None
            reader = threading.Thread(target=_forward, args=(child.stdout, k, log, tally),
                                      daemon=True)
            reader.start()
            worlds.append((child, reader, out, log))
        for child, reader, _, _ in worlds:
            child.wait()
            reader.join(timeout=10)
    except BaseException:
        _stop([w[0] for w in worlds])
        raise
    finally:
        for *_, opened in worlds:
            opened.close()
    return [(child.returncode, out) for child, _, out, _ in worlds]


def _stop(children: list[subprocess.Popen[str]]) -> None:
    """SIGTERM each world (it unwinds and removes its containers), SIGKILL what outlives the
    grace period."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)
