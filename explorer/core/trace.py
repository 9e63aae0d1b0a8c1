"""Generation over the backend interface, keeping every step's numbers.

Each new token is one `Backend.sync` of the ids grown by that token: one decode step on
the prompt's KV cache, which returns the token's record (its log-probability, rank and the
entropy of the distribution it was chosen from) and the distribution after it. Which token
to take is a `Choose` function, so a sampler can replace `greedy` without touching the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from explorer.backend import Backend, BackendError, PromptTooLongError
from explorer.backend.protocol import IsCancelled, Progress
from explorer.backend.types import TokenRecord
from explorer.session.generation import Generation
from explorer.session.sampler import StopRule
from explorer.context_limit import context_error

# (ids so far, the last position's record) -> the next token id. record.top is the
# distribution after the last position, most probable first.
Choose = Callable[[tuple[int, ...], TokenRecord], int]


def greedy(ids: tuple[int, ...], last: TokenRecord) -> int:
    """The most probable next token (its first entry, as greedy `generate` takes argmax)."""
    return last.top[0].token_id


@dataclass(frozen=True)
class Trace:
    """A finished generation: the records of every position, prompt and completion."""

    records: tuple[TokenRecord, ...]
    prompt_len: int
    stop: str  # "eos" (an end-of-sequence token was chosen), "length" (max_new_tokens),
    # "interrupted" (Ctrl-C: the steps finished before it) or "error" (a partial trace:
    # the backend failed after these steps; see partial_trace)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(r.token_id for r in self.records)

    @property
    def prompt_ids(self) -> tuple[int, ...]:
        return self.ids[: self.prompt_len]

    @property
    def completion_ids(self) -> tuple[int, ...]:
        return self.ids[self.prompt_len:]

    @property
    def steps(self) -> list[tuple[TokenRecord, TokenRecord]]:
        """Per generated token: (its record, the record before it, whose `top` is the
        distribution it was chosen from)."""
        return [(self.records[i], self.records[i - 1]) for i in range(self.prompt_len, len(self.records))]


def partial_trace(exc: BaseException) -> Trace | None:
    """The steps a failed `trace` finished (stop "error"), or None when it failed before
    the first new token."""
    return getattr(exc, "partial_trace", None)


def check_length(backend: Backend, prompt_len: int, max_new_tokens: int) -> None:
    """Refuse, before any model work, a run that cannot fit the model's context."""
    if max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be at least 1, not {max_new_tokens}.")
    if why := context_error(prompt_len, backend.info.max_context, backend.info.name, max_new_tokens):
        raise PromptTooLongError(why)


def trace(backend: Backend, prompt_ids: Sequence[int], max_new_tokens: int, *,
          choose: Choose = greedy, key: object = "trace", stop_ids: Collection[int] | None = None,
          rule: StopRule | None = None,
          prefill_progress: Progress | None = None, step_progress: Progress | None = None,
          cancelled: IsCancelled | None = None, interrupted: IsCancelled | None = None,
          forget: bool = True) -> Trace:
    """Generate up to `max_new_tokens` tokens after `prompt_ids`, stopping after a token of
    `stop_ids` (default: the model's end-of-sequence ids, `eos_ids` of a backend that
    serves sampling; () never stops early). `rule` (autoplay's StopRule: stop strings, a
    context limit) replaces both. The backend's state for `key` is forgotten afterwards
    (forget=False keeps it, e.g. to read tracked tokens; the caller forgets it). Raises
    BackendError (PromptTooLongError, Cancelled, ...). `interrupted` is polled between steps:
    once True, the steps finished so far are returned with stop "interrupted" (Ctrl-C in
    `trace` keeps them), where `cancelled` abandons the whole generation."""
    ids = tuple(int(i) for i in prompt_ids)
    if not ids:
        raise ValueError("The prompt gives no tokens.")
    if rule is not None:
        max_new_tokens = rule.max_tokens
    check_length(backend, len(ids), max_new_tokens)
    # A server names its end-of-sequence token when it draws one: read them as we go.
    learned = stop_ids is None and rule is None and backend.capabilities.server_sampling
    if stop_ids is None:
        stop_ids = backend.eos_ids if backend.capabilities.sampling else ()
    if rule is None:
        rule = StopRule(max_tokens=max_new_tokens, eos_ids=frozenset(int(i) for i in stop_ids))
    run = Generation(key, len(ids), rule)  # the app's autoplay steps the same
    records: tuple[TokenRecord, ...] = ()
    stop = None
    try:
        records = backend.sync(key, ids, progress=prefill_progress, cancelled=cancelled)
        while True:
            if interrupted is not None and interrupted():
                stop = "interrupted"
                break
            ids = ids + (int(choose(ids, records[-1])),)
            records = backend.sync(key, ids, cancelled=cancelled)
            if step_progress is not None:
                step_progress(len(run.produced(ids)), max_new_tokens)
            if learned:
                run.learn_eos(backend.eos_ids)
            if run.after(ids, backend.decode) is not None:
                break
    except BaseException as exc:
        backend.forget(key)
        if isinstance(exc, BackendError) and len(records) > len(prompt_ids):
            # The steps finished before a server died are kept, for the caller to write.
            exc.partial_trace = Trace(tuple(records), len(prompt_ids), "error")
        raise
    if forget:
        backend.forget(key)
    return Trace(tuple(records), len(prompt_ids), stop or ("eos" if run.ended_by_eos(ids) else "length"))
