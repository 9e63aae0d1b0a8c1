"""Convert a transformers model folder (default: the embedded model) to an f32 GGUF file
for llama-server, with the converter that ships in the llama.cpp sources.

Run it with the Python of the servers' venv (it has torch, transformers, gguf and
sentencepiece): tools/install_servers.sh puts it at $CACHE/vllm-venv/bin/python.

    python tools/convert_embedded_gguf.py --llama-cpp $CACHE/llama.cpp --out model.gguf [MODEL_DIR]

The converter identifies a BPE pre-tokenizer by hashing how it splits a test string and
refuses one it does not know. The embedded model's tokenizer is plain GPT-2 byte-level
BPE (a ByteLevel pre-tokenizer with GPT-2's regex, no normaliser, no prefix space); after
checking exactly that, we tell the converter it is "gpt-2". Any other tokenizer is left to
the converter's own check. The tests then compare llama-server's tokenisation with the
transformers tokenizer's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

EMBEDDED = Path(__file__).resolve().parent.parent / "explorer" / "default_model"


def is_plain_gpt2_byte_level(model_dir: Path) -> bool:
    path = model_dir / "tokenizer.json"
    if not path.exists():
        return False
    spec = json.loads(path.read_text(encoding="utf-8"))
    pre = spec.get("pre_tokenizer") or {}
    return (spec.get("normalizer") is None
            and (spec.get("model") or {}).get("type") == "BPE"
            and pre.get("type") == "ByteLevel"
            and pre.get("use_regex", True) is True
            and pre.get("add_prefix_space", False) is False)


def convert(model_dir: Path, out: Path, llama_cpp: Path) -> None:
    sys.path.insert(0, str(llama_cpp))
    sys.path.insert(1, str(llama_cpp / "gguf-py"))
    import convert_hf_to_gguf  # noqa: E402 - from the llama.cpp sources
    from conversion import base  # noqa: E402

    if is_plain_gpt2_byte_level(model_dir):
        original = base.TextModel.get_vocab_base_pre

        def pre(self, tokenizer) -> str:
            try:
                return original(self, tokenizer)
            except NotImplementedError:
                return "gpt-2"

        base.TextModel.get_vocab_base_pre = pre
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: a killed conversion leaves no half file.
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".gguf.part")
    os.close(fd)
    sys.argv = ["convert_hf_to_gguf.py", str(model_dir), "--outfile", tmp, "--outtype", "f32"]
    try:
        convert_hf_to_gguf.main()
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", type=Path, default=EMBEDDED)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--llama-cpp", type=Path, required=True, help="the llama.cpp source folder")
    args = parser.parse_args()
    convert(args.model_dir.resolve(), args.out.resolve(), args.llama_cpp.resolve())


if __name__ == "__main__":
    main()
