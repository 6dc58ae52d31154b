"""harness/backend.py and harness/backends/: one object per backend, configurations as data."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from harness.backend import Capability
from harness.backends import REGISTRY, UnknownBackend, backend, configurations
from harness.backends.arq import ArqKnobs
from harness.backends.celery_redis import CeleryRedisKnobs
from harness.backends.fastapi import FastAPIKnobs
from harness.checker import Guarantee
from harness.faults import FAULTS
from harness.matrix import CONFIGURATIONS, Settings
from harness.result import ScenarioResult

AMO, ALO, EO = Guarantee.AT_MOST_ONCE, Guarantee.AT_LEAST_ONCE, Guarantee.EFFECTIVELY_ONCE


def test_the_registry_holds_each_backend_once_under_its_name() -> None:
    assert list(REGISTRY) == ["celery-redis", "celery-rabbitmq", "arq", "rq", "dramatiq-redis",
                              "dramatiq-rabbitmq", "fastapi",
                              # the clusters profile, after the default matrix's backends
                              "celery-rabbitmq-cluster", "celery-redis-sentinel",
                              "arq-sentinel"]
    for name, b in REGISTRY.items():
        assert b.name == name and b.profile == name and b.title and b.image
    with pytest.raises(UnknownBackend, match="unknown backend 'huey'; valid: celery-redis"):
        backend("huey")


@pytest.mark.parametrize(("knobs", "expected"), [
    (CeleryRedisKnobs(), AMO),
    (CeleryRedisKnobs(acks_late=True), ALO),
    (CeleryRedisKnobs(acks_late=True, reject_on_worker_lost=True), ALO),
    (CeleryRedisKnobs(acks_late=True, idempotent=True), EO),
    (CeleryRedisKnobs(idempotent=True), AMO),  # acks early loses whatever the key says
])
def test_celery_claims_follow_from_its_settings(knobs: CeleryRedisKnobs,
                                                expected: Guarantee) -> None:
    assert REGISTRY["celery-redis"].guarantee(knobs) is expected
    assert REGISTRY["celery-rabbitmq"].guarantee(knobs) is expected


@pytest.mark.parametrize(("knobs", "expected"), [
    (ArqKnobs(), ALO), (ArqKnobs(arq_max_tries=1), AMO), (ArqKnobs(idempotent=True), EO),
])
def test_arq_claims_follow_from_its_settings(knobs: ArqKnobs, expected: Guarantee) -> None:
    assert REGISTRY["arq"].guarantee(knobs) is expected


def test_background_tasks_claim_at_most_once() -> None:
    assert REGISTRY["fastapi"].guarantee(FastAPIKnobs()) is AMO


def test_knobs_refuse_impossible_values_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="pool='gevent'; valid: prefork, threads, solo"):
        CeleryRedisKnobs(pool="gevent")
    with pytest.raises(ValueError, match="task_style='x'; valid: sync, async"):
        FastAPIKnobs(task_style="x")


def test_summaries_are_generated_from_the_fields() -> None:
    c = CONFIGURATIONS
    assert c["acks-early-prefetch-4"].summary == (
        "Celery defaults (acks early), worker_prefetch_multiplier=4, --pool prefork "
        "--concurrency 2")
    assert "task_reject_on_worker_lost=False" in c["acks-late-no-reject"].summary
    assert "--pool solo" in c["acks-late-solo"].summary
    assert "appendfsync always" in c["acks-late-aof-always"].summary
    assert "visibility_timeout=120s" in c["acks-late-vt-120"].summary
    assert "quorum queue" in c["rabbit-acks-late-quorum"].summary
    assert c["arq-max-tries-1"].summary.startswith("arq max_tries=1")
    assert "async def task" in c["fastapi-async-graceful-1"].summary


def test_pool_children_exist_only_with_the_prefork_pool() -> None:
    """Celery's prefork pool, and RQ's forking Worker (a work horse per job)."""
    for config in CONFIGURATIONS.values():
        has = Capability.POOL_CHILDREN in config.capabilities
        children = (getattr(config.knobs, "pool", None) == "prefork"
                    or getattr(config.knobs, "rq_worker_class", None) == "Worker")
        assert has is children, config.name


def test_every_configuration_meets_only_faults_that_exist_and_apply() -> None:
    assert configurations() == CONFIGURATIONS
    for config in CONFIGURATIONS.values():
        assert config.meets, config.name
        for fault in config.meets:
            assert fault in FAULTS and fault != "none", (config.name, fault)
            assert FAULTS[fault].applies(config), (config.name, fault)


def test_must_lose_is_keyed_on_the_knobs_not_the_name() -> None:
    lossy = {c.name for c in CONFIGURATIONS.values()
             if c.owner.must_lose(c.knobs, "worker-death", "sigkill-worker")}
    assert lossy == {"acks-early-prefetch-1", "acks-early-prefetch-4",
                     "acks-early-concurrency-4", "rabbit-acks-early", "rq-no-retry"}
    assert not any(c.owner.must_lose(c.knobs, "none", "none") for c in CONFIGURATIONS.values())


# -- what the workers run: read from their worker_ready records --------------------------------

CELERY_READY = {  # as the agent reported it in a real run (Celery 5.7, Redis)
    "broker_transport": "redis", "concurrency": 2, "confirm_publish": None, "pool": "prefork",
    "queue": "chaos", "queue_types": {"chaos": "classic"}, "queues_consumed": ["chaos"],
    "task": "queue_chaos.probe", "task_acks_late": True, "task_reject_on_worker_lost": True,
    "visibility_timeout": 15, "worker_prefetch_multiplier": 1,
}
ARQ_READY = {"allow_abort_jobs": False, "job_timeout": 10, "keep_result": 60, "max_jobs": 2,
             "max_tries": 5, "queue_name": "arq:queue", "task": "queue_chaos_probe"}


def test_a_built_in_configuration_running_as_declared_has_no_mismatch() -> None:
    late = CONFIGURATIONS["acks-late-prefetch-1"]
    assert late.mismatch(late.running(CELERY_READY, idempotent=False)) is None
    arq = CONFIGURATIONS["arq-max-tries-5"]
    assert arq.mismatch(arq.running(ARQ_READY, idempotent=False)) is None
    threads = CONFIGURATIONS["acks-late-threads"]
    assert threads.mismatch(threads.running({**CELERY_READY, "pool": "thread"}, False)) is None


def test_settings_that_did_not_take_effect_are_named() -> None:
    early = CONFIGURATIONS["acks-early-prefetch-4"]
    running = early.running(CELERY_READY, idempotent=False)
    assert early.mismatch(running) == (
        "acks_late declared False, running True; reject_on_worker_lost declared False, "
        "running True; prefetch_multiplier declared 4, running 1")
    # The claim follows what runs, not what was declared.
    assert early.owner.guarantee(running) is ALO


def test_rabbitmq_reads_the_queue_type_and_confirms() -> None:
    quorum = CONFIGURATIONS["rabbit-acks-late-quorum"]
    ready = {**CELERY_READY, "broker_transport": "amqp", "confirm_publish": False,
             "queue_types": {"chaos": "quorum"}}
    assert quorum.mismatch(quorum.running(ready, idempotent=False)) is None
    assert "queue_type declared 'quorum', running 'classic'" in str(quorum.mismatch(
        quorum.running({**ready, "queue_types": {"chaos": "classic"}}, idempotent=False)))


def test_no_report_leaves_the_declared_knobs() -> None:
    config = CONFIGURATIONS["fastapi-graceful-1"]
    assert config.running({}, idempotent=False) == config.knobs


def test_background_tasks_read_the_style_and_uvicorn_timeout() -> None:
    cut = CONFIGURATIONS["fastapi-async-graceful-1"]
    ready = {"task_style": "async", "timeout_graceful_shutdown": 1.0}
    assert cut.mismatch(cut.running(ready, idempotent=False)) is None
    assert "graceful_shutdown_s declared 1, running 10" in str(
        cut.mismatch(cut.running({**ready, "timeout_graceful_shutdown": 10.0}, False)))


def test_each_backends_key_libraries_are_ones_its_workers_report() -> None:
    """The report's "Measured with" line names them from the workers' worker_ready versions."""
    from queue_chaos_agent.versions import DISTRIBUTIONS

    for b in REGISTRY.values():
        assert b.libraries and set(b.libraries) <= set(DISTRIBUTIONS), b.name
    assert REGISTRY["celery-redis"].libraries[-1] == "redis"
    assert REGISTRY["celery-rabbitmq"].libraries[-1] == "amqp"


# -- compressed clocks ------------------------------------------------------------------------


def _scenario(configuration: str, fault: str, **knobs: object) -> ScenarioResult:
    from harness.faults import FAULTS as CATALOGUE

    conf = CONFIGURATIONS.get(configuration)
    return ScenarioResult(
        scenario=f"x.{configuration}.{fault}",
        backend=conf.backend if conf else "celery-redis", configuration=configuration,
        configuration_summary="", guarantee="at-least-once", fault=fault, fault_description="",
        seed=1, valid=True, validity="", verdict="holds", reason="", counts={}, recovery_s=1.0,
        stuck_locations={}, settings=asdict(conf.settings(Settings()) if conf else Settings()),
        knobs={**(conf.knobs.as_dict() if conf else {}), **knobs},
        fault_kind=CATALOGUE[fault].kind)


def _recovery_clock(configuration: str, fault: str, **knobs: object) -> str | None:
    r = _scenario(configuration, fault, **knobs)
    clock = REGISTRY[r.backend].recovery_clock(r)
    return None if clock is None else f"{clock.name} {clock.scenario_s:g}/{clock.production_s:g}"


@pytest.mark.parametrize(("config", "fault", "expected"), [
    # Celery on Redis: a message comes back through the sweep, after the visibility timeout,
    # when the worker holding it died whole, stalled, or lost its link ...
    ("acks-late-prefetch-1", "sigkill-worker", "visibility timeout 15/3600"),
    ("acks-early-prefetch-4", "sigkill-worker", "visibility timeout 15/3600"),  # prefetched
    ("acks-late-prefetch-1", "sigstop-worker", "visibility timeout 15/3600"),
    ("acks-late-prefetch-4", "cut-worker-broker", "visibility timeout 15/3600"),
    ("acks-late-solo", "crash-after-effect", "visibility timeout 15/3600"),  # the worker died
    ("acks-late-vt-120", "sigkill-worker", "visibility timeout 120/3600"),
    # ... never when the worker gave it back or requeued it itself.
    ("acks-late-prefetch-4", "sigterm-worker", None),  # warm shutdown restores the channel's
    ("acks-late-prefetch-1", "sigkill-pool-child", None),  # the main process requeues
    ("acks-late-prefetch-1", "crash-after-effect", None),  # a prefork child died, likewise
    ("acks-late-aof-everysec", "broker-sigkill", None),
    ("rabbit-acks-late", "sigkill-worker", None),  # RabbitMQ requeues on channel close
    # arq: a dead, stalled or cut-off worker's job waits for its in-progress key to expire.
    ("arq-max-tries-5", "sigkill-worker", "in-progress key expiry 20/310"),
    ("arq-max-tries-5", "sigstop-worker", "in-progress key expiry 20/310"),
    ("arq-max-tries-5", "blackhole-worker-broker", "in-progress key expiry 20/310"),
    ("arq-job-timeout-30", "sigkill-worker", "in-progress key expiry 40/310"),
    ("arq-max-tries-5", "sigterm-worker", None),  # arq deletes the key and requeues at once
    ("arq-max-tries-5", "broker-sigkill", None),
    ("fastapi-graceful-10", "sigkill-worker", None),
])
def test_the_recovery_clock_follows_the_mechanism(config: str, fault: str,
                                                  expected: str | None) -> None:
    assert _recovery_clock(config, fault) == expected


def test_a_teams_app_runs_its_own_clocks_and_a_renamed_configuration_still_counts() -> None:
    assert _recovery_clock("shop", "sigkill-worker") is None  # their timeout is production's
    old = _scenario("arq-max-tries-5", "sigkill-worker")
    old.configuration = "arq-defaults"  # a committed report of a past run
    assert REGISTRY["arq"].recovery_clock(old) is not None


def test_clocks_state_the_scenarios_values_and_the_libraries_defaults() -> None:
    settings = asdict(Settings())
    redis = REGISTRY["celery-redis"].clocks(settings)
    assert [(c.name, c.scenario_s, c.production_s) for c in redis] == [
        ("visibility timeout", 15, 3600), ("restore sweep period", 2, 100),
        ("SIGSTOP window", 25, 3610)]
    # A timeout the stall does not outlast: no SIGSTOP clock to translate.
    longer = REGISTRY["celery-redis"].clocks({**settings, "visibility_timeout_s": 120})
    assert [c.name for c in longer] == ["visibility timeout", "restore sweep period"]
    arq = REGISTRY["arq"].clocks(settings)
    assert [(c.name, c.scenario_s, c.production_s) for c in arq] == [
        ("job_timeout", 10, 300), ("in-progress key expiry", 20, 310), ("SIGSTOP window", 25, 315)]
    assert all(c.source for c in (*redis, *arq))
    assert REGISTRY["celery-rabbitmq"].clocks(settings) == ()
    assert REGISTRY["fastapi"].clocks(settings) == ()


def test_the_redis_note_takes_its_numbers_from_the_clocks() -> None:
    settings = {**asdict(Settings()), "visibility_timeout_s": 30, "restore_interval_s": 5}
    assert REGISTRY["celery-redis"].note(settings) == (
        "Redis visibility timeout 30s, swept every 5s (production defaults: 3600s, ~100s).")
