"""application='lm' (causal) and 'unilm' (seq2seq) masks, for every family."""

import keras
import numpy as np
import pytest

import kerasbert
from kerasbert.errors import ConfigError, ModelTypeError

CONFIG = {"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 2, "embedding_size": 8,
          "num_attention_heads": 2, "intermediate_size": 24, "hidden_act": "gelu_erf",
          "max_relative_position": 3, "initializer_range": 0.3}  # fmt: skip
FAMILIES = ["bert", "albert", "nezha"]


def _run(model, ids, segments):
    return model.predict([ids, segments], verbose=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_lm_is_causal(family):
    model = kerasbert.build_transformer_model(
        CONFIG, model=family, application="lm", with_mlm="linear"
    )
    assert "Attention-LM-Mask" in [layer.name for layer in model.layers]
    ids = np.array([[2, 5, 9, 11, 13, 17, 3]], "int32")
    segments = np.zeros_like(ids)
    base = _run(model, ids, segments)
    changed = ids.copy()
    changed[0, 4] = 30
    out = _run(model, changed, segments)
    np.testing.assert_allclose(out[0, :4], base[0, :4], atol=1e-6)  # the past is untouched
    assert np.abs(out[0, 4:] - base[0, 4:]).max() > 1e-3  # the present and future change


@pytest.mark.parametrize("family", FAMILIES)
def test_unilm_source_cannot_see_target(family):
    model = kerasbert.build_transformer_model(
        CONFIG, model=family, application="unilm", with_mlm="linear"
    )
    ids = np.array([[2, 5, 9, 3, 11, 13, 17, 3]], "int32")
    segments = np.array([[0, 0, 0, 0, 1, 1, 1, 1]], "int32")
    base = _run(model, ids, segments)
    changed = ids.copy()
    changed[0, 5] = 30  # inside the target
    out = _run(model, changed, segments)
    np.testing.assert_allclose(out[0, :5], base[0, :5], atol=1e-6)
    assert np.abs(out[0, 5:] - base[0, 5:]).max() > 1e-3
    changed = ids.copy()
    changed[0, 2] = 30  # inside the source: everyone sees it, both directions
    out = _run(model, changed, segments)
    assert np.abs(out[0, :2] - base[0, :2]).max() > 1e-3
    assert np.abs(out[0, 4:] - base[0, 4:]).max() > 1e-3


def test_encoder_is_bidirectional():
    model = kerasbert.build_transformer_model(CONFIG, with_mlm="linear")
    ids = np.array([[2, 5, 9, 11, 3]], "int32")
    segments = np.zeros_like(ids)
    changed = ids.copy()
    changed[0, 3] = 30
    difference = _run(model, ids, segments)[0, 0] - _run(model, changed, segments)[0, 0]
    assert np.abs(difference).max() > 1e-3  # the first token sees the fourth


def test_padding_still_masked_under_unilm():
    model = kerasbert.build_transformer_model(CONFIG, application="unilm")
    ids = np.array([[2, 5, 3, 7, 3, 0, 0]], "int32")
    segments = np.array([[0, 0, 0, 1, 1, 0, 0]], "int32")
    short = model.predict([ids[:, :5], segments[:, :5]], verbose=0)
    np.testing.assert_allclose(model.predict([ids, segments], verbose=0)[:, :5], short, atol=1e-5)


def test_unilm_needs_segments_and_unknown_application():
    with pytest.raises(ConfigError, match="segment ids"):
        kerasbert.build_transformer_model(CONFIG, application="unilm", segment_vocab_size=0)
    with pytest.raises(ModelTypeError, match="Unknown application"):
        kerasbert.build_transformer_model(CONFIG, application="gpt")


def test_unilm_model_round_trips(tmp_path):
    model = kerasbert.build_transformer_model(
        CONFIG, model="nezha", application="unilm", with_mlm=True
    )
    model.save(tmp_path / "unilm.keras")
    loaded = keras.models.load_model(tmp_path / "unilm.keras")
    ids = np.array([[2, 5, 3, 7, 9, 3]], "int32")
    segments = np.array([[0, 0, 0, 1, 1, 1]], "int32")
    np.testing.assert_array_equal(_run(model, ids, segments), _run(loaded, ids, segments))


def test_conditional_layer_norm_starts_as_the_loaded_model(tmp_path):
    """bert4keras's layer_norm_cond / additional_input_layers: every LayerNorm is conditioned
    on an extra input; the projections start at zero, so the loaded checkpoint's outputs are
    unchanged whatever the condition, and they move once the projections do."""
    from conftest import FIXTURES, goldens

    fixture = FIXTURES / "bert_tiny_gelu"
    g = goldens(fixture)
    mask = g["attention_mask"].astype(bool)
    condition = keras.Input((5,), name="Input-Condition")
    builder = kerasbert.build_transformer_model(
        fixture / "config.json", fixture, layer_norm_cond=condition,
        layer_norm_cond_hidden_size=7, layer_norm_cond_hidden_act="tanh",
        additional_input_layers=condition, return_keras_model=False,
    )  # fmt: skip
    model = builder.model
    assert [i.name for i in model.inputs] == ["Input-Token", "Input-Segment", "Input-Condition"]
    cond = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    out = model.predict([g["token_ids"], g["segment_ids"], cond], verbose=0)
    assert np.abs(out[mask] - g["sequence_output"][mask]).max() < 1e-5
    norm = model.get_layer("Transformer-0-FeedForward-Norm")
    kernel = norm.gamma_dense.kernel
    kernel.assign(np.ones(kernel.shape, "float32"))
    moved = model.predict([g["token_ids"], g["segment_ids"], cond], verbose=0)
    assert np.abs(moved[mask] - out[mask]).max() > 1e-3
    model.save(tmp_path / "cond.keras")
    loaded = keras.models.load_model(tmp_path / "cond.keras")
    again = loaded.predict([g["token_ids"], g["segment_ids"], cond], verbose=0)
    np.testing.assert_array_equal(again, moved)
