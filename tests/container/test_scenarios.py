"""The harness end to end, on real containers: a small run that must see what it claims to.

A no-fault control must show nothing lost or duplicated; Celery acks early under a real SIGKILL of
a worker mid-task must show loss; a real Toxiproxy cut of a worker's broker connection must give a
valid, checked scenario. Then the report from these results must call the measurement valid.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness import cost, report
from harness.faults import window_records
from harness.matrix import CONFIGURATIONS
from harness.result import attempt_prefix
from harness.run import Run
from harness.scenario import run_valid_scenario
from harness.world import World
from queue_chaos_agent.ledger import read_ledger
from tests.container.conftest import SMALL, SmallRun

pytestmark = pytest.mark.container



def test_control_loses_and_duplicates_nothing(run_small: SmallRun) -> None:
    result = run_small("acks-early-prefetch-1", "none")
    assert result.valid, result.validity
    assert result.counts["submitted"] == SMALL.tasks
    assert result.counts["completed"] == SMALL.tasks
    assert result.counts["lost"] == result.counts["duplicated"] == result.counts["stuck"] == 0


def test_sigkill_with_acks_early_loses_tasks(run_small: SmallRun) -> None:
    result = run_small("acks-early-prefetch-4", "sigkill-worker")
    assert result.valid, result.validity
    assert result.in_flight_at_fault, "the kill must land mid-task"
    assert result.counts["lost"] >= 1
    assert result.verdict == "holds"  # at-most-once allows loss
    # The loss is the kill's: every lost task was sent before it (the fault record is written
    # once the kill has been delivered), and each either ran on the killed worker (acknowledged
    # when it started) or never started anywhere (Redis had handed it over with BRPOP and the
    # kill came before kombu recorded it as unacknowledged).
    ledger = read_ledger([result.ledger_dir])
    (fault,) = ledger.of_kind("fault")
    lost = set(result.anomalies["lost"])
    sent = {r["task"]: r.get("t_sent", r["t"]) for r in ledger.of_kind("submission")}
    assert all(sent[task] < fault["t"] for task in lost), (lost, fault)
    ran_elsewhere = {r["task"]: r["worker"] for r in ledger.of_kind("started")
                     if r["task"] in lost and r["worker"] != result.fault_target}
    assert not ran_elsewhere
    never_started = lost - {r["task"] for r in ledger.of_kind("started")}
    assert len(never_started) == result.counts["lost_unstarted"]


def test_sigkill_with_acks_late_redelivers(run_small: SmallRun) -> None:
    result = run_small("acks-late-prefetch-1", "sigkill-worker")
    assert result.valid, result.validity
    # acks late loses no task that started; only the BRPOP window (see above) could lose one
    assert result.counts["lost"] == result.counts["lost_unstarted"], result.anomalies
    assert result.counts["re_executed"] >= 1
    assert result.recovery_s is not None


def test_brpop_window_kill_loses_exactly_the_task_it_caught(run_small: SmallRun) -> None:
    """kombu's BRPOP window, reproduced: with Redis's replies to the worker throttled, the
    harness saw a message popped off the queue and recorded nowhere, froze the worker, saw the
    message stay there, killed the worker, and that very task is lost without ever starting,
    though acks late claims at least once (docs/kombu-brpop-window.md)."""
    result = run_small("acks-late-prefetch-1", "brpop-window-kill")
    prefix = attempt_prefix(result.scenario, result.attempt) + "."
    records = [r for r in read_ledger([result.ledger_dir], task_prefix=prefix).records
               if str(r.get("task", "")).startswith(prefix)]
    caught = {r["task"] for r in window_records(records, result.fault_target, 0.0)}
    assert caught, "a valid scenario caught a task in the window"
    assert caught <= set(result.in_flight_at_fault)
    assert {r["task"] for r in records if r.get("kind") == "started"}.isdisjoint(caught)
    assert set(result.anomalies.get("lost", [])) == caught, result.anomalies
    assert result.counts["lost"] == result.counts["lost_unstarted"] == len(caught)
    assert (result.guarantee, result.verdict) == ("at-least-once", "VIOLATED")



def test_dramatiq_sigstop_past_the_heartbeat_timeout_runs_the_messages_again(
        run_small: SmallRun) -> None:
    """A Dramatiq worker on Redis stopped for longer than heartbeat_timeout (25 s against 10 s)
    has its fetched messages requeued by another worker's maintenance; it finishes its own runs
    after SIGCONT, so they run twice: at least once, as Dramatiq claims, and nothing lost."""
    result = run_small("dramatiq-redis", "sigstop-worker")
    assert result.valid, result.validity
    assert result.in_flight_at_fault, "the stop must land mid-task"
    assert result.counts["lost"] == 0
    assert result.counts["re_executed"] >= 1
    assert (result.guarantee, result.verdict) == ("at-least-once", "holds")

def test_toxiproxy_cut_is_measured(world: World, run_small: SmallRun) -> None:
    result = run_small("acks-late-prefetch-1", "cut-worker-broker")
    assert result.valid, result.validity
    assert result.fault_target in world.workers
    assert result.counts["submitted"] == SMALL.tasks
    accounted = sum(result.counts[k] for k in ("completed", "duplicated", "lost", "stuck"))
    assert accounted == result.counts["acknowledged"]


def test_with_short_tasks_a_kill_counts_only_what_it_cut(world: World, chaos_run: Run) -> None:
    """Tasks of 50-150 ms finish between the trigger's read and the signal's landing: the
    scenario is valid only if the kill cut executions that never ended, and it names exactly
    those (an execution of the killed worker, started before the kill, with no end record)."""
    short = replace(SMALL, tasks=120, submit_rate=40.0, task_min_s=0.05, task_max_s=0.15,
                    fault_after_started=30)
    result = run_valid_scenario(world, CONFIGURATIONS["acks-early-prefetch-4"], "sigkill-worker",
                                short, chaos_run.seed, chaos_run.directory,
                                chaos_run.replay("acks-early-prefetch-4", "sigkill-worker"))
    chaos_run.results.append(result)
    assert result.valid, result.validity
    records = read_ledger([result.ledger_dir]).records
    (fault,) = [r for r in records if r.get("kind") == "fault"]
    ended = {r["execution"] for r in records
             if r.get("kind") in ("completed", "deduplicated", "crashing")}
    cut = {r["task"] for r in records if r.get("kind") == "started"
           and r["worker"] == result.fault_target and r["t"] <= fault["fired"]
           and r["execution"] not in ended}
    assert result.in_flight_at_fault, "a valid kill cut at least one execution"
    assert set(result.in_flight_at_fault) <= cut, (result.in_flight_at_fault, cut)


def test_a_control_measures_the_cost_of_its_settings(world: World, chaos_run: Run) -> None:
    """After its own check, a control drains a backlog and serves a steady load on the same
    containers: both figures valid, each traced back to the ledger, its own counts untouched."""
    small = replace(SMALL, cost_tasks=60, cost_latency_tasks=20, cost_latency_rate=40.0)
    result = run_valid_scenario(world, CONFIGURATIONS["acks-late-prefetch-1"], "none", small,
                                chaos_run.seed, chaos_run.directory,
                                chaos_run.replay("acks-late-prefetch-1", "none"))
    chaos_run.results.append(result)
    assert result.valid, result.validity
    assert result.counts["submitted"] == result.counts["completed"] == SMALL.tasks
    figures = result.cost
    assert figures["valid"], figures["reason"]
    assert figures["tasks_per_s"] > 0 and figures["latency_tasks"] >= 1
    assert 0 < figures["p50_s"] <= figures["p99_s"] < small.drain_s
    assert "cost" in result.phase_s
    # The figure is the ledger's: the measured backlog's (the pilot's, when it sized none
    # larger) completions, from the resume the ledger recorded.
    tasks = figures["throughput_tasks"]
    part = cost.PILOT if tasks == figures["pilot_tasks"] else cost.THROUGHPUT
    tagged = cost.cost_prefix(attempt_prefix(result.scenario, result.attempt), part)
    ledger = read_ledger([result.ledger_dir], task_prefix=tagged + ".")
    done = [float(r["t"]) for r in ledger.of_kind("completed")]
    (mark,) = [r for r in ledger.of_kind("backlog_resumed") if r["prefix"] == tagged]
    assert len(done) == tasks
    assert figures["tasks_per_s"] == round(tasks / (max(done) - mark["resumed"]), 1)


def test_report_of_this_run_is_a_valid_measurement(chaos_run: Run) -> None:
    if len(chaos_run.results) < 2:
        pytest.skip("needs the scenarios above")
    path, proof = report.write(chaos_run.results, chaos_run.directory, run_id=chaos_run.run_id,
                               date=chaos_run.started, seed=chaos_run.seed,
                               replay=chaos_run.replay())
    assert proof.valid, proof.lines
    text = path.read_text()
    assert "VALID" in text and "acks-early-prefetch-4" in text
