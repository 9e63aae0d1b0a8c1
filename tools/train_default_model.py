"""Build Token Explorer's embedded default model from scratch, on CPU.

    uv run python tools/train_default_model.py            # full build (~40 min training)
    uv run python tools/train_default_model.py --minutes 3  # quick smoke build

Steps (all deterministic for fixed seeds; every setting is printed):
1. Corpus: ``apt-get download`` a few Debian packages into ``.corpus/`` (gitignored),
   unpack with ``dpkg-deb -x`` and clean them into plain-text documents:
   the Python 3.11 documentation (reST sources, PSF licence), the King James Bible
   (public domain; decoded with the package's own ``bible`` program) and the BSD
   ``fortune`` cookie files.
2. Split documents into train / held-out (stratified per source, seeded).
3. Train a byte-level BPE tokenizer (``tokenizers``) on the training split.
4. Train a small Llama (``LlamaForCausalLM``) with AdamW, warmup + cosine decay,
   for a wall-clock budget (``--minutes``; the cosine decay follows the clock, so a
   busy shared CPU still gets a complete schedule).  The number of steps taken is
   printed; ``--steps N`` runs a step-based schedule instead, exactly repeatable.
5. Evaluate held-out perplexity (and a unigram baseline), write weights, tokenizer,
   generation config and ``MODEL_CARD.md`` into ``explorer/default_model/`` and a
   held-out sample into ``tests/data/heldout.txt``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

EOT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [EOT, IM_START, IM_END]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

PROMPTS = [
    "The meaning of life is",
    "In the beginning",
    "To open a file in Python,",
    "Once upon a time",
    "The best way to learn",
]

PACKAGES = {
    "python3.11-doc": "3.11.2-6+deb12u9",
    "bible-kjv-text": "4.38",
    "bible-kjv": "4.38",  # only its `bible` program, to decode the text
    "fortunes": "1:1.99.1-7.3",
    "fortunes-min": "1:1.99.1-7.3",
}


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------- corpus


def fetch_packages(corpus: Path) -> dict[str, Path]:
    """apt-get download + dpkg-deb -x each package; returns {package: unpack dir}."""
    debs = corpus / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    out = {}
    for pkg in PACKAGES:
        found = sorted(debs.glob(f"{pkg}_*.deb"))
        if not found:
            log(f"apt-get download {pkg}")
            subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True,
                           stdout=subprocess.DEVNULL)
            found = sorted(debs.glob(f"{pkg}_*.deb"))
        deb = found[-1]
        dest = corpus / "x" / pkg
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)  # dpkg-deb makes only the last folder
            subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
        log(f"  {deb.name}")
        out[pkg] = dest
    return out


ADORN = re.compile(r"^\s*([=\-~^*#\"'`:.+_])\1{2,}\s*$")  # heading under/overlines
SIMPLE_TABLE = re.compile(r"^\s*=+( +=+)+\s*$")
ROLE = re.compile(r":(?:[\w.+-]+:)+`([^`]*)`")
LINK = re.compile(r"`([^`<]*?)\s*<[^>]*>`__?")
REF = re.compile(r"`([^`]+)`__?")
INTERP = re.compile(r"(?<!`)`([^`]+)`(?!`)")
LITERAL = re.compile(r"``(.+?)``")
FOOTREF = re.compile(r"\s*\[(?:#\w*|\d+|\*)\]_")
SUBST = re.compile(r"\|(\w[\w ]*)\|")
EMPH = re.compile(r"(?<![\w*\\])\*{1,2}([^\s*](?:[^*]*?[^\s*])?)\*{1,2}(?![\w*])")
DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
BULLET = re.compile(r"^\s*(?:[*+-]|\d+\.|#\.|\(\w\))\s")

# directives whose argument is a signature / title worth keeping, body kept
KEEP_ARG = {"function", "method", "class", "attribute", "data", "exception",
            "decorator", "decoratormethod", "classmethod", "staticmethod",
            "module", "opcode", "cmdoption", "option", "envvar", "describe",
            "pdbcommand", "abstractmethod", "coroutinefunction",
            "coroutinemethod", "property", "c:function", "c:macro", "c:type",
            "c:member", "c:var", "rubric", "topic", "sidebar", "glossary",
            "admonition", "program"}
# directives whose body is prose (argument dropped or rephrased)
KEEP_BODY = {"note", "warning", "seealso", "important", "tip", "caution",
             "attention", "hint", "impl-detail", "versionadded",
             "versionchanged", "deprecated", "deprecated-removed", "centered",
             "epigraph", "only", "availability", "audit-event"}
VERSION_WORDS = {"versionadded": "New in version", "versionchanged": "Changed in version",
                 "deprecated": "Deprecated since version",
                 "deprecated-removed": "Deprecated since version"}


def inline(s: str) -> str:
    s = ROLE.sub(lambda m: _role_text(m.group(1)), s)
    s = LITERAL.sub(r"\1", s)
    s = LINK.sub(r"\1", s)
    s = FOOTREF.sub("", s)
    s = REF.sub(r"\1", s)
    s = INTERP.sub(r"\1", s)
    s = SUBST.sub(r"\1", s)
    s = EMPH.sub(r"\1", s)
    s = s.replace("\\ ", "").replace("\\*", "*")
    return s


def _role_text(t: str) -> str:
    m = re.match(r"^(.*?)\s*<([^>]*)>$", t, re.S)
    if m and m.group(1):
        return m.group(1)
    if m:
        t = m.group(2)
    t = t.lstrip("!")
    if t.startswith("~"):
        t = t[1:].rsplit(".", 1)[-1]
    return t


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def clean_rst(text: str, max_code_lines: int = 12) -> str:
    """Turn a reST source into plain prose (+ short code examples)."""
    lines = text.expandtabs(8).split("\n")
    out: list[str] = []  # each entry: ("p", line) or ("c", line) or ("", "")
    i, n = 0, len(lines)

    def block_end(start: int, base: int) -> int:
        """First line index after an indented block (indent > base) starting at `start`."""
        j = start
        while j < n and (not lines[j].strip() or indent_of(lines[j]) > base):
            j += 1
        # give trailing blank lines back
        while j > start and not lines[j - 1].strip():
            j -= 1
        return j

    def emit_code(start: int, end: int):
        block = [l for l in lines[start:end]]
        while block and not block[0].strip():
            block.pop(0)
        if not block or len(block) > max_code_lines:
            return
        d = min(indent_of(l) for l in block if l.strip())
        out.append(("", ""))
        for l in block:
            out.append(("c", "    " + l[d:] if l.strip() else ""))
        out.append(("", ""))

    while i < n:
        line = lines[i]
        s = line.strip()
        if ADORN.match(line) or SIMPLE_TABLE.match(line):
            i += 1
            continue
        if s.startswith("+-") or s.startswith("+="):  # grid table: drop whole table
            while i < n and lines[i].strip()[:1] in ("+", "|"):
                i += 1
            continue
        m = DIRECTIVE.match(line)
        if m:
            base, name, arg = len(m.group(1)), m.group(2).lower(), m.group(3)
            # directive options (:noindex: etc.) directly below
            j = i + 1
            while j < n and lines[j].strip().startswith(":") and indent_of(lines[j]) > base \
                    and re.match(r"^\s*:[\w -]+:", lines[j]):
                j += 1
            end = block_end(j, base)
            if name in ("code-block", "sourcecode", "code", "doctest", "testcode",
                        "testoutput"):
                emit_code(j, end)
                i = end
            elif name in KEEP_ARG or name in KEEP_BODY:
                if name in VERSION_WORDS and arg:
                    v = arg.split()[0]
                    rest = " ".join(arg.split()[1:])
                    out.append(("p", f"{VERSION_WORDS[name]} {v}." + (f" {inline(rest)}" if rest else "")))
                elif name in KEEP_ARG and arg:
                    out.append(("", ""))
                    out.append(("p", inline(arg)))
                    out.append(("", ""))
                elif name == "seealso" and arg:
                    out.append(("p", "See also: " + inline(arg)))
                # keep the body, dedented, processed recursively
                body = "\n".join(l[base + 1:] if len(l) > base else "" for l in lines[j:end])
                sub = clean_rst(_dedent(body), max_code_lines)
                if sub.strip():
                    out.append(("", ""))
                    out.extend(("x", l) for l in sub.split("\n"))
                    out.append(("", ""))
                i = end
            else:  # index, toctree, _labels, tables, images, highlight, ...
                i = end
            continue
        if s.startswith(".."):  # comment, target or footnote
            fm = re.match(r"^\s*\.\.\s+\[[^\]]+\]\s+(.*)$", line)
            end = block_end(i + 1, indent_of(line))
            if fm:
                out.append(("", ""))
                out.append(("p", inline(fm.group(1))))
                for l in lines[i + 1:end]:
                    out.append(("p", inline(l.strip())))
            i = end
            continue
        if s.endswith("::") and not s.startswith(">>>"):
            # paragraph introducing a literal block
            t = s[:-2].rstrip()
            if t:
                out.append(("p", " " * indent_of(line) + inline(t) + ("" if t.endswith(":") or s.endswith(" ::") else ":")))
            j = i + 1
            while j < n and not lines[j].strip():
                j += 1
            end = block_end(j, indent_of(line))
            if j < n and indent_of(lines[j]) > indent_of(line):
                emit_code(j, end)
                i = end
            else:
                i += 1
            continue
        if s.startswith(">>>"):  # doctest block (ends at blank line)
            j = i
            while j < n and lines[j].strip():
                j += 1
            emit_code(i, j)
            i = j
            continue
        out.append(("p", line.rstrip()) if s else ("", ""))
        i += 1
    return _reflow(out)


def _dedent(text: str) -> str:
    ls = text.split("\n")
    ind = [indent_of(l) for l in ls if l.strip()]
    d = min(ind) if ind else 0
    return "\n".join(l[d:] for l in ls)


def _reflow(items) -> str:
    """Unwrap hard-wrapped prose paragraphs; keep code and list structure."""
    res: list[str] = []
    para: list[str] = []

    def flush():
        if not para:
            return
        merged: list[str] = []
        for l in para:
            if merged and not BULLET.match(l) and l.strip():
                merged[-1] = merged[-1].rstrip() + " " + l.strip()
            else:
                merged.append(l.rstrip())
        # inline markup is resolved on whole (unwrapped) lines: roles span line breaks
        res.extend(" " * indent_of(m) + re.sub(r"  +", " ", inline(m.strip())) for m in merged)
        para.clear()

    for kind, l in items:
        if kind == "p" and l.strip():
            para.append(l)
        else:
            flush()
            if kind in ("c", "x"):
                res.append(l)
            else:
                res.append("")
    flush()
    text = "\n".join(res)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def python_docs(root: Path) -> list[tuple[str, str]]:
    src = root / "usr/share/doc/python3.11/html/_sources"
    docs = []
    for f in sorted(src.rglob("*.rst.txt")):
        rel = f.relative_to(src).as_posix()
        if rel.startswith(("whatsnew/changelog", "includes/")) or rel in ("contents.rst.txt",):
            continue
        text = clean_rst(f.read_text(encoding="utf-8", errors="replace"))
        # split long pages into sections of ~8 KB at blank lines before a short title line
        for part in _split(text, 8000):
            if len(part) > 200:
                docs.append(("python-docs", part))
    return docs


def _split(text: str, size: int) -> list[str]:
    paras = text.split("\n\n")
    parts, cur = [], []
    for p in paras:
        cur.append(p)
        if sum(len(c) for c in cur) > size:
            parts.append("\n\n".join(cur))
            cur = []
    if cur:
        parts.append("\n\n".join(cur))
    return parts


def bible(text_root: Path, prog_root: Path) -> list[tuple[str, str]]:
    out = subprocess.run(
        [str(prog_root / "usr/bin/bible"), "-l100000", "-p", str(text_root / "usr/lib"),
         "gen1:1-rev22:21"], check=True, capture_output=True, text=True,
        env={**os.environ, "HOME": "/tmp"}).stdout
    docs, title, verses = [], None, []
    for line in out.split("\n"):
        m = re.match(r"^ +\d+ (.*)$", line)
        if m and title:
            verses.append(m.group(1).strip())
        elif line.strip():
            if title and verses:
                docs.append(("kjv-bible", title + "\n\n" + "\n".join(verses)))
            title, verses = line.strip(), []
    if title and verses:
        docs.append(("kjv-bible", title + "\n\n" + "\n".join(verses)))
    return docs


def fortunes(roots: list[Path]) -> list[tuple[str, str]]:
    docs = []
    for root in roots:
        d = root / "usr/share/games/fortunes"
        for f in sorted(d.glob("*.u8")):
            if f.stem in ("ascii-art", "translate-me"):
                continue
            text = f.read_text(encoding="utf-8", errors="replace")
            for cookie in re.split(r"\n%\n", text):
                cookie = "\n".join(l.rstrip() for l in cookie.strip("\n%").split("\n")).strip("\n")
                if len(cookie.strip()) > 20:
                    docs.append(("fortunes", cookie))
    return docs


def build_corpus(corpus: Path) -> list[tuple[str, str]]:
    roots = fetch_packages(corpus)
    docs = python_docs(roots["python3.11-doc"])
    docs += bible(roots["bible-kjv-text"], roots["bible-kjv"])
    docs += fortunes([roots["fortunes-min"], roots["fortunes"]])
    # exact duplicates (the same fortune in several cookie files) would leak across the
    # train / held-out split: keep the first copy only
    seen, unique = set(), []
    for src, text in docs:
        key = " ".join(text.split())
        if key not in seen:
            seen.add(key)
            unique.append((src, text))
    log(f"corpus: {len(docs)} documents, {len(docs) - len(unique)} exact duplicates dropped")
    return unique


def split_docs(docs, frac: float, seed: int):
    rng = random.Random(seed)
    train, held = [], []
    for d in docs:
        (held if rng.random() < frac else train).append(d)
    rng.shuffle(train)
    rng.shuffle(held)
    return train, held


# ------------------------------------------------------------------------ tokenizer


def train_tokenizer(texts: list[str], vocab_size: int, out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOT, bos_token=EOT, unk_token=None,
        pad_token=EOT, additional_special_tokens=[IM_START, IM_END],
        model_max_length=1024, clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return fast


def encode_docs(tok, docs) -> np.ndarray:
    eot = tok.convert_tokens_to_ids(EOT)
    ids: list[int] = []
    texts = [t for _, t in docs]
    for k in range(0, len(texts), 512):
        for e in tok._tokenizer.encode_batch(texts[k:k + 512], add_special_tokens=False):
            ids.extend(e.ids)
            ids.append(eot)
    return np.asarray(ids, dtype=np.int32)


# ---------------------------------------------------------------------------- model


def make_config(a, vocab_size: int, tok):
    from transformers import LlamaConfig

    eot = tok.convert_tokens_to_ids(EOT)
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=a.width, intermediate_size=a.ffn,
        num_hidden_layers=a.layers, num_attention_heads=a.heads,
        num_key_value_heads=a.kv_heads, head_dim=a.width // a.heads,
        max_position_embeddings=a.max_pos, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=True, hidden_act="silu", initializer_range=0.02,
        attention_bias=False, mlp_bias=False, attention_dropout=0.0,
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, use_cache=True,
        dtype="float32",
    )


@torch.no_grad()
def perplexity(model, ids: np.ndarray, ctx: int, batch: int = 8) -> tuple[float, int]:
    """Non-overlapping windows of `ctx` tokens; every token after the first of a window is
    scored (mean NLL over all scored tokens, fp32)."""
    model.eval()
    windows = [ids[k:k + ctx] for k in range(0, len(ids) - 1, ctx)]
    windows = [w for w in windows if len(w) > 1]
    nll, count = 0.0, 0
    for k in range(0, len(windows), batch):
        group = windows[k:k + batch]
        L = max(len(w) for w in group)
        x = torch.zeros((len(group), L), dtype=torch.long)
        mask = torch.zeros((len(group), L), dtype=torch.long)
        for r, w in enumerate(group):
            x[r, :len(w)] = torch.from_numpy(w.astype(np.int64))
            mask[r, :len(w)] = 1
        logits = model(input_ids=x, attention_mask=mask).logits.float()
        lp = torch.log_softmax(logits[:, :-1], dim=-1)
        tgt = x[:, 1:]
        tl = lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        m = mask[:, 1:].bool()
        nll -= tl[m].double().sum().item()
        count += int(m.sum())
    return math.exp(nll / count), count


def unigram_ppl(train_ids: np.ndarray, eval_ids: np.ndarray, vocab: int) -> float:
    counts = np.bincount(train_ids, minlength=vocab).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    # scores every token of the text (the model skips the first token of each window;
    # a difference of a few dozen tokens out of thousands)
    return float(np.exp(-logp[eval_ids].mean()))


def generate(model, tok, prompt: str, n: int = 40) -> str:
    x = tok(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**x, max_new_tokens=n, do_sample=False,
                         pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, x["input_ids"].shape[1]:], skip_special_tokens=False)


# ---------------------------------------------------------------------------- train


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=40.0, help="wall-clock budget of the training loop")
    p.add_argument("--steps", type=int, default=0, help="fixed number of optimiser steps (step-based schedule instead of --minutes)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--ffn", type=int, default=768)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--max-pos", type=int, default=1024)
    p.add_argument("--seq", type=int, default=512, help="training sequence length")
    p.add_argument("--batch", type=int, default=6, help="sequences per optimiser step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr-frac", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--heldout-frac", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--corpus", default=str(ROOT / ".corpus"))
    p.add_argument("--workdir", default=str(ROOT / ".train"))
    p.add_argument("--out", default=str(ROOT / "explorer/default_model"))
    p.add_argument("--heldout-sample", default=str(ROOT / "tests/data/heldout.txt"))
    p.add_argument("--sample-bytes", type=int, default=45000)
    a = p.parse_args()

    from transformers import LlamaForCausalLM, GenerationConfig

    t_start = time.time()
    torch.set_num_threads(a.threads)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    log("settings:", json.dumps(vars(a), sort_keys=True))
    log(f"torch {torch.__version__}, python {platform.python_version()}, "
        f"cpu: {platform.processor() or platform.machine()}, threads {torch.get_num_threads()}")

    corpus, work, out = Path(a.corpus), Path(a.workdir), Path(a.out)
    work.mkdir(parents=True, exist_ok=True)
    docs = build_corpus(corpus)
    train_docs, held_docs = split_docs(docs, a.heldout_frac, a.seed)
    stats = {}
    for name in ("python-docs", "kjv-bible", "fortunes"):
        tr = [t for s, t in train_docs if s == name]
        he = [t for s, t in held_docs if s == name]
        stats[name] = {"train_docs": len(tr), "train_chars": sum(map(len, tr)),
                       "held_docs": len(he), "held_chars": sum(map(len, he))}
        log(f"corpus {name:12s} train {len(tr):6d} docs {stats[name]['train_chars']/1e6:6.2f} MB"
            f" | held-out {len(he):4d} docs {stats[name]['held_chars']/1e6:5.2f} MB")
    (work / "train.txt").write_text(f"\n{EOT}\n".join(t for _, t in train_docs))
    (work / "heldout.txt").write_text(f"\n{EOT}\n".join(t for _, t in held_docs))

    # tokenizer
    t0 = time.time()
    tok_dir = work / "tokenizer"
    tok = train_tokenizer([t for _, t in train_docs], a.vocab, tok_dir)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tok_dir)
    vocab = len(tok)
    log(f"tokenizer: vocab {vocab} trained in {time.time()-t0:.0f}s")
    train_ids = encode_docs(tok, train_docs)
    held_ids = encode_docs(tok, held_docs)
    log(f"tokens: train {len(train_ids):,}  held-out {len(held_ids):,}")

    # held-out sample for the test suite: whole held-out documents (mixed sources), cut
    # at a document boundary, documents separated by the end-of-text token
    rng = random.Random(a.seed + 1)
    by_src = {}
    for s, t in held_docs:
        by_src.setdefault(s, []).append(t)
    quota = {"python-docs": 0.5, "kjv-bible": 0.25, "fortunes": 0.25}
    sample_docs = []
    for s, q in quota.items():
        pool = list(by_src.get(s, []))
        rng.shuffle(pool)
        size = 0
        for t in pool:
            if size + len(t) > q * a.sample_bytes:
                if t is pool[-1] or size > 0.8 * q * a.sample_bytes:
                    break
                continue
            sample_docs.append(t)
            size += len(t)
    rng.shuffle(sample_docs)
    sample_text = EOT.join(sample_docs)
    sample_ids = np.asarray(tok(sample_text, add_special_tokens=False)["input_ids"], dtype=np.int32)
    log(f"held-out sample: {len(sample_docs)} docs, {len(sample_text.encode())} bytes, {len(sample_ids)} tokens")

    # model
    config = make_config(a, vocab, tok)
    model = LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: Llama {a.layers} layers, width {a.width}, ffn {a.ffn}, heads {a.heads}/{a.kv_heads} kv, "
        f"vocab {vocab}, tied embeddings; {n_params:,} parameters")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)

    # data order: non-overlapping windows of seq+1 tokens, shuffled; epochs reshuffle
    W = a.seq + 1
    n_win = (len(train_ids) - 1) // a.seq
    data_rng = np.random.default_rng(a.seed)

    def batches():
        epoch = 0
        while True:
            perm = data_rng.permutation(n_win)
            for k in range(0, n_win - a.batch + 1, a.batch):
                idx = perm[k:k + a.batch]
                x = np.stack([train_ids[i * a.seq:i * a.seq + W] for i in idx])
                yield torch.from_numpy(x.astype(np.int64)), epoch
            epoch += 1

    budget = a.minutes * 60.0
    total = a.steps or None  # None: the schedule follows the wall clock

    # learning-rate schedule: linear warmup (steps), then cosine decay to min_lr_frac.
    # With --steps N the decay runs over steps (exactly repeatable); otherwise over the
    # wall-clock budget, so a CPU shared with other jobs still gets a full decay and the
    # loop stops on time (the number of steps taken is printed for --steps).
    def lr_at(step, elapsed):
        warm = min(a.warmup, max(1, total // 10)) if total else a.warmup
        if step < warm:
            return a.lr * (step + 1) / warm
        if total:
            prog = (step - warm) / max(1, total - warm)
        else:
            prog = (elapsed - t_warm[0]) / max(1.0, budget - t_warm[0])
        prog = min(1.0, max(0.0, prog))
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * prog)))

    t_warm = [0.0]  # elapsed time when warmup ended (time-based schedule)

    model.train()
    it = batches()
    step, tokens_seen, t_loop = 0, 0, time.time()
    ema, t_last, tok_last = None, time.time(), 0
    log_every = 25
    while True:
        el = time.time() - t_loop
        if total is not None and step >= total:
            break
        if total is None and el >= budget:
            break
        if step == a.warmup:
            t_warm[0] = el
        x, epoch = next(it)
        lr = lr_at(step, el)
        for g in opt.param_groups:
            g["lr"] = lr
        logits = model(input_ids=x[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)).float(),
                                                 x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += x.shape[0] * (x.shape[1] - 1)
        lv = loss.item()
        ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        if step % log_every == 0 or step == total:
            now = time.time()
            tps = (tokens_seen - tok_last) / (now - t_last)
            t_last, tok_last = now, tokens_seen
            log(f"step {step:5d}{'/' + str(total) if total else ''} epoch {epoch} loss {lv:.3f} (ema {ema:.3f}) "
                f"lr {lr:.2e} gnorm {float(gn):.2f} tok/s {tps:,.0f} "
                f"tokens {tokens_seen:,} elapsed {(now-t_loop)/60:.1f} min")
        if step % 500 == 0:
            torch.save({"model": model.state_dict(), "step": step}, work / "ckpt.pt")
    train_time = time.time() - t_loop
    log(f"training done: {step} steps, {tokens_seen:,} tokens, {train_time/60:.1f} min "
        f"(repeat exactly with --steps {step})")

    # evaluation
    model.eval()
    t0 = time.time()
    ppl_held, n_held = perplexity(model, held_ids, a.seq)
    ppl_sample, n_sample = perplexity(model, sample_ids, a.seq)
    uni_held = unigram_ppl(train_ids, held_ids, vocab)
    uni_sample = unigram_ppl(train_ids, sample_ids, vocab)
    log(f"held-out ppl {ppl_held:.2f} over {n_held:,} tokens (unigram {uni_held:.1f}); "
        f"sample ppl {ppl_sample:.2f} over {n_sample:,} tokens (unigram {uni_sample:.1f}); "
        f"eval {time.time()-t0:.0f}s")
    gens = [(pr, generate(model, tok, pr)) for pr in PROMPTS]
    for pr, g in gens:
        log(f"  {pr!r} -> {g!r}")

    # write the package folder
    if out.exists():
        for f in out.iterdir():
            if f.is_file():
                f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    tc = out / "tokenizer_config.json"
    cfg = json.loads(tc.read_text())
    for k in ("is_local", "local_files_only", "name_or_path"):  # loader state, not config
        cfg.pop(k, None)
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"  # = TokenizersBackend in transformers 5
    tc.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                     pad_token_id=config.pad_token_id, do_sample=False,
                     max_new_tokens=64).save_pretrained(out)
    sp = Path(a.heldout_sample)
    sp.parent.mkdir(parents=True, exist_ok=True)
    sp.write_text(sample_text, encoding="utf-8")
    info = dict(
        n_params=n_params, steps=step, tokens_seen=tokens_seen, train_minutes=train_time / 60,
        total_minutes=(time.time() - t_start) / 60, ppl_held=ppl_held, n_held=n_held,
        uni_held=uni_held, ppl_sample=ppl_sample, n_sample=n_sample, uni_sample=uni_sample,
        train_tokens=len(train_ids), held_tokens=len(held_ids), vocab=vocab, stats=stats,
        gens=gens, args=vars(a), torch=torch.__version__,
        cpu=_cpu_name(), sample_bytes=len(sample_text.encode()),
        weights_mb=(out / "model.safetensors").stat().st_size / 1e6,
        epochs=tokens_seen / len(train_ids),
    )
    (work / "result.json").write_text(json.dumps(info, indent=2))
    (out / "MODEL_CARD.md").write_text(model_card(info))
    for f in out.iterdir():
        f.chmod(0o644)
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    log(f"wrote {out} ({size:.1f} MB) and {sp}; total {info['total_minutes']:.1f} min")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().split("\n"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def model_card(i) -> str:
    a = i["args"]
    s = i["stats"]
    gens = "\n".join(
        f"| `{pr}` | `{_md(g)}` |" for pr, g in i["gens"])
    return f"""# Token Explorer default model

A tiny Llama-architecture causal language model trained from scratch, on CPU, so that
Token Explorer works offline on first run. It is a toy: it has seen a few million tokens
of Python documentation, the King James Bible and `fortune` cookies, and writes
fluent-looking nonsense in those styles. Use it to learn the app, not for answers.

Built by `uv run python tools/train_default_model.py --minutes {a['minutes']:g}` (seed {a['seed']});
With `--minutes` the cosine decay follows the wall clock (the CPU was shared with other
jobs, so speed varied); `--steps {i['steps']}` runs a step-based schedule of the same length,
bit-for-bit repeatable on the same machine and library versions.

## Architecture

| | |
|---|---|
| class | `LlamaForCausalLM` (RMSNorm, rotary position embeddings, SwiGLU MLP, grouped-query attention) |
| layers | {a['layers']} |
| hidden size | {a['width']} |
| MLP size | {a['ffn']} |
| attention heads / KV heads | {a['heads']} / {a['kv_heads']} (head dim {a['width'] // a['heads']}) |
| vocabulary | {i['vocab']} (byte-level BPE) |
| max positions | {a['max_pos']} (trained on windows of {a['seq']}) |
| embeddings | tied input/output |
| parameters | {i['n_params']:,} |
| weights | float32 safetensors, {i['weights_mb']:.1f} MB |

## Tokenizer

Byte-level BPE trained with the `tokenizers` library on the training split
(vocabulary {i['vocab']}, GPT-2 pre-tokenisation regex, no prefix space): any text,
including newlines, tabs and Unicode, tokenises and decodes back unchanged.
Special tokens: `<|endoftext|>` (end of text; also used as BOS and pad, never added
automatically; documents in training are separated by it), `<|im_start|>`, `<|im_end|>`
with a ChatML chat template. The model was never trained on chat data: the chat tokens
are there so chat-template code paths can be exercised.

## Training data

Obtained by the script itself from Debian 12 packages (`apt-get download` + `dpkg-deb -x`):

| source | Debian package | licence | train docs | train chars | held-out docs | held-out chars |
|---|---|---|---|---|---|---|
| Python 3.11 documentation (reST sources) | `python3.11-doc` | PSF License Agreement | {s['python-docs']['train_docs']:,} | {s['python-docs']['train_chars']:,} | {s['python-docs']['held_docs']:,} | {s['python-docs']['held_chars']:,} |
| King James Bible | `bible-kjv-text` (decoded with `bible-kjv`'s `bible` program) | public domain (the Debian packaging is GPL-2+) | {s['kjv-bible']['train_docs']:,} | {s['kjv-bible']['train_chars']:,} | {s['kjv-bible']['held_docs']:,} | {s['kjv-bible']['held_chars']:,} |
| fortune cookies (all files except `ascii-art`, `translate-me`) | `fortunes-min`, `fortunes` | BSD (fortune-mod); quotations from many authors | {s['fortunes']['train_docs']:,} | {s['fortunes']['train_chars']:,} | {s['fortunes']['held_docs']:,} | {s['fortunes']['held_chars']:,} |

Cleaning: the reST is turned into plain prose (headings kept without their underlines,
roles such as ``:func:`open` `` reduced to `open`, links and literals unwrapped,
directives such as `index`, `toctree`, labels, tables and images dropped, signatures of
`function`/`class`/... directives kept as a line, `note`/`versionadded`/... bodies kept as
text, code examples kept only when at most 12 lines, hard-wrapped paragraphs unwrapped;
`whatsnew/changelog` is left out). Long pages are split into ~8 KB documents.
Bible chapters are documents ("Genesis 1", then one verse per line, without verse
numbers). Each fortune is a document. Exact duplicate documents are dropped. Documents are split {1 - a['heldout_frac']:.0%} / {a['heldout_frac']:.0%}
into train / held-out at random (seed {a['seed']}).
Training split: {i['train_tokens']:,} tokens; held-out split: {i['held_tokens']:,} tokens.

## Training

AdamW (betas 0.9/0.95, weight decay {a['wd']} on matrices), peak learning rate {a['lr']:g},
{a['warmup']} warmup steps then cosine decay to {a['min_lr_frac']:g}× peak, gradient clipping 1.0,
batches of {a['batch']} windows × {a['seq']} tokens, fp32, {a['threads']} CPU threads.

- steps: {i['steps']:,}
- tokens seen: {i['tokens_seen']:,} ({i['epochs']:.2f} epochs of the training split)
- training time: {i['train_minutes']:.1f} min (whole build incl. corpus, tokenizer, evaluation: {i['total_minutes']:.1f} min)
- hardware: {i['cpu']}, {a['threads']} threads (shared with other jobs), no GPU; torch {i['torch']}

## Evaluation

Perplexity = exp(mean next-token negative log-likelihood) in fp32, over non-overlapping
windows of {a['seq']} tokens (the first token of each window is not scored). The unigram
baseline is a unigram model fitted on the training-split token counts with add-one
smoothing, scored on the same text (every token).

| text | tokens | model perplexity | unigram perplexity |
|---|---|---|---|
| held-out split | {i['n_held']:,} | {i['ppl_held']:.2f} | {i['uni_held']:.2f} |
| `tests/data/heldout.txt` (sample of the held-out split) | {i['n_sample']:,} | {i['ppl_sample']:.2f} | {i['uni_sample']:.2f} |

Machine-readable (parsed by `tests/test_default_model.py`):

    heldout_sample_ppl: {i['ppl_sample']:.4f}
    heldout_sample_unigram_ppl: {i['uni_sample']:.4f}
    eval_window: {a['seq']}

## Greedy continuations

40 new tokens, greedy (`do_sample=False`), no BOS token.

| prompt | continuation |
|---|---|
{gens}
"""


def _md(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n").replace("\t", "\\t").replace("`", "'")


if __name__ == "__main__":
    main()
