"""queue_chaos_agent/ledger.py: the record format, one file per writer process, damage counted
not dropped, and survival of SIGKILL mid-write (real processes, real signals)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from queue_chaos_agent.ledger import (
    SUFFIX,
    LedgerContents,
    LedgerWriter,
    decode,
    encode,
    parse_file,
    read_ledger,
)


def ledger_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob(f"*{SUFFIX}"))


def wait_child(pid: int) -> int:
    """The exit status of a forked child (bounded: children here exit or are killed)."""
    _, status = os.waitpid(pid, 0)
    return status


def fork_child(body: Any) -> int:
    """Fork; the child runs ``body()`` and leaves with os._exit (0 on success, 1 on error)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            body()
            code = 0
        finally:
            os._exit(code)
    return pid


# -- format -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        {"kind": "started", "task": "s.00001", "t": 12.5, "pid": 7},
        {"kind": "x", "nested": {"a": [1, 2, {"b": None}]}, "flag": True},
        {"kind": "unicode", "text": "émoji ✓ 任务", "newline": "a\nb", "quote": '"'},
        {},
    ],
)
def test_encode_decode_round_trip(record: dict[str, Any]) -> None:
    line = encode(record)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1  # one record, one line, even with a newline in a value
    assert decode(line[:-1]) == record


def test_encode_format_is_crc_space_json() -> None:
    line = encode({"b": 1, "a": 2})
    crc, _, body = line[:-1].partition(b" ")
    assert body == b'{"a":2,"b":1}'  # compact and key-sorted
    assert crc == b"%08x" % zlib.crc32(body)


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"no-space-at-all",
        b"0000000 {}",  # 7 hex digits
        b"zzzzzzzz {}",  # not hex
        b"%08x {}" % (zlib.crc32(b"{}") ^ 1),  # wrong checksum
        b"%08x [1,2]" % zlib.crc32(b"[1,2]"),  # valid JSON, not an object
        b"%08x {not json" % zlib.crc32(b"{not json"),  # checksum fine, JSON broken
        b"%08x \xff\xfe" % zlib.crc32(b"\xff\xfe"),  # not UTF-8
    ],
)
def test_decode_rejects_damaged_lines(line: bytes) -> None:
    assert decode(line) is None


# -- writer -----------------------------------------------------------------------------------


def test_writer_record_carries_clocks_and_identity(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path / "ledger", "worker")
    before = time.monotonic()
    record = writer.write("started", task="t1", execution="e1")
    assert record["kind"] == "started"
    assert record["pid"] == os.getpid()
    assert before <= record["t"] <= time.monotonic()
    assert abs(record["wall"] - time.time()) < 60
    assert (record["task"], record["execution"]) == ("t1", "e1")
    contents = read_ledger([tmp_path / "ledger"])
    assert contents.records == [record]
    assert (contents.files, contents.truncated, contents.corrupt) == (1, 0, 0)
    (path,) = ledger_files(tmp_path / "ledger")
    assert path.name.startswith(f"worker-{socket.gethostname()}-{os.getpid()}-")


def test_writer_appends_to_one_file_per_process(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    for n in range(3):
        writer.write("tick", n=n)
    assert len(ledger_files(tmp_path)) == 1
    assert [r["n"] for r in read_ledger([tmp_path]).records] == [0, 1, 2]


def test_two_writers_in_one_process_never_share_a_file(tmp_path: Path) -> None:
    LedgerWriter(tmp_path, "harness").write("a")
    LedgerWriter(tmp_path, "harness").write("b")
    assert len(ledger_files(tmp_path)) == 2
    assert len(read_ledger([tmp_path]).records) == 2


def test_forked_child_writes_a_file_of_its_own(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("parent", n=0)  # opens the parent's file before the fork

    pid = fork_child(lambda: writer.write("child", n=1))
    status = wait_child(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    writer.write("parent", n=2)  # still the parent's own file

    files = ledger_files(tmp_path)
    assert len(files) == 2
    by_pid = {int(f.name.split("-")[-2]): f for f in files}
    assert set(by_pid) == {os.getpid(), pid}
    contents = LedgerContents()
    parse_file(by_pid[pid].read_bytes(), contents)
    assert [(r["kind"], r["pid"]) for r in contents.records] == [("child", pid)]
    contents = LedgerContents()
    parse_file(by_pid[os.getpid()].read_bytes(), contents)
    assert [r["n"] for r in contents.records] == [0, 2]


# -- damage -----------------------------------------------------------------------------------


def test_truncated_last_record_is_counted_not_dropped_silently(tmp_path: Path) -> None:
    first, second = encode({"kind": "a", "n": 1}), encode({"kind": "b", "n": 2})
    (tmp_path / f"w{SUFFIX}").write_bytes(first + second[: len(second) // 2])
    contents = read_ledger([tmp_path])
    assert contents.truncated == 1
    assert contents.corrupt == 0
    assert [r["kind"] for r in contents.records] == ["a"]


def test_complete_record_missing_only_its_newline_is_truncated(tmp_path: Path) -> None:
    # Its bytes would decode, but a writer killed before the newline did not finish the record.
    first, second = encode({"kind": "a"}), encode({"kind": "b"})
    (tmp_path / f"w{SUFFIX}").write_bytes(first + second[:-1])
    contents = read_ledger([tmp_path])
    assert (contents.truncated, contents.corrupt, len(contents.records)) == (1, 0, 1)


def test_truncated_lines_are_counted_per_file(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}{SUFFIX}").write_bytes(encode({"kind": name}) + b"0badf00d {")
    contents = read_ledger([tmp_path])
    assert (contents.files, contents.truncated, len(contents.records)) == (3, 3, 3)


@pytest.mark.parametrize("where", ["crc", "body-start", "body-middle", "body-end"])
def test_flipped_byte_is_corrupt(tmp_path: Path, where: str) -> None:
    lines = [encode({"kind": "tick", "n": n, "pad": "x" * 40}) for n in range(3)]
    victim = bytearray(lines[1])
    position = {"crc": 3, "body-start": 10, "body-middle": len(victim) // 2,
                "body-end": len(victim) - 3}[where]
    victim[position] ^= 0x01
    assert bytes(victim) != lines[1]
    (tmp_path / f"w{SUFFIX}").write_bytes(lines[0] + bytes(victim) + lines[2])
    contents = read_ledger([tmp_path])
    assert contents.corrupt == 1
    assert contents.truncated == 0
    assert [r["n"] for r in contents.records] == [0, 2]


def test_reader_walks_subdirectories_and_ignores_other_files(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / f"x{SUFFIX}").write_bytes(encode({"kind": "deep", "t": 2.0}))
    (tmp_path / f"y{SUFFIX}").write_bytes(encode({"kind": "top", "t": 1.0}))
    (tmp_path / "notes.txt").write_bytes(b"not a ledger\n")
    (tmp_path / "broken.log").write_bytes(b"garbage")
    contents = read_ledger([tmp_path, tmp_path / "missing"])
    assert contents.files == 2
    assert [r["kind"] for r in contents.records] == ["top", "deep"]  # sorted by t
    assert (contents.truncated, contents.corrupt) == (0, 0)


def test_of_kind_filters() -> None:
    contents = LedgerContents(records=[{"kind": "a"}, {"kind": "b"}, {"kind": "c"}, {}])
    assert contents.of_kind("a", "c") == [{"kind": "a"}, {"kind": "c"}]
    assert contents.of_kind("zzz") == []


# -- concurrency and SIGKILL ------------------------------------------------------------------


def test_concurrent_threads_and_processes_write_exact_uncorrupted_records(
    tmp_path: Path,
) -> None:
    threads_n, processes_n, per_writer = 6, 4, 400
    pad = "p" * 500  # long enough that an interleaved write would show
    writer = LedgerWriter(tmp_path, "mixed")
    gate_r, gate_w = os.pipe()

    def child_body(p: int) -> None:
        os.close(gate_w)
        os.read(gate_r, 1)  # returns b"" once the parent closes the gate: all start together
        for n in range(per_writer):
            writer.write("tick", who=f"proc{p}", n=n, pad=pad)

    children = []
    for p in range(processes_n):  # fork before any thread exists
        children.append(fork_child(lambda p=p: child_body(p)))
    os.close(gate_r)

    def thread_body(i: int) -> None:
        for n in range(per_writer):
            writer.write("tick", who=f"thread{i}", n=n, pad=pad)

    threads = [threading.Thread(target=thread_body, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    os.close(gate_w)
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    for pid in children:
        status = wait_child(pid)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

    contents = read_ledger([tmp_path])
    assert contents.corrupt == 0
    assert contents.truncated == 0
    assert contents.files == 1 + processes_n
    assert len(contents.records) == (threads_n + processes_n) * per_writer
    seen: dict[str, list[int]] = {}
    for record in contents.records:
        assert record["pad"] == pad
        seen.setdefault(record["who"], []).append(record["n"])
    expected = {f"thread{i}" for i in range(threads_n)} | {f"proc{p}" for p in range(processes_n)}
    assert set(seen) == expected
    for who, ns in seen.items():
        assert sorted(ns) == list(range(per_writer)), who


def test_sigkill_mid_write_damages_at_most_the_last_record(tmp_path: Path) -> None:
    # Large records make it likely the kill lands inside a write(2) or between encode and write.
    pad = "k" * 64 * 1024
    threshold = 50

    def hammer() -> None:
        writer = LedgerWriter(tmp_path, "victim")
        n = 0
        while True:
            writer.write("tick", n=n, pad=pad)
            n += 1

    pid = fork_child(hammer)
    try:
        deadline = time.monotonic() + 10.0
        record_size = len(encode({"kind": "tick", "n": 0, "pad": pad}))
        while True:  # poll the file's size until it holds more than `threshold` records
            files = ledger_files(tmp_path)
            if files and files[0].stat().st_size > (threshold + 1) * (record_size + 200):
                break
            assert time.monotonic() < deadline, "the child wrote too little in 10 s"
            time.sleep(0.001)
    finally:
        os.kill(pid, signal.SIGKILL)
        status = wait_child(pid)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    contents = read_ledger([tmp_path])
    assert contents.files == 1
    assert contents.corrupt == 0
    assert contents.truncated in (0, 1)
    assert len(contents.records) > threshold
    # Every complete record decoded and none is missing in the middle.
    assert [r["n"] for r in contents.records] == list(range(len(contents.records)))
    assert all(r["pad"] == pad and r["pid"] == pid for r in contents.records)
    # The file is exactly: the complete records, then at most one partial line.
    data = ledger_files(tmp_path)[0].read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    assert complete.count(b"\n") == len(contents.records)
    assert (len(data) > len(complete)) == (contents.truncated == 1)
    json.loads(complete.splitlines()[-1].partition(b" ")[2])  # the last complete line is whole


def test_read_ledger_keeps_one_prefix_and_untagged_records_only(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("worker_ready", effective={"acks_late": True})
    writer.write("started", task="b.cfg.none.00001", execution="e1")
    writer.write("started", task="b.cfg.sigkill.00001", execution="e2")
    writer.write("fault", fault="sigkill", task=None)
    writer.write("completed", task='odd"name.00001', execution="e3")
    # A team's worker names its task inside its settings: still a record of no task.
    writer.write("worker_ready", effective={"task": "shop.tasks.charge"})
    kept = read_ledger([tmp_path], task_prefix="b.cfg.none.").records
    assert [r["kind"] for r in kept] == ["worker_ready", "started", "fault", "worker_ready"]
    assert kept[1]["task"] == "b.cfg.none.00001"
    odd = read_ledger([tmp_path], task_prefix='odd"name.').records
    assert [r.get("task") for r in odd] == [None, None, 'odd"name.00001', None]
    assert len(read_ledger([tmp_path]).records) == 6


def test_read_ledger_prefix_still_counts_damaged_lines(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path, "worker")
    writer.write("started", task="other.00001", execution="e1")
    path = next(tmp_path.glob("*.ledger"))
    with path.open("ab") as f:
        f.write(b"00000000 {\"kind\":\"x\"}\n" + b"00000000 {\"task\":\"other.2\"}\n"
                + b"deadbeef {\"kind\":")
    contents = read_ledger([tmp_path], task_prefix="mine.")
    assert contents.records == [] and contents.corrupt == 2 and contents.truncated == 1
