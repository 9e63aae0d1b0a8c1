"""The shape of config.toml as a typed model (pydantic, strict): every section a table,
every key of its type, every number finite and in range. load_settings runs the file
through it before building the settings, so a wrong type or an out-of-range number is one
sentence naming the key, never a TypeError from deep inside the app after the model loads.

[sampling] and [tree] get their types checked here and their ranges by
SamplingConfig.from_table and TreeSettings (shared with the command line and the app's
panels, so an out-of-range value reads the same wherever it comes from).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError


_SECTION = "a table of keys (a [section])"


class _Table(BaseModel):
    # strict: no "5" for 5, no true for 1; forbid: a typo is refused, not ignored.
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


def _int(default: int, least: int, most: int | None = None) -> Any:
    return Field(default, ge=least, le=most, json_schema_extra={"kind": "an integer"})


def _seconds(default: float, most: float) -> Any:
    return Field(default, gt=0, le=most, json_schema_extra={"kind": "a number of seconds"})


class ModelTable(_Table):
    name: StrictStr = "smollm2"
    dtype: StrictStr = "float32"  # names checked by config.py (one sentence listing them)
    device: StrictStr = "auto"
    # The prompt is prefilled in chunks of this many positions; any size is valid.
    prefill_chunk: StrictInt = _int(256, 1)
    cache_size: StrictInt = _int(8, 1)
    parts: dict[StrictStr, StrictStr] = Field(default_factory=dict, json_schema_extra={
        "kind": 'a table of part = "dotted.path" (see config.toml)'})
    # The names and devices are checked by config.check_device_map (shared with the flag).
    device_map: StrictStr | dict[StrictStr, Any] = Field(default="", json_schema_extra={
        "kind": "a strategy name or a table of module = device"})
    max_memory: dict[StrictStr, StrictStr | StrictInt] = Field(default_factory=dict, json_schema_extra={
        "kind": 'a table of device = "20GiB"', "value": 'a size such as "20GiB" or a number of bytes'})
    offload_folder: StrictStr = ""


class DisplayTable(_Table):
    # The table shows the top tokens_to_show of every distribution (torch.topk): more rows
    # than the smallest vocabularies hold would fail after the model loads, and more than
    # a screen holds shows nothing more.
    tokens_to_show: StrictInt = _int(30, 1, 1000)
    influence_heads: StrictInt = _int(16, 1, 4096)


class PromptsTable(_Table):
    default: StrictStr = "prompts/default.txt"
    save_dir: StrictStr = "prompts"
    chat: StrictBool = False
    system: StrictStr = ""


class ServerTable(_Table):
    url: StrictStr = ""
    model: StrictStr = ""
    # Seconds, above 0 (strict floats take TOML's 5 as 5.0, never true): nan, inf or
    # 1e308 reached httpx and the socket layer as a traceback (an overflow) or a wait for
    # ever. An hour to connect and a day for one answer are far beyond any real server
    # and still plain numbers to every layer.
    connect_timeout: float = _seconds(5.0, 3600.0)
    read_timeout: float = _seconds(120.0, 86400.0)
    # Extra tries after a dropped connection; more than 100 is a typo, not a policy.
    retries: StrictInt = _int(2, 0, 100)


class AttributionTable(_Table):
    # A typo such as 320000 is refused rather than run for hours.
    n_steps: StrictInt = _int(32, 1, 4096)
    baseline: StrictStr = "mean-keep-first"  # names checked by AttributionSettings.check_baseline


def _typed(kind: str, default: Any = None) -> Any:
    return Field(default, json_schema_extra={"kind": kind})


Strings = StrictStr | list[StrictStr]


class SamplingTable(_Table):
    """Types only: the ranges are SamplingSettings' (the same sentence as for a flag)."""

    preset: StrictStr = "model"
    temperature: float | None = None
    top_k: StrictInt | None = _typed("an integer")
    top_p: float | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: StrictInt | None = _typed("an integer")
    max_tokens: StrictInt = _int(256, 1)
    stop: Strings = _typed("a string or a list of strings", ())
    autoplay_delay: float = 0.0  # seconds between autoplay steps (range: SamplingConfig's)


class TreeTable(_Table):
    """Types only: the ranges are TreeSettings' (shared with the tree flags)."""

    t_min: float | None = None
    t_max: float | None = None
    q_limit: StrictInt | None = _typed("an integer")
    max_depth: StrictInt | None = _typed("an integer")
    max_nodes: StrictInt | None = _typed("an integer")
    batch: StrictInt | None = _typed("an integer")
    cache_mib: float | None = None
    stop: Strings = _typed("a string or a list of strings", ())


class ConfigFile(_Table):
    model: ModelTable = Field(default_factory=ModelTable)
    display: DisplayTable = Field(default_factory=DisplayTable)
    prompts: PromptsTable = Field(default_factory=PromptsTable)
    keys: dict[StrictStr, StrictStr] = Field(default_factory=dict, json_schema_extra={
        "kind": 'a table of binding = "key,key"'})
    sampling: SamplingTable = Field(default_factory=SamplingTable)
    server: ServerTable = Field(default_factory=ServerTable)
    tree: TreeTable = Field(default_factory=TreeTable)
    attribution: AttributionTable = Field(default_factory=AttributionTable)


_KIND = {bool: "true or false", float: "a number", int: "an integer", str: "a string"}
_SECTIONS = tuple(ConfigFile.model_fields)


def _field(loc: tuple):
    """The pydantic FieldInfo a location points at (None: a key inside a free table)."""
    model, info = ConfigFile, None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return info if isinstance(part, int) or part in ("str", "int", "float", "bool") else None
        info = fields[part]
        model = info.annotation
    return info


def _kind(info, value) -> str:
    extra = (info.json_schema_extra or {}) if info is not None else {}
    if "kind" in extra:
        return extra["kind"]
    if info is not None and isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
        return _SECTION
    types = set(get_args(info.annotation) or (info.annotation,)) if info is not None else set()
    types = {get_args(t)[0] if get_args(t) else t for t in types}  # Annotated[int, Strict()]
    return next((kind for t, kind in _KIND.items() if t in types), "a string")


def _allowed(info) -> str:
    """What a number may be, from the field's bounds: "between 1 and 4096"..."""
    kind = _kind(info, None)
    bounds = _bounds(info)
    return bounds if kind == "an integer" or bounds == "a finite number" else f"{kind} {bounds}"


def _bounds(info) -> str:
    bounds = {type(m).__name__: m for m in (info.metadata if info is not None else ())}
    low = bounds.get("Ge") and bounds["Ge"].ge
    above = bounds.get("Gt") and bounds["Gt"].gt
    high = bounds.get("Le") and bounds["Le"].le
    if above is not None and above is not False and high is not None:
        return f"above {above:g} and at most {high:g}"
    if low is not None and low is not False and high is not None:
        return f"between {low} and {high}"
    if low is not None and low is not False:
        return f"at least {low}"
    return "a finite number"


def key_text(key: object) -> str:
    """A key as the message shows it: plain when it is a plain name, else quoted with its
    escapes (a key may hold a newline, and the message must stay one line)."""
    text = str(key)
    return text if re.fullmatch(r"[\w.\-]+", text, flags=re.ASCII) else json.dumps(text)


def _show(value) -> str:
    """The value as the file wrote it, short: true not True, nan not float('nan')."""
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value) if isinstance(value, float) and not math.isfinite(value) else repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def first_problem(error: ValidationError, where: str = "config.toml: ") -> str:
    """One sentence for the first thing wrong: the key, what it should be, what it is."""
    e = error.errors(include_url=False)[0]
    loc = tuple(p for p in e["loc"] if p not in ("function-after", "union"))
    # A union reports each branch; keep the path up to the key itself.
    keys = [p for p in loc if isinstance(p, str) and p not in ("str", "int", "float", "bool",
                                                                "dict[str,union[str,int]]")]
    value = e.get("input")
    if e["type"] == "extra_forbidden":
        if len(keys) == 1:
            return f"{where}unknown section [{key_text(keys[0])}]."
        return f"{where}unknown key {'.'.join(map(key_text, keys))}."
    name = ".".join(map(key_text, keys))
    if len(keys) == 1 and keys[0] in _SECTIONS:
        return f"{where}[{name}] should be {_kind(_field(tuple(keys)), value)}, not {_show(value)}."
    info = _field(tuple(keys))
    if info is None and len(keys) >= 2:  # a key inside a table of free keys (parts, keys...)
        parent = _field(tuple(keys[:-1]))
        what = ((parent.json_schema_extra or {}) if parent is not None else {}).get("value", "a string")
        return f"{where}{name} should be {what}, not {_show(value)}."
    if e["type"] in ("greater_than_equal", "greater_than", "less_than_equal", "finite_number"):
        return f"{where}{name} must be {_allowed(info)}, not {_show(value)}."
    return f"{where}{name} should be {_kind(info, value)}, not {_show(value)}."


def check_shape(data: dict, where: str = "config.toml: ") -> ConfigFile:
    """The file's tables, typed and in range; ValueError (one sentence) otherwise."""
    try:
        return ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise ValueError(first_problem(exc, where)) from None
