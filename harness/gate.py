"""The CI gate: read a durability report and fail when the chosen configurations break what they
claim, or when the run could not prove it measures.

    python -m harness gate --report reports/durability.json --configs acks-late-prefetch-1
"""

from __future__ import annotations

from pathlib import Path

from harness.result import ReportError, RunReport


def gate(report: RunReport, configs: list[str] | None = None,
         faults: list[str] | None = None) -> tuple[bool, list[str]]:
    """(passes, reasons): invalid measurement, and every violated or invalid chosen scenario."""
    reasons: list[str] = []
    if not report.measurement_valid:
        reasons.append("the run's self-proof failed: its numbers are not a measurement")
    chosen = [s for s in report.scenarios
              if (not configs or s.configuration in configs)
              and (not faults or s.fault in faults)]
    if (configs or faults) and not chosen:
        reasons.append(f"the report has no scenario of configurations {configs} / faults {faults}")
    present = {s.configuration for s in chosen}
    for name in configs or []:
        if chosen and name not in present:
            reasons.append(f"configuration {name} is not in the report (misspelt, or never ran)")
    for s in chosen:
        if not s.valid:
            reasons.append(f"{s.scenario}: invalid ({s.validity})")
        elif s.violated:
            reasons.append(f"{s.scenario}: {s.verdict}: {s.reason}")
    return not reasons, reasons


def gate_file(path: Path, configs: list[str] | None, faults: list[str] | None) -> int:
    try:
        report = RunReport.load(path)
    except ReportError as exc:
        print(f"error: {exc}")
        return 2
    passes, reasons = gate(report, configs, faults)
    for reason in reasons:
        print(f"FAIL {reason}")
    print("gate: pass" if passes else f"gate: fail ({len(reasons)} reasons)")
    return 0 if passes else 1
