"""harness/provenance.py: what the harness brings to a run's provenance."""

from __future__ import annotations

from importlib import metadata

import pytest

from harness import provenance
from harness.result import Provenance


def test_the_harness_version_is_its_distributions() -> None:
    assert provenance.harness_version() == metadata.version("queue-chaos")


def test_the_harness_version_of_an_uninstalled_checkout_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    assert provenance.harness_version() == "unknown (not installed)"


def test_the_image_mode_is_chaos_images_local_by_default() -> None:
    assert provenance.image_mode({}) == "local"
    assert provenance.image_mode({"CHAOS_IMAGES": "registry"}) == "registry"


def test_a_runs_provenance_lists_each_image_it_ran_by_variable() -> None:
    ran = {("CHAOS_TOXIPROXY_IMAGE", "queue-chaos/toxiproxy:v2.12.0-e1"): "sha256:t",
           ("CHAOS_CELERY_IMAGE", "queue-chaos/celery:29"): "sha256:c"}
    assert provenance.of_run(ran, {"CHAOS_IMAGES": "local"}) == Provenance(
        harness=provenance.harness_version(), image_mode="local", images=[
            {"variable": "CHAOS_CELERY_IMAGE", "tag": "queue-chaos/celery:29", "id": "sha256:c"},
            {"variable": "CHAOS_TOXIPROXY_IMAGE", "tag": "queue-chaos/toxiproxy:v2.12.0-e1",
             "id": "sha256:t"},
        ])
