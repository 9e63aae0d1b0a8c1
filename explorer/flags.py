"""The flags the app, `trace` and `tree` share, each defined once, and how they land on
the settings (config.toml with the command line on top).

explorer.cli builds one parser from these helpers: the app's flags on the top level, and a
subparser per command, each taking the helpers that make sense for it. The sampler's knob
flags come from explorer.sampling (they are generated from its list of knobs).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from explorer.backend.types import ATTRIBUTION_BASELINES
from explorer.config import (DEVICE_MAP_STRATEGIES, DTYPE_NAMES, ConfigError, Settings,
                             check_device_map, load_settings)
from explorer.sampling import SamplingError, add_sampling_flags, sampling_overrides, sampling_preset
from explorer.tree.rule import TreeSettings, TreeSettingsError


TREE_FLAGS = {  # flag -> TreeSettings field
    "--t-min": "t_min", "--t-max": "t_max", "--q-limit": "q_limit", "--max-depth": "max_depth",
    "--max-nodes": "max_nodes", "--batch": "batch", "--cache-mib": "cache_mib",
}


def add_prompt_flags(parser: argparse.ArgumentParser, *, prompt_help: str) -> None:
    """Which prompt opens: --prompt/-p TEXT or --input/-i FILE, wrapped by --chat [TEXT]
    and --system TEXT in the model's chat template, with --prefix TEXT forced after it."""
    group = parser.add_argument_group("prompt")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--prompt", "-p", metavar="TEXT",
                        help="the prompt text (with --chat: the user message)")
    source.add_argument("--input", "-i", type=Path, metavar="FILE",
                        help=f"read the prompt from a .txt, or a saved .json (its exact token ids); {prompt_help}")
    group.add_argument("--chat", nargs="?", const=True, default=None, metavar="TEXT",
                       help="wrap the prompt as a user message in the model's chat template "
                            "(--chat TEXT = --chat --prompt TEXT; config.toml [prompts] chat); "
                            "a model without a template gets the plain prompt, with a warning")
    group.add_argument("--system", metavar="TEXT", default=None,
                       help="system message for --chat (config.toml [prompts] system)")
    group.add_argument("--prefix", metavar="TEXT", default=None,
                       help="text forced after the prompt (or the chat template) before any "
                            "token is generated; its tokens count as prompt, marked forced")


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Which model, where and how: --model, --server, --bf16/--dtype, --device, --device-map
    and the hidden --config."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", metavar="ID_OR_DIR",
                       help='hub id, local folder, or a built-in model: "smollm2" (the default) '
                            'or "tiny"; overrides config.toml')
    group.add_argument("--server", "--base-url", dest="server", metavar="URL",
                       help="use a vLLM or llama.cpp server (http[s]://host:port, a trailing /v1 "
                            "is fine) instead of a local model; --base-url is Token Tracer's name")
    group.add_argument("--bf16", action="store_true", help="load the model in bfloat16 (= --dtype bfloat16)")
    group.add_argument("--dtype", choices=DTYPE_NAMES,
                       help='weights dtype ("auto" = the checkpoint\'s own); overrides config.toml')
    group.add_argument("--device", metavar="NAME",
                       help='where the model runs: "auto" (the default), "cpu", "cuda", "cuda:1", "mps"')
    group.add_argument("--device-map", "--device_map", dest="device_map", metavar="MAP",
                       help="spread a model too big for one device over the GPUs, the CPU "
                            f"and disk with accelerate: {', '.join(DEVICE_MAP_STRATEGIES)}")
    group.add_argument("--config", type=Path, metavar="TOML", help=argparse.SUPPRESS)
    parser.set_defaults(layer_prob=False)


def add_autoplay_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("autoplay")
    group.add_argument("--max-tokens", type=int, metavar="N", default=None,
                       help="autoplay (g) stops after N tokens (default 256)")
    group.add_argument("--stop", action="append", metavar="TEXT", default=None,
                       help="autoplay stops when the text it wrote contains TEXT (repeatable; \\n = newline)")


def add_tree_flags(parser: argparse.ArgumentParser) -> None:
    """The [tree] settings as flags (each overrides config.toml)."""
    group = parser.add_argument_group("tree settings (override config.toml's [tree])")
    for flag, name in TREE_FLAGS.items():
        kind = float if name.startswith("t_") or name == "cache_mib" else int
        group.add_argument(flag, type=kind, dest=f"tree_{name}", metavar="N",
                           help=f"{name} (default {getattr(TreeSettings(), name)})")
    group.add_argument("--tree-stop", action="append", dest="tree_stop", metavar="TEXT",
                       help="a path ends when its text contains TEXT (repeatable)")


def add_attribution_flags(parser: argparse.ArgumentParser) -> None:
    """Integrated gradients' step count and baseline, over config.toml's [attribution]."""
    group = parser.add_argument_group("attribution")
    group.add_argument("--attribution-steps", type=int, metavar="N", default=None,
                       help="integrated gradients: the steps along the path to start with; "
                            "intervals are halved where the scores do not add up, until "
                            "within 2%% of Δ log p or 512 steps (default 32, config.toml "
                            "[attribution] n_steps)")
    group.add_argument("--attribution-baseline", metavar="NAME", default=None,
                       help="integrated gradients: where the path starts: "
                            f"{', '.join(ATTRIBUTION_BASELINES)} (default {ATTRIBUTION_BASELINES[0]}, config.toml "
                            "[attribution] baseline; docs/attribution.md says which to use when)")


def add_session_flags(parser: argparse.ArgumentParser) -> None:
    """Keeping the session (explorer/session/keep.py): --resume [PATH], --session PATH."""
    group = parser.add_argument_group("session")
    group.add_argument("--resume", nargs="?", const=True, default=None, metavar="PATH",
                       help="reopen the last session exactly as it was (prompts, position, layer, "
                            "sampler, pins, constraint, model): the model's own with --model, "
                            "else the latest; or the session file PATH")
    group.add_argument("--session", type=Path, metavar="PATH",
                       help="save this session to PATH (on quit and every few seconds) instead of "
                            "the model's file in the cache folder")


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """--html PATH (one self-contained page: explorer/report) and the layer it colours by."""
    from explorer.report.data import LAYERS, NO_LAYER

    group = parser.add_argument_group("report")
    group.add_argument("--html", type=Path, metavar="PATH",
                       help="also write a self-contained HTML report (opens in any browser, "
                            "no network): the prompt coloured, hover for each token's numbers")
    group.add_argument("--html-layer", choices=[*LAYERS, NO_LAYER], default="probability",
                       help="the colour layer the report opens with (default probability; "
                            "the page can switch)")


def add_compare_flags(parser: argparse.ArgumentParser) -> None:
    """The second backend of a model comparison (the app and `compare`): another model, the
    same model at another dtype, or a server; the other model flags (device...) are A's."""
    group = parser.add_argument_group("compare with a second model (B)")
    group.add_argument("--compare", metavar="ID_OR_DIR", default=None,
                       help="model B: hub id, local folder or built-in name (with --compare-server: "
                            "the served model's name)")
    group.add_argument("--compare-dtype", choices=DTYPE_NAMES, default=None,
                       help="model B's dtype (alone: model A's weights at this dtype)")
    group.add_argument("--compare-server", metavar="URL", default=None,
                       help="model B on a vLLM or llama.cpp server; the KL is then a lower bound")


def compare_asked(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) for name in ("compare", "compare_dtype", "compare_server"))


def local_model_b(settings: Settings, *, name: str | None = None, dtype: str | None = None,
                  named_by: str = "") -> Settings:
    """Model B as a local model: model A's settings with another model name and/or dtype
    (None: A's), no server, and no per-layer work (a comparison needs none). --compare and
    the app's model picker for B both come here."""
    model = settings.model
    if name:
        model = replace(model, name=name, named_by=named_by)
    if dtype:
        model = replace(model, dtype=dtype)
    return replace(settings, model=model, server=replace(settings.server, url="", model=""),
                   layer_prob=False)


def compare_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """Model B's settings: model A's (settings) with --compare, --compare-dtype and
    --compare-server on top. Raises ConfigError when none of them was given."""
    if not compare_asked(args):
        raise ConfigError("Name model B with --compare MODEL, --compare-dtype DTYPE or --compare-server URL.")
    if not args.compare_server:
        return local_model_b(settings, name=args.compare, dtype=args.compare_dtype, named_by="--compare")
    if args.compare_dtype:
        raise ConfigError("--compare-dtype applies to a local model B, not to --compare-server "
                          "(the server chose its own dtype).")
    server = replace(settings.server, url=args.compare_server, model=args.compare or "")
    return replace(settings, server=server, layer_prob=False)


# -- the flags on top of config.toml ---------------------------------------------------------

def prompt_from_args(args: argparse.Namespace) -> None:
    """--chat TEXT becomes --chat --prompt TEXT (in place). Raises ConfigError."""
    chat = getattr(args, "chat", None)
    if isinstance(chat, str):
        if args.prompt is not None or args.input is not None:
            raise ConfigError("Give the prompt once: --chat TEXT, or --chat with --prompt TEXT or -i FILE.")
        args.prompt, args.chat = chat, True
    if args.prompt is not None and not args.prompt.strip():
        raise ConfigError("The prompt is empty; give some text with --prompt.")
    if getattr(args, "prefix", None) == "":
        raise ConfigError("The --prefix text is empty; give the text to force after the prompt.")


def _sampling(settings: Settings, args: argparse.Namespace) -> Settings:
    from explorer.session.sampler import unescape

    try:
        overrides = sampling_overrides(args)
    except SamplingError as exc:
        raise ConfigError(str(exc)) from None
    sampling = settings.sampling
    changes: dict = {"values": {**sampling.values, **overrides}}
    if sampling_preset(args) is not None:
        changes["preset"] = sampling_preset(args)
    if getattr(args, "max_tokens", None) is not None:
        if args.max_tokens < 1:
            raise ConfigError(f"--max-tokens must be 1 or more, not {args.max_tokens}.")
        changes["max_tokens"] = args.max_tokens
    if getattr(args, "stop", None):
        changes["stop"] = tuple(unescape(s) for s in args.stop if s)
    return replace(settings, sampling=replace(sampling, **changes))


def _prompts(settings: Settings, args: argparse.Namespace) -> Settings:
    prompts = settings.prompts
    if getattr(args, "chat", None):
        prompts = replace(prompts, chat=True)
    if getattr(args, "system", None) is not None:
        prompts = replace(prompts, system=args.system)
    if getattr(args, "prefix", None):
        prompts = replace(prompts, prefix=args.prefix)
    return replace(settings, prompts=prompts)


def _model(settings: Settings, args: argparse.Namespace) -> Settings:
    model = settings.model
    if args.model:
        model = replace(model, name=args.model, named_by="--model")
    if args.bf16 and args.dtype not in (None, "bfloat16"):
        raise ConfigError(f"--bf16 and --dtype {args.dtype} ask for different dtypes; give one.")
    if args.bf16 or args.dtype:
        model = replace(model, dtype=args.dtype or "bfloat16")
    if getattr(args, "device", None):
        model = replace(model, device=args.device)
    if args.device_map:
        check_device_map(args.device_map, "--device-map")
        model = replace(model, device_map=args.device_map)
    server = settings.server
    if getattr(args, "server", None):
        server = replace(server, url=args.server)
    if server.url and args.model:  # --model names the served model on a server
        server = replace(server, model=args.model)
    return replace(settings, model=model, server=server, layer_prob=getattr(args, "layer_prob", False))


def _tree(settings: Settings, args: argparse.Namespace) -> Settings:
    table = {name: getattr(args, f"tree_{name}") for name in TREE_FLAGS.values()
             if getattr(args, f"tree_{name}", None) is not None}
    if getattr(args, "tree_stop", None):
        table["stop"] = list(args.tree_stop)
    try:
        return replace(settings, tree=TreeSettings.from_table(table, settings.tree)) if table else settings
    except TreeSettingsError as exc:
        raise ConfigError(str(exc)) from exc


def _attribution(settings: Settings, args: argparse.Namespace) -> Settings:
    chosen = settings.attribution
    steps = getattr(args, "attribution_steps", None)
    if steps is not None:
        chosen = replace(chosen, n_steps=steps).check("--attribution-steps")
    baseline = getattr(args, "attribution_baseline", None)
    if baseline is not None:
        chosen = replace(chosen, baseline=baseline).check_baseline("--attribution-baseline")
    return settings if chosen is settings.attribution else replace(settings, attribution=chosen)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """config.toml with every flag the parser knew on top, each applied once. Raises
    ConfigError (one sentence)."""
    settings = load_settings(args.config)  # checks its own counts (config.check_counts)
    for apply in (_model, _prompts, _sampling, _tree, _attribution):
        settings = apply(settings, args)
    return settings


__all__ = ["add_attribution_flags", "add_autoplay_flags", "add_compare_flags", "add_model_flags",
           "add_prompt_flags", "add_report_flags", "add_sampling_flags", "add_session_flags",
           "add_tree_flags", "compare_asked", "compare_settings", "local_model_b", "prompt_from_args",
           "settings_from_args"]
