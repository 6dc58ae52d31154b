"""harness/__main__.py: the queue-chaos command's subcommands, help and version."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness import __main__ as cli
from harness import report
from harness.paths import relative
from harness.result import Provenance, ScenarioResult
from tests.unit.test_report import good_run


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("queue-chaos ")
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = capsys.readouterr().out
    for command in ("run", "gate", "compare", "stability", "images", "reap"):
        assert command in help_text


def test_an_unknown_command_is_refused_naming_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["explode"])
    assert exit_.value.code == 2
    assert "invalid choice: 'explode'" in capsys.readouterr().err


def test_run_is_pytest_over_the_scenarios_with_the_plugin_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    calls: list[list[str]] = []

    def call(argv: list[str], **_: Any) -> int:
        calls.append(argv)
        return 0

    monkeypatch.setattr("subprocess.call", call)
    assert cli.main(["run", "--configs", "acks-late-prefetch-1", "--faults", "none",
                     "--seed", "7", "--set", "tasks=10", "--report-dir", str(tmp_path),
                     "--", "-x"]) == 0
    argv = calls[0]
    assert argv[1:4] == ["-m", "pytest", str(cli.SCENARIOS)]
    assert "--configs=acks-late-prefetch-1" in argv and "--faults=none" in argv
    assert "--seed=7" in argv and "--set=tasks=10" in argv
    assert f"--report-dir={tmp_path}" in argv and argv[-1] == "-x"


def test_gate_without_a_report_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["gate", "--report", str(tmp_path / "none.json")]) == 2
    assert "run `make durability` first" in capsys.readouterr().out


def _shard(directory: Path, *scenarios: ScenarioResult, valid: bool = True,
           provenance: Provenance | None = None) -> Path:
    report.write(list(scenarios), directory, run_id="r-w1", date="d", seed=3,
                 replay="make durability SEED=3", timings={"whole run": 9.0},
                 provenance=provenance)
    if not valid:
        data = json.loads((directory / "durability.json").read_text())
        data["measurement_valid"] = False
        (directory / "durability.json").write_text(json.dumps(data))
    return directory / "durability.json"


def test_merge_writes_one_report_in_run_order_from_the_shards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    early_none, late_none, early_kill, late_kill = good_run()
    one = _shard(tmp_path / "1", late_kill, early_none, early_kill)
    two = _shard(tmp_path / "2", early_kill, early_none, late_none)
    assert cli.main(["merge", str(two), str(one), "--report-dir", str(tmp_path / "out")]) == 0
    merged = json.loads((tmp_path / "out" / "durability.json").read_text())
    assert [s["scenario"] for s in merged["scenarios"]] == [
        r.scenario for r in (early_none, early_kill, late_none, late_kill)]
    assert merged["measurement_valid"] and merged["seed"] == 3 and merged["run_id"] == "r"
    assert "shard 1: whole run" in merged["timings"]
    assert "merged 2 shards, 4 scenarios" in capsys.readouterr().out


def test_a_merge_keeps_the_shards_provenance(tmp_path: Path) -> None:
    early_none, late_none, early_kill, late_kill = good_run()
    early_none.servers = {"redis-server": "7.0.15"}
    late_kill.versions = {"celery": "5.7.0"}
    image = {"variable": "CHAOS_CELERY_IMAGE", "tag": "queue-chaos/celery:29", "id": "sha256:c"}
    toxiproxy = {"variable": "CHAOS_TOXIPROXY_IMAGE", "tag": "t", "id": "sha256:t"}
    one = _shard(tmp_path / "1", early_none, early_kill, late_none,
                 provenance=Provenance("0.1.0", "local", [image, toxiproxy]))
    two = _shard(tmp_path / "2", early_none, early_kill, late_kill,
                 provenance=Provenance("0.1.0", "local", [image]))
    assert cli.main(["merge", str(one), str(two), "--report-dir", str(tmp_path / "out")]) == 0
    merged = json.loads((tmp_path / "out" / "durability.json").read_text())
    assert merged["provenance"]["harness"] == "0.1.0"
    assert merged["provenance"]["images"] == [image, toxiproxy]
    assert merged["provenance"]["backends"]["celery-redis"] == {
        "libraries": {"celery": "5.7.0"}, "servers": {"redis-server": "7.0.15"}}
    text = (tmp_path / "out" / "durability.md").read_text()
    assert "- celery-redis: celery 5.7.0; redis-server 7.0.15" in text


def test_a_merge_with_an_invalid_shard_is_invalid_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    one = _shard(tmp_path / "1", *good_run())
    two = _shard(tmp_path / "2", *good_run(), valid=False)
    assert cli.main(["merge", str(one), str(two), "--report-dir", str(tmp_path / "out")]) == 1
    # Named relative to the work directory: no report carries a machine's absolute paths.
    assert f"shard 2 ({relative(two)}) is not a valid measurement" in capsys.readouterr().out


def test_a_merge_of_missing_shards_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["merge", str(tmp_path / "nope.json")]) == 2
    assert "nope.json does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--worlds", "9"], "expected auto or a count 1..8"),
    (["--worlds", "2", "--shard", "1/2"], "give one or the other"),
    (["--shard", "3/2"], "expected K/N"),
    (["--worlds", "2", "--configs", "nope"], "unknown configuration nope; valid: "),
])
def test_run_refuses_worlds_and_shards_that_cannot_be(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["run", *argv]) == 2
    assert message in capsys.readouterr().err


def test_worlds_are_no_more_than_the_parts_of_the_selection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    started: list[int] = []

    def run_worlds(count: int, *_: Any) -> list[tuple[int, Path]]:
        started.append(count)
        return []

    monkeypatch.setattr("harness.parallel.run_worlds", run_worlds)
    monkeypatch.setattr("harness.__main__.RUNS", tmp_path)
    # One configuration's control and its kill (itself the case known to lose): two worlds.
    cli.main(["run", "--configs", "acks-early-prefetch-1", "--faults", "none,sigkill-worker",
              "--worlds", "8", "--report-dir", str(tmp_path)])
    assert started == [2]


@pytest.mark.parametrize(("argv", "message"), [
    (["--trials", "0"], "--trials '0': expected a count 1..20"),
    (["--trials", "21"], "expected a count 1..20"),
    (["--trials", "x"], "expected a count 1..20"),
    (["--trials", "2", "--shard", "1/2"], "--trials repeats the whole run on this machine"),
])
def test_run_refuses_trials_that_cannot_be(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["run", *argv]) == 2
    assert message in capsys.readouterr().err


def _fake_sessions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                   lose_in: int = 0) -> list[list[str]]:
    """subprocess.call as a pytest session that writes its report where it is told (trial
    ``lose_in`` loses a task the late configuration must not lose)."""
    calls: list[list[str]] = []

    def call(argv: list[str], **_: Any) -> int:
        calls.append(argv)
        given = dict(a.removeprefix("--").split("=", 1) for a in argv if a.startswith("--")
                     and "=" in a)
        results = [replace(r, seed=int(given["seed"])) for r in good_run()]
        if len(calls) == lose_in:
            results[3].counts["lost"], results[3].verdict = 1, "VIOLATED"
        report.write(results, Path(given["report-dir"]), run_id=given.get("run-id", "r"), date="d",
                     seed=int(given["seed"]), replay=f"make durability SEED={given['seed']}")
        return 0

    monkeypatch.setattr("subprocess.call", call)
    monkeypatch.setattr("harness.__main__.RUNS", tmp_path / "runs")
    monkeypatch.setattr("harness.__main__.new_run_id", lambda: "r")
    return calls


def test_trials_run_the_selection_with_seed_after_seed_into_one_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    calls = _fake_sessions(monkeypatch, tmp_path, lose_in=2)
    out = tmp_path / "reports"
    assert cli.main(["run", "--configs", "acks-early-prefetch-1,acks-late-prefetch-1",
                     "--faults", "none,sigkill-worker", "--seed", "7", "--trials", "2",
                     "--report-dir", str(out)]) == 0
    for k, argv in enumerate(calls, 1):
        assert f"--seed={6 + k}" in argv and f"--run-id=r-t{k}" in argv
        assert f"--report-dir={tmp_path / 'runs' / 'r' / f'trial-{k}'}" in argv
    data = json.loads((out / "durability.json").read_text())
    assert data["trials"] == 2 and data["seed"] == 7 and data["run_id"] == "r"
    assert data["replay"] == "make durability SEED=7 TRIALS=2"
    assert [(s["scenario"].split(".", 1)[1], s["trial"], s["seed"])
            for s in data["scenarios"]][:4] == [
        ("acks-early-prefetch-1.none", 1, 7), ("acks-early-prefetch-1.none", 2, 8),
        ("acks-early-prefetch-1.sigkill-worker", 1, 7),
        ("acks-early-prefetch-1.sigkill-worker", 2, 8)]
    assert (tmp_path / "runs" / "r" / "durability.json").is_file()  # beside the trials' own
    printed = capsys.readouterr().out
    assert "trial 1/2, seed 7" in printed and "trial 2/2, seed 8: exit 0 in " in printed
    assert "1 of 4 cells changed verdict between trials" in printed
    assert "acks-late-prefetch-1.sigkill-worker: holds, VIOLATED" in printed


def test_one_trial_runs_as_before(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = _fake_sessions(monkeypatch, tmp_path)
    cli.main(["run", "--configs", "acks-late-prefetch-1", "--faults", "none", "--seed", "7",
              "--report-dir", str(tmp_path), "--trials", "1"])
    [argv] = calls
    assert "--seed=7" in argv and not any(a.startswith("--run-id") for a in argv)


def test_stability_is_an_alias_of_run_with_trials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str] = []

    def run(args: argparse.Namespace) -> int:
        seen.append(args.trials)
        return 0

    monkeypatch.setattr("harness.__main__._run", run)
    assert cli.main(["stability", "4"]) == 0
    assert seen == ["4"]
    assert "is `queue-chaos run --trials 4`" in capsys.readouterr().err


def test_compare_reads_each_report_as_further_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    first = _shard(tmp_path / "1", *good_run())
    violated = good_run()
    violated[3].verdict = "VIOLATED"
    second = _shard(tmp_path / "2", *violated)
    out = tmp_path / "stability.md"
    assert cli.main(["compare", "--reports", str(first), str(second), "--out", str(out)]) == 1
    assert "**changed**: holds, VIOLATED" in out.read_text()
    assert cli.main(["compare", "--reports", str(first), str(first), "--out", str(out)]) == 0
    assert cli.main(["compare", "--reports", str(first), "--out", str(out)]) == 2
    assert "compare needs 2 or more trials in all" in capsys.readouterr().err
