"""harness/__main__.py: the queue-chaos command's subcommands, help and version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import __main__ as cli


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
