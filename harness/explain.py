"""Plain-language lines for the report: for each anomaly a scenario shows, what happened and which
setting changes it. Pure: a scenario result in, sentences out.

The mechanisms named here are the backends' own, as their source and documentation describe
them (kombu's Redis transport restores unacknowledged messages after the visibility timeout;
RabbitMQ requeues them the moment the channel or connection they went out on closes; arq
retries a job once its in-progress key expires; BackgroundTasks live in the app's memory).
"""

from __future__ import annotations

from typing import Any

WORKER_DEATHS = ("sigkill-worker", "sigkill-pool-child", "sigterm-worker", "crash-after-effect")
LINK_FAULTS = ("cut-worker-broker", "blackhole-worker-broker", "latency-worker-broker")
BROKER_FAULTS = ("broker-sigkill", "broker-restart")
CELERY = ("celery-redis", "celery-rabbitmq")


def _lost(r: Any) -> str:
    """Loss of tasks a worker death caught before they started is told apart on Redis: there
    the message leaves the queue with BRPOP and only afterwards does kombu, in the worker,
    record it in the unacked hash (kombu/transport/redis.py ``_brpop_read`` then the virtual
    transport's consume callback), so a kill in between loses it whatever acks early or late
    says."""
    c, b, f = r.counts, r.backend, r.fault
    unstarted = int(c.get("lost_unstarted", 0))
    if not (b == "celery-redis" and f in WORKER_DEATHS and unstarted):
        return _lost_reason(r, c["lost"])
    window = (f"lost before their first start: Redis had handed them to {r.fault_target} (BRPOP "
              "takes a message off the queue) and the kill came before kombu recorded them in "
              "the unacked hash, so no visibility timeout could bring them back; acks late does "
              "not close this window (RabbitMQ, which tracks a delivery itself until it is "
              "acknowledged, has none).")
    started = c["lost"] - unstarted
    if not started:
        return f"{unstarted} {window}"
    return f"{_lost_reason(r, started)} {unstarted} more {window}"


def _lost_reason(r: Any, n: int) -> str:
    b, f, cfg = r.backend, r.fault, r.configuration
    head = f"{n} lost"
    if b == "fastapi" and f == "sigterm-worker":
        return (f"{head}: uvicorn waited out its graceful-shutdown timeout, then cancelled the "
                "background tasks still running; an `async def` task stops at its next await "
                "(a sync task's thread would have run on). A longer "
                "`--timeout-graceful-shutdown` than the longest task keeps them.")
    if b == "fastapi":
        return (f"{head}: BackgroundTasks live only in the app process's memory, so the tasks it "
                "had accepted but not finished died with it. A broker-backed queue keeps them.")
    if b == "celery-rabbitmq" and f in BROKER_FAULTS:
        if "confirms" in cfg:
            return (f"{head}: RabbitMQ had confirmed them (publisher confirms) and still did not "
                    "deliver them after its restart.")
        return (f"{head}: without publisher confirms the producer's publish returns once the "
                "message is written to the socket, before RabbitMQ has it on disk, so the kill "
                "took what the broker still held in memory (and publishes on connections it was "
                "dropping). `confirm_publish=True` makes the publish wait for the broker's ack.")
    if f in BROKER_FAULTS and "aof" not in cfg:
        return (f"{head}: Redis ran without persistence (appendonly no), so the messages it held "
                "(queued and unacknowledged) vanished with the process. `appendonly yes` keeps "
                "them; `appendfsync always` loses nothing acknowledged.")
    if f in BROKER_FAULTS:
        return (f"{head}: the broker lost messages it had accepted despite appendonly "
                "(the last second of writes with `appendfsync everysec`).")
    if b == "arq" and "max-tries-1" in cfg:
        return (f"{head}: arq would not run the job again after its first try died "
                "(max_tries=1). The default max_tries=5 retries it once the in-progress key "
                "expires.")
    if b in CELERY and "acks-early" in cfg and f in WORKER_DEATHS:
        return (f"{head}: they were running on {r.fault_target} when it died, and Celery had "
                "acknowledged them when they started (acks early), so nothing redelivered them. "
                "`task_acks_late=True` keeps them in the broker until they finish.")
    if b in CELERY and "no-reject" in cfg and f == "sigkill-pool-child":
        return (f"{head}: the pool child died mid-task and, without "
                "`task_reject_on_worker_lost`, Celery acknowledged the message as failed "
                "(WorkerLostError) instead of requeueing it. "
                "`task_reject_on_worker_lost=True` requeues it.")
    if b == "celery-redis" and f in ("sigstop-worker", *LINK_FAULTS):
        return (f"{head}: Redis had handed them to the stopped or cut-off worker (popped from "
                "the queue) without their ever reaching the unacked hash, so no visibility "
                "timeout could bring them back.")
    return f"{head}: acknowledged by the producer, never completed, and no longer in the broker."


def _duplicated(r: Any) -> str:
    c, b, f = r.counts, r.backend, r.fault
    vt = r.settings.get("visibility_timeout_s")
    head = f"{c['duplicated']} duplicated ({c['extra_executions']} extra executions)"
    if b == "arq":
        cause = ("arq ran the job again once its in-progress key expired, though the first run "
                 "had already done its side effect")
    elif f == "crash-after-effect":
        cause = ("the process died after the side effect but before Celery acknowledged the "
                 "task (acks late), so the task was delivered and run again")
    elif f == "sigstop-worker" and b == "celery-redis":
        cause = (f"while the worker was stopped, a live worker's sweep restored the messages it "
                 f"held unacknowledged (older than the visibility timeout, {vt}s) and ran them; "
                 "after SIGCONT the stopped worker ran its own copies too")
    elif b == "celery-rabbitmq" and f in BROKER_FAULTS:
        cause = ("the first run finished while the broker was down, so its acknowledgement went "
                 "nowhere; RabbitMQ had the message on disk, unacknowledged, and delivered it "
                 "again after its restart")
    elif b == "celery-rabbitmq":
        cause = ("RabbitMQ requeued the unacknowledged delivery at once when the worker's "
                 "channel or connection closed (no visibility timeout), and another worker ran "
                 "it while, or after, the first run did its side effect; the first run's "
                 "acknowledgement then went nowhere (its delivery tag belonged to the dead "
                 "channel)")
    elif f in LINK_FAULTS or f == "sigstop-worker":
        cause = ("the worker finished tasks while cut off from the broker, so their "
                 f"acknowledgements were lost; Redis restored them after the visibility timeout "
                 f"({vt}s) and another worker ran them again")
    else:
        cause = (f"a redelivery after the visibility timeout ({vt}s) ran a task whose first run "
                 "had already done its side effect")
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


def explain(r: Any) -> list[str]:
    """One plain-language line per anomaly of a scenario result."""
    c = r.counts
    out: list[str] = []
    if c["lost"]:
        out.append(_lost(r))
    if c["duplicated"]:
        out.append(_duplicated(r))
    if c["re_executed"] > c["duplicated"]:
        again = "retried it" if r.backend == "arq" else "delivered it again"
        out.append(f"{c['re_executed'] - c['duplicated']} re-executed without a duplicate "
                   f"effect: the first run died before its side effect (or an idempotency key "
                   f"stopped the second) and the backend {again}.")
    if c.get("deduplicated_runs"):
        out.append(f"{_runs(c['deduplicated_runs'])} found the idempotency key taken and skipped "
                   "the side effect.")
    fresh = c["redelivered"] - c["re_executed"]
    if fresh > 0 and r.backend == "celery-rabbitmq":
        out.append(
            f"{fresh} redelivered before their first start: RabbitMQ requeued them at once "
            "(prefetched by a worker that lost its connection or shut down, or recovered from "
            "disk after a broker restart, which marks them redelivered)."
        )
    if fresh > 0 and r.backend == "celery-redis" and r.fault == "sigterm-worker":
        out.append(
            f"{fresh} redelivered before their first start: the worker had prefetched them "
            "(reserved, unacknowledged) and gave them back to Redis at warm shutdown (kombu "
            "restores a channel's unacknowledged messages when it closes), so another worker "
            "ran them without waiting for the visibility timeout."
        )
    elif fresh > 0 and r.backend == "celery-redis":
        out.append(
            f"{fresh} redelivered before their first start: the worker had prefetched them "
            "(reserved, unacknowledged) when it lost them; Redis restored them only after the "
            f"visibility timeout ({r.settings.get('visibility_timeout_s')}s). A lower "
            "`worker_prefetch_multiplier` holds fewer such tasks."
        )
    if c["stuck"]:
        where = "; ".join(f"{n} {loc}" for loc, n in r.stuck_locations.items())
        out.append(f"{c['stuck']} stuck at the drain deadline: {where}.")
    unmapped = getattr(r, "unmapped_in_broker", 0)
    if unmapped and c["lost"]:
        out.append(f"{unmapped} messages were still delivered and unacknowledged on a "
                   f"consumer's channel at the deadline, fewer than the {c['lost']} tasks "
                   "unaccounted for; RabbitMQ's API does not list their task ids, so which of "
                   "them the broker still holds cannot be told, and all count as lost above.")
    if c["late"]:
        recovery = "" if r.recovery_s is None else (
            f"; the last redelivered task completed {recovery_text(r.recovery_s)}")
        out.append(f"{c['late']} late: completed more than {r.settings.get('late_after_s')}s "
                   f"after the fault healed{recovery}.")
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
