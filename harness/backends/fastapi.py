"""FastAPI BackgroundTasks: no broker; the app runs its tasks in its own process after it has
answered. Its forensics, what uvicorn does with tasks in flight, and the built-in configurations.

Every configuration runs 2-4 s tasks: with the default 0.6-1.4 s every task in flight at SIGTERM
ends within a second, and a 1 s graceful timeout never bites. The task style matters to that
timeout: uvicorn cancels asyncio tasks, which stops an ``async def`` task at its next await but
cannot stop a sync task's threadpool thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from harness.backend import Backend, Capability, Configuration, Knobs
from harness.checker import Guarantee

if TYPE_CHECKING:
    from harness.brokers import Broker
    from harness.result import ScenarioResult

NAME = "fastapi"
STYLES = ("sync", "async")


@dataclass(frozen=True)
class FastAPIKnobs(Knobs):
    graceful_shutdown_s: int = 10
    task_style: str = "sync"
    idempotent: bool = False

    def __post_init__(self) -> None:
        if self.task_style not in STYLES:
            raise ValueError(f"task_style={self.task_style!r}; valid: {', '.join(STYLES)}")


class InProcessForensics:
    """FastAPI BackgroundTasks: no broker. Tasks not yet run live only in the app's memory, which
    the app lists on GET /pending; a dead app holds nothing."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def reset(self, idle: bool = False) -> None:
        return None

    def _pending(self) -> list[str] | None:
        try:
            response = requests.get(f"{self.url}/pending", timeout=5)
        except requests.RequestException:
            return None  # the app is down: it holds nothing
        return [str(t) for t in response.json().get("pending", [])]

    def empty(self) -> bool:
        return not self._pending()

    def holdings(self, settings: Any) -> dict[str, str]:
        return {t: "accepted by the app, not yet run (in its memory only)"
                for t in self._pending() or []}

    def account(self, lost: list[str]) -> tuple[dict[str, str], int]:
        return {}, 0

    def server_versions(self) -> dict[str, str]:
        return {}  # no broker: uvicorn and starlette are the app's libraries, reported by it

    def close(self) -> None:
        return None



class FastAPI(Backend):
    name = NAME
    title = "FastAPI BackgroundTasks"
    kind = "fastapi"
    broker = None
    image = "fastapi"
    knobs_class = FastAPIKnobs
    libraries = ("fastapi", "starlette", "uvicorn")  # BackgroundTasks is starlette's; uvicorn
    # decides what a shutdown does to them
    capabilities = frozenset({Capability.IN_PROCESS})

    def forensics(self, port: int, queue: str | None = None,
                  nodes: Mapping[str, int] | None = None) -> Broker:
        return InProcessForensics(port)

    def guarantee(self, knobs: Any) -> Guarantee:
        return Guarantee.AT_MOST_ONCE  # fire and forget, in the app's own memory

    def read_knobs(self, effective: Mapping[str, Any], idempotent: bool) -> dict[str, Any]:
        timeout = effective.get("timeout_graceful_shutdown")
        return {"task_style": str(effective["task_style"]), "idempotent": idempotent,
                **({} if timeout is None else {"graceful_shutdown_s": int(timeout)})}

    def describe(self, knobs: Any) -> str:
        style = ("async def task, on the event loop" if knobs.task_style == "async"
                 else "sync task, run in the threadpool")
        return (f"BackgroundTasks ({style}), uvicorn --timeout-graceful-shutdown "
                f"{knobs.graceful_shutdown_s}")

    def note(self, settings: Any) -> str:
        return "No broker: the app runs its tasks in its own process after responding."

    def lost(self, r: ScenarioResult, n: int) -> str | None:
        if r.fault == "sigterm-worker":
            return (f"{n} lost: uvicorn waited out its graceful-shutdown timeout, then cancelled "
                    "the background tasks still running; an `async def` task stops at its next "
                    "await (a sync task's thread would have run on). A longer "
                    "`--timeout-graceful-shutdown` than the longest task keeps them.")
        return (f"{n} lost: BackgroundTasks live only in the app process's memory, so the tasks "
                "it had accepted but not finished died with it. A broker-backed queue keeps them.")


TASKS_2_TO_4_S = (("task_min_s", "2"), ("task_max_s", "4"))


def _c(name: str, knobs: FastAPIKnobs, meets: tuple[str, ...], note: str = "") -> Configuration:
    return Configuration(NAME, name, knobs, meets, TASKS_2_TO_4_S, note)


SHORTER = "shorter than the tasks in flight"
FastAPI.configurations = (
    _c("fastapi-graceful-10", FastAPIKnobs(), ("sigkill-worker", "sigterm-worker",
                                               "crash-after-effect")),
    _c("fastapi-graceful-1", FastAPIKnobs(graceful_shutdown_s=1), ("sigterm-worker",), SHORTER),
    _c("fastapi-async-graceful-10", FastAPIKnobs(task_style="async"), ("sigterm-worker",)),
    _c("fastapi-async-graceful-1", FastAPIKnobs(graceful_shutdown_s=1, task_style="async"),
       ("sigterm-worker",), SHORTER),
)
BACKEND = FastAPI()
