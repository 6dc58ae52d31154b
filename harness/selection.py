"""What a run measures, from what the user named: a target file or built-in backends,
configurations and faults, settings, a shard. Checked here, before anything starts, by every
door that starts a run (the plugin, and the command before it starts worlds side by side), so
bad input ends in one clear error naming what is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import matrix
from harness.paths import ROOT
from harness.shard import Shard, durations
from harness.target import Target, TargetError, load
from harness.targets import configuration


@dataclass
class Selection:
    target: Target | None
    settings: matrix.Settings
    cases: list[tuple[str, str]]


def _target(path: Path | None) -> Target | None:
    """A team's target file, checked, and registered as a configuration of its backend."""
    if path is None:
        return None
    target = load(path, matrix.fault_names())
    if target.name in matrix.CONFIGURATIONS and matrix.CONFIGURATIONS[target.name].target is None:
        raise TargetError(f"{path}: [target] name = {target.name!r} is a built-in "
                          "configuration's name; choose another")
    matrix.CONFIGURATIONS[target.name] = configuration(target, matrix.fault_names())
    return target


def overrides(text: str) -> dict[str, str]:
    """``name=value,name=value`` as a dict, each pair checked for its ``=``."""
    pairs = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise matrix.MatrixError(f"setting {item!r}: expected name=value")
        pairs[name.strip()] = value.strip()
    return pairs


def select(target_path: Path | None = None, backends: str = "", configs: str = "",
           faults: str = "", settings_text: str = "", shard: str | None = None,
           profile: str = "default") -> Selection:
    """The run's cases (self-proof included) and settings; raises MatrixError, TargetError or
    ValueError naming what is wrong. Backends not named: the matrix profile's; configurations
    named: wherever they live."""
    if target_path is not None and (configs or backends):
        raise matrix.MatrixError(
            "--target measures the target file's app; --configs and --backends choose "
            "built-in configurations: give one or the other")
    target = _target(target_path)
    settings = matrix.Settings().with_overrides(
        {**(target.settings if target else {}), **overrides(settings_text)})
    if target is not None:
        cases = matrix.target_cases(
            target.name, matrix.select(faults, matrix.fault_names(), "fault") if faults else None)
    else:
        in_profile = matrix.profile(profile)
        cases = matrix.cases(
            matrix.select(backends, matrix.BACKENDS, "backend") if backends
            else list(matrix.BACKENDS if configs else in_profile),
            matrix.select(configs, list(matrix.CONFIGURATIONS), "configuration") if configs
            else None,
            matrix.select(faults, matrix.fault_names(), "fault") if faults else None,
        )
    if shard:
        part = Shard.parse(shard)
        cases = matrix.shard_cases(cases, part.index, part.count, settings,
                                   durations(ROOT / "reports" / "durability.json"))
    for name in dict.fromkeys(c for c, _ in cases):
        matrix.CONFIGURATIONS[name].settings(settings)  # its own overrides hold with SET's
    return Selection(target, settings, cases)
