"""The tokenizer against bert4keras's and HF's (goldens by tools/make_tokenizer_goldens.py)
on the real bert-base-chinese and MiniLM (English uncased) vocabularies, both the pure
Python and the Rust fast path, plus property tests."""

import hashlib
import json
import pathlib
import re

import numpy as np
import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasbert.errors import KerasBertError
from kerasbert.tokenizers import Tokenizer, load_vocab, save_vocab

DATA = pathlib.Path(__file__).parent / "data"
GOLDENS = FIXTURES / "tokenizer"


def _vocab(name, minilm_dir):
    return DATA / "zh_vocab.txt" if name == "zh" else minilm_dir / "vocab.txt"


def _goldens(name):
    return json.loads((GOLDENS / f"goldens_{name}.json").read_text(encoding="utf-8"))


@pytest.fixture(params=["zh", "en"])
def case(request, minilm_dir):
    """(goldens, pure tokenizer, fast tokenizer) for one vocabulary."""
    name = request.param
    vocab = _vocab(name, minilm_dir)
    return (
        _goldens(name),
        Tokenizer(vocab, do_lower_case=True, fast=False),
        Tokenizer(vocab, do_lower_case=True, fast=True),
    )


def test_vocab_files_are_the_real_ones(minilm_dir):
    zh = load_vocab(DATA / "zh_vocab.txt")
    assert len(zh) == 21128 and zh["[CLS]"] == 101 and zh["[MASK]"] == 103
    assert hashlib.md5((DATA / "zh_vocab.txt").read_bytes()).hexdigest() == (
        "3b5b76c4aef48ecf8cb3abaafe960f09"
    )
    assert len(load_vocab(minilm_dir / "vocab.txt")) == 30522


def _lowering_shifts(text):
    return len(text.lower()) != len(text)


def test_matches_bert4keras(case):
    goldens, pure, fast = case
    for entry in goldens["cases"]:
        text, ref = entry["text"], entry["bert4keras"]
        for tokenizer in (pure, fast):
            tokens = tokenizer.tokenize(text)
            assert tokens == ref["tokens"], (entry["i"], text)
            assert tokenizer.encode(text) == (ref["ids"], ref["segments"]), entry["i"]
            assert tokenizer.encode(text, maxlen=goldens["short_maxlen"])[0] == ref["ids_maxlen8"]
            assert tokenizer.decode(ref["ids"]) == ref["decode"], entry["i"]
            mapping = tokenizer.rematch(text, tokens)
            if ref["rematch_error"] is None and not _lowering_shifts(text):
                assert mapping == ref["rematch"], (entry["i"], text)


def test_pairs_match_bert4keras(case):
    goldens, pure, fast = case
    for pair in goldens["pairs"]:
        ref = pair["bert4keras"]
        if ref["error"] is not None:
            continue
        for tokenizer in (pure, fast):
            got = tokenizer.encode(pair["text_a"], pair["text_b"], maxlen=pair["maxlen"])
            assert got == (ref["ids"], ref["segments"]), pair["i"]


# Where HF differs from bert4keras, for one of the documented reasons (module docstring).
def _documented_difference(text):
    return bool(
        "Σ" in text
        or re.search("[\ue000-\uf8ff]", text)
        or re.search(r"[A-Za-z0-9]{101,200}", text)
        or re.search(r"\[(MASK|CLS|SEP|UNK|PAD)\]", text)
        or re.search("[\U0002b820-\U0002b91f]", text)
    )


def test_agrees_with_hf_except_documented_differences(case):
    goldens, pure, _ = case
    differing = [e["text"] for e in goldens["cases"] if pure.encode(e["text"])[0] != e["hf"]["ids"]]
    assert differing, "the corpus should exercise the known differences"
    assert all(_documented_difference(text) for text in differing), differing
    same = [e for e in goldens["cases"] if not _documented_difference(e["text"])]
    assert len(same) > 100
    for entry in same:
        assert pure.encode(entry["text"])[0] == entry["hf"]["ids"]


def test_rematch_is_right_where_bert4keras_shifts(minilm_dir):
    tokenizer = Tokenizer(minilm_dir / "vocab.txt", do_lower_case=True)
    text = "İstanbul İzmir"
    tokens = tokenizer.tokenize(text)
    mapping = tokenizer.rematch(text, tokens)
    pieces = [text[m[0] : m[-1] + 1] for m in mapping if m]
    assert pieces[0] == "İstanbul" and "".join(pieces[1:]) == "İzmir"


def test_simplified_vocab_matches_bert4keras():
    reference = json.loads((GOLDENS / "simplified_zh.json").read_text(encoding="utf-8"))
    token_dict, keep_tokens = load_vocab(
        DATA / "zh_vocab.txt", simplified=True, startswith=reference["startswith"]
    )
    assert len(token_dict) == reference["len_token_dict"] == len(keep_tokens)
    assert keep_tokens[:20] == reference["keep_tokens_first20"]
    assert keep_tokens[-20:] == reference["keep_tokens_last20"]
    digest = hashlib.sha256(",".join(map(str, keep_tokens)).encode()).hexdigest()
    assert digest == reference["keep_tokens_sha256"]


def test_pre_tokenize_keeps_vocabulary_words():
    reference = json.loads((GOLDENS / "pre_tokenize_zh.json").read_text(encoding="utf-8"))
    tokenizer = Tokenizer(
        DATA / "zh_vocab.txt", do_lower_case=True, pre_tokenize=lambda s: s.split("|")
    )
    plain = Tokenizer(DATA / "zh_vocab.txt", do_lower_case=True)
    for entry in reference["cases"]:
        assert tokenizer.tokenize(entry["text"]) == entry["tokens"], entry["text"]
        assert tokenizer.encode(entry["text"])[0] == entry["ids"]
        assert plain.tokenize(entry["text"]) == entry["tokens_without_pre_tokenize"]


def test_special_token_attributes():
    tokenizer = Tokenizer(DATA / "zh_vocab.txt", do_lower_case=True)
    assert (tokenizer._token_pad, tokenizer._token_pad_id) == ("[PAD]", 0)
    assert (tokenizer._token_unk, tokenizer._token_unk_id) == ("[UNK]", 100)
    assert (tokenizer._token_start, tokenizer._token_start_id) == ("[CLS]", 101)
    assert (tokenizer._token_end, tokenizer._token_end_id) == ("[SEP]", 102)
    assert (tokenizer._token_mask, tokenizer._token_mask_id) == ("[MASK]", 103)
    assert tokenizer.vocab_size == 21128
    assert tokenizer.id_to_token(101) == "[CLS]" and tokenizer.token_to_id("没有这个词") == 100


def test_word_maxlen_and_truncate_from():
    tokenizer = Tokenizer(DATA / "zh_vocab.txt", do_lower_case=True, word_maxlen=5)
    assert tokenizer.encode("abcdefg")[0] == [101, 100, 102]
    assert tokenizer.tokenize("abcdefg") == ["[CLS]", "abcdefg", "[SEP]"]
    tokenizer = Tokenizer(DATA / "zh_vocab.txt")
    ids, _ = tokenizer.encode("一二三四五", maxlen=4, truncate_from="left")
    assert tokenizer.ids_to_tokens(ids) == ["[CLS]", "四", "五", "[SEP]"]
    ids, segments = tokenizer.encode("一二", "三四", pattern="S*ES*E")
    assert tokenizer.ids_to_tokens(ids)[4] == "[CLS]" and segments == [0] * 4 + [1] * 4


def test_encode_batch_equals_encode(minilm_dir):
    tokenizer = Tokenizer(minilm_dir / "vocab.txt", do_lower_case=True)
    texts = ["A man is eating.", ("Is it raining?", "No, it is sunny today."), ""]
    ids, segments, lengths = tokenizer.encode_batch(texts, maxlen=9)
    assert ids.dtype == np.int32 and ids.shape == (3, lengths.max())
    for row, item in enumerate(texts):
        expected = tokenizer.encode(*(item if isinstance(item, tuple) else (item,)), maxlen=9)
        n = lengths[row]
        assert ids[row, :n].tolist() == expected[0] and (ids[row, n:] == 0).all()
        assert segments[row, :n].tolist() == expected[1]


def test_save_and_load_vocab_round_trip(tmp_path):
    token_dict = load_vocab(DATA / "zh_vocab.txt")
    save_vocab(tmp_path / "vocab.txt", token_dict)
    assert load_vocab(tmp_path / "vocab.txt") == token_dict


def test_bad_vocab_paths(tmp_path):
    with pytest.raises(KerasBertError, match="does not exist"):
        Tokenizer(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("[PAD]\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(KerasBertError, match="not utf-8"):
        load_vocab(tmp_path / "latin1.txt")
    with pytest.raises(KerasBertError, match="non-empty"):
        Tokenizer({})


def test_fast_path_is_used_when_asked():
    assert Tokenizer(DATA / "zh_vocab.txt", fast=True).uses_fast_path
    assert Tokenizer(DATA / "zh_vocab.txt", fast=None).uses_fast_path  # installed here
    assert not Tokenizer(DATA / "zh_vocab.txt", fast=False).uses_fast_path
    # The pure-Python path is the default: it measured faster (bench/bench_tokenizer.py).
    assert not Tokenizer(DATA / "zh_vocab.txt").uses_fast_path


# -- properties ------------------------------------------------------------------------------------
ZH = Tokenizer(DATA / "zh_vocab.txt", do_lower_case=True, fast=False)
ZH_FAST = Tokenizer(DATA / "zh_vocab.txt", do_lower_case=True, fast=True)
MIXED = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from("华为手机中文abcXYZ éü,.!？，。 \t\n\u200b\u3000"),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(MIXED)
def test_any_text_tokenizes_and_rematches(text):
    tokens = ZH.tokenize(text)
    assert ZH_FAST.tokenize(text) == tokens
    ids, segments = ZH.encode(text)
    assert ZH_FAST.encode(text) == (ids, segments)
    mapping = ZH.rematch(text, tokens)
    assert len(mapping) == len(tokens)
    previous_end = -1
    for token, positions in zip(tokens, mapping):
        if not positions:
            continue
        assert positions == sorted(positions) and positions[0] >= previous_end
        previous_end = positions[-1]
        # The mapped characters of the original text normalize to the token's text.
        stem = token[2:] if token.startswith("##") else token
        source = text[positions[0] : positions[-1] + 1]
        assert stem in re.sub(r"\s", "", ZH._normalize(source))
    ZH.decode(ids)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("华为手机中文的是abcxyz0123 ,.!?，。"), max_size=30))
def test_decode_of_encode_is_stable(text):
    once = ZH.decode(ZH.encode(text)[0])
    assert ZH.decode(ZH.encode(once)[0]) == once
