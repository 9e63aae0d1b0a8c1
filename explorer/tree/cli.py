"""`uv run main.py tree ...`: grow a token tree headless, print it, write JSON / JSONL.

Shares the app's core: the same backend factory, prompt files and explorer.tree search.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from explorer.tree.rule import TreeSettings, TreeSettingsError

FLAGS = {  # flag -> TreeSettings field
    "--t-min": "t_min", "--t-max": "t_max", "--q-limit": "q_limit", "--max-depth": "max_depth",
    "--max-nodes": "max_nodes", "--batch": "batch", "--cache-mib": "cache_mib",
}


def add_tree_flags(parser: argparse.ArgumentParser) -> None:
    """The [tree] settings as flags (each overrides config.toml)."""
    group = parser.add_argument_group("tree settings (override config.toml's [tree])")
    for flag, name in FLAGS.items():
        kind = float if name.startswith("t_") or name == "cache_mib" else int
        group.add_argument(flag, type=kind, dest=f"tree_{name}", metavar="N",
                           help=f"{name} (default {getattr(TreeSettings(), name)})")
    group.add_argument("--tree-stop", action="append", dest="tree_stop", metavar="TEXT",
                       help="a path ends when its text contains TEXT (repeatable)")


def tree_settings_from_args(args: argparse.Namespace, base: TreeSettings) -> TreeSettings:
    table = {name: getattr(args, f"tree_{name}") for name in FLAGS.values()
             if getattr(args, f"tree_{name}", None) is not None}
    if getattr(args, "tree_stop", None):
        table["stop"] = list(args.tree_stop)
    return TreeSettings.from_table(table, base) if table else base


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="token-explorer tree",
        description="Grow a tree of the likely continuations of a prompt and print it.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prompt", "-p", metavar="TEXT", help="the prompt text")
    source.add_argument("--input", "-i", type=Path, metavar="FILE",
                        help="a prompt file (.txt, or a saved .json: read token for token)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the tree as JSON here")
    parser.add_argument("--jsonl", type=Path, metavar="PATH",
                        help="write the leaf paths as JSONL here (one line per leaf)")
    from explorer.cli import add_model_flags  # imported here: explorer.cli imports this module

    add_model_flags(parser)
    add_tree_flags(parser)
    args = parser.parse_args(argv)
    args.layer_prob = False
    return args


def main(argv: list[str] | None = None) -> int:
    from explorer.cli import check_input, check_prompt_text, quiet_loading_bars, settings_from_args
    from explorer.config import ConfigError

    quiet_loading_bars()  # no "Loading weights" bar on stderr, redirected or not
    args = parse_args(argv)
    try:  # every setting and input is refused here, before the model loads
        check_input(args.input)
        check_prompt_text(args.prompt)
        settings = settings_from_args(args)
        if args.prompt is None and args.input is None:
            check_input(settings.resolve(settings.prompts.default), "The default prompt")
        tree_settings = tree_settings_from_args(args, settings.tree)
    except (ConfigError, TreeSettingsError) as exc:
        print(f"token-explorer tree: {exc}", file=sys.stderr)
        return 2
    settings = replace(settings, tree=tree_settings)
    try:
        return run(settings, args)
    except KeyboardInterrupt:  # while loading, or a second Ctrl-C while growing
        print("token-explorer tree: interrupted; nothing was written.", file=sys.stderr)
        return 130


def run(settings, args: argparse.Namespace) -> int:
    from explorer.backend import BackendError, open_backend
    from explorer.session import PromptFileError, load_prompt_file
    from explorer.tree.export import write_json, write_leaves_jsonl
    from explorer.tree.render import render_text

    def fail(text: str) -> int:  # a model, prompt or file the user can fix: exit 2 as trace
        print(f"token-explorer tree: {text}", file=sys.stderr)
        return 2

    from explorer.inputs import check_run_files
    from explorer.interrupt import soft_interrupt
    from explorer.output_paths import write_stdout

    source = None if args.prompt is not None else args.input or settings.resolve(settings.prompts.default)
    try:  # files first: a bad one is refused before the model loads, not after
        check_run_files(source, (args.json, args.jsonl), create_folder=True)
        backend = open_backend(settings, influence=False)  # a tree needs no attention rows
    except (BackendError, PromptFileError) as exc:
        return fail(str(exc))
    try:
        if not backend.capabilities.trees:
            return fail(backend.capabilities.missing("trees"))
        if args.prompt is not None:
            ids = tuple(backend.encode(args.prompt))
        else:
            path = args.input or settings.resolve(settings.prompts.default)
            loaded = load_prompt_file(path, backend.encode, backend.info.name, decode=backend.decode)
            ids = loaded.ids
            if loaded.warning:  # re-tokenised for this model, or ids that disagree with the text
                print(f"warning: {loaded.warning}", file=sys.stderr)
        backend.sync("tree", ids)
        # Ctrl-C stops the search and keeps the tree grown so far (marked incomplete).
        with soft_interrupt() as interrupted:
            tree = backend.grow_tree("tree", settings.tree, cancelled=interrupted)
        unprinted = write_stdout(render_text(tree, backend.decode(ids)) + "\n")
        if args.json:
            write_json(tree, args.json)
            print(f"wrote {args.json}", file=sys.stderr)
        if args.jsonl:
            write_leaves_jsonl(tree, args.jsonl)
            print(f"wrote {args.jsonl}", file=sys.stderr)
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
