"""What the harness itself brings to a run's provenance: its own version, the image mode, and
the images its containers ran.

Each scenario carries the versions read from what it measured (the workers' libraries, the
servers' own answers); this is what is the same for the whole run. The harness's version is its
installed distribution's, as ``queue-chaos --version`` says it; the images are the ones the
world started its containers from, with the ids the engine gave those containers, so a report
names the bytes that ran, not only the tags (which name inputs, or a registry's moving name).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import metadata

from harness.result import Provenance

DISTRIBUTION = "queue-chaos"
IMAGE_MODE_VARIABLE = "CHAOS_IMAGES"  # local (built offline) | registry (official images)
DEFAULT_IMAGE_MODE = "local"

# An image a world ran: (the compose variable that chose it, or the service's name when none
# did; its tag) -> its id.
ImagesRun = Mapping[tuple[str, str], str]


def harness_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def image_mode(env: Mapping[str, str] = os.environ) -> str:
    """How the run's images were provisioned (``CHAOS_IMAGES``, local unless set)."""
    return env.get(IMAGE_MODE_VARIABLE, DEFAULT_IMAGE_MODE)


def of_run(images: ImagesRun, env: Mapping[str, str] = os.environ,
           brokers: str = "") -> Provenance:
    """The run's provenance: this harness, the image mode, ``images`` (what its world ran),
    sorted by variable so two runs' reports line up, and the broker releases it chose."""
    return Provenance(
        harness=harness_version(),
        image_mode=image_mode(env),
        images=[{"variable": variable, "tag": tag, "id": images[(variable, tag)]}
                for variable, tag in sorted(images)],
        brokers=brokers,
    )
