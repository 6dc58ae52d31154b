"""harness/containers.py: free_subnets, the fixed-subnet knobs' values for a run (no engine)."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harness.containers import SUBNET_RANGE, free_subnets


class FakeEngine:
    """An engine whose networks use the given IPAM pools (None: a network without IPAM)."""

    def __init__(self, *pools: str | None) -> None:
        networks = [SimpleNamespace(attrs={"IPAM": {"Config": [{"Subnet": p}] if p else None}})
                    for p in pools]
        self.networks = SimpleNamespace(list=lambda **_: networks)


def subnets(engine: FakeEngine, wanted: dict[str, str], run_id: str = "run") -> dict[str, str]:
    return free_subnets(cast(Any, engine), wanted, run_id)


def net(prefix: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"{prefix}.0/24")


def test_each_knob_gets_a_private_24_of_its_own() -> None:
    chosen = subnets(FakeEngine(), {"CHAOS_A_NET": "10.213.77", "CHAOS_B_NET": "10.213.78"})
    assert set(chosen) == {"CHAOS_A_NET", "CHAOS_B_NET"}
    assert len(set(chosen.values())) == 2
    for prefix in chosen.values():
        assert prefix.startswith("10.213.") and int(prefix.rsplit(".", 1)[1]) in SUBNET_RANGE


def test_no_knobs_no_subnets() -> None:
    assert subnets(FakeEngine("10.213.77.0/24"), {}) == {}


def test_the_choice_is_the_run_ids_and_the_same_each_time() -> None:
    wanted = {"CHAOS_A_NET": "10.213.77"}
    assert subnets(FakeEngine(), wanted, "r1") == subnets(FakeEngine(), wanted, "r1")
    starts = {subnets(FakeEngine(), wanted, f"run-{i}")["CHAOS_A_NET"] for i in range(20)}
    assert len(starts) > 1  # worlds starting together rarely race for one


def test_subnets_in_use_are_skipped_even_when_they_only_overlap() -> None:
    wanted = {"CHAOS_A_NET": "10.213.77"}
    first = subnets(FakeEngine(), wanted)["CHAOS_A_NET"]
    # the same /24 in use (besides a network without IPAM, an unreadable pool, another range)
    taken = subnets(FakeEngine(f"{first}.0/24", None, "bogus", "172.30.0.0/16"), wanted)
    assert taken["CHAOS_A_NET"] != first
    assert not net(taken["CHAOS_A_NET"]).overlaps(net(first))
    # a wider pool in use overlaps every /24 inside it
    with pytest.raises(RuntimeError, match=r"no free /24 .* for CHAOS_A_NET"):
        subnets(FakeEngine("10.213.0.0/16"), wanted)


def test_only_one_free_24_left_goes_to_the_first_knob_and_the_second_is_an_error() -> None:
    free = SUBNET_RANGE[10]
    used = [f"10.213.{n}.0/24" for n in SUBNET_RANGE if n != free]
    assert subnets(FakeEngine(*used), {"CHAOS_A_NET": "x"}) == {"CHAOS_A_NET": f"10.213.{free}"}
    with pytest.raises(RuntimeError, match="for CHAOS_B_NET"):
        subnets(FakeEngine(*used), {"CHAOS_A_NET": "x", "CHAOS_B_NET": "y"})
