"""Sampler flags for argparse parsers (the app and `trace` share them)."""

from __future__ import annotations

import argparse

from .settings import KNOBS, PRESETS, check_overrides

_HELP = {
    "temperature": "divide the logits by T; 0 = greedy (default: the model's generation_config.json)",
    "top_k": "keep the K most likely tokens; 0 or -1 = off",
    "top_p": "keep the smallest set of tokens whose probability reaches P; 1 = off",
    "min_p": "drop tokens below P x the top token's probability; 0 = off",
    "repetition_penalty": "transformers' repetition penalty over the whole sequence; 1 = off",
    "presence_penalty": "OpenAI presence penalty over appended tokens, -2..2; 0 = off",
    "frequency_penalty": "OpenAI frequency penalty over appended tokens, -2..2; 0 = off",
    "seed": "seed for sampling; the same seed, prompt and settings give the same tokens (in trace, a seed alone turns sampling on)",
}


def add_sampling_flags(parser: argparse.ArgumentParser) -> None:
    """--temperature --top-k --top-p --min-p --repetition-penalty --presence-penalty
    --frequency-penalty --seed --preset. Values stay text until sampling_overrides checks
    them, so a bad value gets the same sentence as in config.toml or the panel."""
    group = parser.add_argument_group("sampling")
    for name in KNOBS:
        group.add_argument("--" + name.replace("_", "-"), dest=f"sampling_{name}",
                           metavar=name.split("_")[-1].upper()[:5], default=None, help=_HELP[name])
    group.add_argument("--preset", dest="sampling_preset", default=None,
                       choices=("model", *PRESETS),
                       help="start from a preset instead of the model's generation_config.json")


def sampling_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The knobs given on the command line, checked; raises SamplingError (one sentence)."""
    given = {name: getattr(args, f"sampling_{name}") for name in KNOBS
             if getattr(args, f"sampling_{name}", None) is not None}
    checked: dict[str, object] = {}
    for name, value in given.items():  # one flag at a time, so the message names it
        checked.update(check_overrides({name: value}, "--" + name.replace("_", "-")))
    return checked


def sampling_preset(args: argparse.Namespace) -> str | None:
    return getattr(args, "sampling_preset", None)
