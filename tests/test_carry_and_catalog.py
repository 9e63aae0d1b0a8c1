"""Headless pieces of model switching: carrying the prompt book to another tokenizer, and
the catalog's recent list (atomic, and a damaged file reads as empty)."""

from __future__ import annotations

from explorer.backend import catalog
from explorer.session import PromptBook
from explorer.session.carry import carry_book


def words(vocab: list[str]):
    index = {w: i for i, w in enumerate(vocab)}
    decode = lambda ids: " ".join(vocab[i] for i in ids)  # noqa: E731
    encode = lambda text: [index[w] for w in text.split()]  # noqa: E731
    return decode, encode


def test_ids_kept_when_read_the_same_else_retokenised():
    old_decode, _ = words(["a", "b", "c", "d"])
    same_decode, same_encode = words(["a", "b", "c", "d", "e"])
    book = PromptBook([[0, 1], [2, 3]])
    book.set_ids([0, 1, 2])
    book.next()
    carried, warning = carry_book(book, old_decode, same_decode, same_encode, 5, "m")
    assert warning is None and carried.index == 1
    assert [(p.ids, p.original) for p in carried] == [((0, 1, 2), (0, 1)), ((2, 3), (2, 3))]
    assert {p.key for p in carried}.isdisjoint(p.key for p in book)  # fresh cache keys

    other_decode, other_encode = words(["d", "c", "b", "a"])
    carried, warning = carry_book(book, old_decode, other_decode, other_encode, 4, "m2")
    assert [other_decode(p.ids) for p in carried] == [old_decode(p.ids) for p in book]
    assert [other_decode(p.original) for p in carried] == [old_decode(p.original) for p in book]
    assert warning == ("2 of 2 prompts were re-tokenised from their text for m2, whose "
                       "tokenizer differs; token boundaries may have changed.")


def test_recent_folders_are_remembered_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKEN_EXPLORER_CACHE", str(tmp_path / "cache"))
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    catalog.remember(str(one))
    catalog.remember("org/hub-id")  # not a folder: the hub cache lists those
    catalog.remember(str(two))
    catalog.remember(str(one))
    assert catalog.recent_names() == [str(one), str(two)]
    assert [c.source for c in catalog.recent_choices()] == ["recent", "recent"]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [catalog.RECENT_FILE]
    (tmp_path / "cache" / catalog.RECENT_FILE).write_text("{not json")
    assert catalog.recent_names() == []


def test_builtins_come_first():
    names = [c.name for c in catalog.model_choices()]
    assert names[:2] == ["smollm2", "tiny"]


def test_pins_cross_by_text(make_engine, tokenizer):
    """Pins are ids of the old vocabulary: kept with a shared tokenizer, else re-tokenised
    from their text (several tokens: the first, said so), a special token the new tokenizer
    lacks is unpinned (said so). Checked against the new tokenizer itself."""
    import pytest

    from explorer.session.carry import carry_pins

    pytest.importorskip("transformers")
    from app_fixtures import embedded_engine

    old, new = embedded_engine(), make_engine("llama")
    the, quick, im_end = 263, 3872, 2
    assert old.decode([the]) == " the" and old.decode([quick]) == " quick"
    assert im_end in old.special_ids
    # The same tokenizer (a model switch to a copy): every id kept, nothing said.
    assert carry_pins([quick, the, im_end], old, old, "copy") == ((quick, the, im_end), None)

    pins, note = carry_pins([quick, the, im_end], old, new, "tiny-llama")
    plain = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert len(plain(" quick")) > 1 and len(plain(" the")) == 1
    assert pins == (plain(" quick")[0], plain(" the")[0])
    pieces = ", ".join(repr(new.token_text(t)) for t in plain(" quick"))
    assert note == (f"Pinned tokens carried to tiny-llama by their text: ' quick' is "
                    f"{len(plain(' quick'))} tokens there ({pieces}), so its first is tracked; "
                    "'<|im_end|>' has no token there and was unpinned.")
    # Back again: the new model's special <eos> spelt out as plain text is not a token.
    eos = tokenizer.eos_token_id
    assert carry_pins([eos], new, old, "embedded") == (
        (), "Pinned tokens carried to embedded by their text: '<eos>' has no token there and "
            "was unpinned.")


def test_pins_are_dropped_where_the_new_backend_cannot_track():
    from types import SimpleNamespace

    from explorer.backend import Capabilities
    from explorer.session.carry import carry_pins

    server = SimpleNamespace(capabilities=Capabilities(kind="llama.cpp"))
    assert carry_pins([5, 6], None, server, "s") == (
        (), "Tracked tokens is not available on this backend (llama.cpp). The 2 pinned tokens "
            "were unpinned.")
    assert carry_pins([], None, server, "s") == ((), None)
