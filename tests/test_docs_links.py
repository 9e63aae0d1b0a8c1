"""Every relative link and #anchor in README.md and docs/*.md resolves (no model needed)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_checker():
    spec = importlib.util.spec_from_file_location("check_links", ROOT / "tools" / "check_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_link_in_the_readme_and_docs_resolves():
    assert load_checker().broken_links(ROOT) == []


def test_the_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Key to screen (`key_latency.py`)\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md#key-to-screen-key_latencypy) [ok too](#title)\n# Title\n"
        "[gone](docs/missing.md) [no anchor](docs/a.md#nowhere)\n"
        "```\n[in code](docs/ignored.md)\n```\n`[inline](docs/ignored.md)`\n")
    problems = load_checker().broken_links(tmp_path)
    assert len(problems) == 2
    assert "docs/missing.md: no such file" in problems[0]
    assert "'#nowhere'" in problems[1]


def test_github_slugs():
    slug = load_checker().slug
    assert slug("JSONL (`trace --jsonl PATH`, and the app's `x`)") == "jsonl-trace---jsonl-path-and-the-apps-x"
    assert slug("Remote servers (vLLM, llama.cpp)") == "remote-servers-vllm-llamacpp"
