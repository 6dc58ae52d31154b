"""harness/cost.py: the cost figures from ledger records, their checks, and what the report shows
(the measuring itself needs containers: tests/container/test_scenarios.py)."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any, cast

import pytest

from harness import cost
from harness.backend import Capability
from harness.checker import Counts, check
from harness.matrix import MatrixError, Settings
from harness.result import ScenarioResult, attempt_prefix
from harness.workload import plan_tasks
from harness.world import World
from queue_chaos_agent.ledger import LedgerWriter, read_ledger
from tests.unit.build import scenario_result

PREFIX = "celery-redis.acks-late-prefetch-1.none"


def records(tasks: int, *, sent: float = 10.0, took: float = 0.01,
            prefix: str = PREFIX + "~cost-lat") -> list[dict[str, Any]]:
    """Each task submitted at ``sent + n`` and completed ``took * (n + 1)`` later."""
    found: list[dict[str, Any]] = []
    for n in range(tasks):
        task = f"{prefix}.{n:05d}"
        found += [{"kind": "submission", "task": task, "outcome": "ok", "t": sent + n,
                   "t_sent": sent + n},
                  {"kind": "started", "task": task, "execution": f"e{n}", "t": sent + n},
                  {"kind": "completed", "task": task, "execution": f"e{n}",
                   "t": sent + n + took * (n + 1)}]
    return found


def test_cost_tasks_are_never_the_control_s_nor_a_re_run_s(tmp_path: Path) -> None:
    """The control's check and timeline read ``<prefix>.``: a cost task is not under it, nor
    under a re-run attempt's prefix."""
    writer = LedgerWriter(tmp_path, "harness")
    for part in (cost.THROUGHPUT, cost.LATENCY):
        writer.write("submission", task=f"{cost.cost_prefix(PREFIX, part)}.00000", outcome="ok")
    writer.write("submission", task=f"{PREFIX}.00000", outcome="ok")
    own = read_ledger([tmp_path], task_prefix=PREFIX + ".").of_kind("submission")
    assert [r["task"] for r in own] == [f"{PREFIX}.00000"]
    assert not cost.cost_prefix(PREFIX, cost.LATENCY).startswith(attempt_prefix(PREFIX, 2))


def test_a_figure_needs_every_task_completed_exactly_once() -> None:
    clean = records(4)
    assert cost.judge(check(clean).counts, planned=4) == ""
    assert cost.judge(check(clean).counts, planned=5) == "4 of 5 completed exactly once"
    again = [{**r, "execution": "again"} for r in clean[:3]]  # task 0 started and completed again
    assert cost.judge(check([*clean, *again[1:]]).counts, planned=4) == (
        "3 of 4 completed exactly once, 1 duplicated, 1 re-executed")
    failed = [{**r, "outcome": "failed"} if r["kind"] == "submission" and
              r["task"].endswith("00000") else r for r in clean]
    assert cost.judge(check(failed).counts, planned=4) == (
        "3 of 4 completed exactly once, 1 failed, 1 recovered")
    assert cost.judge(Counts(completed=4, corrupt_records=1), planned=4) == (
        "1 corrupt ledger records")


def test_latency_is_first_completion_minus_submission() -> None:
    found = records(3, took=0.01)
    found.append({"kind": "completed", "task": found[0]["task"], "t": 99.0})  # a later run
    assert cost.latencies(found) == pytest.approx([0.01, 0.02, 0.03])
    assert cost.latencies([{"kind": "completed", "task": "x", "t": 1.0}]) == []  # never sent


def test_the_throughput_is_the_ledger_s_span_from_the_resume() -> None:
    done = [{"kind": "completed", "t": 100.0 + n / 100} for n in range(1, 401)]
    assert cost._throughput(done, resumed=100.0) == {"throughput_s": 4.0, "tasks_per_s": 100.0}


def control(configuration: str, backend: str = "celery-redis", **figures: Any) -> ScenarioResult:
    values: dict[str, Any] = {"throughput_tasks": 400, "throughput_s": 1.0, "tasks_per_s": 400.0,
                              "latency_tasks": 100, "latency_rate": 50.0, "p50_s": 0.01,
                              "p99_s": 0.05, "valid": True, "reason": "", "skipped": ""}
    return scenario_result(scenario=f"{backend}.{configuration}.none", backend=backend,
                           configuration=configuration, cost={**values, **figures})


def test_rows_rate_each_configuration_against_its_own_backend_s_fastest() -> None:
    results = [
        control("acks-early-prefetch-4", tasks_per_s=500.0),
        control("acks-late-prefetch-1", tasks_per_s=250.0, p50_s=0.02),
        scenario_result(configuration="acks-late-prefetch-1", fault="sigkill-worker"),  # no cost
        control("rabbit-acks-late", "celery-rabbitmq", tasks_per_s=100.0),
        control("fastapi-graceful-10", "fastapi", throughput_tasks=0, throughput_s=None,
                tasks_per_s=None, skipped=cost.IN_PROCESS),
    ]
    made = cost.rows(results)
    assert [(r.configuration, r.tasks_per_s, r.ratio) for r in made] == [
        ("acks-early-prefetch-4", 500.0, 1.0), ("acks-late-prefetch-1", 250.0, 0.5),
        ("rabbit-acks-late", 100.0, 1.0), ("fastapi-graceful-10", None, None)]
    assert made[1].p50_s == 0.02 and made[1].claim == "at-least-once" and made[1].valid
    assert made[3].p99_s == 0.05 and made[3].skipped == cost.IN_PROCESS
    assert cost.throughputs(results) == {"acks-early-prefetch-4": 500.0,
                                         "acks-late-prefetch-1": 250.0, "rabbit-acks-late": 100.0}


def test_an_invalid_measurement_is_never_a_number() -> None:
    bad = control("acks-late-prefetch-1", valid=False, tasks_per_s=None,
                  reason="throughput: 399 of 400 completed exactly once, 1 lost")
    trials = [control("acks-early-prefetch-4", tasks_per_s=rate) for rate in (300.0, 500.0, 400.0)]
    made = cost.rows([*trials, bad, control("acks-late-prefetch-1", tasks_per_s=900.0)])
    assert (made[0].tasks_per_s, made[0].measurements, made[0].ratio) == (400.0, 3, 1.0)  # median
    assert not made[1].valid and made[1].tasks_per_s is made[1].p50_s is made[1].ratio is None
    assert made[1].reason == ("1 of 2 measurements: throughput: 399 of 400 completed exactly "
                              "once, 1 lost")
    assert cost.words([bad], "acks-late-prefetch-1") == (
        "not measured: throughput: 399 of 400 completed exactly once, 1 lost")
    assert cost.tables([bad])[0].rows == [[
        "acks-late-prefetch-1", "at-least-once",
        "invalid: throughput: 399 of 400 completed exactly once, 1 lost", "-", "-", "-"]]


def test_words_say_the_figures_against_the_backend_s_fastest() -> None:
    results = [control("acks-early-prefetch-4", tasks_per_s=580.0),
               control("acks-late-prefetch-1", tasks_per_s=481.4, p50_s=0.0123, p99_s=0.0051)]
    assert cost.words(results, "acks-late-prefetch-1") == (
        "481 tasks/s draining a backlog of 400, 0.83 of its backend's fastest "
        "(acks-early-prefetch-4, 580 tasks/s); latency p50 12 ms, p99 5.1 ms at 50 tasks/s")
    assert cost.words(results, "acks-early-prefetch-4") == (
        "580 tasks/s draining a backlog of 400, its backend's fastest; latency p50 10 ms, "
        "p99 50 ms at 50 tasks/s")
    assert cost.words(results[:1], "acks-early-prefetch-4") == (
        "580 tasks/s draining a backlog of 400; latency p50 10 ms, p99 50 ms at 50 tasks/s")
    assert cost.words(results, "arq-max-tries-1") is None


def test_tables_per_backend_with_what_was_not_measured() -> None:
    results = [control("acks-early-prefetch-4", tasks_per_s=580.0),
               control("fastapi-graceful-10", "fastapi", throughput_tasks=0, tasks_per_s=None,
                       skipped=cost.IN_PROCESS)]
    redis, fastapi = cost.tables(results)
    assert redis.title == ("Celery on Redis (a backlog of 400 tasks, latency at 50 tasks/s)")
    assert redis.header == cost.HEADER
    assert redis.rows == [["acks-early-prefetch-4", "at-least-once", "580", "1.00", "10 ms",
                           "50 ms"]]
    assert fastapi.title == "FastAPI BackgroundTasks (latency at 50 tasks/s)"
    assert fastapi.rows[0][2:4] == ["not measured", "-"]
    assert fastapi.note == f"Not measured: {cost.IN_PROCESS}."
    assert cost.tables([scenario_result()]) == []  # no control measured a cost


def test_the_cost_survives_a_result_s_round_trip_and_older_results_have_none(
        tmp_path: Path) -> None:
    result = control("acks-late-prefetch-1")
    result.save(tmp_path / "result.json")
    assert ScenarioResult.load(tmp_path / "result.json").cost == result.cost
    assert scenario_result().cost == {}


@pytest.mark.parametrize(("values", "expected"), [
    ({"cost_tasks": -1}, "cost_tasks=-1 (valid: 0..10000, 0: not measured)"),
    ({"cost_latency_tasks": 10_001}, "cost_latency_tasks=10001 (valid: 0..10000"),
    ({"cost_latency_rate": 0.0}, "cost_latency_rate=0.0 (valid: >0 and <=1000)"),
])
def test_cost_settings_are_bounded(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(MatrixError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        Settings(**values)


def test_a_setting_of_zero_turns_the_phase_off() -> None:
    off = Settings(cost_tasks=0, cost_latency_tasks=0)
    assert cost.measure(cast(World, None), Path("/nonexistent"), off, random.Random(1), PREFIX,
                        frozenset()) == {}
    assert Settings().with_overrides({"cost_tasks": "0"}).cost_tasks == 0


class _Cluster:
    def __init__(self, unstoppable: str = "") -> None:
        self.signals: list[tuple[str, int]] = []
        self.unstoppable = unstoppable

    def signal_all(self, name: str, sig: int) -> None:
        if name == self.unstoppable and sig == signal.SIGSTOP:
            raise LookupError(f"{name} is gone")
        self.signals.append((name, sig))


class _Broker:
    def empty(self) -> bool:
        return True


class _World:
    """Two workers and a producer nobody listens on: every submission fails at once."""

    producer_url = "http://127.0.0.1:9"

    def __init__(self, cluster: _Cluster) -> None:
        self.workers = ["worker1", "worker2"]
        self.cluster = cluster
        self.broker = _Broker()

    @staticmethod
    def clock() -> float:
        return time.monotonic()


def test_a_backlog_is_submitted_to_stopped_workers_which_resume_whatever_happens(
        tmp_path: Path) -> None:
    world = _World(_Cluster())
    plans = plan_tasks("p~cost-tput", 3, cost.BACKLOG_RATE, 0.0, 0.0, random.Random(1))
    resumed = cost.backlog(cast(World, world), plans, LedgerWriter(tmp_path, "harness"))
    stop, cont = signal.SIGSTOP, signal.SIGCONT
    assert world.cluster.signals == [("worker1", stop), ("worker2", stop), ("worker1", cont),
                                     ("worker2", cont)]
    ledger = read_ledger([tmp_path])
    assert len(ledger.of_kind("submission")) == 3
    (mark,) = ledger.of_kind("backlog_resumed")
    assert (mark["resumed"], mark["prefix"], mark["tasks"]) == (resumed, "p~cost-tput", 3)
    broken = _World(_Cluster(unstoppable="worker2"))
    with pytest.raises(LookupError):
        cost.backlog(cast(World, broken), plans, LedgerWriter(tmp_path, "harness"))
    assert broken.cluster.signals == [("worker1", stop), ("worker1", cont), ("worker2", cont)]


def test_tasks_that_never_ran_make_no_figure_and_the_app_gets_no_backlog(
        tmp_path: Path) -> None:
    settings = Settings(cost_tasks=4, cost_latency_tasks=3, cost_latency_rate=1000.0, drain_s=5)
    world = _World(_Cluster())
    found = cost.measure(cast(World, world), tmp_path, settings, random.Random(1), PREFIX,
                         frozenset({Capability.BROKERED}))
    assert found["valid"] is False and found["tasks_per_s"] is found["p50_s"] is None
    assert found["reason"] == ("throughput: pilot backlog of 4: 0 of 4 completed exactly once, "
                               "4 failed; latency: 0 of 3 completed exactly once, 3 failed")
    assert (found["latency_tasks"], found["latency_rate"]) == (3, 1000.0)  # no pace to go by
    in_process = cost.measure(cast(World, _World(_Cluster())), tmp_path / "app", settings,
                              random.Random(1), PREFIX, frozenset({Capability.IN_PROCESS}))
    assert in_process["skipped"] == cost.IN_PROCESS and in_process["throughput_tasks"] == 0
    assert in_process["reason"] == "latency: 0 of 3 completed exactly once, 3 failed"


def test_the_pilot_sizes_the_backlog_to_the_configuration_s_pace() -> None:
    assert cost.backlog_size(900.0, largest=400, pilot=20) == 400  # Celery: the largest
    assert cost.backlog_size(120.0, largest=400, pilot=20) == 240
    assert cost.backlog_size(9.2, largest=400, pilot=20) == 0  # arq, max_jobs=2: the pilot is it
    assert cost.backlog_size(900.0, largest=10, pilot=10) == 0


def test_the_latency_load_stays_below_the_measured_capacity_for_the_same_time() -> None:
    settings = Settings(cost_latency_tasks=100, cost_latency_rate=50.0)
    assert cost.offered_load(settings, None) == (50.0, 100)  # nothing measured: as set
    assert cost.offered_load(settings, 900.0) == (50.0, 100)
    rate, tasks = cost.offered_load(settings, 9.2)
    assert (round(rate, 6), tasks) == (4.6, 10)  # 2 s of 4.6 tasks/s


def test_a_backend_whose_rows_differ_in_size_or_rate_says_them_per_row() -> None:
    results = [control("arq-max-tries-1", "arq", tasks_per_s=9.2, throughput_tasks=20,
                       latency_rate=4.6, p50_s=0.25),
               control("arq-max-jobs-8", "arq", tasks_per_s=36.0, throughput_tasks=36)]
    (table,) = cost.tables(results)
    assert table.title == "arq on Redis"
    assert table.rows == [
        ["arq-max-tries-1", "at-least-once", "9 (backlog of 20)", "0.26", "250 ms (at 4.6 tasks/s)",
         "50 ms"],
        ["arq-max-jobs-8", "at-least-once", "36 (backlog of 36)", "1.00", "10 ms (at 50 tasks/s)",
         "50 ms"]]
