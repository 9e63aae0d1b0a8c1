"""The transformers engine satisfies the backend interface, and the interface's modules
import without torch."""

import subprocess
import sys

from explorer.backend import Backend, Capabilities


def test_engine_is_a_backend(make_engine):
    engine = make_engine("llama")
    assert isinstance(engine, Backend)
    caps = engine.capabilities
    assert isinstance(caps, Capabilities) and caps.influence and caps.kind == "local"
    assert caps.missing("influence") is None
    assert "not available" in Capabilities(influence=False).missing("influence")


def test_token_bytes_rebuild_multibyte_text(make_engine):
    engine = make_engine("llama")
    ids = engine.encode("café 🙂")
    raw = b"".join(engine.token_bytes(t) or b"" for t in ids)
    assert raw.decode("utf-8") == "café 🙂"
    assert engine.token_bytes(ids[0]) is None  # BOS is special
    assert ids[0] in engine.special_ids


def test_interface_imports_without_torch():
    code = "import sys, explorer.backend, explorer.session; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
