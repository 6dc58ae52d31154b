"""Scenario numbers in production terms: what a compressed clock stands for.

Scenarios compress timescales so that a run fits in minutes (a Redis visibility timeout of 15 s
where kombu's default is an hour; arq's job_timeout 10 s where its default is 300 s). A recovery
measured under such a clock says little about production until it is translated back, so every
such number is shown both ways. Which clocks a backend compresses, and which one governed a
scenario's recovery, is the backend's knowledge (``Backend.clocks``, ``Backend.recovery_clock``
in harness/backends/); this module only does the arithmetic and the words.

The translation: a recovery waited for the clock, so in production it waits for the production
value instead, ``recovery_s - scenario_s + production_s``. That holds when the clock was still
running when the fault healed. When the fault itself outlasted the clock (a SIGSTOP window longer
than the visibility timeout, on purpose) the redelivery came during the fault, and what changes
in production is how long a fault must last to cause it, not the recovery after it: the words
say that instead. A sweep period (kombu's restore sweep) can add up to its own production value
on top; ``clock_lines`` lists it beside the clock.

Pure: no Docker; it reads the result model and the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.backend import Backend, Clock
from harness.backends import REGISTRY
from harness.result import ScenarioResult


def _backend(name: str) -> Backend | None:
    """The registry's backend, or None for a name it does not hold (a team's target named as
    its own backend, an old report's)."""
    return REGISTRY.get(name)


def production_recovery(r: ScenarioResult) -> str | None:
    """``r``'s recovery in production terms, with the why, e.g. "18.2 s here; about 1 h 0 min
    in production (visibility timeout 3600 s, not 15 s)"; None when it has no recovery or no
    compressed clock governed it."""
    owner = _backend(r.backend)
    if r.recovery_s is None or owner is None:
        return None
    clock = owner.recovery_clock(r)
    if clock is None or clock.production_s == clock.scenario_s:
        return None
    window = _fault_window(r)
    if window is not None and window >= clock.scenario_s:
        return (f"{_after_heal(r.recovery_s)} here, but the {clock.name} "
                f"({clock.scenario_s:g} s) ran out during the {window:.0f} s fault, so the "
                f"redelivery came while it lasted; in production ({clock.production_s:g} s) only "
                f"a fault lasting {duration(window - clock.scenario_s + clock.production_s)} "
                "would do the same")
    later = max(0.0, r.recovery_s - clock.scenario_s + clock.production_s)
    return (f"{r.recovery_s:.1f} s here; {duration(later)} in production ({clock.name} "
            f"{clock.production_s:g} s, not {clock.scenario_s:g} s)")


def clock_lines(backend: str, settings: Mapping[str, Any]) -> list[str]:
    """Each clock the backend runs compressed under these settings, one line each:
    "visibility timeout: 15 s here, 3600 s in production (source)"; [] for an unknown backend
    or one without compressed clocks."""
    owner = _backend(backend)
    return [clock_line(c) for c in owner.clocks(settings)] if owner else []


def clock_line(clock: Clock) -> str:
    return (f"{clock.name}: {clock.scenario_s:g} s here, {clock.production_s:g} s in production "
            f"({clock.source})")


def duration(seconds: float) -> str:
    """Seconds in human units, as precise as the figure deserves: "about 42 s", "about 5 min
    20 s" under ten minutes, whole minutes above ("about 25 min", "about 1 h 0 min": an hour
    less a few seconds is an hour)."""
    whole = round(seconds)
    if whole < 60:
        return f"about {whole} s"
    if whole < 600:
        return f"about {whole // 60} min {whole % 60} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"


def _after_heal(recovery_s: float) -> str:
    shown = round(recovery_s, 1)
    return (f"{abs(shown):.1f} s after healing" if shown >= 0
            else f"{-shown:.1f} s before healing")


def _fault_window(r: ScenarioResult) -> float | None:
    """Fault to heal, seconds (its window, plus a revived worker's start)."""
    if r.fault_at_s is None or r.healed_at_s is None:
        return None
    return r.healed_at_s - r.fault_at_s
