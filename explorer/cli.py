"""Command line: one argparse parser with the app's flags and the `trace` and `tree`
subcommands (each with its own --help); loads the settings and runs the app or a command.

The flags the three share are defined once in explorer.flags; each command module adds
its own (trace: --max-new-tokens, --jsonl, constraints...; tree: --json, --jsonl) with
`add_arguments(parser)` and runs with `run_args(args)`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import replace
from pathlib import Path

from explorer.config import ConfigError
from explorer.errors import ExplorerError
from explorer.flags import (add_attribution_flags, add_autoplay_flags, add_compare_flags,
                            add_model_flags, add_prompt_flags, add_sampling_flags, add_session_flags,
                            add_tree_flags, compare_asked, compare_settings, prompt_from_args,
                            settings_from_args)

PROG = "token-explorer"
# `main.py NAME ...`: the subcommand NAME, run by its module's run_args(args).
SUBCOMMANDS = {
    "trace": "explorer.core.trace_command",
    "tree": "explorer.tree.cli",
    "compare": "explorer.compare.command",
}


class UsageError(ExplorerError, ValueError):
    """Bad command-line input to a command; str() is one sentence."""


class _Parser(argparse.ArgumentParser):
    """For a command, argparse's usage block + message becomes one sentence (UsageError);
    the app's own flags keep argparse's usage message."""

    command: str | None = None

    def error(self, message: str):
        if self.command is None:
            super().error(message)
        raise UsageError(f"{message[0].upper()}{message[1:]} (see {self.command} --help).")


def add_app_flags(parser: argparse.ArgumentParser) -> None:
    add_prompt_flags(parser, prompt_help="default: config.toml [prompts] default")
    add_model_flags(parser)
    parser.add_argument("--layer_prob", "--layer-prob", action="store_true", dest="layer_prob",
                        help="enable logit-lens layer views (p cycles them)")
    add_sampling_flags(parser)
    add_autoplay_flags(parser)
    add_tree_flags(parser)  # for `b` in the app
    add_attribution_flags(parser)  # for `i` in the app
    add_session_flags(parser)
    add_compare_flags(parser)  # model B beside A, for `V` in the app


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line. `command`: the subcommand being run, whose errors are one
    sentence even when the top level finds them (an unknown flag after it). With a command
    the top level takes no abbreviations: it reads every argument first, and would find
    trace's --attribution ambiguous with the app's --attribution-steps."""
    parser = _Parser(
        allow_abbrev=command is None,
        prog=PROG,
        description="Look inside a causal language model one token at a time. With no "
                    "command: the app. Each command has its own --help.",
    )
    parser.command = command
    add_app_flags(parser)
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND",
                                     parser_class=_Parser)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=module.SUMMARY, description=module.DESCRIPTION,
                                  prog=f"{PROG} {name}")
        sub.command = name
        module.add_arguments(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The app's flags (and a command's, when argv starts with one)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return build_parser(argv[0] if argv and argv[0] in SUBCOMMANDS else None).parse_args(argv)


def quiet_loading_bars() -> None:
    """No hub download or transformers "Loading weights" bars from a command: they go to
    stderr even when it is redirected, and our own messages say what is loading. Must run
    before transformers is imported (it reads this once); where it already is (a script or a
    test that imported it first), its switches are turned off directly."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def check_input(path: Path | None, flag: str = "Input file") -> None:
    """Refuse a --input that is missing or a folder before any model loads (ConfigError)."""
    if path is not None and not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"{flag} {path} {what}.")


def _resumed(args: argparse.Namespace):
    """The session --resume names, read before any model loads (ConfigError: one sentence)."""
    from explorer.session.keep import SessionFileError, session_from_args

    if args.resume is not None and (args.input is not None or args.prompt is not None):
        raise ConfigError("--resume opens the saved prompts; give it without --input or --prompt.")
    try:
        return session_from_args(args.resume, args.model)
    except SessionFileError as exc:
        raise ConfigError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    who = f"{PROG} {command}" if command else PROG
    if command:
        quiet_loading_bars()  # a command's own messages say what loads
    try:  # every setting and input is refused here, before the model loads
        args = build_parser(command).parse_args(argv)
        prompt_from_args(args)
        check_input(args.input)
        if command:
            return importlib.import_module(SUBCOMMANDS[command]).run_args(args)
        settings = settings_from_args(args)
        resume = _resumed(args)
        if resume is not None and not args.model and not args.server:  # the model it was saved with
            settings = replace(settings, model=replace(settings.model, name=resume.model))
        settings_b = compare_settings(settings, args) if compare_asked(args) else None
    except (UsageError, ConfigError) as exc:
        print(f"{who}: {exc}", file=sys.stderr)
        return 2
    from explorer.ui.app import TokenExplorerApp  # Textual import only when we run the UI
    from explorer.ui.signals import exit_on_signals

    app = TokenExplorerApp(settings, input_path=args.input, prompt_text=args.prompt, resume=resume,
                           keep_session=True, session_file=args.session, compare=settings_b)
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
