"""The result model: what one scenario measured, and a whole run's report as read back.

No Docker, no broker client, no clock: the report, the gate, stability and compare all read
results through these types, whether they were just measured or loaded from an earlier run's
``durability.json``. A report written by an older harness loads too: fields it lacks take their
defaults, fields this harness no longer knows are ignored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.checker import Counts, Guarantee, Verdict

__all__ = ["Counts", "Guarantee", "ReportError", "RunReport", "ScenarioResult", "Verdict"]

SCHEMA = 2  # the JSON report's schema version: 2 adds knobs, fault_kind, must_lose, effective
# and versions


class ReportError(ValueError):
    """A report file that is missing or is not a durability report."""


@dataclass
class ScenarioResult:
    scenario: str
    backend: str
    configuration: str
    configuration_summary: str
    guarantee: str
    fault: str
    fault_description: str
    seed: int
    valid: bool
    validity: str
    verdict: str
    reason: str
    counts: dict[str, int]
    recovery_s: float | None
    stuck_locations: dict[str, int]
    fault_target: str | None = None
    in_flight_at_fault: list[str] = field(default_factory=list)
    fault_at_s: float | None = None  # seconds after the workload started
    healed_at_s: float | None = None
    drained: bool = True
    phase_s: dict[str, float] = field(default_factory=dict)
    anomalies: dict[str, list[str]] = field(default_factory=dict)
    ledger_dir: str = ""
    replay: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    attempt: int = 1  # the first valid attempt (invalid ones are re-run, never reported)
    revived: list[str] = field(default_factory=list)  # workers started again after the fault
    # Messages the broker held at the deadline without saying which task (RabbitMQ's unacked
    # deliveries): their tasks cannot be told stuck, and count as lost.
    unmapped_in_broker: int = 0
    # The configuration's typed fields (acks_late, prefetch_multiplier, max_tries, ...): what the
    # explanations and the self-proof key on, never the configuration's name.
    knobs: dict[str, Any] = field(default_factory=dict)
    # The fault's kind (worker-death, stall, link, broker, producer-link, none).
    fault_kind: str = ""
    # The backend's own mechanism makes loss certain here (Celery acks early under a worker
    # kill with tasks in flight): the self-proof requires the run to see it.
    must_lose: bool = False
    # What the workers reported running (their worker_ready records): the durability-relevant
    # settings read from the running app, and the library versions installed.
    effective: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def violated(self) -> bool:
        return self.verdict in (Verdict.VIOLATED, Verdict.INVALID)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def load(cls, path: Path) -> ScenarioResult:
        return cls.from_dict(json.loads(path.read_text()))


@dataclass
class RunReport:
    """A run's ``durability.json`` as the gate, stability and compare read it."""

    measurement_valid: bool
    scenarios: list[ScenarioResult]
    self_proof: list[str] = field(default_factory=list)
    seed: int | None = None
    run_id: str = ""
    date: str = ""
    replay: str = ""
    schema: int = 1
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
            raise ReportError("not a durability report: no list of scenarios")
        return cls(
            measurement_valid=data.get("measurement_valid") is True,
            scenarios=[ScenarioResult.from_dict(s) for s in data["scenarios"]],
            self_proof=list(data.get("self_proof", [])),
            seed=data.get("seed"),
            run_id=str(data.get("run_id", "")),
            date=str(data.get("date", "")),
            replay=str(data.get("replay", "")),
            schema=int(data.get("schema", 1)),
            timings={str(k): float(v) for k, v in (data.get("timings") or {}).items()},
        )

    @classmethod
    def load(cls, path: Path) -> RunReport:
        if not path.is_file():
            raise ReportError(f"{path} does not exist: run `make durability` first")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ReportError(f"{path}: {exc}") from None
