"""The workload: uniquely tagged tasks submitted through the producer app's HTTP endpoint.

Each submission's outcome is recorded in the ledger the way Jepsen records an operation:
``ok`` (the producer said it enqueued), ``failed`` (definitely not enqueued: the request never
reached the producer, or was refused before publishing) or ``indeterminate`` (anything else: a
timeout, a reset mid-call, a publish that raised).
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from queue_chaos_agent.ledger import LedgerWriter

CONNECT_TIMEOUT_S = 2.0
RESPONSE_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class TaskPlan:
    task: str
    duration: float
    at: float  # seconds after the workload starts


def plan_tasks(
    prefix: str, count: int, rate: float, min_s: float, max_s: float, rng: random.Random
) -> list[TaskPlan]:
    """Task ids ``<prefix>.<n>``, durations drawn from the scenario's seeded generator."""
    return [
        TaskPlan(f"{prefix}.{n:05d}", round(rng.uniform(min_s, max_s), 3), n / rate)
        for n in range(count)
    ]


def submit(url: str, plan: TaskPlan, session: requests.Session | None = None) -> tuple[str, str]:
    """One submission; returns (outcome, detail)."""
    try:
        response = (session or requests).post(
            f"{url}/tasks",
            json={"task_id": plan.task, "duration": plan.duration},
            timeout=(CONNECT_TIMEOUT_S, RESPONSE_TIMEOUT_S),
        )
    except requests.exceptions.ConnectTimeout as exc:
        return "failed", f"connect timeout: {exc}"
    except requests.exceptions.ConnectionError as exc:
        # Refused before the request was sent: nothing was published. A reset after sending
        # surfaces as ConnectionError too, but with a response-side cause: call it indeterminate.
        text = str(exc)
        if "Connection refused" in text or "NewConnectionError" in text:
            return "failed", text[:300]
        return "indeterminate", text[:300]
    except requests.RequestException as exc:
        return "indeterminate", repr(exc)[:300]
    if response.status_code == 200:
        return "ok", ""
    if 400 <= response.status_code < 500:
        return "failed", f"HTTP {response.status_code}: {response.text[:200]}"
    return "indeterminate", f"HTTP {response.status_code}: {response.text[:200]}"


class Workload:
    """Submits a plan at its rate on background threads, recording every outcome."""

    def __init__(self, url: str, plans: list[TaskPlan], ledger: LedgerWriter) -> None:
        self.url = url
        self.plans = plans
        self.ledger = ledger
        self._thread = threading.Thread(target=self._run, name="workload", daemon=True)
        self._stop = threading.Event()
        # One HTTP session per submitting thread: a kept-alive connection instead of a TCP
        # handshake (and its CPU, in this process) per task. The link faulted is the producer's
        # to its broker, never this one.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []

    def _one(self, plan: TaskPlan) -> None:
        sent = time.monotonic()
        if not hasattr(self._local, "session"):
            session = requests.Session()
            # Plain HTTP to 127.0.0.1: no proxy, netrc or CA bundle to look up on every request
            # (requests does, from the environment and the disk, unless told not to).
            session.trust_env = False
            session.verify = False
            self._local.session = session
            self._sessions.append(session)
        outcome, detail = submit(self.url, plan, self._local.session)
        self.ledger.write(
            "submission", task=plan.task, outcome=outcome, detail=detail, t_sent=sent,
            duration=plan.duration,
        )

    def _run(self) -> None:
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="submit") as pool:
            for plan in self.plans:
                if self._stop.wait(max(0.0, start + plan.at - time.monotonic())):
                    break
                pool.submit(self._one, plan)
        for session in self._sessions:  # every submission has returned: the pool is shut down
            session.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        """True when every submission has an outcome within the bound."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()
