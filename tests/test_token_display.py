"""Grouping byte tokens into characters, checked against Python's own UTF-8 decoding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from explorer.ui.token_display import Kind, column_labels, group_value, segments, visible


def split_tokens(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:]) if b > a]


def layout(pieces: list[bytes], special: dict[int, str] | None = None):
    special = special or {}
    ids = list(range(len(pieces)))
    table = dict(enumerate(pieces))

    def text(i):
        if i in special:
            return special[i]
        try:
            return visible(table[i].decode("utf-8"))
        except UnicodeDecodeError:
            return "".join(f"<0x{b:02X}>" for b in table[i])

    return segments(ids, [text(i) for i in ids], lambda i: None if i in special else table[i], special)


@given(st.text(min_size=1, max_size=30), st.lists(st.integers(0, 200), max_size=20))
def test_any_split_of_valid_text_reads_as_the_text(text, cuts):
    pieces = split_tokens(text.encode("utf-8"), cuts)
    segs = layout(pieces)
    assert "".join(s.text for s in segs) == visible(text)
    assert [k for s in segs for k in s.tokens] == list(range(len(pieces)))  # each token once
    assert all(s.kind in (Kind.TOKEN, Kind.GROUP) for s in segs)
    for s in segs:  # a group spans several tokens and its bytes are whole characters
        if s.kind is Kind.GROUP:
            raw = b"".join(pieces[k] for k in s.tokens)
            assert raw.decode("utf-8") and len(s.tokens) > 1


def test_bytes_of_one_character_group_and_label():
    segs = layout([b"Caf", b"\xc3", b"\xa9", b",", b"\xf0\x9f", b"\x99", b"\x82"])
    assert [(s.text, s.tokens, s.kind) for s in segs] == [
        ("Caf", (0,), Kind.TOKEN), ("é", (1, 2), Kind.GROUP), (",", (3,), Kind.TOKEN),
        ("🙂", (4, 5, 6), Kind.GROUP)]
    assert column_labels(segs, 7) == ["Caf", "é", "+", ",", "🙂", "+", "+"]


def test_unfinished_and_stray_bytes_are_marked():
    segs = layout([b"a", b"\xa9b", b"\xe6\x9d"])  # a stray continuation byte; an unfinished 東
    assert [(s.text, s.kind) for s in segs] == [
        ("a", Kind.TOKEN), ("<A9…>b", Kind.PARTIAL), ("<E6…><9D…>", Kind.PARTIAL)]


def test_special_tokens_break_groups_and_are_marked():
    segs = layout([b"\xc3", b"<s>", b"\xa9"], special={1: "<s>"})
    assert [s.kind for s in segs] == [Kind.PARTIAL, Kind.SPECIAL, Kind.PARTIAL]


def test_group_value():
    assert group_value([None, 0.5, 0.25], (1, 2), joint=True) == 0.125  # p of the character
    assert group_value([None, 0.5, 0.25], (1, 2), joint=False) == 0.5
    assert group_value([None, 0.5], (0, 1), joint=True) is None
