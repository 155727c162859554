"""The basic examples: feature extraction, masked-token filling, semantic search."""

import importlib
import json
import pathlib
import sys

import numpy as np
import pytest

import kerasbert
from kerasbert.tokenizers import load_vocab

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


ZH_VOCAB = _example("common").ZH_VOCAB
TOKEN_IDS = load_vocab(ZH_VOCAB)
TOKENS = {i: token for token, i in TOKEN_IDS.items()}
MASK_ID = TOKEN_IDS["[MASK]"]


# -- basic_extract_features ---------------------------------------------------------------------
def test_extract_features_tiny(tmp_path):
    script = _example("basic_extract_features")
    out = script.main(["--tiny", "--save-dir", str(tmp_path)])
    batch, width, hidden = out["token_vectors"].shape
    assert batch == len(script.SENTENCES) == len(out["texts"])
    assert hidden == 64 and width in (16, 32, 64)  # a bucket length
    assert out["cls_vectors"].shape == out["mean_vectors"].shape == (batch, hidden)
    np.testing.assert_array_equal(out["cls_vectors"], out["token_vectors"][:, 0])
    # "语言模型" is [CLS] + 4 characters + [SEP].
    assert out["lengths"][0] == 6
    assert np.isfinite(out["token_vectors"]).all()
    # The .keras round trip is exact; padding does not change the real tokens' vectors.
    assert (tmp_path / "model.keras").exists()
    assert out["round_trip_max_diff"] == 0.0
    assert out["padding_max_diff"] < 1e-4


# -- basic_masked_language_model ----------------------------------------------------------------
def test_masked_lm_tiny_structure():
    script = _example("basic_masked_language_model")
    out = script.main(["--tiny", "--topk", "4"])
    vocab_size = out["vocab_size"]
    assert len(out["sentences"]) == len(script.SENTENCES)
    for sentence, text in zip(out["sentences"], script.SENTENCES):
        plain, spans = script.strip_brackets(text)
        assert sentence["text"] == plain and "[" not in plain
        # The masked positions cover exactly the bracketed characters (one per CJK char).
        assert len(sentence["positions"]) == sum(end - start for start, end in spans)
        masked_text = "".join(plain[start:end] for start, end in spans)
        assert "".join(TOKENS[i] for i in sentence["original_ids"]) == masked_text
        for position in sentence["positions"]:
            assert sentence["token_ids"][position] == MASK_ID
        assert len(sentence["candidates"]) == len(sentence["positions"])
        for options in sentence["candidates"]:
            assert len(options) == 4
            probs = [p for _, _, p in options]
            assert probs == sorted(probs, reverse=True)
            assert all(0.0 <= p <= 1.0 for p in probs)
            for token, token_id, _ in options:
                assert 0 <= token_id < vocab_size
                assert TOKENS[token_id] == token
    assert out["masked_tokens"] == 7


def test_masked_lm_from_tf_checkpoint(tmp_path):
    """The --config/--checkpoint/--vocab path: a TF checkpoint written by kerasbert."""
    common = _example("common")
    script = _example("basic_masked_language_model")
    config = dict(common.TINY_CONFIG, vocab_size=len(TOKENS))
    model = kerasbert.build_transformer_model(config, with_mlm=True)
    # A non-zero output bias, so that the MLM bias has to survive the checkpoint too.
    bias = model.get_layer("MLM-Bias")
    rng = np.random.default_rng(0)
    bias.set_weights([rng.normal(0, 1, w.shape).astype("float32") for w in bias.get_weights()])
    config_path = tmp_path / "bert_config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    prefix = tmp_path / "bert_model.ckpt"
    kerasbert.models.save_tf_checkpoint(model, str(prefix))

    texts = ["北京是[中国]的首都。", "[今天]天气很好，我们去[公园]散步吧。"]
    argv = ["--config", str(config_path), "--checkpoint", str(prefix)]
    argv += ["--vocab", str(ZH_VOCAB), "--topk", "3"]
    for text in texts:
        argv += ["--text", text]
    out = script.main(argv)

    assert [s["text"] for s in out["sentences"]] == [
        "北京是中国的首都。",
        "今天天气很好，我们去公园散步吧。",
    ]
    for sentence in out["sentences"]:
        ids = np.array([sentence["token_ids"]])
        direct = np.asarray(model.predict([ids, np.zeros_like(ids)], verbose=0))[0]
        for position, options in zip(sentence["positions"], sentence["candidates"]):
            assert options[0][1] == int(direct[position].argmax())
            expected = np.sort(direct[position])[::-1][:3]
            np.testing.assert_allclose([p for _, _, p in options], expected, rtol=1e-4)
    assert out["masked_tokens"] == 2 + 4


# -- basic_sentence_embeddings ------------------------------------------------------------------
# Queries written for this test (not the script's defaults) and the topic that answers them.
SEARCH_QUERIES = {
    "What temperature should I cook vegetables in the oven?": "cooking",
    "How many moons does the red planet have?": "astronomy",
    "The referee sent a player off the pitch.": "football",
    "Which data structure looks up a value by its key quickly?": "programming",
    "Is it going to snow this weekend?": "weather",
    "What should I feed my pet bunny?": "pets",
    "Why are prices going up every year?": "finance",
    "I feel sick and the doctor gave me some medicine.": "health",
}


@pytest.fixture(scope="module")
def search_results():
    script = _example("basic_sentence_embeddings")
    corpus_sentence = "Jupiter is the largest planet in our solar system."
    argv = ["--pretrained", "all-MiniLM-L6-v2"]
    for query in [*SEARCH_QUERIES, corpus_sentence]:
        argv += ["--query", query]
    return script.main(argv)


def test_sentence_search_finds_the_topic(search_results):
    out = search_results
    assert out["corpus_size"] == 40 and out["dim"] == 384
    assert out["compiled_shapes"] <= 3  # bucketed, not one shape per length
    assert 1 <= out["compilations"] <= out["compiled_shapes"]  # the queries compiled nothing
    for result in out["queries"]:
        hits = result["hits"]
        assert len(hits) == 3
        scores = [hit["score"] for hit in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0 - 1e-5 <= s <= 1.0 + 1e-5 for s in scores)
        if result["query"] in SEARCH_QUERIES:
            assert hits[0]["topic"] == SEARCH_QUERIES[result["query"]], result
    # A corpus sentence finds itself, with cosine similarity 1.
    itself = out["queries"][-1]["hits"][0]
    assert itself["sentence"] == out["queries"][-1]["query"]
    assert itself["score"] == pytest.approx(1.0, abs=1e-5)


def test_sentence_search_defaults_and_tiny_flag():
    script = _example("basic_sentence_embeddings")
    out = script.main(["--tiny", "--topk", "2"])
    assert out["topic_accuracy"] == 1.0
    assert all(len(result["hits"]) == 2 for result in out["queries"])
