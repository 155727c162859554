"""kerasbert.convert and the HF safetensors writer: lossless conversion between formats."""

import hashlib
import json
import os
import pathlib
import shutil

import numpy as np
import pytest
from conftest import FIXTURES, goldens

import kerasbert
from kerasbert.checkpoints import TFCheckpoint, open_checkpoint
from kerasbert.checkpoints.hf_writer import hf_state_dict, write_safetensors
from kerasbert.checkpoints.safetensors_reader import SafetensorsCheckpoint
from kerasbert.config import load_config
from kerasbert.convert import ConversionError, load_model
from kerasbert.convert import convert as _convert
from kerasbert.errors import CheckpointError, KerasBertError, WeightLoadingError

TF_BERT = FIXTURES / "tf_bert_tiny"
ALBERT_TF = FIXTURES / "albert_groups" / "albert_model.ckpt"
NEZHA_TF = FIXTURES / "nezha_tiny" / "model.ckpt"
HEADS = {"with_pool": True, "with_nsp": "linear", "with_mlm": "linear"}


def convert(*args, **kwargs):
    out = _convert(*args, **kwargs)
    assert isinstance(out, str) and os.path.isabs(out)
    return pathlib.Path(out)


def _model_weights(checkpoint):
    """Canonical name -> array of a checkpoint, without optimizer slots and step counters."""
    ckpt = open_checkpoint(checkpoint)
    return {n: ckpt.read(n) for n in ckpt.names() if n != "global_step" and "/adam_" not in n}


def _assert_bit_identical(expected, checkpoint):
    ckpt = open_checkpoint(checkpoint)
    assert ckpt.names() == sorted(expected)
    for name, value in expected.items():
        got = ckpt.read(name)
        assert got.dtype == value.dtype and got.shape == value.shape, name
        assert got.tobytes() == value.tobytes(), name


def _safetensors_parts(data, checksums=True):
    """``(header without kerasbert's checksums, tensor bytes)`` of a safetensors file; the
    checksums (there or not, as ``checksums`` says) must match the tensors."""
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    metadata = header.get("__metadata__", {})
    stored = metadata.pop("kerasbert.crc32c", None)
    assert (stored is not None) == checksums
    body = data[8 + length :]
    if stored is not None:
        from kerasbert.checkpoints.crc32c import crc32c

        crcs = {name: crc32c(body[slice(*header[name]["data_offsets"])])
                for name in header if name != "__metadata__"}  # fmt: skip
        assert json.loads(stored) == crcs
    return header, body


def _predict(model, g):
    return model.predict([g["token_ids"], g["segment_ids"]], verbose=0)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """tf_bert_tiny -> keras -> safetensors -> tf, each step from the previous folder."""
    root = tmp_path_factory.mktemp("chain")
    keras_dir = convert(TF_BERT, root / "keras", to="keras")
    st_dir = convert(keras_dir, root / "safetensors", to="safetensors")
    tf_dir = convert(st_dir, root / "tf", to="tf")
    return {"keras": keras_dir, "safetensors": st_dir, "tf": tf_dir}


def test_tf_keras_safetensors_tf_is_bit_identical(chain):
    assert sorted(os.listdir(chain["keras"])) == [
        "config.json", "kerasbert.json", "model.weights.h5"
    ]  # fmt: skip
    assert sorted(os.listdir(chain["tf"])) == [
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index",
        "checkpoint",
    ]  # fmt: skip
    original = _model_weights(TF_BERT)
    assert len(original) == 46  # embeddings, 2 layers, pooler, NSP and MLM heads
    _assert_bit_identical(original, chain["safetensors"])
    _assert_bit_identical(original, chain["tf"])
    assert isinstance(open_checkpoint(chain["tf"]), TFCheckpoint)
    record = json.loads((chain["keras"] / "kerasbert.json").read_text())
    assert record["model"] == "bert"
    assert record["build_kwargs"] == {"with_pool": True, "with_nsp": True, "with_mlm": True}
    acts = [json.loads((chain[k] / name).read_text())["hidden_act"]
            for k, name in [("keras", "config.json"), ("safetensors", "config.json"),
                            ("tf", "bert_config.json")]]  # fmt: skip
    assert acts == ["gelu_new", "gelu_new", "gelu"]  # tanh throughout


def test_converted_models_give_identical_outputs(chain):
    g = goldens(FIXTURES / "bert_tiny_gelu_new")  # tf_bert_tiny's Google "gelu" is tanh
    mask = g["attention_mask"].astype(bool)
    original = kerasbert.build_transformer_model(TF_BERT / "bert_config.json", TF_BERT, **HEADS)
    expected = _predict(original, g)
    assert np.abs(expected[1][mask] - g["mlm_logits"][mask]).max() < 1e-5
    for folder in chain.values():
        outputs = _predict(load_model(folder, with_nsp="linear", with_mlm="linear"), g)
        assert len(outputs) == 2
        for got, want in zip(outputs, expected):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "source, reference",
    [
        (TF_BERT, FIXTURES / "bert_tiny_gelu"),
        (ALBERT_TF, FIXTURES / "albert_groups"),
        (NEZHA_TF, FIXTURES / "nezha_tiny"),
    ],
    ids=["bert", "albert", "nezha"],
)
def test_safetensors_round_trip_and_equal_hf_save_pretrained(tmp_path, source, reference):
    folder = convert(source, tmp_path / "out", to="safetensors")
    ckpt = SafetensorsCheckpoint(str(folder / "model.safetensors"))
    _assert_bit_identical(_model_weights(source), ckpt)
    assert ckpt.ignored_names == []
    # HF's own save_pretrained of the same weights wrote these very bytes, but for
    # kerasbert's checksums in the header's metadata; without them, the very same file.
    written, hf = (folder / "model.safetensors").read_bytes(), (reference / "model.safetensors")
    assert _safetensors_parts(written) == _safetensors_parts(hf.read_bytes(), checksums=False)
    arrays = {name: ckpt.read(name) for name in ckpt.names()}
    family = json.loads((reference / "config.json").read_text())["model_type"]
    plain = write_safetensors(arrays, tmp_path / "plain", family, checksums=False)
    assert pathlib.Path(plain).read_bytes() == hf.read_bytes()
    config = json.loads((folder / "config.json").read_text())
    hf_config = json.loads((reference / "config.json").read_text())
    assert config["model_type"] == hf_config["model_type"]
    assert config["architectures"] == hf_config["architectures"]
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size",
                "type_vocab_size", "embedding_size", "num_hidden_groups", "inner_group_num",
                "max_relative_position", "layer_norm_eps"):  # fmt: skip
        assert config.get(key) == hf_config.get(key), key


def test_converted_albert_and_nezha_match_goldens(tmp_path):
    for source, folder, suffix in [
        (ALBERT_TF, FIXTURES / "albert_groups", ""),
        (NEZHA_TF, FIXTURES / "nezha_tiny", "_tanh"),  # Huawei's Google config: tanh gelu
    ]:
        out = convert(source, tmp_path / folder.name, to="keras")
        g = goldens(folder)
        mask = g["attention_mask"].astype(bool)
        nsp, mlm = _predict(load_model(out, with_nsp="linear", with_mlm="linear"), g)
        assert np.abs(mlm[mask] - g["mlm_logits" + suffix][mask]).max() < 1e-5
        assert np.abs(nsp - g["nsp_logits" + suffix]).max() < 1e-5


def test_writer_is_the_readers_inverse_for_every_family(tmp_path):
    rng = np.random.default_rng(0)
    for family, source in [("bert", TF_BERT), ("albert", ALBERT_TF), ("nezha", NEZHA_TF)]:
        arrays = {
            name: rng.standard_normal(value.shape).astype(value.dtype)
            for name, value in _model_weights(source).items()
        }
        path = write_safetensors(arrays, tmp_path / family, family)
        _assert_bit_identical(arrays, path)
        state = hf_state_dict(arrays, family)
        assert all("/" not in name for name in state)
        assert all(name.startswith((family, "cls", "predictions", "sop")) for name in state)
    kernel = np.arange(6, dtype="float32").reshape(2, 3)
    state = hf_state_dict({"bert/encoder/layer_0/attention/self/query/kernel": kernel})
    np.testing.assert_array_equal(state["bert.encoder.layer.0.attention.self.query.weight"],
                                  kernel.T)  # fmt: skip
    nsp = hf_state_dict({"cls/seq_relationship/output_weights": kernel}, "albert")
    np.testing.assert_array_equal(nsp["sop_classifier.classifier.weight"], kernel)


def test_writer_refuses_names_hf_has_no_place_for():
    arrays = {"global_step": np.array(3), "bert/pooler/dense/bias": np.zeros(2, "float32")}
    with pytest.raises(CheckpointError, match="global_step"):
        hf_state_dict(arrays)
    with pytest.raises(CheckpointError, match="family 'gpt-17'"):
        hf_state_dict(arrays, "gpt-17")


@pytest.mark.parametrize(
    "source, config_name, expected",
    [
        (TF_BERT, "bert_config.json", "gelu_new"),  # Google "gelu" = tanh
        (FIXTURES / "bert_tiny_gelu", "config.json", "gelu"),  # HF "gelu" = erf
        (FIXTURES / "bert_tiny_gelu_new", "config.json", "gelu_new"),
    ],
)
def test_written_config_maps_hidden_act(tmp_path, source, config_name, expected):
    hf = convert(source, tmp_path / "hf", to="safetensors")
    config = json.loads((hf / "config.json").read_text())
    assert config["hidden_act"] == expected
    assert config["model_type"] == "bert"
    canonical = load_config(source / config_name)["hidden_act"]
    assert load_config(hf / "config.json")["hidden_act"] == canonical
    google = convert(source, tmp_path / "tf", to="tf")
    google_config = json.loads((google / "bert_config.json").read_text())
    assert "model_type" not in google_config
    assert google_config["hidden_act"] == {"gelu_tanh": "gelu", "gelu_erf": "gelu_erf"}[canonical]
    assert load_config(google / "bert_config.json")["hidden_act"] == canonical


def test_config_override_lands_in_written_config(tmp_path):
    out = convert(TF_BERT, tmp_path / "erf", to="safetensors", hidden_act="gelu_erf")
    assert json.loads((out / "config.json").read_text())["hidden_act"] == "gelu"
    albert = convert(ALBERT_TF, tmp_path / "albert", to="tf")
    config = json.loads((albert / "albert_config.json").read_text())
    assert (config["num_hidden_groups"], config["inner_group_num"], config["hidden_act"]) == (
        2, 2, "gelu"
    )  # fmt: skip
    assert open_checkpoint(albert).path.endswith("albert_model.ckpt")


def _snapshot(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_refuses_to_overwrite_its_input(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(TF_BERT, source)
    (source / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    before = _snapshot(source)
    for overwrite in (False, True):
        for dest in (source, source / ".", tmp_path / "link"):
            if dest.name == "link" and not dest.exists():
                dest.symlink_to(source)
            with pytest.raises(ConversionError, match="source folder"):
                convert(source, dest, to="tf", overwrite=overwrite)
            with pytest.raises(ConversionError, match="source folder"):
                convert(source / "bert_model.ckpt.index", dest, to="keras", overwrite=overwrite)
    with pytest.raises(ConversionError, match="source folder or checkpoint"):
        convert(source / "bert_model.ckpt", source / "bert_model.ckpt", to="keras")
    with pytest.raises(ConversionError, match="is a file"):
        convert(source, source / "bert_config.json", to="keras")
    # A config or vocab taken from the destination is an input too.
    dest = tmp_path / "dest"
    dest.mkdir()
    shutil.copy(TF_BERT / "bert_config.json", dest / "bert_config.json")
    with pytest.raises(ConversionError, match="overwrite an input"):
        convert(source, dest, to="tf", config=dest / "bert_config.json", overwrite=True)
    assert _snapshot(source) == before
    assert sorted(os.listdir(dest)) == ["bert_config.json"]


def test_refuses_a_destination_holding_a_checkpoint(tmp_path):
    out = convert(TF_BERT, tmp_path / "out", to="tf")
    assert (out / "vocab.txt").exists() is False
    first = _snapshot(out)
    with pytest.raises(ConversionError, match="already holds.*overwrite=True"):
        convert(TF_BERT, out, to="tf")
    with pytest.raises(ConversionError, match="already holds"):
        convert(TF_BERT, out, to="safetensors")  # other files, but a checkpoint is there
    assert _snapshot(out) == first
    assert convert(TF_BERT, out, to="tf", overwrite=True) == out
    assert _snapshot(out) == first  # deterministic output


def test_bad_target_and_options(tmp_path):
    with pytest.raises(ConversionError, match=r"to='onnx'.*\['keras', 'safetensors', 'tf'\]"):
        convert(TF_BERT, tmp_path / "x", to="onnx")
    with pytest.raises(ConversionError, match="keep_tokens"):
        convert(TF_BERT, tmp_path / "x", to="tf", keep_tokens=[0, 1, 2])
    with pytest.raises(ConversionError, match="does not exist"):
        convert(TF_BERT, tmp_path / "x", to="tf", vocab=tmp_path / "missing.txt")
    with pytest.raises(KerasBertError, match="does not exist"):
        convert(tmp_path / "nothing", tmp_path / "x", to="tf")
    assert not (tmp_path / "x").exists()
    assert issubclass(ConversionError, KerasBertError)


def test_vocab_is_copied(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(TF_BERT, source)
    (source / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n")
    out = convert(source / "bert_model.ckpt", tmp_path / "a", to="safetensors")
    assert (out / "vocab.txt").read_text() == "[PAD]\n[UNK]\n[CLS]\n"
    config = json.loads((TF_BERT / "bert_config.json").read_text())
    out = convert(source, tmp_path / "dict", to="tf", config=config, vocab=None)
    assert json.loads((out / "bert_config.json").read_text()) == config  # Google in, Google out
    other = tmp_path / "other.txt"
    other.write_text("x\n")
    out = convert(source, tmp_path / "b", to="keras", vocab=other)
    assert (out / "vocab.txt").read_text() == "x\n"


def test_keras_source_needs_its_record(tmp_path, chain):
    copy = tmp_path / "copy"
    shutil.copytree(chain["keras"], copy)
    (copy / "kerasbert.json").unlink()
    with pytest.raises(WeightLoadingError, match="kerasbert.json"):
        convert(copy, tmp_path / "out", to="tf")
    out = convert(copy, tmp_path / "out", to="tf", with_nsp=True, with_mlm=True)
    _assert_bit_identical(_model_weights(TF_BERT), out)


def test_checkpoint_without_heads_converts_without_heads(tmp_path):
    encoder = {
        n: v for n, v in _model_weights(TF_BERT).items() if n.startswith("bert/encoder/")
        or n.startswith("bert/embeddings/")
    }  # fmt: skip
    write_safetensors(encoder, tmp_path / "src", "bert")
    shutil.copy(TF_BERT / "bert_config.json", tmp_path / "src")
    out = convert(tmp_path / "src", tmp_path / "keras", to="keras")
    record = json.loads((out / "kerasbert.json").read_text())
    assert record["build_kwargs"] == {"with_pool": False, "with_nsp": False, "with_mlm": False}
    assert json.loads((out / "config.json").read_text())["architectures"] == ["BertModel"]
    assert load_model(out).output.shape == (None, None, 32)
    _assert_bit_identical(encoder, convert(out, tmp_path / "tf", to="tf"))


def test_written_safetensors_were_loaded_by_transformers(tmp_path):
    """tools/verify_hf_loads_converted.py converts the TF fixtures with kerasbert and loads the
    results with transformers' from_pretrained (output_loading_info=True); the outcome is
    recorded in the fixture. The written files must still be the ones verified."""
    record = json.loads((FIXTURES / "converted" / "hf_loads.json").read_text())
    assert record["transformers"] == "4.57.6"
    # ELECTRA's entries (discriminator and joint-checkpoint generator): tests/test_electra.py
    assert set(record["models"]) == {"bert", "albert", "nezha", "electra", "electra_generator"}
    for family in ("bert", "albert", "nezha"):
        result = record["models"][family]
        # transformers read the file with kerasbert's checksums in its metadata
        assert set(result["metadata"]) == {"format", "kerasbert.crc32c"}
        assert result["metadata"]["format"] == "pt"
        assert result["hidden_act"] == "gelu_new"
        for class_name, load in result["loads"].items():
            assert load["missing_keys"] == [] and load["mismatched_keys"] == []
            assert load["error_msgs"] == [] and load["params_equal_reference"] is True
            assert max(load["max_diff"].values()) < 1e-5
            if class_name.endswith("ForPreTraining"):
                assert load["unexpected_keys"] == []
            else:  # the bare model leaves only the heads unused
                heads = ("cls.", "predictions.", "sop_classifier.")
                assert load["unexpected_keys"] and all(
                    k.startswith(heads) for k in load["unexpected_keys"]
                )
        assert set(result["loads"]) == {
            f"{family.capitalize()}ForPreTraining",
            f"{family.capitalize()}Model",
        }
    sources = {"bert": TF_BERT, "albert": ALBERT_TF, "nezha": NEZHA_TF}
    for family, source in sources.items():
        written = write_safetensors(_model_weights(source), tmp_path / family, family)
        with open(written, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == record["models"][family]["sha256"]
        assert SafetensorsCheckpoint(written).names() == sorted(_model_weights(source))
        assert record["models"][family]["source"] == str(source.relative_to(FIXTURES.parent.parent))
