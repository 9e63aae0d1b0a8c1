"""PromptBook and prompt files: pure Python, no model."""

import json

import pytest

from explorer.session import (
    LastPromptError,
    PromptBook,
    PromptFileError,
    load_prompt_file,
    save_prompt,
)
from explorer.session.files import slug


def fake_encode(text: str) -> list[int]:
    return [1] + [ord(c) for c in text]


def test_cycle_wraps_both_ways():
    book = PromptBook([(1, 2), (1, 3), (1, 4)])
    assert book.index == 0
    assert book.previous().ids == (1, 4)
    assert book.next().ids == (1, 2)
    assert book.next().ids == (1, 3)


def test_keys_are_unique_even_for_equal_ids():
    book = PromptBook([(1, 2), (1, 2)])
    keys = {p.key for p in book}
    book.fork()
    keys.add(book.current.key)
    assert len(keys) == 3


def test_fork_copies_after_current_and_moves_to_it():
    book = PromptBook([(1, 2), (9,)])
    book.append(5)
    parent = book.current
    child = book.fork()
    assert book.index == 1 and len(book) == 3
    assert child.ids == parent.ids == (1, 2, 5)
    assert child.original == parent.original == (1, 2)
    assert child.key != parent.key
    book.append(7)
    assert list(book)[0].ids == (1, 2, 5)  # the parent is untouched
    assert list(book)[2].ids == (9,)


def test_append_pop_reset():
    book = PromptBook([(1, 2)])
    book.append(3)
    book.append(4)
    assert book.current.ids == (1, 2, 3, 4)
    assert book.pop() == 4
    assert book.current.ids == (1, 2, 3)
    book.reset()
    assert book.current.ids == (1, 2)
    book.pop()
    with pytest.raises(LastPromptError):
        book.pop()
    assert book.current.ids == (1,)


def test_remove_never_the_last():
    book = PromptBook([(1,), (2,), (3,)])
    book.next()
    book.next()
    removed = book.remove()
    assert removed.ids == (3,) and book.index == 1 and book.current.ids == (2,)
    book.previous()
    assert book.remove().ids == (1,)
    assert book.current.ids == (2,)
    with pytest.raises(LastPromptError):
        book.remove()
    assert len(book) == 1


def test_empty_prompt_refused():
    with pytest.raises(ValueError):
        PromptBook([])
    with pytest.raises(ValueError):
        PromptBook([()])


def test_slug():
    assert slug("Hello, World!\n  again") == "hello-world-again"
    assert slug("???") == ""


def test_save_then_load_txt_and_json_token_for_token(tmp_path):
    ids = (1, 500, 7, 7)  # ids that the fake encoder would never produce from the text
    path = save_prompt(tmp_path, "Hi there\n", ids, "m")
    assert path.name == "hi-there.txt"
    assert path.read_text(encoding="utf-8") == "Hi there\n"
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta == {"model": "m", "token_ids": list(ids), "text": "Hi there\n"}
    assert load_prompt_file(path, fake_encode, "m").ids == ids
    assert load_prompt_file(path.with_suffix(".json"), fake_encode, "m").ids == ids


def test_save_does_not_overwrite_and_falls_back_to_timestamp(tmp_path):
    a = save_prompt(tmp_path, "same", (1,), "m")
    b = save_prompt(tmp_path, "same", (1, 2), "m")
    assert a != b and a.exists() and b.exists()
    c = save_prompt(tmp_path, "!!!", (1,), "m")
    assert c.name.startswith("prompt-")


def test_other_model_json_is_retokenised_with_warning(tmp_path):
    path = save_prompt(tmp_path, "ab", (1, 999), "other")
    loaded = load_prompt_file(path, fake_encode, "m")
    assert loaded.ids == tuple(fake_encode("ab"))
    assert "other" in loaded.warning


def test_edited_txt_wins_over_stale_json(tmp_path):
    path = save_prompt(tmp_path, "ab", (1, 999), "m")
    path.write_text("abc", encoding="utf-8")
    assert load_prompt_file(path, fake_encode, "m").ids == tuple(fake_encode("abc"))


def test_plain_txt_is_tokenised(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("héllo", encoding="utf-8")
    loaded = load_prompt_file(path, fake_encode, "m")
    assert loaded.ids == tuple(fake_encode("héllo")) and loaded.warning is None


@pytest.mark.parametrize(
    "content, message",
    [(b"abc\x00def", "binary"), (b"\xff\xfe\xfa", "not UTF-8"), (b"", "empty"), (b"  \n", "empty")],
)
def test_unusable_input_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(PromptFileError, match=message):
        load_prompt_file(path, fake_encode, "m")


def test_missing_input_file(tmp_path):
    with pytest.raises(PromptFileError, match="does not exist"):
        load_prompt_file(tmp_path / "nope.txt", fake_encode, "m")


def test_bad_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"text": 3}', encoding="utf-8")
    with pytest.raises(PromptFileError, match="not a saved prompt"):
        load_prompt_file(path, fake_encode, "m")


def test_save_writes_whole_files_and_leaves_nothing_else(tmp_path):
    path = save_prompt(tmp_path, "Hi there\n", (1, 2), "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hi-there.json", "hi-there.txt"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_an_atomic_write_that_fails_leaves_no_temporary_file(tmp_path):
    from explorer.atomic import write_text_atomic

    target = tmp_path / "taken"
    target.mkdir()  # renaming a file over a folder fails after the text was written
    with pytest.raises(OSError):
        write_text_atomic(target, "new text")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_save_into_a_file_path_fails_cleanly(tmp_path):
    blocker = tmp_path / "prompts"
    blocker.write_text("I am a file", encoding="utf-8")
    with pytest.raises(PromptFileError, match="Could not save"):
        save_prompt(blocker, "hello", (1, 2), "m")


def test_start_prompt_prefers_input_then_default(tmp_path):
    from explorer.session import read_start_prompt

    default = tmp_path / "default.txt"
    default.write_text("dflt", encoding="utf-8")
    given = tmp_path / "given.txt"
    given.write_text("mine", encoding="utf-8")
    start = read_start_prompt(fake_encode, "m", None, given, default)
    assert start.ids == tuple(fake_encode("mine")) and not start.errors
    start = read_start_prompt(fake_encode, "m", None, tmp_path / "missing.txt", default)
    assert start.ids == tuple(fake_encode("dflt"))
    assert len(start.errors) == 1 and "does not exist" in start.errors[0]
    assert "Opened default.txt instead" in start.errors[0]


def test_start_prompt_too_long_falls_back(tmp_path):
    from explorer.session import read_start_prompt

    default = tmp_path / "default.txt"
    default.write_text("ok", encoding="utf-8")
    given = tmp_path / "long.txt"
    given.write_text("x" * 50, encoding="utf-8")
    start = read_start_prompt(fake_encode, "m", 10, given, default)
    assert start.ids == tuple(fake_encode("ok"))
    assert start.errors == ["The prompt has 51 tokens, more than the 10 that m supports. Opened default.txt instead."]


def test_start_prompt_last_resort(tmp_path):
    from explorer.session import read_start_prompt

    start = read_start_prompt(fake_encode, "m", None, None, tmp_path / "none.txt")
    assert start.ids == tuple(fake_encode("Once upon a time")) and start.errors


def test_select_by_key():
    book = PromptBook([(1, 2), (1, 3)])
    second = list(book)[1]
    assert book.select(second.key) is second and book.index == 1
    with pytest.raises(KeyError):
        book.select(-1)
    assert book.index == 1


def test_special_token_spelled_in_the_text_is_noticed():
    from explorer.session.start import StartPrompt, special_text_notice

    names = {0: "<|endoftext|>", 5: "a"}
    text = lambda t: names.get(t, "x")  # noqa: E731
    start = StartPrompt((5, 0, 5), text="a<|endoftext|>a", name="chat.txt")
    notice = special_text_notice(start, {0}, text)
    assert notice.startswith("chat.txt contains the text <|endoftext|>") and "special token" in notice
    # A special token the tokenizer added itself (BOS) is not spelled in the text: no notice.
    assert special_text_notice(StartPrompt((0, 5), text="a", name="p.txt"), {0}, text) is None
