"""Sampler settings: one frozen value, validated with one sentence per bad value.

Torch-free, so config loading, the CLI and the settings panel can use it without a model.
Where the knobs start (lowest to highest precedence): the model's generation_config.json
(as transformers' `generate` reads it) or the neutral settings when it has none, then a
preset, then explicit keys in config.toml `[sampling]`, then command-line flags, then
changes made in the app's panel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace

from explorer.errors import ExplorerError


class SamplingError(ExplorerError, ValueError):
    """A sampler setting the user can fix; the message is one sentence for the screen."""


@dataclass(frozen=True)
class SamplingSettings:
    """The neutral defaults leave the model's distribution untouched (p_final == p_base)."""

    temperature: float = 1.0  # 0 means greedy: all mass on the most likely token
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1 = off
    min_p: float = 0.0  # 0 = off
    repetition_penalty: float = 1.0  # 1 = off; transformers' (CTRL) definition
    presence_penalty: float = 0.0  # OpenAI's definition, over appended tokens only
    frequency_penalty: float = 0.0  # OpenAI's definition, over appended tokens only
    seed: int | None = None  # None: the session picks one at random (and shows it)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_changes(self, **changes: object) -> SamplingSettings:
        """A copy with `changes` applied; values may be text (from a panel or a flag).
        Raises SamplingError naming the first bad value; self is never changed."""
        unknown = sorted(set(changes) - set(KNOBS))
        if unknown:
            raise SamplingError(f"'{unknown[0]}' is not a sampler setting; known ones are {', '.join(KNOBS)}.")
        parsed = {name: _parse(name, value) for name, value in changes.items()}
        return replace(self, **parsed)

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


KNOBS: tuple[str, ...] = tuple(f.name for f in fields(SamplingSettings))

# Human names for messages.
_LABEL = {
    "temperature": "Temperature", "top_k": "Top-k", "top_p": "Top-p", "min_p": "Min-p",
    "repetition_penalty": "The repetition penalty", "presence_penalty": "The presence penalty",
    "frequency_penalty": "The frequency penalty", "seed": "The seed",
}
_INTEGERS = {"top_k", "seed"}


def _number(name: str, value: object) -> float | int | None:
    label = _LABEL[name]
    if name == "seed" and (value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "random"))):
        return None
    if isinstance(value, bool):
        raise SamplingError(f"{label} must be a number, not {value!r}.")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if name in _INTEGERS else float(text)
        except ValueError:
            kind = "a whole number" if name in _INTEGERS else "a number"
            raise SamplingError(f"{label} must be {kind}, not {text!r}.") from None
    if not isinstance(value, (int, float)):
        raise SamplingError(f"{label} must be a number, not {value!r}.")
    if name in _INTEGERS:
        if isinstance(value, float) and not value.is_integer():
            raise SamplingError(f"{label} must be a whole number, not {value!r}.")
        return int(value)
    value = float(value)
    if not math.isfinite(value):
        raise SamplingError(f"{label} must be a finite number, not {value!r}.")
    return value


# Temperature (when not 0) and the repetition penalty divide or multiply fp32 logits. Far
# outside [1e-3, 1e3] the result leaves float32: 1e-300 rounds to 0 there, so the logits
# become inf or nan and p_final has no mass at all (the draw then failed after the model
# loaded). Inside it a logit of 100 stays within 1e5, and the ends already mean "the top
# token only" (1e-3) and "all but uniform" / "never repeat" (1e3): nothing is lost.
SCALE_MIN, SCALE_MAX = 1e-3, 1e3


def _scale_bad(v: float | None) -> bool:
    return v is not None and not SCALE_MIN <= v <= SCALE_MAX


def _parse(name: str, value: object) -> float | int | None:
    """Convert and range-check one knob; one sentence when it is wrong."""
    v = _number(name, value)
    if name == "top_k" and v == -1:
        v = 0  # -1 is vLLM's and Token Tracer's way to say "off" (their default)
    bad = {
        "temperature": v is not None and v != 0 and _scale_bad(v)
        and f"must be 0 (greedy) or between {SCALE_MIN:g} and {SCALE_MAX:g}",
        "top_k": v is not None and v < 0 and "must be 0 or -1 (off) or more",
        "top_p": v is not None and not 0 < v <= 1 and "must be above 0 and at most 1 (1 = off)",
        "min_p": v is not None and not 0 <= v <= 1 and "must be between 0 (off) and 1",
        "repetition_penalty": _scale_bad(v)
        and f"must be between {SCALE_MIN:g} and {SCALE_MAX:g} (1 = off)",
        "presence_penalty": v is not None and not -2 <= v <= 2 and "must be between -2 and 2 (0 = off)",
        "frequency_penalty": v is not None and not -2 <= v <= 2 and "must be between -2 and 2 (0 = off)",
        "seed": v is not None and v < 0 and "must be 0 or more",
    }[name]
    if bad:
        raise SamplingError(f"{_LABEL[name]} {bad}, not {value!r}.")
    return v


NEUTRAL = SamplingSettings()

# Presets set every knob except the seed.
PRESETS: dict[str, SamplingSettings] = {
    "neutral": NEUTRAL,
    "greedy": SamplingSettings(temperature=0.0),
    # Qwen2.5-Instruct's shipped generation settings: a little cooler and a nucleus cut.
    "balanced": SamplingSettings(temperature=0.7, top_p=0.8, repetition_penalty=1.05),
    # Hot, with a min-p floor that scales with the top token's probability (Nguyen et al.
    # 2024, "min-p sampling"): diverse when the model is unsure, still sharp when it is sure.
    "creative": SamplingSettings(temperature=1.2, min_p=0.05),
    # next-token-visualization's "reliable" preset, as its interface defines it.
    "reliable": SamplingSettings(temperature=0.25, top_p=0.70, repetition_penalty=1.10),
}


def apply_preset(settings: SamplingSettings, name: str) -> SamplingSettings:
    """Every knob from preset `name`; the seed is kept."""
    preset = PRESETS.get(name)
    if preset is None:
        raise SamplingError(f"There is no sampler preset '{name}'; choose one of {', '.join(PRESETS)}.")
    return replace(preset, seed=settings.seed)


MAX_DELAY = 10.0  # seconds: slower than this, stepping by hand is the better tool


def check_delay(value: object, where: str) -> float:
    """An autoplay step delay in seconds, 0 to MAX_DELAY; text from a panel is parsed.
    Raises SamplingError naming `where`."""
    try:
        delay = float(value.strip()) if isinstance(value, str) else value
    except ValueError:
        delay = None
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not math.isfinite(delay) \
            or not 0 <= delay <= MAX_DELAY:
        raise SamplingError(f"{where} must be a number of seconds from 0 to {MAX_DELAY:g}, not {value!r}.")
    return float(delay)


def check_overrides(table: Mapping[str, object], where: str) -> dict[str, object]:
    """Validate a partial table of knobs (config.toml [sampling], CLI flags); return the
    parsed values. The message names `where` so the user knows which file or flag."""
    try:
        checked = NEUTRAL.with_changes(**dict(table))
    except SamplingError as exc:
        raise SamplingError(f"{where}: {exc}") from None
    return {name: getattr(checked, name) for name in table}


# transformers' own fallbacks for keys a generation_config leaves unset
# (GenerationConfig._get_default_generation_params in transformers 5): note top_k = 50.
_TRANSFORMERS_DEFAULTS = {"temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None,
                          "repetition_penalty": 1.0}


def from_generation_config(config: object | None) -> SamplingSettings:
    """The settings `model.generate(ids)` would sample with, given a GenerationConfig
    (or None: no generation_config.json, the neutral settings). do_sample false means
    greedy, exactly as in generate (which still applies the repetition penalty)."""
    if config is None:
        return NEUTRAL
    values = {}
    for key, fallback in _TRANSFORMERS_DEFAULTS.items():
        value = getattr(config, key, None)
        values[key] = fallback if value is None else value
    if values["min_p"] is None:
        values["min_p"] = 0.0
    if not getattr(config, "do_sample", False):
        values.update(temperature=0.0)
    # A model's file is not the user's typo: a value past SCALE_MIN/SCALE_MAX is taken to
    # its limit (a temperature below 1e-3 already puts all mass on the top token, so it is
    # greedy) rather than refusing to open the model.
    t, r = values["temperature"], values["repetition_penalty"]
    if _is_real(t) and 0 < t < SCALE_MIN:
        values["temperature"] = 0.0
    elif _is_real(t) and t > SCALE_MAX:
        values["temperature"] = SCALE_MAX
    if _is_real(r) and r > 0:
        values["repetition_penalty"] = min(max(r, SCALE_MIN), SCALE_MAX)
    try:
        return NEUTRAL.with_changes(**values)
    except SamplingError as exc:
        raise SamplingError(f"The model's generation_config.json: {exc}") from None


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def model_defaults(model: object) -> SamplingSettings:
    """from_generation_config for a loaded transformers model, or the neutral settings when
    the model has no generation_config.json (transformers then builds one from the model's
    config and marks it `_from_model_config`; it carries no sampling advice)."""
    config = getattr(model, "generation_config", None)
    if config is None or getattr(config, "_from_model_config", False):
        return NEUTRAL
    return from_generation_config(config)


def layered(base: SamplingSettings, preset: str | None = None,
            *overrides: Mapping[str, object]) -> SamplingSettings:
    """base, then a preset (None or "model": none), then each table of explicit keys."""
    settings = base if preset in (None, "model") else apply_preset(base, preset)
    for table in overrides:
        settings = settings.with_changes(**dict(table))
    return settings


@dataclass(frozen=True)
class SamplingConfig:
    """config.toml [sampling]: where the knobs start and the ones set explicitly."""

    preset: str = "model"  # "model" (generation_config.json) or a name in PRESETS
    values: Mapping[str, object] = field(default_factory=dict)
    max_tokens: int = 256  # autoplay stops after this many tokens
    stop: tuple[str, ...] = ()  # autoplay stops once the produced text contains one
    delay: float = 0.0  # seconds autoplay waits between steps (next-token-visualization's speed)

    @classmethod
    def from_table(cls, table: Mapping[str, object], where: str = "config.toml [sampling]") -> SamplingConfig:
        table = dict(table)
        preset = table.pop("preset", "model")
        if preset != "model" and preset not in PRESETS:
            raise SamplingError(f"{where}: preset must be \"model\" or one of {', '.join(PRESETS)}, not {preset!r}.")
        max_tokens = table.pop("max_tokens", 256)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise SamplingError(f"{where}: max_tokens must be a whole number of 1 or more, not {max_tokens!r}.")
        delay = table.pop("autoplay_delay", 0.0)
        delay = check_delay(delay, f"{where}: autoplay_delay")
        stop = table.pop("stop", [])
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise SamplingError(f"{where}: stop must be a list of non-empty strings, not {stop!r}.")
        return cls(preset=preset, values=check_overrides(table, where), max_tokens=max_tokens,
                   stop=tuple(stop), delay=delay)

    def resolve(self, model_defaults: SamplingSettings, *overrides: Mapping[str, object]) -> SamplingSettings:
        """model defaults -> preset -> these values -> each further table (CLI flags...)."""
        return layered(model_defaults, self.preset, self.values, *overrides)
