"""RoFormer v1 against HF transformers' RoFormerForMaskedLM (tools/make_roformer_fixtures.py),
from HF safetensors and from bert4keras-named TF checkpoints: rotary positions (on values too
with rotary_value), the embedding mapping, RoFormer-Sim's linear pooler, lengths beyond the
config's positions, detection, conversion, inspection, loading errors, cached decoding."""

import hashlib
import json
import pathlib
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import (
    FIXTURES,
    assert_cached_decoding_equals_full,
    assert_same_loss_and_gradients,
    goldens,
    rewritten_safetensors,
)
from safetensors.numpy import load_file, save_file

import kerasbert
from kerasbert.checkpoints import open_checkpoint
from kerasbert.checkpoints.inspect import inspect
from kerasbert.convert import convert, load_model
from kerasbert.errors import ConfigError, ModelTypeError, WeightLoadingError
from kerasbert.families import checkpoint_candidates, detect_checkpoint
from kerasbert.layers import RotaryMultiHeadAttention, SinusoidalPositionEmbedding
from kerasbert.models import RoFormer, resolve_model

ATOL = 1e-5
ROOT = FIXTURES / "roformer_tiny"
BASE, MAPPED = ROOT / "base", ROOT / "mapped"
LAST_BLOCK = "Transformer-1-FeedForward-Norm"
NO_FAMILY_CONFIG = {"vocab_size": 1, "hidden_size": 1, "num_hidden_layers": 1,
                    "num_attention_heads": 1, "intermediate_size": 1}  # fmt: skip


def _with_sequence(model):
    """The model with the encoder's sequence output before its head outputs."""
    outputs = model.outputs if len(model.outputs) > 1 else [model.output]
    return keras.Model(model.inputs, [model.get_layer(LAST_BLOCK).output] + outputs)


def _max_diff(got, want, mask=None):
    got, want = np.asarray(got), np.asarray(want)
    if mask is not None:
        got, want = got[mask], want[mask]
    return float(np.abs(got - want).max())


def _check(model, g, prefix=""):
    """Sequence output and MLM logits against the goldens (real tokens); the diffs."""
    mask = g[prefix + "attention_mask"].astype(bool)
    inputs = [g[prefix + "token_ids"], g[prefix + "segment_ids"]]
    sequence, mlm = _with_sequence(model).predict(inputs, verbose=0)[:2]
    diffs = {
        "sequence_output": _max_diff(sequence, g[prefix + "sequence_output"], mask),
        "mlm_logits": _max_diff(mlm, g[prefix + "mlm_logits"], mask),
    }
    assert max(diffs.values()) < ATOL, diffs
    return diffs


# -- parity ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hf_builders():
    """Both fixtures from HF safetensors, with the MLM head (logits)."""
    return {
        folder.name: kerasbert.build_transformer_model(
            folder / "config.json", folder / "model.safetensors", with_mlm="linear",
            return_keras_model=False,
        )
        for folder in (BASE, MAPPED)
    }  # fmt: skip


@pytest.mark.parametrize("folder", [BASE, MAPPED], ids=["base", "mapped"])
def test_matches_hf_from_safetensors(hf_builders, folder):
    g = goldens(folder)
    model = hf_builders[folder.name].model
    assert model.name == "roformer"
    _check(model, g)
    # 48 positions where the config says 32: rotary positions are a function, not a table.
    config = json.loads((folder / "config.json").read_text())
    assert g["long_token_ids"].shape[1] > config["max_position_embeddings"]
    _check(model, g, "long_")


@pytest.mark.parametrize("folder", [BASE, MAPPED], ids=["base", "mapped"])
def test_matches_hf_from_bert4keras_tf_checkpoint(folder):
    """Zhuiyi-style bert_config.json ("gelu" = bert4keras's erf GELU), bert4keras names;
    RoFormer-Sim's with_pool="linear" on the TF-only pooler."""
    g = goldens(folder)
    builder = kerasbert.build_transformer_model(
        folder / "bert_config.json", folder / "bert_model.ckpt", model="roformer",
        with_pool="linear", with_mlm="linear", return_keras_model=False,
    )  # fmt: skip
    assert builder.hidden_act == "gelu_erf" and not builder.load_report.unused
    mask = g["attention_mask"].astype(bool)
    inputs = [g["token_ids"], g["segment_ids"]]
    sequence, pooled, mlm = _with_sequence(builder.model).predict(inputs, verbose=0)
    assert _max_diff(pooled, g["pooled_linear"]) < ATOL
    assert _max_diff(sequence, g["sequence_output"], mask) < ATOL
    assert _max_diff(mlm, g["mlm_logits"], mask) < ATOL


@pytest.mark.parametrize("folder", [BASE, MAPPED], ids=["base", "mapped"])
def test_matches_hf_from_tf_model_h5(folder):
    """HF's TFRoFormerForMaskedLM weights (tools/make_roformer_tf_h5.py): "roformer/" names,
    the word embeddings stored twice, the fixed sinusoid table skipped; no model= needed."""
    checkpoint = open_checkpoint(folder / "tf_model.h5")
    assert checkpoint.family_hint == "roformer" and detect_checkpoint(checkpoint) == "roformer"
    assert [n.split("/roformer/")[-1] for n in checkpoint.ignored_names] == [
        "encoder/embed_positions/embeddings:0"
    ]
    model = kerasbert.build_transformer_model(folder / "config.json", folder / "tf_model.h5",
                                              with_mlm="linear")  # fmt: skip
    _check(model, goldens(folder))


def test_roformer_sim_as_its_scripts_build_it():
    """roformer-sim's test scripts: model='roformer', with_pool='linear', application='unilm',
    sentence vectors = outputs[0]. A one-segment text attends both ways, as in the encoder."""
    g = goldens(BASE)
    builder = kerasbert.build_transformer_model(
        BASE / "bert_config.json", BASE / "bert_model.ckpt", model="roformer",
        with_pool="linear", application="unilm", return_keras_model=False,
    )  # fmt: skip
    encoder = keras.Model(builder.model.inputs, builder.model.outputs[0])
    pooled = encoder.predict([g["token_ids"], g["segment_ids"]], verbose=0)
    assert not g["segment_ids"][2].any()  # row 2 has one segment
    assert _max_diff(pooled[2], g["pooled_linear"][2]) < ATOL
    assert _max_diff(pooled[:2], g["pooled_linear"][:2]) > 1e-3  # UniLM masks segment B


def test_rotary_value_and_embedding_mapping_are_what_runs(hf_builders):
    base, mapped = hf_builders["base"], hf_builders["mapped"]
    names = [layer.name for layer in base.model.layers]
    assert "Embedding-Mapping" not in names and "Embedding-Position" not in names
    assert base.rotary_value is False
    assert mapped.rotary_value is True and mapped.embedding_size == 16
    assert mapped.model.get_layer("Embedding-Mapping").kernel.shape == (16, 32)
    attentions = [mapped.model.get_layer(f"Transformer-{i}-MultiHeadSelfAttention")
                  for i in range(2)]  # fmt: skip
    assert all(isinstance(a, RotaryMultiHeadAttention) and a.rotary_value for a in attentions)
    rotary = mapped.model.get_layer("Embedding-Rotary-Position")
    assert rotary.output_dim == 8 and rotary.weights == []
    # The same weights without rotating the values: far from the goldens.
    g = goldens(MAPPED)
    mask = g["attention_mask"].astype(bool)
    encoder = keras.Model(mapped.model.inputs, mapped.model.get_layer(LAST_BLOCK).output)
    try:
        for attention in attentions:
            attention.rotary_value = False
        sequence = encoder([g["token_ids"], g["segment_ids"]])  # eager: sees the change
    finally:
        for attention in attentions:
            attention.rotary_value = True
    assert _max_diff(keras.ops.convert_to_numpy(sequence), g["sequence_output"], mask) > 1e-2


def test_rotary_attention_scores_depend_on_relative_position_only():
    layer = RotaryMultiHeadAttention(heads=1, head_size=4, rotary_value=True)
    assert RotaryMultiHeadAttention.from_config(layer.get_config()).rotary_value is True
    vector = np.random.default_rng(0).normal(size=(1, 1, 1, 4)).astype("float32")
    heads = np.repeat(vector, 9, axis=1)  # one query / key / value at every position
    table = SinusoidalPositionEmbedding(4, merge_mode="zero")(np.zeros((1, 9, 4), "float32"))
    q, k, v, left = layer.position_heads(heads, heads, heads, table)
    assert left is None  # nothing left for the logits: the fused kernel applies
    q, k, v = (keras.ops.convert_to_numpy(t)[0, :, 0] for t in (q, k, v))
    scores = q @ k.T
    for shift in range(-4, 5):
        diagonal = np.diagonal(scores, shift)
        np.testing.assert_allclose(diagonal, diagonal[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(q, v)  # rotary_value: values rotated like the queries
    assert np.abs(q[1:] - heads[0, 1:, 0]).max() > 1e-2
    with pytest.raises(ConfigError, match="key size must be even"):
        RotaryMultiHeadAttention(heads=2, head_size=3)
    with pytest.raises(ConfigError, match="head_size .* must equal key_size"):
        RotaryMultiHeadAttention(heads=2, head_size=4, key_size=6, rotary_value=True)
    with pytest.raises(ConfigError, match="rotary_value must be"):
        RoFormer(vocab_size=9, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=8, rotary_value="yes")  # fmt: skip
    with pytest.raises(ConfigError, match="head size must be even"):
        RoFormer(vocab_size=9, hidden_size=6, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=8).build()  # fmt: skip


# -- detection ------------------------------------------------------------------------------------
def test_detected_from_hf_names_and_from_the_config():
    hf = open_checkpoint(BASE / "model.safetensors")
    assert hf.family_hint == "roformer" and detect_checkpoint(hf) == "roformer"
    assert "bert/embeddings/position_embeddings" not in hf.names()
    assert "roformer.encoder.embed_positions.weight" in hf.ignored_names
    assert resolve_model(None, NO_FAMILY_CONFIG, hf) == "roformer"
    tf = open_checkpoint(BASE / "bert_model.ckpt")
    assert checkpoint_candidates(tf) == ["nezha", "roformer"] and detect_checkpoint(tf) is None
    hf_config = json.loads((BASE / "config.json").read_text())
    assert resolve_model(None, hf_config, tf) == "roformer"  # model_type
    marked = json.loads((MAPPED / "bert_config.json").read_text())
    assert resolve_model(None, marked, tf) == "roformer"  # rotary_value
    # Zhuiyi's config names no family and the TF names are NEZHA's too: never a guess.
    with pytest.raises(ModelTypeError, match="could be nezha or roformer.*model='roformer'"):
        kerasbert.build_transformer_model(BASE / "bert_config.json", BASE / "bert_model.ckpt")
    with pytest.raises(ConfigError, match="nezha model.*looks like roformer"):
        nezha = FIXTURES / "nezha_tiny" / "config.json"
        kerasbert.build_transformer_model(nezha, BASE / "model.safetensors")


@pytest.mark.parametrize(
    "checkpoint,wrong,message",
    [("model.safetensors", "nezha", "looks like roformer"),
     ("model.safetensors", "bert", "looks like roformer"),
     ("bert_model.ckpt", "bert", "looks like nezha or roformer"),
     ("bert_model.ckpt", "albert", "looks like nezha or roformer")],
)  # fmt: skip
def test_a_contradicting_model_names_the_family(checkpoint, wrong, message):
    with pytest.raises(ModelTypeError, match=f"model='{wrong}'.*{message}"):
        kerasbert.build_transformer_model(BASE / "config.json", BASE / checkpoint, model=wrong)


def test_inspect():
    summary = inspect(BASE / "model.safetensors")
    assert summary.family == "roformer" and summary.other_variables == []
    assert summary.num_parameters == sum(
        v.size for k, v in load_file(BASE / "model.safetensors").items() if "embed_pos" not in k
    )
    tf = inspect(BASE / "bert_model.ckpt")
    assert tf.family is None and set(tf.candidates) == {"nezha", "roformer"}  # same names
    assert "nezha or roformer" in tf.to_text() or "roformer or nezha" in tf.to_text()


# -- conversion -----------------------------------------------------------------------------------
def test_converted_safetensors_are_those_transformers_loaded(tmp_path):
    """tools/make_roformer_fixtures.py loaded kerasbert's output in RoFormerForMaskedLM and
    RoFormerModel (hf_loads.json); kerasbert must still write exactly those tensors."""
    record = json.loads((ROOT / "hf_loads.json").read_text())
    assert record["transformers"] == "4.57.6"
    for result in record["models"].values():
        for load in result["loads"].values():
            assert load["mismatched_keys"] == [] and load["error_msgs"] == []
            assert load["params_differing_from_reference"] == []
            assert [k.split("encoder.")[-1] for k in load["missing_keys"]] == [
                "embed_positions.weight"
            ]
            assert max(load["max_diff"].values()) < ATOL
    out = convert(BASE / "bert_model.ckpt", tmp_path / "base", to="safetensors",
                  model="roformer", hidden_act="gelu_erf")  # fmt: skip
    tf_out = convert(MAPPED / "model.safetensors", tmp_path / "mapped_tf", to="tf")
    mapped_out = convert(tf_out, tmp_path / "mapped", to="safetensors")
    out, tf_out, mapped_out = Path(out), Path(tf_out), Path(mapped_out)
    for name, folder in (("base", out), ("mapped", mapped_out)):
        tensors = load_file(folder / "model.safetensors")
        written = {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
                   for k, v in tensors.items()}  # fmt: skip
        assert written == record["models"][name]["tensors"], name
        config = json.loads((folder / "config.json").read_text())
        for key, value in record["models"][name]["config"].items():
            assert config[key] == value, (name, key)
    # The TF checkpoint convert wrote holds the fixture's arrays, its config the family.
    original, again = open_checkpoint(MAPPED / "bert_model.ckpt"), open_checkpoint(tf_out)
    assert set(original.names()) - set(again.names()) == {"bert/pooler/dense/kernel",
                                                          "bert/pooler/dense/bias"}  # fmt: skip
    for name in again.names():
        assert again.read(name).tobytes() == original.read(name).tobytes(), name
    written_config = json.loads((tf_out / "bert_config.json").read_text())
    assert written_config["rotary_value"] is True and "model_type" not in written_config
    g = goldens(MAPPED)
    _check(load_model(tf_out, with_mlm="linear"), g)


def test_convert_keeps_bert4keras_gelu(tmp_path):
    """A Zhuiyi config's "gelu" is bert4keras's erf: HF's config says "gelu" (erf) too, and
    a Google-style config written back says "gelu" again (not the tanh form)."""
    out = pathlib.Path(
        convert(BASE / "bert_model.ckpt", tmp_path / "hf", to="safetensors", model="roformer")
    )
    assert json.loads((out / "config.json").read_text())["hidden_act"] == "gelu"
    back = pathlib.Path(convert(out, tmp_path / "tf", to="tf"))
    written = [p for p in back.iterdir() if p.suffix == ".json" and "config" in p.name]
    assert [json.loads(p.read_text())["hidden_act"] for p in written] == ["gelu"]


# -- loading errors (those of the BERT loader) ----------------------------------------------------
def test_missing_misshaped_and_misfit_variables_are_named(tmp_path):
    config = BASE / "config.json"
    source = BASE / "model.safetensors"
    key = "roformer.encoder.layer.1.attention.self.key.weight"
    missing = rewritten_safetensors(source, tmp_path / "a", drop=[key])
    with pytest.raises(WeightLoadingError) as info:
        kerasbert.build_transformer_model(config, missing)
    assert "bert/encoder/layer_1/attention/self/key/kernel" in str(info.value)
    assert "nearest names" in str(info.value)
    bias = {"cls.predictions.transform.dense.bias": np.zeros(5, "float32")}
    misshaped = rewritten_safetensors(source, tmp_path / "b", change=bias)
    with pytest.raises(WeightLoadingError, match=r"transform/dense/bias.*\(5,\).*\(32,\)"):
        kerasbert.build_transformer_model(config, misshaped, with_mlm=True)
    with pytest.raises(WeightLoadingError, match="shape mismatch"):
        kerasbert.build_transformer_model(config, BASE, intermediate_size=24)
    # A checkpoint with an absolute position table is BERT's, not RoFormer's.
    with pytest.raises(ModelTypeError, match="model='roformer'.*looks like bert"):
        kerasbert.build_transformer_model(config, FIXTURES / "bert_tiny_gelu", model="roformer")
    # The mapped model's projection is required.
    cut = load_file(MAPPED / "model.safetensors")
    del cut["roformer.embeddings_project.weight"]
    save_file(cut, tmp_path / "model.safetensors")
    with pytest.raises(WeightLoadingError, match="embedding_hidden_mapping_in/kernel"):
        kerasbert.build_transformer_model(MAPPED / "config.json", tmp_path / "model.safetensors")


# -- training options -----------------------------------------------------------------------------
def test_mixed_precision_and_gradient_checkpointing_smoke(hf_builders):

    g = goldens(BASE)
    inputs = [g["token_ids"], g["segment_ids"]]
    mask = g["attention_mask"].astype(bool)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = kerasbert.build_transformer_model(BASE, BASE, with_mlm="linear")
        mlm = model.predict(inputs, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mlm.dtype == "float32" and {v.dtype for v in model.weights} == {"float32"}
    assert _max_diff(mlm, g["mlm_logits"], mask) < 0.15  # docs/mixed_precision.md, bfloat16

    plain = hf_builders["base"].model
    remat = kerasbert.build_transformer_model(BASE, BASE, with_mlm="linear",
                                              gradient_checkpointing=True)  # fmt: skip
    assert len(remat.remat_blocks()) == 2

    assert_same_loss_and_gradients(plain, remat, inputs, mask[..., None])


# -- language models and cached decoding ----------------------------------------------------------
@pytest.mark.parametrize("application", ["lm", "unilm"])
def test_cached_decoding_equals_full_recompute(application):
    """Each new token is rotated at its absolute position (past the config's 32 positions)."""
    builder = kerasbert.build_transformer_model(
        MAPPED, MAPPED, application=application, with_mlm="linear", return_keras_model=False
    )
    assert_cached_decoding_equals_full(builder, vocab_size=100, seed=5)


def test_a_roformer_index_entry_builds_without_model(tmp_path, monkeypatch):
    """Zhuiyi's TF names are NEZHA's too; a folder fetched by index name knows its family
    from the entry, so build_pretrained / SentenceEncoder need no model=."""
    import shutil

    from kerasbert import pretrained
    from kerasbert.folders import read_settings
    from kerasbert.index_schema import load_index

    folder = tmp_path / "zhuiyi-roformer-cn-base"
    folder.mkdir()
    for name in ("bert_config.json", "bert_model.ckpt.index"):
        shutil.copy(BASE / name, folder / name)
    shutil.copy(BASE / "bert_model.ckpt.data-00000-of-00001", folder)
    vocab_size = json.loads((BASE / "bert_config.json").read_text())["vocab_size"]
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        + "".join(f"\nw{i}" for i in range(vocab_size - 5))
    )
    entry = load_index()["models"]["zhuiyi-roformer-cn-base"]
    settings = read_settings(folder, entry)
    assert settings.model == "roformer" and settings.source["model"] == "the weights index"
    local = pretrained.LocalModel(
        folder, folder / "bert_config.json", folder / "bert_model.ckpt", folder / "vocab.txt",
        settings, entry,
    )  # fmt: skip
    monkeypatch.setattr(pretrained, "open_model", lambda *a, **k: local)
    with pytest.raises(ModelTypeError, match="roformer"):
        kerasbert.build_transformer_model(local.config, local.checkpoint)
    model, _ = pretrained.build_pretrained("zhuiyi-roformer-cn-base")
    direct = kerasbert.build_transformer_model(local.config, local.checkpoint, model="roformer")
    ids = np.array([[2, 7, 9, 3]], "int32")
    np.testing.assert_array_equal(
        model.predict([ids, 0 * ids], verbose=0), direct.predict([ids, 0 * ids], verbose=0)
    )
