"""harness/faults.py: the catalogue — what each fault targets, where it applies, how long."""

from __future__ import annotations

import pytest

from harness.backend import Capability
from harness.backends import REGISTRY
from harness.faults import FAULTS, KINDS, Fault
from harness.matrix import CONFIGURATIONS, Settings

BROKER_OR_LINK = ("broker-sigkill", "broker-restart", "cut-worker-broker",
                  "blackhole-worker-broker", "latency-worker-broker", "cut-producer-broker")


def applies(fault: str, configuration: str) -> bool:
    config = CONFIGURATIONS[configuration]
    return FAULTS[fault].applies(config)


def test_registry_names_match() -> None:
    assert "none" in FAULTS
    for name, fault in FAULTS.items():
        assert isinstance(fault, Fault)
        assert fault.name == name


@pytest.mark.parametrize("name", list(FAULTS))
def test_every_fault_has_a_description_and_a_target(name: str) -> None:
    fault = FAULTS[name]
    assert fault.description.strip(), name
    assert not fault.description.endswith("."), name  # the report adds the full stop
    assert fault.target in ("worker", "broker", "producer"), name


def test_targets() -> None:
    assert {n for n, f in FAULTS.items() if f.target == "broker"} == {
        "broker-sigkill", "broker-restart"}
    assert {n for n, f in FAULTS.items() if f.target == "producer"} == {"cut-producer-broker"}


def test_brokered_backends_are_those_with_a_broker() -> None:
    brokered = {n for n, b in REGISTRY.items() if Capability.BROKERED in b.capabilities}
    assert brokered == set(REGISTRY) - {"fastapi"}


def test_faults_ask_for_capabilities_and_say_what_is_missing() -> None:
    for fault in FAULTS.values():
        assert fault.kind in KINDS, fault.name
        assert fault.control is (fault.name == "none")
    message = FAULTS["sigkill-pool-child"].unmet(CONFIGURATIONS["arq-max-tries-5"])
    assert message == ("fault sigkill-pool-child needs pool-children, which configuration "
                       "arq-max-tries-5 (backend arq) does not have")


def test_crash_after_effect_is_valid_only_when_a_task_crashed() -> None:
    fault = FAULTS["crash-after-effect"]
    assert fault.validity({"crashed_runs": 0}) == (
        "no task crashed after its side effect within the fault window")
    assert fault.validity({"crashed_runs": 1}) is None
    assert FAULTS["sigkill-worker"].validity({}) is None


def test_sigkill_pool_child_applies_only_to_celery_with_prefork() -> None:
    for name, config in CONFIGURATIONS.items():
        prefork = getattr(config.knobs, "pool", None) == "prefork"
        expected = config.backend in ("celery-redis", "celery-rabbitmq") and prefork
        assert applies("sigkill-pool-child", name) is expected, name
    assert applies("sigkill-pool-child", "acks-late-prefetch-1")
    assert applies("sigkill-pool-child", "rabbit-acks-late")
    assert not applies("sigkill-pool-child", "acks-late-threads")
    assert not applies("sigkill-pool-child", "arq-max-tries-5")
    assert not applies("sigkill-pool-child", "fastapi-graceful-10")


@pytest.mark.parametrize("name", BROKER_OR_LINK)
def test_broker_and_link_faults_need_a_broker(name: str) -> None:
    for configuration, config in CONFIGURATIONS.items():
        assert applies(name, configuration) is (config.backend != "fastapi"), configuration


@pytest.mark.parametrize("name", ["none", "sigkill-worker", "sigterm-worker", "sigstop-worker",
                                  "crash-after-effect"])
def test_process_faults_apply_everywhere(name: str) -> None:
    for configuration in CONFIGURATIONS:
        assert applies(name, configuration), configuration


def test_window_is_the_fault_window_by_default() -> None:
    settings = Settings(fault_window_s=3.5, stop_window_s=30.0)
    for name, fault in FAULTS.items():
        if name not in ("sigstop-worker", "sigterm-worker"):
            assert fault.window(settings) == 3.5, name


def test_sigstop_lasts_the_stop_window_and_sigterm_waits_for_the_exit() -> None:
    settings = Settings(fault_window_s=3.5, stop_window_s=30.0)
    assert FAULTS["sigstop-worker"].window(settings) == 30.0
    assert FAULTS["sigterm-worker"].window(settings) == 0.0
    # by default the stop outlasts the visibility timeout, so a redelivery can happen
    assert Settings().stop_window_s > Settings().visibility_timeout_s


def test_a_kill_counts_only_the_executions_it_cut() -> None:
    records = [
        {"kind": "started", "task": "a", "execution": "ea", "worker": "w1", "pid": 8, "t": 1.0},
        {"kind": "started", "task": "b", "execution": "eb", "worker": "w1", "pid": 7, "t": 1.5},
        {"kind": "completed", "task": "a", "execution": "ea", "worker": "w1", "pid": 8,
         "t": 2.9},
        {"kind": "process_killed", "worker": "w1", "killed_pid": 8, "t": 3.0},
    ]
    # The child the pool-child kill hit had just finished a: it cut nothing (invalid, re-run).
    assert FAULTS["sigkill-pool-child"].interrupted(records, "w1", 2.8) == []
    assert FAULTS["sigkill-worker"].interrupted(records, "w1", 3.0) == ["b"]
    # A warm shutdown lets tasks finish: what ran when it fired counts.
    assert FAULTS["sigterm-worker"].interrupted(records, "w1", 2.8) == ["a", "b"]
