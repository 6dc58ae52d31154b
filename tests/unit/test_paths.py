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


def test_a_report_names_paths_relative_to_the_work_directory(tmp_path: Path) -> None:
    ledger = tmp_path / "runs" / "r1-w2" / "ledger" / "celery-redis-3"
    assert paths.relative(ledger, tmp_path) == "runs/r1-w2/ledger/celery-redis-3"
    assert paths.resolve("runs/r1-w2/ledger/celery-redis-3", tmp_path) == str(ledger)
    assert paths.relative(paths.RUNS / "r" / "ledger") == "runs/r/ledger"  # default: WORK


def test_a_path_outside_the_work_directory_is_still_not_absolute(tmp_path: Path) -> None:
    work = tmp_path / "work"
    named = paths.relative("/elsewhere/runs/r/ledger", work)
    assert not named.startswith("/") and named.endswith("elsewhere/runs/r/ledger")
    assert paths.resolve(named, work) == "/elsewhere/runs/r/ledger"  # and it resolves back


def test_relative_and_empty_paths_are_kept_and_old_absolute_ones_load_as_they_are() -> None:
    assert paths.relative("runs/r/ledger") == "runs/r/ledger"
    assert paths.relative("") == "" and paths.resolve("") == ""
    assert paths.resolve("/tmp/fresh-dur/runs/r/ledger") == "/tmp/fresh-dur/runs/r/ledger"
