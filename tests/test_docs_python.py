"""docs/python.md and docs/python.ipynb run: every ```python example of the page in its
own fresh namespace (in a scratch folder: they write files), on the embedded model they
name (`tiny`); the notebook headless through Jupyter's nbclient, and its saved outputs (what
a reader sees on GitHub) hold a trace table and the coloured tokens."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from app_fixtures import requires_model

pytestmark = requires_model
DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = re.findall(r"^```python\n(.*?)^```", (DOCS / "python.md").read_text(encoding="utf-8"),
                      re.MULTILINE | re.DOTALL)


def test_the_page_has_examples_on_the_embedded_model():
    assert len(EXAMPLES) >= 6
    for code in EXAMPLES:
        models = re.findall(r'model="([^"]+)"', code)
        assert models and set(models) == {"tiny"}, code


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example{n}" for n in range(len(EXAMPLES))])
def test_every_example_runs(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (" Paris" is two tokens of the toy model)
        exec(compile(code, "docs/python.md", "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    for name in re.findall(r'save_jsonl\("([^"]+)"\)|save_json\("([^"]+)"\)', code):
        assert (tmp_path / "".join(name)).stat().st_size > 0
    if "print(" in code:
        assert printed.strip()


def _html_and_tables(nb) -> tuple[list[str], list[str]]:
    """(the coloured-token outputs, the pandas tables) among the notebook's outputs."""
    html = [out["data"]["text/html"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "text/html" in out.get("data", {})]
    return ([h for h in html if 'class="token-explorer"' in h and "background:rgb(" in h],
            [h for h in html if "<table" in h and "logprob" in h])


def test_the_saved_notebook_shows_a_trace_table_and_coloured_tokens():
    import nbformat

    nb = nbformat.read(DOCS / "python.ipynb", as_version=4)
    tokens, tables = _html_and_tables(nb)
    assert len(tokens) >= 2 and tables  # a trace and a prompt's positions; a trace's table
    assert not [out for cell in nb.cells for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def test_the_notebook_runs_headless(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(DOCS / "python.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    tokens, tables = _html_and_tables(nb)
    assert len(tokens) >= 2 and tables
