"""The Python API (explorer.open, docs/python.md) against the commands it fronts and
against transformers itself: `ex.trace` writes byte for byte the JSONL `main.py trace`
writes with the same settings (a separate process), `ex.tree(...).to_dict()` is the JSON
`main.py tree --json` writes, `ex.positions` is one plain full forward pass, the errors are
the commands' sentences as typed exceptions, and `import explorer` pulls in neither
Textual nor (for a server) torch."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from app_fixtures import requires_model

import explorer
from explorer.config import EMBEDDED_MODEL_DIR
from explorer.errors import (BackendError, ConfigError, ExplorerError, ExplorerWarning,
                             ModelLoadError, PromptTooLongError, UsageError)

pytestmark = requires_model
REPO = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, HF_HUB_OFFLINE="1")


def main_py(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`uv run main.py ARGV` as a user runs it (this venv's python is uv's)."""
    return subprocess.run([sys.executable, str(REPO / "main.py"), *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=ENV)


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=ENV)


@pytest.fixture(scope="module")
def ex():
    with explorer.open(model="tiny") as opened:
        yield opened


# -- the same files as the commands ---------------------------------------------------------

SAME = [
    # (keywords, the same settings as flags)
    (dict(max_new_tokens=8, track=[" Paris"], temperature=0.7, seed=42),
     ["--max-new-tokens", "8", "--track", " Paris", "--temperature", "0.7", "--seed", "42"]),
    (dict(max_new_tokens=6, top_logprobs=3, prefix=" It", top_k=5, preset="balanced", seed=3),
     ["--max-new-tokens", "6", "--top-logprobs", "3", "--prefix", " It", "--top-k", "5",
      "--preset", "balanced", "--seed", "3"]),
]


@pytest.mark.parametrize("keywords, flags", SAME)
def test_trace_writes_the_file_trace_writes(ex, tmp_path, keywords, flags):
    prompt = "The capital of France is"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExplorerWarning)  # " Paris" is two tokens here
        t = ex.trace(prompt, **keywords)
    ours = t.save_jsonl(tmp_path / "api.jsonl")
    done = main_py("trace", "--model", "tiny", "--prompt", prompt, *flags, "--jsonl", str(tmp_path / "cli.jsonl"))
    assert done.returncode == 0, done.stderr
    assert ours.read_bytes() == (tmp_path / "cli.jsonl").read_bytes()
    assert t.report == done.stdout  # and the report it prints
    assert len(t.lines) == keywords["max_new_tokens"] and t.stop == "length"
    assert t.completion_ids == tuple(line["token_id"] for line in t.lines)


def test_trace_jsonl_keyword_writes_the_same_file(ex, tmp_path):
    t = ex.trace("Once upon a time", max_new_tokens=4, jsonl=tmp_path / "direct.jsonl")
    assert (tmp_path / "direct.jsonl").read_text(encoding="utf-8") == t.jsonl()


def test_tree_to_dict_is_the_json_tree_writes(ex, tmp_path):
    tree = ex.tree("Once upon a time", max_nodes=12, t_min=0.05)
    done = main_py("tree", "--model", "tiny", "--prompt", "Once upon a time", "--max-nodes", "12",
                   "--t-min", "0.05", "--json", str(tmp_path / "cli.json"), "--jsonl", str(tmp_path / "cli.jsonl"))
    assert done.returncode == 0, done.stderr
    assert tree.to_dict() == json.loads((tmp_path / "cli.json").read_text(encoding="utf-8"))
    assert tree.size == 12 and tree.to_dict()["settings"]["t_min"] == 0.05
    tree.save_json(tmp_path / "api.json")
    tree.save_jsonl(tmp_path / "api.jsonl")
    assert (tmp_path / "api.json").read_bytes() == (tmp_path / "cli.json").read_bytes()
    assert (tmp_path / "api.jsonl").read_bytes() == (tmp_path / "cli.jsonl").read_bytes()


# -- positions: one plain forward pass ---------------------------------------------------------

def test_positions_are_one_plain_forward_pass(ex):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    text = "The quick brown fox jumps over the lazy dog"
    p = ex.positions(text)
    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32).eval()
    ids = AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))(text)["input_ids"]
    assert list(p.ids) == ids == [line["token_id"] for line in p.lines]
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    first = p.lines[0]
    assert (first["logprob"], first["rank"], first["entropy"], first["top"]) == (None, None, None, [])
    for i in range(1, len(ids)):
        row, line = logprobs[i - 1], p.lines[i]
        assert line["step"] == line["position"] == i
        assert line["logprob"] == pytest.approx(row[ids[i]].item(), abs=1e-4)
        assert line["rank"] == 1 + int((row > row[ids[i]]).sum())
        assert line["entropy"] == pytest.approx(-(row.exp() * row).sum().item(), abs=1e-4)
        top = row.topk(len(line["top"]))
        assert [c["token_id"] for c in line["top"]] == top.indices.tolist()
    assert len(p.lines[1]["top"]) == ex.top_logprobs == 30  # config.toml's tokens_to_show, as `x`


def test_to_pandas_reads_as_the_saved_file(ex, tmp_path):
    import pandas

    t = ex.trace("The", max_new_tokens=5)
    frame = t.to_pandas()
    saved = pandas.read_json(t.save_jsonl(tmp_path / "t.jsonl"), lines=True)
    assert list(frame.columns) == list(saved.columns)
    assert frame["token_id"].tolist() == saved["token_id"].tolist() == list(t.completion_ids)
    assert frame["logprob"].tolist() == pytest.approx(saved["logprob"].tolist())
    positions = ex.positions("The quick brown fox").to_pandas()
    assert positions["position"].tolist() == list(range(len(positions)))


def test_to_pandas_without_pandas_is_one_sentence():
    done = python("import sys; sys.modules['pandas'] = None\n"
                  "from explorer.api.results import Positions\n"
                  "from explorer.errors import MissingPackage\n"
                  "try:\n    Positions([], '', ()).to_pandas()\n"
                  "except MissingPackage as exc:\n    print(type(exc).__mro__[1].__name__, exc)\n")
    assert done.stdout == ("ExplorerError to_pandas() needs pandas, which is not installed here "
                           "(pip install pandas, or uv add pandas).\n"), done.stderr


# -- Jupyter: coloured tokens ------------------------------------------------------------------

def test_html_colours_tokens_on_the_apps_probability_scale(ex):
    import re

    from explorer.ui.colors import PROBABILITY  # the app's scale: the reference

    t = ex.trace("The capital of France is", max_new_tokens=4)
    page = t._repr_html_()
    spans = re.findall(r'<span title="([^"]*)" style="background:rgb\((\d+),(\d+),(\d+)\)', page)
    spans = spans[5:]  # the legend's five swatches first
    assert len(spans) == len(t.prompt_ids) + len(t.lines)
    for (title, *rgb), line in zip(spans[len(t.prompt_ids):], t.lines):
        assert tuple(map(int, rgb)) == PROBABILITY.rgb(math.exp(line["logprob"]))
        assert f"rank {line['rank']}" in title and f"id {line['token_id']}" in title
    p = ex.positions("The quick brown fox")
    cells = re.findall(r'style="background:rgb\((\d+),(\d+),(\d+)\)', p._repr_html_())[5:]
    assert [tuple(map(int, c)) for c in cells[1:]] == [PROBABILITY.rgb(math.exp(line["logprob"]))
                                                       for line in p.lines[1:]]


# -- errors: the commands' sentences, typed ------------------------------------------------------

def test_errors_are_the_commands_sentences_as_typed_exceptions(ex, tmp_path):
    with pytest.raises(UsageError, match=r"^--max-new-tokens must be at least 1, not 0\.$"):
        ex.trace("The", max_new_tokens=0)
    with pytest.raises(PromptTooLongError) as too_long:
        ex.trace("The", max_new_tokens=5000)
    cli = main_py("trace", "--model", "tiny", "--prompt", "The", "--max-new-tokens", "5000")
    assert cli.stderr == f"token-explorer trace: {too_long.value}\n"
    with pytest.raises(ConfigError) as hot:
        ex.trace("The", temperature="hot")
    assert "--temperature" in str(hot.value) and str(hot.value).endswith(".")
    with pytest.raises(UsageError, match=r"^trace\(\) has no setting 'colour'; it takes "):
        ex.trace("The", colour=True)
    with pytest.raises(UsageError, match=r"^model is chosen when the model opens: explorer.open\(model=\.\.\.\)\.$"):
        ex.trace("The", model="smollm2")
    with pytest.raises(UsageError, match=r"^positions\(\) has no setting 'max_new_tokens'"):
        ex.positions("The", max_new_tokens=3)
    with pytest.raises(UsageError, match=r"^tree\(\) returns the tree; write its files"):
        ex.tree("The", json=tmp_path / "t.json")
    with pytest.raises(ExplorerError, match="^The prompt is empty"):
        ex.positions("   ")
    for exc in (UsageError, ConfigError, PromptTooLongError):
        assert issubclass(exc, ExplorerError)


def test_a_model_that_cannot_open_is_the_commands_sentence(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError) as exc:
        explorer.open(model=str(missing))
    assert isinstance(exc.value, BackendError) and isinstance(exc.value, ExplorerError)
    cli = main_py("trace", "--model", str(missing), "--prompt", "The")
    assert cli.stderr == f"token-explorer trace: {exc.value}\n"
    with pytest.raises(UsageError, match=r"^Argument --dtype: invalid choice: 'float8' \(choose from 'auto', "
                                         r"'float32', 'bfloat16', 'float16'\)\.$"):
        explorer.open(model="tiny", dtype="float8")


def test_warnings_point_at_the_callers_line(ex):
    with pytest.warns(ExplorerWarning, match=r"^--track ' Paris' is not one token but 2") as seen:
        ex.trace("The", max_new_tokens=2, track=[" Paris"])
    assert seen[0].filename == __file__


def test_close_and_context_manager():
    with explorer.open(model="tiny", top_logprobs=3) as ex:
        assert ex.trace("The", max_new_tokens=2, top_logprobs=3).lines[0]["top"].__len__() == 3
        with pytest.raises(UsageError, match=r"^top_logprobs must be at most 3, "):
            ex.trace("The", max_new_tokens=2)  # trace's default, 5
    assert repr(ex) == "<explorer.Model (closed)>"
    with pytest.raises(UsageError, match=r"^This model is closed; open another with explorer.open\(\.\.\.\)\.$"):
        ex.positions("The")
    ex.close()  # twice: harmless


# -- what `import explorer` costs ----------------------------------------------------------------

def test_import_explorer_loads_neither_textual_nor_torch():
    done = python("import sys\n"
                  "def loaded(): return sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'torch', 'transformers'})\n"
                  "import explorer\nprint(loaded())\n"
                  "explorer.open\nimport explorer.errors\nprint(loaded())\n"
                  "ex = explorer.open(model='tiny'); ex.trace('The', max_new_tokens=2); print(loaded())\n")
    assert done.stdout.splitlines() == ["[]", "[]", "['torch', 'transformers']"], done.stderr


def test_a_server_explorer_never_imports_torch(llama_url):
    done = python("import sys, explorer\n"
                  f"with explorer.open(server={llama_url!r}) as ex:\n"
                  "    t = ex.trace('The', max_new_tokens=3)\n"
                  "    p = ex.positions('Once upon a time')\n"
                  "    try:\n        ex.tree('The')\n"
                  "    except explorer.errors.Unavailable as exc:\n        print(exc)\n"
                  "print(len(t.lines), t.lines[0]['entropy_bound'], p.lines[1]['entropy'] is not None)\n"
                  "print(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'torch', 'transformers'}))\n")
    assert done.returncode == 0, done.stderr
    refusal, numbers, loaded = done.stdout.splitlines()
    assert refusal.startswith("Growing token trees is not available on this backend")
    assert numbers == "3 True True"  # a step's entropy from a server's top-K is a bound, and says so
    assert loaded == "[]"
