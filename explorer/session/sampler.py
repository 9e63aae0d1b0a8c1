"""The session's sampler: settings and seed, p_base/p_final for what is shown, seeded picks,
and when autoplay stops. No Textual, no tensors in the interface (numpy rows in, plain
values out); torch runs inside explorer.sampling's pipeline only when a row is computed.

Shared by the app (space, g, the o panel, the table's p_final column) and the headless
commands (trace): both choose tokens with explorer.session.choose and step one
explorer.session.generation.Generation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from explorer.backend.types import Candidate
from explorer.context_limit import context_error
from explorer.sampling import (
    Distributions,
    SamplingError,
    SamplingSettings,
    apply_preset,
    distributions,
    draw,
    fresh_seed,
)


@dataclass(frozen=True)
class Shown:
    """What the table needs from the sampler for one position: p_final of the listed
    candidates (0 = excluded) and both entropies (nats)."""

    p_final: tuple[float, ...] | None  # None: unknown (a server that does not report it)
    entropy_base: float
    entropy_final: float | None  # None: unknown
    vocab_size: int
    line: str = ""  # the settings in one line (Sampler.describe)
    # With a constraint: per candidate, False where it forbids the token (None: no
    # constraint, or none applies here); `problem`: why no mask applies (one sentence).
    valid: tuple[bool, ...] | None = None
    problem: str | None = None
    constraint: str = ""  # its short form (ConstraintSpec.describe), "" without one
    # Where the constrained text stands: "" (mid-way, or no constraint), "match" (a whole
    # match that may go on: end-of-sequence is one of the allowed tokens), "complete" (a
    # whole match: only end-of-sequence is allowed), "ended" (end-of-sequence appended:
    # nothing may follow, so p_final here is the sampler's without the constraint).
    constraint_end: str = ""
    entropy_final_bound: bool = False  # a lower bound (a server's truncated list)
    # The table lists only the tokens the constraint allows (the likeliest first); False:
    # the likeliest tokens of all, forbidden ones flagged.
    allowed_only: bool = False

    @property
    def entropy_base_norm(self) -> float:
        return self.entropy_base / math.log(self.vocab_size)

    @property
    def entropy_final_norm(self) -> float | None:
        return None if self.entropy_final is None else self.entropy_final / math.log(self.vocab_size)


def server_shown(drawn, entropy_base: float, vocab_size: int, candidates: Sequence[int],
                 line: str) -> Shown:
    """What the table shows when the server samples: p_final and its entropy where the
    server reported them (drawn: explorer.backend.ServerDraw, None while it is fetched)."""
    line = f"{line} · on the server"
    if drawn is None or drawn.p_final is None:
        return Shown(None, entropy_base, None, vocab_size, line)
    p_final = tuple(float(drawn.p_final.get(int(t), 0.0)) for t in candidates)
    return Shown(p_final, entropy_base, drawn.entropy_final, vocab_size, line,
                 entropy_final_bound=drawn.entropy_final_bound)


def entropy(p: np.ndarray) -> float:
    """-sum p ln p in nats, in float64; p = 0 contributes 0."""
    p = np.asarray(p, dtype=np.float64)
    kept = p[p > 0]
    return max(0.0, float(-(kept * np.log(kept)).sum()))  # never -0.0 for a certain one


class Sampler:
    """Settings with a resolved seed; one cached Distributions for the last row asked."""

    def __init__(self, settings: SamplingSettings) -> None:
        self._seed_given = settings.seed is not None
        self.settings = settings if self._seed_given else settings.with_changes(seed=fresh_seed())
        self._cache: tuple | None = None
        # explorer.sampling.constraint.Constraint; it covers ids[prompt_len:], the tokens
        # appended since the prompt's original ids (as the penalties count them).
        self.constraint = None

    @property
    def seed(self) -> int:
        return int(self.settings.seed)

    def change(self, **knobs: object) -> SamplingSettings:
        """Apply knob changes (text or numbers); raises SamplingError with one sentence and
        leaves the settings as they were."""
        self.settings = self.settings.with_changes(**knobs)
        if self.settings.seed is None:  # "random" typed in the panel: a fresh one, shown
            self.settings = self.settings.with_changes(seed=fresh_seed())
        return self.settings

    def use_preset(self, name: str) -> SamplingSettings:
        self.settings = apply_preset(self.settings, name)
        return self.settings

    def set_constraint(self, constraint) -> None:
        """Use `constraint` (explorer.sampling.constraint.Constraint; None clears it)."""
        self.constraint = constraint
        self._cache = None

    @staticmethod
    def check_fits(constraint, ids: Sequence[int], prompt_len: int) -> None:
        """Raises ConstraintError (one sentence) when the tokens appended since the prompt's
        original ids break `constraint`."""
        from explorer.sampling.constraint import ConstraintError

        appended = list(ids)[prompt_len:]
        if not constraint.fits(appended):
            n = len(appended)
            raise ConstraintError(
                f"The {n} token{'' if n == 1 else 's'} appended since the prompt's original text "
                f"{'does' if n == 1 else 'do'} not fit this constraint; pop "
                f"{'it' if n == 1 else 'them'} (←) or reset (ctrl+r) first.")

    def allowed(self, ids: Sequence[int], prompt_len: int) -> tuple[np.ndarray | None, str | None]:
        """(bool [V] of the tokens the constraint allows after ids, or None; one sentence
        when a constraint is set but no mask applies: the appended text breaks it, or it is
        complete and nothing may follow)."""
        if self.constraint is None:
            return None, None
        from explorer.sampling.constraint import ConstraintError

        appended = list(ids)[prompt_len:]
        if not self.constraint.fits(appended):
            return None, ("The text appended since the prompt's original text breaks the "
                          "constraint; pop back (←) or clear it (c).")
        try:
            return self.constraint.allowed(appended), None
        except ConstraintError as exc:
            return None, str(exc)

    def distributions(self, row: np.ndarray, ids: Sequence[int], prompt_len: int) -> Distributions:
        """p_base and p_final of `row` (the raw logits after ids), the constraint's mask
        applied; cached for the last call."""
        key = (tuple(ids), prompt_len, self.settings, id(row), id(self.constraint))
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        allowed, problem = self.allowed(ids, prompt_len)
        result = distributions(row, ids, prompt_len, self.settings, allowed)
        self._cache = (key, result, row, problem)  # the row is held so its id stays unique
        return result

    def problem(self, row: np.ndarray, ids: Sequence[int], prompt_len: int) -> str | None:
        """Why the constraint gives no mask after ids (None: it does, or there is none)."""
        self.distributions(row, ids, prompt_len)
        return self._cache[3]

    def shown(self, row: np.ndarray, ids: Sequence[int], prompt_len: int,
              candidates: Sequence[int]) -> Shown:
        d = self.distributions(row, ids, prompt_len)
        valid = None if d.valid is None else tuple(bool(d.valid[t]) for t in candidates)
        problem = self.problem(row, ids, prompt_len)
        return Shown(tuple(float(d.p_final[t]) for t in candidates), entropy(d.p_base),
                     entropy(d.p_final), int(d.p_final.size), self.describe(), valid,
                     problem,
                     "" if self.constraint is None else self.constraint.spec.describe(36),
                     constraint_end=self._constraint_end(d.valid, ids, prompt_len, problem))

    def allowed_top(self, row: np.ndarray, ids: Sequence[int], prompt_len: int, n: int,
                    token_text: Callable[[int], str]) -> tuple[Candidate, ...] | None:
        """The n likeliest tokens (by p_base; ties: the lower id) that the constraint allows
        after ids, as table rows; None without a constraint or where no mask applies. From
        the kept logits row: no forward pass."""
        if self.constraint is None:
            return None
        d = self.distributions(row, ids, prompt_len)
        if d.valid is None:
            return None
        allowed = np.flatnonzero(d.valid)
        p = d.p_base[allowed]
        chosen = allowed[np.lexsort((allowed, -p))[:max(0, n)]]
        z = np.asarray(row, dtype=np.float64).reshape(-1)
        log_z = float(np.logaddexp.reduce(z))  # log p in float64: tiny p_base stay finite
        return tuple(Candidate(int(t), token_text(int(t)), math.exp(z[t] - log_z), float(z[t] - log_z))
                     for t in chosen)

    def _constraint_end(self, valid, ids: Sequence[int], prompt_len: int, problem) -> str:
        """Shown.constraint_end, from the mask (or, with no mask, the last appended token)."""
        if self.constraint is None:
            return ""
        eos = self.constraint.eos_ids
        if valid is None:
            appended = list(ids)[prompt_len:]
            ended = problem is not None and appended and int(appended[-1]) in eos \
                and self.constraint.fits(appended)
            return "ended" if ended else ""
        allowed = {int(t) for t in np.flatnonzero(valid)}
        if allowed and allowed <= eos:
            return "complete"
        return "match" if allowed & eos else ""

    def pick(self, row: np.ndarray, ids: Sequence[int], prompt_len: int) -> int:
        """The seeded draw for the token that will follow ids. Raises ConstraintError (one
        sentence) when a constraint is set but gives no mask here: nothing is drawn that
        it would forbid."""
        d = self.distributions(row, ids, prompt_len)
        problem = self._cache[3]
        if problem is not None:
            from explorer.sampling.constraint import ConstraintError

            raise ConstraintError(problem)
        return draw(d.p_final, self.seed, len(ids))

    def forbids(self, token: int, ids: Sequence[int], prompt_len: int) -> str | None:
        """One sentence when the constraint forbids appending `token` after ids (None: it
        may follow, or no constraint is set)."""
        if self.constraint is None:
            return None
        allowed, problem = self.allowed(ids, prompt_len)
        if problem is not None:
            return problem
        if not allowed[int(token)]:
            return f"The constraint ({self.constraint.spec.describe()}) forbids this token; pick a valid one or clear it (c)."
        return None

    def describe(self) -> str:
        """One line: the knobs that are on, and the seed."""
        s = self.settings
        if s.greedy:
            parts = ["greedy"]
        else:
            parts = [f"T {s.temperature:g}"]
            if s.top_k:
                parts.append(f"top-k {s.top_k}")
            if s.top_p < 1:
                parts.append(f"top-p {s.top_p:g}")
            if s.min_p > 0:
                parts.append(f"min-p {s.min_p:g}")
        if s.repetition_penalty != 1:
            parts.append(f"rep {s.repetition_penalty:g}")
        if s.presence_penalty:
            parts.append(f"presence {s.presence_penalty:g}")
        if s.frequency_penalty:
            parts.append(f"frequency {s.frequency_penalty:g}")
        if not s.greedy:  # a greedy pick does not depend on the seed
            parts.append(f"seed {self.seed}")
        return " · ".join(parts)


def unescape(text: str) -> str:
    """\\n and \\t typed as two characters (one-line inputs, flags) -> newline, tab."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


@dataclass(frozen=True)
class StopRule:
    """When autoplay stops: an end-of-sequence token, a stop string in the text produced
    since autoplay started, `max_tokens` tokens, or the model's context limit."""

    max_tokens: int = 256
    stop_strings: tuple[str, ...] = ()
    eos_ids: frozenset[int] = field(default_factory=frozenset)
    max_context: int | None = None

    def with_text(self, max_tokens: str, stops: str) -> StopRule:
        """From text fields (the sampler panel): stop strings separated by " | ", with \\n
        and \\t for a newline and a tab. Raises SamplingError with one sentence."""
        from dataclasses import replace

        from explorer.sampling import SamplingError

        try:
            n = int(max_tokens.strip())
        except ValueError:
            raise SamplingError(f"Max tokens must be a whole number, not {max_tokens.strip()!r}.") from None
        if n < 1:
            raise SamplingError(f"Max tokens must be 1 or more, not {n}.")
        parts = tuple(unescape(s) for s in stops.split(" | ") if s)
        return replace(self, max_tokens=n, stop_strings=parts)

    def stops_text(self) -> str:
        return " | ".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in self.stop_strings)

    def after(self, produced: Sequence[int], total_len: int, decode: Callable[[Sequence[int]], str]) -> str | None:
        """Why autoplay stops after these produced tokens (None: go on). The last token is
        kept either way, as generate keeps its EOS."""
        if produced and produced[-1] in self.eos_ids:
            return "it reached the end-of-sequence token"
        if self.stop_strings:
            text = decode(produced)
            hit = next((s for s in self.stop_strings if s and s in text), None)
            if hit is not None:
                return f"it produced the stop string {hit!r}"
        if len(produced) >= self.max_tokens:
            return f"it produced {len(produced)} tokens (the limit)"
        if context_error(total_len, self.max_context, adding=1):
            return f"the prompt reached the model's context limit of {self.max_context} tokens"
        return None


def start_sampler(config, backend, keep, notify) -> tuple[Sampler, StopRule]:
    """The explorer core's sampler and stop rule on `backend`: from [sampling] over the
    model's own generation settings, or `keep` (the previous model's (Sampler, StopRule)
    after a model switch: its resolved seed, knobs, token limit and stop strings stay).
    A [sampling] value the model's defaults reject is one sentence, then the defaults."""
    if keep is not None:
        settings = keep[0].settings  # its seed is resolved: the same draws follow
        max_tokens, stop = keep[1].max_tokens, keep[1].stop_strings
    else:
        max_tokens, stop = config.max_tokens, tuple(config.stop)
        try:
            settings = config.resolve(backend.sampling_defaults())
        except SamplingError as exc:
            notify(str(exc), title="Sampler", severity="error", timeout=10)
            settings = config.resolve(type(backend.sampling_defaults())())
    return Sampler(settings), StopRule(max_tokens=max_tokens, stop_strings=stop,
                                       eos_ids=frozenset(backend.eos_ids),
                                       max_context=backend.info.max_context)
