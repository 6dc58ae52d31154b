"""The ``queue-chaos`` command (also ``python -m harness``); the Makefile's targets call it.

    queue-chaos run [--backends B] [--configs C] [--faults F] [--seed N] [--set k=v,...]
    queue-chaos run --target queue-chaos.toml [--faults F] [--set k=v,...]
    queue-chaos run ... [--worlds N|auto] [--shard K/N] [--trials N]
    queue-chaos merge SHARD.json ... [--report-dir reports]
    queue-chaos gate [--report reports/durability.json] [--configs C] [--faults F]
                     [--allow inconclusive] [--junit gate.xml]
    queue-chaos compare --reports A.json [B.json ...] [--out reports/stability.md]
    queue-chaos stability [N]                 (an alias of run --trials N)
    queue-chaos bench [--sizes 100,1000,10000] [--cold]
    queue-chaos images [--prune] | reap
    queue-chaos timeline RUN_DIR [--all] [--out DIR]
    queue-chaos reproduce [NAMES] [--report-dir reports]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import (
    bench,
    brokerversions,
    containers,
    gate,
    images,
    matrix,
    parallel,
    progress,
    report,
    reproductions,
    shard,
    stability,
    versionsreport,
)
from harness import trials as trials_
from harness.backends import REGISTRY, backend
from harness.matrix import order_key
from harness.paths import ROOT, RUNS, relative
from harness.provenance import harness_version, image_mode
from harness.result import Provenance, ReportError, RunReport
from harness.run import new_run_id, new_seed
from harness.selection import select

SCENARIOS = ROOT / "scenarios"
# What `queue-chaos versions` runs by default: the faults where a broker's release decides what
# survives (its persistence, its redelivery of a dead consumer's messages), each with its
# configuration's no-fault control.
VERSION_FAULTS = ("sigkill-worker", "broker-sigkill", "broker-restart")
# The main job is pytest over the shipped scenarios with the plugin; markers are the plugin's,
# so a team's own pytest configuration neither helps nor hinders it.
PYTEST = [sys.executable, "-m", "pytest", str(SCENARIOS), f"--rootdir={ROOT}",
          "-p", "no:cacheprovider"]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="queue-chaos",
        description="Durability fault-injection harness for Python task queues: how much work "
                    "is lost or run twice under faults, held against what each configuration "
                    "claims.")
    top.add_argument("--version", action="version", version=f"queue-chaos {harness_version()}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the scenarios and write the durability report")
    run.add_argument("--target", type=Path, default=None,
                     help="a team's target file (queue-chaos.toml): measure their app")
    run.add_argument("--backends", default="", help="comma-separated backends (default: all)")
    run.add_argument("--profile", default="default",
                     help="the matrix profile when no backend is named: default, or clusters "
                          "(a RabbitMQ cluster and Redis with Sentinel under node faults)")
    run.add_argument("--configs", default="", help="comma-separated configurations")
    run.add_argument("--faults", default="", help="comma-separated faults")
    run.add_argument("--seed", type=int, default=None, help="fault-schedule seed")
    run.add_argument("--set", dest="overrides", default="",
                     help="scenario settings, name=value,name=value")
    run.add_argument("--report-dir", type=Path, default=Path("reports"),
                     help="where durability.md/.json go (default: reports)")
    run.add_argument("--worlds", default="1",
                     help="run the scenarios in N isolated worlds side by side and merge their "
                          "reports (auto: what this machine holds; default 1)")
    run.add_argument("--shard", default=None,
                     help="K/N: only shard K of N (for N CI runners; `merge` joins them)")
    run.add_argument("--brokers", default="",
                     help="broker releases to run (harness/brokerversions.py), e.g. "
                          "redis-8.0,rabbitmq-4.0, or a pass: bookworm, trixie, valkey "
                          "(default: each broker's default release)")
    run.add_argument("--trials", default="1",
                     help=f"run the whole selection N times (1..{trials_.MAX_TRIALS}; trial k "
                          "with seed + k - 1) into one report whose cells hold every trial "
                          "(default 1)")
    run.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")

    m = commands.add_parser("merge", help="one report from the reports of a run's shards")
    m.add_argument("reports", nargs="+", type=Path, help="the shards' durability.json files")
    m.add_argument("--report-dir", type=Path, default=Path("reports"),
                   help="where the merged durability.md/.json go (default: reports)")

    g = commands.add_parser(
        "gate", help="exit 1 when chosen configurations broke their claims",
        description="Fail a CI job when the chosen configurations of a durability report broke\n"
                    "their claims or ended inconclusive, or the run could not prove it measures.",
        epilog=gate.EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--report", type=Path, default=Path("reports") / "durability.json",
                   help="the run's durability.json (default: reports/durability.json)")
    g.add_argument("--configs", default="",
                   help="comma-separated configurations to hold (default: every one)")
    g.add_argument("--faults", default="",
                   help="comma-separated faults to hold (default: every one)")
    g.add_argument("--allow", action="append", default=[], choices=gate.ALLOWABLE,
                   metavar="VERDICT",
                   help="accept this verdict instead of failing: only 'inconclusive' (tasks "
                        "still stuck at the deadline); VIOLATED and INVALID never pass")
    g.add_argument("--junit", type=Path, default=None, metavar="PATH",
                   help="also write JUnit XML: one testcase per chosen configuration x fault")

    c = commands.add_parser("compare", help="verdict stability over reports of earlier runs")
    c.add_argument("--reports", nargs="+", type=Path, default=[],
                   help="durability.json files of earlier runs, each one or more trials (2 or "
                        "more trials in all)")
    c.add_argument("--out", type=Path, default=Path("reports") / "stability.md")

    s = commands.add_parser("stability", help="an alias of `run --trials N`: the matrix N "
                                              "times, one report of every trial")
    s.add_argument("runs", nargs="?", default="3", help="how many trials (default 3)")
    s.add_argument("pytest_args", nargs="*", help="passed to pytest")

    b = commands.add_parser("bench", help="measure what the harness costs -> reports/bench.md")
    b.add_argument("--sizes", default=",".join(map(str, bench.SIZES)),
                   help="tasks per scenario, comma-separated (default: 100,1000,10000)")
    b.add_argument("--report-dir", type=Path, default=Path("reports"))
    b.add_argument("--cold", action="store_true",
                   help="also time provisioning every image from nothing (minutes; the images "
                        "in use are not touched)")

    i = commands.add_parser("images", help="build (or find) every image, offline")
    i.add_argument("--prune", action="store_true",
                   help="then remove this project's images other than those just provisioned")
    commands.add_parser("reap", help="remove what dead harness runs left behind")

    tl = commands.add_parser("timeline", help="timeline pictures of an earlier run's scenarios")
    tl.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                    help="a run's directory (runs/<run id>) or its durability.json")
    tl.add_argument("--all", action="store_true",
                    help="every scenario, not only those with an anomaly")
    tl.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="write every picture here (default: beside each result.json, and "
                         "the summary in the run's directory)")

    v = commands.add_parser(
        "versions", help="the same selection on each set of broker releases -> "
                         "reports/versions.md",
        description="Run the selection once per pass of broker releases (same seed), each a "
                    "whole run with its own self-proof, and write what changed between them. "
                    "Passes: " + ", ".join(f"{k} ({' + '.join(p)})"
                                           for k, p in brokerversions.PASSES.items()))
    v.add_argument("--passes", default="", help="comma-separated passes (default: all)")
    v.add_argument("--backends", default="", help="comma-separated backends (default: every "
                                                  "backend with a broker)")
    v.add_argument("--configs", default="", help="comma-separated configurations")
    v.add_argument("--faults", default=",".join(VERSION_FAULTS),
                   help=f"comma-separated faults (default: {','.join(VERSION_FAULTS)})")
    v.add_argument("--seed", type=int, default=None, help="fault-schedule seed (every pass)")
    v.add_argument("--set", dest="overrides", default="",
                   help="scenario settings, name=value,name=value (every pass)")
    v.add_argument("--worlds", default="auto", help="worlds side by side in each pass")
    v.add_argument("--trials", default="1", help="trials per pass")
    v.add_argument("--report-dir", type=Path, default=Path("reports"),
                   help="where versions.md/.json go (default: reports)")
    v.add_argument("--extend", type=Path, default=None, metavar="RUN_DIR",
                   help="an earlier versions run (runs/<id>) whose passes this one adds to "
                        "(other backends, same seed): one report of both")

    rp = commands.add_parser(
        "reproduce", help="upstream bugs, reproduced -> reports/reproductions.md",
        description="Run the named upstream reproductions (default: every one), judge each: "
                    "reproduces, does not reproduce, or cannot tell. Valid names: "
                    + ", ".join(reproductions.REPRODUCTIONS))
    rp.add_argument("names", nargs="*", help="reproductions to run (default: all)")
    rp.add_argument("--report-dir", type=Path, default=Path("reports"),
                    help="where reproductions.md/.json go (default: reports)")
    rp.add_argument("--seed", type=int, default=None, help="fault-schedule seed")
    rp.add_argument("--passes", default="",
                    help="run every case once per pass of broker releases (comma-separated: "
                         f"{', '.join(brokerversions.PASSES)}), a verdict per version "
                         "(default: each broker's default release only)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "stability":
        print(f"queue-chaos stability {args.runs} is `queue-chaos run --trials {args.runs}`: "
              "one report (durability.md, .json) whose cells hold every trial", file=sys.stderr)
        return main(["run", "--trials", args.runs,
                     *(["--", *args.pytest_args] if args.pytest_args else [])])
    if args.command == "compare":
        return _compare(args.reports, args.out)
    if args.command == "merge":
        return _merge(args.reports, args.report_dir)
    if args.command == "bench":
        return _bench(args.sizes, args.report_dir, args.cold)
    if args.command == "reproduce":
        return _reproduce(args.names, args.report_dir, args.seed, args.passes)
    if args.command == "versions":
        return _versions(args)
    if args.command == "timeline":
        from harness import timeline  # matplotlib only for this command

        return timeline.command(args.run_dir, everything=args.all, out=args.out)
    if args.command == "gate":
        return gate.gate_file(args.report, _names(args.configs), _names(args.faults),
                              args.allow, args.junit)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        engine = containers.client()
        if args.command == "images":
            started = time.monotonic()
            variables, _ = images.provision(engine, image_mode())
            print(f"images ready in {time.monotonic() - started:.1f}s; for docker compose:")
            for name, value in variables.items():
                print(f"export {name}={value}")
            if args.prune:
                removed = images.prune(engine, set(variables.values()))
                print(f"pruned {len(removed)} images of earlier inputs")
        else:
            print(f"reaped {containers.reap_orphans(engine)} objects of dead harness runs")
    except (containers.EngineUnavailable, images.ProvisionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _run(args: argparse.Namespace) -> int:
    """The main job: pytest over the scenarios with the plugin's options; with ``--worlds``
    N > 1, N shards of it side by side, merged into one report; with ``--trials`` N > 1 all of
    that N times, trial k with seed + k - 1, merged into one report of every trial."""
    try:
        worlds = parallel.parse_worlds(args.worlds)
        trials = trials_.parse_count(args.trials)
        if worlds > 1 and args.shard:
            raise ValueError("--worlds splits the run into shards itself; --shard is for "
                             "splitting it over machines: give one or the other")
        if trials > 1 and args.shard:
            raise ValueError("--trials repeats the whole run on this machine; --shard runs one "
                             "part of a run on one of several machines: give one or the other "
                             "(to repeat a sharded run, run it again with the next --seed, "
                             "merge each run's shards, and `queue-chaos compare` the merged "
                             "reports)")
        # Checked here once, not once per world; and no more worlds than parts to give them.
        chosen = select(args.target, args.backends, args.configs, args.faults, args.overrides,
                        args.shard, args.profile)
        if args.brokers:
            brokerversions.parse(args.brokers)
        worlds = min(worlds, shard.most_parts(chosen.cases))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = []
    if args.target is not None:
        options.append(f"--target={args.target.resolve()}")
    for flag, value in (("--backends", args.backends), ("--configs", args.configs),
                        ("--faults", args.faults), ("--set", args.overrides),
                        ("--shard", args.shard), ("--brokers", args.brokers),
                        ("--profile", args.profile)):
        if value:
            options.append(f"{flag}={value}")
    if worlds == 1 and trials == 1:
        if args.seed is not None:
            options.append(f"--seed={args.seed}")
        return subprocess.call([*PYTEST, "-v", "-s", f"--report-dir={args.report_dir.resolve()}",
                                *options, *args.pytest_args])
    seed = new_seed() if args.seed is None else args.seed  # one seed: one run, N worlds, trials
    run_id = new_run_id()
    started = time.monotonic()
    shape = f"{worlds} worlds side by side" if worlds > 1 else "one world"
    print(f"run {run_id}: {shape}, seed {seed}"
          + (f", {trials} trials (seeds {seed}-{trials_.trial_seed(seed, trials)})"
             if trials > 1 else ""))
    parts: list[list[Path]] = []
    codes: list[int] = []
    spent: dict[str, float] = {}
    for k in range(1, trials + 1):
        trial_seed = trials_.trial_seed(seed, k)
        out = RUNS / run_id if trials == 1 else RUNS / run_id / f"trial-{k}"
        if trials > 1:
            print(progress.trial_line(k, trials, trial_seed, list(spent.values())), flush=True)
        begun = time.monotonic()
        code, paths = _one_run(worlds, out, trials_.trial_run_id(run_id, k, trials),
                               [*options, f"--seed={trial_seed}", *args.pytest_args])
        spent[f"trial {k}"] = time.monotonic() - begun
        if trials > 1:
            print(progress.trial_line(k, trials, trial_seed, list(spent.values()),
                                      f"exit {code}"), flush=True)
        broken = [relative(p) for p in paths if not p.is_file()]
        if broken:
            print(f"error: no report at {', '.join(broken)} (exit {code}); logs in "
                  f"{relative(RUNS / run_id)}", file=sys.stderr)
            return 1
        parts.append(paths)
        codes.append(code)
    whole = ", ".join(([f"{trials} trials"] if trials > 1 else []) + [shape])
    timings = {f"whole run ({whole})": time.monotonic() - started,
               **(spent if trials > 1 else {})}
    merged = _write_merged(parts, args.report_dir, timings, run_id=run_id,
                           keep=RUNS / run_id if trials > 1 else None)
    return merged or max(codes)


def _reproduce(names: list[str], report_dir: Path, seed: int | None,
               passes_text: str = "") -> int:
    """The chosen reproductions through the normal run path: one pytest main job per
    configuration and settings (only its reproductions' faults, plus the self-proof the plugin
    adds), all side by side, each a world of its own (own run id, own ports), reporting to
    runs/<run id>/world-K; then each case judged from its run's durability.json, and
    reproductions.md (+ .json) written. With ``passes_text`` (``--passes``), all of that once
    per pass of broker releases, one pass after another (runs/<run id>/<pass>/world-K), each
    reproduction on the passes that name its broker: a verdict per version. Exit 0 when every
    case was judged from a result, 1 when one left none, 2 on a bad name."""
    try:
        chosen = reproductions.choose(" ".join(names))
        passes = brokerversions.parse_passes(passes_text) if passes_text else [""]
        plan: list[tuple[str, dict[reproductions.Group, list[reproductions.Reproduction]]]] = []
        for name in passes:
            brokers = brokerversions.pass_brokers(name) if name else None
            members = [r for r in chosen if brokers is None
                       or matrix.CONFIGURATIONS[r.configuration].owner.broker in brokers]
            if members:
                plan.append((name, reproductions.groups(members)))
        for _, runs in plan:  # checked before anything starts
            for (config, overrides), members in runs.items():
                select(configs=config, faults=",".join(reproductions.faults_of(members)),
                       settings_text=reproductions.settings_text(overrides))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seed = new_seed() if seed is None else seed
    run_id = new_run_id()
    print(f"reproduce {run_id}: {len(chosen)} reproductions, seed {seed}"
          + (f", passes {', '.join(n for n, _ in plan)}" if passes_text else ""), flush=True)
    ordered: list[reproductions.Outcome] = []
    for name, runs in plan:
        found = _reproduce_pass(name, runs, seed, RUNS / run_id / name if name else RUNS / run_id,
                                f"{run_id}-{name}" if name else run_id)
        ordered += [found[r.name] for r in chosen if r.name in found]
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "reproductions.md").write_text(reproductions.render(ordered, date=date))
    (report_dir / "reproductions.json").write_text(
        json.dumps(reproductions.as_json(ordered, date=date), indent=2) + "\n")
    for o in ordered:
        print(f"{o.reproduction.name:12} {o.release:9} {o.verdict:20} {o.why}")
    print(f"wrote {relative(report_dir / 'reproductions.md')}")
    return 1 if any(o.result is None for o in ordered) else 0


def _reproduce_pass(release: str, runs: dict[reproductions.Group, list[reproductions.Reproduction]],
                    seed: int, directory: Path, run_id: str) -> dict[str, reproductions.Outcome]:
    """One pass of ``reproduce``: its runs side by side (``--brokers release`` when it names
    one), each case judged; by reproduction name."""
    if release:
        print(f"pass {release} ({' + '.join(brokerversions.PASSES[release])})", flush=True)
    children: list[tuple[subprocess.Popen[bytes], Path, list[reproductions.Reproduction]]] = []
    for k, ((config, overrides), members) in enumerate(runs.items(), start=1):
        out = directory / f"world-{k}"
        out.mkdir(parents=True, exist_ok=True)
        options = [f"--configs={config}",
                   f"--faults={','.join(reproductions.faults_of(members))}",
                   f"--seed={seed}", f"--run-id={parallel.world_run_id(run_id, k)}"]
        if overrides:
            options.append(f"--set={reproductions.settings_text(overrides)}")
        if release:
            options.append(f"--brokers={release}")
        with (out / "pytest.log").open("wb") as log:
            child = subprocess.Popen([*PYTEST, "-v", "-s", f"--report-dir={out}", *options],
                                     env={**os.environ, **parallel.world_ports(k)},
                                     stdout=log, stderr=subprocess.STDOUT)
        print(f"  run {k}: {config} x {','.join(reproductions.faults_of(members))}"
              + (f" --set {reproductions.settings_text(overrides)}" if overrides else "")
              + f" -> {relative(out)}", flush=True)
        children.append((child, out, members))
    try:
        for child, _, _ in children:
            child.wait()
    except KeyboardInterrupt:
        for child, _, _ in children:
            child.send_signal(signal.SIGINT)
        for child, _, _ in children:
            child.wait()
        raise
    outcomes: dict[str, reproductions.Outcome] = {}
    for child, out, members in children:
        try:
            run = RunReport.load(out / "durability.json")
        except ReportError as exc:
            print(f"error: run {relative(out)} left no report (exit {child.returncode}): {exc}",
                  file=sys.stderr)
            run = None
        for r in members:
            outcomes[r.name] = reproductions.judge(
                r, reproductions.find(run.scenarios, r) if run else None, run=relative(out),
                run_valid=run.measurement_valid if run else None,
                self_proof=run.self_proof if run else (), release=release)
    return outcomes


def _versions(args: argparse.Namespace) -> int:
    """``queue-chaos versions``: ``run`` once per pass of broker releases, each into
    runs/<id>/<pass> with the same seed and only the backends on the brokers the pass names,
    then reports/versions.md (+ .json) side by side. Exit 0 when every pass was a valid
    measurement, 1 when one was not, 2 on bad input."""
    try:
        passes = brokerversions.parse_passes(args.passes)
        named = [b for b in args.backends.split(",") if b.strip()]
        for name in named:
            backend(name)
        candidates = named or [b.name for b in REGISTRY.values() if b.broker]
        plan: list[tuple[str, list[str]]] = []
        for name in passes:
            brokers = brokerversions.pass_brokers(name)
            chosen = [b for b in candidates if REGISTRY[b].broker in brokers]
            if chosen:
                select(None, ",".join(chosen), args.configs, args.faults, args.overrides, None)
                plan.append((name, chosen))
        if not plan:
            raise ValueError(f"--passes {','.join(passes)} with --backends "
                             f"{','.join(candidates)}: no pass measures any of them")
        parallel.parse_worlds(args.worlds)
        trials_.parse_count(args.trials)
        earlier = _earlier_passes(args.extend, [n for n, _ in plan]) if args.extend else {}
        seeds = {p.report.seed for p in earlier.values()}
        if len(seeds) > 1 or (args.seed is not None and seeds - {args.seed}):
            raise ValueError(f"--extend {args.extend}: its passes ran with seed "
                             f"{', '.join(map(str, sorted(s or 0 for s in seeds)))}; a run that "
                             "adds to it must use the same seed (leave out --seed)")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    earlier_seed = next(iter(seeds), None)
    seed = args.seed if args.seed is not None else earlier_seed or new_seed()
    run_id = new_run_id()
    print(f"versions {run_id}: {len(plan)} passes ({', '.join(n for n, _ in plan)}), seed {seed}",
          flush=True)
    done: list[versionsreport.Pass] = []
    codes = []
    for name, chosen in plan:
        out = RUNS / run_id / name
        print(f"pass {name} ({' + '.join(brokerversions.PASSES[name])}): "
              f"{', '.join(chosen)} -> {relative(out)}", flush=True)
        code = main(["run", "--brokers", name, "--backends", ",".join(chosen),
                     *(["--configs", args.configs] if args.configs else []),
                     *(["--set", args.overrides] if args.overrides else []),
                     "--faults", args.faults, "--seed", str(seed), "--worlds", args.worlds,
                     "--trials", args.trials, "--report-dir", str(out)])
        try:
            fresh = versionsreport.Pass(name, RunReport.load(out / "durability.json"),
                                        relative(out))
            done.append(versionsreport.joined(earlier[name], fresh) if name in earlier
                        else fresh)
        except ReportError as exc:
            print(f"error: pass {name} left no report (exit {code}): {exc}", file=sys.stderr)
            return 1
        codes.append(code)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = (f"queue-chaos versions --seed {seed}"
               + (f" --passes {args.passes}" if args.passes else "")
               + (f" --backends {args.backends}" if args.backends else "")
               + (f" --configs {args.configs}" if args.configs else "")
               + (f" --set {args.overrides}" if args.overrides else "")
               + (f" --faults {args.faults}" if args.faults != ",".join(VERSION_FAULTS) else "")
               + (f" --trials {args.trials}" if args.trials != "1" else "")
               + (f" --extend {args.extend}" if args.extend else ""))
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "versions.md").write_text(
        versionsreport.render(done, date=date, seed=seed, command=command))
    document = versionsreport.as_json(done, date=date, seed=seed, command=command)
    (args.report_dir / "versions.json").write_text(json.dumps(document, indent=2) + "\n")
    for line in versionsreport.summary(document) or ["no cell changed between versions"]:
        print(line)
    print(f"wrote {relative(args.report_dir / 'versions.md')}")
    return 0 if all(p.report.measurement_valid for p in done) else 1


def _earlier_passes(directory: Path, names: list[str]) -> dict[str, versionsreport.Pass]:
    """An earlier versions run's passes (``<directory>/<pass>/durability.json``) among
    ``names``; a directory holding none of them is a ValueError."""
    found: dict[str, versionsreport.Pass] = {}
    for name in names:
        path = directory / name / "durability.json"
        if path.is_file():
            try:
                found[name] = versionsreport.Pass(name, RunReport.load(path),
                                                  relative(path.parent))
            except ReportError as exc:
                raise ValueError(f"--extend {directory}: {exc}") from None
    if not found:
        raise ValueError(f"--extend {directory}: no pass report there (expected "
                         f"{directory}/<pass>/durability.json for a pass of "
                         f"{', '.join(names)})")
    return found


def _one_run(worlds: int, out: Path, run_id: str, options: list[str]) -> tuple[int, list[Path]]:
    """One whole run of the selection (one trial) under ``run_id``: one pytest session
    reporting to ``out``, or ``worlds`` of them side by side reporting to ``out/world-K``.
    Returns the worst exit code and where each report should be."""
    if worlds == 1:
        code = subprocess.call([*PYTEST, "-v", "-s", f"--report-dir={out}",
                                f"--run-id={run_id}", *options])
        return code, [out / "durability.json"]
    codes = parallel.run_worlds(worlds, [*PYTEST, "-v", "-s"], out, run_id, options)
    return max((code for code, _ in codes), default=0), [o / "durability.json" for _, o in codes]


def _merge(paths: list[Path], report_dir: Path,
           timings: dict[str, float] | None = None) -> int:
    """One report from the shards' reports: exit 0 when it is a valid measurement."""
    return _write_merged([paths], report_dir, timings)


def _write_merged(parts: list[list[Path]], report_dir: Path,
                  timings: dict[str, float] | None = None, *, run_id: str | None = None,
                  keep: Path | None = None) -> int:
    """One report from each trial's shard (or world) reports, ``parts[k - 1]`` trial k's, in
    ``report_dir`` (and, without pictures, in ``keep``: the run's own directory, so
    ``queue-chaos timeline runs/<run id>`` finds it): exit 0 when it is a valid measurement.
    ``run_id``: the whole run's (default: the run the first shard belongs to)."""
    several = len(parts) > 1
    try:
        loaded = [shard.load_all(paths) for paths in parts]
        results = sorted(trials_.numbered(shard.merge(shards) for shards in loaded),
                         key=lambda r: (order_key(r.configuration, r.fault), r.trial))
    except shard.ShardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    first = loaded[0][0]
    proof = report.self_proof(results)
    spent = dict(timings or {})
    for k, (paths, shards) in enumerate(zip(parts, loaded, strict=True), 1):
        trial = f"trial {k}, " if several else ""
        for n, part in enumerate(shards, 1):
            if not part.measurement_valid:  # a copy the merge dropped may be the one failing
                proof.valid = False
                proof.lines.append(f"{trial}shard {n} ({relative(paths[n - 1])}) is not a "
                                   "valid measurement")
            spent.update({f"{trial}shard {n}: {key}": v for key, v in part.timings.items()
                          if not key.startswith("scenario ")})
        spent.update({key + (f" (trial {k})" if several else ""): v for part in shards
                      for key, v in part.timings.items() if key.startswith("scenario ")})
    replay = first.replay + (f" TRIALS={len(parts)}" if several else "")
    provenance = Provenance.merged(part.provenance for shards in loaded for part in shards)
    path = report_dir
    for directory in ([keep] if keep is not None else []) + [report_dir]:
        path, proof = report.write(results, directory, timings=spent, proof=proof,
                                   provenance=provenance, pictures=directory == report_dir,
                                   run_id=run_id or parallel.run_of(first.run_id),
                                   date=first.date, seed=first.seed or 0, replay=replay)
    shards_n = sum(map(len, loaded))
    print(f"merged {len(parts)} trials ({shards_n} reports), {len(results)} scenarios: {path}"
          if several else f"merged {shards_n} shards, {len(results)} scenarios: {path}")
    for line in proof.lines:
        print(line)
    if several:
        found = trials_.cells(results)
        flipped = trials_.changed(found)
        print(f"{len(flipped)} of {len(found)} cells changed verdict between trials"
              + (":" if flipped else ""))
        for cell in flipped:
            print(f"  {cell.scenario}: {', '.join(cell.verdicts)} "
                  f"({trials_.cell_words(cell, emphasis='')})")
    return 0 if proof.valid else 1


def _bench(sizes_text: str, report_dir: Path, cold: bool = False) -> int:
    sizes = tuple(int(n) for n in sizes_text.split(",") if n.strip().isdigit())
    if not sizes or len(sizes) != len(sizes_text.split(",")) or not all(
            10 <= n <= 10_000 for n in sizes):
        print(f"error: --sizes {sizes_text!r}: expected counts 10..10000, comma-separated",
              file=sys.stderr)
        return 2
    try:
        last = (bench.provision_cold(RUNS / f"provision-cold-{new_run_id()}.log") if cold
                else bench.last_cold(report_dir))
        measured = bench.run(sizes, report_dir / "durability.json", cold=last)
    except (containers.EngineUnavailable, images.ProvisionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = bench.write(measured, report_dir)
    print(bench.render(measured))
    print(f"written: {path}")
    return 0


def _names(text: str) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] or None


def _compare(reports: list[Path], out: Path) -> int:
    """Stability over runs already made (e.g. full-matrix runs of different sessions, or one
    run of several trials): the table of their cells; exit 1 when a verdict changed."""
    missing = [str(p) for p in reports if not p.is_file()]
    if not reports or missing:
        print("error: compare needs 2 or more existing durability.json files (or one report "
              "of several trials)" + (f"; not found: {', '.join(missing)}" if missing else
                                      "; none given"), file=sys.stderr)
        return 2
    try:
        runs = stability.load_runs(reports)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    held = trials_.count(trials_.numbered(r.scenarios for r in runs))
    if held < 2:
        print(f"error: compare needs 2 or more trials in all (2 or more reports, or a report of "
              f"`run --trials N`); given {len(reports)} report of 1 trial", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(stability.render(runs))
    print(f"written: {out}")
    return 1 if trials_.changed(stability.cells(runs)) else 0


if __name__ == "__main__":
    sys.exit(main())
