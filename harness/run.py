"""A run: its id, seed, directory, settings, the results its scenarios produced and the images
its world ran them on."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from harness.matrix import Settings
from harness.paths import RUNS
from harness.provenance import ImagesRun
from harness.result import ScenarioResult


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def new_seed() -> int:
    return secrets.randbelow(1_000_000)


@dataclass
class Run:
    run_id: str
    seed: int
    settings: Settings
    started: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    results: list[ScenarioResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # The images its world started containers from (the world's own record, shared with it, so
    # it is complete whenever the report is written, even before the world is torn down).
    images: ImagesRun = field(default_factory=dict)
    # The broker releases it runs (``--brokers``), by name; empty for the defaults.
    brokers: str = ""
    # The matrix profile it runs (``--profile``): "default", or "clusters".
    profile: str = "default"

    @property
    def directory(self) -> Path:
        return RUNS / self.run_id

    def replay(self, configurations: str = "", faults: str = "", overrides: str = "") -> str:
        """The command that replays (part of) this run with the same seed."""
        parts = [f"make durability SEED={self.seed}"]
        if self.profile != "default":
            parts.append(f"PROFILE={self.profile}")
        if self.brokers:
            parts.append(f"BROKERS={self.brokers}")
        if configurations:
            parts.append(f"CONFIGS={configurations}")
        if faults:
            parts.append(f"FAULTS={faults}")
        if overrides:
            parts.append(f"SET='{overrides}'")
        return " ".join(parts)
