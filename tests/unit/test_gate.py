"""harness/gate.py: the CI gate over a durability report's JSON, its JUnit XML and exit codes."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, replace
from pathlib import Path
from xml.etree import ElementTree

import pytest

from harness import __main__ as cli
from harness import gate as gate_module
from harness.checker import Counts
from harness.gate import (
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_FAIL,
    EXIT_PASS,
    GateInputError,
    Outcome,
    check_names,
    checks,
    gate,
    gate_file,
    junit,
)
from harness.matrix import Settings, configuration, must_lose
from harness.paths import ROOT
from harness.report import write
from harness.result import RunReport, ScenarioResult
from tests.unit.build import run_report, scenario_result

EARLY, LATE = "acks-early-prefetch-1", "acks-late-prefetch-1"
COMMITTED = ROOT / "reports" / "durability.json"


def scenario(config: str, fault: str, verdict: str = "holds", *, valid: bool = True,
             reason: str = "", phase_s: dict[str, float] | None = None) -> ScenarioResult:
    return scenario_result(
        scenario=f"celery-redis.{config}.{fault}", configuration=config, fault=fault,
        valid=valid, validity="fired" if valid else "the fault fired while its target ran "
        "no task", verdict=verdict, reason=reason, phase_s=phase_s or {},
        replay=f"make durability CONFIGS={config} FAULTS={fault}")


def report(*scenarios: ScenarioResult, valid: bool = True) -> RunReport:
    return run_report(*scenarios, valid=valid)


def dump(data: RunReport) -> str:
    return json.dumps({"measurement_valid": data.measurement_valid,
                       "self_proof": data.self_proof,
                       "scenarios": [s.as_dict() for s in data.scenarios]})


def good() -> RunReport:
    return report(scenario(EARLY, "none"), scenario(LATE, "none"),
                  scenario(EARLY, "sigkill-worker"), scenario(LATE, "sigkill-worker"))


def with_late_kill(verdict: str, reason: str = "r", *, valid: bool = True) -> RunReport:
    data = good()
    data.scenarios[3] = scenario(LATE, "sigkill-worker", verdict, reason=reason, valid=valid)
    return data


def saved(tmp_path: Path, data: RunReport) -> Path:
    path = tmp_path / "durability.json"
    path.write_text(dump(data))
    return path


# -- verdicts -------------------------------------------------------------------------------------


def test_a_valid_report_without_violations_passes() -> None:
    assert gate(good()) == (True, [])
    assert gate(good(), [LATE]) == (True, [])
    assert gate(good(), None, ["sigkill-worker"]) == (True, [])
    assert gate(good(), [LATE], ["none"]) == (True, [])


def test_a_violated_chosen_scenario_fails_with_its_reason() -> None:
    data = with_late_kill("VIOLATED", "at-least-once claimed, 2 lost")
    assert gate(data, [LATE]) == (False, [
        f"celery-redis.{LATE}.sigkill-worker: VIOLATED: at-least-once claimed, 2 lost"])
    assert not gate(data)[0]  # no selection: every configuration is held


def test_an_invalid_verdict_fails() -> None:
    data = report(scenario(LATE, "none", "INVALID", reason="1 corrupt ledger records"))
    assert gate(data) == (False, [f"celery-redis.{LATE}.none: INVALID: 1 corrupt ledger records"])


def test_an_invalid_chosen_scenario_fails() -> None:
    assert gate(with_late_kill("holds", valid=False), [LATE]) == (False, [
        f"celery-redis.{LATE}.sigkill-worker: invalid (the fault fired while its target ran no "
        "task)"])


def test_an_invalid_run_self_proof_fails_whatever_is_chosen() -> None:
    data = good()
    data.measurement_valid = False
    assert gate(data, [LATE]) == (False, [
        "self-proof: the run's self-proof failed: its numbers are not a measurement"])
    assert not gate(RunReport.from_dict({"scenarios": []}))[0]  # no flag at all is no proof


def test_an_inconclusive_scenario_fails_unless_allowed() -> None:
    data = with_late_kill("inconclusive", "2 tasks still held by the broker at deadline")
    assert gate(data, [LATE]) == (False, [
        f"celery-redis.{LATE}.sigkill-worker: inconclusive: 2 tasks still held by the broker at "
        "deadline (accept with --allow inconclusive)"])
    assert gate(data, [LATE], allow=["inconclusive"]) == (True, [])
    [allowed] = [c for c in checks(data, [LATE], allow=["inconclusive"])
                 if c.outcome == Outcome.SKIPPED]
    assert allowed.name == "sigkill-worker" and "allowed by --allow inconclusive" in \
        allowed.message


def test_allowing_inconclusive_never_lets_violated_or_invalid_through() -> None:
    for data in (with_late_kill("VIOLATED"), with_late_kill("INVALID"),
                 with_late_kill("holds", valid=False)):
        assert not gate(data, [LATE], allow=["inconclusive"])[0]


def test_a_verdict_the_gate_does_not_know_fails() -> None:
    passes, reasons = gate(with_late_kill("maybe"), [LATE], allow=["inconclusive"])
    assert not passes
    assert reasons == [f"celery-redis.{LATE}.sigkill-worker: verdict 'maybe' is not one this "
                       "gate knows: r"]


def test_violations_of_configurations_not_chosen_are_ignored() -> None:
    data = good()
    data.scenarios[2] = scenario(EARLY, "sigkill-worker", "VIOLATED", reason="x")
    data.scenarios.append(scenario("acks-late-prefetch-4", "sigkill-worker", valid=False))
    assert gate(data, [LATE]) == (True, [])
    assert gate(data, None, ["none"]) == (True, [])
    assert not gate(data)[0]
    assert not gate(data, [EARLY])[0]


# -- what was chosen must have run ----------------------------------------------------------------


def test_a_chosen_configuration_that_never_ran_fails() -> None:
    passes, reasons = gate(good(), [LATE, "arq-max-tries-5", "arq-max-tries-5"])
    assert not passes
    assert reasons == ["configuration arq-max-tries-5: configuration arq-max-tries-5 is not in the "
                       "report: it never ran (a shard that died, or a run of other "
                       "configurations or faults)"]


def test_a_chosen_fault_that_never_ran_fails() -> None:
    passes, reasons = gate(good(), None, ["sigkill-worker", "broker-sigkill"])
    assert not passes
    assert [r.split(":")[0] for r in reasons] == ["fault broker-sigkill"]


def test_with_configurations_and_faults_every_named_pair_must_have_run() -> None:
    passes, reasons = gate(good(), [EARLY, LATE], ["sigkill-worker", "cut-worker-broker"])
    assert not passes
    assert [r.split(":")[0] for r in reasons] == [
        f"celery-redis.{EARLY}.cut-worker-broker", f"celery-redis.{LATE}.cut-worker-broker"]
    assert gate(good(), [EARLY, LATE], ["sigkill-worker", "none"]) == (True, [])


def test_a_report_without_scenarios_fails() -> None:
    assert gate(report()) == (False, [
        "scenarios: the report has no scenarios: nothing was measured"])


# -- names ----------------------------------------------------------------------------------------


def test_a_misspelt_configuration_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(GateInputError) as error:
        check_names(good(), ["acks-late-prefech-1"], None)
    assert str(error.value) == (
        "unknown configuration 'acks-late-prefech-1' (did you mean 'acks-late-prefetch-1'?); "
        f"the report's configurations: {EARLY}, {LATE}")


def test_a_misspelt_fault_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(GateInputError) as error:
        check_names(good(), None, ["sigkil-worker", "zzz"])
    assert str(error.value) == (
        "unknown faults 'sigkil-worker' (did you mean 'sigkill-worker'?), 'zzz'; the report's "
        "faults: none, sigkill-worker")


def test_built_in_names_and_names_in_the_report_are_known() -> None:
    team = report(scenario("shop", "none"))  # a team's target: in the report, not built in
    check_names(team, ["shop", LATE], ["none", "broker-sigkill"])


# -- trials ---------------------------------------------------------------------------------------


def trials(*verdicts: str, valid: bool = True) -> RunReport:
    """``good()`` run once per verdict, the late kill's trial k ending in ``verdicts[k - 1]``."""
    data = report(*(replace(s, trial=k, seed=k) for k, verdict in enumerate(verdicts, 1)
                    for s in with_late_kill(verdict, f"reason {k}", valid=valid).scenarios))
    return data


def test_a_cell_of_trials_fails_when_any_trial_fails_naming_which() -> None:
    data = trials("holds", "VIOLATED", "VIOLATED")
    assert gate(data, [LATE]) == (False, [
        f"celery-redis.{LATE}.sigkill-worker: VIOLATED in trials 2, 3 of 3: reason 2"])
    assert gate(trials("holds", "holds", "holds"), [LATE]) == (True, [])


def test_the_worst_trial_decides_a_cell() -> None:
    assert gate(trials("inconclusive", "holds"), [LATE], allow=["inconclusive"]) == (True, [])
    assert gate(trials("inconclusive", "VIOLATED"), [LATE], allow=["inconclusive"]) == (False, [
        f"celery-redis.{LATE}.sigkill-worker: VIOLATED in trial 2 of 2: reason 2"])
    data = trials("VIOLATED", "holds")
    data.scenarios[-1] = replace(data.scenarios[-1], valid=False, validity="fired on nothing")
    assert gate(data, [LATE]) == (False, [
        f"celery-redis.{LATE}.sigkill-worker: invalid in trial 2 of 2 (fired on nothing)"])


def test_junit_has_one_testcase_per_cell_not_per_trial(tmp_path: Path) -> None:
    data = trials("holds", "inconclusive", "holds")
    data.scenarios = [replace(s, phase_s={"drain": 10.0}) for s in data.scenarios]
    suite = parsed(tmp_path, data, [LATE])[0]
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("queue-chaos", "self-proof"), (f"celery-redis.{LATE}", "none"),
        (f"celery-redis.{LATE}", "sigkill-worker")]
    assert cases[2].get("time") == "30.000"  # every trial's time
    [failure] = cases[2]
    assert failure.get("message") == (
        "inconclusive in trial 2 of 3: reason 2 (accept with --allow inconclusive)")
    text = failure.text or ""
    assert "trial 1 (seed 1): clean" in text and "trial 2 (seed 2): inconclusive" in text
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["trials"] == "3"
    assert "trials" not in {p.get("name") for p in parsed(tmp_path, good())[0].iter("property")}


# -- JUnit XML ------------------------------------------------------------------------------------


def parsed(tmp_path: Path, data: RunReport, configs: list[str] | None = None,
           allow: tuple[str, ...] = ()) -> ElementTree.Element:
    """Gate ``data`` as the command does, and read back the JUnit XML it wrote."""
    path = tmp_path / "out" / "gate.xml"
    gate_file(saved(tmp_path, data), configs, None, allow, junit_path=path)
    return ElementTree.parse(path).getroot()


def test_junit_has_one_testcase_per_chosen_scenario_and_the_standard_layout(
    tmp_path: Path,
) -> None:
    data = with_late_kill("VIOLATED", "at-least-once claimed, 2 lost")
    data.scenarios.append(scenario("acks-late-vt-120", "sigkill-worker", "inconclusive",
                                   reason="2 stuck", phase_s={"drain": 60.0, "check": 0.5}))
    data.scenarios.append(scenario("acks-late-solo", "none", "INVALID", reason="corrupt"))
    root = parsed(tmp_path, data, [LATE, "acks-late-vt-120", "acks-late-solo"])
    assert root.tag == "testsuites"
    [suite] = root
    assert suite.tag == "testsuite"
    totals = {"name": "queue-chaos gate", "tests": "5", "failures": "2", "errors": "1",
              "skipped": "0", "time": "60.500"}
    assert {k: root.get(k) for k in totals} == totals == {k: suite.get(k) for k in totals}
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("queue-chaos", "self-proof"), (f"celery-redis.{LATE}", "none"),
        (f"celery-redis.{LATE}", "sigkill-worker"),
        ("celery-redis.acks-late-vt-120", "sigkill-worker"),
        ("celery-redis.acks-late-solo", "none")]
    self_proof, late_none, violated, stuck, invalid = cases
    assert list(self_proof) == [] and list(late_none) == []  # passing testcases are empty
    failure = violated.find("failure")
    assert failure is not None and failure.get("type") == "VIOLATED"
    assert failure.get("message") == "VIOLATED: at-least-once claimed, 2 lost"
    assert "replay: make durability CONFIGS=acks-late-prefetch-1" in (failure.text or "")
    assert stuck.get("time") == "60.500"
    assert [(e.tag, e.get("type")) for e in stuck] == [("failure", "inconclusive")]
    assert [(e.tag, e.get("type")) for e in invalid] == [("error", "INVALID")]


def test_junit_counts_an_allowed_inconclusive_as_skipped(tmp_path: Path) -> None:
    data = with_late_kill("inconclusive", "2 stuck")
    root = parsed(tmp_path, data, [LATE], ("inconclusive",))
    suite = root[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "0", "1")
    [skipped] = suite.iter("skipped")
    assert skipped.get("message") == "inconclusive, allowed by --allow inconclusive: 2 stuck"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["allow"] == "inconclusive" and props["configs"] == LATE


def test_junit_shows_an_invalid_self_proof_and_a_configuration_never_run_at_suite_level(
    tmp_path: Path,
) -> None:
    data = good()
    data.measurement_valid = False
    data.self_proof = ["control x: 0 lost — as required", "known to lose: NO LOSS SEEN"]
    root = parsed(tmp_path, data, [LATE, "arq-max-tries-5"])
    suite = root[0]
    assert (suite.get("errors"), suite.get("failures")) == ("1", "1")
    run = {c.get("name"): c for c in suite.iter("testcase") if c.get("classname") == "queue-chaos"}
    proof = run["self-proof"].find("error")
    assert proof is not None and proof.text == "known to lose: NO LOSS SEEN"
    never = run["configuration arq-max-tries-5"].find("failure")
    assert never is not None and never.get("type") == "never ran"


def test_junit_is_deterministic() -> None:
    data = with_late_kill("VIOLATED")
    first = ElementTree.tostring(junit(checks(data), {"report": "r"}))
    assert first == ElementTree.tostring(junit(checks(data), {"report": "r"}))


# -- the command: output and exit codes -----------------------------------------------------------


def test_gate_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate_file(tmp_path / "missing.json", None, None) == EXIT_BAD_INPUT
    assert "does not exist" in capsys.readouterr().out
    path = saved(tmp_path, good())
    assert gate_file(path, [LATE], None) == EXIT_PASS
    assert capsys.readouterr().out == "gate: pass\n"
    path = saved(tmp_path, with_late_kill("VIOLATED", "2 lost"))
    assert gate_file(path, [LATE], None) == EXIT_FAIL
    assert capsys.readouterr().out == (f"FAIL celery-redis.{LATE}.sigkill-worker: VIOLATED: "
                                       "2 lost\ngate: fail (1 reasons)\n")


def test_exit_codes_through_the_command(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    def main(data: RunReport, *args: str) -> int:
        return cli.main(["gate", "--report", str(saved(tmp_path, data)), *args])

    assert main(good(), "--configs", LATE) == 0
    assert main(with_late_kill("VIOLATED"), "--configs", LATE) == 1
    assert main(with_late_kill("INVALID")) == 1
    assert main(with_late_kill("holds", valid=False)) == 1
    assert main(with_late_kill("inconclusive"), "--configs", LATE) == 1
    assert main(with_late_kill("inconclusive"), "--configs", LATE, "--allow", "inconclusive") == 0
    invalid_run = good()
    invalid_run.measurement_valid = False
    assert main(invalid_run) == 1
    assert main(good(), "--configs", "arq-max-tries-5") == 1  # built in, never ran
    capsys.readouterr()
    assert main(good(), "--configs", f"{LATE},acks-late-prefech-1") == 2
    assert capsys.readouterr().out == (
        "error: unknown configuration 'acks-late-prefech-1' (did you mean "
        f"'acks-late-prefetch-1'?); the report's configurations: {EARLY}, {LATE}\n")
    assert main(good(), "--faults", "sigkil-worker") == 2
    assert cli.main(["gate", "--report", str(tmp_path / "none.json")]) == 2
    (tmp_path / "junk.json").write_text("[1, 2]")
    assert cli.main(["gate", "--report", str(tmp_path / "junk.json")]) == 2
    assert "not a durability report" in capsys.readouterr().out


def test_only_inconclusive_can_be_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["gate", "--allow", "VIOLATED"])
    assert exit_.value.code == 2
    assert "invalid choice: 'VIOLATED' (choose from 'inconclusive')" in capsys.readouterr().err


def test_no_junit_is_written_for_bad_input_and_an_unwritable_path_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    xml = tmp_path / "gate.xml"
    path = saved(tmp_path, good())
    assert cli.main(["gate", "--report", str(path), "--configs", "nope", "--junit",
                     str(xml)]) == 2
    assert not xml.exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["gate", "--report", str(path), "--junit", str(blocker / "gate.xml")]) == 2
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        f"error: cannot write JUnit XML to {blocker / 'gate.xml'}")


def test_exit_codes_are_documented_in_the_docstring_and_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert gate_module.__doc__ is not None and EXIT_CODES in gate_module.__doc__
    with pytest.raises(SystemExit):
        cli.main(["gate", "--help"])
    assert EXIT_CODES.strip() in capsys.readouterr().out


# -- the committed report -------------------------------------------------------------------------


def docstring_examples() -> list[tuple[list[str], int]]:
    """The docstring's command lines and the exit each promises (``# exit N``, else 0)."""
    assert gate_module.__doc__ is not None
    examples = []
    for line in gate_module.__doc__.splitlines():
        command, _, comment = line.strip().partition("#")
        if command.startswith("python -m harness gate"):
            code = int(comment.split(":")[0].split()[-1]) if comment else 0
            examples.append((shlex.split(command)[3:], code))
    return examples


def test_the_docstring_examples_work_as_written_on_the_committed_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    examples = docstring_examples()
    assert [code for _, code in examples] == [0, 1, 1, 0, 0]
    monkeypatch.chdir(ROOT)  # the examples' paths are relative to the checkout
    for argv, code in examples:
        argv = [str(tmp_path / "gate.xml") if a == "reports/gate.xml" else a for a in argv]
        assert cli.main(argv) == code, (argv, capsys.readouterr().out)
    assert ElementTree.parse(tmp_path / "gate.xml").getroot()[0].get("failures") == "0"
    data = RunReport.load(COMMITTED)
    assert gate(data, ["rabbit-acks-late-quorum"]) == (True, [])
    assert not gate(data, ["acks-late-vt-120"])[0]
    assert gate(data, ["acks-late-vt-120"], allow=["inconclusive"]) == (True, [])


def test_gate_reads_what_the_report_writes(tmp_path: Path) -> None:
    def result(config: str, fault: str, verdict: str, **counts: int) -> ScenarioResult:
        conf = configuration(config)
        return ScenarioResult(
            scenario=f"{conf.backend}.{config}.{fault}", backend=conf.backend,
            configuration=config, configuration_summary=conf.summary,
            guarantee=conf.guarantee.value, fault=fault, fault_description="d", seed=1,
            valid=True, validity="ok", verdict=verdict, reason="r",
            counts=Counts(submitted=40, acknowledged=40, **counts).as_dict(), recovery_s=None,
            stuck_locations={}, settings=asdict(Settings()),
            must_lose=must_lose(config, fault))

    results = [result(EARLY, "none", "holds", completed=40),
               result(LATE, "none", "holds", completed=40),
               result(EARLY, "sigkill-worker", "holds", completed=38, lost=2),
               result(LATE, "sigkill-worker", "VIOLATED", completed=39, lost=1)]
    write(results, tmp_path, run_id="r", date="d", seed=1, replay="x")
    data = RunReport.load(tmp_path / "durability.json")
    assert data.measurement_valid is True
    assert gate(data, [EARLY]) == (True, [])
    assert gate(data, [LATE]) == (False, [f"celery-redis.{LATE}.sigkill-worker: VIOLATED: r"])
