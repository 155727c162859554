"""Key/value-cached incremental decoding equals running the whole model on the prefix."""

import logging

import keras
import numpy as np
import pytest

import kerasbert
from kerasbert.models import IncrementalModel, copy_cache
from kerasbert.snippets import AutoRegressiveDecoder, pad_batch, sequence_padding

CONFIG = {"vocab_size": 30, "hidden_size": 16, "num_hidden_layers": 2, "embedding_size": 8,
          "num_attention_heads": 2, "intermediate_size": 24, "hidden_act": "gelu_erf",
          "max_relative_position": 3, "initializer_range": 0.3}  # fmt: skip


def _builder(family, application, **kwargs):
    return kerasbert.build_transformer_model(
        CONFIG, model=family, application=application, with_mlm=True,
        return_keras_model=False, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("family", ["bert", "albert", "nezha"])
@pytest.mark.parametrize("application", ["lm", "unilm"])
def test_cached_steps_equal_the_full_model(family, application):
    builder = _builder(family, application)
    ids = np.array([[2, 5, 9, 3, 11, 13, 17, 19, 3], [2, 7, 3, 4, 6, 8, 10, 12, 3]], "int32")
    segments = np.array([[0, 0, 0, 0, 1, 1, 1, 1, 1]] * 2, "int32")
    if application == "lm":
        segments = np.zeros_like(ids)
    full = builder.model.predict([ids, segments], verbose=0)
    step = IncrementalModel(builder)
    outputs, cache = step(ids[:, :4], segments[:, :4])
    pieces = [outputs]
    for t in range(4, ids.shape[1]):
        outputs, cache = step(ids[:, t : t + 1], segments[:, t : t + 1], cache)
        pieces.append(outputs)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, atol=1e-5)


def test_beam_search_with_cache_equals_without():
    builder = _builder("nezha", "unilm")
    model = builder.model
    step = IncrementalModel(builder)

    class Uncached(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="probas")
        def predict(self, inputs, output_ids, states):
            ids = np.concatenate([inputs[0], output_ids], 1)
            segments = np.concatenate([inputs[1], np.ones_like(output_ids)], 1)
            rows, length = ids.shape
            # Padded to one shape (12 positions, 5 rows), so the model compiles once: the
            # padding ids 0 come after the last real token and are masked.
            padded = [pad_batch(sequence_padding(x, length=12), 5) for x in (ids, segments)]
            return model.predict_on_batch(padded)[:rows, length - 1]

    class Cached(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="probas", use_states=True)
        def predict(self, inputs, output_ids, states):
            if states is None:  # the source and the start token
                ids = np.concatenate([inputs[0], output_ids], 1)
                segments = np.concatenate([inputs[1], np.ones_like(output_ids)], 1)
            else:  # only the newest id
                ids, segments = output_ids[:, -1:], np.ones_like(output_ids[:, -1:])
            probas, cache = step(ids, segments, states)
            return probas[:, -1], cache

    source = [np.array([2, 5, 9, 11, 3], "int32"), np.zeros(5, "int32")]
    for topk in (1, 3):
        expected = Uncached(start_id=4, end_id=3, maxlen=6).beam_search(source, topk=topk)
        got = Cached(start_id=4, end_id=3, maxlen=6).beam_search(source, topk=topk)
        assert got.tolist() == expected.tolist()
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    a = Uncached(start_id=4, end_id=3, maxlen=6).random_sample(source, 2, topk=5, rng=rng_a)
    b = Cached(start_id=4, end_id=3, maxlen=6).random_sample(source, 2, topk=5, rng=rng_b)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]


def test_encoder_models_are_refused():
    builder = kerasbert.build_transformer_model(CONFIG, return_keras_model=False)
    with pytest.raises(kerasbert.ConfigError, match="application='lm' or 'unilm'"):
        IncrementalModel(builder)


def test_chunks_of_any_width_equal_the_full_model():
    builder = _builder("bert", "unilm")
    rng = np.random.default_rng(1)
    ids = rng.integers(4, 30, size=(3, 14)).astype("int32")
    ids[:, 0], ids[1, 11:] = 2, 0  # [CLS] first; row 1 ends in padding (masked keys)
    segments = np.zeros_like(ids)
    segments[:, 5:] = 1
    full = builder.model.predict([ids, segments], verbose=0)
    step = IncrementalModel(builder, max_length=14)
    pieces, cache = [], None
    for start, end in [(0, 5), (5, 8), (8, 9), (9, 13), (13, 14)]:  # widths 8, 4, 1, 4, 1
        outputs, cache = step(ids[:, start:end], segments[:, start:end], cache)
        assert outputs.shape[1] == end - start and cache["length"] == end
        pieces.append(outputs)
    got = np.concatenate(pieces, axis=1)
    real = ids != 0
    np.testing.assert_allclose(got[real], full[real], atol=1e-5)
    with pytest.raises(kerasbert.ConfigError, match="exceed max_length=14"):
        step(ids[:, :1], segments[:, :1], cache)
    with pytest.raises(kerasbert.ConfigError, match="max_length <= 512"):
        IncrementalModel(builder, max_length=513)


def test_a_step_takes_over_its_cache_and_a_copy_branches():
    """The cache is heads-first and updated in place (the step owns the buffers it is
    given); reusing a consumed cache is a clear error, and a copy branches from it."""
    builder = _builder("nezha", "lm")
    step = IncrementalModel(builder, max_length=12)
    ids = np.array([[2, 5, 9, 3], [2, 7, 3, 4]], "int32")
    _, cache = step(ids, np.zeros_like(ids))
    assert cache["keys"][0].shape == (2, 2, 12, 8)  # (batch, heads, positions, size)
    branch = copy_cache(cache)
    new = np.array([[6], [8]], "int32")
    first, after = step(new, np.zeros_like(new), cache)
    assert after["length"] == 5
    if keras.backend.backend() == "jax":  # donated: the step wrote into these buffers
        assert cache["keys"][0].is_deleted() and not after["keys"][0].is_deleted()
        with pytest.raises(kerasbert.ConfigError, match="already passed to a step"):
            step(new, np.zeros_like(new), cache)
    again, _ = step(new, np.zeros_like(new), branch)
    np.testing.assert_array_equal(again, first)


def test_steps_compile_once_per_batch_and_width(caplog):
    builder = _builder("nezha", "lm")
    step = IncrementalModel(builder, max_length=32)
    rng = np.random.default_rng(2)

    def decode(prefix_length, steps, batch=2):
        ids = rng.integers(4, 30, size=(batch, prefix_length)).astype("int32")
        outputs, cache = step(ids, np.zeros_like(ids))
        for _ in range(steps):
            new = outputs[:, -1].argmax(-1)[:, None].astype("int32")
            outputs, cache = step(new, np.zeros_like(new), cache)
        return cache

    with caplog.at_level(logging.INFO, logger="kerasbert.models.decoding"):
        decode(prefix_length=6, steps=2)  # warm-up: the first chunk (width 8) and a step
    warm = step.num_compilations
    assert warm == 2
    logged = [r.getMessage() for r in caplog.records if r.name == "kerasbert.models.decoding"]
    assert len(logged) == 2 and "width 8 (first chunk)" in logged[0] and "width 1," in logged[1]
    cache = decode(prefix_length=5, steps=20)  # 20 more steps, another prefix of width 8
    assert cache["length"] == 25
    decode(prefix_length=7, steps=10)
    assert step.num_compilations == warm  # nothing per step, nothing per prefix length
    # An independent count: the executables in the jitted function's own cache.
    assert step._function._cache_size() == warm
    decode(prefix_length=6, steps=1, batch=3)  # a new batch size compiles both again
    assert step.num_compilations == warm + 2
