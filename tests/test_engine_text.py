"""Text in and out: encode/decode round trip, visible token text."""


def test_encode_adds_bos_like_the_tokenizer_and_decode_round_trips(make_engine, tokenizer):
    engine = make_engine("gpt2")
    text = "The quick brown fox.\n\tcafé"
    ids = engine.encode(text)
    assert ids == tokenizer(text)["input_ids"] and ids[0] == tokenizer.bos_token_id
    assert engine.decode(ids[1:]) == text
    assert all(type(i) is int for i in ids)


def test_token_text_makes_whitespace_special_and_bytes_visible(make_engine, tokenizer):
    engine = make_engine("gpt2")
    assert engine.token_text(tokenizer.bos_token_id) == "<bos>"
    space_the = tokenizer.convert_tokens_to_ids("Ġthe")
    assert engine.token_text(space_the) == "␣the"
    assert engine.token_text(tokenizer.convert_tokens_to_ids("Ċ")) == "↵"
    assert engine.token_text(tokenizer.convert_tokens_to_ids("ĉ")) == "⇥"
    # "Ã" is the byte-level stand-in for 0xC3, the first byte of é: incomplete UTF-8
    assert engine.token_text(tokenizer.convert_tokens_to_ids("Ã")) == "<0xC3>"
    assert engine.token_text(tokenizer.convert_tokens_to_ids("Ą")) == "<0x04>"
    # a token holding valid text plus a dangling lead byte shows both
    assert engine.token_text(tokenizer.convert_tokens_to_ids("aÃ")) == "a<0xC3>"


def test_token_text_of_complete_multibyte_piece():
    from explorer.backend.token_text import bytes_as_text as _bytes_as_text

    assert _bytes_as_text("é".encode()) == "é"
    assert _bytes_as_text("東".encode()[:2]) == "<0xE6><0x9D>"
