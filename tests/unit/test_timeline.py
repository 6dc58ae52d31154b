"""harness/timeline.py: the lane and bar model of a scenario's timeline, and its pictures.

The model is checked on synthetic ledgers (a worker killed mid-task and started again, a
duplicate, lost tasks, a pool child killed, a crash after the side effect); the pictures only
for being PNGs whose bytes depend on nothing but their input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import __main__ as cli
from harness import timeline
from harness.result import ReportError, RunReport, ScenarioResult
from queue_chaos_agent.ledger import encode

SCENARIO = "celery-redis.acks-late-prefetch-1.sigkill-worker"
T0 = 1000.0  # the ledger's monotonic clock at the first submission
PNG = b"\x89PNG\r\n\x1a\n"


def task(n: int, scenario: str = SCENARIO) -> str:
    return f"{scenario}.{n:05d}"


def rec(kind: str, t: float, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "t": T0 + t, **fields}


def run(n: int, execution: str, worker: str, pid: int, start: float, end: float | None,
        ended: str = "completed") -> list[dict[str, Any]]:
    """The records of one execution: started, and its end unless it never ended."""
    records = [rec("started", start, task=task(n), execution=execution, worker=worker, pid=pid)]
    if end is not None:
        records.append(rec(ended, end, task=task(n), execution=execution, worker=worker,
                           pid=pid))
    return records


def result(scenario: str = SCENARIO, fault: str = "sigkill-worker",
           anomalies: dict[str, list[str]] | None = None, ledger_dir: str = "",
           **counts: int) -> ScenarioResult:
    backend, configuration, _ = scenario.split(".")
    return ScenarioResult(
        scenario=scenario, backend=backend, configuration=configuration,
        configuration_summary="task_acks_late=True", guarantee="at-least-once", fault=fault,
        fault_description="", seed=1, valid=True, validity="", verdict="VIOLATED",
        reason="at-least-once claimed, 2 lost",
        counts={"submitted": 5, "completed": 2, "lost": 0, "duplicated": 0, **counts},
        recovery_s=None, stuck_locations={}, anomalies=anomalies or {}, ledger_dir=ledger_dir)


def killed_worker() -> tuple[list[dict[str, Any]], ScenarioResult]:
    """worker2 is SIGKILLed at 0.5 s with tasks 1 and 4 running, started again at 3 s.
    Task 1 runs again on the new worker2 (re-executed); task 2 runs to completion on worker1
    and again on the new worker2 (duplicated); task 3 never ran (lost); task 4 was cut and
    never ran again (lost)."""
    records = [
        rec("worker_ready", -1.0, worker="worker1", pid=1, task=None),
        rec("worker_ready", -1.0, worker="worker2", pid=1, task=None),
        *(rec("submission", 0.1 * n, task=task(n), outcome="ok") for n in range(5)),
        *run(0, "e0", "worker1", 7, 0.1, 0.9),
        *run(1, "e1a", "worker2", 8, 0.2, None),
        *run(4, "e4", "worker2", 9, 0.4, None),
        rec("fault", 0.55, fault="sigkill-worker", target="worker2", fired=T0 + 0.5, task=None),
        *run(2, "e2a", "worker1", 7, 0.9, 1.4),
        rec("worker_ready", 3.0, worker="worker2", pid=1, task=None),
        rec("healed", 3.1, fault="sigkill-worker", target="worker2", task=None),
        *run(1, "e1b", "worker2", 8, 4.0, 5.0),
        *run(2, "e2b", "worker2", 9, 4.0, 4.5),
    ]
    anomalies = {"lost": [task(3), task(4)], "duplicated": [task(2)],
                 "re-executed": [task(1), task(2)], "redelivered": [task(1), task(2)]}
    return records, result(anomalies=anomalies, lost=2, duplicated=1, re_executed=2)


def test_a_restarted_worker_s_processes_are_new_lanes_in_worker_then_start_order() -> None:
    tl = timeline.build(*killed_worker())
    assert [lane.label for lane in tl.lanes] == [
        "worker1 pid 7", "worker2 pid 8", "worker2 pid 9", "worker2 pid 8 (restarted)",
        "worker2 pid 9 (restarted)"]
    assert [round(lane.first_t, 3) for lane in tl.lanes] == [0.1, 0.2, 0.4, 4.0, 4.0]


def test_times_are_seconds_since_the_first_submission_and_the_fault_window_is_shaded() -> None:
    tl = timeline.build(*killed_worker())
    assert tl.window is not None
    assert (tl.window.fault, tl.window.target) == ("sigkill-worker", "worker2")
    assert tl.window.start == pytest.approx(0.5)  # when injecting began (fired)
    assert tl.window.end == pytest.approx(3.1)  # healed
    assert [s for s, _ in tl.submissions] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert tl.end == pytest.approx(5.0)


def test_executions_a_kill_cut_end_where_their_process_died() -> None:
    tl = timeline.build(*killed_worker())
    cut = [b for b in tl.bars if b.cut]
    assert sorted((b.task, b.klass) for b in cut) == [(task(1), "re-executed"), (task(4), "lost")]
    assert all(b.end == pytest.approx(0.5) for b in cut)
    died = {(tl.lanes[d.lane].label, round(d.t, 3)) for d in tl.deaths}
    assert died == {("worker2 pid 8", 0.5), ("worker2 pid 9", 0.5)}  # worker1 lived on


def test_a_task_that_ran_twice_has_two_bars_of_its_class_and_a_lost_one_never_run_a_mark() -> None:
    tl = timeline.build(*killed_worker())
    twice = tl.of_task(task(2))
    assert [(tl.lanes[b.lane].label, b.ended, b.klass) for b in twice] == [
        ("worker1 pid 7", "completed", "duplicated"),
        ("worker2 pid 9 (restarted)", "completed", "duplicated")]
    again = tl.of_task(task(1))
    assert [b.ended for b in again] == ["cut", "completed"]
    assert [b.klass for b in tl.of_task(task(0))] == ["normal"]
    assert [(m.task, m.klass, round(m.t, 3)) for m in tl.marks] == [(task(3), "lost", 0.3)]


def test_a_pool_child_kill_ends_only_that_child_at_its_own_record() -> None:
    records = [
        rec("worker_ready", -1.0, worker="worker1", pid=1, task=None),
        rec("submission", 0.0, task=task(0), outcome="ok"),
        rec("submission", 0.1, task=task(1), outcome="ok"),
        *run(0, "a", "worker1", 8, 0.1, None),
        *run(1, "b", "worker1", 9, 0.2, 2.0),
        rec("process_killed", 0.7, worker="worker1", killed_pid=8, task=None),
        rec("fault", 0.7, fault="sigkill-pool-child", target="worker1", fired=T0 + 0.68,
            task=None),
        rec("healed", 1.5, fault="sigkill-pool-child", target="worker1", task=None),
    ]
    tl = timeline.build(records, result(fault="sigkill-pool-child",
                                        anomalies={"lost": [task(0)]}))
    cut = tl.of_task(task(0))[0]
    assert (cut.cut, cut.klass, round(cut.end, 3)) == (True, "lost", 0.7)
    assert [(tl.lanes[d.lane].label, round(d.t, 3)) for d in tl.deaths] == [
        ("worker1 pid 8", 0.7)]
    assert tl.marks == ()  # it started: marked where it was cut, not at its submission


def test_a_crash_after_the_side_effect_cuts_what_else_its_process_was_running() -> None:
    records = [
        rec("worker_ready", -1.0, worker="app", pid=1, task=None),
        *(rec("submission", 0.1 * n, task=task(n), outcome="ok") for n in range(3)),
        rec("submission", 4.3, task=task(3), outcome="failed", t_sent=T0 + 0.3),  # timed out
        *run(0, "a", "app", 1, 0.0, 1.0),
        rec("crashing", 1.01, task=task(0), execution="a", worker="app", pid=1),
        *run(1, "b", "app", 1, 0.1, None),
        *run(2, "c", "app", 1, 0.2, None),
        rec("fault", 0.05, fault="crash-after-effect", target="app", fired=T0 + 0.05, task=None),
        rec("worker_ready", 2.0, worker="app", pid=1, task=None),
        rec("healed", 2.5, fault="crash-after-effect", target="app", task=None),
    ]
    tl = timeline.build(records, result(fault="crash-after-effect",
                                        anomalies={"lost": [task(1), task(2)]}))
    assert [round(d.t, 3) for d in tl.deaths] == [1.01]
    cut = [b for b in tl.bars if b.cut]
    assert [(b.task, round(b.end, 3)) for b in cut] == [(task(1), 1.01), (task(2), 1.01)]
    assert tl.lanes[0].rows == 3  # three executions at once in one process: side by side
    assert sorted(b.row for b in tl.bars) == [0, 1, 2]
    assert [(round(t, 3), outcome) for t, outcome in tl.submissions][-1] == (0.3, "failed")


def test_other_scenarios_records_in_a_shared_ledger_are_left_out() -> None:
    records, res = killed_worker()
    other = "celery-redis.acks-late-prefetch-1.none"
    records += [
        rec("submission", 10.0, task=task(0, other), outcome="ok"),
        *[{**r, "task": task(0, other), "t": r["t"] + 10.0}
          for r in run(0, "x", "worker1", 7, 0.0, 1.0)],
        rec("fault", 20.0, fault="sigkill-worker", target="worker1", fired=T0 + 20.0,
            task=None),  # a later scenario's fault: outside this one's span
    ]
    tl = timeline.build(records, res)
    assert all(b.task.startswith(SCENARIO) for b in tl.bars)
    assert tl.window is not None and tl.window.target == "worker2"
    control = timeline.build(records, result(scenario=other, fault="none"))
    assert control.window is None and control.deaths == () and len(control.bars) == 1


def test_too_many_processes_share_a_lane_per_worker() -> None:
    records = [rec("worker_ready", -1.0, worker="worker1", pid=1, task=None)]
    for n in range(timeline.MAX_LANES + 5):
        records += [rec("submission", 0.01 * n, task=task(n), outcome="ok"),
                    *run(n, f"e{n}", "worker1", 100 + n, 0.01 * n, 0.01 * n + 0.5)]
    tl = timeline.build(records, result(fault="none"))
    assert [lane.label for lane in tl.lanes] == [
        f"worker1 ({timeline.MAX_LANES + 5} processes)"]


def test_an_attempt_s_tasks_carry_its_own_prefix() -> None:
    res = result(anomalies={"lost": [f"{SCENARIO}~attempt-2.00000"]})
    res.attempt = 2
    assert timeline.prefix_of(res) == f"{SCENARIO}~attempt-2"
    records = [{**rec("submission", 0.0, outcome="ok"), "task": f"{SCENARIO}~attempt-2.00000"},
               rec("submission", 0.0, task=task(0), outcome="ok")]  # attempt 1's
    tl = timeline.build(records, res)
    assert [(m.task, m.klass) for m in tl.marks] == [(f"{SCENARIO}~attempt-2.00000", "lost")]
    assert len(tl.submissions) == 1


def test_the_png_is_written_and_its_bytes_depend_only_on_the_input(tmp_path: Path) -> None:
    tl = timeline.build(*killed_worker())
    first = timeline.draw(tl, tmp_path / "a" / "timeline.png")
    second = timeline.draw(timeline.build(*killed_worker()), tmp_path / "b.png")
    data = first.read_bytes()
    assert data.startswith(PNG) and data == second.read_bytes()
    assert b"Software" not in data and b"matplotlib" not in data.lower()


def test_labels_name_task_numbers_as_ranges() -> None:
    tasks = [task(n) for n in (3, 5, 8, 9, 10, 11)]
    assert timeline._numbers(tasks, SCENARIO) == "#3, #5, #8–#11"
    assert timeline._short(task(12), SCENARIO) == "#12"


def report_of(*results: ScenarioResult) -> RunReport:
    return RunReport(measurement_valid=True, scenarios=list(results), run_id="r1")


def test_the_summary_holds_loss_and_duplication_per_configuration_and_fault(
        tmp_path: Path) -> None:
    lossy = result(lost=3)
    dup = result(scenario="celery-redis.acks-late-prefetch-1.cut-worker-broker",
                 fault="cut-worker-broker", duplicated=2)
    other = result(scenario="arq.arq-max-tries-5.sigkill-worker", lost=0)
    summary = timeline.summarize(report_of(lossy, dup, other))
    assert summary.rows == ("celery-redis · acks-late-prefetch-1", "arq · arq-max-tries-5")
    assert summary.faults == ("sigkill-worker", "cut-worker-broker")
    assert summary.lost == ((3, 0), (0, None))
    assert summary.duplicated == ((0, 2), (0, None))
    # at-least-once: the loss broke the claim, the duplicate did not
    assert summary.lost_breaks == ((True, False), (False, False))
    assert summary.duplicated_breaks == ((False, False), (False, False))
    a = timeline.draw_summary(summary, tmp_path / "a.png")
    b = timeline.draw_summary(timeline.summarize(report_of(lossy, dup, other)), tmp_path / "b.png")
    assert a.read_bytes().startswith(PNG) and a.read_bytes() == b.read_bytes()


def write_ledger(directory: Path, records: list[dict[str, Any]]) -> None:
    directory.mkdir(parents=True)
    (directory / "worker-x-1-abc.ledger").write_bytes(b"".join(encode(r) for r in records))


def a_run(tmp_path: Path) -> tuple[Path, RunReport]:
    """A run directory as the plugin leaves it: scenario folders and one ledger."""
    run_dir = tmp_path / "runs" / "r1"
    records, lossy = killed_worker()
    # A worker's settings name its task: the ledger reader's byte filter must not drop it.
    records[0]["effective"] = {"task": "queue_chaos_probe"}
    ledger = run_dir / "ledger" / "celery-redis-2"
    write_ledger(ledger, records)
    lossy.ledger_dir = str(ledger)
    clean = result(scenario="celery-redis.acks-late-prefetch-1.none", fault="none",
                   ledger_dir=str(ledger))
    for r in (lossy, clean):
        (run_dir / r.scenario).mkdir(parents=True)
        r.save(run_dir / r.scenario / "result.json")
    return run_dir, report_of(lossy, clean)


def test_records_of_reads_the_scenario_s_ledger_and_every_worker_ready(tmp_path: Path) -> None:
    _, report = a_run(tmp_path)
    records = timeline.records_of(report.scenarios[0])
    assert sum(r["kind"] == "worker_ready" for r in records) == 3
    assert timeline.build(records, report.scenarios[0]).lanes[-1].label.endswith("(restarted)")


def test_render_run_draws_the_scenarios_with_an_anomaly_and_the_summary(tmp_path: Path) -> None:
    run_dir, report = a_run(tmp_path)
    written = timeline.render_run(run_dir, report)
    assert written == [run_dir / SCENARIO / "timeline.png", run_dir / "durability.png"]
    everything = timeline.render_run(run_dir, report, everything=True, out=tmp_path / "out")
    assert [p.name for p in everything] == [f"{SCENARIO}.png",
                                            "celery-redis.acks-late-prefetch-1.none.png",
                                            "durability.png"]
    assert all(p.read_bytes().startswith(PNG) for p in everything)


def test_a_scenario_whose_ledger_is_elsewhere_is_skipped(tmp_path: Path) -> None:
    run_dir, report = a_run(tmp_path)
    report.scenarios[0].ledger_dir = str(tmp_path / "gone")
    assert timeline.render_run(run_dir, report) == [run_dir / "durability.png"]


def test_find_report_reads_the_report_the_worlds_or_the_results(tmp_path: Path) -> None:
    run_dir, _ = a_run(tmp_path)
    from_results = timeline.find_report(run_dir)
    assert sorted(s.scenario for s in from_results.scenarios) == [
        "celery-redis.acks-late-prefetch-1.none", SCENARIO]
    worlds = tmp_path / "runs" / "r2"
    for k, scenario in ((1, from_results.scenarios[0]), (2, from_results.scenarios[1])):
        (worlds / f"world-{k}").mkdir(parents=True)
        (worlds / f"world-{k}" / "durability.json").write_text(json.dumps(
            {"scenarios": [scenario.as_dict()], "seed": 7, "run_id": f"r2-w{k}"}))
    merged = timeline.find_report(worlds)
    assert (merged.run_id, len(merged.scenarios)) == ("r2", 2)
    (run_dir / "durability.json").write_text(json.dumps(
        {"scenarios": [from_results.scenarios[0].as_dict()], "run_id": "r1"}))
    assert len(timeline.find_report(run_dir).scenarios) == 1
    assert len(timeline.find_report(run_dir / "durability.json").scenarios) == 1
    with pytest.raises(ReportError):
        timeline.find_report(tmp_path / "nothing")


def test_the_timeline_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, _ = a_run(tmp_path)
    assert cli.main(["timeline", str(run_dir), "--out", str(tmp_path / "pictures")]) == 0
    out = capsys.readouterr().out
    assert f"written: {tmp_path / 'pictures' / SCENARIO}.png" in out
    assert (tmp_path / "pictures" / "durability.png").is_file()
    assert cli.main(["timeline", str(tmp_path / "nothing")]) == 2
    assert "error:" in capsys.readouterr().err


def test_a_report_s_pictures_are_keyed_by_result_one_per_scenario_with_trials(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    _, run_report = a_run(tmp_path)
    lossy, clean = run_report.scenarios
    # The second trial lost more: its timeline is the scenario's, under its own key.
    again = replace(lossy, trial=2, counts={**lossy.counts, "lost": lossy.counts["lost"] + 1})
    drawn = timeline.report_pictures([lossy, clean, again], tmp_path / "pictures")
    assert sorted(drawn) == ["", f"{SCENARIO}~trial-2"]
    assert drawn[again.key] == f"pictures/{SCENARIO}~trial-2.png"
    assert (tmp_path / "pictures" / f"{SCENARIO}~trial-2.png").is_file()


def test_a_written_report_embeds_its_pictures_folded(tmp_path: Path) -> None:
    from harness import report

    _, run_report = a_run(tmp_path)
    from dataclasses import asdict

    from harness.checker import Counts
    from harness.matrix import Settings

    for scenario in run_report.scenarios:  # every count and setting a report's tables show
        scenario.counts = Counts(**scenario.counts).as_dict()
        scenario.settings = asdict(Settings())
    folder = tmp_path / "reports"
    (folder / "durability-pictures").mkdir(parents=True)
    (folder / "durability-pictures" / "stale.png").write_bytes(PNG)  # an earlier run's
    report.write(run_report.scenarios, folder, pictures=True, run_id="r", date="d", seed=1,
                 replay="x")
    drawn = sorted(p.name for p in (folder / "durability-pictures").iterdir())
    assert drawn == [f"{SCENARIO}.png", "durability.png"]  # the anomalous one and the summary
    text = (folder / "durability.md").read_text()
    assert ("![Loss and duplication per configuration and fault]"
            "(durability-pictures/durability.png)") in text
    assert f"](durability-pictures/{SCENARIO}.png)" in text  # embedded, however labelled
    assert "<details><summary>Timelines: " in text
    plain = tmp_path / "plain"
    report.write(run_report.scenarios, plain, run_id="r", date="d", seed=1, replay="x")
    assert "durability-pictures" not in (plain / "durability.md").read_text()


def test_with_trials_a_scenario_gets_one_timeline_its_most_telling_trial() -> None:
    from dataclasses import replace

    from tests.unit.build import scenario_result as s

    clean, lossy = s(), s(counts={"lost": 3}, verdict="VIOLATED")
    worse = s(counts={"lost": 5}, verdict="VIOLATED")
    trials = [clean, replace(lossy, trial=2), replace(worse, trial=3)]
    [shown] = timeline._telling(trials)
    assert shown.trial == 3  # the worst verdict, then the most tasks lost
    other = replace(clean, scenario="other")
    assert [r.scenario for r in timeline._telling([*trials, other])] == [clean.scenario, "other"]
