"""Keyword arguments of the Python API as the command line's flags: `max_new_tokens=8`
is `--max-new-tokens 8`, `track=[" Paris", " Lyon"]` is `--track " Paris" --track " Lyon"`,
`chat=True` is `--chat`. They go through the commands' own parser (explorer.cli), so every
setting of `trace` and `tree` is a keyword, with the same defaults, checks and one-sentence
errors, and a new flag is a new keyword without a line here.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping
from pathlib import PurePath

from explorer.cli import UsageError, build_parser, check_input
from explorer.flags import prompt_from_args

# The flags that pick the model: given to explorer.open, not to a verb.
MODEL_KEYWORDS = frozenset({"model", "server", "bf16", "dtype", "device", "device_map", "config"})
# The flags that say which prompt opens, and how (--chat, --system, --prefix).
PROMPT_KEYWORDS = frozenset({"prompt", "input", "chat", "system", "prefix"})


def _options(command: str) -> dict[str, argparse.Action]:
    """`command`'s long options (--max-new-tokens, ...) by keyword (max_new_tokens)."""
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {opt[2:].replace("-", "_"): action for opt, action in sub._option_string_actions.items()
            if opt.startswith("--") and opt != "--help"}


def _argv(option: str, action: argparse.Action, value) -> list[str]:
    """The words of one keyword: a True switch is the flag alone, False/None nothing, a
    list the flag repeated (--track), anything else `--flag=value` (so a value that starts
    with '-' is never read as a flag)."""
    if value is None or value is False:
        return []
    if value is True and action.nargs in (0, "?"):
        return [option]
    if isinstance(value, (list, tuple, set, frozenset)) and isinstance(action, argparse._AppendAction):
        return [f"{option}={item}" for item in value]
    if isinstance(value, PurePath):
        value = str(value)
    return [f"{option}={value}"]


def command_args(command: str, verb: str, keywords: Mapping[str, object], *,
                 base: Mapping[str, object] | None = None,
                 allowed: Collection[str] | None = None,
                 refused: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The Namespace `main.py COMMAND --flags...` would give, checked as cli.main checks it
    (--chat TEXT, an empty prompt, a missing -i file). `verb` names the API call in errors;
    `base`: keywords given before (the model's, from explorer.open), under `keywords`;
    `allowed`: the only keywords `keywords` may name (default: all of COMMAND's);
    `refused`: keyword -> the sentence that says where it belongs instead. Raises
    UsageError / ConfigError."""
    options = _options(command)
    argv = [command]
    for name, value in (base or {}).items():
        argv += _argv("--" + name.replace("_", "-"), options[name], value)
    for name, value in keywords.items():
        if refused and name in refused and value is not None:
            raise UsageError(refused[name])
        action = options.get(name)
        if action is None or (allowed is not None and name not in allowed):
            known = sorted(options if allowed is None else set(allowed) & set(options))
            raise UsageError(f"{verb}() has no setting {name!r}; it takes {', '.join(known)}.")
        argv += _argv("--" + name.replace("_", "-"), action, value)
    try:
        args = build_parser(command).parse_args(argv)
    except UsageError as exc:  # (the flag's name is the keyword's; no --help to point at)
        raise UsageError(str(exc).replace(f" (see {command} --help).", ".")) from None
    prompt_from_args(args)
    check_input(args.input)
    return args
