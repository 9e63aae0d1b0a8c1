"""The HTML report in a real browser: Debian's `chromium` driven by Python's playwright
(through `executable_path`: playwright's own browser download cannot reach the network).
The page from `trace --html` opens with no script error, and hovering a token shows its
probability and the candidates that predicted it, as the page's data says.

Without chromium these tests skip with a sentence, except when
TOKEN_EXPLORER_REQUIRE_BROWSER=1 (set by .ci/run after installing it): then a missing
browser is a failure, so CI never passes by skipping.
"""

from __future__ import annotations

import io
import os
import shutil
import sys

import pytest
from app_fixtures import requires_model

from explorer import cli
from test_report import page_data

pytestmark = requires_model


def chromium_path() -> str:
    found = os.environ.get("TOKEN_EXPLORER_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    if found:
        return found
    reason = "chromium is not installed (apt-get install chromium)"
    if os.environ.get("TOKEN_EXPLORER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; TOKEN_EXPLORER_REQUIRE_BROWSER=1: .ci/run should have installed it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        chromium = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def trace_page(tmp_path, *model: str) -> tuple:
    path = tmp_path / "trace.html"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdout", io.StringIO())
        code = cli.main(["trace", *model, "--prompt", "The quick brown fox", "--max-new-tokens", "4",
                         "--top-logprobs", "5", "--html", str(path)])
    assert code == 0
    return path, page_data(path.read_text(encoding="utf-8"))


def hover_and_read(browser, path, position: int, data: dict) -> str:
    """Open the page, hover the segment holding `position`, return the tooltip's text;
    fails on any script error or console error."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("request", lambda req: errors.append(f"request: {req.url}") if not req.url.startswith("file:") else None)
    page.goto(path.as_uri())
    seg = next(k for k, s in enumerate(data["segments"]) if position in s["tokens"])
    assert page.locator("#tip").is_hidden()
    page.hover(f'#prompt .tok[data-seg="{seg}"]')
    tip = page.locator("#tip")
    assert tip.is_visible()
    text = tip.inner_text()
    page.locator("#layer").select_option("entropy")  # the layer switch runs without error
    assert page.locator('.legend[data-layer="entropy"]').is_visible()
    page.close()
    assert errors == []
    return text


def check_tooltip(text: str, token: dict) -> None:
    assert f"probability {token['prob']:.4f}" in text
    assert f"rank {token['rank']}" in text
    assert f"entropy {token['entropy']:.3f} nats" in text
    for c in token["top"]:  # every candidate with p_base and p_final
        assert f"{c['text']}\t{c['p_base']:.4f}\t{c['p_final']:.4f}" in text


def test_hovering_a_generated_token_shows_its_probability_and_candidates(browser, tmp_path):
    path, data = trace_page(tmp_path, "--model", "embedded")
    last = len(data["tokens"]) - 1  # a generated token: p_final known (greedy)
    check_tooltip(hover_and_read(browser, path, last, data), data["tokens"][last])


def test_the_default_model_page_in_chromium(browser, tmp_path):
    """The issue's done-when: `trace --html` on the default model (SmolLM2)."""
    path, data = trace_page(tmp_path)
    last = len(data["tokens"]) - 1
    check_tooltip(hover_and_read(browser, path, last, data), data["tokens"][last])
    assert "smollm2" in path.read_text(encoding="utf-8")
