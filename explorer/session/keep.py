"""Keeping a whole session: every prompt (token ids, original ids, origins, chat messages,
branch point), the current prompt and position, the colour layer and layer view, the
sampler's settings and stop rule, the tracked tokens, the constraint and the model, as one
JSON file written atomically (explorer/atomic.py: a reader, or a process killed with -9
mid-save, sees the previous file or the whole new one, never a part). No Textual.

Files are per model in the cache folder (`cache_root()/sessions/<model>.json`); a named
one with `--session PATH` / `--resume PATH`. Restoring never needs the model that saved
it: each prompt keeps its text, and where the backend's tokenizer reads the saved ids as
other text (another model, or the saved one could not load), the prompts and pins are
re-tokenised from their text and a note says so (explorer.session.carry's rule).

The colour layer, layer view and position are the screen's: the caller passes them in
(`ui`) and gets them back; the core keeps them as plain strings and numbers.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from explorer.atomic import write_text_atomic
from explorer.config import cache_root
from explorer.sampling.settings import KNOBS, SamplingSettings
from explorer.session.book import PROMPT, Prompt, PromptBook
from explorer.session.start import FALLBACK_TEXT

KIND, VERSION = "token-explorer-session", 1


class SessionFileError(ValueError):
    """A session file that cannot be read; str() is one sentence."""


@dataclass(frozen=True)
class SavedPrompt:
    ids: tuple[int, ...]
    original: tuple[int, ...]
    origins: tuple[str, ...]
    text: str  # the ids decoded: what re-tokenising starts from
    original_text: str
    messages: tuple[tuple[str, str], ...] | None = None
    parent: int | None = None  # index of the prompt it was branched from
    branch_at: int | None = None  # the position it branched at


@dataclass(frozen=True)
class SessionState:
    model: str
    prompts: tuple[SavedPrompt, ...]
    index: int = 0
    sampling: Mapping[str, object] | None = None  # SamplingSettings.as_dict()
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    tracked: tuple[tuple[int, str], ...] = ()  # (id, its text)
    constraint: tuple[str, object] | None = None  # (kind, value) of a ConstraintSpec
    ui: Mapping[str, object] = field(default_factory=dict)  # layer, layer_view, position...
    saved_at: str = ""

    def to_json(self) -> str:
        data = {"kind": KIND, "version": VERSION, **asdict(self)}
        return json.dumps(data, ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "the session file") -> SessionState:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("kind") != KIND:
                raise ValueError("it is not a Token Explorer session")
            if data.get("version") != VERSION:
                raise ValueError(f"it is version {data.get('version')!r}, this program reads {VERSION}")
            prompts = tuple(_prompt(p) for p in data["prompts"])
            if not prompts:
                raise ValueError("it holds no prompt")
            constraint = data.get("constraint")
            return cls(
                model=str(data["model"]), prompts=prompts, index=int(data.get("index", 0)),
                sampling=data.get("sampling"), max_tokens=data.get("max_tokens"),
                stop=tuple(str(s) for s in data.get("stop") or ()),
                tracked=tuple((int(i), str(t)) for i, t in data.get("tracked") or ()),
                constraint=None if not constraint else (str(constraint[0]), _frozen(constraint[1])),
                ui=dict(data.get("ui") or {}), saved_at=str(data.get("saved_at", "")))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            reason = "it is not valid JSON" if isinstance(exc, json.JSONDecodeError) else str(exc).strip("'\"")
            raise SessionFileError(f"Could not read {where}: {reason}.") from None


def _frozen(value):
    return tuple(value) if isinstance(value, list) else value


def _prompt(p: Mapping) -> SavedPrompt:
    ids = tuple(int(i) for i in p["ids"])
    if not ids:
        raise ValueError("a prompt has no tokens")
    messages = p.get("messages")
    return SavedPrompt(
        ids=ids, original=tuple(int(i) for i in p.get("original") or ids),
        origins=tuple(str(o) for o in p.get("origins") or ()), text=str(p.get("text", "")),
        original_text=str(p.get("original_text", "")),
        messages=None if messages is None else tuple((str(r), str(c)) for r, c in messages),
        parent=p.get("parent"), branch_at=p.get("branch_at"))


# -- where sessions live --------------------------------------------------------------------

def sessions_folder() -> Path:
    return cache_root() / "sessions"


def session_path(model: str) -> Path:
    """The per-model session file: the model's name made a safe file name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._") or "model"
    return sessions_folder() / f"{slug}.json"


def last_session(model: str | None = None) -> Path | None:
    """The session `--resume` opens: the given model's, else the most recently saved one."""
    if model is not None:
        path = session_path(model)
        return path if path.is_file() else None
    found = sorted(sessions_folder().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if sessions_folder().is_dir() else []
    return found[0] if found else None


def session_from_args(resume, model: str | None) -> SessionState | None:
    """The session --resume asks for (None without --resume): `resume` is True (the model's
    last session, else the latest of any model) or a path. Raises SessionFileError (one
    sentence) before any model loads."""
    if resume is None or resume is False:
        return None
    path = last_session(model) if resume is True else Path(resume)
    if path is None:
        whose = f" for {model}" if model else ""
        raise SessionFileError(f"There is no saved session{whose} to resume in {sessions_folder()}.")
    return load_session(path)


def save_session(path: Path, state: SessionState) -> None:
    """Write atomically (the folder made first). Raises OSError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, state.to_json(), newline="\n")


def load_session(path: Path) -> SessionState:
    """Raises SessionFileError (one sentence)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SessionFileError(f"Could not read the session {path}: {exc.strerror or type(exc).__name__}.") from None
    except UnicodeDecodeError:
        raise SessionFileError(f"Could not read the session {path}: it is not UTF-8 text.") from None
    return SessionState.from_json(text, f"the session {path}")


# -- from and to the explorer core -------------------------------------------------------------

def capture(core, model: str, ui: Mapping[str, object] | None = None) -> SessionState:
    """The explorer core's whole state (explorer.session.explorer.Explorer)."""
    decode = core.backend.decode
    book = core.lane.book
    prompts = tuple(SavedPrompt(
        ids=p.ids, original=p.original, origins=p.origins, text=decode(p.ids),
        original_text=decode(p.original), messages=p.messages,
        parent=p.branched_from[0] if p.branched_from else None,
        branch_at=p.branched_from[1] if p.branched_from else None) for p in book)
    sampler, constraint = core.sampler, core.constraint
    return SessionState(
        model=model, prompts=prompts, index=book.index,
        sampling=None if sampler is None else sampler.settings.as_dict(),
        max_tokens=core.stop_rule.max_tokens, stop=tuple(core.stop_rule.stop_strings),
        tracked=tuple((t, decode([t])) for t in core.tracked_ids),
        constraint=None if constraint is None else (constraint.spec.kind, constraint.spec.value),
        ui=dict(ui or {}), saved_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def restore_book(state: SessionState, backend) -> tuple[PromptBook, str | None]:
    """The saved prompts for `backend`: ids kept where its tokenizer reads them as the saved
    text, else re-tokenised from the text (one sentence says how many)."""
    vocab, changed = backend.info.vocab_size, 0

    def carry(ids: tuple[int, ...], text: str) -> tuple[int, ...]:
        if all(0 <= t < vocab for t in ids) and backend.decode(ids) == text:
            return ids
        return tuple(backend.encode(text) or backend.encode(FALLBACK_TEXT))

    prompts = []
    for saved in state.prompts:
        ids, original = carry(saved.ids, saved.text), carry(saved.original, saved.original_text)
        same = (ids, original) == (saved.ids, saved.original)
        changed += not same
        messages = None if saved.messages is None else [{"role": r, "content": c} for r, c in saved.messages]
        prompt = Prompt.new(ids, messages, original=original,
                            origins=saved.origins if same else (PROMPT,) * len(ids))
        if saved.parent is not None and saved.branch_at is not None:  # where it branched
            prompt = replace(prompt, branched_from=(int(saved.parent), int(saved.branch_at)))
        prompts.append(prompt)
    book = PromptBook(prompts)
    book.select(prompts[min(max(state.index, 0), len(prompts) - 1)].key)
    if not changed:
        return book, None
    which = ("The prompt was" if len(prompts) == 1 else f"{changed} of {len(prompts)} prompts were")
    return book, (f"{which} re-tokenised from their text: {backend.info.name}'s tokenizer differs "
                  f"from {state.model}'s; token boundaries may have changed.")


def restore_pins(state: SessionState, backend) -> tuple[tuple[int, ...], str | None]:
    """The tracked ids for `backend`: kept where it reads them as the saved text, else the
    text's first token (dropped when the text gives none)."""
    pins, moved = [], 0
    for token_id, text in state.tracked:
        if 0 <= token_id < backend.info.vocab_size and backend.decode([token_id]) == text:
            ids = [token_id]
        else:
            ids, moved = backend.encode_plain(text) if text else [], moved + 1
        if ids and ids[0] not in pins:
            pins.append(ids[0])
    note = (f"{moved} pinned token{'s were' if moved > 1 else ' was'} carried by {'their' if moved > 1 else 'its'} "
            "text to this tokenizer." if moved else None)
    return tuple(pins), note


def saved_sampling(state: SessionState) -> SamplingSettings | None:
    if not state.sampling:
        return None
    return SamplingSettings(**{k: v for k, v in state.sampling.items() if k in KNOBS})


def resume(core, state: SessionState) -> list[str]:
    """Open `state` in the explorer core on its backend: prompts (re-tokenised from their
    text where this tokenizer reads the ids otherwise), current prompt, sampler settings
    and seed, stop rule, pins and constraint. Returns the notes (one sentence each)."""
    from explorer.sampling.constraint import ConstraintError, ConstraintSpec
    from explorer.session.sampler import Sampler, StopRule

    book, note = restore_book(state, core.backend)
    pins, pins_note = restore_pins(state, core.backend)
    settings, keep = saved_sampling(state), None
    if settings is not None and core.can_sample:
        stop = StopRule(max_tokens=state.max_tokens or core.sampling_config.max_tokens,
                        stop_strings=tuple(state.stop))
        keep = (Sampler(settings), stop)
    core.open(book, keep=keep, tracked=pins if core.tracking_refusal() is None else ())
    notes = [text for text in (note, pins_note) if text]
    if state.constraint is not None and core.sampler is not None:
        spec = ConstraintSpec(*state.constraint)
        try:
            core.sampler.set_constraint(core.prepare_constraint(spec))
        except ConstraintError as exc:
            notes.append(f"The constraint ({spec.describe()}) was not restored: {exc}")
    return notes


# -- saving while running ---------------------------------------------------------------------

class SessionKeeper:
    """Saves `capture()` to `path` when it changed since the last save: on `save()` (quit),
    and every `every` seconds from a thread once `start()`ed (or from the app's timer
    calling `save()`). A failed write is one note (`on_error`), then quiet until it works."""

    def __init__(self, path: Path | Callable[[], Path], capture: Callable[[], SessionState | None], *,
                 on_error: Callable[[str], None] = lambda text: None) -> None:
        """path: a file, or a function naming it at each save (the model's own file follows
        a model switch)."""
        self._path = path
        self._capture, self._on_error = capture, on_error
        self._last: str | None = None
        self._failing = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.saves = 0  # files written (tests, and the status line)

    @property
    def path(self) -> Path:
        return Path(self._path() if callable(self._path) else self._path)

    def save(self, state: SessionState | None = None) -> bool:
        """Write the state now if it changed; True when a file was written. `state`: one
        already captured (the app captures on its own thread and writes from another, so
        the write and its fsync never hold up a key); otherwise `capture()` now."""
        with self._lock:
            state = self._capture() if state is None else state
            if state is None:
                return False
            key = replace(state, saved_at="").to_json()  # the time alone is no change
            if key == self._last:
                return False
            try:
                save_session(self.path, state)
            except OSError as exc:
                if not self._failing:
                    self._on_error(f"Could not save the session to {self.path}: "
                                   f"{exc.strerror or type(exc).__name__}.")
                self._failing = True
                return False
            self._last, self._failing = key, False
            self.saves += 1
            return True

    def start(self, every: float = 5.0) -> threading.Thread:
        def loop() -> None:
            while not self._stop.wait(every):
                self.save()

        thread = threading.Thread(target=loop, name="session-keeper", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
