"""The writer respects what it writes over (issue 22, item 2): symlinks, modes, FIFOs,
devices, temporary files left by a killed process, and outputs over inputs; saves pick
free names for every file they write. Real files in tmp_path, real subprocesses."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from explorer.atomic import SUFFIX, write_text_atomic
from explorer.core.export import ExportError, check_writable
from explorer.output_paths import free_stem, output_problem
from explorer.session.files import save_prompt

ROOT = Path(__file__).resolve().parents[1]


def our_temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(SUFFIX) or p.name.endswith(".tmp"))


def test_a_symlink_is_kept_and_its_target_updated(tmp_path):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    write_text_atomic(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    assert our_temps(tmp_path) == []


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "made.json")
    write_text_atomic(link, "{}")
    assert link.is_symlink() and (tmp_path / "made.json").read_text() == "{}"


def test_an_existing_file_keeps_its_mode(tmp_path):
    target = tmp_path / "secret.jsonl"
    target.write_text("old")
    target.chmod(0o600)
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_fifo_without_a_reader_is_refused_and_kept(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="FIFO that nobody is reading") as info:
        write_text_atomic(fifo, "data")
    assert info.value.filename == str(fifo)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert our_temps(tmp_path) == []


def test_a_fifo_with_a_reader_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    text = b"line 1\nline 2\n"
    # O_RDWR: a reader that exists before the writer looks, and that never sees EOF, so it
    # reads exactly the bytes expected (a daemon thread: a failed test cannot hang the run).
    fd = os.open(fifo, os.O_RDWR)
    got: list[bytes] = []

    def read() -> None:
        chunks = b""
        while len(chunks) < len(text):
            chunks += os.read(fd, 65536)
        got.append(chunks)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        write_text_atomic(fifo, text.decode())
        reader.join(30)
    finally:
        if got:
            os.close(fd)
    assert got == [text]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_link_to_standard_output_writes_to_the_pipe(tmp_path):
    # Our own link to /proc/self/fd/1 (what /dev/stdout is): never the machine's /dev/stdout.
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    script = "import sys; from pathlib import Path; from explorer.atomic import write_text_atomic; " \
             "write_text_atomic(Path(sys.argv[1]), 'through the pipe\\n')"
    done = subprocess.run([sys.executable, "-c", script, str(link)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "through the pipe\n" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdout"]


def device_node(tmp_path: Path, name: str, minor: int) -> Path:
    """A character device of our own in tmp_path (1,3 is null, 1,7 is full): a writer that
    regressed would replace this node, never the machine's /dev/null or /dev/full."""
    node = tmp_path / name
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        with open(node, "wb"):
            pass
    except OSError as exc:  # not root, or a folder mounted nodev
        pytest.skip(f"cannot make a device node here: {exc.strerror}")
    return node


def test_a_null_device_is_written_through_not_replaced(tmp_path):
    null = device_node(tmp_path, "null", 3)
    write_text_atomic(null, "anything")
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert our_temps(tmp_path) == []


def test_a_full_device_is_one_sentence_and_stays_a_device(tmp_path):
    from explorer.core.export import write_atomic

    full = device_node(tmp_path, "full", 7)
    with pytest.raises(OSError) as info:
        write_text_atomic(full, "x" * 10)
    assert info.value.filename == str(full) and "space" in info.value.strerror.lower()
    with pytest.raises(ExportError, match=rf"^Could not write {full}: No space left on device\.$"):
        write_atomic(full, "x")
    assert stat.S_ISCHR(full.lstat().st_mode)


# A child that writes a file and stops inside the write (after the text is written, at
# fsync) and says so; the test then signals it. No timing: it waits for the child's line.
CHILD = """
import os, sys
from pathlib import Path
import explorer.atomic as atomic
def stop_here(fd):
    print("writing", flush=True)
    sys.stdin.readline()
os.fsync = stop_here
atomic.write_text_atomic(Path(sys.argv[1]), "x" * 1_000_000)
"""


def start_writer(target: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)], cwd=ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "writing\n"
    return child


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_a_write_removes_the_temporary_file(tmp_path, sig):
    target = tmp_path / "out.jsonl"
    target.write_text("old")
    child = start_writer(target)
    assert len(our_temps(tmp_path)) == 1  # it is mid-write
    child.send_signal(sig)
    child.wait(30)
    assert our_temps(tmp_path) == []
    assert target.read_text() == "old"


def test_kill_9_leftover_is_recognisable_and_removed_by_the_next_write(tmp_path):
    target = tmp_path / "big.jsonl"
    child = start_writer(target)
    child.kill()
    child.wait(30)
    left = our_temps(tmp_path)
    assert len(left) == 1 and left[0].startswith(".big.jsonl.") and left[0].endswith(SUFFIX)
    write_text_atomic(target, "fresh")
    assert our_temps(tmp_path) == [] and target.read_text() == "fresh"


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    target = tmp_path / "shared.jsonl"
    child = start_writer(target)
    try:
        write_text_atomic(target, "mine")
        assert len(our_temps(tmp_path)) == 1  # the other process is still writing it
    finally:
        child.kill()
        child.wait(30)


def test_save_never_overwrites_an_existing_jsonl(tmp_path):
    (tmp_path / "hello.jsonl").write_text("keep me\n")
    txt = save_prompt(tmp_path, "hello", (1, 2), "m")
    assert txt.name == "hello-2.txt"
    assert (tmp_path / "hello.jsonl").read_text() == "keep me\n"


def test_free_stem_counts_every_suffix(tmp_path):
    (tmp_path / "a-tree.leaves.jsonl").write_text("")
    assert free_stem(tmp_path, "a-tree", (".json", ".leaves.jsonl")) == "a-tree-2"
    (tmp_path / "a-tree-2.json").symlink_to(tmp_path / "nowhere")  # a dangling link counts
    assert free_stem(tmp_path, "a-tree", (".json", ".leaves.jsonl")) == "a-tree-3"


def test_an_output_over_the_input_is_refused(tmp_path):
    prompt = tmp_path / "self.json"
    prompt.write_text('{"token_ids": [1], "text": "a"}')
    with pytest.raises(ExportError, match="it is the input file this run reads"):
        check_writable(prompt, reading=prompt)
    link = tmp_path / "alias.json"
    link.symlink_to(prompt)
    assert "input file" in output_problem(link, (prompt,))


def test_trace_refuses_jsonl_over_its_input_before_loading(tmp_path, capsys):
    from explorer.core import trace_command

    prompt = tmp_path / "self.json"
    prompt.write_text('{"token_ids": [1, 2], "text": "ab"}')
    before = prompt.read_bytes()
    # An unknown model would fail to load: the refusal must come first.
    code = trace_command.main(["-i", str(prompt), "--jsonl", str(prompt), "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "it is the input file" in err
    assert prompt.read_bytes() == before
