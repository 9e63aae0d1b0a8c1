"""`trace` with the sampler: `--track TEXT` (the sampling and chat flags are shared with
the app, explorer.flags), a seeded sampling choice for the generation loop, and the JSONL
fields `logprob_final` (the chosen token's and each candidate's, null where the sampler excludes it) and
`tracked` ({token id as a string: logprob}).

The same pieces as the app: explorer.session.sampler.Sampler on the backend's kept logits
row (Backend.next_logits), the seeded draw, and Backend.tracked.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from explorer.backend.protocol import Backend
from explorer.backend.types import TokenRecord, TrackedSeries
from explorer.session.choose import choose_next
from explorer.session.sampler import Sampler


def add_track_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--track", action="append", metavar="TEXT", default=None,
                        help="follow every token of TEXT at every position (repeatable); "
                             "adds `tracked` to each JSONL line")


def trace_sampler(config, model_defaults) -> Sampler:
    """trace decodes greedily unless sampling is asked for (a flag, a preset, a key in
    config.toml [sampling], or a seed alone); then the settings resolve as in the app: the
    model's generation_config.json, the preset, config.toml, the flags. A seed with no
    other knob samples as `generate(do_sample=True)` would: the model's settings, at
    temperature 1 where they say greedy (Token Tracer's `--seed=42` habit)."""
    from explorer.sampling import PRESETS

    if not sampling_asked(config):
        return Sampler(PRESETS["greedy"].with_changes(seed=config.values.get("seed")))
    if seed_only(config) and model_defaults is not None and model_defaults.greedy:
        model_defaults = model_defaults.with_changes(temperature=1.0)
    return Sampler(config.resolve(model_defaults))


def sampling_asked(config) -> bool:
    """A sampling flag, a preset, a [sampling] key or a seed was given."""
    return config.preset != "model" or bool(config.values)


def seed_only(config) -> bool:
    """Only a seed was given: sampling from the model's own generation settings."""
    return config.preset == "model" and set(config.values) == {"seed"}


def describe_decoding(sampler: Sampler, config, *, server: bool = False) -> str:
    """The settings line's decoding: the sampler's knobs, and where they came from when a
    seed alone turned sampling on."""
    text = sampler.describe()
    if seed_only(config) and not sampler.settings.greedy:
        text += " (the model's generation settings, sampling on by --seed)"
    return text + (" (on the server)" if server else "")


@dataclass
class TraceChoice:
    """A `Choose` for explorer.core.trace.trace through the one choose function
    (explorer.session.choose.choose_next), as the app's `space` and autoplay: locally the
    seeded draw from p_final of the kept row of prompt `key`; on a server (local=False)
    its own sampler's draw with our settings (one request per token, which the append's
    request already made). `prompt_len`: where the sampler's appended tokens begin (the
    penalties and a constraint count from there). Keeps, per step, logprob_final of the
    chosen token and of the candidates it was chosen from (None: excluded; `finals`
    stays None on a server that does not report p_final) and, with a constraint, whether
    it allowed each."""

    backend: Backend  # with Feature.SAMPLING (local) or Feature.SERVER_SAMPLING
    key: object
    sampler: Sampler
    prompt_len: int
    local: bool = True
    finals: list[dict[int, float | None]] | None = None
    valids: list[dict[int, bool]] = field(default_factory=list)

    def __call__(self, ids: tuple[int, ...], last: TokenRecord) -> int:
        wanted = [c.token_id for c in last.top]
        if self.local:
            row, drawn = self.backend.next_logits(self.key), None
        else:
            row, drawn = None, self.backend.draw(self.key, self.sampler.settings, self.prompt_len, wanted)
        choice = choose_next(self.sampler, ids, self.prompt_len, row=row, drawn=drawn,
                             local=self.local, candidates=wanted)
        if choice.finals is not None:
            self.finals = (self.finals or []) + [choice.finals]
        if choice.valid is not None:
            self.valids.append(choice.valid)
        return choice.token_id


def tracked_ids(texts: Sequence[str] | None, encode_plain: Callable[[str], list[int]],
                token_text: Callable[[int], str], warn: Callable[[str], None]) -> list[int]:
    """Every token id of each --track TEXT, in order, without repeats. Raises ValueError
    (one sentence) for text that gives no tokens; warns when a text is several tokens."""
    out: list[int] = []
    for text in texts or ():
        ids = encode_plain(text)
        if not ids:
            raise ValueError(f"--track {text!r} gives no tokens.")
        if len(ids) > 1:
            pieces = ", ".join(repr(token_text(t)) for t in ids)
            warn(f"--track {text!r} is not one token but {len(ids)} ({pieces}); all are tracked.")
        out += [t for t in ids if t not in out]
    return out


def add_sampling_fields(lines: list[dict], finals: Sequence[Mapping[int, float | None]] | None,
                        series: TrackedSeries | None) -> list[dict]:
    """Add logprob_final (chosen and top) and tracked to trace JSONL lines, in place.
    Line n (step n) is the token at `position`, predicted by the row after position-1."""
    for n, line in enumerate(lines):
        if finals is not None:
            final = finals[n]
            line["logprob_final"] = final.get(line["token_id"])
            for c in line["top"]:
                c["logprob_final"] = final.get(c["token_id"])
        if series is not None:
            row = series.logprobs[line["position"] - 1]
            line["tracked"] = {str(t): float(row[j]) for j, t in enumerate(series.token_ids)}
    return lines
