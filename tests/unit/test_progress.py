"""harness/progress.py: the lines a long run prints, their estimate, and reading them back; and
the plugin printing them through pytest's terminal reporter."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.progress import (
    Overall,
    Progress,
    Tick,
    eta_s,
    format_eta,
    parse,
    parse_eta,
    trial_line,
    verdict_text,
)
from tests.unit.build import BLANK, scenario_result


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (14.4, "14s"), (59.6, "1m00s"), (400, "6m40s"), (404, "6m40s"), (3599, "1h00m"),
    (3900, "1h05m"), (7200 + 59 * 60 + 40, "3h00m")])
def test_an_estimate_reads_in_the_units_it_deserves(seconds: float, text: str) -> None:
    assert format_eta(seconds) == text


@pytest.mark.parametrize("seconds", [0, 45, 400, 3900, 9000])
def test_an_estimate_reads_back_as_the_seconds_it_shows(seconds: float) -> None:
    assert parse_eta(format_eta(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "soon", "6m40", "m"])
def test_what_is_not_an_estimate_reads_back_as_none(text: str) -> None:
    assert parse_eta(text) is None


def test_the_scenarios_left_take_their_committed_time_scaled_by_this_runs_pace() -> None:
    expected = {"a": 10.0, "b": 20.0, "c": 30.0}
    assert eta_s(["a", "b", "c"], [], expected) == 60.0  # nothing done yet: pace 1
    # "a" took twice what the report says: the rest is expected to as well.
    assert eta_s(["b", "c"], [("a", 20.0)], expected) == 100.0
    assert eta_s([], [("a", 20.0)], expected) == 0.0


def test_a_scenario_the_report_lacks_takes_the_mean_of_those_done() -> None:
    expected = {"a": 10.0}
    assert eta_s(["new"], [("a", 20.0), ("other", 40.0)], expected) == 30.0
    # Unknown finished scenarios do not bend the pace, known ones do.
    assert eta_s(["a"], [("other", 40.0)], expected) == 10.0


def test_before_anything_finishes_an_unknown_scenario_takes_the_reports_mean() -> None:
    assert eta_s(["new", "a"], [], {"a": 10.0, "b": 30.0}) == 30.0


def test_with_no_report_and_nothing_done_there_is_no_estimate() -> None:
    assert eta_s(["new"], [], {}) is None
    assert eta_s(["new"], [("x", 12.0)], {}) == 12.0


def test_the_verdict_shows_the_lost_and_whatever_else_happened() -> None:
    result = scenario_result(counts={"lost": 0, "re_executed": 2, "duplicated": 0, "late": 1})
    assert verdict_text(result) == "clean; 2 re-executed, 1 late"
    allowed = scenario_result(counts={"lost": 2, "late": 4})
    assert verdict_text(allowed) == "2 lost (allowed); 4 late"
    broken = scenario_result(verdict="VIOLATED", counts={"lost": 3})
    assert verdict_text(broken) == "3 lost: VIOLATED"
    invalid = scenario_result(valid=False, validity="the fault hit no running task")
    assert verdict_text(invalid) == "invalid (the fault hit no running task)"


def test_a_session_says_which_scenario_how_many_and_how_long() -> None:
    progress = Progress(["x.a.none", "x.a.kill", "x.b.none"],
                        {"x.a.none": 100.0, "x.a.kill": 200.0, "x.b.none": 100.0})
    assert progress.start("x.a.none") == "[1/3] x.a.none (eta 6m40s)"
    assert progress.finish("x.a.none", "holds (0 lost)", 50.0) == (
        "[1/3] x.a.none: holds (0 lost) in 50.0s (eta 2m30s)")
    assert progress.start("x.a.kill") == "[2/3] x.a.kill (eta 2m30s)"
    progress.finish("x.a.kill", "holds (0 lost)", 100.0)
    progress.start("x.b.none")
    assert progress.finish("x.b.none", "failed", 3.0) == (
        "[3/3] x.b.none: failed in 3.0s (eta 0s)")


def test_a_session_with_nothing_to_go_on_leaves_the_estimate_out() -> None:
    progress = Progress(["team.shop.none", "team.shop.kill"], {})
    assert progress.start("team.shop.none") == "[1/2] team.shop.none"
    assert progress.finish("team.shop.none", "holds (0 lost)", 12.0).endswith("(eta 12s)")


def test_the_lines_written_read_back() -> None:
    progress = Progress(["x.a.none", "x.b.none"], {"x.a.none": 30.0, "x.b.none": 30.0})
    assert parse(progress.start("x.a.none")) == Tick(1, 2, "x.a.none", False, 60.0)
    assert parse(progress.finish("x.a.none", "holds (0 lost, 2 re-executed)", 30.0)) == Tick(
        1, 2, "x.a.none", True, 30.0)
    assert parse("[2/2] team.shop.none") == Tick(2, 2, "team.shop.none", False, None)
    coloured = "\x1b[32m[2/2] x.b.none: holds (0 lost) in 29.5s (eta 0s)\x1b[0m\n"
    assert parse(coloured) == Tick(2, 2, "x.b.none", True, 0.0)
    assert Tick(2, 5, "x", False, None).done == 1
    assert Tick(2, 5, "x", True, None).done == 2


@pytest.mark.parametrize("line", [
    "", "PASSED", "scenarios/test_durability.py::test_durability[arq:arq-max-tries-5:none] ",
    "arq.arq-max-tries-5.none: {'completed': 40} -> holds (at-least-once holds); 18.2s",
    "[world 1] [1/2] x.a.none", "see [1/2] x.a.none"])
def test_other_output_is_not_progress(line: str) -> None:
    assert parse(line) is None


def test_a_run_of_trials_says_which_trial_and_how_long_the_trials_left_take() -> None:
    assert trial_line(1, 3, 42, []) == "trial 1/3, seed 42"  # nothing to go on yet
    assert trial_line(1, 3, 42, [400.0], "exit 0") == "trial 1/3, seed 42: exit 0 in 6m40s " \
        "(eta 13m20s)"
    assert trial_line(2, 3, 43, [400.0]) == "trial 2/3, seed 43 (eta 13m20s)"
    assert trial_line(3, 3, 44, [300.0, 500.0, 400.0], "exit 1") == \
        "trial 3/3, seed 44: exit 1 in 6m40s"  # none left
    assert parse(trial_line(2, 3, 43, [400.0])) is None  # not a scenario's line


def test_across_worlds_the_count_adds_up_and_the_slowest_world_sets_the_estimate() -> None:
    overall = Overall(2)
    assert overall.update(1, "[1/3] a.x.none (eta 1m00s)\n", now=0.0) is None  # a start
    assert overall.update(1, "some other output\n", now=1.0) is None
    # World 2 has not spoken yet: neither the total nor an estimate is known.
    assert overall.update(1, "[1/3] a.x.none: holds (0 lost) in 20.0s (eta 40s)", now=20.0) == (
        "[all worlds] 1/? scenarios done")
    overall.update(2, "[1/2] b.y.none (eta 2m00s)", now=30.0)
    assert overall.update(1, "[2/3] a.x.kill: holds (0 lost) in 20.0s (eta 20s)", now=40.0) == (
        "[all worlds] 2/5 scenarios done (eta 1m50s)")  # world 2's 120 s, 10 s of them gone
    overall.update(2, "[1/2] b.y.none: holds (0 lost) in 60.0s (eta 60s)", now=90.0)
    assert overall.line(now=100.0) == "[all worlds] 3/5 scenarios done (eta 50s)"
    overall.update(2, "[2/2] b.y.kill: holds (0 lost) in 50.0s (eta 0s)", now=140.0)
    assert overall.eta_s(now=300.0) == 0.0  # world 1 is late: never below nothing left
    assert overall.update(1, "[3/3] a.x.stop: holds (0 lost) in 9.0s", now=301.0) == (
        "[all worlds] 5/5 scenarios done (eta 0s)")


def test_a_world_without_an_estimate_leaves_the_overall_one_out() -> None:
    overall = Overall(1)
    assert overall.update(1, "[1/2] t.s.none: holds (0 lost) in 9.0s", now=0.0) == (
        "[all worlds] 1/2 scenarios done")


TEST_FILE = f'''
from dataclasses import asdict

from harness.matrix import scenario_id
from harness.result import Counts, ScenarioResult

BLANK = {BLANK!r}


def test_durability(chaos_run, configuration, fault):
    assert fault != "sigkill-worker" or configuration.name != "arq-max-tries-5", "broke"
    counts = Counts(re_executed=2 if fault != "none" else 0).as_dict()
    chaos_run.results.append(ScenarioResult.from_dict(
        {{**BLANK, "scenario": scenario_id(configuration, fault), "counts": counts,
          "settings": asdict(chaos_run.settings)}}))
    print("the scenario's own line")
'''


@pytest.mark.parametrize("verbosity", ["-v", "-q"])
def test_the_plugin_prints_a_line_of_its_own_before_and_after_each_scenario(
        tmp_path: Path, verbosity: str) -> None:
    (tmp_path / "test_fake_durability.py").write_text(TEST_FILE)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "test_fake_durability.py", verbosity, "-s",
         "-p", "no:cacheprovider", f"--rootdir={tmp_path}", "--configs=arq-max-tries-5",
         "--faults=none,sigkill-worker", f"--report-dir={tmp_path / 'reports'}"],
        cwd=tmp_path, env={**os.environ, "QUEUE_CHAOS_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    ticks = [t for t in map(parse, lines) if t is not None]
    assert [(t.index, t.total, t.finished) for t in ticks] == [
        (i, 4, finished) for i in range(1, 5) for finished in (False, True)], done.stdout
    assert [t.scenario for t in ticks[::2]] == [
        "celery-redis.acks-early-prefetch-1.none",
        "celery-redis.acks-early-prefetch-1.sigkill-worker",
        "arq.arq-max-tries-5.none", "arq.arq-max-tries-5.sigkill-worker"]
    finished = [line for line, tick in zip(lines, map(parse, lines), strict=True)
                if tick is not None and tick.finished]
    assert ": clean in " in finished[0]
    assert ": clean; 2 re-executed in " in finished[1]
    assert ": failed in " in finished[3]  # no result: how its test ended
    assert all(" (eta " in line for line in finished)  # the committed report knows them
    assert "the scenario's own line" in done.stdout


def test_worlds_output_is_forwarded_prefixed_with_a_line_across_worlds(
        capsys: pytest.CaptureFixture[str]) -> None:
    from harness.parallel import _forward, _Tally

    output = io.StringIO("[1/2] a.x.none (eta 40s)\nnoise\n"
                         "[1/2] a.x.none: holds (0 lost) in 20.0s (eta 20s)\n")
    log = io.StringIO()
    _forward(output, 1, log, _Tally(1))
    assert log.getvalue() == output.getvalue()
    assert capsys.readouterr().out.splitlines() == [
        "[world 1] [1/2] a.x.none (eta 40s)", "[world 1] noise",
        "[world 1] [1/2] a.x.none: holds (0 lost) in 20.0s (eta 20s)",
        "[all worlds] 1/2 scenarios done (eta 20s)"]
