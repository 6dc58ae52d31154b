"""harness/matrix.py: every name and value a user can give is checked; errors say what is valid."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import pytest

from harness import faults
from harness.checker import Guarantee
from harness.matrix import (
    BACKENDS,
    CONFIGURATIONS,
    FAULTS,
    MatrixError,
    Settings,
    backend,
    configuration,
    fault,
    select,
    with_self_proof,
)

SETTING_NAMES = sorted(f.name for f in fields(Settings))


def test_defaults_are_valid() -> None:
    Settings()


def test_matrix_error_is_a_value_error() -> None:
    assert issubclass(MatrixError, ValueError)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"tasks": 0}, "tasks=0 (valid: 1..10000)"),
        ({"tasks": 10_001, "fault_after_started": 1}, "tasks=10001 (valid: 1..10000)"),
        ({"submit_rate": 0.0}, "submit_rate=0.0 (valid: >0 and <=1000)"),
        ({"submit_rate": -1.0}, "submit_rate=-1.0 (valid: >0 and <=1000)"),
        ({"submit_rate": 1000.5}, "submit_rate=1000.5 (valid: >0 and <=1000)"),
        ({"task_min_s": 2.0, "task_max_s": 1.0},
         "task_min_s=2.0, task_max_s=1.0 (valid: 0 <= min <= max <= 60)"),
        ({"task_min_s": -0.1}, "task_min_s=-0.1, task_max_s=1.4 (valid: 0 <= min <= max <= 60)"),
        ({"task_max_s": 61.0}, "task_min_s=0.6, task_max_s=61.0 (valid: 0 <= min <= max <= 60)"),
        ({"fault_after_started": 0}, "fault_after_started=0 (valid: 1..tasks=40)"),
        ({"fault_after_started": 41}, "fault_after_started=41 (valid: 1..tasks=40)"),
        ({"tasks": 5}, "fault_after_started=8 (valid: 1..tasks=5)"),
        ({"fault_window_s": -1.0}, "fault_window_s=-1.0 (valid: 0..3600)"),
        ({"late_after_s": 3600.5}, "late_after_s=3600.5 (valid: 0..3600)"),
        ({"drain_s": -0.5}, "drain_s=-0.5 (valid: 0..3600)"),
        ({"quiet_s": 4000.0}, "quiet_s=4000.0 (valid: 0..3600)"),
        ({"ready_s": -1.0}, "ready_s=-1.0 (valid: 0..3600)"),
        ({"visibility_timeout_s": 0}, "visibility_timeout_s=0 (valid: 1..86400)"),
        ({"visibility_timeout_s": 86_401}, "visibility_timeout_s=86401 (valid: 1..86400)"),
        ({"restore_interval_s": 0}, "restore_interval_s=0 (valid: 1..visibility_timeout_s=15)"),
        ({"restore_interval_s": 16}, "restore_interval_s=16 (valid: 1..visibility_timeout_s=15)"),
        ({"visibility_timeout_s": 1}, "restore_interval_s=2 (valid: 1..visibility_timeout_s=1)"),
    ],
)
def test_impossible_settings_name_value_and_valid_range(
    values: dict[str, Any], expected: str
) -> None:
    with pytest.raises(MatrixError) as raised:
        Settings(**values)
    assert str(raised.value).startswith("impossible settings: ")
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    "values",
    [
        {"tasks": 1, "fault_after_started": 1},
        {"tasks": 10_000},
        {"submit_rate": 1000.0},
        {"task_min_s": 0.0, "task_max_s": 0.0},
        {"task_min_s": 60.0, "task_max_s": 60.0},
        {"fault_window_s": 0.0, "late_after_s": 3600.0},
        {"visibility_timeout_s": 86_400},
        {"restore_interval_s": 15},
        {"visibility_timeout_s": 1, "restore_interval_s": 1},
    ],
)
def test_boundary_values_are_valid(values: dict[str, Any]) -> None:
    settings = Settings(**values)
    for name, value in values.items():
        assert getattr(settings, name) == value


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(MatrixError) as raised:
        Settings(tasks=0, submit_rate=0.0, drain_s=-1.0)
    message = str(raised.value)
    for part in ("tasks=0", "submit_rate=0.0", "drain_s=-1.0", "fault_after_started=8"):
        assert part in message
    assert message.count(";") == 3


@pytest.mark.parametrize("name", ["submit_rate", "fault_window_s", "drain_s", "task_max_s"])
def test_nan_is_refused(name: str) -> None:
    with pytest.raises(MatrixError, match=name):
        Settings(**{name: float("nan")})  # type: ignore[arg-type]


# -- overrides --------------------------------------------------------------------------------


def test_overrides_convert_to_each_setting_type() -> None:
    base = Settings()
    changed = base.with_overrides(
        {"tasks": "20", "submit_rate": "2.5", "late_after_s": "3", "visibility_timeout_s": "30"}
    )
    assert changed.tasks == 20 and isinstance(changed.tasks, int)
    assert changed.submit_rate == 2.5
    assert changed.late_after_s == 3.0 and isinstance(changed.late_after_s, float)
    assert changed.visibility_timeout_s == 30
    assert changed.drain_s == base.drain_s  # untouched
    assert base == Settings()  # the original is unchanged (frozen)


def test_no_overrides_is_the_same_settings() -> None:
    assert Settings().with_overrides({}) == Settings()


def test_unknown_setting_is_refused_listing_valid_names() -> None:
    with pytest.raises(MatrixError) as raised:
        Settings().with_overrides({"taks": "5"})
    message = str(raised.value)
    assert "unknown setting 'taks'" in message
    valid = message.split("valid: ", 1)[1].split(", ")
    assert valid == SETTING_NAMES


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("tasks", "1.5", "setting tasks='1.5': expected int"),
        ("tasks", "many", "setting tasks='many': expected int"),
        ("tasks", "", "setting tasks='': expected int"),
        ("submit_rate", "fast", "setting submit_rate='fast': expected float"),
        ("visibility_timeout_s", "15s", "setting visibility_timeout_s='15s': expected int"),
    ],
)
def test_bad_type_is_refused(name: str, text: str, expected: str) -> None:
    with pytest.raises(MatrixError) as raised:
        Settings().with_overrides({name: text})
    assert str(raised.value) == expected


def test_overrides_are_validated_like_constructor_values() -> None:
    with pytest.raises(MatrixError, match=re.escape("tasks=0 (valid: 1..10000)")):
        Settings().with_overrides({"tasks": "0"})
    with pytest.raises(MatrixError, match=re.escape("submit_rate=inf")):
        Settings().with_overrides({"submit_rate": "inf"})
    # Overrides are applied together, so a consistent pair passes where one alone would not.
    both = Settings().with_overrides({"tasks": "5", "fault_after_started": "3"})
    assert (both.tasks, both.fault_after_started) == (5, 3)


# -- names ------------------------------------------------------------------------------------


def test_select_defaults_to_everything() -> None:
    assert select(None, FAULTS, "fault") == list(FAULTS)
    assert select("", FAULTS, "fault") == list(FAULTS)


def test_select_strips_and_keeps_order() -> None:
    assert select(" cut-worker-broker , none,", FAULTS, "fault") == ["cut-worker-broker", "none"]


def test_select_rejects_unknown_names_listing_valid_ones() -> None:
    with pytest.raises(MatrixError) as raised:
        select("none,sigkil-worker,bogus", FAULTS, "fault")
    message = str(raised.value)
    assert message == (
        f"unknown fault sigkil-worker, bogus; valid: {', '.join(FAULTS)}"
    )


def test_select_works_with_lists() -> None:
    names = list(CONFIGURATIONS)
    assert select(names[0], names, "configuration") == [names[0]]
    with pytest.raises(MatrixError, match="unknown configuration nope; valid: "):
        select("nope", names, "configuration")


def test_configuration_lookup() -> None:
    for name, config in CONFIGURATIONS.items():
        assert configuration(name) is config
        assert config.name == name
    with pytest.raises(MatrixError) as raised:
        configuration("acks-lately")
    assert str(raised.value) == (
        f"unknown configuration 'acks-lately'; valid: {', '.join(CONFIGURATIONS)}"
    )


def test_fault_lookup() -> None:
    for name in FAULTS:
        assert fault(name) == name
    with pytest.raises(MatrixError) as raised:
        fault("sigterm-worker")
    assert str(raised.value) == f"unknown fault 'sigterm-worker'; valid: {', '.join(FAULTS)}"


def test_backend_lookup() -> None:
    for name in BACKENDS:
        assert backend(name) == name
    with pytest.raises(MatrixError) as raised:
        backend("arq-redis")
    assert str(raised.value) == f"unknown backend 'arq-redis'; valid: {', '.join(BACKENDS)}"


# -- the matrix itself ------------------------------------------------------------------------


def test_matrix_faults_are_exactly_the_registered_faults() -> None:
    assert set(FAULTS) == set(faults.FAULTS)
    for name, registered in faults.FAULTS.items():
        assert registered.name == name


def test_configurations_claim_what_celery_documents() -> None:
    assert len(CONFIGURATIONS) == 4
    for name, config in CONFIGURATIONS.items():
        env = config.env()
        assert config.backend in BACKENDS
        assert set(env) == {"CHAOS_ACKS_LATE", "CHAOS_REJECT_ON_WORKER_LOST",
                            "CHAOS_PREFETCH_MULTIPLIER"}
        late = name.startswith("acks-late")
        assert env["CHAOS_ACKS_LATE"] == env["CHAOS_REJECT_ON_WORKER_LOST"] == str(late).lower()
        assert config.guarantee is (Guarantee.AT_LEAST_ONCE if late else Guarantee.AT_MOST_ONCE)
        assert name.endswith(f"-prefetch-{env['CHAOS_PREFETCH_MULTIPLIER']}")
        assert f"worker_prefetch_multiplier={env['CHAOS_PREFETCH_MULTIPLIER']}" in config.summary


# -- self-proof cases -------------------------------------------------------------------------

EARLY, EARLY4, LATE = "acks-early-prefetch-1", "acks-early-prefetch-4", "acks-late-prefetch-1"


def test_self_proof_adds_controls_and_the_known_loss_case() -> None:
    assert with_self_proof([(LATE, "cut-worker-broker")]) == [
        (EARLY, "none"), (LATE, "none"), (LATE, "cut-worker-broker"), (EARLY, "sigkill-worker"),
    ]


def test_self_proof_of_nothing_selected_is_the_proof_alone() -> None:
    assert with_self_proof([]) == [(EARLY, "none"), (EARLY, "sigkill-worker")]


def test_self_proof_keeps_a_complete_selection_and_drops_repeats() -> None:
    cases = [(EARLY, "none"), (EARLY, "sigkill-worker"), (EARLY, "sigkill-worker")]
    assert with_self_proof(cases) == [(EARLY, "none"), (EARLY, "sigkill-worker")]


def test_self_proof_accepts_any_acks_early_kill() -> None:
    chosen = with_self_proof([(EARLY4, "sigkill-worker")])
    assert chosen == [(EARLY4, "none"), (EARLY4, "sigkill-worker")]


def test_self_proof_cases_are_all_in_the_matrix() -> None:
    for config, fault_name in with_self_proof([(c, f) for c in CONFIGURATIONS for f in FAULTS]):
        assert config in CONFIGURATIONS
        assert fault_name in FAULTS
