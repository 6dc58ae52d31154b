"""The agent's pure parts, in the harness's environment (no Celery, no arq): its configuration
from the environment, the app loader's one-line errors, version checks and the ready record.
The instrumentation itself runs for real in tests/agent/."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import images
from queue_chaos_agent import __main__ as cli
from queue_chaos_agent import ready, target, versions
from queue_chaos_agent.config import ConfigError, from_env, queues_in_args

GOOD = {"QUEUE_CHAOS_KIND": "celery", "QUEUE_CHAOS_APP": "proj.celery:app"}


def test_a_full_configuration_is_read() -> None:
    config = from_env({
        **GOOD, "QUEUE_CHAOS_WORKER_ARGS": "--hostname 'celery@%h' -Q a,b --pool threads",
        "QUEUE_CHAOS_BROKER_URL": "amqp://guest:guest@toxiproxy:5672//",
        "QUEUE_CHAOS_QUEUE": "a", "QUEUE_CHAOS_TASK": "proj.add",
        "QUEUE_CHAOS_TASK_ARGS": "[1, 2]", "QUEUE_CHAOS_TASK_KWARGS": '{"z": 3}',
        "CHAOS_LEDGER_DIR": "/l", "CHAOS_IDEMPOTENT": "true",
    })
    assert config.worker_args == ["--hostname", "celery@%h", "-Q", "a,b", "--pool", "threads"]
    assert (config.module, config.attribute) == ("proj.celery", "app")
    assert (config.task_args, config.task_kwargs) == ([1, 2], {"z": 3})
    assert (config.queue, config.task, config.ledger_dir, config.idempotent) == (
        "a", "proj.add", "/l", True)


def test_defaults() -> None:
    config = from_env(GOOD)
    assert (config.worker_args, config.broker_url, config.queue, config.task) == (
        [], None, None, None)
    assert (config.task_args, config.task_kwargs) == ([], {})
    assert (config.ledger_dir, config.idempotent) == ("/ledger", False)


@pytest.mark.parametrize(("change", "message"), [
    ({"QUEUE_CHAOS_KIND": "huey"},
     "QUEUE_CHAOS_KIND='huey': expected one of celery, arq, rq, dramatiq"),
    ({"QUEUE_CHAOS_KIND": ""}, "QUEUE_CHAOS_KIND='': expected one of celery, arq, rq, dramatiq"),
    ({"QUEUE_CHAOS_APP": ""}, "QUEUE_CHAOS_APP is not set: expected module:attribute"),
    ({"QUEUE_CHAOS_APP": "proj.celery"}, "QUEUE_CHAOS_APP='proj.celery': expected module:attr"),
    ({"QUEUE_CHAOS_APP": "proj-x:app"}, "expected module:attribute"),
    ({"QUEUE_CHAOS_WORKER_ARGS": "--hostname 'x"}, "QUEUE_CHAOS_WORKER_ARGS=\"--hostname 'x\": "
     "not a shell word list"),
    ({"QUEUE_CHAOS_BROKER_URL": "kafka://x:1"}, "expected a celery broker URL (redis://host:port"),
    ({"QUEUE_CHAOS_BROKER_URL": "redis://x:port/0"}, "the port is not a number"),
    ({"QUEUE_CHAOS_TASK_ARGS": "{"}, "QUEUE_CHAOS_TASK_ARGS='{': not JSON"),
    ({"QUEUE_CHAOS_TASK_ARGS": '{"a": 1}'}, "expected a JSON array"),
    ({"QUEUE_CHAOS_TASK_KWARGS": "[1]"}, "QUEUE_CHAOS_TASK_KWARGS='[1]': expected a JSON object"),
    ({"CHAOS_IDEMPOTENT": "yes"}, "CHAOS_IDEMPOTENT='yes': expected true or false"),
    ({"QUEUE_CHAOS_KIND": "arq", "QUEUE_CHAOS_WORKER_ARGS": "--burst"},
     "arq takes its settings from the WorkerSettings class"),
    ({"QUEUE_CHAOS_KIND": "arq", "QUEUE_CHAOS_BROKER_URL": "amqp://x:5672//"},
     "expected a arq broker URL (redis://host:port, rediss://host:port, sentinel://host:port)"),
])
def test_a_bad_value_is_one_clear_error(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_env({**GOOD, **change})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("args", "queues"), [
    ([], None),
    (["--pool", "solo"], None),
    (["-Q", "a,b"], ["a", "b"]),
    (["-Qa"], ["a"]),
    (["--queues=a", "-Q", "b"], ["a", "b"]),
    (["--queues", "a, b ,"], ["a", "b"]),
    (["-Q"], []),
])
def test_queues_named_by_worker_args(args: list[str], queues: list[str] | None) -> None:
    assert queues_in_args(args) == queues


def test_versions() -> None:
    assert versions.parse("5.7.0") == (5, 7, 0)
    assert versions.parse("0.28.0rc1") == (0, 28, 0)
    assert versions.parse("dev") == ()
    versions.require("celery", "5.2.0", (5, 2), (6,))
    with pytest.raises(versions.UnsupportedVersion, match=r"celery 5\.1\.2 cannot be instrumented"
                       r": the agent supports celery >= 5\.2, < 6"):
        versions.require("celery", "5.1.2", (5, 2), (6,))
    with pytest.raises(versions.UnsupportedVersion, match="arq is not installed"):
        versions.require("arq", None, (0, 25), (1,))
    assert versions.installed(("pytest", "surely-not-installed-xyz")) == {
        "pytest": pytest.__version__}


@pytest.fixture
def team_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of a team's, importable from the working directory as the agent finds it."""
    (tmp_path / "teamapp.py").write_text(
        "class App:\n    pass\n\napp = App()\nother = App()\nnot_app = 3\n")
    (tmp_path / "broken.py").write_text("raise RuntimeError('their import\\nfails')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield "teamapp"
    for name in ("teamapp", "broken"):
        sys.modules.pop(name, None)


def is_app(obj: Any) -> bool:
    return type(obj).__name__ == "App"


def test_load_finds_the_app_from_the_working_directory(team_module: str) -> None:
    assert is_app(target.load(f"{team_module}:app", "an App", is_app))


@pytest.mark.parametrize(("path", "message"), [
    ("teamapp:nope", "QUEUE_CHAOS_APP='teamapp:nope': teamapp has no attribute 'nope'; an App in "
     "it: teamapp:app, teamapp:other"),
    ("teamapp:not_app", "QUEUE_CHAOS_APP='teamapp:not_app': not_app is a int, not an App; an App "
     "in teamapp: teamapp:app, teamapp:other"),
    ("broken:app", "QUEUE_CHAOS_APP='broken:app': module 'broken' does not import: RuntimeError: "
     "their import fails"),
    ("missing_module_xyz:app", "module 'missing_module_xyz' does not import: "
     "ModuleNotFoundError"),
])
def test_load_errors_name_what_is_wrong_and_what_is_valid(
    team_module: str, path: str, message: str,
) -> None:
    with pytest.raises(target.TargetError) as caught:
        target.load(path, "an App", is_app)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


class FakeLedger:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.records.append((kind, fields))
        return {"kind": kind, **fields}


def test_ready_record_carries_what_observe_reads_plus_effective_settings_and_versions() -> None:
    ledger = FakeLedger()
    ready.write(ledger, "celery", {"task_acks_late": True}, idempotent=False)
    ((kind, fields),) = ledger.records
    assert kind == "worker_ready"
    assert fields["worker"] and fields["main_pid"] and fields["started_at"] > 0
    assert fields["effective"] == {"task_acks_late": True}
    assert fields["measures"] == "probe"
    assert isinstance(fields["versions"], dict)


@pytest.mark.skipif(importlib.util.find_spec("celery") is not None, reason="celery installed")
def test_check_refuses_a_missing_library_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QUEUE_CHAOS_KIND", "celery")
    monkeypatch.setenv("QUEUE_CHAOS_APP", "proj:app")
    assert cli.main(["check"]) == cli.EXIT_UNUSABLE
    err = capsys.readouterr().err
    assert err.strip() == ("queue-chaos-agent check: celery is not installed in this environment "
                           "(the agent supports celery >= 5.2, < 6)")


def test_check_reports_a_bad_knob_before_anything_else(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QUEUE_CHAOS_KIND", "huey")
    assert cli.main(["check"]) == cli.EXIT_UNUSABLE
    assert ("QUEUE_CHAOS_KIND='huey': expected one of celery, arq, rq, dramatiq"
            in capsys.readouterr().err)


def test_image_tags_hash_the_agent_sources() -> None:
    assert all(p.exists() for p in images.AGENT_SOURCES)
    assert images.AGENT.name == "agent"
