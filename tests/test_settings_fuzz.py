"""Fuzz tests that stay (issue 22): hypothesis writes config.toml files and saved-prompt
JSON of wrong types, nan/inf/huge/negative numbers, strings where numbers go, random
nesting. Each must be accepted, or refused with exactly one sentence (a single line) as
the project's user-facing error: never another exception type, never a traceback. No
model loads: the config loader (with the command line on top, as every command reads it)
and the saved-prompt loader are called directly.

Bounded in time for CI: a few hundred examples, well under 30 s each on a loaded 2-core
machine; deadline=None because a loaded machine makes single examples slow.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.cli import parse_args, settings_from_args
from explorer import config
from explorer.config import ConfigError, Settings
from explorer.sampling import KNOBS
from explorer.session.files import LoadedPrompt, PromptFileError, load_prompt_file
from explorer.tree.rule import TreeSettings

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# The keys each section really has, so most examples get past "unknown key" to the checks
# of types and ranges; random names test "unknown" too.
KNOWN = {section: [f.name for f in fields(cls)] for section, cls in (
    ("model", config.ModelSettings), ("display", config.DisplaySettings),
    ("prompts", config.PromptSettings), ("server", config.ServerSettings),
    ("attribution", config.AttributionSettings))}
KNOWN["sampling"] = [*KNOBS, "preset", "max_tokens", "stop"]
KNOWN["tree"] = [f.name for f in fields(TreeSettings)]
KNOWN["keys"] = ["prompt.append", "app.quit", ""]
SECTIONS = [*KNOWN, "layer_prob", "modle"]

NAME = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
SPECIAL_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-300, 5e-324,
                                  0.0, -0.0, 1e-3, 1e3, 0.5, 1.0, 2.0])
SCALAR = st.one_of(
    st.booleans(),
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.sampled_from([0, 1, -1, 2, 4096, 4097, 10**6]),
    st.floats(allow_nan=True, allow_infinity=True),
    SPECIAL_FLOATS,
    NAME,
    st.sampled_from(["5", "nan", "auto", "cpu", "float32", "model", "greedy", "zero", "1e-300", ""]),
)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(NAME, inner, max_size=3)), max_leaves=6)


@st.composite
def config_tables(draw) -> dict:
    data = {}
    for section in draw(st.lists(st.sampled_from(SECTIONS), unique=True, max_size=4)):
        if draw(st.integers(0, 5)) == 0:  # a section that is not a table: model = 5
            data[section] = draw(SCALAR)
            continue
        keys = KNOWN.get(section, ["x"])
        table = {}
        for key in draw(st.lists(st.one_of(st.sampled_from(keys), NAME), unique=True, max_size=4)):
            table[key] = draw(VALUE)
        data[section] = table
    return data


def toml_value(value) -> str:
    """TOML text for a value; sections become inline tables (the same tables to tomllib)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):  # JSON's escapes are TOML's, but TOML also escapes DEL
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}"
                           for k, v in value.items()) + "}"


def one_sentence(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    assert message.endswith("."), message


def load_through_the_command_line(path: Path) -> Settings:
    return settings_from_args(parse_args(["--config", str(path)]))


@FUZZ
@given(data=config_tables())
def test_config_files_are_accepted_or_refused_in_one_sentence(data):
    text = "\n".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in data.items())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(text + "\n", encoding="utf-8")
        try:
            loaded = load_through_the_command_line(path)
        except ConfigError as exc:
            one_sentence(str(exc))
            return
    # Accepted: every number the app will use is finite, and the counts are counts.
    assert loaded.display.tokens_to_show >= 1 and loaded.model.cache_size >= 1
    assert math.isfinite(loaded.server.connect_timeout) and loaded.server.connect_timeout > 0
    assert math.isfinite(loaded.server.read_timeout) and loaded.server.read_timeout > 0
    for name, value in loaded.sampling.values.items():
        assert value is None or math.isfinite(value), (name, value)


@FUZZ
@given(text=st.text(max_size=200))
def test_any_text_as_config_is_accepted_or_one_sentence(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(text, encoding="utf-8")
        try:
            load_through_the_command_line(path)
        except ConfigError as exc:
            one_sentence(str(exc))


# --- saved-prompt JSON ---------------------------------------------------------------

MAX_ID = 2**31 - 1  # no vocabulary has 2**31 tokens

JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from([0, 1, MAX_ID, MAX_ID + 1, -1, "user", "prompt", "sampled", "m"]),
)
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=10)
FIELDS = ["model", "token_ids", "text", "messages", "original_ids", "origins"]


@st.composite
def saved_prompts(draw) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # deep nesting: 100,000 [ overflowed json's recursion
        depth = draw(st.sampled_from([10, 1000, 100_000]))
        return draw(st.sampled_from(["[", "{\"a\": "])) * depth
    if kind == 1:
        return json.dumps(draw(JSON_VALUE))
    record = {key: draw(JSON_VALUE) for key in draw(st.lists(st.sampled_from(FIELDS), unique=True))}
    if draw(st.booleans()):  # mostly a plausible prompt, so the deeper checks are reached
        record.setdefault("token_ids", draw(st.lists(JSON_SCALAR, max_size=5)))
        record.setdefault("text", draw(st.text(max_size=10)))
    text = json.dumps(record)
    if draw(st.integers(0, 9)) == 0:  # an integer of thousands of digits
        text = text.replace("[", "[" + "9" * 5000 + ", ", 1)
    return text


def encode(text: str) -> list[int]:
    return [ord(c) % 100 for c in text]


def chat(messages: list[dict]) -> list[int]:
    return encode("".join(m["content"] for m in messages))


@FUZZ
@given(text=saved_prompts(), model=st.sampled_from(["m", "other"]))
def test_saved_prompt_json_is_loaded_or_refused_in_one_sentence(text, model):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.json"
        path.write_text(text, encoding="utf-8")
        try:
            loaded = load_prompt_file(path, encode, model, chat)
        except PromptFileError as exc:
            one_sentence(str(exc))
            return
    assert isinstance(loaded, LoadedPrompt) and loaded.ids
    for i in (*loaded.ids, *(loaded.original or ())):
        assert type(i) is int and 0 <= i <= MAX_ID, i


@pytest.mark.parametrize("text, words", [
    ("[" * 100_000, "nests too deeply"),
    ('{"model": "m", "token_ids": [true, false], "text": "ab"}', "token_ids that are not whole numbers"),
    ('{"model": "m", "token_ids": [-1], "text": "a"}', "token_ids that are not whole numbers"),
    ('{"model": "m", "token_ids": [%d], "text": "a"}' % 2**64, "token_ids that are not whole numbers"),
    ('{"model": "m", "token_ids": [%s], "text": "a"}' % ("9" * 5000), "number too long"),
])
def test_each_bad_saved_prompt_is_one_sentence(tmp_path, text, words):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(PromptFileError, match=words) as caught:
        load_prompt_file(path, encode, "m")
    one_sentence(str(caught.value))
