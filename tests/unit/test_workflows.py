"""The GitHub Actions workflows a team copies (examples/ci/*.yml, and .github/workflows/ if the
repository has one): actionlint finds nothing in them, and the commands they run exist.

actionlint is built by tools/host-setup (`make setup`) into build/actionlint/<version>/; without
it the test fails and says so, rather than passing over the workflows unchecked. actionlint runs
shellcheck on the `run:` scripts when shellcheck is on PATH, and leaves that out when it is not.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import __main__ as cli

ROOT = Path(__file__).resolve().parents[2]
HOST_SETUP = ROOT / "tools" / "host-setup"
WORKFLOWS = sorted(
    [*(ROOT / "examples" / "ci").glob("*.yml"),
     *(ROOT / ".github" / "workflows").glob("*.yml"),
     *(ROOT / ".github" / "workflows").glob("*.yaml")]
)
# Words a shell command can begin with before the program it runs.
SHELL_PREFIXES = {"if", "then", "else", "elif", "do", "while", "until", "!", "time", "exec"}


def actionlint_version() -> str:
    """The version host-setup pins (its `ACTIONLINT_VERSION=` line)."""
    found = re.search(r"^ACTIONLINT_VERSION=(v[0-9.]+)$", HOST_SETUP.read_text(), re.MULTILINE)
    assert found, f"{HOST_SETUP} pins no ACTIONLINT_VERSION"
    return found.group(1)


def actionlint() -> Path | None:
    """host-setup's build of the pinned version, else an actionlint on PATH."""
    pinned = ROOT / "build" / "actionlint" / actionlint_version() / "actionlint"
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return pinned
    on_path = shutil.which("actionlint")
    return Path(on_path) if on_path else None


def test_there_are_workflows_to_check() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"durability-shards.yml", "durability-gate.yml"} <= names


def test_actionlint_reports_nothing() -> None:
    binary = actionlint()
    if binary is None:
        pytest.fail(
            f"actionlint is not installed (neither build/actionlint/{actionlint_version()}/"
            "actionlint nor on PATH): run `make setup`, which builds it (tools/host-setup); "
            "`make test-unit` does not set up the host", pytrace=False)
    done = subprocess.run(
        [str(binary), "-no-color", *(str(path.relative_to(ROOT)) for path in WORKFLOWS)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0 and not done.stdout.strip(), (
        f"{binary} (exit {done.returncode}):\n{done.stdout}{done.stderr}")


def load(path: Path) -> dict[str, Any]:
    text = yaml.safe_load(path.read_text())
    assert isinstance(text, dict), f"{path.name}: not a mapping"
    return text


def run_scripts(workflow: dict[str, Any]) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job.get("steps", [])
            if "run" in step]


def commands(script: str) -> list[list[str]]:
    """Each simple command of a `run:` script as its words (line continuations joined,
    split on ; && || |, leading shell keywords and VAR=value assignments dropped)."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        for part in re.split(r";|&&|\|\||\|", line):
            words = shlex.split(part, comments=True)
            while words and (words[0] in SHELL_PREFIXES or re.match(r"^\w+=", words[0])):
                words.pop(0)
            if words:
                found.append(words)
    return found


def subcommands() -> set[str]:
    (action,) = [a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def make_targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", makefile, re.MULTILINE))


def test_the_commands_are_ones_the_harness_has() -> None:
    known, targets = subcommands(), make_targets()
    assert {"run", "merge", "gate"} <= known and {"setup", "test", "gate"} <= targets
    used = []
    for path in WORKFLOWS:
        workflow = load(path)
        assert workflow.get("jobs"), f"{path.name}: no jobs"
        for script in run_scripts(workflow):
            for words in commands(script):
                program, args = Path(words[0]).name, words[1:]
                if program == "queue-chaos":
                    sub = next((a for a in args if not a.startswith("-")), None)
                    assert sub in known, (
                        f"{path.name}: `{shlex.join(words)}`: queue-chaos has no subcommand "
                        f"{sub!r} (it has {sorted(known)})")
                    used.append(sub)
                elif program == "make":
                    for target in (a for a in args if not a.startswith("-") and "=" not in a):
                        assert target in targets, (
                            f"{path.name}: `{shlex.join(words)}`: the Makefile has no target "
                            f"{target!r}")
    assert {"run", "merge", "gate"} <= set(used)  # the parsing above did see the commands


def test_commands_are_found_in_scripts_as_a_shell_would_split_them() -> None:
    script = ('if [ -n "$T" ]; then\n  A=1 queue-chaos run --target "$T" \\\n    --seed 3\n'
              "fi\nmake -j2 SEED=1 test && .venv/bin/queue-chaos gate --configs x # note\n")
    assert commands(script) == [
        ["[", "-n", "$T", "]"], ["queue-chaos", "run", "--target", "$T", "--seed", "3"],
        ["fi"], ["make", "-j2", "SEED=1", "test"],
        [".venv/bin/queue-chaos", "gate", "--configs", "x"],
    ]
