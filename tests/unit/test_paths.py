"""harness/paths.py: shipped files from the checkout or the installed package; made files in
the checkout, QUEUE_CHAOS_HOME, or the project's .queue-chaos/."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import paths


def test_a_checkout_finds_everything_in_place() -> None:
    assert paths.IN_CHECKOUT
    assert (paths.ROOT / paths.COMPOSE_NAME).is_file()
    for shipped in ("topology/toxiproxy.json", "backends/Dockerfile", "backends/target/Dockerfile",
                    "agent/pyproject.toml", "scenarios/test_durability.py"):
        assert (paths.ROOT / shipped).is_file(), shipped


def test_made_files_go_where_they_are_told(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("QUEUE_CHAOS_HOME", str(tmp_path))
    assert paths.workdir() == tmp_path
    monkeypatch.delenv("QUEUE_CHAOS_HOME")
    assert paths.workdir() == paths.ROOT  # in a checkout


def test_installed_files_are_the_packages_data_files() -> None:
    """Everything the harness reads from ROOT is shipped (pyproject's data-files)."""
    text = (paths.ROOT / "pyproject.toml").read_text()
    for shipped in ("docker-compose.chaos.yml", "topology/*.json", "backends/Dockerfile",
                    "backends/target/Dockerfile", "agent/pyproject.toml",
                    "agent/queue_chaos_agent/*.py", "scenarios/*.py"):
        assert f'"{shipped}"' in text, shipped
    for backend in ("celery", "arq", "fastapi"):
        assert f'"backends/{backend}/requirements.txt"' in text
