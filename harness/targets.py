"""One door: a team's target (``queue-chaos.toml``) becomes a configuration of its backend, like
the built-in ones, and runs through the same services, faults, checker and report.

What differs is only what the target file names: the image is built from their source and
requirements, the agent loads their app (``module:attribute``) with their worker arguments and
queue, and the claim is what their running workers report, not what a configuration declares.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from harness.backend import Configuration
from harness.backends import UnknownBackend, for_target
from harness.target import Target, TargetError


def configuration(target: Target, faults: Collection[str]) -> Configuration:
    """The target as a configuration: its backend (from kind and broker), the knobs its worker
    arguments tell, and the faults it meets: those it names, or every fault that applies.

    ``faults`` is the fault catalogue in run order (name -> applies is checked here, so a fault
    the target cannot meet is one clear error before anything starts).
    """
    from harness.faults import FAULTS  # the catalogue imports the world; load it when needed

    try:
        backend = for_target(target.kind, target.broker)
    except UnknownBackend as exc:
        raise TargetError(f"{target.path}: {exc}") from None
    config = Configuration(backend.name, target.name, backend.target_knobs(target.worker_args),
                           target=target)
    if target.faults:
        unmet = [FAULTS[f].unmet(config) for f in target.faults if not FAULTS[f].applies(config)]
        if unmet:
            raise TargetError(f"{target.path}: {'; '.join(unmet)}")
        meets = tuple(f for f in faults if f in target.faults and not FAULTS[f].control)
    else:
        meets = tuple(f for f in faults if not FAULTS[f].control and FAULTS[f].applies(config))
    return replace(config, meets=meets)
