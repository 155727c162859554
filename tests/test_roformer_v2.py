"""RoFormer v2 against keras-hub's RoformerV2Backbone (tools/make_roformer_v2_fixtures.py), from
a TF checkpoint under the names of Zhuiyi's releases: no biases, parameter-free RMS norms,
rotary positions past the config's length, the tied MLM head; detection, conversion,
inspection, loading errors, training options and cached decoding."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import (
    FIXTURES,
    assert_cached_decoding_equals_full,
    assert_same_loss_and_gradients,
    goldens,
)

import kerasbert
from kerasbert.checkpoints import open_checkpoint
from kerasbert.checkpoints.inspect import inspect
from kerasbert.checkpoints.tf_bundle import write_tf_checkpoint
from kerasbert.convert import convert, load_model
from kerasbert.errors import CheckpointError, ConfigError, ModelTypeError, WeightLoadingError
from kerasbert.families import checkpoint_candidates, detect_checkpoint
from kerasbert.models import RoFormerV2

ATOL = 1e-5
ROOT = FIXTURES / "roformer_v2_tiny"
CONFIG, CHECKPOINT = ROOT / "bert_config.json", ROOT / "bert_model.ckpt"
LAST_BLOCK = "Transformer-1-FeedForward-Norm"


def _check(model, g, prefix=""):
    """Sequence output and MLM logits against keras-hub's, on real tokens."""
    mask = g[prefix + "attention_mask"].astype(bool)
    with_sequence = keras.Model(model.inputs, [model.get_layer(LAST_BLOCK).output, model.output])
    sequence, mlm = with_sequence.predict([g[prefix + "token_ids"], g[prefix + "segment_ids"]],
                                          verbose=0)  # fmt: skip
    diffs = {
        "sequence_output": float(np.abs(sequence - g[prefix + "sequence_output"])[mask].max()),
        "mlm_logits": float(np.abs(mlm - g[prefix + "mlm_logits"])[mask].max()),
    }
    assert max(diffs.values()) < ATOL, diffs
    return diffs


@pytest.fixture(scope="module")
def builder():
    return kerasbert.build_transformer_model(
        CONFIG, CHECKPOINT, with_mlm="linear", return_keras_model=False
    )


def test_matches_keras_hub_from_the_tf_checkpoint(builder):
    g = goldens(ROOT)
    assert isinstance(builder, RoFormerV2) and builder.model.name == "roformer_v2"
    assert not builder.load_report.unused and not builder.load_report.problems
    assert g["attention_mask"].sum(1).tolist() == [12, 9, 5]  # padding on two rows
    assert set(g["segment_ids"][0]) == {0, 1}
    _check(builder.model, g)
    # 48 tokens where the config says 32: rotary positions are a function, not a table.
    assert g["long_token_ids"].shape[1] > json.loads(CONFIG.read_text())["max_position_embeddings"]
    _check(builder.model, g, "long_")


def test_no_biases_no_norm_weights_and_the_norm_is_rms(builder):
    model = builder.model
    assert {w.name for w in model.weights} == {"embeddings", "kernel"}
    norm = model.get_layer("Embedding-Norm")
    x = np.array([[[3.0, -1.0, 2.0, 0.0]]], "float32")  # mean 1: an RMS norm keeps it
    expected = x / np.sqrt(np.mean(x**2) + 1e-7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(norm(x)), expected, rtol=1e-6)
    # Its sum of squares, not its variance, is one: the mean is not removed.
    assert np.mean(keras.ops.convert_to_numpy(norm(x))) > 0.4
    assert builder.hidden_act == "relu"


def test_padding_does_not_reach_real_tokens(builder):
    g = goldens(ROOT)
    encoder = keras.Model(builder.model.inputs, builder.model.get_layer(LAST_BLOCK).output)
    row = [g["token_ids"][1:2, :9], g["segment_ids"][1:2, :9]]
    alone = encoder.predict(row, verbose=0)
    np.testing.assert_allclose(alone[0], g["sequence_output"][1, :9], atol=ATOL)


# -- detection and the wrong family ------------------------------------------------------------
def test_detected_from_its_names_alone():
    checkpoint = open_checkpoint(CHECKPOINT)
    assert checkpoint_candidates(checkpoint) == ["roformer_v2"]
    assert detect_checkpoint(checkpoint) == "roformer_v2"
    # The names of v1 (and NEZHA) have biases and LayerNorms: never taken for v2.
    v1 = open_checkpoint(FIXTURES / "roformer_tiny" / "base" / "bert_model.ckpt")
    assert checkpoint_candidates(v1) == ["nezha", "roformer"]
    summary = inspect(CHECKPOINT)
    assert summary.family == "roformer_v2" and summary.other_variables == []
    assert summary.num_parameters == sum(
        int(np.prod(checkpoint.shape(n))) for n in checkpoint.names()
    )
    assert "roformer_v2" in summary.to_text()


@pytest.mark.parametrize("wrong", ["roformer", "nezha", "bert", "albert"])
def test_a_contradicting_model_names_the_family(wrong):
    with pytest.raises(ModelTypeError, match=f"model='{wrong}'.*looks like roformer_v2"):
        kerasbert.build_transformer_model(CONFIG, CHECKPOINT, model=wrong)


def test_a_v1_checkpoint_is_not_loaded_as_v2():
    v1 = FIXTURES / "roformer_tiny" / "base"
    with pytest.raises(ModelTypeError, match="model='roformer_v2'.*looks like nezha or roformer"):
        kerasbert.build_transformer_model(v1 / "bert_config.json", v1 / "bert_model.ckpt",
                                          model="roformer_v2")  # fmt: skip


def test_options_v2_has_no_weights_for_are_refused():
    with pytest.raises(ConfigError, match="no pooler"):
        kerasbert.build_transformer_model(CONFIG, CHECKPOINT, with_pool=True)
    condition = keras.Input((4,), name="Condition")
    with pytest.raises(ConfigError, match="layer_norm_cond"):
        kerasbert.build_transformer_model(CONFIG, model="roformer_v2", layer_norm_cond=condition,
                                          additional_input_layers=condition)  # fmt: skip


# -- loading errors (those of the BERT loader) --------------------------------------------------
def _rewritten(tmp_path, drop=(), change=None):
    checkpoint = open_checkpoint(CHECKPOINT)
    arrays = {n: checkpoint.read(n) for n in checkpoint.names() if n not in drop}
    arrays.update(change or {})
    tmp_path.mkdir()
    prefix = tmp_path / "bert_model.ckpt"
    write_tf_checkpoint(prefix, arrays)
    return prefix


def test_missing_and_misshaped_variables_are_named(tmp_path):
    key = "bert/encoder/layer_1/attention/self/key/kernel"
    with pytest.raises(WeightLoadingError) as info:
        kerasbert.build_transformer_model(CONFIG, _rewritten(tmp_path / "a", drop=[key]),
                                          model="roformer_v2")  # fmt: skip
    assert key in str(info.value) and "nearest names" in str(info.value)
    wrong = {"bert/encoder/layer_0/output/dense/kernel": np.zeros((40, 5), "float32")}
    shapes = r"layer_0/output/dense/kernel.*\(40, 5\).*\(40, 32\)"
    with pytest.raises(WeightLoadingError, match=shapes):
        kerasbert.build_transformer_model(CONFIG, _rewritten(tmp_path / "b", change=wrong))
    with pytest.raises(WeightLoadingError, match="shape mismatch"):
        kerasbert.build_transformer_model(CONFIG, CHECKPOINT, intermediate_size=24)


# -- conversion ----------------------------------------------------------------------------------
def test_converts_to_keras_and_back_to_the_same_tf_arrays(tmp_path):
    keras_out = Path(convert(CHECKPOINT, tmp_path / "keras", to="keras"))
    tf_out = Path(convert(keras_out, tmp_path / "tf", to="tf"))
    original, again = open_checkpoint(CHECKPOINT), open_checkpoint(tf_out)
    assert sorted(again.names()) == sorted(original.names())
    for name in original.names():
        assert again.read(name).tobytes() == original.read(name).tobytes(), name
    written = json.loads((tf_out / "bert_config.json").read_text())
    assert written["hidden_act"] == "relu" and "model_type" not in written
    _check(load_model(keras_out, with_mlm="linear"), goldens(ROOT))
    _check(load_model(tf_out, with_mlm="linear"), goldens(ROOT))


def test_conversion_to_hf_names_is_refused_before_writing(tmp_path):
    with pytest.raises(CheckpointError, match="No HF transformers naming for family 'roformer_v2'"):
        convert(CHECKPOINT, tmp_path / "hf", to="safetensors")
    assert not (tmp_path / "hf" / "model.safetensors").exists()


# -- training options ----------------------------------------------------------------------------
def test_mixed_precision_and_gradient_checkpointing(builder):

    g = goldens(ROOT)
    inputs = [g["token_ids"], g["segment_ids"]]
    mask = g["attention_mask"].astype(bool)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = kerasbert.build_transformer_model(CONFIG, CHECKPOINT, with_mlm="linear")
        mlm = model.predict(inputs, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mlm.dtype == "float32" and {v.dtype for v in model.weights} == {"float32"}
    scale = np.abs(g["mlm_logits"][mask]).max()
    assert np.abs(mlm - g["mlm_logits"])[mask].max() < 0.05 * scale

    remat = kerasbert.build_transformer_model(CONFIG, CHECKPOINT, with_mlm="linear",
                                              gradient_checkpointing=True)  # fmt: skip
    assert len(remat.remat_blocks()) == 2

    # Gradients up to ~1e2 here: float32's relative floor sets each one's tolerance.
    assert_same_loss_and_gradients(builder.model, remat, inputs, mask[..., None], atol_of_max=1e-6)


@pytest.mark.parametrize("application", ["lm", "unilm"])
def test_cached_decoding_equals_full_recompute(application):
    builder = kerasbert.build_transformer_model(
        CONFIG, CHECKPOINT, application=application, with_mlm="linear", return_keras_model=False
    )
    assert_cached_decoding_equals_full(builder, vocab_size=100, seed=7)
