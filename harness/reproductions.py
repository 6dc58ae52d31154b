"""Upstream bugs, reproduced (issue 14): each upstream report a named reproduction.

A reproduction names the thread, what it reports (one sentence), the harness's configuration
and fault that recreate its setup, and a judge: a pure function of the scenario's result that
says whether the run showed what the thread reports ("reproduces"), showed the opposite ("does
not reproduce"), or could not show either ("cannot tell"), always with the numbers it read.
Pure: no Docker, no clock; ``queue-chaos reproduce`` runs the cases and calls these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.result import ScenarioResult

REPRODUCES = "reproduces"
DOES_NOT = "does not reproduce"
CANNOT_TELL = "cannot tell"
VERDICTS = (REPRODUCES, DOES_NOT, CANNOT_TELL)

Judgement = tuple[str, str]
Judge = Callable[[ScenarioResult], Judgement]


@dataclass(frozen=True)
class Reproduction:
    """One upstream report as a harness case. ``overrides`` are scenario settings its run gets
    (``--set``): a reproduction with settings of its own runs in a run of its own, so no other
    case's settings change (celery#5935's short visibility timeout is acks-late-prefetch-1's
    no-fault control in a run of its own, rather than a configuration the default matrix
    would then also hold)."""

    name: str
    thread: str
    url: str
    claim: str
    configuration: str
    fault: str
    judge: Judge
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def case(self) -> tuple[str, str]:
        return (self.configuration, self.fault)


def _n(r: ScenarioResult, name: str) -> int:
    return int(r.counts.get(name, 0))


def _numbers(r: ScenarioResult, *names: str) -> str:
    return ", ".join(f"{name} {_n(r, name)}" for name in names)


def _unusable(r: ScenarioResult) -> Judgement | None:
    """A result that measured nothing cannot show a bug either way: say so rather than judge."""
    if not r.valid:
        return CANNOT_TELL, f"the scenario was not a valid measurement: {r.validity or r.reason}"
    if _n(r, "submitted") == 0:
        return CANNOT_TELL, "no task was submitted"
    return None


def judge_3541(r: ScenarioResult) -> Judgement:
    """celery#3541 (and #7924, a kill -9 of every process of a worker holding prefetched tasks):
    acks late, a kill -9 of the worker's main process, tasks lost. Loss (or tasks left stuck)
    reproduces it; every task completing does not."""
    if (bad := _unusable(r)) is not None:
        return bad
    lost, stuck = _n(r, "lost"), _n(r, "stuck")
    numbers = _numbers(r, "submitted", "completed", "lost", "stuck", "redelivered")
    if lost or stuck:
        return REPRODUCES, f"the kill lost or stranded tasks: {numbers}"
    if not r.drained:
        return CANNOT_TELL, f"the drain hit its deadline with tasks unaccounted: {numbers}"
    return DOES_NOT, (f"every task completed after the kill (redelivered): {numbers}; they "
                      f"came back through the visibility timeout "
                      f"({r.settings.get('visibility_timeout_s')}s here, kombu's default 3600s "
                      "in the thread, where they would look lost for an hour: see celery-4984)")


def judge_4984(r: ScenarioResult) -> Judgement:
    """celery#4984: unacked residue after a kill comes back only after the visibility timeout.
    ``recovery_s`` runs from the heal (the fault's window and the worker's revival later) to the
    last redelivered task completing, so the fault-to-recovery time is the window plus it.
    Reproduces when that reached the visibility timeout (less one restore sweep of slack); does
    not when the residue came back well before it (requeued on worker loss instead)."""
    if (bad := _unusable(r)) is not None:
        return bad
    vt = r.settings.get("visibility_timeout_s")
    sweep = float(r.settings.get("restore_interval_s", 0) or 0)
    window = (r.healed_at_s - r.fault_at_s
              if r.healed_at_s is not None and r.fault_at_s is not None else 0.0)
    since_fault = None if r.recovery_s is None else round(window + r.recovery_s, 2)
    numbers = (f"fault to last redelivered completion {since_fault}s (fault to heal "
               f"{window:.2f}s + recovery {r.recovery_s}s), visibility timeout {vt}s, restore "
               f"sweep {sweep:g}s, " + _numbers(r, "redelivered", "lost"))
    if vt is None:
        return CANNOT_TELL, f"the result names no visibility timeout: {numbers}"
    if since_fault is None or _n(r, "redelivered") == 0:
        if _n(r, "lost") or _n(r, "stuck"):
            return REPRODUCES, f"the residue never came back before the deadline: {numbers}"
        return CANNOT_TELL, f"the kill left nothing to redeliver: {numbers}"
    if since_fault >= float(vt) - sweep:
        return REPRODUCES, f"the redelivery waited for the visibility timeout: {numbers}"
    return DOES_NOT, f"the redelivery came well before the visibility timeout: {numbers}"


def judge_3802(r: ScenarioResult) -> Judgement:
    """celery#3802: acks late tasks not acknowledged on warm shutdown run again. A completed
    task run again (duplicated) reproduces it; a re-execution of an unfinished task is acks
    late working as documented, not the bug."""
    if (bad := _unusable(r)) is not None:
        return bad
    numbers = _numbers(r, "completed", "duplicated", "re_executed", "redelivered", "lost")
    if _n(r, "duplicated"):
        return REPRODUCES, f"tasks completed before the shutdown ran again: {numbers}"
    if _n(r, "lost") or not r.drained:
        return CANNOT_TELL, f"the shutdown lost work, which is not what the thread reports: " \
                            f"{numbers}"
    return DOES_NOT, f"no completed task ran again after the warm shutdown: {numbers}"


def judge_5935(r: ScenarioResult) -> Judgement:
    """celery#5935: a task longer than the visibility timeout runs again, with no fault at all.
    Any task completed more than once (or run again) reproduces it, given that its tasks did
    last longer than the visibility timeout (otherwise the case does not test the claim)."""
    if (bad := _unusable(r)) is not None:
        return bad
    vt = r.settings.get("visibility_timeout_s")
    shortest = r.settings.get("task_min_s")
    numbers = (f"task_min {shortest}s > visibility timeout {vt}s; "
               + _numbers(r, "submitted", "completed", "duplicated", "re_executed",
                          "redelivered", "extra_executions"))
    if vt is None or shortest is None or float(shortest) <= float(vt):
        return CANNOT_TELL, f"its tasks do not outlast the visibility timeout: {numbers}"
    if _n(r, "duplicated") or _n(r, "re_executed"):
        return REPRODUCES, f"tasks ran again with no fault: {numbers}"
    return DOES_NOT, f"every task ran once: {numbers}"


def judge_arq_reconnect(r: ScenarioResult) -> Judgement:
    """arq#435/#498: the worker stops when its Redis connection drops or Redis restarts. The
    harness revives (starts again) any worker found dead at the heal, and lists it in
    ``revived``: a worker dead after a link or broker fault, which kills no worker, is the
    worker that stopped. Tasks left stuck in Redis with every worker alive are the other form
    (alive but no longer consuming). Loss with no dead worker is Redis losing its data on a
    restart without persistence: a different thing, not this report."""
    if (bad := _unusable(r)) is not None:
        return bad
    numbers = (f"workers dead at the heal {len(r.revived)} ({', '.join(r.revived) or '-'}), "
               + _numbers(r, "completed", "stuck", "lost", "lost_unstarted", "late"))
    if r.revived:
        return REPRODUCES, f"a worker exited on the {r.fault} and had to be started again: " \
                           f"{numbers}"
    if _n(r, "stuck"):
        return REPRODUCES, f"workers alive but tasks left in Redis unconsumed: {numbers}"
    if _n(r, "late") or _n(r, "completed") == _n(r, "submitted"):
        lost = _n(r, "lost")
        tail = (" (the loss is Redis's own data on a restart without persistence, not a "
                "stopped worker)" if lost else "")
        return DOES_NOT, f"every worker survived and kept consuming after the heal{tail}: " \
                         f"{numbers}"
    return CANNOT_TELL, f"no task was left to consume after the heal: {numbers}"


def judge_1836(r: ScenarioResult) -> Judgement:
    """kombu#1836: with acks late on Redis, SIGTERM reaching the pool children together with the
    main process (a container or pod stopped without an init) kills the running tasks
    (WorkerLostError, signal 15) and their unacknowledged messages are lost. Loss (or tasks left
    stuck) reproduces it; every task the signal cut coming back and completing does not. A
    run without acks late cannot test it: acks early loses such tasks by design. Without
    ``task_reject_on_worker_lost`` the loss is Celery's documented default, and the verdict
    says so (measured: acks-late-no-reject loses the cut tasks, acks-late-prefetch-1 does not)."""
    if (bad := _unusable(r)) is not None:
        return bad
    cut = len(r.in_flight_at_fault)
    numbers = (f"tasks cut by the group SIGTERM {cut}, "
               + _numbers(r, "submitted", "completed", "lost", "stuck", "redelivered",
                          "re_executed"))
    if r.knobs.get("acks_late") is False:
        return CANNOT_TELL, f"the workers ran acks early, not the thread's acks late: {numbers}"
    if _n(r, "lost") or _n(r, "stuck"):
        why = ("; without task_reject_on_worker_lost Celery acknowledges a task whose pool child "
               "died (WorkerLostError), as documented, so this loss is the default's, not a "
               "bug of kombu's" if r.knobs.get("reject_on_worker_lost") is False else "")
        return REPRODUCES, (f"the SIGTERM to the whole worker lost or stranded tasks: "
                            f"{numbers}{why}")
    if not r.drained:
        return CANNOT_TELL, f"the drain hit its deadline with tasks unaccounted: {numbers}"
    return DOES_NOT, f"every task the SIGTERM cut came back and completed: {numbers}"


def judge_brpop_window(r: ScenarioResult) -> Judgement:
    """kombu's BRPOP window (docs/kombu-brpop-window.md, found by this harness): the fault froze
    the worker once Redis showed a message popped and recorded nowhere, and killed it while the
    message stayed there (a scenario that never caught the window is invalid, so cannot tell).
    The caught task lost without ever starting, with acks late, reproduces it; every task
    coming back does not."""
    if (bad := _unusable(r)) is not None:
        return bad
    lost, caught = set(r.anomalies.get("lost", [])), set(r.in_flight_at_fault)
    numbers = _numbers(r, "submitted", "completed", "lost", "lost_unstarted", "redelivered")
    if lost and lost <= caught and _n(r, "lost_unstarted") == len(lost):
        return REPRODUCES, (f"the task caught popped and recorded nowhere was lost before it "
                            f"ever started ({', '.join(sorted(lost))}): {numbers}")
    if not lost:
        return DOES_NOT, f"the task caught in the window came back and completed: {numbers}"
    return CANNOT_TELL, (f"tasks were lost, but not only the one caught in the window (lost "
                         f"{', '.join(sorted(lost))}; caught {', '.join(sorted(caught))}): "
                         f"{numbers}")


def judge_shutdown_fetch(r: ScenarioResult) -> Judgement:
    """celery#4354 and #7950: a worker shutting down warm (restarted, again and again, while
    tasks keep arriving) takes a message off the Redis queue with its pending fetch and never
    runs it nor gives it back. A task lost before any start of it reproduces it; a task lost
    after it started is some other loss (a warm shutdown lets running tasks finish), so it
    cannot tell; every task completing does not."""
    if (bad := _unusable(r)) is not None:
        return bad
    numbers = (f"tasks in flight at the restarts {len(r.in_flight_at_fault)}, "
               + _numbers(r, "submitted", "completed", "lost", "lost_unstarted", "stuck",
                          "redelivered", "duplicated"))
    if _n(r, "lost_unstarted"):
        return REPRODUCES, f"tasks left the queue and never ran across the restarts: {numbers}"
    if _n(r, "lost"):
        return CANNOT_TELL, (f"tasks were lost after they had started, which is not the "
                             f"fetch the threads report: {numbers}")
    if _n(r, "stuck") or not r.drained:
        return CANNOT_TELL, f"the drain hit its deadline with tasks unaccounted: {numbers}"
    return DOES_NOT, f"every task submitted across the restarts completed: {numbers}"


def _arq(name: str, thread: str, number: int, fault: str, claim: str) -> Reproduction:
    return Reproduction(name, thread, f"https://github.com/python-arq/arq/issues/{number}", claim,
                        "arq-max-tries-5", fault, judge_arq_reconnect)


def _celery(name: str, number: int, claim: str, configuration: str, fault: str, judge: Judge,
            overrides: tuple[tuple[str, str], ...] = ()) -> Reproduction:
    return Reproduction(name, f"celery/celery#{number}",
                        f"https://github.com/celery/celery/issues/{number}", claim,
                        configuration, fault, judge, overrides)


REPRODUCTIONS: dict[str, Reproduction] = {r.name: r for r in (
    _celery("celery-3541", 3541,
            "With acks_late and task_reject_on_worker_lost on Redis, a kill -9 of the worker's "
            "main process loses its tasks instead of redelivering them.",
            "acks-late-prefetch-1", "sigkill-worker", judge_3541),
    _celery("celery-4984", 4984,
            "After a worker is killed its unacked messages stay in Redis and come back only "
            "once the visibility timeout has passed.",
            "acks-late-prefetch-1", "sigkill-worker", judge_4984),
    _celery("celery-7924", 7924,
            "With acks_late, prefetch and concurrency 2, a kill -9 of every worker process "
            "loses both the executing and the reserved (prefetched) tasks.",
            "acks-late-prefetch-4", "sigkill-worker", judge_3541),
    _celery("celery-3802", 3802,
            "On a warm shutdown acks_late tasks that already ran are not acknowledged, so they "
            "run again.",
            "acks-late-prefetch-1", "sigterm-worker", judge_3802),
    _celery("celery-5935", 5935,
            "A task that runs longer than the Redis visibility timeout is delivered again and "
            "runs twice, with no fault at all.",
            "acks-late-prefetch-1", "none", judge_5935,
            (("visibility_timeout_s", "3"), ("restore_interval_s", "1"), ("task_min_s", "5"),
             ("task_max_s", "6"), ("tasks", "6"), ("fault_after_started", "1"),
             ("cost_tasks", "0"), ("cost_latency_tasks", "0"))),
    _arq("arq-435", "python-arq/arq#435", 435, "cut-worker-broker",
         "When the worker's Redis connection is interrupted the worker's main task ends on a "
         "ConnectionError, and after Redis comes back it no longer runs jobs."),
    _arq("arq-498", "python-arq/arq#498", 498, "broker-restart",
         "After Redis restarts the arq worker crashes at once, even with redis-py retry "
         "settings (Retry with backoff, retry_on_error, retry_on_timeout)."),
    # The thread shows Redis, the prefork pool and messages left unacknowledged (acks late);
    # acks-late-prefetch-1 also requeues on worker loss, so a loss there is not by design.
    Reproduction("kombu-brpop-window", "kombu's BRPOP window (found by this harness)",
                 "../docs/kombu-brpop-window.md",
                 "kombu's Redis transport pops a message with BRPOP on one connection and only "
                 "afterwards records it as unacknowledged on another, so a worker killed in "
                 "between loses it, acks late or not.",
                 "acks-late-prefetch-1", "brpop-window-kill", judge_brpop_window),
    Reproduction("kombu-1836", "celery/kombu#1836",
                 "https://github.com/celery/kombu/issues/1836",
                 "With acks late on Redis, a SIGTERM that reaches the prefork pool children "
                 "together with the main process (a container or pod stopped without an init) "
                 "kills the running tasks with WorkerLostError (signal 15), and their "
                 "unacknowledged messages are lost.",
                 "acks-late-prefetch-1", "sigterm-worker-group", judge_1836),
    # Celery's defaults on Redis (acks early, prefetch 4, prefork): the thread's reporter and
    # a later commenter both ran without acks late. Its task enqueues the next one while it
    # runs, and the worker is restarted mid-task: steady submissions across the restarts.
    _celery("celery-4354", 4354,
            "Restarting a worker with a warm shutdown while tasks run and keep enqueuing new "
            "ones loses tasks now and then (about one restart in two, up to 20 to see it): "
            "Redis answers the stopping worker's last BRPOP, and kombu never processes or "
            "restores that message.",
            "acks-early-prefetch-4", "warm-restarts", judge_shutdown_fetch,
            (("tasks", "440"), ("submit_rate", "4"), ("fault_after_started", "4"),
             ("cost_tasks", "0"), ("cost_latency_tasks", "0"))),
    # The thread shows Redis (RPOP, then the unacked hash) with Celery's defaults otherwise:
    # the worker is fetching (idle, its BRPOP pending) when the shutdown comes, so short tasks
    # arriving slowly keep the workers mostly waiting on the queue.
    _celery("celery-7950", 7950,
            "A worker shut down while it is fetching takes the next task off the Redis queue "
            "without recording it as unacknowledged, so the task is deleted and never runs.",
            "acks-early-prefetch-4", "warm-restarts", judge_shutdown_fetch,
            (("tasks", "220"), ("submit_rate", "2"), ("task_min_s", "0.1"),
             ("task_max_s", "0.4"), ("fault_after_started", "3"), ("cost_tasks", "0"),
             ("cost_latency_tasks", "0"))),
)}


def choose(names: str) -> list[Reproduction]:
    """The named reproductions (comma- or space-separated; none named: all). An unknown name is
    a ValueError naming every valid one."""
    chosen = [n for n in names.replace(",", " ").split() if n]
    unknown = [n for n in chosen if n not in REPRODUCTIONS]
    if unknown:
        raise ValueError(f"unknown reproduction {', '.join(unknown)}; valid: "
                         f"{', '.join(REPRODUCTIONS)}")
    return [REPRODUCTIONS[n] for n in chosen] if chosen else list(REPRODUCTIONS.values())


Group = tuple[str, tuple[tuple[str, str], ...]]  # (configuration, settings)


def groups(chosen: Iterable[Reproduction]) -> dict[Group, list[Reproduction]]:
    """The runs the chosen reproductions need: one per configuration and settings, each with
    only its reproductions' faults (``--configs`` x ``--faults`` would cross every pair)."""
    out: dict[Group, list[Reproduction]] = {}
    for r in chosen:
        out.setdefault((r.configuration, r.overrides), []).append(r)
    return out


def faults_of(members: Iterable[Reproduction]) -> list[str]:
    """A run's faults, each once, in the order first named."""
    return list(dict.fromkeys(r.fault for r in members))


def settings_text(overrides: tuple[tuple[str, str], ...]) -> str:
    """``--set``'s form: name=value,name=value."""
    return ",".join(f"{k}={v}" for k, v in overrides)


@dataclass
class Outcome:
    """A reproduction's judged result; ``result`` None when its case did not run."""

    reproduction: Reproduction
    verdict: str
    why: str
    result: ScenarioResult | None = None
    run: str = ""  # the run directory the result came from
    run_valid: bool | None = None
    self_proof: tuple[str, ...] = ()
    release: str = ""  # the pass of broker releases it ran on (harness/brokerversions.py)


def judge(r: Reproduction, result: ScenarioResult | None, *, run: str = "",
          run_valid: bool | None = None, self_proof: Iterable[str] = (),
          release: str = "") -> Outcome:
    """The reproduction's verdict on its case's result. A run whose self-proof failed cannot
    vouch for what it measured, except the fault-less reproduction whose control is the bug
    itself (its own duplicates fail the self-proof by design)."""
    proof = tuple(self_proof)
    if result is None:
        return Outcome(r, CANNOT_TELL, f"its case {r.configuration} x {r.fault} did not run or "
                                       "left no result", None, run, run_valid, proof, release)
    verdict, why = r.judge(result)
    if run_valid is False and r.fault != "none" and verdict != CANNOT_TELL:
        why = (f"the run's self-proof failed, so its measurement cannot vouch for this; the "
               f"case alone said {verdict}: {why}")
        verdict = CANNOT_TELL
    return Outcome(r, verdict, why, result, run, run_valid, proof, release)


def _versions(result: ScenarioResult | None) -> str:
    if result is None:
        return "-"
    parts = {**result.versions, **result.servers}
    return ", ".join(f"{k} {v}" for k, v in parts.items()) or "not reported"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# The servers a pass's column names: the brokers whose release it chose.
SERVER_NAMES = ("redis-server", "valkey-server", "rabbitmq-server")


def replay_command(names: Iterable[str], passes: Iterable[str] = ()) -> str:
    chosen = ",".join(passes)
    return ("queue-chaos reproduce " + " ".join(names)
            + (f" --passes {chosen}" if chosen else ""))


def releases(outcomes: Iterable[Outcome]) -> list[str]:
    """The passes of broker releases the outcomes ran on, in the order first seen ("" alone:
    each broker's default, the run had no passes)."""
    return list(dict.fromkeys(o.release for o in outcomes))


def render(outcomes: list[Outcome], *, date: str = "") -> str:
    """reports/reproductions.md: the verdicts (one column per pass of broker releases when
    there were several), a table per reproduction, and the command that replays them."""
    passes = releases(outcomes)
    by_name: dict[str, dict[str, Outcome]] = {}
    for o in outcomes:
        by_name.setdefault(o.reproduction.name, {})[o.release] = o
    lines = ["# Upstream bugs, reproduced", ""]
    if date:
        lines += [f"Measured {date}.", ""]
    lines += ["Each upstream report recreated with the harness's own configurations and faults, "
              "and judged from the scenario's counts: reproduces, does not reproduce, or cannot "
              "tell (and why). Each is one run of one scenario; a verdict is a measurement, not "
              "a proof (`--trials` repeats it)."
              + (" Each pass runs every case on one set of broker releases "
                 "(`harness/brokerversions.py`): a verdict per version." if passes != [""]
                 else ""), ""]
    lines += verdict_table(as_json(outcomes))
    for found in by_name.values():
        r = next(iter(found.values())).reproduction
        settings = ", ".join(f"{k}={v}" for k, v in r.overrides)
        rows: list[tuple[str, str]] = [
            ("thread", f"[{r.thread}]({r.url})"),
            ("what it reports", r.claim),
            ("configuration x fault", f"`{r.configuration}` x `{r.fault}`"
             + (f" (settings: {settings})" if settings else "")),
        ]
        for release, o in found.items():
            on = f" ({release})" if release else ""
            res = o.result
            proof = ("valid" if o.run_valid else "not valid" if o.run_valid is False else "-")
            if o.run_valid is False and r.fault == "none":
                proof += (" (expected: this case is a no-fault control whose duplicates are "
                          "the bug; the self-proof's known loss case still has to lose work)")
            rows += [
                (f"verdict{on}", f"**{o.verdict}**"),
                (f"numbers{on}", o.why),
                (f"scenario{on}", res.scenario + f" (seed {res.seed})" if res else "-"),
                (f"run{on}", f"{o.run or '-'}; self-proof {proof}"),
                (f"versions measured{on}", _versions(res)),
            ]
        lines += ["", f"## {r.name}", "", "| | |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in rows]
    lines += ["", "Replay:", "", "```",
              replay_command(by_name, [p for p in passes if p]), "```", ""]
    return "\n".join(lines)


def verdict_table(document: Mapping[str, Any]) -> list[str]:
    """The verdicts as a markdown table, from ``as_json``'s document: a row per reproduction,
    a column per pass of broker releases titled with the servers its cases ran on (one
    "verdict" column for a run without passes). reproductions.md and the durability report's
    section (which reads reproductions.json) show this one table."""
    found = [r for r in document.get("reproductions") or [] if isinstance(r, dict)]
    passes = list(dict.fromkeys(str(r.get("release", "")) for r in found))
    verdicts: dict[str, dict[str, str]] = {}
    threads: dict[str, str] = {}
    servers: dict[str, dict[str, str]] = {}
    for r in found:
        release, name = str(r.get("release", "")), str(r.get("name", "?"))
        verdicts.setdefault(name, {})[release] = str(r.get("verdict", "?"))
        threads[name] = str(r.get("thread", ""))
        servers.setdefault(release, {}).update(
            {k: str(v) for k, v in (r.get("versions") or {}).items() if k in SERVER_NAMES})
    titles = [release + (f" ({', '.join(f'{k} {v}' for k, v in servers[release].items())})"
                         if servers[release] else "") if release else "verdict"
              for release in passes]
    return (["| reproduction | " + " | ".join(titles) + " |", "|---|" + "---|" * len(titles)]
            + [f"| {name} ({threads[name]}) | "
               + " | ".join(by.get(release, "not run") for release in passes) + " |"
               for name, by in verdicts.items()])


def as_json(outcomes: list[Outcome], *, date: str = "") -> dict[str, object]:
    """reports/reproductions.json: the same as the table, for tools."""
    names = dict.fromkeys(o.reproduction.name for o in outcomes)
    return {"date": date,
            "replay": replay_command(names, [p for p in releases(outcomes) if p]),
            "reproductions": [
                {"name": o.reproduction.name, "thread": o.reproduction.thread,
                 "url": o.reproduction.url, "claim": o.reproduction.claim,
                 "configuration": o.reproduction.configuration, "fault": o.reproduction.fault,
                 "release": o.release,
                 "verdict": o.verdict, "why": o.why, "run": o.run, "run_valid": o.run_valid,
                 "scenario": o.result.scenario if o.result else None,
                 "counts": dict(o.result.counts) if o.result else {},
                 "recovery_s": o.result.recovery_s if o.result else None,
                 "revived": list(o.result.revived) if o.result else [],
                 "versions": {**o.result.versions, **o.result.servers} if o.result else {}}
                for o in outcomes]}


def find(results: Iterable[ScenarioResult], r: Reproduction) -> ScenarioResult | None:
    """The reproduction's case among a run's results (trial 1)."""
    for s in results:
        if s.configuration == r.configuration and s.fault == r.fault and s.trial <= 1:
            return s
    return None

