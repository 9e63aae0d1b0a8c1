"""The Python API's handle on one open backend (a local model or a server): the verbs of
the commands (`trace`, `tree`) and of the app's `x` (`positions`), each through the same
functions the commands call, so a result here is the result there:

- trace: explorer.core.trace_command.trace_on (the `trace` command's own run on an open
  backend: open_prompt, the sampler's choose_next, the generation loop of
  explorer.core.trace, the JSONL lines and the report);
- positions: open_prompt, one Backend.sync (the prompt's chunked load), record_lines;
- tree: explorer.tree.cli.grow (open_prompt, Backend.grow_tree).

Settings are keywords named after the commands' flags (explorer.api.keywords), checked by
the commands' parser. Errors are the commands' one-sentence exceptions (explorer.errors);
warnings are warnings.warn(text, ExplorerWarning).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import replace

from explorer.api.keywords import MODEL_KEYWORDS, PROMPT_KEYWORDS, command_args
from explorer.api.results import Positions, TraceResult
from explorer.cli import UsageError
from explorer.core.export import record_lines
from explorer.core.progress import TraceProgress
from explorer.errors import ExplorerWarning
from explorer.flags import settings_from_args

_ELSEWHERE = {name: f"{name} is chosen when the model opens: explorer.open({name}=...)."
              for name in MODEL_KEYWORDS}
_TREE_FILES = {name: "tree() returns the tree; write its files with tree.save_json(path) "
                     "and tree.save_jsonl(path)." for name in ("json", "jsonl")}


def _warn(text: str) -> None:
    """A server's retry notice, as it happens."""
    warnings.warn(text, ExplorerWarning, stacklevel=2)


class _Quiet(TraceProgress):
    """No bars (a notebook's cell output is not a terminal); the warnings kept, for the
    verb to issue as Python warnings pointing at the caller's line (_emit)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.notes: list[str] = []

    def warn(self, text: str) -> None:
        self.notes.append(text)


def _emit(notes: list[str]) -> None:
    """Issue the warnings from a verb: stacklevel 3 is the line that called the verb."""
    for text in notes:
        warnings.warn(text, ExplorerWarning, stacklevel=3)


class Model:
    """One open model or server. Use it as a context manager, or call close()."""

    def __init__(self, backend, settings, opened_with: dict, top_logprobs: int) -> None:
        self._backend = backend
        self.settings = settings  # explorer.config.Settings: config.toml + open()'s keywords
        self._opened_with = opened_with  # open()'s keywords, under every verb's settings
        self.top_logprobs = top_logprobs  # candidates kept per distribution
        self._lock = threading.Lock()  # one verb at a time: the backend holds one state per key

    # -- the model ---------------------------------------------------------------------------
    @property
    def info(self):
        """explorer.backend.types.ModelInfo: name, device, dtype, layers, vocabulary, context."""
        return self.backend.info

    @property
    def backend(self):
        """The backend (explorer.backend.Backend) for what the verbs do not cover."""
        if self._backend is None:
            raise UsageError("This model is closed; open another with explorer.open(...).")
        return self._backend

    def __repr__(self) -> str:
        if self._backend is None:
            return "<explorer.Model (closed)>"
        i = self._backend.info
        return f"<explorer.Model {i.name} ({i.architecture}, {i.device}, {i.dtype}, vocabulary {i.vocab_size:,})>"

    def close(self) -> None:
        """Free the model (or the server's connection). Closing twice is harmless."""
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _args(self, command: str, verb: str, prompt, keywords: dict, **rules):
        args = command_args(command, verb, {"prompt": prompt, **keywords}, base=self._opened_with, **rules)
        return args, settings_from_args(args)

    # -- the verbs ---------------------------------------------------------------------------
    def trace(self, prompt: str | None = None, **settings) -> TraceResult:
        """Generate after `prompt` (or input=FILE: a .txt, or a saved .json's exact ids) as
        `main.py trace` does, with its settings as keywords: max_new_tokens (32),
        top_logprobs (5), track=[TEXT, ...], the sampler's (temperature, top_k, top_p,
        min_p, repetition_penalty, presence_penalty, frequency_penalty, seed, preset),
        chat / system / prefix, a constraint (choice, regex, json_schema, grammar),
        attribution=METHOD, jsonl=PATH. Greedy unless a sampler setting is given."""
        from explorer.core.trace_command import check_args, trace_on

        args, run_settings = self._args("trace", "trace", prompt, settings, refused=_ELSEWHERE)
        check_args(args, lines_kept=True)
        if args.top_logprobs > self.top_logprobs:
            raise UsageError(f"top_logprobs must be at most {self.top_logprobs}, the candidates this model "
                             f"keeps per distribution (explorer.open(top_logprobs=...)), not {args.top_logprobs}.")
        quiet = _Quiet()
        with self._lock:
            backend = self.backend
            try:
                run = trace_on(backend, args, run_settings, quiet)
            finally:
                _emit(quiet.notes)
            result = run.result
            return TraceResult(
                lines=run.lines, report=run.report, prompt=run.start.text, prompt_ids=result.prompt_ids,
                prompt_tokens=tuple(backend.decode([t]) for t in result.prompt_ids),
                completion=backend.decode(result.completion_ids), completion_ids=result.completion_ids,
                stop=result.stop)

    def positions(self, prompt: str | None = None, **settings) -> Positions:
        """Every position of `prompt` (or input=FILE; chat / system / prefix as for trace):
        the token's logprob and rank under the distribution before it, that distribution's
        entropy (nats) and top candidates, from one load of the prompt, as the app's `x`
        saves them (on a server without prompt log-probs, llama.cpp, one request per
        position, as the app's colour layers fetch them)."""
        from explorer.core.trace_command import check_args
        from explorer.session.start import open_prompt

        args, run_settings = self._args("trace", "positions", prompt, settings, refused=_ELSEWHERE,
                                        allowed=PROMPT_KEYWORDS | MODEL_KEYWORDS)
        check_args(args, lines_kept=True)  # a prompt or a file, and a readable one
        with self._lock:
            backend = self.backend
            start = open_prompt(backend, run_settings.prompts, text=args.prompt, path=args.input, strict=True)
            _emit(start.warnings)
            try:
                records = backend.sync("positions", start.ids)
                if not backend.capabilities.prompt_logprobs:  # (llama.cpp: a request per position,
                    records = backend.prompt_values("positions")  # as the app's colour layers ask)
            finally:
                backend.forget("positions")
            return Positions(lines=record_lines(records, backend.decode), text=start.text, ids=start.ids)

    def tree(self, prompt: str | None = None, **settings):
        """Grow a token tree after `prompt` (or input=FILE; none: config.toml's default
        prompt) as `main.py tree` does: t_min, t_max, q_limit, max_depth, max_nodes,
        tree_stop=[TEXT, ...], batch, cache_mib, chat / system / prefix. Returns the
        explorer.tree.node.TokenTree: .to_dict() is the JSON `tree --json` writes,
        .leaf_lines() its --jsonl lines, .save_json(path) / .save_jsonl(path) the files."""
        from explorer.cli import check_input
        from explorer.inputs import check_prompt_file
        from explorer.tree.cli import grow

        args, run_settings = self._args("tree", "tree", prompt, settings,
                                        refused={**_ELSEWHERE, **_TREE_FILES})
        default = None
        if args.prompt is None and args.input is None:
            default = run_settings.resolve(run_settings.prompts.default)
            check_input(default, "The default prompt")
        check_prompt_file(args.input or default)
        quiet = _Quiet()
        with self._lock:
            try:
                _, _, tree = grow(self.backend, run_settings, text=args.prompt, path=args.input,
                               default=default, warn=quiet.warn)
            finally:
                _emit(quiet.notes)
            return tree


def open(model: str | None = None, *, server: str | None = None, dtype: str | None = None,
         device: str | None = None, device_map: str | dict | None = None, bf16: bool = False,
         top_logprobs: int | None = None, config: str | None = None) -> Model:
    """Open a model, as `main.py --model ... --server ...` does: `model` a hub id, a local
    folder, "smollm2" (the default) or "tiny" (the embedded model); `server` a vLLM or
    llama.cpp URL (with `model` naming one of its models); dtype "auto", "float32",
    "bfloat16" or "float16"; device "auto", "cpu", "cuda", "mps"; device_map a strategy
    ("auto", ...) or a dict of module -> device; `top_logprobs` how many candidates each
    distribution keeps (default config.toml [display] tokens_to_show, 30): a trace shows
    at most that many; `config` another config.toml. Raises ConfigError for a bad
    setting (before anything loads) and BackendError (ModelLoadError, ...) when the model
    or server cannot be opened."""
    from explorer.backend import open_backend
    from explorer.config import ConfigError, check_device_map

    table = device_map if isinstance(device_map, dict) else None
    opened_with = {"model": model, "server": server, "dtype": dtype, "device": device,
                   "device_map": None if table is not None else device_map, "bf16": bf16, "config": config}
    opened_with = {k: v for k, v in opened_with.items() if v not in (None, False)}
    args = command_args("trace", "open", opened_with, allowed=MODEL_KEYWORDS)
    settings = settings_from_args(args)
    if table is not None:
        check_device_map(table, "device_map")
        settings = replace(settings, model=replace(settings.model, device_map=dict(table)))
    if top_logprobs is not None:
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or top_logprobs < 1:
            raise ConfigError(f"top_logprobs must be a whole number of at least 1, not {top_logprobs!r}.")
        settings = replace(settings, display=replace(settings.display, tokens_to_show=top_logprobs))
    quiet = _Quiet()
    try:
        backend = open_backend(settings, influence=False, notice=quiet.warn)  # no verb needs attention rows
    finally:
        _emit(quiet.notes)
    client = getattr(backend, "client", None)
    if client is not None:  # a server's retry notices, as they come
        client.notice = _warn
    return Model(backend, settings, opened_with, settings.display.tokens_to_show)
