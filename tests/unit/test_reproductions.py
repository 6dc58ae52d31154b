"""The upstream reproductions: their registry, judges and rendering, without Docker."""

from __future__ import annotations

from typing import Any

import pytest

from harness import matrix
from harness import reproductions as rp
from harness.__main__ import main
from harness.faults import WarmRestarts
from harness.paths import ROOT
from tests.unit.build import scenario_result

CLEAN = {"submitted": 40, "completed": 40, "acknowledged": 40}


def result(fault: str = "sigkill-worker", **fields: Any) -> Any:
    counts = {**CLEAN, **fields.pop("counts", {})}
    settings = {"visibility_timeout_s": 15, "restore_interval_s": 2, "task_min_s": 0.6,
                **fields.pop("settings", {})}
    return scenario_result(fault=fault, counts=counts, settings=settings,
                           scenario=f"celery-redis.acks-late-prefetch-1.{fault}", **fields)


def test_every_reproduction_names_a_real_case_and_its_settings_hold() -> None:
    for r in rp.REPRODUCTIONS.values():
        assert r.configuration in matrix.CONFIGURATIONS
        assert r.fault in matrix.fault_names()
        assert r.thread and r.claim
        # an upstream thread, or the write-up of what this harness found (beside the report)
        assert r.url.startswith("https://github.com/") or (
            r.url.startswith("../docs/") and (ROOT / "reports" / r.url).resolve().is_file())
        matrix.Settings().with_overrides(dict(r.overrides))  # possible settings


def test_choose_refuses_unknown_names_listing_the_valid_ones() -> None:
    assert [r.name for r in rp.choose("")] == list(rp.REPRODUCTIONS)
    assert [r.name for r in rp.choose("arq-498, celery-3541")] == ["arq-498", "celery-3541"]
    assert rp.REPRODUCTIONS["arq-498"].fault == "broker-restart"  # "after restarting" Redis
    with pytest.raises(ValueError, match="unknown reproduction nope; valid: celery-3541"):
        rp.choose("celery-3541 nope")


def test_the_command_exits_2_on_a_bad_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "nope"]) == 2
    assert "valid: celery-3541" in capsys.readouterr().err


def test_groups_run_each_configuration_and_settings_once_with_only_their_faults() -> None:
    runs = rp.groups(rp.choose(""))
    assert [(c, rp.faults_of(m)) for (c, _), m in runs.items()] == [
        ("acks-late-prefetch-1", ["sigkill-worker", "sigterm-worker", "brpop-window-kill",
                                  "sigterm-worker-group"]),
        ("acks-late-prefetch-4", ["sigkill-worker"]),
        ("acks-late-prefetch-1", ["none"]),
        ("arq-max-tries-5", ["cut-worker-broker", "broker-restart"]),
        ("acks-early-prefetch-4", ["warm-restarts"]),  # celery#4354: steady submissions
        ("acks-early-prefetch-4", ["warm-restarts"]),  # celery#7950: workers mostly fetching
    ]
    five = rp.REPRODUCTIONS["celery-5935"]
    assert "visibility_timeout_s=3" in rp.settings_text(five.overrides)


def test_3541_loss_reproduces_full_completion_does_not() -> None:
    judge = rp.REPRODUCTIONS["celery-3541"].judge
    assert judge(result(counts={"completed": 37, "lost": 3}))[0] == rp.REPRODUCES
    verdict, why = judge(result(counts={"redelivered": 2}))
    assert verdict == rp.DOES_NOT and "redelivered 2" in why
    assert judge(result(valid=False, validity="fault never fired"))[0] == rp.CANNOT_TELL


def test_4984_compares_recovery_with_the_visibility_timeout() -> None:
    judge = rp.REPRODUCTIONS["celery-4984"].judge
    verdict, why = judge(result(recovery_s=11.2, fault_at_s=2.0, healed_at_s=6.0,
                                counts={"redelivered": 2}))
    assert verdict == rp.REPRODUCES and "completion 15.2s" in why and "timeout 15s" in why
    assert judge(result(recovery_s=1.1, counts={"redelivered": 2}))[0] == rp.DOES_NOT
    assert judge(result(recovery_s=None))[0] == rp.CANNOT_TELL


def test_3802_needs_a_completed_task_run_again() -> None:
    judge = rp.REPRODUCTIONS["celery-3802"].judge
    assert judge(result("sigterm-worker", counts={"duplicated": 1}))[0] == rp.REPRODUCES
    # an unfinished task run again is acks late as documented, not the report
    assert judge(result("sigterm-worker", counts={"re_executed": 2}))[0] == rp.DOES_NOT


def test_5935_needs_tasks_longer_than_the_visibility_timeout() -> None:
    judge = rp.REPRODUCTIONS["celery-5935"].judge
    long = {"visibility_timeout_s": 3, "task_min_s": 5.0}
    assert judge(result("none", settings=long, counts={"duplicated": 2}))[0] == rp.REPRODUCES
    assert judge(result("none", settings=long))[0] == rp.DOES_NOT
    assert judge(result("none", counts={"duplicated": 2}))[0] == rp.CANNOT_TELL


def test_arq_a_dead_worker_after_a_link_fault_reproduces() -> None:
    judge = rp.REPRODUCTIONS["arq-498"].judge
    verdict, why = judge(result("cut-worker-broker", revived=["arq-worker2"]))
    assert verdict == rp.REPRODUCES and "arq-worker2" in why
    assert judge(result("cut-worker-broker", counts={"stuck": 3}))[0] == rp.REPRODUCES
    # Redis forgetting its queue on a restart is loss, not a stopped worker
    verdict, why = judge(result("broker-restart", counts={"completed": 27, "lost": 13,
                                                          "late": 4}))
    assert verdict == rp.DOES_NOT and "persistence" in why


def test_a_failed_self_proof_makes_a_faulted_case_cannot_tell_but_not_5935() -> None:
    r = rp.REPRODUCTIONS["celery-3541"]
    out = rp.judge(r, result(counts={"lost": 1}), run_valid=False)
    assert out.verdict == rp.CANNOT_TELL and "self-proof failed" in out.why
    five = rp.REPRODUCTIONS["celery-5935"]
    long = {"visibility_timeout_s": 3, "task_min_s": 5.0}
    assert rp.judge(five, result("none", settings=long, counts={"duplicated": 1}),
                    run_valid=False).verdict == rp.REPRODUCES
    assert rp.judge(r, None).verdict == rp.CANNOT_TELL


def test_render_has_a_table_per_reproduction_versions_and_the_replay() -> None:
    r = rp.REPRODUCTIONS["celery-3541"]
    res = result(counts={"redelivered": 2}, versions={"celery": "5.7.0"},
                 servers={"redis-server": "7.0.15"})
    missing = rp.REPRODUCTIONS["arq-435"]
    text = rp.render([rp.judge(r, res, run="runs/x/world-1", run_valid=True),
                      rp.judge(missing, None)], date="2026-12-04")
    assert "## celery-3541" in text and "## arq-435" in text
    assert "celery 5.7.0, redis-server 7.0.15" in text
    assert "| verdict | **does not reproduce** |" in text
    assert "queue-chaos reproduce celery-3541 arq-435" in text
    data = rp.as_json([rp.judge(r, res)])
    assert data["reproductions"][0]["verdict"] == rp.DOES_NOT  # type: ignore[index]


def test_render_gives_a_verdict_per_release_when_run_in_passes() -> None:
    r = rp.REPRODUCTIONS["celery-3541"]
    old = result(counts={"redelivered": 2}, servers={"redis-server": "7.0.15"})
    new = result(counts={"lost": 2, "completed": 38}, servers={"redis-server": "8.0.2"})
    outcomes = [rp.judge(r, old, release="bookworm"), rp.judge(r, new, release="trixie")]
    text = rp.render(outcomes, date="d")
    assert ("| reproduction | bookworm (redis-server 7.0.15) | trixie (redis-server 8.0.2) |"
            in text)
    assert "| celery-3541 (celery/celery#3541) | does not reproduce | reproduces |" in text
    assert "| verdict (trixie) | **reproduces** |" in text
    assert "queue-chaos reproduce celery-3541 --passes bookworm,trixie" in text
    data = rp.as_json(outcomes)
    assert [x["release"] for x in data["reproductions"]] == ["bookworm", "trixie"]  # type: ignore[attr-defined]


def test_an_unknown_pass_is_refused_naming_the_valid_ones(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "celery-3541", "--passes", "sid"]) == 2
    assert "unknown pass sid" in capsys.readouterr().err


def test_1836_loss_after_the_group_sigterm_reproduces_full_recovery_does_not() -> None:
    judge = rp.REPRODUCTIONS["kombu-1836"].judge
    cut = {"in_flight_at_fault": ["a", "b"], "knobs": {"acks_late": True}}
    verdict, why = judge(result("sigterm-worker-group", counts={"completed": 38, "lost": 2},
                                **cut))
    assert verdict == rp.REPRODUCES and "cut by the group SIGTERM 2" in why
    assert judge(result("sigterm-worker-group", counts={"stuck": 1}, **cut))[0] == rp.REPRODUCES
    verdict, why = judge(result("sigterm-worker-group", counts={"redelivered": 2}, **cut))
    assert verdict == rp.DOES_NOT and "redelivered 2" in why
    assert judge(result("sigterm-worker-group", drained=False, **cut))[0] == rp.CANNOT_TELL
    # without task_reject_on_worker_lost the loss is Celery's documented default: said so
    verdict, why = judge(result("sigterm-worker-group", counts={"lost": 2},
                                in_flight_at_fault=["a", "b"],
                                knobs={"acks_late": True, "reject_on_worker_lost": False}))
    assert verdict == rp.REPRODUCES and "documented" in why
    assert "documented" not in judge(result("sigterm-worker-group", counts={"lost": 2},
                                            **cut))[1]
    # acks early loses a killed child's task by design: not the thread's configuration
    verdict, why = judge(result("sigterm-worker-group", counts={"lost": 2},
                                knobs={"acks_late": False}))
    assert verdict == rp.CANNOT_TELL and "acks early" in why
    assert judge(result("sigterm-worker-group", valid=False,
                        validity="the fault fired while its target ran no task"))[0] \
        == rp.CANNOT_TELL


@pytest.mark.parametrize("name", ["celery-4354", "celery-7950"])
def test_shutdown_fetch_needs_a_task_lost_before_it_started(name: str) -> None:
    r = rp.REPRODUCTIONS[name]
    assert (r.configuration, r.fault) == ("acks-early-prefetch-4", "warm-restarts")
    judge = r.judge
    restarts = {"in_flight_at_fault": ["a", "b", "c"]}
    verdict, why = judge(result("warm-restarts", counts={"completed": 39, "lost": 1,
                                                         "lost_unstarted": 1}, **restarts))
    assert verdict == rp.REPRODUCES and "in flight at the restarts 3" in why
    # lost after starting: a warm shutdown lets running tasks finish; something else lost it
    verdict, why = judge(result("warm-restarts", counts={"completed": 39, "lost": 1}))
    assert verdict == rp.CANNOT_TELL and "after they had started" in why
    assert judge(result("warm-restarts", counts={"stuck": 2}))[0] == rp.CANNOT_TELL
    assert judge(result("warm-restarts", drained=False))[0] == rp.CANNOT_TELL
    verdict, why = judge(result("warm-restarts", counts={"redelivered": 3}, **restarts))
    assert verdict == rp.DOES_NOT and "redelivered 3" in why
    assert judge(result("warm-restarts", counts={"submitted": 0}))[0] == rp.CANNOT_TELL


def test_the_two_shutdown_threads_run_apart_with_their_own_settings() -> None:
    """Same configuration and fault, different workloads: busy workers restarted mid-task
    (#4354) and workers mostly waiting on the queue (#7950), each a run of its own."""
    four, seven = rp.REPRODUCTIONS["celery-4354"], rp.REPRODUCTIONS["celery-7950"]
    assert four.overrides != seven.overrides
    assert len(rp.groups([four, seven])) == 2
    slow = matrix.Settings().with_overrides(dict(seven.overrides))
    busy = matrix.Settings().with_overrides(dict(four.overrides))
    assert slow.submit_rate < busy.submit_rate and slow.task_max_s < busy.task_max_s
    # submissions outlast the fault's series of restarts (about 5 s each, measured)
    series_s = WarmRestarts.RESTARTS * 5
    assert busy.tasks / busy.submit_rate >= series_s and slow.tasks / slow.submit_rate >= series_s


def test_brpop_window_reproduces_only_when_the_caught_task_is_what_was_lost() -> None:
    r = rp.REPRODUCTIONS["kombu-brpop-window"]
    caught = {"in_flight_at_fault": ["s.7"]}
    lost = result("brpop-window-kill", counts={"lost": 1, "lost_unstarted": 1, "completed": 39},
                  anomalies={"lost": ["s.7"]}, verdict="VIOLATED", **caught)
    assert r.judge(lost)[0] == rp.REPRODUCES
    assert "s.7" in r.judge(lost)[1]
    assert r.judge(result("brpop-window-kill", **caught))[0] == rp.DOES_NOT
    other = result("brpop-window-kill", counts={"lost": 1, "lost_unstarted": 1},
                   anomalies={"lost": ["s.3"]}, **caught)
    assert r.judge(other)[0] == rp.CANNOT_TELL
    assert r.judge(result("brpop-window-kill", valid=False, validity="no window"))[0] == \
        rp.CANNOT_TELL
