"""harness/bench.py: the figures it derives and the table it prints (the measuring itself needs
containers: `make bench`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.bench import (
    _STEP,
    Bench,
    Cold,
    Size,
    Throughput,
    _matrix_figures,
    _overhead,
    celery_runtimes,
    last_cold,
    ledger_write_us,
    ratio,
    render,
    task_body_us,
    write,
)
from queue_chaos_agent.ledger import read_ledger


def test_overhead_is_the_wall_the_tasks_and_the_quiet_period_did_not_need() -> None:
    records = [{"kind": "submission", "t_sent": 10.0}, {"kind": "submission", "t_sent": 11.0},
               {"kind": "completed", "t": 12.0}, {"kind": "completed", "t": 14.0}]
    assert _overhead(records, wall_s=8.0, quiet_s=1.0) == 3.0  # 8 - (14 - 10) - 1
    assert _overhead([], wall_s=8.0, quiet_s=1.0) == 8.0  # nothing ran: all of it


def test_the_task_body_is_timed(tmp_path: Path) -> None:
    assert task_body_us(tmp_path, executions=50) >= 0.0
    assert len(read_ledger([tmp_path]).records) == 100  # started and completed, each run


def test_a_ledger_write_is_timed(tmp_path: Path) -> None:
    assert ledger_write_us(tmp_path, records=50) > 0
    assert len(list(tmp_path.glob("*.ledger"))) == 1


def test_the_table_names_every_target_and_each_size(tmp_path: Path) -> None:
    sizes = [Size(tasks=n, wall_s=10.0, cpu_s=n / 2000, cpu_ms_per_task=0.5,
                  rss_mib=60.0 + n / 1000, peak_mib=80.0 + n / 500, completed=n,
                  overhead_s=1.25, services_up_s=0.5,
                  phase_s={"drain": 2.0})
             for n in (100, 1_000, 10_000)]
    rounds = [Throughput(bare=False, tasks=3000, drain_s=4.0, tasks_per_s=750.0,
                         completed_in_ledger=3000, ledger_last_s=3.99, runtime_ms=2.95),
              Throughput(bare=True, tasks=3000, drain_s=3.75, tasks_per_s=800.0, runtime_ms=2.75)]
    bench = Bench(date="d", run_id="r", sizes=sizes, provision_cached_s=0.3, provision_built=[],
                  ledger_write_us=6.0, task_body_us=40.0, instrumented_ratio=ratio(rounds),
                  matrix=_matrix_figures(tmp_path / "none.json"), throughput=rounds,
                  cold=Cold(date="c", wall_s=150.0, steps={"base": 60.0}, log="x.log"))
    text = render(bench)
    for measure in ("default matrix, wall", "harness CPU per task", "harness memory",
                    "per-scenario overhead", "instrumented vs bare", "provisioning, cached"):
        assert measure in text
    assert "0.50 / 0.50 / 0.50 ms" in text
    assert "+9.0 MB after the scenario, +18.0 MB at its peak" in text
    assert ("| 10,000 | 10.0 s | 5.00 s | 0.50 ms | 70 MiB | 100 MiB | 10,000 | 1.25 s | "
            "drain 2.0 |") in text
    assert "0.938 (ledger 750-750 tasks/s, bare 800-800 tasks/s)" in text
    assert "adds 40.0 µs to an execution" in text
    assert "| <= 1 ms, flat: met |" in text
    assert "| <= 1 s: not met (services up apart: " in text  # overheads of 1.25 s
    assert ">= 0.95: not met (Celery's own runtimes put the difference inside the task call: " \
        "2.95 ms instrumented against 2.75 ms bare (+200 µs a task)" in text  # 750 / 800
    assert "| 1 | ledger | 3,000 | 4.00 s | 750 | 3,000 | 3.99 s | 2.95 ms |" in text
    assert "<= 3 min: met" in text and "<= 10 min: not met" in text  # no matrix report
    assert "0.993 for a slot time of 5.3 ms a task" in text
    assert "2.5 min (base 60 s; measured c)" in text
    write(bench, tmp_path)  # the cold figure is carried over to the next bench
    assert last_cold(tmp_path) == bench.cold
    assert json.loads((tmp_path / "bench.json").read_text())["throughput"][1]["bare"] is True
    assert "none.json does not exist" in bench.matrix["error"]


def test_ratio_is_of_the_median_rounds_and_zero_without_bare_rounds() -> None:
    def r(bare: bool, rate: float) -> Throughput:
        return Throughput(bare=bare, tasks=10, drain_s=1.0, tasks_per_s=rate)
    rounds = [r(False, 100.0), r(False, 90.0), r(False, 95.0), r(True, 100.0), r(True, 10.0),
              r(True, 100.0)]
    assert ratio(rounds) == 0.95  # one slow bare round (10/s) does not move it
    assert ratio([r(False, 100.0)]) == 0.0


def test_the_provisioning_log_lines_give_each_step() -> None:
    lines = ["base       queue-chaos-cold/debian-base:0123 (built, 81.5s)",
             "target shop queue-chaos-cold/target-shop:ab (cached, 0.0s)", "images ready"]
    found = {m[1]: float(m[2]) for line in lines if (m := _STEP.match(line))}
    assert found == {"base": 81.5, "target shop": 0.0}


def test_the_cold_figure_is_carried_over_only_when_readable(tmp_path: Path) -> None:
    assert last_cold(tmp_path) is None
    (tmp_path / "bench.json").write_text('{"cold": {"date": "d"}}')
    assert last_cold(tmp_path) is None  # an older file's shape: not carried over


def test_celery_s_own_runtimes_are_read_from_the_worker_logs(tmp_path: Path) -> None:
    (tmp_path / "worker1.log").write_text(
        "[INFO/ForkPoolWorker-1] Task queue_chaos.probe[a] succeeded in 0.0029s: None\n"
        "[INFO/MainProcess] Task queue_chaos.probe[b] received\n"
        "[INFO/ForkPoolWorker-2] Task queue_chaos.probe[b] succeeded in 0.0031s: None\n")
    assert celery_runtimes([tmp_path / "worker1.log"]) == [0.0029, 0.0031]


def test_a_run_of_several_trials_is_held_to_the_target_one_trial_at_a_time(
        tmp_path: Path) -> None:
    from tests.unit.test_report import result

    scenario = result().as_dict()
    report: dict[str, Any] = {"scenarios": [scenario, {**scenario, "trial": 2}], "run_id": "r",
              "timings": {"trial 1": 600.0, "trial 2": 560.0, "trial 1, shard 1: whole run": 1.0,
                          "whole run (2 trials, 4 worlds side by side)": 1160.0}}
    path = tmp_path / "durability.json"
    path.write_text(json.dumps(report))
    figures = _matrix_figures(path)
    assert figures["whole_run_s"] == {"trial 1": 600.0, "trial 2": 560.0}
    assert figures["scenarios"] == 1  # distinct scenarios, not one per trial
    del report["timings"]["trial 1"], report["timings"]["trial 2"]
    path.write_text(json.dumps(report))
    assert _matrix_figures(path)["whole_run_s"] == {
        "whole run (2 trials, 4 worlds side by side)": 1160.0}
