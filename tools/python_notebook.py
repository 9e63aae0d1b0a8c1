"""Write docs/python.ipynb, the Python API's example notebook, and run it so that its saved
outputs (what a reader sees on GitHub) show the coloured tokens and the tables.

    uv run python tools/python_notebook.py

tests/test_docs_python.py runs the notebook again, headless, and checks those outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

DOCS = Path(__file__).resolve().parent.parent / "docs"

CELLS = [
    ("markdown", "# Token Explorer from Python\n\n"
                 "The numbers of `trace`, `tree` and the app's `x` in a notebook: see "
                 "[python.md](python.md). This notebook runs on the toy model inside the package "
                 "(`tiny`); `explorer.open()` alone opens SmolLM2-135M-Instruct, and "
                 "`explorer.open(server=\"http://...\")` a vLLM or llama.cpp server."),
    ("code", "import explorer\n\nex = explorer.open(model=\"tiny\")\nex"),
    ("markdown", "## A trace\n\nThe same settings as `main.py trace`. Each new token is coloured "
                 "by its probability (red 0 → blue 1), the prompt grey; rest the pointer on a "
                 "token for its rank, entropy, p_final and the top candidates."),
    ("code", "t = ex.trace(\"The capital of France is\", max_new_tokens=12, temperature=0.7, seed=42)\nt"),
    ("code", "t.to_pandas()[[\"step\", \"token\", \"logprob\", \"logprob_final\", \"rank\", \"entropy\"]]"),
    ("code", "t.save_jsonl(\"trace.jsonl\")  # the file `trace --jsonl trace.jsonl` writes"),
    ("markdown", "## Every position of a prompt\n\nWhat the app's `x` saves: each token's "
                 "probability under the distribution before it."),
    ("code", "p = ex.positions(\"The quick brown fox jumps over the lazy dog\")\np"),
    ("code", "p.to_pandas()[[\"position\", \"token\", \"logprob\", \"rank\", \"entropy\"]]"),
    ("markdown", "## A token tree\n\n`tree.to_dict()` is the JSON `main.py tree --json` writes."),
    ("code", "tree = ex.tree(\"Once upon a time\", max_nodes=15)\n"
             "[(leaf.text, round(leaf.cum_logprob, 3)) for leaf in sorted(tree.leaves(), key=lambda n: -n.cum_logprob)]"),
    ("code", "ex.close()"),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    return nb


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    nb = build()
    scratch = Path(os.environ.get("TMPDIR", "/tmp"))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(scratch)}}).execute()
    for cell in nb.cells:  # stderr (transformers' loading bar) says nothing a reader needs
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    nbformat.write(nb, DOCS / "python.ipynb")
    print(f"wrote {DOCS / 'python.ipynb'}")


if __name__ == "__main__":
    main()
