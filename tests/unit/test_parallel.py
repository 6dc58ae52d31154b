"""harness/parallel.py: how many worlds, and each world's own ports."""

from __future__ import annotations

import pytest

from harness.parallel import PORT_STEP, auto_worlds, parse_worlds, world_ports, xdist_offset
from harness.topology import port_variables


@pytest.mark.parametrize(("cpus", "memory", "worlds"), [
    (1, 1.0, 1), (1, 24.0, 2), (2, 24.0, 4), (16, 64.0, 4), (2, 5.0, 2)])
def test_auto_worlds_follow_cores_and_memory(cpus: int, memory: float, worlds: int) -> None:
    assert auto_worlds(cpus, memory) == worlds


def test_worlds_text_is_checked() -> None:
    assert parse_worlds("3") == 3
    assert 1 <= parse_worlds("auto") <= 4
    for bad in ("0", "9", "two", "-1"):
        with pytest.raises(ValueError, match=r"expected auto or a count 1\.\.8"):
            parse_worlds(bad)


def test_each_world_publishes_every_port_apart_from_every_other_world() -> None:
    defaults = port_variables()
    assert world_ports(1, {}) == {k: str(v) for k, v in defaults.items()}
    seen: set[str] = set()
    for k in range(1, 9):
        ports = world_ports(k, {})
        assert set(ports) == set(defaults)
        assert not seen & set(ports.values())
        seen |= set(ports.values())
    assert world_ports(2, {"CHAOS_REDIS_PORT": "20000"})["CHAOS_REDIS_PORT"] == str(
        20000 + PORT_STEP)


def test_an_xdist_worker_runs_its_own_world_clear_of_every_other_offset() -> None:
    assert xdist_offset(None) == 0
    assert xdist_offset("gw0") == 1000
    assert xdist_offset("gw3") == 1300
    assert xdist_offset("master") == 0
