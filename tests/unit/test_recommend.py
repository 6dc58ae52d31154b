"""harness/recommend.py: the configuration each backend should run, by the rule it prints."""

from __future__ import annotations

from harness import recommend
from harness.recommend import NOT_TRIED, choose, comparison, shipped
from harness.result import ScenarioResult
from harness.trials import cells
from tests.unit.test_report import result

IDEMPOTENT = "acks-late-idempotent"
LATE = "acks-late-prefetch-1"
AOF = "acks-late-aof-everysec"
SHIPPED = "acks-early-prefetch-4"  # Celery's own defaults: acks early, prefetch 4
FASTAPI = "fastapi-graceful-10"


def celery_run() -> list[ScenarioResult]:
    return [
        result(SHIPPED, "none", completed=40),
        result(SHIPPED, "sigkill-worker", target="worker1", completed=38, lost=2),
        result(LATE, "none", completed=40),
        result(LATE, "sigkill-worker", target="worker1", completed=39, duplicated=1),
        result(LATE, "broker-sigkill", target="broker", verdict="VIOLATED", lost=7),
        result(IDEMPOTENT, "none", completed=40),
        result(IDEMPOTENT, "sigkill-worker", target="worker1", completed=40),
        result(IDEMPOTENT, "crash-after-effect", target="worker1", completed=40),
        result(AOF, "none", completed=40),
        result(AOF, "broker-sigkill", target="broker", completed=40),
    ]


def test_the_strongest_claim_that_held_everywhere_is_chosen() -> None:
    [choice] = choose(cells(celery_run()))
    assert choice.configuration == IDEMPOTENT
    assert choice.claim == "effectively-once"
    assert choice.held == ["sigkill-worker", "crash-after-effect"]
    assert not choice.weak
    assert choice.risks == []


def test_a_configuration_that_broke_its_claim_anywhere_is_never_chosen() -> None:
    run = [r for r in celery_run() if r.configuration in (LATE, SHIPPED)]
    [choice] = choose(cells(run))
    # acks late ran twice under a kill (allowed) but lost 7 under a broker kill: out.
    assert choice.configuration == SHIPPED
    assert choice.claim == "at-most-once"
    assert choice.weak  # it keeps its claim by losing work
    assert choice.risks == ["sigkill-worker: 2 lost (allowed)"]


def test_a_fault_the_choice_did_not_meet_says_who_held_there_and_how_they_differ() -> None:
    [choice] = choose(cells(celery_run()))
    [gap] = [g for g in choice.gaps if g.startswith("broker-sigkill")]
    assert gap == (f"broker-sigkill: broken for {LATE} (7 lost: VIOLATED); held with "
                   f"redis_appendonly=yes ({AOF}: clean)")
    assert choice.also == []


def test_a_fault_nothing_survived_is_an_open_risk_and_one_all_held_is_only_named() -> None:
    run = [*celery_run(),
           result(LATE, "blackhole-worker-broker", target="worker1", verdict="VIOLATED", lost=1),
           result(LATE, "sigterm-worker", target="worker1", completed=40)]
    [choice] = choose(cells(run))
    assert ("blackhole-worker-broker: broken for every configuration tried: "
            f"{LATE} (1 lost: VIOLATED)") in choice.gaps
    assert choice.also == ["sigterm-worker"]


def test_more_faults_met_wins_between_equal_claims() -> None:
    run = [r for r in celery_run() if r.configuration in (LATE, AOF)]
    run = [r for r in run if r.fault != "broker-sigkill" or r.configuration == AOF]
    run.append(result(LATE, "sigterm-worker", target="worker2", completed=40))
    [choice] = choose(cells(run))
    assert choice.configuration == LATE  # two faults met against one


def test_fewer_losses_and_duplicates_then_throughput_break_ties() -> None:
    run = [r for r in celery_run()
           if r.configuration in (LATE, AOF) and r.fault != "broker-sigkill"]
    run.append(result(AOF, "sigkill-worker", target="worker1", completed=40))
    assert choose(cells(run))[0].configuration == AOF  # no duplicate against one
    run = [r for r in run if not (r.configuration == LATE and r.fault == "sigkill-worker")]
    run.append(result(LATE, "sigkill-worker", target="worker1", completed=40))
    assert choose(cells(run), throughput={LATE: 300.0, AOF: 200.0})[0].configuration == LATE


def test_no_candidate_is_said_as_such() -> None:
    run = [result(LATE, "none", completed=40),
           result(LATE, "broker-sigkill", target="broker", verdict="VIOLATED", lost=7)]
    [choice] = choose(cells(run))
    assert choice.configuration is None


def test_callers_add_delay_recovery_and_cost() -> None:
    [choice] = choose(cells(celery_run()),
                      risk_of=lambda c: "3 tasks delayed" if c.fault == "sigkill-worker" else None,
                      recovery_of=lambda c: f"{c.fault}: about 1 h in production",
                      cost_of=lambda name: f"{name}: 480 tasks/s")
    assert choice.risks == ["sigkill-worker: 3 tasks delayed"]
    assert choice.cost == f"{IDEMPOTENT}: 480 tasks/s"
    assert choice.recovery == ""  # no recovery measured: nothing to translate


def test_shipped_is_the_configuration_with_the_library_defaults() -> None:
    assert shipped("celery-redis", cells(celery_run())) == SHIPPED
    assert shipped("celery-redis", cells([result(LATE, "none")])) is None
    assert shipped("a-team-backend", cells(celery_run())) is None


def test_comparison_has_the_catalogue_order_and_says_what_was_not_tried() -> None:
    run = [*celery_run(), result(FASTAPI, "none", completed=40),
           result(FASTAPI, "sigkill-worker", target="app", completed=32, lost=8)]
    found = cells(run)
    faults, rows = comparison(found, choose(found))
    assert faults == ["none", "sigkill-worker", "crash-after-effect"]
    assert [(r.backend, r.label, r.configuration) for r in rows] == [
        ("celery-redis", "recommended", IDEMPOTENT), ("celery-redis", "as shipped", SHIPPED),
        ("fastapi", "recommended", FASTAPI)]
    assert rows[1].cells == ["clean", "2 lost (allowed)", NOT_TRIED]
    assert rows[2].cells == ["clean", "8 lost (allowed)", NOT_TRIED]


def test_the_rule_is_printed_as_written() -> None:
    assert "strength of its claim" in recommend.RULE
