"""harness/target.py and harness/targets.py: a team's target file, read, checked, and turned
into a configuration of its backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backend import Capability
from harness.matrix import fault_names, must_lose, target_cases
from harness.paths import ROOT
from harness.target import Target, TargetError, load
from harness.targets import configuration

FAULTS = fault_names()
GOOD = """
[target]
name = "shop"
kind = "celery"
app = "shop.celery_app:app"
source = "src"
requirements = "requirements.txt"
broker = "redis"
worker_args = ["--concurrency", "4", "-Q", "default,emails", "--pool", "threads"]
queue = "emails"

[task]
name = "shop.tasks.send_receipt"
args = [1]
kwargs = {copy = true}

[settings]
tasks = 30
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "requirements.txt").write_text("celery==5.7.0\n")
    path = tmp_path / "queue-chaos.toml"
    path.write_text(text)
    return path


def test_a_good_target_file(tmp_path: Path) -> None:
    target = load(write(tmp_path, GOOD), FAULTS)
    assert (target.name, target.kind, target.broker, target.queue) == (
        "shop", "celery", "redis", "emails")
    assert target.source == (tmp_path / "src").resolve()
    assert target.task is not None and target.task.kwargs == {"copy": True}
    assert target.settings == {"tasks": "30"}
    assert target.env()["QUEUE_CHAOS_WORKER_ARGS"] == (
        "--concurrency 4 -Q default,emails --pool threads")
    assert target.env()["QUEUE_CHAOS_TASK_KWARGS"] == '{"copy": true}'
    variables = target.compose_variables()
    assert variables["CHAOS_APP"] == "shop.celery_app:app" and "CHAOS_KIND" not in variables
    assert target.image_variable == "CHAOS_TARGET_SHOP_IMAGE"


@pytest.mark.parametrize(("old", "new", "message"), [
    ('kind = "celery"', 'kind = "huey"', "kind = 'huey': unknown kind; valid: celery, arq, rq"),
    ('kind = "celery"', 'kind = "rq"', "worker_args: rq takes its settings from its settings "
     "class; remove worker_args"),
    ('broker = "redis"', 'broker = "kafka"', "broker = 'kafka': celery runs on redis, rabbitmq"),
    ('app = "shop.celery_app:app"', 'app = "shop.celery_app"', "expected module:attribute"),
    ('name = "shop"', 'name = "Shop!"', "name = 'Shop!': expected lowercase"),
    ('source = "src"', 'source = "nowhere"', "source = 'nowhere': no such folder"),
    ('requirements = "requirements.txt"', 'requirements = "reqs.txt"',
     "requirements = 'reqs.txt': no such file"),
    ('queue = "emails"', 'queue = "reports"',
     "queue = 'reports': the workers consume only default, emails"),
    ('queue = "emails"', 'queue = "emails"\nqeue = "x"', "unknown key 'qeue' (did you mean"),
    ('[settings]', '[setings]', "unknown table [setings] (did you mean [settings]?)"),
    ('worker_args = ["--concurrency"', 'worker_args = [4, "--concurrency"',
     "expected a list of strings"),
    ('queue = "emails"', 'queue = "emails"\nfaults = ["meteor"]',
     "faults: unknown fault 'meteor'; valid: none, sigkill-worker"),
    ('args = [1]', 'args = 1', "[task] args = 1: expected a list"),
    ('queue = "emails"\n', '', "lacks queue (required: name, kind, app, requirements"),
])
def test_each_problem_is_one_clear_error(tmp_path: Path, old: str, new: str,
                                         message: str) -> None:
    assert old in GOOD
    with pytest.raises(TargetError, match=None) as error:
        load(write(tmp_path, GOOD.replace(old, new, 1)), FAULTS)
    assert message in str(error.value)
    assert str(tmp_path / "queue-chaos.toml") in str(error.value)


def test_arq_takes_no_worker_arguments(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "celery"', 'kind = "arq"').replace(
        'app = "shop.celery_app:app"', 'app = "shop.worker:WorkerSettings"')
    with pytest.raises(TargetError, match="arq takes its settings from the WorkerSettings"):
        load(write(tmp_path, text), FAULTS)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="no such target file"):
        load(tmp_path / "nope.toml")
    with pytest.raises(TargetError, match="not TOML"):
        load(write(tmp_path, "[target\n"))
    with pytest.raises(TargetError, match=r"no \[target\] table"):
        load(write(tmp_path, "[task]\nname = 'x'\n"))


def test_a_target_is_a_configuration_of_its_backend(tmp_path: Path) -> None:
    target = load(write(tmp_path, GOOD), FAULTS)
    config = configuration(target, FAULTS)
    assert config.backend == "celery-redis" and config.target is target
    assert config.knobs.as_dict()["pool"] == "threads"
    assert config.knobs.as_dict()["concurrency"] == 4
    assert Capability.POOL_CHILDREN not in config.capabilities  # threads: no child to kill
    assert "sigkill-pool-child" not in config.meets and "broker-sigkill" in config.meets
    assert config.summary.startswith("shop.celery_app:app from queue-chaos.toml, measuring their "
                                     "task shop.tasks.send_receipt on queue emails; running ")
    images = {target.image_variable: "queue-chaos/target-shop:1"}
    variables = config.variables(type("S", (), {"visibility_timeout_s": 15,
                                                "restore_interval_s": 2})(), images)
    assert variables["CHAOS_CELERY_IMAGE"] == "queue-chaos/target-shop:1"
    assert variables["CHAOS_WORKER_ARGS"] == "--concurrency 4 -Q default,emails --pool threads"
    assert config.mismatch(config.knobs) is None  # a target declares nothing


def test_a_target_names_faults_it_can_meet(tmp_path: Path) -> None:
    text = GOOD.replace('queue = "emails"', 'queue = "emails"\nfaults = ["sigkill-pool-child"]')
    target = load(write(tmp_path, text), FAULTS)
    with pytest.raises(TargetError, match="fault sigkill-pool-child needs pool-children"):
        configuration(target, FAULTS)


def test_a_targets_cases_carry_the_self_proof(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import matrix

    target = load(write(tmp_path, GOOD), FAULTS)
    monkeypatch.setitem(matrix.CONFIGURATIONS, "shop", configuration(target, FAULTS))
    cases = target_cases("shop", ["sigkill-worker"])
    assert cases == [("shop", "none"), ("shop", "sigkill-worker"),
                     ("acks-early-prefetch-1", "none"), ("acks-early-prefetch-1",
                                                         "sigkill-worker")]
    assert not must_lose("shop", "sigkill-worker")  # known only once its workers report


def test_the_examples_parse() -> None:
    for path in sorted((ROOT / "examples").glob("*/queue-chaos.toml")):
        target = load(path, FAULTS)
        assert isinstance(target, Target)
        assert configuration(target, FAULTS).meets, path
