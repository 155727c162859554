"""SentenceEncoder: bounded compilations for many lengths, same vectors as unpadded runs."""

import logging

import numpy as np
import pytest
from conftest import TINY_CONFIG

import kerasbert
from kerasbert.encoding import SentenceEncoder, pool_outputs
from kerasbert.snippets import bucket_length, make_buckets
from kerasbert.tokenizers import Tokenizer

WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]


@pytest.fixture(scope="module")
def model_and_tokenizer():
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    vocab.update({w: i + 4 for i, w in enumerate(WORDS)})
    config = dict(TINY_CONFIG, max_position_embeddings=128, initializer_range=0.5)
    model = kerasbert.build_transformer_model(config)
    return model, Tokenizer(vocab)


def _sentences(lengths, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, n)) for n in lengths]


TEXTS = _sentences([1, 9, 3, 20, 14], seed=5) + ["alpha beta ||| gamma delta eps"]


@pytest.fixture(scope="module")
def unpadded_outputs(model_and_tokenizer):
    """Each of TEXTS alone, unpadded, through model.predict: ``(tokens, hidden)`` arrays."""
    model, tokenizer = model_and_tokenizer
    outputs = []
    for text in TEXTS:
        ids, segments = tokenizer.encode(*text.split(" ||| "), maxlen=100)
        out = model.predict([np.array([ids]), np.array([segments])], verbose=0)
        outputs.append(np.asarray(out)[0])
    return outputs


def _pooled(out, pooling, normalize):
    v = {"cls": out[0], "mean": out.mean(0), "max": out.max(0), "none": out}[pooling]
    return v / np.linalg.norm(v) if normalize else v


def test_many_lengths_compile_at_most_one_program_per_bucket(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    rng = np.random.default_rng(0)
    texts = _sentences(rng.permutation(np.tile(np.arange(1, 101), 2)), seed=1)  # 200 texts
    encoder = SentenceEncoder(
        model, tokenizer, max_seq_len=128, batch_size=16, buckets=make_buckets(128)
    )
    assert encoder.buckets == [16, 32, 64, 128]
    vectors = encoder.encode(texts)
    assert vectors.shape == (200, TINY_CONFIG["hidden_size"])
    assert np.isfinite(vectors).all()
    # 200 = 12 full batches + 8: the last batch is padded to 16 rows, not a new shape.
    assert {rows for rows, _ in encoder.compiled_shapes} == {16}
    assert 1 <= encoder.num_compilations <= len(encoder.buckets)
    assert encoder.num_compilations == len(encoder.compiled_shapes)
    # An independent count: the executables in the jitted function's own cache.
    assert encoder._forward._cache_size() == encoder.num_compilations
    compiled = encoder.num_compilations

    # New texts of new lengths and a new count (a smaller last batch): nothing compiles.
    encoder.encode(_sentences([7, 33, 99, 1, 64, 50, 2], seed=2))
    encoder.encode(_sentences(range(3, 90, 4), seed=3))
    assert encoder.num_compilations == compiled
    # Another encoder of the same model and pooling reuses the compiled programs.
    other = SentenceEncoder(
        model, tokenizer, max_seq_len=128, batch_size=16, buckets=make_buckets(128)
    )
    other.encode(_sentences([5, 80], seed=4))
    assert other.num_compilations == 0


def test_bucketed_padded_vectors_equal_unpadded_runs(model_and_tokenizer, unpadded_outputs):
    model, tokenizer = model_and_tokenizer
    # Batches of 4 rows: [3, 5, 6 tokens, the pair] in bucket 16, [11, 22 tokens] in
    # bucket 32 with two repeated rows.
    encoder = SentenceEncoder(
        model, tokenizer, max_seq_len=100, batch_size=4, buckets=make_buckets(100)
    )
    got = encoder.encode(TEXTS)
    assert encoder.compiled_shapes == {(4, 16), (4, 32)}
    expected = np.stack([_pooled(out, "mean", False) for out in unpadded_outputs])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # The other poolings, with and without normalisation (one batch of 8 rows; the default
    # buckets put 22 tokens in the 24 bucket).
    for pooling, normalize in [("cls", False), ("max", False), ("none", False), ("cls", True),
                               ("mean", True), ("max", True)]:  # fmt: skip
        encoder = SentenceEncoder(
            model, tokenizer, pooling, max_seq_len=100, batch_size=8, normalize=normalize
        )
        got = encoder.encode(TEXTS)
        assert encoder.compiled_shapes == {(8, 24)}
        for g, out in zip(got, unpadded_outputs):
            expected = _pooled(out, pooling, normalize)
            assert g.shape == expected.shape, pooling
            np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-5, err_msg=pooling)


def test_numpy_pooling_of_other_backends_matches_the_reference():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, 6, 5)).astype("float32")
    lengths = np.array([6, 2, 4])
    for pooling in ("cls", "mean", "max"):
        got = np.asarray(pool_outputs(vectors, lengths, pooling, normalize=True))
        for row, n in enumerate(lengths):
            part = vectors[row, :n]
            v = {"cls": part[0], "mean": part.mean(0), "max": part.max(0)}[pooling]
            np.testing.assert_allclose(got[row], v / np.linalg.norm(v), rtol=1e-5)


def test_each_compilation_is_logged_with_its_shape(model_and_tokenizer, caplog):
    model, tokenizer = model_and_tokenizer
    encoder = SentenceEncoder(
        model, tokenizer, pooling="cls", max_seq_len=64, batch_size=2, buckets=make_buckets(64)
    )
    with caplog.at_level(logging.INFO, logger="kerasbert.encoding"):
        encoder.encode(_sentences([2, 3, 40, 41, 5], seed=6))  # batches of 4+5, 7+42, 43
    messages = [r.getMessage() for r in caplog.records if r.name == "kerasbert.encoding"]
    assert encoder.num_compilations == len(messages) == 2
    assert any("(2, 16)" in m for m in messages) and any("(2, 64)" in m for m in messages)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kerasbert.encoding"):
        encoder.encode(_sentences([4, 50], seed=7))
    assert not [r for r in caplog.records if r.name == "kerasbert.encoding"]


def test_default_buckets_pad_mixed_lengths_far_less_than_powers_of_two(model_and_tokenizer):
    _, tokenizer = model_and_tokenizer
    model = kerasbert.build_transformer_model(dict(TINY_CONFIG, max_position_embeddings=512))
    encoder = SentenceEncoder(model, tokenizer, max_seq_len=512)
    assert encoder.buckets == make_buckets(512, growth=1.25)
    assert len(encoder.buckets) <= 16 and encoder.buckets[-1] == 512
    lengths = np.arange(2, 257)

    def padding(buckets):
        return sum(bucket_length(n, buckets) for n in lengths) / lengths.sum()

    assert padding(encoder.buckets) < 1.15 < 1.3 < padding(make_buckets(512))
