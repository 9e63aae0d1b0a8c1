"""`uv run main.py tree ...`: grow a token tree headless, print it, write JSON / JSONL.

Shares the app's core: the same flags (explorer.flags), backend factory, way to open a
prompt (explorer.session.start.open_prompt: --chat, --system, --prefix, [prompts] chat)
and explorer.tree search. The tree grows from after the whole prompt, forced ids included.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "token-explorer tree"
SUMMARY = "grow a tree of a prompt's likely continuations and print it (tree --help)"
DESCRIPTION = "Grow a tree of the likely continuations of a prompt and print it."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """tree's flags: the shared prompt, model and tree flags, and where to write."""
    from explorer.flags import add_model_flags, add_prompt_flags, add_report_flags, add_tree_flags

    add_prompt_flags(parser, prompt_help="default: config.toml [prompts] default")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the tree as JSON here")
    parser.add_argument("--jsonl", type=Path, metavar="PATH",
                        help="write the leaf paths as JSONL here (one line per leaf)")
    add_model_flags(parser)
    add_tree_flags(parser)
    add_report_flags(parser)
    add_tree_format_flag(parser)


def add_tree_format_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("explorer", "gemma"), default="explorer", dest="format",
                        help="layout of the --json file: explorer (the default) or gemma "
                             "(Gemma's token-tree visualiser; explorer/tree/gemma.py)")


def run_args(args: argparse.Namespace) -> int:
    """`main.py tree ...` parsed by explorer.cli. Raises ConfigError for a setting the user
    can fix before any model loads (cli.main prints it)."""
    from explorer.cli import check_input
    from explorer.config import ConfigError
    from explorer.flags import settings_from_args

    settings = settings_from_args(args)  # the [tree] flags on config.toml, once
    if args.format == "gemma" and not args.json:
        raise ConfigError("--format gemma is the layout of the --json file; give --json PATH too.")
    if args.prompt is None and args.input is None:
        check_input(settings.resolve(settings.prompts.default), "The default prompt")
    try:
        return run(settings, args)
    except KeyboardInterrupt:  # while loading, or a second Ctrl-C while growing
        print(f"{PROG}: interrupted; nothing was written.", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    """`tree` alone: the same as `main.py tree ARGV`."""
    from explorer.cli import main as cli_main

    return cli_main(["tree", *(sys.argv[1:] if argv is None else argv)])


def grow(backend, settings, *, text: str | None, path: Path | None, default: Path | None, warn):
    """(the opened prompt, its records, the TokenTree grown after it) on an open backend: the one way
    `tree` and the Python API's `tree` grow one. warn(text): each warning sentence. Ctrl-C
    while the tree grows stops the search and keeps the tree grown so far (marked
    incomplete); before that (loading the prompt) it interrupts as usual. Raises
    Unavailable on a backend without trees, PromptFileError, BackendError; the backend
    keeps nothing of it afterwards."""
    from explorer.backend import Feature
    from explorer.interrupt import soft_interrupt
    from explorer.session.start import open_prompt

    backend.capabilities.require(Feature.TREES)
    start = open_prompt(backend, settings.prompts, text=text, path=path, default=default, strict=True)
    for warning in start.warnings:  # e.g. no chat template: the plain prompt, as in the app
        warn(warning)
    try:
        records = backend.sync("tree", start.ids)
        with soft_interrupt() as interrupted:
            return start, records, backend.grow_tree("tree", settings.tree, cancelled=interrupted)
    finally:
        backend.forget("tree")


def _write_html(args: argparse.Namespace, backend, records, tree) -> None:
    """The prompt and its tree as one HTML page (explorer.report). Raises OSError."""
    from explorer.report.build import write_report
    from explorer.report.data import tree_data

    settings = {"tree": f"{tree.size} nodes, search {tree.stopped}", "forward passes": tree.forward_passes}
    write_report(args.html, backend, records, title=f"tree · {backend.info.name}", settings=settings,
                 tree=tree_data(tree), layer=args.html_layer)
    print(f"wrote {args.html}", file=sys.stderr)


def run(settings, args: argparse.Namespace) -> int:
    from explorer.backend import BackendError, open_backend
    from explorer.session import PromptFileError
    from explorer.tree.export import write_gemma_json, write_json, write_leaves_jsonl
    from explorer.tree.render import render_text

    def fail(text: str) -> int:  # a model, prompt or file the user can fix: exit 2 as trace
        print(f"{PROG}: {text}", file=sys.stderr)
        return 2

    from explorer.inputs import check_run_files
    from explorer.output_paths import write_stdout

    source = None if args.prompt is not None else args.input or settings.resolve(settings.prompts.default)
    try:  # files first: a bad one is refused before the model loads, not after
        check_run_files(source, (args.json, args.jsonl, args.html), create_folder=True)
        backend = open_backend(settings, influence=False)  # a tree needs no attention rows
    except (BackendError, PromptFileError) as exc:
        return fail(str(exc))
    try:
        default = None if args.input else settings.resolve(settings.prompts.default)
        start, records, tree = grow(backend, settings, text=args.prompt, path=args.input, default=default,
                                    warn=lambda text: print(f"warning: {text}", file=sys.stderr))
        unprinted = write_stdout(render_text(tree, backend.decode(start.ids)) + "\n")
        if args.json and args.format == "gemma":
            write_gemma_json(tree, backend.decode(start.ids), args.json)
            print(f"wrote {args.json}", file=sys.stderr)
        elif args.json:
            write_json(tree, args.json)
            print(f"wrote {args.json}", file=sys.stderr)
        if args.jsonl:
            write_leaves_jsonl(tree, args.jsonl)
            print(f"wrote {args.jsonl}", file=sys.stderr)
        if args.html:
            _write_html(args, backend, records, tree)
        if unprinted:
            return fail(unprinted)
        if tree.cancelled:
            print("token-explorer tree: interrupted; the tree is kept as far as it grew "
                  f"({tree.size} nodes, marked incomplete).", file=sys.stderr)
            return 130
    except (BackendError, PromptFileError, ValueError, OSError) as exc:
        return fail(str(exc) if not isinstance(exc, OSError) else
                    f"Could not write {exc.filename}: {exc.strerror}.")
    finally:
        backend.close()
    return 0
