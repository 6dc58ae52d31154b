"""harness/__main__.py: the queue-chaos command's subcommands, help and version."""

from __future__ import annotations

import json
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
