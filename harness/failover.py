"""Failover, measured from the ledger: how long a cluster fault stopped work getting in and
getting run, and which acknowledged tasks it lost.

A broker node killed, partitioned, paused or restarted in a cluster (RabbitMQ, Redis Sentinel)
should cost an outage, not work. The checker already counts the work lost; this module measures
the outage, from the same records, on the same clock: every record's ``t`` is CLOCK_MONOTONIC of
the one host kernel (the workload on the host, the agents in containers), as ``world.clock()``
reads it, so ``fired_t`` and ``healed_t`` compare with them directly.

The records it reads (one scenario's, as ``observe.of_scenario`` selects them):

* ``submission`` (harness/workload.py): ``task``, ``outcome`` (ok / failed / indeterminate),
  ``t`` when the producer's answer came back, ``t_sent`` when the request went out;
* ``started`` (agent/queue_chaos_agent/taskbody.py): ``task``, ``t``, ``worker``: one per
  execution, re-executions included;
* a cluster fault's own records (harness/clusterfaults.py): the leader the cluster named once
  the fault was in, and how long the cluster took to be whole again after the heal.

Pure functions of their inputs, like the checker, so every edge is a unit test.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

# The records a cluster fault writes (harness/clusterfaults.py), by kind.
LEADER_CHANGED = "leader_changed"
TARGET_DOWN = "target_down"
SETTLED = "cluster_settled"
UNSETTLED = "cluster_unsettled"


def measure(records: list[dict[str, Any]], fired_t: float | None, healed_t: float | None,
            lost: Iterable[str]) -> dict[str, Any]:
    """One scenario's failover figures; empty for a control (``fired_t`` None: nothing failed
    over). ``lost``: the checker's lost task ids (``Outcome.LOST``).

    * ``submit_outage_s``, ``submit_failed``: ``submit_outage``.
    * ``consume_outage_s``: ``consume_outage``.
    * ``acked_before_lost``: lost tasks whose submission was acknowledged before the fault
      fired, the loss Jepsen calls an acknowledged write lost after failover: no client retry
      can help, the client was told it was safe. ``acked_during_lost``: those acknowledged
      between firing and healing (``healed_t`` None: any time after firing), the writes a
      failing-over cluster accepted and then dropped.

    Seconds rounded to 2 decimals; None where the window held nothing to measure.
    """
    if fired_t is None:
        return {}
    submitted = _submissions(records)
    outage, failed = submit_outage(submitted, fired_t)
    acked = {task: t for task, (outcome, t) in submitted.items() if outcome == "ok"}
    lost = set(lost)
    before = sorted(task for task in lost if task in acked and acked[task] < fired_t)
    during = sorted(task for task in lost if task in acked
                    and fired_t <= acked[task] and (healed_t is None or acked[task] <= healed_t))
    consume = consume_outage(acked, _first_starts(records), _starts(records), fired_t)
    return {
        "submit_outage_s": _rounded(outage),
        "submit_failed": failed,
        "consume_outage_s": _rounded(consume),
        "acked_before_lost": before,
        "acked_during_lost": during,
        **cluster_view(records, fired_t),
    }


def cluster_view(records: list[dict[str, Any]], fired_t: float) -> dict[str, Any]:
    """What the cluster itself said after the fault (harness/clusterfaults.py's records):

    * ``down_s``: how long after the fault the rest of the cluster counted the target out
      (None: it never did while the fault lasted);
    * ``new_leader``, ``elected_s``: the first node other than the target that the cluster
      named leader of the task queue, and how long after the fault (None: none was named
      while the fault lasted, e.g. a classic queue, which never moves);
    * ``settled_s``: the longest wait, after a heal (each node of a rolling restart), until
      the cluster said it was whole again; ``unsettled``: heals after which it never did
      within the bound.
    """
    after = [r for r in records if float(r.get("t", 0.0)) >= fired_t]
    changed = next((r for r in after if r.get("kind") == LEADER_CHANGED), None)
    down = next((r for r in after if r.get("kind") == TARGET_DOWN), None)
    settled = [float(r["settled_s"]) for r in after if r.get("kind") == SETTLED]
    return {
        "down_s": _rounded(float(down["after_s"])) if down else None,
        "new_leader": changed.get("new") if changed else None,
        "elected_s": _rounded(float(changed["after_s"])) if changed else None,
        "settled_s": _rounded(max(settled)) if settled else None,
        "unsettled": sum(1 for r in after if r.get("kind") == UNSETTLED),
    }


def submit_outage(submitted: dict[str, tuple[str, float]],
                  fired_t: float) -> tuple[float | None, int]:
    """The longest time after ``fired_t`` in which the producer acknowledged nothing, and how
    many submissions answered after ``fired_t`` were not acknowledged (failed or
    indeterminate).

    The window runs from ``fired_t`` to the last submission's answer (whatever it said): past
    it the workload has stopped submitting, and silence is not an outage. Within it, the gaps
    between consecutive ok answers, the first measured from ``fired_t`` (the outage began with
    the fault, not with the last ok before it) and the last up to the window's end (submissions
    still failing when the workload stopped). Answers (``t``), not requests: an ok is when the
    producer said the task was enqueued. The workload's own pace is the floor (a gap of
    1 / submit rate is no outage); the no-fault control's figure, were it measured, would be
    that floor. None when no submission was answered after ``fired_t``.
    """
    end = max((t for _, t in submitted.values()), default=None)
    if end is None or end <= fired_t:
        return None, 0
    oks = sorted(t for outcome, t in submitted.values() if outcome == "ok" and fired_t < t)
    failed = sum(1 for outcome, t in submitted.values() if outcome != "ok" and t >= fired_t)
    return _longest_gap([fired_t, *oks, end]), failed


def consume_outage(acked: dict[str, float], first_start: dict[str, float],
                   starts: list[float], fired_t: float) -> float | None:
    """The longest time after ``fired_t`` in which work was waiting and no worker started any.

    A task *waits* from its acknowledgement (its submission's ok answer: from then on the
    queue owes it a run) to its first start; a task that started before its answer came back
    never waited. Tasks that never started are left out: they are lost or stuck, which the
    checker counts, and counting them here would read a loss as an outage lasting until the
    drain gave up.

    The outage is measured between consecutive execution starts (any worker, re-executions
    included: a start is the consumer side working), the first gap from ``fired_t``. Within
    one gap nothing starts, so nothing stops waiting: the gap is an outage from the moment the
    first task that was still waiting at its end began waiting (or the gap's start, if that
    task waited already), and no outage at all if none was. An idle queue is therefore never an
    outage, and a backlog is one only while nothing starts.

    Workers busy with long tasks also start nothing while others wait: with every slot taken,
    a gap lasts until the first running task ends, no failover needed. The figure is a bound
    on the failover's cost, read beside the task durations (or a control's figure), not a
    clean separation of the two. None when no task started after ``fired_t``.
    """
    after = sorted(t for t in starts if t > fired_t)
    if not after:
        return None
    # One sweep over the gaps in time order. ``waiting``: a heap of (acknowledged, first
    # started) of the tasks acknowledged so far, earliest acknowledgement on top; a task whose
    # first start has passed waits no more at any later gap, so it is dropped for good.
    pending = sorted((t, first_start[task]) for task, t in acked.items() if task in first_start)
    waiting: list[tuple[float, float]] = []
    taken = 0
    longest = 0.0
    for a, b in pairwise([fired_t, *after]):
        while taken < len(pending) and pending[taken][0] < b:
            heapq.heappush(waiting, pending[taken])
            taken += 1
        while waiting and waiting[0][1] < b:
            heapq.heappop(waiting)
        if waiting:
            longest = max(longest, b - max(a, waiting[0][0]))
    return longest


def _submissions(records: list[dict[str, Any]]) -> dict[str, tuple[str, float]]:
    """Each task's submission: (outcome, when the producer's answer came back)."""
    return {r["task"]: (str(r.get("outcome")), float(r["t"])) for r in records
            if r.get("kind") == "submission" and isinstance(r.get("task"), str)}


def _starts(records: list[dict[str, Any]]) -> list[float]:
    return [float(r["t"]) for r in records
            if r.get("kind") == "started" and isinstance(r.get("task"), str)]


def _first_starts(records: list[dict[str, Any]]) -> dict[str, float]:
    first: dict[str, float] = {}
    for r in records:
        task = r.get("task")
        if r.get("kind") == "started" and isinstance(task, str):
            first[task] = min(first.get(task, float(r["t"])), float(r["t"]))
    return first


def _longest_gap(times: list[float]) -> float:
    return max((b - a for a, b in pairwise(times)), default=0.0)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)
