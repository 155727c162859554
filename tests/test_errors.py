"""Bad input raises a kerasbert error with a useful message; nothing loads silently."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from conftest import FIXTURES
from safetensors.numpy import load_file, save_file

import kerasbert
from kerasbert.checkpoints import open_checkpoint
from kerasbert.errors import (
    CheckpointError,
    ConfigError,
    KerasBertError,
    ModelTypeError,
    WeightLoadingError,
)

FIXTURE = FIXTURES / "bert_tiny_gelu"
CONFIG = FIXTURE / "config.json"


def _copy_without(tmp_path, drop=(), change=None):
    tensors = load_file(FIXTURE / "model.safetensors")
    for name in drop:
        del tensors[name]
    tensors.update(change or {})
    path = tmp_path / "model.safetensors"
    save_file(tensors, path)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_variable_is_named_with_nearest(tmp_path):
    path = _copy_without(tmp_path, drop=["bert.encoder.layer.1.attention.self.key.weight"])
    with pytest.raises(WeightLoadingError) as info:
        kerasbert.build_transformer_model(CONFIG, path)
    message = str(info.value)
    assert "bert/encoder/layer_1/attention/self/key/kernel" in message
    assert "nearest names" in message and "layer_0/attention/self/key/kernel" in message
    assert "ignore_invalid_weights" in message


def test_wrong_shape_is_named(tmp_path):
    path = _copy_without(tmp_path, change={"bert.pooler.dense.bias": np.zeros(5, "float32")})
    with pytest.raises(WeightLoadingError, match=r"bert/pooler/dense/bias.*\(5,\).*\(32,\)"):
        kerasbert.build_transformer_model(CONFIG, path, with_pool=True)


def test_config_that_does_not_fit_the_checkpoint():
    with pytest.raises(WeightLoadingError, match="shape mismatch"):
        kerasbert.build_transformer_model(CONFIG, FIXTURE, intermediate_size=40)


def test_ignore_invalid_weights_warns_and_loads_the_rest(tmp_path):
    path = _copy_without(tmp_path, drop=["bert.pooler.dense.weight"])
    with pytest.warns(UserWarning, match="bert/pooler/dense/kernel"):
        builder = kerasbert.build_transformer_model(
            CONFIG, path, with_pool=True, ignore_invalid_weights=True,
            return_keras_model=False,
        )  # fmt: skip
    assert builder.load_report.problems
    reference = open_checkpoint(FIXTURE).read("bert/pooler/dense/bias")
    np.testing.assert_array_equal(builder.model.get_layer("Pooler-Dense").bias.numpy(), reference)


def test_nothing_is_assigned_when_loading_fails(tmp_path):
    from kerasbert.checkpoints import load_weights

    builder = kerasbert.build_transformer_model(CONFIG, return_keras_model=False)
    before = [w.copy() for w in builder.model.get_weights()]
    broken = open_checkpoint(_copy_without(tmp_path, drop=["bert.pooler.dense.weight"]))
    mapping = builder.variable_mapping()
    mapping["Embedding-Norm"]["gamma"] = "no/such/variable"
    with pytest.raises(WeightLoadingError):
        load_weights(builder.model, broken, mapping)
    for a, b in zip(before, builder.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_unknown_model_and_application_and_option(tiny_config):
    with pytest.raises(ModelTypeError, match="Unknown model 'gpt9'.*bert"):
        kerasbert.build_transformer_model(tiny_config, model="gpt9")
    with pytest.raises(ModelTypeError, match="application"):
        kerasbert.build_transformer_model(tiny_config, application="vision")
    with pytest.raises(ConfigError, match="with_pol.*did you mean 'with_pool'"):
        kerasbert.build_transformer_model(tiny_config, with_pol=True)


def test_config_without_required_key(tmp_path):
    config = json.loads(CONFIG.read_text())
    del config["num_attention_heads"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="num_attention_heads"):
        kerasbert.build_transformer_model(path, FIXTURE)


def test_non_checkpoint_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="not a checkpoint kerasbert can read"):
        kerasbert.build_transformer_model(CONFIG, path)


def test_empty_directory_and_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint found in folder"):
        kerasbert.build_transformer_model(CONFIG, tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        kerasbert.build_transformer_model(CONFIG, tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep_fraction", [0.0, 0.001, 0.5, 0.999])
def test_truncated_safetensors(tmp_path, keep_fraction):
    source = FIXTURE / "model.safetensors"
    data = source.read_bytes()
    path = tmp_path / "model.safetensors"
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    digest = _digest(path)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        kerasbert.build_transformer_model(CONFIG, path)
    assert _digest(path) == digest  # input files are never modified


def test_corrupt_safetensors_header(tmp_path):
    data = bytearray((FIXTURE / "model.safetensors").read_bytes())
    data[10:30] = b"\xff" * 20
    path = tmp_path / "model.safetensors"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        kerasbert.build_transformer_model(CONFIG, path)


def test_sharded_safetensors_with_missing_shard(tmp_path):
    tensors = load_file(FIXTURE / "model.safetensors")
    names = sorted(tensors)
    half = len(names) // 2
    save_file({n: tensors[n] for n in names[:half]}, tmp_path / "a.safetensors")
    save_file({n: tensors[n] for n in names[half:]}, tmp_path / "b.safetensors")
    weight_map = {n: "a.safetensors" if i < half else "b.safetensors" for i, n in enumerate(names)}
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    sharded = kerasbert.build_transformer_model(CONFIG, tmp_path, with_mlm=True)
    whole = kerasbert.build_transformer_model(CONFIG, FIXTURE, with_mlm=True)
    for a, b in zip(sharded.get_weights(), whole.get_weights()):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "b.safetensors").unlink()
    with pytest.raises(CheckpointError, match="b.safetensors.*missing"):
        kerasbert.build_transformer_model(CONFIG, tmp_path)


def test_keras_weights_of_another_architecture(tmp_path, tiny_config):
    model = kerasbert.build_transformer_model(tiny_config)
    path = tmp_path / "small.weights.h5"
    model.save_weights(path)
    with pytest.raises(WeightLoadingError, match="same config and heads"):
        kerasbert.build_transformer_model(CONFIG, path)


def test_copied_fixture_folder_loads(tmp_path):
    shutil.copy(FIXTURE / "model.safetensors", tmp_path)
    model = kerasbert.build_transformer_model(CONFIG, tmp_path)
    assert isinstance(model.layers[0].name, str)


def test_every_error_is_a_kerasbert_error():
    for cls in (CheckpointError, ConfigError, ModelTypeError, WeightLoadingError):
        assert issubclass(cls, KerasBertError)
