"""Checkpoints written by real TensorFlow (tools/make_tf_fixtures.py), read without it."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES, goldens

import kerasbert
from kerasbert.checkpoints import TFCheckpoint, inspect, open_checkpoint
from kerasbert.errors import CheckpointError
from kerasbert.models import save_tf_checkpoint

TF_BERT = FIXTURES / "tf_bert_tiny"
HF_BERT = FIXTURES / "bert_tiny_gelu"


def _predict(model, g):
    return model.predict([g["token_ids"], g["segment_ids"]], verbose=0)


def test_manifest_matches_what_we_read():
    manifest = json.loads((TF_BERT / "manifest.json").read_text())["variables"]
    ckpt = open_checkpoint(TF_BERT)
    assert sorted(manifest) == ckpt.names()
    for name, (dtype, shape) in manifest.items():
        assert ckpt.dtype(name) == dtype and list(ckpt.shape(name)) == shape


def test_tf_checkpoint_equals_hf_checkpoint_of_same_weights():
    tf_ckpt, hf_ckpt = open_checkpoint(TF_BERT), open_checkpoint(HF_BERT)
    for name in hf_ckpt.names():
        np.testing.assert_array_equal(tf_ckpt.read(name), hf_ckpt.read(name))
    kwargs = {"with_nsp": "linear", "with_mlm": "linear", "hidden_act": "gelu_erf"}
    from_tf = kerasbert.build_transformer_model(TF_BERT / "bert_config.json", TF_BERT, **kwargs)
    from_hf = kerasbert.build_transformer_model(HF_BERT / "config.json", HF_BERT, **kwargs)
    g = goldens(HF_BERT)
    for a, b in zip(_predict(from_tf, g), _predict(from_hf, g)):
        np.testing.assert_array_equal(a, b)


def test_google_config_means_tanh_gelu():
    """Google's bert_config.json says "gelu", which Google's code computes with tanh: the
    TF checkpoint with its own config matches the HF gelu_new goldens (same weights)."""
    g = goldens(FIXTURES / "bert_tiny_gelu_new")
    mask = g["attention_mask"].astype(bool)
    model = kerasbert.build_transformer_model(
        TF_BERT / "bert_config.json", TF_BERT / "bert_model.ckpt", with_mlm="linear"
    )
    assert model.get_layer("Transformer-0-FeedForward").activation == "gelu_tanh"
    mlm = _predict(model, g)
    assert np.abs(mlm[mask] - g["mlm_logits"][mask]).max() < 1e-5


def test_optimizer_slots_and_step_are_unused():
    builder = kerasbert.build_transformer_model(
        TF_BERT / "bert_config.json", TF_BERT, with_nsp=True, with_mlm=True,
        return_keras_model=False,
    )  # fmt: skip
    unused = builder.load_report.unused
    assert "global_step" in unused
    assert all(n == "global_step" or n.endswith(("/adam_m", "/adam_v")) for n in unused)
    assert len(unused) == 1 + 2 * len(builder.load_report.loaded)


def test_round_trip_through_model_is_bit_exact(tmp_path):
    model = kerasbert.build_transformer_model(
        TF_BERT / "bert_config.json", TF_BERT, with_nsp=True, with_mlm=True
    )
    save_tf_checkpoint(model, tmp_path / "bert_model.ckpt")
    original, written = open_checkpoint(TF_BERT), open_checkpoint(tmp_path)
    assert set(written.names()) == {
        n for n in original.names() if n != "global_step" and "/adam_" not in n
    }
    for name in written.names():
        a, b = original.read(name), written.read(name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_written_checkpoint_was_read_by_tensorflow():
    """tools/make_tf_fixtures.py writes a checkpoint with kerasbert's writer and checks that
    TensorFlow's tf.train.load_variable and HF's load_tf_weights_in_bert read it; the
    outcome is recorded in the fixture."""
    record = json.loads((FIXTURES / "tf_written_by_kerasbert" / "verified.json").read_text())
    assert record["tf_load_variable_equal"] is True
    assert record["load_tf_weights_in_bert_max_diff"] < 1e-5
    ckpt = open_checkpoint(FIXTURES / "tf_written_by_kerasbert")
    assert sorted(record["variables"]) == ckpt.names()


def test_every_supported_dtype_across_shards():
    folder = FIXTURES / "tf_dtypes"
    dtypes = json.loads((folder / "expected_dtypes.json").read_text())
    ckpt = TFCheckpoint(folder / "model.ckpt")
    assert ckpt.num_shards == 2
    assert {info["shard"] for info in ckpt._source.values()} == {0, 1}
    with np.load(folder / "expected.npz") as expected:
        for name, info in dtypes.items():
            array = ckpt.read(name)
            assert ckpt.stored_dtype(name) == info["dtype"]
            assert list(array.shape) == info["shape"]
            np.testing.assert_array_equal(array, expected[name])


def test_index_with_several_blocks():
    folder = FIXTURES / "tf_many"
    ckpt = open_checkpoint(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["index"]["data_blocks"] >= 2
    with np.load(folder / "expected.npz") as expected:
        names, values = [str(n) for n in expected["names"]], expected["values"]
    assert sorted(names) == ckpt.names()
    for name, value in zip(names, values):
        assert ckpt.read(name) == value


def test_partitioned_variable_is_refused_clearly():
    ckpt = open_checkpoint(FIXTURES / "tf_partitioned")
    sliced = [n for n in ckpt.names() if ckpt.dtype(n) == "sliced"]
    assert sliced
    with pytest.raises(CheckpointError, match="partitioned.*not support"):
        ckpt.read(sliced[0])


def test_hf_tf_model_h5_matches_goldens():
    folder = FIXTURES / "hf_tf_bert_tiny"
    assert open_checkpoint(folder).format == "hf_tf"
    g = goldens(HF_BERT)
    mask = g["attention_mask"].astype(bool)
    model = kerasbert.build_transformer_model(
        folder / "config.json", folder, with_nsp="linear", with_mlm="linear"
    )
    nsp, mlm = _predict(model, g)
    assert np.abs(nsp - g["nsp_logits"]).max() < 1e-5
    assert np.abs(mlm[mask] - g["mlm_logits"][mask]).max() < 1e-5


def test_inspect_and_command_line():
    summary = inspect(TF_BERT)
    assert summary.format == "tensorflow" and summary.family == "bert"
    # Parameters are the model's weights; the Adam slots and global_step are counted apart.
    sizes = {name: int(np.prod(shape)) for name, shape, _, _ in summary.variables}
    slots = [n for n in sizes if n.endswith(("/adam_m", "/adam_v")) or n == "global_step"]
    assert slots and sorted(summary.other_variables) == sorted(slots)
    assert summary.num_other == sum(sizes[n] for n in slots)
    assert summary.num_parameters == sum(sizes.values()) - summary.num_other
    model = kerasbert.build_transformer_model(
        TF_BERT / "bert_config.json", TF_BERT, with_pool=True, with_nsp=True, with_mlm=True
    )
    assert summary.num_parameters == model.count_params()
    out = subprocess.run(
        [sys.executable, "-m", "kerasbert.checkpoints", str(TF_BERT)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "format:     tensorflow" in out and "family:     bert" in out
    assert f"parameters: {summary.num_parameters:,}" in out
    assert "bert/encoder/layer_1/output/LayerNorm/gamma" in out
    bad = subprocess.run(
        [sys.executable, "-m", "kerasbert.checkpoints", "/no/such/ckpt"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "does not exist" in bad.stderr
