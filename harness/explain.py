"""Plain-language lines for the report: for each anomaly a scenario shows, what happened and which
setting changes it. Pure: a scenario result in, sentences out.

The generic lines live here; what a backend's own mechanism did (kombu's Redis transport
restores unacknowledged messages after the visibility timeout; RabbitMQ requeues them the moment
the channel or connection they went out on closes; arq retries a job once its in-progress key
expires; BackgroundTasks live in the app's memory) is said by that backend's module
(harness/backends/), keyed on the result's knobs and fault kind.
"""

from __future__ import annotations

from harness.backend import Backend
from harness.backends import REGISTRY
from harness.result import ScenarioResult


def _backend(r: ScenarioResult) -> Backend | None:
    return REGISTRY.get(r.backend)


def _lost(r: ScenarioResult) -> str:
    """The backend says why, where its mechanism explains it: first for tasks that never
    started anywhere (on Redis, the BRPOP window), then for the rest."""
    b, c = _backend(r), r.counts
    unstarted = int(c.get("lost_unstarted", 0))
    started = c["lost"] - unstarted
    count = f"{unstarted} more" if started else str(unstarted)
    window = b.lost_unstarted(r, count) if b is not None and unstarted else None
    if window is None:
        return _lost_reason(b, r, c["lost"])
    return f"{_lost_reason(b, r, started)} {window}" if started else window


def _lost_reason(b: Backend | None, r: ScenarioResult, n: int) -> str:
    said = b.lost(r, n) if b is not None else None
    return said or (f"{n} lost: acknowledged by the producer, never completed, and no longer in "
                    "the broker.")


def _duplicated(r: ScenarioResult) -> str:
    c, b = r.counts, _backend(r)
    head = f"{c['duplicated']} duplicated ({c['extra_executions']} extra executions)"
    cause = (b.duplicate_cause(r) if b is not None else None) or (
        "a redelivery ran a task whose first run had already done its side effect")
    return (f"{head}: {cause}. An idempotency key checked before the side effect makes the "
            "repeat harmless.")


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def recovery_text(seconds: float) -> str:
    """Heal -> last redelivered completion, in words: negative when the backend had redelivered
    everything before the fault healed (RabbitMQ requeues at once; the heal waits for the
    supervisor to start the dead worker again)."""
    if seconds < 0:
        return f"{-seconds:g}s before the fault healed"
    return f"{seconds:g}s after healing"


def explain(r: ScenarioResult) -> list[str]:
    """One plain-language line per anomaly of a scenario result."""
    c = r.counts
    out: list[str] = []
    if c["lost"]:
        out.append(_lost(r))
    if c["duplicated"]:
        out.append(_duplicated(r))
    if c["re_executed"] > c["duplicated"]:
        b = _backend(r)
        again = b.retried() if b is not None else "delivered it again"
        out.append(f"{c['re_executed'] - c['duplicated']} re-executed without a duplicate "
                   f"effect: the first run died before its side effect (or an idempotency key "
                   f"stopped the second) and the backend {again}.")
    if c.get("deduplicated_runs"):
        out.append(f"{_runs(c['deduplicated_runs'])} found the idempotency key taken and skipped "
                   "the side effect.")
    fresh = c["redelivered"] - c["re_executed"]
    b = _backend(r)
    said = b.fresh_redeliveries(r, fresh) if b is not None and fresh > 0 else None
    if said:
        out.append(said)
    if c["stuck"]:
        where = "; ".join(f"{n} {loc}" for loc, n in r.stuck_locations.items())
        out.append(f"{c['stuck']} stuck at the drain deadline: {where}.")
    unmapped = r.unmapped_in_broker
    if unmapped and c["lost"]:
        out.append(f"{unmapped} messages were still delivered and unacknowledged on a "
                   f"consumer's channel at the deadline, fewer than the {c['lost']} tasks "
                   "unaccounted for; RabbitMQ's API does not list their task ids, so which of "
                   "them the broker still holds cannot be told, and all count as lost above.")
    # How late tasks were is the report's "delayed" column (against the no-fault control, so
    # the backlog every scenario has is not counted); here only when redelivery ended.
    if r.recovery_s is not None:
        out.append(f"The last redelivered task completed {recovery_text(r.recovery_s)}.")
    if c["indeterminate"] or c["failed"]:
        out.append(f"{c['indeterminate']} indeterminate and {c['failed']} failed submissions; "
                   f"{c['recovered']} of them completed anyway (recovered).")
    if c.get("crashed_runs"):
        out.append(f"{_runs(c['crashed_runs'])} crashed right after the side effect (the "
                   "injected fault).")
    if c["truncated_records"]:
        out.append(f"{c['truncated_records']} truncated ledger records (a writer killed "
                   "mid-write), counted, not dropped.")
    return out
