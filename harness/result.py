"""The result model: what one scenario measured, and a whole run's report as read back.

No Docker, no broker client, no clock: the report, the gate, stability and compare all read
results through these types, whether they were just measured or loaded from an earlier run's
``durability.json``. A report written by an older harness loads too: fields it lacks take their
defaults, fields this harness no longer knows are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.checker import Counts, Guarantee, Verdict
from harness.paths import relative, resolve

__all__ = ["Counts", "Guarantee", "Provenance", "ReportError", "RunReport", "ScenarioResult",
           "Verdict", "attempt_prefix", "measured_with"]

# The JSON report's schema version: 2 adds knobs, fault_kind, must_lose, effective and versions;
# 3 adds servers, the run's provenance, and ledger_dir relative to the work directory (a report
# without "schema" is 1).
SCHEMA = 3


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
    # The servers' versions, read from the running services' own APIs (redis-server,
    # rabbitmq-server and Erlang, Toxiproxy), not assumed from an image tag.
    servers: dict[str, str] = field(default_factory=dict)
    # A control's cost phase without faults (harness/cost.py): backlog throughput and latency at
    # a steady load, each figure checked against the ledger (every cost task completed exactly
    # once) or None with the reason; empty for a scenario with a fault, or with the phase off.
    cost: dict[str, Any] = field(default_factory=dict)
    # Submission to first completion, seconds (3 decimals), sorted, of every task that completed
    # at least once: harness/latency.py sets them against the configuration's no-fault control.
    latencies_s: list[float] = field(default_factory=list)
    # Which trial of the run this is (``--trials N``, harness/trials.py: trial k ran with seed
    # + k - 1); a report of N trials holds each scenario N times, 1 without trials.
    trial: int = 1
    # A fault's failover figures (harness/failover.py, from the ledger): the longest stretch
    # with no submission acknowledged and with waiting work but no execution started, the
    # submissions not acknowledged after the fault, and the lost tasks acknowledged before or
    # during it. Empty for a control, and in a report written before it was measured.
    failover: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """This result's own name in a report of several trials (what its picture is keyed
        by): the scenario id for trial 1, ``<scenario>~trial-<k>`` for trial k, as
        ``attempt_prefix`` names attempts."""
        return self.scenario if self.trial <= 1 else f"{self.scenario}~trial-{self.trial}"

    @property
    def violated(self) -> bool:
        return self.verdict in (Verdict.VIOLATED, Verdict.INVALID)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: ``ledger_dir`` relative to the work directory, so no report (nor a
        scenario's result.json) names a machine's absolute paths; in memory it stays a path on
        this machine, which is what readers of a fresh result open."""
        return {**asdict(self), "ledger_dir": relative(self.ledger_dir)}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioResult:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if isinstance(values.get("ledger_dir"), str):
            values["ledger_dir"] = resolve(values["ledger_dir"])
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> ScenarioResult:
        return cls.from_dict(json.loads(path.read_text()))


@dataclass
class Provenance:
    """What a run as a whole was measured with, beside what each scenario carries (its
    libraries' and servers' versions): the harness's own version, how its images were
    provisioned (``CHAOS_IMAGES``: local or registry) and each image its containers ran, by the
    compose variable that chose it, its tag, and its id. A tag names inputs (or a registry's
    moving name); the id names the bytes that ran."""

    harness: str = ""
    image_mode: str = ""
    images: list[dict[str, str]] = field(default_factory=list)  # {variable, tag, id}, sorted
    # The broker releases it ran (``--brokers``, harness/brokerversions.py), by name; empty
    # for each broker's default release.
    brokers: str = ""

    @classmethod
    def from_dict(cls, data: Any) -> Provenance:
        if not isinstance(data, dict):
            return cls()
        return cls(harness=str(data.get("harness", "")),
                   image_mode=str(data.get("image_mode", "")),
                   images=[{str(k): str(v) for k, v in image.items()}
                           for image in data.get("images") or [] if isinstance(image, dict)],
                   brokers=str(data.get("brokers", "")))

    @classmethod
    def merged(cls, parts: Iterable[Provenance]) -> Provenance:
        """The shards' provenance as one run's. Values that differ between shards are all kept
        (joined), never one chosen: a merge must not hide that its shards ran different
        harnesses, or different bytes under one tag (runners that each built their images)."""
        parts = list(parts)
        images = {(i.get("variable", ""), i.get("tag", ""), i.get("id", "")): i
                  for p in parts for i in p.images}
        return cls(harness=_joined(p.harness for p in parts),
                   image_mode=_joined(p.image_mode for p in parts),
                   images=[images[k] for k in sorted(images)],
                   brokers=_joined(p.brokers for p in parts))


def _joined(values: Iterable[str]) -> str:
    """The distinct non-empty values in first-seen order, ' / '-joined (normally just one)."""
    return " / ".join(dict.fromkeys(v for v in values if v))


def attempt_prefix(scenario: str, attempt: int) -> str:
    """The prefix of an attempt's task ids (``<prefix>.<n>``): the scenario's name, and for a
    re-run attempt ``<scenario>~attempt-N``, so no two attempts share a task id. Here, in the
    result model, because what reads a result back (timelines, the bench) needs it too."""
    return scenario if attempt <= 1 else f"{scenario}~attempt-{attempt}"


def measured_with(scenarios: Iterable[ScenarioResult]) -> dict[str, dict[str, dict[str, str]]]:
    """Per backend, in run order: the library versions its workers reported (``libraries``) and
    the server versions read from its services (``servers``), names in the order first seen
    (a broker's own before Toxiproxy). Each name has every value its scenarios saw, ' / '-joined
    when they differ (a team's image beside the built-in one)."""
    seen: dict[str, dict[str, dict[str, list[str]]]] = {}
    for s in scenarios:
        backend = seen.setdefault(s.backend, {"libraries": {}, "servers": {}})
        for part, versions in (("libraries", s.versions), ("servers", s.servers)):
            for name, version in versions.items():
                backend[part].setdefault(name, []).append(str(version))
    return {b: {part: {name: _joined(values) for name, values in found.items()}
                for part, found in parts.items()}
            for b, parts in seen.items()}


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
    provenance: Provenance = field(default_factory=Provenance)

    @property
    def measured_with(self) -> dict[str, dict[str, dict[str, str]]]:
        """Per backend, the library and server versions its scenarios ran (``measured_with``);
        derived from the scenarios, so a report of any schema has it as far as they carry it."""
        return measured_with(self.scenarios)

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
            provenance=Provenance.from_dict(data.get("provenance")),
        )

    @classmethod
    def load(cls, path: Path) -> RunReport:
        if not path.is_file():
            raise ReportError(f"{path} does not exist: run `make durability` first")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ReportError(f"{path}: {exc}") from None
