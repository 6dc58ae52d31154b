"""Commands: ``images`` builds (or finds) every image; ``reap`` removes what dead runs left;
``stability N`` runs the main job N times with fresh seeds and writes reports/stability.md;
``compare --reports A.json B.json ...`` writes the same table from reports of earlier runs;
``gate`` fails when chosen configurations break their claims in reports/durability.json."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import containers, gate, images, stability
from harness.run import new_run_id
from harness.topology import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness")
    parser.add_argument("command", choices=("images", "reap", "stability", "compare", "gate"))
    parser.add_argument("--report", type=Path, default=ROOT / "reports" / "durability.json",
                        help="with gate: the report to read")
    parser.add_argument("--configs", default="", help="with gate: configurations to hold")
    parser.add_argument("--faults", default="", help="with gate: faults to hold")
    parser.add_argument("--reports", nargs="+", type=Path, default=[],
                        help="with compare: durability.json files of earlier runs (2 or more)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "stability.md",
                        help="with compare: where to write the table")
    parser.add_argument("runs", nargs="?", type=int, default=3,
                        help="with stability: how many full runs (default 3)")
    parser.add_argument("pytest_args", nargs="*", help="with stability: passed to pytest")
    args = parser.parse_args(argv)
    if args.command == "stability":
        return _stability(args.runs, args.pytest_args)
    if args.command == "compare":
        return _compare(args.reports, args.out)
    if args.command == "gate":
        return gate.gate_file(args.report, _names(args.configs), _names(args.faults))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        engine = containers.client()
        if args.command == "images":
            started = time.monotonic()
            variables, _ = images.provision(engine, os.environ.get("CHAOS_IMAGES", "local"))
            print(f"images ready in {time.monotonic() - started:.1f}s; for docker compose:")
            for name, value in variables.items():
                print(f"export {name}={value}")
        else:
            print(f"reaped {containers.reap_orphans(engine)} objects of dead harness runs")
    except (containers.EngineUnavailable, images.ProvisionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _names(text: str) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] or None


def _compare(reports: list[Path], out: Path) -> int:
    """Stability over runs already made (e.g. full-matrix runs of different sessions)."""
    missing = [str(p) for p in reports if not p.is_file()]
    if len(reports) < 2 or missing:
        print("error: compare needs 2 or more existing durability.json files"
              + (f"; not found: {', '.join(missing)}" if missing else
                 f"; given {len(reports)}"), file=sys.stderr)
        return 2
    _, code = _write_table(reports, out)
    print(f"written: {out}")
    return code


def _write_table(reports: list[Path], out: Path) -> tuple[str, int]:
    """The stability table from reports, written to ``out``: its text, and exit code 1 when a
    verdict changed between the runs (0 otherwise)."""
    runs = stability.load_runs(reports)
    text = stability.render(runs)
    out.write_text(text)
    return text, 1 if any(not s.stable for s in stability.aggregate(runs)) else 0


def _stability(runs: int, pytest_args: list[str]) -> int:
    if not 2 <= runs <= 20:
        print(f"error: stability needs 2..20 runs, not {runs}", file=sys.stderr)
        return 2
    base = ROOT / "runs" / f"stability-{new_run_id()}"
    results = []
    for n in range(1, runs + 1):
        out = base / f"run-{n}"
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", "pytest", "scenarios", "-q",
                                "-p", "no:cacheprovider", "--report-dir", str(out), *pytest_args],
                               cwd=ROOT)
        print(f"stability run {n}/{runs}: exit {code} in {time.monotonic() - started:.0f}s")
        if not (out / "durability.json").is_file():
            print(f"error: run {n} wrote no report", file=sys.stderr)
            return 1
        results.append(out / "durability.json")
    target = ROOT / "reports" / "stability.md"
    text, code = _write_table(results, target)
    print(text)
    print(f"written: {target}")
    return code


if __name__ == "__main__":
    sys.exit(main())
