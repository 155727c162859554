"""SpTokenizer against HF transformers' slow T5Tokenizer and AlbertTokenizer on two
SentencePiece models trained by tools/make_sentencepiece_fixtures.py, over the WordPiece
corpus plus whitespace, digit-comma, accent, emoji, astral and special-token lines."""

import json

import pytest
from conftest import FIXTURES

from kerasbert.errors import KerasBertError
from kerasbert.tokenizers import SpTokenizer

ROOT = FIXTURES / "sentencepiece"
GOLDENS = json.loads((ROOT / "goldens.json").read_text(encoding="utf-8"))
LINES = GOLDENS["lines"]


@pytest.fixture(scope="module")
def t5():
    return SpTokenizer.for_t5(ROOT / "t5.model", extra_ids=100)


@pytest.fixture(scope="module")
def albert():
    return SpTokenizer.for_albert(ROOT / "albert.model")


def test_the_corpus_covers_what_differs():
    texts = [r["text"] for r in LINES]
    assert len(texts) > 150 and "" in texts
    assert any("<extra_id_0>" in t for t in texts) and any("</s>" in t for t in texts)
    assert any(2 in r["t5_ids"] for r in LINES)  # some characters are <unk>


def test_t5_ids_equal_hf(t5):
    assert t5.vocab_size == GOLDENS["t5_vocab_size"]
    wrong = [r["text"] for r in LINES if t5.encode(r["text"])[0] != r["t5_ids"]]
    assert wrong == []


def test_t5_decode_equals_hf(t5):
    wrong = [r["text"] for r in LINES if t5.decode(r["t5_ids"]) != r["t5_decoded"]]
    assert wrong == []


def test_albert_ids_equal_hf(albert):
    for name, i in GOLDENS["albert_special_ids"].items():
        assert albert.token_to_id(name) == i
    wrong = [r["text"] for r in LINES if albert.encode(r["text"])[0] != r["albert_ids"]]
    assert wrong == []
    assert [albert.tokenize(r["text"])[1:-1] for r in LINES] == [r["albert_pieces"] for r in LINES]


def test_bert4keras_api(t5, albert):
    ids, segments = albert.encode("first text here", "and the second one", maxlen=8)
    assert len(ids) == 8 and ids[0] == albert.token_to_id("[CLS]")
    assert ids.count(albert.token_to_id("[SEP]")) == 2 and segments[-1] == 1
    assert albert._token_pad_id == 0 and albert._token_mask_id == 4
    assert t5.tokenize("a")[-1] == "</s>" and t5.id_to_token(t5.vocab_size) == ""
    assert t5.id_to_token(t5.token_to_id("<extra_id_7>")) == "<extra_id_7>"
    token_ids, _, lengths = t5.encode_batch(["hello world", "hi"])
    assert token_ids.shape == (2, lengths.max()) and token_ids[1, -1] == 0  # <pad> is 0
    bare = SpTokenizer(ROOT / "t5.model")  # bert4keras's defaults: [CLS] / [SEP] pieces
    assert bare.tokenize("x")[0] == "[CLS]" and bare.vocab_size == 800


def test_bad_files_are_kerasbert_errors(tmp_path):
    with pytest.raises(KerasBertError, match="does not exist"):
        SpTokenizer(tmp_path / "missing.model")
    with pytest.raises(KerasBertError, match="is a folder"):
        SpTokenizer(ROOT)
    broken = tmp_path / "broken.model"
    broken.write_bytes((ROOT / "t5.model").read_bytes()[:1000])
    with pytest.raises(KerasBertError, match="not a SentencePiece model"):
        SpTokenizer(broken)
    with pytest.raises(KerasBertError, match="extra_ids"):
        SpTokenizer(ROOT / "t5.model", extra_ids=-1)


def test_an_albert_v2_index_entry_tokenizes_with_sentencepiece(tmp_path, monkeypatch):
    """build_pretrained / SentenceEncoder on an ALBERT v2 release (a 30k-clean.model
    vocabulary) get SpTokenizer.for_albert with the entry's do_lower_case."""
    import shutil

    from kerasbert import pretrained
    from kerasbert.encoding import SentenceEncoder
    from kerasbert.folders import read_settings
    from kerasbert.index_schema import load_index

    albert = FIXTURES / "albert_tiny"
    folder = tmp_path / "google-albert-base-v2"
    folder.mkdir()
    shutil.copy(albert / "albert_config.json", folder)
    for suffix in ("index", "data-00000-of-00001"):
        shutil.copy(albert / f"albert_model.ckpt.{suffix}", folder / f"model.ckpt-best.{suffix}")
    shutil.copy(ROOT / "albert.model", folder / "30k-clean.model")
    entry = load_index()["models"]["google-albert-base-v2"]
    local = pretrained.LocalModel(
        folder, folder / "albert_config.json", folder / "model.ckpt-best",
        folder / "30k-clean.model", read_settings(folder, entry), entry,
    )  # fmt: skip
    monkeypatch.setattr(pretrained, "open_model", lambda *a, **k: local)
    _, tokenizer = pretrained.build_pretrained("google-albert-base-v2")
    assert isinstance(tokenizer, SpTokenizer)
    record = next(r for r in LINES if r["text"] == "UPPER lower MiXeD")
    assert tokenizer.encode(record["text"])[0] == record["albert_ids"]  # lower-cased
    encoder = SentenceEncoder.from_pretrained("google-albert-base-v2")
    assert isinstance(encoder.tokenizer, SpTokenizer)


def test_the_vocabulary_file_picks_the_tokenizer():
    from kerasbert.tokenizers import BPETokenizer, Tokenizer
    from kerasbert.tokenizers.choice import tokenizer_for

    assert isinstance(tokenizer_for(FIXTURES / "gpt2_tiny" / "vocab.json"), BPETokenizer)
    wordpiece = tokenizer_for(FIXTURES.parent / "data" / "zh_vocab.txt")
    assert isinstance(wordpiece, Tokenizer)
    albert = tokenizer_for(ROOT / "albert.model", do_lower_case=True, family="albert")
    assert albert.tokenize("A")[:2] == ["[CLS]", albert.tokenize("a")[1]]
    # BERT's record names no SentencePiece preset: a *.model needs the caller's options.
    with pytest.raises(KerasBertError, match="SpTokenizer"):
        tokenizer_for(ROOT / "t5.model", family="bert")
    with pytest.raises(KerasBertError, match="this model"):
        tokenizer_for(ROOT / "t5.model")
