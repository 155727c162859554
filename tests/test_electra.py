"""ELECTRA against HF transformers' ElectraForPreTraining / ElectraForMaskedLM
(tools/make_electra_fixtures.py), from HF safetensors, from Google-named TF checkpoints and
from a Google-style joint pre-training checkpoint (discriminator and generator): the
discriminator's per-token probabilities, the generator's MLM logits, the embedding
projection, detection, conversion, inspection, loading errors, training options."""

import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import FIXTURES, assert_same_loss_and_gradients, goldens, rewritten_safetensors
from safetensors.numpy import load_file

import kerasbert
from kerasbert import families
from kerasbert.checkpoints import open_checkpoint
from kerasbert.checkpoints.inspect import inspect
from kerasbert.convert import convert, load_model
from kerasbert.errors import ConfigError, ModelTypeError, WeightLoadingError
from kerasbert.models import ELECTRA, extend_with_language_model, resolve_model

ATOL = 1e-5
ROOT = FIXTURES / "electra_tiny"
DISC, MAPPED, GEN, JOINT = (ROOT / n for n in ("discriminator", "mapped", "generator", "joint"))
JOINT_CKPT = JOINT / "electra_tiny"
LAST_BLOCK = "Transformer-1-FeedForward-Norm"
NO_FAMILY_CONFIG = {"vocab_size": 1, "hidden_size": 1, "num_hidden_layers": 1,
                    "num_attention_heads": 1, "intermediate_size": 1}  # fmt: skip


def _run(model, g):
    """``(sequence output, head output)`` on the goldens' inputs."""
    with_sequence = keras.Model(model.inputs, [model.get_layer(LAST_BLOCK).output, model.output])
    return with_sequence.predict([g["token_ids"], g["segment_ids"]], verbose=0)


def _max_diff(got, want, mask):
    return float(np.abs(np.asarray(got)[mask] - np.asarray(want)[mask]).max())


def _check(model, folder):
    """Sequence output and the head's output against the goldens (real tokens); the diffs."""
    g = goldens(folder)
    mask = g["attention_mask"].astype(bool)
    sequence, head = _run(model, g)
    diffs = {"sequence_output": _max_diff(sequence, g["sequence_output"], mask)}
    if "mlm_logits" in g:
        diffs["mlm_logits"] = _max_diff(head, g["mlm_logits"], mask)
    else:
        assert head.shape == g["token_ids"].shape + (1,) and head.dtype == "float32"
        probs = model.get_layer("Discriminator-Prediction").activation.__name__ == "sigmoid"
        want = g["discriminator_probs"] if probs else g["discriminator_logits"]
        diffs["discriminator_probs" if probs else "discriminator_logits"] = _max_diff(
            head[..., 0], want, mask
        )
    assert max(diffs.values()) < ATOL, diffs
    return diffs


def _heads(folder):
    return {"with_mlm": "linear"} if folder == GEN else {"with_discriminator": True}


# -- parity ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "folder", [DISC, MAPPED, GEN], ids=["discriminator", "mapped", "generator"]
)
def test_matches_hf_from_safetensors(folder):
    builder = kerasbert.build_transformer_model(
        folder / "config.json", folder / "model.safetensors", return_keras_model=False,
        **_heads(folder),
    )  # fmt: skip
    assert builder.model.name == "electra" and builder.hidden_act == "gelu_erf"
    assert not builder.load_report.unused
    _check(builder.model, folder)


@pytest.mark.parametrize("kind", ["discriminator", "generator"])
def test_matches_hf_from_hf_tf_model_h5(kind, tmp_path):
    """HF's TF classes' tf_model.h5 (what HFL's hub repos ship besides pytorch_model.bin)."""
    folder, reference = ROOT / "tf_h5" / kind, MAPPED if kind == "discriminator" else GEN
    opened = open_checkpoint(folder)
    assert opened.format == "hf_tf" and families.detect_checkpoint(opened) == "electra"
    builder = kerasbert.build_transformer_model(
        folder, folder, return_keras_model=False, **_heads(reference)
    )
    assert not builder.load_report.unused
    _check(builder.model, reference)
    # The same tensors as HF's torch file of those weights.
    out = Path(convert(folder, tmp_path / kind, to="safetensors"))
    assert _tensor_hashes(out / "model.safetensors") == _tensor_hashes(
        reference / "model.safetensors"
    )


def test_discriminator_logits_and_probabilities():
    probs = kerasbert.build_transformer_model(DISC, DISC, with_discriminator=True)
    logits = kerasbert.build_transformer_model(DISC, DISC, with_discriminator="linear")
    _check(probs, DISC)
    _check(logits, DISC)


def test_matches_hf_from_google_tf_checkpoint():
    """Google's BertConfig-format config ("gelu" = ELECTRA's erf GELU) and TF names."""
    config = json.loads((DISC / "bert_config.json").read_text())
    assert "model_type" not in config and config["hidden_act"] == "gelu"
    builder = kerasbert.build_transformer_model(
        DISC / "bert_config.json", DISC / "electra_model.ckpt", with_discriminator=True,
        return_keras_model=False,
    )  # fmt: skip
    assert builder.hidden_act == "gelu_erf" and not builder.load_report.unused
    _check(builder.model, DISC)


def test_joint_checkpoint_loads_the_discriminator_by_default():
    builder = kerasbert.build_transformer_model(
        JOINT / "discriminator.json", JOINT_CKPT, with_discriminator=True,
        return_keras_model=False,
    )  # fmt: skip
    _check(builder.model, MAPPED)
    unused = builder.load_report.unused
    assert "global_step" in unused
    assert {n.split("/")[0] for n in unused} == {"generator", "global_step"}
    assert "generator/generator_predictions/output_bias" in unused  # the generator's head


def test_joint_checkpoint_loads_the_generator_with_body():
    builder = kerasbert.build_transformer_model(
        JOINT / "generator.json", JOINT_CKPT, with_mlm="linear", body="generator",
        return_keras_model=False,
    )  # fmt: skip
    assert builder.model.get_layer("Embedding-Mapping").kernel.shape == (8, 12)
    _check(builder.model, GEN)
    unused = builder.load_report.unused
    assert {n.split("/")[0] for n in unused} == {"discriminator", "global_step"}
    assert "discriminator/electra/encoder/layer_0/output/dense/kernel" in unused
    # The shared embeddings are the discriminator's: one copy in the file, read by both.
    disc = kerasbert.build_transformer_model(JOINT / "discriminator.json", JOINT_CKPT)
    np.testing.assert_array_equal(
        builder.model.get_layer("Embedding-Token").embeddings.numpy(),
        disc.get_layer("Embedding-Token").embeddings.numpy(),
    )


def test_both_heads_on_one_body():
    # The discriminator's file has no MLM head: it keeps random weights, with a warning.
    with pytest.warns(UserWarning, match="generator_predictions/output_bias"):
        model = kerasbert.build_transformer_model(
            MAPPED, MAPPED, with_discriminator=True, with_mlm=True, ignore_invalid_weights=True
        )
    g = goldens(MAPPED)
    discriminator, mlm = model.predict([g["token_ids"], g["segment_ids"]], verbose=0)
    assert discriminator.shape == (3, 11, 1) and mlm.shape == (3, 11, 40)
    np.testing.assert_allclose(mlm.sum(-1), 1.0, rtol=1e-5)  # softmax
    mask = g["attention_mask"].astype(bool)
    assert _max_diff(discriminator[..., 0], g["discriminator_probs"], mask) < ATOL


def test_the_other_models_head_is_not_this_ones(tmp_path):
    """In a joint checkpoint the generator's head belongs to the generator."""
    with pytest.raises(WeightLoadingError, match="generator/generator_predictions/dense"):
        kerasbert.build_transformer_model(JOINT / "discriminator.json", JOINT_CKPT, with_mlm=True)
    with pytest.raises(WeightLoadingError, match="discriminator/discriminator_predictions"):
        kerasbert.build_transformer_model(
            JOINT / "generator.json", JOINT_CKPT, body="generator", with_discriminator=True
        )
    with pytest.raises(ConfigError, match="body='generator'.*holds one model"):
        kerasbert.build_transformer_model(GEN, GEN, body="generator")
    with pytest.raises(ConfigError, match="body must be one of"):
        kerasbert.build_transformer_model(GEN, GEN, body="gen")


# -- what ELECTRA is not --------------------------------------------------------------------------
@pytest.mark.parametrize("application", ["lm", "unilm"])
def test_language_model_applications_are_refused(application):
    with pytest.raises(ModelTypeError, match=f"ELECTRA cannot .*application='{application}'"):
        kerasbert.build_transformer_model(DISC, DISC, application=application)
    with pytest.raises(ModelTypeError, match="ELECTRA cannot"):
        extend_with_language_model(ELECTRA)(**NO_FAMILY_CONFIG)


def test_no_pooler_or_nsp():
    for option in ("with_pool", "with_nsp"):
        with pytest.raises(ConfigError, match=f"ELECTRA has no pooler.*{option}"):
            kerasbert.build_transformer_model(DISC, model="electra", **{option: True})


# -- detection ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "checkpoint", [DISC / "model.safetensors", GEN / "model.safetensors",
                   DISC / "electra_model.ckpt", JOINT_CKPT],
)  # fmt: skip
def test_detected_from_names(checkpoint):
    opened = open_checkpoint(checkpoint)
    assert families.detect_checkpoint(opened) == "electra"
    assert resolve_model(None, NO_FAMILY_CONFIG, opened) == "electra"
    if opened.format == "safetensors":
        assert opened.family_hint == "electra"


def test_detected_from_the_config():
    config = json.loads((DISC / "config.json").read_text())
    assert families.detect_from_config(config) == "electra"
    assert resolve_model(None, config, None) == "electra"


@pytest.mark.parametrize(
    "checkpoint,wrong",
    [(DISC / "model.safetensors", "bert"), (DISC / "electra_model.ckpt", "roformer"),
     (JOINT_CKPT, "albert"), (GEN / "model.safetensors", "nezha")],
)  # fmt: skip
def test_a_contradicting_model_names_electra(checkpoint, wrong):
    with pytest.raises(ModelTypeError, match=f"model='{wrong}'.*looks like electra.*'electra'"):
        kerasbert.build_transformer_model(DISC / "config.json", checkpoint, model=wrong)


def test_a_bert_checkpoint_is_not_electra():
    bert = FIXTURES / "bert_tiny_gelu"
    with pytest.raises(ModelTypeError, match="model='electra'.*looks like bert"):
        kerasbert.build_transformer_model(bert, bert, model="electra")
    with pytest.raises(ConfigError, match="electra model.*looks like bert"):
        kerasbert.build_transformer_model(DISC / "config.json", bert)


def test_a_built_model_is_told_from_bert():
    config = DISC / "config.json"
    for options in ({}, {"with_discriminator": True}, {"with_mlm": True}):
        model = kerasbert.build_transformer_model(config, **options)
        found = families.detect_from_layers(families.model_layer_names(model))
        assert found.name == "electra", options
    named = kerasbert.build_transformer_model(config, with_discriminator=True, name="mine")
    assert families.detect_from_layers(families.model_layer_names(named)).name == "electra"
    # A bare ELECTRA has BERT's layers: only its name tells (docstring of ELECTRA).
    bare = kerasbert.build_transformer_model(config, name="mine")
    assert families.detect_from_layers(families.model_layer_names(bare)).name == "bert"


def test_inspect():
    summary = inspect(DISC / "model.safetensors")
    assert summary.family == "electra" and summary.other_variables == []
    assert summary.num_parameters == sum(
        v.size for v in load_file(DISC / "model.safetensors").values()
    )
    tf = inspect(DISC / "electra_model.ckpt")
    assert tf.family == "electra" and tf.num_parameters == summary.num_parameters
    assert "family:     electra" in tf.to_text()
    joint = inspect(JOINT_CKPT)
    assert joint.family == "electra"
    # HF has no place for the generator's body: inspect counts it with the "other" variables.
    assert "global_step" in joint.other_variables
    assert any(n.startswith("generator/encoder/") for n in joint.other_variables)
    assert "an ELECTRA pre-training checkpoint's generator/" in joint.to_text()


def test_cli_inspect(capsys):
    from kerasbert.cli import main

    assert main(["inspect", str(GEN / "model.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "family:     electra" in out and "generator_predictions/output_bias" in out


# -- conversion -----------------------------------------------------------------------------------
def _tensor_hashes(path):
    return {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
            for k, v in load_file(path).items()}  # fmt: skip


def test_converted_safetensors_are_those_transformers_loaded(tmp_path):
    """tools/verify_hf_loads_converted.py loaded kerasbert's output of the TF fixtures in
    ElectraForPreTraining / ElectraForMaskedLM / ElectraModel (converted/hf_loads.json)."""
    record = json.loads((FIXTURES / "converted" / "hf_loads.json").read_text())["models"]
    for name, source, options in (
        ("electra", DISC / "electra_model.ckpt", {}),
        ("electra_generator", JOINT_CKPT, {"config": JOINT / "generator.json",
                                           "body": "generator"}),
    ):  # fmt: skip
        result = record[name]
        assert result["hidden_act"] == "gelu"  # erf, as Google's ELECTRA
        for load in result["loads"].values():
            assert load["missing_keys"] == [] and load["mismatched_keys"] == []
            assert load["error_msgs"] == [] and load["params_equal_reference"] is True
            assert max(load["max_diff"].values()) < ATOL
        out = Path(convert(source, tmp_path / name, to="safetensors", **options))
        written = (out / "model.safetensors").read_bytes()
        assert hashlib.sha256(written).hexdigest() == result["sha256"], name
        config = json.loads((out / "config.json").read_text())
        assert config["model_type"] == "electra" and config["hidden_act"] == "gelu"
    # The generator kerasbert reads out of the joint checkpoint is HF's own file, tensor for
    # tensor (HF's save_pretrained of the same model, without the tied output weight).
    generator = _tensor_hashes(tmp_path / "electra_generator" / "model.safetensors")
    assert generator == _tensor_hashes(GEN / "model.safetensors")
    architectures = json.loads((tmp_path / "electra_generator" / "config.json").read_text())
    assert architectures["architectures"] == ["ElectraForMaskedLM"]
    assert json.loads((tmp_path / "electra" / "config.json").read_text())["architectures"] == [
        "ElectraForPreTraining"
    ]


def _arrays(checkpoint):
    opened = open_checkpoint(checkpoint)
    return {name: opened.read(name) for name in opened.names()}


def test_round_trips_tf_safetensors_keras(tmp_path):
    original = _arrays(DISC / "electra_model.ckpt")
    hf = convert(DISC / "electra_model.ckpt", tmp_path / "hf", to="safetensors")
    keras_dir = convert(hf, tmp_path / "keras", to="keras")
    tf_dir = Path(convert(keras_dir, tmp_path / "tf", to="tf"))
    assert sorted(p.name for p in tf_dir.iterdir()) == [
        "bert_config.json", "checkpoint", "electra_model.ckpt.data-00000-of-00001",
        "electra_model.ckpt.index",
    ]  # fmt: skip
    again = _arrays(tf_dir / "electra_model.ckpt")
    assert sorted(again) == sorted(original)
    for name, value in original.items():
        assert again[name].tobytes() == value.tobytes(), name
    written = json.loads((tf_dir / "bert_config.json").read_text())
    assert "model_type" not in written and written["hidden_act"] == "gelu"  # erf, read back so
    record = json.loads((Path(keras_dir) / "kerasbert.json").read_text())
    assert record["model"] == "electra" and record["build_kwargs"]["with_discriminator"] is True
    for folder in (hf, keras_dir, tf_dir):
        _check(load_model(folder), DISC)


def test_joint_generator_converts_to_every_format(tmp_path):
    tf_dir = Path(convert(JOINT_CKPT, tmp_path / "tf", to="tf", config=JOINT / "generator.json",
                          body="generator"))  # fmt: skip
    names = set(open_checkpoint(tf_dir).names())
    assert "electra/embeddings_project/kernel" in names and "global_step" not in names
    assert not any(n.startswith(("generator/", "discriminator")) for n in names)
    keras_dir = Path(convert(tf_dir, tmp_path / "keras", to="keras"))
    record = json.loads((keras_dir / "kerasbert.json").read_text())
    assert "body" not in record["build_kwargs"]  # the converted file holds the generator only
    back = Path(convert(keras_dir, tmp_path / "hf", to="safetensors"))
    assert _tensor_hashes(back / "model.safetensors") == _tensor_hashes(GEN / "model.safetensors")
    for folder in (tf_dir, keras_dir, back):
        _check(load_model(folder, with_mlm="linear"), GEN)
    # The discriminator of the same file, by default, with its own head only.
    disc = Path(convert(JOINT_CKPT, tmp_path / "disc", to="safetensors",
                        config=JOINT / "discriminator.json"))  # fmt: skip
    assert _tensor_hashes(disc / "model.safetensors") == _tensor_hashes(
        MAPPED / "model.safetensors"
    )


def test_cli_convert_reads_either_model_of_a_joint_checkpoint(tmp_path, capsys):
    from kerasbert.cli import main

    config = str(JOINT / "generator.json")
    out = tmp_path / "generator"
    args = ["convert", str(JOINT_CKPT), str(out), "--to", "safetensors", "--config", config]
    assert main(args + ["--model", "electra", "--body", "generator"]) == 0
    assert "wrote safetensors" in capsys.readouterr().out
    assert _tensor_hashes(out / "model.safetensors") == _tensor_hashes(GEN / "model.safetensors")
    assert main(["convert", str(JOINT_CKPT), str(tmp_path / "disc"), "--to", "safetensors",
                 "--config", str(JOINT / "discriminator.json")]) == 0  # fmt: skip
    assert _tensor_hashes(tmp_path / "disc" / "model.safetensors") == _tensor_hashes(
        MAPPED / "model.safetensors"
    )


def test_save_safetensors_of_a_built_model(tmp_path):
    model = kerasbert.build_transformer_model(GEN, GEN, with_mlm=True)
    path = kerasbert.models.save_safetensors(model, tmp_path)
    assert _tensor_hashes(path) == _tensor_hashes(GEN / "model.safetensors")


# -- loading errors (those of the BERT loader) ----------------------------------------------------
def test_missing_misshaped_and_misfit_variables_are_named(tmp_path):
    config = DISC / "config.json"
    source = DISC / "model.safetensors"
    key = "electra.encoder.layer.1.attention.self.key.weight"
    missing = rewritten_safetensors(source, tmp_path / "a", drop=[key])
    with pytest.raises(WeightLoadingError) as info:
        kerasbert.build_transformer_model(config, missing)
    assert "electra/encoder/layer_1/attention/self/key/kernel" in str(info.value)
    assert "nearest names" in str(info.value)
    bias = {"discriminator_predictions.dense_prediction.bias": np.zeros(5, "float32")}
    misshaped = rewritten_safetensors(source, tmp_path / "b", change=bias)
    with pytest.raises(WeightLoadingError, match=r"dense_1/bias.*\(5,\).*\(1,\)"):
        kerasbert.build_transformer_model(config, misshaped, with_discriminator=True)
    with pytest.raises(WeightLoadingError, match="shape mismatch"):
        kerasbert.build_transformer_model(config, DISC, intermediate_size=20)
    with pytest.raises(WeightLoadingError, match="generator_predictions/output_bias"):
        kerasbert.build_transformer_model(config, DISC, with_mlm=True)  # a discriminator's file
    # The mapped model's projection is required.
    projection = ["electra.embeddings_project.weight"]
    cut = rewritten_safetensors(MAPPED / "model.safetensors", tmp_path / "c", drop=projection)
    with pytest.raises(WeightLoadingError, match="electra/embeddings_project/kernel"):
        kerasbert.build_transformer_model(MAPPED / "config.json", cut)
    # A config with more layers than the checkpoint, and one with fewer.
    with pytest.raises(WeightLoadingError, match="layer_2"):
        kerasbert.build_transformer_model(config, DISC, num_hidden_layers=3)
    deeper = json.loads(config.read_text()) | {"num_hidden_layers": 1}
    with pytest.raises(WeightLoadingError, match="blocks the model lacks"):
        kerasbert.build_transformer_model(deeper, DISC / "electra_model.ckpt")


# -- training options -----------------------------------------------------------------------------
def test_mixed_precision_and_gradient_checkpointing():

    g = goldens(MAPPED)
    inputs = [g["token_ids"], g["segment_ids"]]
    mask = g["attention_mask"].astype(bool)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = kerasbert.build_transformer_model(MAPPED, MAPPED, with_discriminator="linear")
        logits = model.predict(inputs, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert logits.dtype == "float32" and {v.dtype for v in model.weights} == {"float32"}
    assert model.get_layer("Transformer-0-FeedForward").compute_dtype == "bfloat16"
    assert _max_diff(logits[..., 0], g["discriminator_logits"], mask) < 0.15

    plain = kerasbert.build_transformer_model(MAPPED, MAPPED, with_discriminator="linear")
    remat = kerasbert.build_transformer_model(MAPPED, MAPPED, with_discriminator="linear",
                                              gradient_checkpointing=True)  # fmt: skip
    assert len(remat.remat_blocks()) == 2
    np.testing.assert_array_equal(
        plain.predict(inputs, verbose=0), remat.predict(inputs, verbose=0)
    )

    assert_same_loss_and_gradients(plain, remat, inputs, mask[..., None])


def test_layout_map_covers_every_weight():
    import re

    from kerasbert.distribution import check_layout_map, get_layout_map

    mesh = keras.distribution.DeviceMesh((1, 4), ("batch", "model"),
                                         [f"cpu:{i}" for i in range(4)])  # fmt: skip
    layout_map = get_layout_map(mesh)
    model = kerasbert.build_transformer_model(MAPPED, with_discriminator=True, with_mlm=True)
    kernels = [v.path for v in model.variables if len(v.shape) >= 2]
    assert any(p.startswith("Discriminator-Prediction/") for p in kernels)
    matches = {p: [k for k in layout_map if re.fullmatch(k, p)] for p in kernels}
    assert all(len(keys) == 1 for keys in matches.values()), matches
    check_layout_map(layout_map, model)
    sharded = {
        p
        for p in (v.path for v in model.variables)
        if any(re.fullmatch(k, p) and layout_map[k].axes != (None, None) for k in layout_map)
    }
    assert "Transformer-0-MultiHeadSelfAttention/query/kernel" in sharded
