"""harness/explain.py: the plain-language line for each anomaly, from hand-built results."""

from __future__ import annotations

from harness.explain import explain
from tests.unit.test_report import result

EARLY = "acks-early-prefetch-1"
LATE = "acks-late-prefetch-1"
IDEMPOTENCY = "An idempotency key checked before the side effect makes the repeat harmless."


def test_nothing_for_a_clean_result() -> None:
    assert explain(result(EARLY, "none", completed=40)) == []
    assert explain(result("arq-max-tries-5", "sigkill-worker", target="arq-worker1",
                          completed=40)) == []


# -- loss ---------------------------------------------------------------------------------------


def test_acks_early_loss_names_the_target_and_the_setting() -> None:
    for fault in ("sigkill-worker", "sigkill-pool-child", "sigterm-worker"):
        (line,) = explain(result(EARLY, fault, target="worker1", completed=37, lost=3))
        assert line.startswith("3 lost: they were running on worker1 when it died, and Celery "
                               "had acknowledged them when they started (acks early)"), fault
        assert "`task_acks_late=True`" in line


def test_redis_loss_before_the_first_start_is_the_brpop_window() -> None:
    (line,) = explain(result("acks-early-prefetch-4", "sigkill-worker", target="worker2",
                             completed=21, lost=3, lost_unstarted=1))
    assert line.startswith("2 lost: they were running on worker2 when it died")
    assert ("1 more lost before their first start: Redis had handed them to worker2 (BRPOP "
            "takes a message off the queue)") in line
    (line,) = explain(result(LATE, "sigkill-worker", target="worker1", completed=39, lost=1,
                             lost_unstarted=1))
    assert line.startswith("1 lost before their first start:")
    assert "acks late does not close this window" in line
    # elsewhere the same count changes nothing
    (line,) = explain(result(LATE, "broker-sigkill", target="redis", completed=30, lost=10,
                             lost_unstarted=10))
    assert line.startswith("10 lost: Redis ran without persistence")


def test_broker_loss_without_persistence_names_appendonly() -> None:
    for config, fault in ((LATE, "broker-sigkill"), (LATE, "broker-restart"),
                          ("arq-max-tries-5", "broker-sigkill")):
        (line,) = explain(result(config, fault, target="redis", completed=30, lost=10))
        assert line.startswith("10 lost: Redis ran without persistence (appendonly no)"), config
        assert "`appendonly yes`" in line and "`appendfsync always`" in line


def test_broker_loss_despite_persistence_says_so() -> None:
    (line,) = explain(result("acks-late-aof-everysec", "broker-sigkill", target="redis", lost=2))
    assert line.startswith("2 lost: the broker lost messages it had accepted despite appendonly")
    assert "without persistence" not in line


def test_fastapi_loss_says_the_tasks_lived_in_the_apps_memory() -> None:
    for fault in ("sigkill-worker", "crash-after-effect"):
        (line,) = explain(result("fastapi-graceful-10", fault, target="fastapi-app", lost=4))
        assert line.startswith("4 lost: BackgroundTasks live only in the app process's memory")
        assert "A broker-backed queue keeps them." in line


def test_arq_max_tries_1_loss_names_max_tries() -> None:
    (line,) = explain(result("arq-max-tries-1", "sigkill-worker", target="arq-worker2", lost=2))
    assert line.startswith("2 lost: arq would not run the job again after its first try died "
                           "(max_tries=1)")
    assert "max_tries=5" in line


def test_no_reject_pool_child_loss_names_reject_on_worker_lost() -> None:
    (line,) = explain(result("acks-late-no-reject", "sigkill-pool-child", target="worker1",
                             lost=1))
    assert "WorkerLostError" in line and "`task_reject_on_worker_lost=True`" in line


def test_celery_loss_under_a_stop_or_cut_names_the_unacked_hash() -> None:
    for fault in ("sigstop-worker", "cut-worker-broker", "blackhole-worker-broker"):
        (line,) = explain(result("acks-early-prefetch-4", fault, target="worker2", lost=2))
        assert line.startswith("2 lost: Redis had handed them to the stopped or cut-off worker")


def test_any_other_loss_is_stated_plainly() -> None:
    (line,) = explain(result("arq-max-tries-5", "cut-producer-broker", target="arq-producer",
                             lost=1))
    assert line == ("1 lost: acknowledged by the producer, never completed, and no longer in the "
                    "broker.")


# -- duplicates and re-executions ---------------------------------------------------------------


def test_duplicates_under_a_cut_name_the_visibility_timeout_and_idempotency() -> None:
    r = result(LATE, "cut-worker-broker", target="worker1", duplicated=2, extra_executions=2,
               re_executed=2, redelivered=2)
    (line,) = explain(r)
    assert line.startswith("2 duplicated (2 extra executions): the worker finished tasks while "
                           "cut off from the broker")
    assert "visibility timeout (15s)" in line
    assert line.endswith(IDEMPOTENCY)


def test_every_duplicate_line_gives_the_idempotency_advice() -> None:
    for config, fault, cause in (
        ("arq-max-tries-5", "sigstop-worker", "arq ran the job again once its in-progress key"),
        (LATE, "crash-after-effect", "the process died after the side effect but before Celery"),
        (LATE, "sigkill-worker", "a redelivery after the visibility timeout (15s)"),
    ):
        r = result(config, fault, target="w", duplicated=1, extra_executions=1, re_executed=1,
                   redelivered=1)
        (line,) = explain(r)
        assert line.startswith(f"1 duplicated (1 extra executions): {cause}"), config
        assert line.endswith(IDEMPOTENCY), config


def test_re_executions_stuck_late_submissions_and_truncation() -> None:
    r = result(LATE, "sigkill-worker", target="worker1", re_executed=3, duplicated=1,
               extra_executions=1, redelivered=3, stuck=2, late=4, indeterminate=1, failed=2,
               recovered=1, truncated_records=1, recovery_s=9.5,
               stuck_locations={"unacked": 2})
    text = " ".join(explain(r))
    assert "2 re-executed without a duplicate effect" in text
    assert "the backend delivered it again" in text
    assert "2 stuck at the drain deadline: 2 unacked." in text
    assert "The last redelivered task completed 9.5s after healing." in text
    assert "late" not in text  # lateness is the report's "delayed" column, against the control
    assert ("1 indeterminate and 2 failed submissions; 1 of them completed anyway "
            "(recovered).") in text
    assert "1 truncated ledger records" in text


def test_arq_re_execution_is_a_retry() -> None:
    (line,) = explain(result("arq-max-tries-5", "sigkill-worker", target="arq-worker1",
                             re_executed=2, redelivered=2))
    assert line.startswith("2 re-executed without a duplicate effect")
    assert line.endswith("the backend retried it.")


def test_late_after_the_heal_alone_is_not_explained() -> None:
    # Completing late after the heal mostly measures the backlog; the report's "delayed" column
    # holds a scenario against its control instead.
    assert explain(result(LATE, "cut-worker-broker", late=2)) == []


def test_redelivered_before_first_start_names_prefetch() -> None:
    r = result(LATE, "sigkill-worker", target="worker1", re_executed=1, redelivered=4)
    text = " ".join(explain(r))
    assert "1 re-executed without a duplicate effect" in text
    assert "3 redelivered before their first start" in text
    assert "visibility timeout (15s)" in text
    assert "`worker_prefetch_multiplier`" in text
    assert "redelivered before" not in " ".join(
        explain(result(LATE, "sigkill-worker", re_executed=2, redelivered=2)))
    # arq flags every retry as a redelivery; prefetch is Celery's
    assert "redelivered before" not in " ".join(
        explain(result("arq-max-tries-5", "sigkill-worker", re_executed=1, redelivered=3)))


def test_fastapi_tasks_cut_by_the_graceful_timeout_name_it() -> None:
    (line,) = explain(result("fastapi-async-graceful-1", "sigterm-worker", target="fastapi-app",
                             lost=3))
    assert line.startswith("3 lost: uvicorn waited out its graceful-shutdown timeout")
    assert "`--timeout-graceful-shutdown`" in line


def test_redelivered_at_warm_shutdown_is_not_blamed_on_the_visibility_timeout() -> None:
    (line,) = explain(result(LATE, "sigterm-worker", target="worker1", redelivered=4))
    assert line.startswith("4 redelivered before their first start")
    assert "at warm shutdown" in line
    assert "visibility timeout (" not in line


def test_deduplicated_and_crashed_runs_are_explained() -> None:
    r = result("acks-late-idempotent", "crash-after-effect", target="worker1", completed=40,
               re_executed=1, redelivered=1, deduplicated_runs=1, crashed_runs=1)
    lines = explain(r)
    assert "1 run found the idempotency key taken and skipped the side effect." in lines
    assert ("1 run crashed right after the side effect (the injected fault).") in lines
    assert not any(" duplicated (" in line for line in lines)


# -- Celery on RabbitMQ: immediate requeue instead of a visibility timeout -----------------------

R_EARLY, R_LATE = "rabbit-acks-early", "rabbit-acks-late"


def test_rabbit_acks_early_loss_is_celerys_early_ack() -> None:
    (line,) = explain(result(R_EARLY, "sigkill-worker", target="rabbit-worker1", lost=2))
    assert line.startswith("2 lost: they were running on rabbit-worker1 when it died, and Celery "
                           "had acknowledged them when they started (acks early)")


def test_rabbit_broker_loss_names_publisher_confirms_not_appendonly() -> None:
    (line,) = explain(result(R_LATE, "broker-sigkill", target="rabbitmq", lost=3))
    assert line.startswith("3 lost: without publisher confirms")
    assert "`confirm_publish=True`" in line
    assert "appendonly" not in line
    (line,) = explain(result("rabbit-acks-late-confirms", "broker-sigkill", target="rabbitmq",
                             lost=1))
    assert line.startswith("1 lost: RabbitMQ had confirmed them (publisher confirms)")


def test_rabbit_duplicates_name_the_immediate_requeue_not_a_visibility_timeout() -> None:
    for fault in ("sigkill-worker", "cut-worker-broker", "sigkill-pool-child"):
        r = result(R_LATE, fault, target="rabbit-worker1", duplicated=1, extra_executions=1,
                   re_executed=1, redelivered=1)
        (line,) = explain(r)
        assert "RabbitMQ requeued the unacknowledged delivery at once" in line, fault
        assert "visibility timeout (" not in line, fault
        assert line.endswith(IDEMPOTENCY), fault
    (line,) = explain(result(R_LATE, "broker-sigkill", target="rabbitmq", duplicated=2,
                             extra_executions=2, re_executed=2, redelivered=2))
    assert "delivered it again after its restart" in line
    (line,) = explain(result(R_LATE, "crash-after-effect", target="rabbit-worker2", duplicated=1,
                             extra_executions=1, re_executed=1, redelivered=1))
    assert "the process died after the side effect but before Celery" in line


def test_rabbit_redelivered_before_first_start_is_an_immediate_requeue() -> None:
    text = " ".join(explain(result(R_EARLY, "sigkill-worker", target="rabbit-worker1",
                                   redelivered=2)))
    assert "2 redelivered before their first start: RabbitMQ requeued them at once" in text
    assert "visibility timeout" not in text


def test_unmapped_unacked_messages_are_said_to_count_as_lost() -> None:
    r = result(R_LATE, "cut-worker-broker", target="rabbit-worker1", lost=3)
    r.unmapped_in_broker = 2
    text = " ".join(explain(r))
    assert "2 messages were still delivered and unacknowledged" in text
    assert "fewer than the 3 tasks unaccounted for" in text
    assert "all count as lost above" in text


def test_unmapped_unacked_messages_without_loss_are_not_mentioned() -> None:
    r = result(R_LATE, "cut-worker-broker", target="rabbit-worker1")
    r.unmapped_in_broker = 2
    assert not any("unacknowledged on a" in line for line in explain(r))


def test_recovery_before_the_heal_is_said_so() -> None:
    (line,) = explain(result(R_LATE, "sigkill-worker", target="rabbit-worker1", late=3,
                             recovery_s=-3.57))
    assert line == "The last redelivered task completed 3.57s before the fault healed."
