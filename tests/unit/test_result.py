"""harness/result.py: the result model reads reports of this harness and of older ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.matrix import PROFILES
from harness.paths import ROOT, RUNS, WORK
from harness.result import (
    SCHEMA,
    Provenance,
    ReportError,
    RunReport,
    ScenarioResult,
    measured_with,
)
from tests.unit.build import BLANK, scenario_result

COMMITTED = ROOT / "reports" / "durability.json"


def test_the_committed_report_loads_through_the_model() -> None:
    report = RunReport.load(COMMITTED)
    assert report.measurement_valid
    assert len(report.scenarios) >= 100
    assert all(isinstance(s, ScenarioResult) for s in report.scenarios)
    # every backend of the default profile: the committed report is of the whole default matrix
    # (the clusters profile has its own report)
    assert {s.backend for s in report.scenarios} == set(PROFILES["default"])


def test_the_committed_cluster_report_holds_the_whole_clusters_profile() -> None:
    """reports/clusters/: every cluster backend under every cluster fault, each faulted
    scenario with its failover figures (the cluster's own view included), and the self-proof
    (a known-to-lose Celery-on-Redis case, hence that backend too)."""
    report = RunReport.load(COMMITTED.parent / "clusters" / "durability.json")
    assert report.measurement_valid
    assert {s.backend for s in report.scenarios} == {*PROFILES["clusters"], "celery-redis"}
    clustered = [s for s in report.scenarios if s.fault_kind == "cluster"]
    assert {s.fault for s in clustered} == {"leader-sigkill", "leader-partition",
                                            "leader-sigstop", "rolling-restart"}
    for s in clustered:
        assert s.valid, s.scenario
        assert {"submit_outage_s", "consume_outage_s", "acked_before_lost",
                "new_leader", "settled_s"} <= set(s.failover), s.scenario
        if s.fault in ("leader-partition", "leader-sigstop"):
            assert s.failover["down_s"] is not None, s.scenario  # the cluster felt it


def test_fields_a_report_lacks_take_defaults_and_unknown_ones_are_ignored() -> None:
    result = ScenarioResult.from_dict({**BLANK, "from_the_future": 1})
    assert result.knobs == {} and result.must_lose is False and result.fault_kind == ""


def test_a_result_survives_a_round_trip(tmp_path: Path) -> None:
    result = scenario_result(knobs={"acks_late": True}, fault_kind="worker-death",
                             must_lose=False, counts={"lost": 2})
    result.save(tmp_path / "result.json")
    assert ScenarioResult.load(tmp_path / "result.json") == result


def test_violated_is_a_violation_or_an_invalid_verdict() -> None:
    assert scenario_result(verdict="VIOLATED").violated
    assert scenario_result(verdict="INVALID").violated
    assert not scenario_result(verdict="inconclusive").violated


@pytest.mark.parametrize(("text", "expected"), [
    ("[]", "no list of scenarios"),
    ('{"scenarios": 3}', "no list of scenarios"),
    ('{"scenarios": [{"scenario": "x"}]}', "missing"),
    ("{", "Expecting"),
])
def test_what_is_not_a_report_is_one_clear_error(tmp_path: Path, text: str,
                                                 expected: str) -> None:
    path = tmp_path / "durability.json"
    path.write_text(text)
    with pytest.raises(ReportError, match=expected):
        RunReport.load(path)


def test_a_missing_report_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="run `make durability` first"):
        RunReport.load(tmp_path / "nope.json")


def test_the_schema_version_is_read() -> None:
    data = json.loads(COMMITTED.read_text())
    assert RunReport.from_dict({**data, "schema": 2}).schema == 2


def test_a_report_without_a_schema_or_provenance_loads_as_schema_1() -> None:
    data = json.loads(COMMITTED.read_text())
    del data["schema"]
    data.pop("provenance", None)
    report = RunReport.from_dict(data)
    assert report.schema == 1 and report.provenance == Provenance()
    assert SCHEMA == 3


def test_the_committed_reports_versions_are_gathered_per_backend() -> None:
    backends = RunReport.load(COMMITTED).measured_with
    # in run order, which is the registry's, of the default profile's backends
    assert list(backends) == list(PROFILES["default"])
    assert backends["arq"]["libraries"]["arq"] == "0.28.0"
    # The servers as the running services answered, per backend: FastAPI's app has no broker.
    assert set(backends["celery-redis"]["servers"]) == {"redis-server", "toxiproxy"}
    assert set(backends["celery-rabbitmq"]["servers"]) == {"rabbitmq-server", "erlang",
                                                           "toxiproxy"}
    assert backends["fastapi"]["servers"] == {}


def test_the_ledger_directory_is_written_relative_to_the_work_directory(tmp_path: Path) -> None:
    ledger = RUNS / "20261204-052033-02f3-w1" / "ledger" / "celery-redis-2"
    result = scenario_result(ledger_dir=str(ledger))
    assert result.as_dict()["ledger_dir"] == "runs/20261204-052033-02f3-w1/ledger/celery-redis-2"
    result.save(tmp_path / "result.json")
    assert str(WORK) not in (tmp_path / "result.json").read_text()
    # Read back, it is a path on this machine again: what readers of a result open.
    assert ScenarioResult.load(tmp_path / "result.json").ledger_dir == str(ledger)


def test_an_old_reports_absolute_ledger_directory_loads_as_it_was() -> None:
    old = "/tmp/fresh-dur/runs/20261204-052033-02f3-w1/ledger/celery-redis-2"
    assert scenario_result(ledger_dir=old).ledger_dir == old


def test_versions_are_gathered_per_backend_and_differences_kept() -> None:
    scenarios = [
        scenario_result(versions={"celery": "5.7.0", "kombu": "5.7.0"},
                        servers={"redis-server": "7.0.15", "toxiproxy": "2.12.0"}),
        scenario_result(backend="arq", versions={"arq": "0.28.0"}),
        scenario_result(versions={"celery": "5.4.0", "kombu": "5.7.0"},
                        servers={"redis-server": "7.0.15"}),
    ]
    assert measured_with(scenarios) == {
        "celery-redis": {"libraries": {"celery": "5.7.0 / 5.4.0", "kombu": "5.7.0"},
                         "servers": {"redis-server": "7.0.15", "toxiproxy": "2.12.0"}},
        "arq": {"libraries": {"arq": "0.28.0"}, "servers": {}},
    }


def test_shards_provenance_merges_keeping_every_difference() -> None:
    redis = {"variable": "CHAOS_REDIS_IMAGE", "tag": "queue-chaos/debian-base:f3", "id": "sha256:a"}
    rebuilt = {**redis, "id": "sha256:b"}  # another runner built the same tag itself
    celery = {"variable": "CHAOS_CELERY_IMAGE", "tag": "queue-chaos/celery:29", "id": "sha256:c"}
    one = Provenance("0.1.0", "local", [celery, redis])
    two = Provenance("0.1.0", "local", [redis, rebuilt])
    assert Provenance.merged([one, two]) == Provenance("0.1.0", "local", [celery, redis, rebuilt])
    assert Provenance.merged([one, Provenance("0.2.0", "registry")]).harness == "0.1.0 / 0.2.0"
    assert Provenance.merged([]) == Provenance()


@pytest.mark.parametrize("data", [None, [], "x", {"images": [3, {"tag": 1}]}])
def test_provenance_that_is_not_one_loads_as_what_it_holds(data: object) -> None:
    loaded = Provenance.from_dict(data)
    assert loaded.harness == "" and loaded.images in ([], [{"tag": "1"}])


def test_provenance_keeps_the_broker_releases_and_a_merge_joins_differing_ones() -> None:
    from harness.result import Provenance

    one = Provenance.from_dict({"harness": "h", "brokers": "redis-8.0,rabbitmq-4.0"})
    assert one.brokers == "redis-8.0,rabbitmq-4.0"
    assert Provenance.from_dict({"harness": "h"}).brokers == ""
    other = Provenance(harness="h", brokers="valkey-8.1,rabbitmq-3.10")
    assert Provenance.merged([one, one]).brokers == "redis-8.0,rabbitmq-4.0"
    assert Provenance.merged([one, other]).brokers == (
        "redis-8.0,rabbitmq-4.0 / valkey-8.1,rabbitmq-3.10")
