"""Command line: parse flags, load settings, run the app, or a headless subcommand."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import replace
from pathlib import Path

from explorer.attribution_flags import add_attribution_steps_flag, attribution_from_args
from explorer.config import (DEVICE_MAP_STRATEGIES, DTYPE_NAMES, ConfigError, Settings,
                             check_device_map, load_settings)
from explorer.sampling import SamplingError, add_sampling_flags, sampling_overrides, sampling_preset
from explorer.tree.cli import add_tree_flags, tree_settings_from_args
from explorer.tree.rule import TreeSettingsError


# `main.py NAME ...` runs module NAME's main(argv) instead of the app (argv without NAME).
SUBCOMMANDS = {
    "trace": "explorer.core.trace_command",
    "tree": "explorer.tree.cli",
}


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """--model, --bf16 and the hidden --config: shared by the app and the subcommands."""
    parser.add_argument("--model", metavar="ID_OR_DIR",
                        help='hub id, local folder, or a built-in model: "smollm2" (the default) '
                             'or "tiny"; overrides config.toml')
    parser.add_argument("--server", metavar="URL",
                        help="use a vLLM or llama.cpp server (http[s]://host:port) instead of a local model")
    parser.add_argument("--bf16", action="store_true", help="load the model in bfloat16 (= --dtype bfloat16)")
    parser.add_argument("--dtype", choices=DTYPE_NAMES,
                        help='weights dtype ("auto" = the checkpoint\'s own); overrides config.toml')
    parser.add_argument("--device-map", "--device_map", dest="device_map", metavar="MAP",
                        help="spread a model too big for one device over the GPUs, the CPU "
                             f"and disk with accelerate: {', '.join(DEVICE_MAP_STRATEGIES)}")
    parser.add_argument("--config", type=Path, metavar="TOML", help=argparse.SUPPRESS)
    parser.set_defaults(layer_prob=False)


def quiet_loading_bars() -> None:
    """No hub download or transformers "Loading weights" bars from a command: they go to
    stderr even when it is redirected, and our own messages say what is loading. Must run
    before transformers is imported (it reads this once)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def check_input(path: Path | None, flag: str = "Input file") -> None:
    """Refuse a --input that is missing or a folder before any model loads (ConfigError)."""
    if path is not None and not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"{flag} {path} {what}.")


def check_prompt_text(text: str | None) -> None:
    if text is not None and not text.strip():
        raise ConfigError("The prompt is empty; give some text with --prompt.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="token-explorer",
        description="Look inside a causal language model one token at a time. "
                    "Subcommand: trace (a per-token report; trace --help).",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", "-i", type=Path, metavar="FILE",
                        help="open this prompt (.txt, or a saved .json) instead of the default")
    source.add_argument("--prompt", metavar="TEXT",
                        help="open this text as the prompt (with --chat: the user message)")
    add_model_flags(parser)
    parser.add_argument("--layer_prob", "--layer-prob", action="store_true", dest="layer_prob",
                        help="enable logit-lens layer views (p cycles them)")
    add_chat_flags(parser)
    add_sampling_flags(parser)
    add_autoplay_flags(parser)
    add_tree_flags(parser)  # for `b` in the app
    add_attribution_steps_flag(parser)  # for `i` in the app
    return parser.parse_args(argv)


def add_chat_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chat", action="store_true", default=None,
                        help="wrap the prompt as a user message in the model's chat template")
    parser.add_argument("--system", metavar="TEXT", default=None,
                        help="system message for --chat")


def add_autoplay_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("autoplay")
    group.add_argument("--max-tokens", type=int, metavar="N", default=None,
                       help="autoplay (g) stops after N tokens (default 256)")
    group.add_argument("--stop", action="append", metavar="TEXT", default=None,
                       help="autoplay stops when the text it wrote contains TEXT (repeatable; \\n = newline)")


def sampling_from_args(settings: Settings, args: argparse.Namespace) -> Settings:
    """The sampler, autoplay and chat flags on top of config.toml. Raises ConfigError."""
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
    prompts = settings.prompts
    if getattr(args, "chat", None):
        prompts = replace(prompts, chat=True)
    if getattr(args, "system", None) is not None:
        prompts = replace(prompts, system=args.system)
    return replace(settings, sampling=replace(sampling, **changes), prompts=prompts)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """config.toml with the command line on top. Raises ConfigError."""
    settings = load_settings(args.config)  # checks its own counts (config.check_counts)
    model = settings.model
    if args.model:
        model = replace(model, name=args.model, named_by="--model")
    if args.bf16 and args.dtype not in (None, "bfloat16"):
        raise ConfigError(f"--bf16 and --dtype {args.dtype} ask for different dtypes; give one.")
    if args.bf16 or args.dtype:
        model = replace(model, dtype=args.dtype or "bfloat16")
    if args.device_map:
        check_device_map(args.device_map, "--device-map")
        model = replace(model, device_map=args.device_map)
    server = settings.server
    if getattr(args, "server", None):
        server = replace(server, url=args.server)
    if server.url and args.model:  # --model names the served model on a server
        server = replace(server, model=args.model)
    try:
        tree = tree_settings_from_args(args, settings.tree)
    except TreeSettingsError as exc:
        raise ConfigError(str(exc)) from exc
    settings = replace(settings, model=model, server=server, layer_prob=args.layer_prob, tree=tree)
    return attribution_from_args(sampling_from_args(settings, args), args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    args = parse_args(argv)
    try:  # every setting and input is refused here, before the model loads
        check_input(args.input)
        check_prompt_text(args.prompt)
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"token-explorer: {exc}", file=sys.stderr)
        return 2
    from explorer.ui.app import TokenExplorerApp  # Textual import only when we run the UI
    from explorer.ui.signals import exit_on_signals

    app = TokenExplorerApp(settings, input_path=args.input, prompt_text=args.prompt)
    with exit_on_signals(app):  # SIGTERM / SIGHUP leave through Textual's shutdown
        app.run()
    # A request still waiting on a server must not keep the process alive after quit:
    # closing the clients wakes the waiting workers at once (explorer/remote/client.py).
    remote = sys.modules.get("explorer.remote.client")
    if remote is not None:
        remote.close_all()
    if app.start_error:
        print(f"token-explorer: {app.start_error}", file=sys.stderr)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
