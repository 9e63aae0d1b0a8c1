"""`trace` with the sampler: `--track TEXT` (the sampling and chat flags are shared with
the app, explorer.flags), a seeded sampling choice for the generation loop, and the JSONL
fields `logprob_final` (the chosen token's and each candidate's, null where the sampler excludes it) and
`tracked` ({token id as a string: logprob}).

The same pieces as the app: explorer.session.sampler.Sampler on the backend's kept logits
row (Backend.next_logits), the seeded draw, and Backend.tracked.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from explorer.backend.protocol import Backend
from explorer.backend.types import TokenRecord, TrackedSeries
from explorer.session.sampler import Sampler


def add_track_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--track", action="append", metavar="TEXT", default=None,
                        help="follow every token of TEXT at every position (repeatable); "
                             "adds `tracked` to each JSONL line")


def trace_sampler(config, model_defaults) -> Sampler:
    """trace decodes greedily unless sampling is asked for (a flag, a preset or a key in
    config.toml [sampling]); then the settings resolve as in the app: the model's
    generation_config.json, the preset, config.toml, the flags."""
    from explorer.sampling import PRESETS

    settings = config.resolve(model_defaults) if sampling_asked(config) else PRESETS["greedy"].with_changes(
        seed=config.values.get("seed"))
    return Sampler(settings)


def sampling_asked(config) -> bool:
    """A sampling flag, a preset or a [sampling] key other than the seed was given."""
    return config.preset != "model" or any(k != "seed" for k in config.values)


def _logprob(p: float) -> float | None:
    return math.log(p) if p > 0 else None


@dataclass
class SamplingChoice:
    """A `Choose` for explorer.core.trace.trace: the seeded draw from p_final of the kept
    row of prompt `key`. Keeps, per step, logprob_final of the chosen token and of the
    candidates it was chosen from (None: excluded)."""

    backend: Backend  # with Feature.SAMPLING
    key: object
    sampler: Sampler
    prompt_len: int
    finals: list[dict[int, float | None]] = field(default_factory=list)
    # Per step, with a constraint on the sampler: whether it allowed each of those tokens.
    valids: list[dict[int, bool]] = field(default_factory=list)

    def __call__(self, ids: tuple[int, ...], last: TokenRecord) -> int:
        row = self.backend.next_logits(self.key)
        d = self.sampler.distributions(row, ids, self.prompt_len)
        p_final = d.p_final
        token = self.sampler.pick(row, ids, self.prompt_len)  # = draw(p_final, seed, len(ids))
        wanted = {c.token_id for c in last.top} | {token}
        self.finals.append({t: _logprob(float(p_final[t])) for t in wanted})
        if d.valid is not None:
            self.valids.append({t: bool(d.valid[t]) for t in wanted})
        return token


@dataclass
class ServerChoice:
    """A `Choose` for trace on a server: the server's own sampler draws
    (Feature.SERVER_SAMPLING), one request per token that the append's request
    already made. Keeps logprob_final like SamplingChoice where the server reports p_final
    (vLLM with processed log-probs); `finals` stays None otherwise."""

    backend: Backend  # with Feature.SERVER_SAMPLING
    key: object
    sampler: Sampler
    prompt_len: int
    finals: list[dict[int, float | None]] | None = None

    def __call__(self, ids: tuple[int, ...], last: TokenRecord) -> int:
        wanted = [c.token_id for c in last.top]
        drawn = self.backend.draw(self.key, self.sampler.settings, self.prompt_len, wanted)
        if drawn.p_final is not None:
            if self.finals is None:
                self.finals = []
            self.finals.append({t: _logprob(drawn.p_final.get(t, 0.0)) for t in {*wanted, drawn.token_id}})
        return drawn.token_id


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
