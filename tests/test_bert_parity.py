"""BERT against goldens made by HF transformers' BertForPreTraining (tools/make_bert_fixtures.py).

Tiny random checkpoints with every parameter random (LayerNorm and biases included), a padded
batch with both segment ids, tolerance 1e-5 in float32.
"""

import sys

import numpy as np
import pytest
from conftest import FIXTURES, goldens

import kerasbert
from kerasbert.checkpoints import open_checkpoint

ATOL = 1e-5


def _predict(model, g):
    return model.predict([g["token_ids"], g["segment_ids"]], verbose=0)


def _assert_close(actual, expected, mask=None):
    if mask is not None:
        actual, expected = actual[mask], expected[mask]
    diff = np.abs(actual - expected).max()
    assert diff < ATOL, f"max abs diff {diff:.3g} >= {ATOL}"


def test_all_heads_match_reference(bert_fixture):
    g = goldens(bert_fixture)
    mask = g["attention_mask"].astype(bool)
    model = kerasbert.build_transformer_model(
        bert_fixture / "config.json",
        bert_fixture / "model.safetensors",
        with_nsp="linear",
        with_mlm="linear",
    )
    nsp_logits, mlm_logits = _predict(model, g)
    _assert_close(nsp_logits, g["nsp_logits"])
    _assert_close(mlm_logits, g["mlm_logits"], mask)


def test_sequence_and_pooled_output_match_reference(bert_fixture):
    g = goldens(bert_fixture)
    mask = g["attention_mask"].astype(bool)
    encoder = kerasbert.build_transformer_model(bert_fixture / "config.json", bert_fixture)
    _assert_close(_predict(encoder, g), g["sequence_output"], mask)
    pooler = kerasbert.build_transformer_model(
        bert_fixture / "config.json", bert_fixture, with_pool=True
    )
    _assert_close(_predict(pooler, g), g["pooled_output"])


def test_default_heads_are_probabilities(bert_fixture):
    g = goldens(bert_fixture)
    model = kerasbert.build_transformer_model(
        bert_fixture / "config.json", bert_fixture, with_nsp=True, with_mlm=True
    )
    nsp, mlm = _predict(model, g)

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    _assert_close(nsp, softmax(g["nsp_logits"]))
    _assert_close(mlm, softmax(g["mlm_logits"]), g["attention_mask"].astype(bool))


def test_activation_comes_from_config():
    """gelu (erf) and gelu_new (tanh) fixtures share weights; swapping the activation breaks
    parity, so the config's activation really is what runs."""
    fixture = FIXTURES / "bert_tiny_gelu_new"
    g = goldens(fixture)
    mask = g["attention_mask"].astype(bool)
    wrong = kerasbert.build_transformer_model(
        fixture / "config.json", fixture, hidden_act="gelu_erf"
    )
    diff = np.abs(_predict(wrong, g)[mask] - g["sequence_output"][mask]).max()
    assert diff > 1e-4


def test_pytorch_bin_without_torch_says_how_to_get_a_readable_file(bert_fixture, monkeypatch):
    """Without torch (hidden here, so this runs whether or not it is installed), opening a
    pytorch_model.bin fails with an error that names torch and the safetensors way out."""
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(kerasbert.CheckpointError, match="needs torch.*safetensors"):
        open_checkpoint(bert_fixture / "pytorch_model.bin")


def test_pytorch_bin_matches_safetensors(bert_fixture):
    """pytorch_model.bin, read through torch, holds the very arrays of model.safetensors.
    Needs torch, which the test environment does not install: skipped (visibly) there."""
    pytest.importorskip("torch")
    path = bert_fixture / "pytorch_model.bin"
    torch_ckpt, st_ckpt = open_checkpoint(path), open_checkpoint(bert_fixture)
    assert torch_ckpt.names() == st_ckpt.names()
    for name in st_ckpt.names():
        np.testing.assert_array_equal(torch_ckpt.read(name), st_ckpt.read(name))


def test_load_report_lists_unused_variables(bert_fixture):
    builder = kerasbert.build_transformer_model(
        bert_fixture / "config.json", bert_fixture, return_keras_model=False
    )
    report = builder.load_report
    assert len(report.loaded) == len(builder.model.weights)
    # The encoder alone leaves the heads' variables unused, and lists them.
    assert "cls/seq_relationship/output_weights" in report.unused
    assert "bert/pooler/dense/kernel" in report.unused
    assert not report.problems


def test_old_hf_names_and_missing_prefix_load_the_same(tmp_path):
    """Old checkpoints name LayerNorm parameters gamma / beta; BertModel saves drop "bert."."""
    from safetensors.numpy import load_file, save_file

    fixture = FIXTURES / "bert_tiny_gelu"
    renamed = {}
    for name, value in load_file(fixture / "model.safetensors").items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma")
        name = name.replace("LayerNorm.bias", "LayerNorm.beta")
        renamed[name.removeprefix("bert.")] = value
    assert "embeddings.LayerNorm.gamma" in renamed
    save_file(renamed, tmp_path / "model.safetensors")
    g = goldens(fixture)
    a = kerasbert.build_transformer_model(fixture / "config.json", tmp_path, with_mlm="linear")
    b = kerasbert.build_transformer_model(fixture / "config.json", fixture, with_mlm="linear")
    np.testing.assert_array_equal(_predict(a, g), _predict(b, g))
