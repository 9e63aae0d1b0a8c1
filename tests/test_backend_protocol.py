"""Capabilities one way: the Backend Protocol declares every method the layers above call,
each concrete backend (the engine, vLLM, llama.cpp) structurally implements it, and each
backend's capability flags agree with what its methods do: a feature it does not serve
raises Unavailable (with capabilities.missing's sentence where the shared default answers),
a feature it serves is its own method."""

import ast
import inspect
from pathlib import Path

import pytest

from explorer.backend import Backend, Feature, Unavailable
from explorer.backend.defaults import Defaults
from explorer.engine import Engine
from explorer.remote.client import ServerClient
from explorer.remote.llama_cpp import LlamaCppBackend
from explorer.remote.vllm import VLLMBackend

ROOT = Path(__file__).resolve().parents[1] / "explorer"

# Written out here, not read from the code: which methods serve which optional feature.
FEATURE_METHODS = {
    Feature.INFLUENCE: ("influence",),
    Feature.LENS: ("layer_probs", "prompt_layer_probs"),
    Feature.ATTRIBUTION: ("attribution",),
    Feature.TREES: ("grow_tree",),
    Feature.TRACKED: ("tracked",),
    Feature.SAMPLING: ("next_logits",),
    Feature.SERVER_SAMPLING: ("draw",),
    Feature.CHAT: ("chat_ids",),
    Feature.CONSTRAINTS: ("constraint",),
    Feature.SERVER_CONSTRAINTS: ("constrained_completion", "load_whole"),
    Feature.ROWS: ("logprob_blocks",),
}


def protocol_members() -> dict[str, object]:
    return {name: value for name, value in vars(Backend).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))}


def calls_on_backends() -> set[str]:
    """Every attribute the layers above (not the backends themselves) read off a value
    named backend/engine: `backend.x`, `self.engine.x`, `lane.backend.x`, ..."""
    names: set[str] = set()
    for path in ROOT.rglob("*.py"):
        if path.relative_to(ROOT).parts[0] in ("engine", "remote", "backend", "default_model"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            holder = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            root = owner
            while isinstance(root, ast.Attribute):
                root = root.value
            if holder in ("backend", "engine") and getattr(root, "id", None) != "explorer":
                names.add(node.attr)
    return names


def test_the_protocol_declares_every_method_the_core_and_ui_call():
    called = calls_on_backends()
    assert {"sync", "prompt_values", "load_whole", "constrained_completion", "draw"} <= called
    assert called - protocol_members().keys() == set()


def test_every_feature_has_a_flag_its_methods_and_a_sentence():
    assert set(FEATURE_METHODS) == set(Feature)
    members = protocol_members()
    for feature, methods in FEATURE_METHODS.items():
        assert all(m in members for m in methods), feature


def _compatible(declared: inspect.Signature, actual: inspect.Signature) -> str | None:
    """Why `actual` cannot be called the way `declared` may be (None: it can)."""
    params = actual.parameters
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for name, want in declared.parameters.items():
        got = params.get(name)
        if got is None:
            if want.kind is want.KEYWORD_ONLY and has_var_kw:
                continue
            return f"no parameter {name!r}"
        if want.kind is want.POSITIONAL_OR_KEYWORD and got.kind is not got.POSITIONAL_OR_KEYWORD:
            return f"{name!r} is {got.kind.description}, not positional-or-keyword"
        if want.kind is want.KEYWORD_ONLY and got.kind not in (got.KEYWORD_ONLY, got.POSITIONAL_OR_KEYWORD):
            return f"{name!r} cannot be passed by keyword"
        if want.default is not want.empty and got.default is got.empty:
            return f"{name!r} is optional in the Protocol but required here"
    for name, got in params.items():
        if name not in declared.parameters and got.default is got.empty \
                and got.kind not in (got.VAR_POSITIONAL, got.VAR_KEYWORD):
            return f"extra required parameter {name!r}"
    return None


@pytest.mark.parametrize("cls", [Engine, VLLMBackend, LlamaCppBackend], ids=lambda c: c.__name__)
def test_each_backend_class_structurally_implements_the_protocol(cls):
    for name, declared in protocol_members().items():
        actual = inspect.getattr_static(cls, name, None)
        assert actual is not None, f"{cls.__name__} has no {name}"
        if isinstance(declared, property):
            assert isinstance(actual, property), f"{cls.__name__}.{name} is not a property"
            continue
        why = _compatible(inspect.signature(declared), inspect.signature(actual))
        assert why is None, f"{cls.__name__}.{name}: {why}"


def _remote(cls):
    client = ServerClient("http://127.0.0.1:9")  # never contacted: only flags and raises
    return cls(client, "m", vocab_size=50, max_context=64, tokens_to_show=5,
               special_ids=frozenset(), max_top_k=None)


def _dummy_call(method):
    """Call with a placeholder for every required argument."""
    params = [p for p in inspect.signature(method).parameters.values()
              if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return method(*["k"] * len(params))


@pytest.fixture(params=["engine", "engine-plain", "vllm", "llama.cpp"])
def backend(request, make_engine):
    if request.param == "engine":
        return make_engine("llama", layer_prob=True)
    if request.param == "engine-plain":
        return make_engine("llama", influence=False)
    return _remote(VLLMBackend if request.param == "vllm" else LlamaCppBackend)


def test_capability_flags_agree_with_what_raises(backend):
    caps = backend.capabilities
    for feature, methods in FEATURE_METHODS.items():
        served = caps.missing(feature) is None
        for name in methods:
            own = inspect.getattr_static(type(backend), name)
            if served:
                assert own is not inspect.getattr_static(Defaults, name), \
                    f"{type(backend).__name__} flags {feature} but keeps the default {name}"
                continue
            with pytest.raises(Unavailable) as info:
                _dummy_call(getattr(backend, name))
            if own is inspect.getattr_static(Defaults, name):
                assert str(info.value) == caps.missing(feature)
            assert str(info.value).endswith("."), str(info.value)


def test_the_expected_flags_per_backend(make_engine):
    engine, vllm, llama = make_engine("llama"), _remote(VLLMBackend), _remote(LlamaCppBackend)
    served = {name: {f for f in Feature if b.capabilities.missing(f) is None}
              for name, b in (("engine", engine), ("vllm", vllm), ("llama", llama))}
    assert {Feature.SAMPLING, Feature.CONSTRAINTS, Feature.CHAT, Feature.TRACKED,
            Feature.TREES, Feature.INFLUENCE} <= served["engine"]
    assert served["vllm"] == {Feature.SERVER_SAMPLING, Feature.CHAT, Feature.TRACKED,
                              Feature.SERVER_CONSTRAINTS}
    assert served["llama"] == {Feature.SERVER_SAMPLING, Feature.CHAT}
    # The constraint sentence names what a server with structured outputs offers instead.
    assert "trace --server applies them" in vllm.capabilities.missing(Feature.CONSTRAINTS)
    assert "trace --server" not in llama.capabilities.missing(Feature.CONSTRAINTS)
    assert "local-only on this server (llama.cpp)" in llama.capabilities.missing(Feature.SERVER_CONSTRAINTS)
    with pytest.raises(Unavailable, match="Tracked tokens need"):
        llama.capabilities.require(Feature.TRACKED)
