"""Ctrl-C keeps the work done, bad inputs are refused before the model loads, stdout that
cannot be written is one sentence (issue 22, items 4, 6 and 9). Real subprocesses on the
toy model (`--model tiny`); every wait is on a line the child prints, never on a clock."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from explorer import cli
from explorer.core import trace_command
from explorer.inputs import MAX_PROMPT_BYTES

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}

# The real command, with the engine's tree search saying once it has 20 nodes and then
# waiting for a line on stdin, which the test sends after Ctrl-C (so the signal has come
# before the search goes on, whatever the machine's load).
TREE_CHILD = """
import sys
from explorer.engine.engine import Engine
real = Engine.grow_tree
def grow_tree(self, key, settings, *, progress=None, cancelled=None):
    def said(done, total):
        if done >= 20 and not said.told:
            said.told = True
            print(f"grown {done}", file=sys.stderr, flush=True)
            sys.stdin.readline()
    said.told = False
    return real(self, key, settings, progress=said, cancelled=cancelled)
Engine.grow_tree = grow_tree
from explorer.cli import main
sys.exit(main(sys.argv[1:]))
"""

# The same for trace: after 5 steps it says so and waits for the line sent after Ctrl-C.
TRACE_CHILD = """
import sys
import explorer.core.trace_command as command
real = command.trace
def trace(*args, step_progress=None, **kwargs):
    def step(done, total):
        if done == 5:
            print("step 5", file=sys.stderr, flush=True)
            sys.stdin.readline()
    return real(*args, step_progress=step, **kwargs)
command.trace = trace
sys.exit(command.main(sys.argv[1:]))
"""


def run_until(script: str, args: list[str], marker: str) -> tuple[subprocess.Popen, str]:
    child = subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, env=ENV, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    for line in child.stderr:
        seen.append(line)
        if line.startswith(marker):
            return child, line
    child.wait()
    raise AssertionError("the child ended before it got there: " + "".join(seen))


def ctrl_c(child: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C, then the line the child waits for; then everything it writes until it ends."""
    child.send_signal(signal.SIGINT)
    child.stdin.write("\n")
    child.stdin.flush()
    return child.communicate(timeout=600)


def test_ctrl_c_during_tree_writes_the_tree_grown_so_far(tmp_path):
    out_json, out_jsonl = tmp_path / "t.json", tmp_path / "t.jsonl"
    child, line = run_until(TREE_CHILD, [
        "tree", "--model", "tiny", "--prompt", "Once upon a time", "--t-min", "0.01", "--t-max", "0.05",
        "--max-depth", "60", "--max-nodes", "100000", "--json", str(out_json), "--jsonl", str(out_jsonl)],
        "grown ")
    grown = int(line.split()[1])
    out, err = ctrl_c(child)
    assert child.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"interrupted; the tree is kept as far as it grew ({grown} nodes, marked incomplete)." in err
    saved = json.loads(out_json.read_text())
    assert saved["complete"] is False and saved["stopped"] == "cancelled"
    count, stack = 0, list(saved["children"])
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node["children"])
    assert count == grown
    assert any(json.loads(x)["end"] == "open" for x in out_jsonl.read_text().splitlines())
    assert f"{grown} nodes" in out and "stopped: cancelled" in out


def test_ctrl_c_during_trace_writes_the_finished_steps(tmp_path):
    out = tmp_path / "steps.jsonl"
    child, _ = run_until(TRACE_CHILD, ["--model", "tiny", "--prompt", "Once upon a time",
                                       "--max-new-tokens", "200", "--jsonl", str(out)], "step 5")
    report, err = ctrl_c(child)
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert f"interrupted; wrote the 5 finished steps to {out}" in err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3, 4, 5]
    assert lines[-1]["stop"] == "interrupted" and "stop" not in lines[0]
    assert "stopped by Ctrl-C" in report


def test_trace_report_into_dev_full_is_one_sentence_exit_2():
    if not (os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode)
            and os.access("/dev/full", os.W_OK)):
        pytest.skip("/dev/full is not a device this user may write")
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "main.py", "trace", "--model", "tiny", "--prompt", "Hi",
                               "--max-new-tokens", "2"], cwd=ROOT, env=ENV, stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=600)
    err = done.stderr.strip()
    assert done.returncode == 2 and "Traceback" not in err and "Exception ignored" not in err
    assert err.splitlines()[-1] == ("token-explorer trace: Could not write the report to standard "
                                    "output: No space left on device.")


def bad_inputs(tmp_path: Path) -> list[tuple[Path, str]]:
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x7fELF\x00\x01")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    big = tmp_path / "big.txt"
    big.write_text("word " * (MAX_PROMPT_BYTES // 5 + 10))
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000)
    return [(binary, "looks binary"), (latin, "is not UTF-8 text"), (empty, "is empty"),
            (big, "a prompt file may be at most 4 MiB"), (nested, "nests too deeply")]


# A model that does not exist: a check that came after loading would name the model.
NO_MODEL = ["--model", "/nonexistent/model-folder"]


@pytest.mark.parametrize("command", ["trace", "tree"])
def test_bad_prompt_files_are_refused_before_the_model_loads(tmp_path, capsys, command):
    for path, words in bad_inputs(tmp_path):
        if command == "trace":
            code = trace_command.main(["-i", str(path), *NO_MODEL])
        else:
            code = cli.main(["tree", "-i", str(path), *NO_MODEL])
        err = capsys.readouterr().err.strip()
        assert code in (1, 2) and err.count("\n") == 0, err
        assert words in err and "model-folder" not in err, err


def test_tree_json_into_a_folder_is_refused_before_the_model_loads(tmp_path, capsys):
    code = cli.main(["tree", "--prompt", "hi", "--json", str(tmp_path), *NO_MODEL])
    err = capsys.readouterr().err.strip()
    assert code != 0 and err == f"token-explorer tree: Could not write {tmp_path}: it is a folder."


def test_tree_output_over_its_input_is_refused_before_the_model_loads(tmp_path, capsys):
    prompt = tmp_path / "p.json"
    prompt.write_text('{"token_ids": [1], "text": "a"}')
    code = cli.main(["tree", "-i", str(prompt), "--jsonl", str(prompt), *NO_MODEL])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "it is the input file this run reads" in err
    assert prompt.read_text() == '{"token_ids": [1], "text": "a"}'
