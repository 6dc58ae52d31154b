"""harness/selection.py: what a run measures, checked before anything starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import matrix
from harness.selection import overrides, select

EXAMPLE = Path(__file__).parents[2] / "examples" / "celery-shop" / "queue-chaos.toml"


def test_settings_pairs_are_read_and_a_pair_without_its_equals_is_named() -> None:
    assert overrides("tasks=20, quiet_s=1") == {"tasks": "20", "quiet_s": "1"}
    assert overrides("") == {}
    with pytest.raises(matrix.MatrixError, match="setting 'tasks': expected name=value"):
        overrides("tasks")


def test_a_selection_has_its_self_proof_and_its_settings() -> None:
    chosen = select(configs="acks-late-prefetch-1", faults="sigkill-worker",
                    settings_text="tasks=20")
    assert chosen.target is None and chosen.settings.tasks == 20
    assert ("acks-late-prefetch-1", "none") in chosen.cases
    assert any(matrix.must_lose(c, f) for c, f in chosen.cases)


def test_a_shard_of_a_selection_is_part_of_it() -> None:
    whole = select(backends="celery-redis").cases
    part = select(backends="celery-redis", shard="2/3").cases
    assert part and set(part) <= set(whole) and len(part) < len(whole)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"configs": "nope"}, "unknown configuration nope"),
    ({"faults": "explode"}, "unknown fault explode"),
    ({"settings_text": "tasks=0"}, "tasks=0 (valid: 1..10000)"),
    ({"shard": "0/2"}, "expected K/N"),
    ({"target_path": EXAMPLE, "configs": "acks-late-prefetch-1"}, "give one or the other"),
])
def test_bad_input_is_one_clear_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        select(**kwargs)  # type: ignore[arg-type]


def test_a_profile_names_the_backends_when_none_are_named() -> None:
    clusters = select(profile="clusters").cases
    proofs = {(c, f) for c, f in clusters if matrix.must_lose(c, f)}
    assert proofs  # the self-proof runs with every profile
    proof_configs = {c for c, _ in proofs}
    mine = [(c, f) for c, f in clusters if c not in proof_configs]
    assert mine
    assert {matrix.CONFIGURATIONS[c].backend for c, _ in mine} == set(matrix.PROFILES["clusters"])
    # besides the self-proof (a configuration known to lose and its control), nothing else
    assert {matrix.CONFIGURATIONS[c].backend for c in proof_configs} <= set(
        matrix.PROFILES["default"])
    assert {(c, f) for c, f in clusters if c in proof_configs} <= {
        matrix.PROOF_LOSS, (matrix.PROOF_LOSS[0], "none")}
    faults = {f for _, f in mine}
    assert faults == {"none", "leader-sigkill", "leader-partition", "leader-sigstop",
                      "rolling-restart"}


def test_the_default_profile_is_the_default_and_holds_no_cluster_backend() -> None:
    default = select().cases
    assert default == select(profile="default").cases
    assert not {matrix.CONFIGURATIONS[c].backend for c, _ in default} & set(
        matrix.PROFILES["clusters"])


def test_named_backends_or_configurations_reach_past_the_profile() -> None:
    chosen = select(backends="celery-redis-sentinel").cases
    assert {matrix.CONFIGURATIONS[c].backend for c, _ in chosen} >= {"celery-redis-sentinel"}
    assert ("sentinel-acks-late", "leader-sigkill") in select(configs="sentinel-acks-late").cases


def test_an_unknown_profile_is_one_clear_error() -> None:
    with pytest.raises(matrix.MatrixError, match="unknown profile 'huge'"):
        select(profile="huge")
