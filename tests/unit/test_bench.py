"""harness/bench.py: the figures it derives and the table it prints (the measuring itself needs
containers: `make bench`)."""

from __future__ import annotations

from pathlib import Path

from harness.bench import Bench, Size, _matrix_figures, _overhead, ledger_write_us, render


def test_overhead_is_the_wall_the_tasks_and_the_quiet_period_did_not_need() -> None:
    records = [{"kind": "submission", "t_sent": 10.0}, {"kind": "submission", "t_sent": 11.0},
               {"kind": "completed", "t": 12.0}, {"kind": "completed", "t": 14.0}]
    assert _overhead(records, wall_s=8.0, quiet_s=1.0) == 3.0  # 8 - (14 - 10) - 1
    assert _overhead([], wall_s=8.0, quiet_s=1.0) == 8.0  # nothing ran: all of it


def test_a_ledger_write_is_timed(tmp_path: Path) -> None:
    assert ledger_write_us(tmp_path, records=50) > 0
    assert len(list(tmp_path.glob("*.ledger"))) == 1


def test_the_table_names_every_target_and_each_size(tmp_path: Path) -> None:
    sizes = [Size(tasks=n, wall_s=10.0, cpu_s=n / 2000, cpu_ms_per_task=0.5,
                  rss_mib=60.0 + n / 1000, completed=n, overhead_s=1.25, services_up_s=0.5,
                  phase_s={"drain": 2.0})
             for n in (100, 1_000, 10_000)]
    bench = Bench(date="d", run_id="r", sizes=sizes, provision_cached_s=0.3, ledger_write_us=6.0,
                  instrumented_ratio=0.9952, matrix=_matrix_figures(tmp_path / "none.json"))
    text = render(bench)
    for measure in ("default matrix, wall", "harness CPU per task", "harness memory",
                    "per-scenario overhead", "instrumented vs bare", "provisioning, cached"):
        assert measure in text
    assert "0.50 / 0.50 / 0.50 ms" in text
    assert "+9.0 MB" in text
    assert "| 10,000 | 10.0 s | 5.00 s | 0.50 ms | 70 MiB | 10,000 | 1.25 s | drain 2.0 |" in text
    assert "none.json does not exist" in bench.matrix["error"]
