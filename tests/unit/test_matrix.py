"""harness/matrix.py: every name and value a user can give is checked; errors say what is valid."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import pytest

from harness import faults
from harness.backends import REGISTRY
from harness.checker import Guarantee
from harness.matrix import (
    BACKENDS,
    CONFIGURATIONS,
    PROFILES,
    PROOF_LOSS,
    MatrixError,
    Settings,
    backend,
    cases,
    configuration,
    default_pairs,
    fault,
    fault_names,
    profile,
    select,
    with_self_proof,
)

SETTING_NAMES = sorted(f.name for f in fields(Settings))
FAULTS = fault_names()  # the catalogue lives in harness/faults.py
# The default matrix by fault, from each configuration's own ``meets``.
DEFAULT_PAIRS: dict[str, tuple[str, ...]] = {
    f: tuple(c for c, g in default_pairs() if g == f) for f in FAULTS
    if any(g == f for _, g in default_pairs())}


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
        ({"stop_window_s": 3601.0}, "stop_window_s=3601.0 (valid: 0..3600)"),
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
        fault("sigterm-broker")
    assert str(raised.value) == f"unknown fault 'sigterm-broker'; valid: {', '.join(FAULTS)}"


def test_backend_lookup() -> None:
    for name in BACKENDS:
        assert backend(name) == name
    with pytest.raises(MatrixError) as raised:
        backend("arq-redis")
    assert str(raised.value) == f"unknown backend 'arq-redis'; valid: {', '.join(BACKENDS)}"


# -- the matrix itself ------------------------------------------------------------------------


def test_matrix_faults_are_exactly_the_registered_faults() -> None:
    assert tuple(faults.FAULTS) == FAULTS
    assert FAULTS[0] == "none"  # the control comes first in run order
    for name, registered in faults.FAULTS.items():
        assert registered.name == name


def test_every_backend_has_a_title_and_configurations() -> None:
    assert all(b.title and b.name == n for n, b in REGISTRY.items())
    assert tuple(REGISTRY) == BACKENDS
    assert {c.backend for c in CONFIGURATIONS.values()} == set(BACKENDS)
    for name, config in CONFIGURATIONS.items():
        assert config.name == name
        assert config.summary
        for variable in config.env():
            assert variable.startswith("CHAOS_"), (name, variable)


def test_celery_configurations_claim_what_celery_documents() -> None:
    celery = [c for c in CONFIGURATIONS.values() if c.backend == "celery-redis"]
    assert len(celery) >= 4
    for config in celery:
        env = config.env()
        late = config.name.startswith("acks-late")
        assert config.name.startswith(("acks-early", "acks-late")), config.name
        assert env.get("CHAOS_ACKS_LATE", "false") == str(late).lower(), config.name
        if late:
            assert config.guarantee is (Guarantee.EFFECTIVELY_ONCE
                                        if env.get("CHAOS_IDEMPOTENT") == "true"
                                        else Guarantee.AT_LEAST_ONCE), config.name
            expected = "false" if "no-reject" in config.name else "true"
            assert env["CHAOS_REJECT_ON_WORKER_LOST"] == expected, config.name
        else:
            assert config.guarantee is Guarantee.AT_MOST_ONCE, config.name
            assert env.get("CHAOS_REJECT_ON_WORKER_LOST", "false") == "false", config.name
        prefetch = env["CHAOS_PREFETCH_MULTIPLIER"]
        if "-prefetch-" in config.name:
            assert config.name.endswith(f"-prefetch-{prefetch}"), config.name
        assert f"worker_prefetch_multiplier={prefetch}" in config.summary or \
            f"prefetch {prefetch}" in config.summary, config.name


def test_rabbitmq_configurations_claim_what_celery_documents() -> None:
    rabbit = {c.name: c for c in CONFIGURATIONS.values() if c.backend == "celery-rabbitmq"}
    assert set(rabbit) == {"rabbit-acks-early", "rabbit-acks-late", "rabbit-acks-late-quorum",
                           "rabbit-acks-late-confirms", "rabbit-acks-late-prefetch-16",
                           "rabbit-acks-late-idempotent"}
    late: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True,
                            "prefetch_multiplier": 1}

    def changed(name: str) -> dict[str, Any]:
        return rabbit[name].knobs.changed()

    assert rabbit["rabbit-acks-early"].guarantee is Guarantee.AT_MOST_ONCE
    assert changed("rabbit-acks-early") == {"prefetch_multiplier": 1}
    assert changed("rabbit-acks-late") == late
    assert changed("rabbit-acks-late-quorum") == {**late, "queue_type": "quorum"}
    assert changed("rabbit-acks-late-confirms") == {**late, "confirm_publish": True}
    assert changed("rabbit-acks-late-prefetch-16") == {**late, "prefetch_multiplier": 16}
    assert changed("rabbit-acks-late-idempotent") == {**late, "idempotent": True}
    assert rabbit["rabbit-acks-late"].env()["CHAOS_ACKS_LATE"] == "true"
    assert rabbit["rabbit-acks-late-idempotent"].guarantee is Guarantee.EFFECTIVELY_ONCE
    for name, config in rabbit.items():
        if name not in ("rabbit-acks-early", "rabbit-acks-late-idempotent"):
            assert config.guarantee is Guarantee.AT_LEAST_ONCE, name
        assert "RabbitMQ" in config.summary and "prefetch" in config.summary, name
    assert "quorum" in rabbit["rabbit-acks-late-quorum"].summary
    assert "confirm_publish=True" in rabbit["rabbit-acks-late-confirms"].summary


def test_rabbitmq_meets_the_faults_where_it_differs_from_redis() -> None:
    for fault_name, names in {
        "sigkill-worker": ("rabbit-acks-early", "rabbit-acks-late"),
        "sigkill-pool-child": ("rabbit-acks-early", "rabbit-acks-late"),
        "sigterm-worker": ("rabbit-acks-early", "rabbit-acks-late"),
        "broker-sigkill": ("rabbit-acks-late", "rabbit-acks-late-quorum",
                           "rabbit-acks-late-confirms"),
        "cut-worker-broker": ("rabbit-acks-early", "rabbit-acks-late"),
        "cut-producer-broker": ("rabbit-acks-late", "rabbit-acks-late-confirms"),
        "crash-after-effect": ("rabbit-acks-early", "rabbit-acks-late"),
    }.items():
        assert set(names) <= set(DEFAULT_PAIRS[fault_name]), fault_name
    chosen = cases(["celery-rabbitmq"], None, None)
    # RabbitMQ's own acks-early kill is a case known to lose work (keyed on its knobs, not its
    # name): the run proves it sees loss without a Redis case.
    assert PROOF_LOSS not in chosen and ("rabbit-acks-early", "sigkill-worker") in chosen
    assert {backend_of(c) for c in chosen} == {"celery-rabbitmq"}
    assert not {c for c in chosen if backend_of(c) == "celery-redis"}


def test_every_backend_that_redelivers_has_an_idempotent_variant_under_its_duplicating_faults(
) -> None:
    # The default profile's backends: the clusters profile's meet only the cluster faults
    # (test_the_clusters_profile_meets_only_the_cluster_faults), not the duplicating ones.
    default = [c for c in CONFIGURATIONS.values() if c.backend in PROFILES["default"]]
    idempotent = {c.backend: c.name for c in default
                  if c.env().get("CHAOS_IDEMPOTENT") == "true"}
    redelivering = {c.backend for c in default if c.guarantee is Guarantee.AT_LEAST_ONCE}
    assert set(idempotent) == redelivering == {"celery-redis", "celery-rabbitmq", "arq", "rq",
                                                 "dramatiq-redis", "dramatiq-rabbitmq"}
    for backend_name, name in idempotent.items():
        assert CONFIGURATIONS[name].guarantee is Guarantee.EFFECTIVELY_ONCE, name
        for fault_name in ("sigkill-worker", "crash-after-effect"):
            assert name in DEFAULT_PAIRS[fault_name], (backend_name, fault_name)


def test_arq_and_fastapi_configurations_claim_what_they_document() -> None:
    claims = {
        "arq-max-tries-5": Guarantee.AT_LEAST_ONCE,  # pessimistic execution: retried
        "arq-max-tries-1": Guarantee.AT_MOST_ONCE,  # no retry
        "arq-idempotent": Guarantee.EFFECTIVELY_ONCE,
        "fastapi-graceful-10": Guarantee.AT_MOST_ONCE,  # in memory, fire and forget
        "fastapi-graceful-1": Guarantee.AT_MOST_ONCE,
        "fastapi-async-graceful-10": Guarantee.AT_MOST_ONCE,
        "fastapi-async-graceful-1": Guarantee.AT_MOST_ONCE,
    }
    for name, guarantee in claims.items():
        assert CONFIGURATIONS[name].guarantee is guarantee, name
    assert CONFIGURATIONS["arq-max-tries-1"].knobs.changed() == {"arq_max_tries": 1}
    assert CONFIGURATIONS["arq-idempotent"].knobs.changed() == {"idempotent": True}
    for seconds in ("10", "1"):
        sync = CONFIGURATIONS[f"fastapi-graceful-{seconds}"].env()
        assert (sync["CHAOS_GRACEFUL_SHUTDOWN_S"], sync["CHAOS_TASK_STYLE"]) == (seconds, "sync")
        assert CONFIGURATIONS[f"fastapi-async-graceful-{seconds}"].env() == {
            "CHAOS_GRACEFUL_SHUTDOWN_S": seconds, "CHAOS_TASK_STYLE": "async",
            "CHAOS_IDEMPOTENT": "false"}
        for style in ("", "async-"):
            assert f"fastapi-{style}graceful-{seconds}" in DEFAULT_PAIRS["sigterm-worker"]


def test_the_short_graceful_timeout_is_shorter_than_the_tasks_it_should_cut() -> None:
    base = Settings()
    for style in ("", "async-"):
        short, long_ = (CONFIGURATIONS[f"fastapi-{style}graceful-{s}"] for s in ("1", "10"))
        assert short.settings(base) == long_.settings(base)  # they differ only in the knob
        tasks = short.settings(base)
        assert tasks.task_min_s > float(short.env()["CHAOS_GRACEFUL_SHUTDOWN_S"])
        assert tasks.task_max_s < float(long_.env()["CHAOS_GRACEFUL_SHUTDOWN_S"])


def test_knob_configurations_set_the_knob_their_name_says() -> None:
    assert CONFIGURATIONS["acks-early-concurrency-4"].env()["CHAOS_WORKER_ARGS"] == (
        "--pool prefork --concurrency 4")
    assert CONFIGURATIONS["acks-late-solo"].env()["CHAOS_WORKER_ARGS"] == (
        "--pool solo --concurrency 1")
    assert CONFIGURATIONS["arq-job-timeout-30"].knobs.changed() == {"arq_job_timeout": 30}
    assert CONFIGURATIONS["arq-max-jobs-8"].env()["CHAOS_ARQ_MAX_JOBS"] == "8"
    # No pool child to kill where the task runs in the worker's own process.
    assert not faults.FAULTS["sigkill-pool-child"].applies(CONFIGURATIONS["acks-late-solo"])


def test_a_configuration_overrides_only_the_settings_it_names() -> None:
    base = Settings(tasks=12, visibility_timeout_s=20)
    vt = CONFIGURATIONS["acks-late-vt-120"].settings(base)
    assert vt.visibility_timeout_s == 120
    assert vt.tasks == 12
    assert "visibility_timeout=120s" in CONFIGURATIONS["acks-late-vt-120"].summary
    assert CONFIGURATIONS["acks-late-prefetch-1"].settings(base) is base
    for config in CONFIGURATIONS.values():
        config.settings(Settings())  # every override is a valid setting


def test_an_override_impossible_with_the_run_settings_is_refused() -> None:
    with pytest.raises(MatrixError, match="restore_interval_s=200"):
        CONFIGURATIONS["acks-late-vt-120"].settings(
            Settings(visibility_timeout_s=300, restore_interval_s=200))


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


# -- cases: what a run runs -------------------------------------------------------------------

ALL = list(BACKENDS)


def backend_of(case: tuple[str, str]) -> str:
    return CONFIGURATIONS[case[0]].backend


def test_default_matrix_has_a_control_for_every_configuration() -> None:
    chosen = cases(ALL, None, None)
    for name in CONFIGURATIONS:
        assert (name, "none") in chosen, name
    assert len(chosen) == len(set(chosen))


def test_default_matrix_is_every_default_pair_and_the_self_proof() -> None:
    chosen = cases(ALL, None, None)
    assert PROOF_LOSS in chosen
    pairs = {(c, f) for f, names in DEFAULT_PAIRS.items() for c in names}
    controls = {(c, "none") for c in CONFIGURATIONS}
    assert set(chosen) == pairs | controls


def test_cases_are_grouped_by_backend_in_backends_order() -> None:
    chosen = cases(ALL, None, None)
    order = [BACKENDS.index(backend_of(c)) for c in chosen]
    assert order == sorted(order)
    assert list(dict.fromkeys(backend_of(c) for c in chosen)) == ALL
    # ... then by configuration, each configuration's control first
    configs = list(CONFIGURATIONS)
    keys = [configs.index(c) for c, _ in chosen]
    assert keys == sorted(keys)
    for name in CONFIGURATIONS:
        assert next(f for c, f in chosen if c == name) == "none", name


def test_one_backend_runs_its_own_cases_and_the_self_proof() -> None:
    chosen = cases(["arq"], None, None)
    assert PROOF_LOSS in chosen and (PROOF_LOSS[0], "none") in chosen
    others = {c for c in chosen if backend_of(c) != "arq"}
    assert others == {PROOF_LOSS, (PROOF_LOSS[0], "none")}
    arq = {c for c in chosen if backend_of(c) == "arq"}
    assert arq == {c for c in cases(ALL, None, None) if backend_of(c) == "arq"}


def test_configs_alone_narrow_the_default_matrix() -> None:
    late = "acks-late-prefetch-1"
    chosen = cases(ALL, [late], None)
    mine = [f for c, f in chosen if c == late]
    expected = ["none", *[f for f in FAULTS if late in DEFAULT_PAIRS.get(f, ())]]
    assert mine == expected
    assert set(chosen) - {(late, f) for f in mine} == {PROOF_LOSS, (PROOF_LOSS[0], "none")}


def test_configs_alone_with_no_default_fault_still_run_the_control() -> None:
    chosen = cases(ALL, ["fastapi-graceful-1"], None)
    assert ("fastapi-graceful-1", "none") in chosen
    assert ("fastapi-graceful-1", "sigterm-worker") in chosen


def test_faults_alone_narrow_the_default_matrix() -> None:
    chosen = cases(ALL, None, ["sigterm-worker"])
    faulted = {c for c, f in chosen if f == "sigterm-worker"}
    assert faulted == set(DEFAULT_PAIRS["sigterm-worker"])
    # every configuration that runs gets its control, and the self-proof runs
    assert {c for c, f in chosen if f == "none"} == faulted | {PROOF_LOSS[0]}
    assert {f for _, f in chosen} == {"none", "sigterm-worker", "sigkill-worker"}
    assert [c for c, f in chosen if f == "sigkill-worker"] == [PROOF_LOSS[0]]


def test_faults_none_alone_is_every_control() -> None:
    chosen = cases(ALL, None, ["none"])
    assert {(c, "none") for c in CONFIGURATIONS} <= set(chosen)


def test_configs_and_faults_give_the_cross_product() -> None:
    configs = ["acks-late-prefetch-4", "arq-max-tries-5"]
    named = ["sigstop-worker", "cut-worker-broker"]
    chosen = cases(ALL, configs, named)
    product = {(c, f) for c in configs for f in named}
    assert product <= set(chosen)
    assert set(chosen) - product == {(c, "none") for c in configs} | {
        PROOF_LOSS, (PROOF_LOSS[0], "none")}
    # including pairs the default matrix does not hold
    assert ("acks-late-prefetch-4", "sigstop-worker") not in cases(ALL, None, None)


def test_an_inapplicable_explicit_pair_is_an_error_naming_it() -> None:
    with pytest.raises(MatrixError) as raised:
        cases(ALL, ["fastapi-graceful-10"], ["cut-worker-broker"])
    message = str(raised.value)
    assert "cut-worker-broker" in message and "fastapi-graceful-10" in message
    with pytest.raises(MatrixError, match=r"sigkill-pool-child.*acks-late-threads"):
        cases(ALL, ["acks-late-threads"], ["sigkill-pool-child"])


def test_a_selection_that_leaves_nothing_is_an_error() -> None:
    with pytest.raises(MatrixError, match="names no scenario"):
        cases(["fastapi"], None, ["broker-sigkill"])


def test_default_pairs_name_existing_configurations_and_faults_that_apply() -> None:
    assert set(DEFAULT_PAIRS) <= set(FAULTS)
    assert "none" not in DEFAULT_PAIRS  # every configuration gets its control anyway
    for fault_name, names in DEFAULT_PAIRS.items():
        assert names, fault_name
        assert len(names) == len(set(names)), fault_name
        for name in names:
            assert name in CONFIGURATIONS, (fault_name, name)
            config = CONFIGURATIONS[name]
            assert faults.FAULTS[fault_name].applies(config), (fault_name, name)


def test_every_fault_meets_some_configuration_by_default() -> None:
    # but those that only reproductions run (``in_matrix`` False: harness/reproductions.py)
    # and the cluster faults, which only the clusters profile's configurations meet
    default = {f for c, f in default_pairs() if CONFIGURATIONS[c].backend in PROFILES["default"]}
    assert default == {n for n, f in faults.FAULTS.items() if f.in_matrix} - {"none"}


def test_the_clusters_profile_meets_only_the_cluster_faults() -> None:
    cluster_faults = {n for n, f in faults.FAULTS.items() if f.kind == "cluster"}
    assert cluster_faults == {"leader-sigkill", "leader-partition", "leader-sigstop",
                              "rolling-restart"}
    assert not any(faults.FAULTS[n].in_matrix for n in cluster_faults)
    clusters = {c.name for c in CONFIGURATIONS.values() if c.backend in PROFILES["clusters"]}
    assert clusters
    for name in clusters:
        assert set(CONFIGURATIONS[name].meets) == cluster_faults, name
    for fault_name in cluster_faults:
        assert set(DEFAULT_PAIRS[fault_name]) == clusters, fault_name


# -- matrix profiles ---------------------------------------------------------------------------


def test_profiles_split_the_registry_by_each_backends_own_profile() -> None:
    assert PROFILES == {
        "default": ("celery-redis", "celery-rabbitmq", "arq", "rq", "dramatiq-redis",
                    "dramatiq-rabbitmq", "fastapi"),
        "clusters": ("celery-rabbitmq-cluster", "celery-redis-sentinel", "arq-sentinel"),
    }
    assert sorted(b for names in PROFILES.values() for b in names) == sorted(BACKENDS)
    for name, backends in PROFILES.items():
        for backend_name in backends:
            assert REGISTRY[backend_name].matrix_profile == name


def test_a_profile_names_its_backends_and_an_unknown_one_is_an_error() -> None:
    assert profile("default") == PROFILES["default"]
    assert profile("clusters") == ("celery-rabbitmq-cluster", "celery-redis-sentinel",
                                   "arq-sentinel")
    with pytest.raises(MatrixError, match="unknown profile 'huge'; valid: default, clusters"):
        profile("huge")


def test_the_default_profiles_matrix_holds_no_cluster_backend() -> None:
    chosen = cases(list(PROFILES["default"]), None, None)
    assert PROOF_LOSS in chosen
    assert not {backend_of(c) for c in chosen} & set(PROFILES["clusters"])
    assert not {f for _, f in chosen} & {"leader-sigkill", "leader-partition", "leader-sigstop",
                                         "rolling-restart"}
