"""Typed settings from config.toml. Every key is optional; unknown keys are refused so
that a typo does not silently fall back to a default."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from explorer.sampling.settings import SamplingConfig, SamplingError
from explorer.tree.rule import TreeSettings, TreeSettingsError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
EMBEDDED_MODEL_DIR = PACKAGE_DIR / "default_model"
EMBEDDED_NAME = "embedded"


class ConfigError(ValueError):
    """A settings file the user can fix; the message is one sentence for the screen."""


@dataclass(frozen=True)
class ModelSettings:
    name: str = EMBEDDED_NAME
    dtype: str = "float32"
    device: str = "auto"
    prefill_chunk: int = 256
    cache_size: int = 8
    parts: dict[str, str] = field(default_factory=dict)

    @property
    def path_or_id(self) -> str:
        """What to hand to from_pretrained: the embedded folder or the user's id/folder."""
        return str(EMBEDDED_MODEL_DIR) if self.name == EMBEDDED_NAME else self.name


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


@dataclass(frozen=True)
class ServerSettings:
    """A remote inference server (vLLM or llama.cpp) instead of a local model."""

    url: str = ""  # "" = run the model locally; else http(s)://host:port
    model: str = ""  # "" = the first model the server lists
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    retries: int = 2


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    prompts: PromptSettings = field(default_factory=PromptSettings)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    server: ServerSettings = field(default_factory=ServerSettings)
    tree: TreeSettings = field(default_factory=TreeSettings)  # [tree]: token trees
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
            raise ConfigError(f'config.toml: keys.{name} should be a string of keys such as "right,l".')
    return dict(table)


def _sampling(table: dict) -> SamplingConfig:
    try:
        return SamplingConfig.from_table(table)
    except SamplingError as exc:
        raise ConfigError(str(exc)) from exc


def _server(table: dict) -> ServerSettings:
    table = {k: float(v) if k.endswith("_timeout") and isinstance(v, int) and not isinstance(v, bool) else v
             for k, v in table.items()}
    server = _section(ServerSettings, table, "server")
    if server.connect_timeout <= 0 or server.read_timeout <= 0 or server.retries < 0:
        raise ConfigError("config.toml: server timeouts must be positive and retries not negative.")
    return server


def _tree(table: dict) -> TreeSettings:
    try:
        return TreeSettings.from_table(table)
    except TreeSettingsError as exc:
        raise ConfigError(str(exc) if str(exc).startswith("config.toml") else f"config.toml: {exc}") from exc


def load_settings(path: Path | None = None) -> Settings:
    """Read config.toml (default: the one beside main.py); a missing file means defaults."""
    path = path or REPO_DIR / "config.toml"
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config.toml is not valid TOML: {exc}.") from exc
    unknown = sorted(set(data) - {"model", "display", "prompts", "keys", "sampling", "server", "tree"})
    if unknown:
        raise ConfigError(f"config.toml: unknown section [{unknown[0]}].")
    model = dict(data.get("model", {}))
    parts = model.pop("parts", {})
    settings = Settings(
        model=replace(_section(ModelSettings, model, "model"), parts=dict(parts)),
        display=_section(DisplaySettings, data.get("display", {}), "display"),
        prompts=_section(PromptSettings, data.get("prompts", {}), "prompts"),
        keys=_keys(data.get("keys", {})),
        sampling=_sampling(data.get("sampling", {})),
        server=_server(data.get("server", {})),
        tree=_tree(data.get("tree", {})),
    )
    if settings.model.dtype not in ("float32", "bfloat16"):
        raise ConfigError('config.toml: model.dtype must be "float32" or "bfloat16".')
    if settings.model.device not in ("auto", "cpu", "cuda", "mps"):
        raise ConfigError('config.toml: model.device must be "auto", "cpu", "cuda" or "mps".')
    return settings
