"""Loading refuses what would give a silently wrong model: relabelled dtypes, NaN / inf,
deeper checkpoints than the config, bad config values and token ids; and it is all or
nothing (a failed read leaves the model as it was)."""

import json
import shutil
import struct

import numpy as np
import pytest
from conftest import FIXTURES, TINY_CONFIG

from kerasbert.checkpoints import ArrayCheckpoint, write_tf_checkpoint
from kerasbert.errors import CheckpointError, ConfigError, WeightLoadingError
from kerasbert.models import build_transformer_model, model_arrays, save_tf_checkpoint

CONFIG = dict(TINY_CONFIG, vocab_size=30)


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(3)
    model = build_transformer_model(CONFIG)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.2, variable.shape).astype("float32"))
    return model_arrays(model)


def _relabel_safetensors(path, name, dtype):
    """Rewrite one tensor's dtype in a safetensors header (same bytes, new label)."""
    data = bytearray(path.read_bytes())
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    header[name]["dtype"] = dtype
    text = json.dumps(header, separators=(",", ":")).encode().ljust(size)
    assert len(text) == size
    data[8 : 8 + size] = text
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("dtype", ["I32", "U32"])
def test_a_float_tensor_relabelled_as_integers_is_refused(tmp_path, dtype):
    folder = tmp_path / "m"
    shutil.copytree(FIXTURES / "bert_tiny_gelu", folder)
    _relabel_safetensors(folder / "model.safetensors", "bert.pooler.dense.weight", dtype)
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(WeightLoadingError, match=r"bert/pooler/dense/kernel.*(int32|uint32|U32)"):
        build_transformer_model(folder, folder, with_pool=True)


def test_integer_and_bool_tensors_in_a_tf_checkpoint_are_refused(tmp_path, arrays):
    for dtype in ("int32", "bool"):
        bad = dict(arrays)
        name = "bert/embeddings/LayerNorm/gamma"
        bad[name] = np.ones(arrays[name].shape, dtype)
        write_tf_checkpoint(tmp_path / dtype / "model.ckpt", bad)
        with pytest.raises(WeightLoadingError, match=f"{name}.*{dtype}"):
            build_transformer_model(CONFIG, tmp_path / dtype / "model.ckpt")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_unless_allowed(tmp_path, arrays, value):
    bad = dict(arrays)
    name = "bert/encoder/layer_1/output/dense/kernel"
    bad[name] = arrays[name].copy()
    bad[name][3, 4] = value
    write_tf_checkpoint(tmp_path / "model.ckpt", bad)
    with pytest.raises(WeightLoadingError, match=f"{name}.*1 NaN or infinite"):
        build_transformer_model(CONFIG, tmp_path / "model.ckpt")
    model = build_transformer_model(CONFIG, tmp_path / "model.ckpt", allow_non_finite=True)
    kernel = model.get_layer("Transformer-1-FeedForward").output_dense.kernel.numpy()
    assert not np.isfinite(kernel[3, 4])


def test_a_failed_read_leaves_the_model_as_it_was(tmp_path, arrays):
    """A CRC error in the last variable used to come after 45 of 46 were assigned."""
    prefix = tmp_path / "model.ckpt"
    write_tf_checkpoint(prefix, arrays)
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[-3] ^= 0xFF  # the last tensor's bytes
    data.write_bytes(bytes(raw))
    builder = build_transformer_model(CONFIG, return_keras_model=False)
    before = {v.path: v.numpy().copy() for v in builder.model.weights}
    with pytest.raises(CheckpointError, match="Checksum mismatch"):
        builder.load_weights_from_checkpoint(prefix)
    for variable in builder.model.weights:
        np.testing.assert_array_equal(variable.numpy(), before[variable.path])


def test_a_checkpoint_deeper_than_the_config_is_an_error(tmp_path, arrays):
    prefix = tmp_path / "model.ckpt"
    write_tf_checkpoint(prefix, arrays)
    shallow = dict(CONFIG, num_hidden_layers=1)
    with pytest.raises(WeightLoadingError, match="fewer layers"):
        build_transformer_model(shallow, prefix)
    with pytest.warns(UserWarning, match="fewer layers"):
        build_transformer_model(shallow, prefix, ignore_invalid_weights=True)
    # Asking for fewer layers by name is deliberate (BERT-of-Theseus, distillation).
    model = build_transformer_model(CONFIG, prefix, num_hidden_layers=1)
    assert len([x for x in model.layers if x.name.endswith("-FeedForward")]) == 1
    # Optimizer slots of the model's own layers are not blocks it lacks.
    with_slots = dict(arrays, **{f"{n}/adam_m": v for n, v in arrays.items()})
    write_tf_checkpoint(tmp_path / "slots.ckpt", with_slots)
    build_transformer_model(CONFIG, tmp_path / "slots.ckpt")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("layer_norm_eps", "1e-12", "'layer_norm_eps'.*'1e-12'.*not a string"),
        ("layer_norm_eps", -1, "'layer_norm_eps'.*-1.*> 0"),
        ("type_vocab_size", "2", "'type_vocab_size'"),
        ("max_position_embeddings", 0, "'max_position_embeddings'.*>= 1"),
        ("hidden_dropout_prob", 1.5, "'hidden_dropout_prob'.*< 1"),
        ("attention_probs_dropout_prob", "0.1", "'attention_probs_dropout_prob'"),
        ("num_attention_heads", True, "'num_attention_heads'"),
    ],
)
def test_config_values_are_checked_by_type_and_range(key, value, message):
    with pytest.raises(ConfigError, match=message):
        build_transformer_model(dict(CONFIG, **{key: value}))


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("keep_tokens", [0, 1, 30], r"keep_tokens\[2\] is 30.*\[0, 30\)"),
        ("keep_tokens", [0, -1], r"keep_tokens\[1\] is -1"),
        ("keep_tokens", [0, 1.5], r"keep_tokens\[1\] is 1.5"),
        ("compound_tokens", [[1, 2], [31]], r"compound_tokens\[1\]\[0\] is 31"),
        ("compound_tokens", [[]], r"compound_tokens\[0\] must be a non-empty list"),
    ],
)
def test_token_ids_outside_the_vocabulary_are_refused(tmp_path, arrays, option, value, message):
    write_tf_checkpoint(tmp_path / "model.ckpt", arrays)
    with pytest.raises(ConfigError, match=message):
        build_transformer_model(CONFIG, tmp_path / "model.ckpt", **{option: value})


def test_a_transposed_weight_says_which_layout_each_shape_is_in(arrays):
    name = "cls/seq_relationship/output_weights"
    ckpt = ArrayCheckpoint(dict(arrays, **{name: np.zeros((16, 2), "float32"),
                                           "cls/seq_relationship/output_bias": np.zeros(2)}))
    model = build_transformer_model(CONFIG, return_keras_model=False, with_nsp=True)
    with pytest.raises(WeightLoadingError) as info:
        model.load_weights_from_checkpoint(ckpt)
    line = next(x for x in str(info.value).splitlines() if name in x)
    assert "(16, 2) in the checkpoint, (2, 16) as the model takes it" in line
    assert "needs (16, 2)" in line


def test_save_and_load_round_trip_still_works(tmp_path):
    model = build_transformer_model(CONFIG, with_mlm=True)
    save_tf_checkpoint(model, tmp_path / "model.ckpt")
    again = build_transformer_model(CONFIG, tmp_path / "model.ckpt", with_mlm=True)
    assert model_arrays(again).keys() == model_arrays(model).keys()
