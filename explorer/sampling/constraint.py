"""Constrained decoding: which next tokens a choice list, regex, JSON schema or Lark grammar
allows, from llguidance (the structured-generation library vLLM and llama.cpp use) running
on the model's own tokenizer. The sampler masks the rest (pipeline.final_scores, after
temperature and before top-k/top-p); no forward pass is involved.

A constraint covers the tokens appended after it was set: `allowed(appended)` takes them
(the ids after the prompt's start), rolls the matcher back to what it shares with the last
call and consumes the rest, so pop, fork and reset cost nothing but a rollback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explorer.errors import ExplorerError

KINDS = ("choice", "regex", "json_schema", "grammar")
# One fixed JSON layout, `{"a": 1, "b": [2, 3]}`: with free whitespace between tokens a
# small model can pad with newlines for ever. A schema's "x-guidance" key can override it.
JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_LABEL = {"choice": "choice", "regex": "regex", "json_schema": "JSON schema", "grammar": "grammar"}


class ConstraintError(ExplorerError, ValueError):
    """A constraint the user can fix, or one nothing can satisfy; one sentence."""


@dataclass(frozen=True)
class ConstraintSpec:
    """What the user asked for. value: the regex, the schema text, the Lark grammar, or
    (for kind "choice") a tuple of the allowed texts."""

    kind: str
    value: str | tuple[str, ...]

    def describe(self, width: int = 40) -> str:
        """Short text for the header: `regex /[0-9]+/`, `choice yes|no`..."""
        if self.kind == "choice":
            text = "|".join(self.value)
        else:
            text = " ".join(str(self.value).split())
        if len(text) > width:
            text = text[: width - 1] + "…"
        return f"{_LABEL[self.kind]} {text}"

    def grammar(self) -> str:
        """The llguidance grammar; raises ConstraintError for an invalid JSON text."""
        from llguidance import LLMatcher

        if self.kind not in KINDS:
            raise ConstraintError(f"Unknown constraint kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        if self.kind == "choice":
            choices = tuple(self.value)
            if not choices:
                raise ConstraintError("A choice constraint needs at least one choice.")
            # A Lark rule of string literals: JSON string syntax is Lark's string syntax.
            return LLMatcher.grammar_from_lark("start: " + " | ".join(json.dumps(c) for c in choices))
        if self.kind == "regex":
            return LLMatcher.grammar_from_regex(str(self.value))
        if self.kind == "grammar":
            return LLMatcher.grammar_from_lark(str(self.value))
        try:
            schema = json.loads(self.value) if isinstance(self.value, str) else self.value
        except json.JSONDecodeError as exc:
            raise ConstraintError(f"The JSON schema is not valid JSON: {exc.msg} at line {exc.lineno}.") from None
        if not isinstance(schema, dict):
            raise ConstraintError("The JSON schema must be a JSON object.")
        try:
            return LLMatcher.grammar_from_json_schema(schema, defaults=JSON_STYLE)
        except ValueError as exc:
            raise ConstraintError(f"The JSON schema cannot be used: {_first_line(exc)}.") from None


def check_syntax(spec: ConstraintSpec) -> None:
    """The regex, schema or grammar checked on its own, without a tokenizer: cheap, so the
    commands run it before the model loads (a bad one was refused only after 20-30 s)."""
    from llguidance import LLMatcher

    error = LLMatcher.validate_grammar(spec.grammar())
    if error:
        raise ConstraintError(f"The {_LABEL[spec.kind]} is not valid: {_first_line(error)}.")


def _first_line(exc: object) -> str:
    """llguidance's message in one line: its head and, for a regex, the `error:` detail;
    the position inside the grammar we wrapped around the user's text is dropped."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    head = lines[0] if lines else type(exc).__name__
    head = re.sub(r"^at \d+\(\d+\): ", "", head).removesuffix(": regex parse error:").rstrip(":")
    detail = next((line[len("error:"):].strip() for line in lines if line.startswith("error:")), None)
    return (f"{head}: {detail}" if detail else head).rstrip(".")


class Constraint:
    """A spec compiled for one tokenizer: a matcher that follows the appended tokens."""

    def __init__(self, spec: ConstraintSpec, lltokenizer, vocab_size: int):
        from llguidance import LLMatcher

        self.spec = spec
        self.vocab_size = int(vocab_size)
        grammar = spec.grammar()
        error = LLMatcher.validate_grammar(grammar, lltokenizer)
        if error:
            raise ConstraintError(f"The {_LABEL[spec.kind]} is not valid: {_first_line(error)}.")
        self._matcher = LLMatcher(lltokenizer, grammar, log_level=0)
        # The mask offers EOS once the text is a whole match, but a matcher that can go no
        # further refuses to consume it; such a final EOS is kept here, not in the matcher.
        self._eos = frozenset(int(t) for t in getattr(lltokenizer, "eos_tokens", None) or [lltokenizer.eos_token])
        self._ended = False
        if self._matcher.is_error():
            raise ConstraintError(f"The {_LABEL[spec.kind]} is not valid: {_first_line(self._matcher.get_error())}.")
        # A language with no text in it (`[^\s\S]`) leaves the matcher stopped before its
        # first token yet not accepting: its mask offers only end-of-sequence, which used
        # to end the generation at once with p_final 1, as if that were the model's choice.
        if self._matches_nothing():
            raise ConstraintError(f"The {_LABEL[spec.kind]} matches no text at all, so nothing "
                                  "could be generated under it.")
        self._consumed: list[int] = []

    def _matches_nothing(self) -> bool:
        import llguidance.numpy as lnp

        # The matcher knows it is stopped only once a mask has been computed.
        lnp.fill_next_token_bitmask(self._matcher, lnp.allocate_token_bitmask(1, self.vocab_size), 0)
        return self._matcher.is_stopped() and not self._matcher.is_accepting()

    @property
    def eos_ids(self) -> frozenset[int]:
        """The end-of-sequence ids the constraint allows once the text is a whole match."""
        return self._eos

    @classmethod
    def for_tokenizer(cls, spec: ConstraintSpec, hf_tokenizer, vocab_size: int) -> Constraint:
        return cls(spec, lltokenizer_for(hf_tokenizer, vocab_size), vocab_size)

    def allowed(self, appended: Sequence[int]) -> np.ndarray:
        """bool [vocab_size]: the tokens that may follow `appended`. Raises
        ConstraintError when `appended` itself breaks the constraint or nothing can follow."""
        self._follow([int(t) for t in appended])
        import llguidance.numpy as lnp

        mask = lnp.allocate_token_bitmask(1, self.vocab_size)
        lnp.fill_next_token_bitmask(self._matcher, mask, 0)
        if self._ended:
            raise ConstraintError("The constraint is complete; nothing may follow.")
        bits = np.unpackbits(mask.view(np.uint8), bitorder="little")[: self.vocab_size]
        allowed = bits.astype(bool)
        if not allowed.any():
            if self._matcher.is_stopped():  # e.g. after the end-of-sequence token
                raise ConstraintError("The constraint is complete; nothing may follow.")
            raise ConstraintError("No token can satisfy the constraint at this point.")
        return allowed

    def fits(self, appended: Sequence[int]) -> bool:
        """Whether each token of `appended` was one the constraint allowed in turn."""
        try:
            self._follow([int(t) for t in appended])
        except ConstraintError:
            return False
        return True

    def is_complete(self, appended: Sequence[int]) -> bool:
        """Whether the text so far is a whole match (the matcher accepts here)."""
        self._follow([int(t) for t in appended])
        return bool(self._matcher.is_accepting())

    def _follow(self, appended: list[int]) -> None:
        shared = 0
        for a, b in zip(self._consumed, appended):
            if a != b:
                break
            shared += 1
        back = len(self._consumed) - shared
        if back:
            real = back - int(self._ended)  # a final EOS is always the last token, not consumed
            if real:
                self._matcher.rollback(real)
            self._ended = False
            del self._consumed[shared:]
        new = appended[shared:]
        if not new:
            return
        if self._ended:
            raise ConstraintError(f"Token {new[0]} follows the end of the constraint ({self.spec.describe()}).")
        # Check before consuming: a matcher that consumed a forbidden token stays broken.
        fits = self._matcher.validate_tokens(new)
        if fits and self._matcher.consume_tokens(new[:fits]):
            self._consumed.extend(new[:fits])
        if fits == len(new) - 1 and new[-1] in self._eos and self._matcher.is_accepting():
            self._consumed.append(new[-1])
            self._ended = True
        elif fits < len(new):
            raise ConstraintError(f"Token {new[fits]} breaks the constraint ({self.spec.describe()}).")


_TOKENIZERS: dict[tuple[int, int], object] = {}


def lltokenizer_for(hf_tokenizer, vocab_size: int):
    """llguidance's view of a transformers fast tokenizer (built once per tokenizer: ~1 s)."""
    import llguidance.hf

    key = (id(hf_tokenizer), int(vocab_size))
    if key not in _TOKENIZERS:
        try:
            _TOKENIZERS[key] = llguidance.hf.from_tokenizer(hf_tokenizer, n_vocab=int(vocab_size))
        except ValueError as exc:
            raise ConstraintError(f"Constraints need a fast tokenizer: {_first_line(exc)}.") from None
    return _TOKENIZERS[key]
