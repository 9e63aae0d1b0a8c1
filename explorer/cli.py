"""Command line: parse flags, load settings, run the app, or a headless subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import replace
from pathlib import Path

from explorer.config import ConfigError, Settings, load_settings
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
                        help='hub id or local folder; overrides config.toml ("embedded" = built-in)')
    parser.add_argument("--server", metavar="URL",
                        help="use a vLLM or llama.cpp server (http[s]://host:port) instead of a local model")
    parser.add_argument("--bf16", action="store_true", help="load the model in bfloat16")
    parser.add_argument("--config", type=Path, metavar="TOML", help=argparse.SUPPRESS)
    parser.set_defaults(layer_prob=False)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="token-explorer",
        description="Look inside a causal language model one token at a time. "
                    "Subcommand: trace (a per-token report; trace --help).",
    )
    parser.add_argument("--input", "-i", type=Path, metavar="FILE",
                        help="open this prompt (.txt, or a saved .json) instead of the default")
    add_model_flags(parser)
    parser.add_argument("--layer_prob", "--layer-prob", action="store_true", dest="layer_prob",
                        help="enable logit-lens layer views (p cycles them)")
    add_tree_flags(parser)  # for `b` in the app
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """config.toml with the command line on top. Raises ConfigError."""
    settings = load_settings(args.config)
    model = settings.model
    if args.model:
        model = replace(model, name=args.model)
    if args.bf16:
        model = replace(model, dtype="bfloat16")
    server = settings.server
    if getattr(args, "server", None):
        server = replace(server, url=args.server)
    if server.url and args.model:  # --model names the served model on a server
        server = replace(server, model=args.model)
    try:
        tree = tree_settings_from_args(args, settings.tree)
    except TreeSettingsError as exc:
        raise ConfigError(str(exc)) from exc
    return replace(settings, model=model, server=server, layer_prob=args.layer_prob, tree=tree)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    args = parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"token-explorer: {exc}", file=sys.stderr)
        return 2
    from explorer.ui.app import TokenExplorerApp  # Textual import only when we run the UI

    app = TokenExplorerApp(settings, input_path=args.input)
    app.run()
    if app.start_error:
        print(f"token-explorer: {app.start_error}", file=sys.stderr)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
