"""Integrity beyond the formats: kerasbert's per-tensor checksums in the safetensors and
.weights.h5 files it writes, checked on loading; ``kerasbert verify``; the fetch record of
the model cache."""

import json
import os
import pathlib
import shutil
import zipfile

import h5py
import numpy as np
import pytest
import yaml
from conftest import FIXTURES
from safetensors import safe_open
from safetensors.numpy import save_file

from kerasbert import cli
from kerasbert.checkpoints import integrity, open_checkpoint, verify
from kerasbert.checkpoints.crc32c import crc32c
from kerasbert.checkpoints.hf_writer import write_safetensors
from kerasbert.checkpoints.safetensors_reader import SafetensorsCheckpoint
from kerasbert.checkpoints.tf_bundle import write_tf_checkpoint
from kerasbert.convert import convert, load_model
from kerasbert.errors import CheckpointError, KerasBertError
from kerasbert.folders import FETCH_RECORD, read_fetch_record
from kerasbert.pretrained import cached_state, get_pretrained, open_model

TF_BERT = FIXTURES / "tf_bert_tiny"
IDS = np.array([[2, 5, 6, 7, 3, 0]], "int32")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """tf_bert_tiny converted once to safetensors and to keras (both read-only here)."""
    root = tmp_path_factory.mktemp("written")
    return {
        "safetensors": pathlib.Path(convert(TF_BERT, root / "st", to="safetensors")),
        "keras": pathlib.Path(convert(TF_BERT, root / "keras", to="keras")),
        "reference": load_model(TF_BERT).predict([IDS, 0 * IDS], verbose=0),
    }


def _copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / os.path.basename(folder))


def _safetensors_layout(path):
    """``(data start, {name: (begin, end)})`` of a safetensors file."""
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
    offsets = {n: tuple(v["data_offsets"]) for n, v in header.items() if n != "__metadata__"}
    return 8 + length, offsets


def _flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x10]))


def _flip_safetensors(path, name):
    start, offsets = _safetensors_layout(path)
    _flip(path, start + offsets[name][0] + 1)


def _flip_h5(path, name):
    with h5py.File(path, "r") as f:
        offset = f[name].id.get_offset()
    _flip(path, offset + 1)


def _verify_cli(path, capsys):
    code = cli.main(["verify", "--quiet", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


# -- what the writers store ------------------------------------------------------------------


def test_safetensors_metadata_holds_every_tensors_crc(written):
    path = written["safetensors"] / "model.safetensors"
    metadata = safe_open(path, "numpy").metadata()
    assert set(metadata) == {"format", "kerasbert.crc32c"} and metadata["format"] == "pt"
    stored = json.loads(metadata["kerasbert.crc32c"])
    start, offsets = _safetensors_layout(path)
    data = path.read_bytes()
    assert set(stored) == set(offsets) and len(stored) == 46
    for name, (begin, end) in offsets.items():
        assert type(stored[name]) is int
        assert stored[name] == crc32c(data[start + begin : start + end]), name
    assert SafetensorsCheckpoint(path).kerasbert_checksums == stored


def test_keras_weights_have_a_crc_attribute_on_every_dataset(written):
    path = written["keras"] / "model.weights.h5"
    found = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in found:
            value = f[name].attrs[integrity.H5_ATTRIBUTE]
            assert int(value) == integrity.dataset_crc(name, f[name][()]), name
    assert len(found) == 46


def test_untouched_outputs_load_identically(written):
    for kind in ("safetensors", "keras"):
        got = load_model(written[kind]).predict([IDS, 0 * IDS], verbose=0)
        for a, b in zip(got, written["reference"]):
            np.testing.assert_array_equal(a, b)


# -- readers verify --------------------------------------------------------------------------


def test_a_flipped_byte_in_safetensors_fails_loading_naming_the_tensor(written, tmp_path):
    folder = _copy(written["safetensors"], tmp_path)
    name = "bert.encoder.layer.1.attention.self.query.weight"
    _flip_safetensors(folder / "model.safetensors", name)
    with pytest.raises(CheckpointError, match=rf"Checksum mismatch for tensor '{name}' in "
                       r"'.*model.safetensors'.*changed or damaged after kerasbert wrote it"):
        load_model(folder)


def test_a_flipped_byte_in_keras_weights_fails_loading_naming_the_dataset(written, tmp_path):
    folder = _copy(written["keras"], tmp_path)
    name = "layers/multi_head_attention_1/query_dense/vars/0"
    _flip_h5(folder / "model.weights.h5", name)
    with pytest.raises(CheckpointError, match=rf"Checksum mismatch for tensor '{name}' in "
                       r"'.*model.weights.h5'.*convert or download it again"):
        load_model(folder)


def test_written_safetensors_bytes_do_not_depend_on_the_process(tmp_path):
    """The safetensors library writes metadata keys in a per-map random order; kerasbert
    sorts them, so the same weights always give the same file."""
    arrays = {"bert/pooler/dense/bias": np.arange(4, dtype="float32")}
    files = [
        pathlib.Path(write_safetensors(arrays, tmp_path / f"m{i}.safetensors")).read_bytes()
        for i in range(8)
    ]
    assert all(data == files[0] for data in files)
    length = int.from_bytes(files[0][:8], "little")
    metadata = json.loads(files[0][8 : 8 + length])["__metadata__"]
    assert list(metadata) == sorted(metadata) == ["format", "kerasbert.crc32c"]


@pytest.mark.parametrize(
    "value, why",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a JSON list"),
        ('{"a": "12"}', "not an int"),
        ('{"a": true}', "not an int"),
        ('{"a": 1.5}', "not an int"),
        ('{"a": -1}', "not an int"),
        ('{"a": 4294967296}', "not an int"),
        ('{"a": 1, "b": 2}', r"names tensor\(s\) the file does not hold: \['b'\]"),
    ],
)
def test_malformed_safetensors_checksums_are_errors(tmp_path, value, why):
    path = tmp_path / "model.safetensors"
    save_file({"a": np.zeros(2, "float32")}, path, metadata={"kerasbert.crc32c": value})
    with pytest.raises(CheckpointError, match=f"malformed kerasbert checksums.*{why}"):
        SafetensorsCheckpoint(path)


@pytest.mark.parametrize("value", ["123", 1.5, np.array([1, 2]), -3])
def test_malformed_h5_checksums_are_errors(written, tmp_path, value):
    folder = _copy(written["keras"], tmp_path)
    path = folder / "model.weights.h5"
    with h5py.File(path, "r+") as f:
        f["layers/dense/vars/1"].attrs[integrity.H5_ATTRIBUTE] = value
    with pytest.raises(CheckpointError, match="'layers/dense/vars/1' has a malformed kerasbert"):
        open_checkpoint(path)


def test_swapped_h5_datasets_do_not_match_their_checksums(written, tmp_path):
    """An attribute moves with its dataset; the checksum binds the name, so two datasets of
    one shape swapped (a well-formed file of another model) are refused."""
    folder = _copy(written["keras"], tmp_path)
    path = folder / "model.weights.h5"
    with h5py.File(path, "r+") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        shapes = [f[n].shape for n in names]
        shape = next(s for s in shapes if shapes.count(s) > 1)
        first, second = [n for n in names if f[n].shape == shape][:2]
        f.move(first, "swap")
        f.move(second, first)
        f.move("swap", second)
    with pytest.raises(CheckpointError, match="Checksum mismatch"):
        load_model(folder)


def test_checksums_on_only_some_h5_datasets_are_refused(written, tmp_path):
    folder = _copy(written["keras"], tmp_path)
    path = folder / "model.weights.h5"
    with h5py.File(path, "r+") as f:
        del f["layers/dense/vars/1"].attrs[integrity.H5_ATTRIBUTE]
    with pytest.raises(CheckpointError, match=r"carry kerasbert checksums but.*vars/1"):
        open_checkpoint(path)


def test_files_without_checksums_load_as_before():
    checkpoint = open_checkpoint(FIXTURES / "bert_tiny_gelu" / "model.safetensors")
    assert checkpoint.kerasbert_checksums is None
    assert checkpoint.read("bert/pooler/dense/bias").shape == (32,)
    assert open_checkpoint(FIXTURES / "hf_tf_bert_tiny").kerasbert_checksums is None


# -- kerasbert verify ------------------------------------------------------------------------


def test_verify_is_clean_on_every_format(written, capsys):
    for path in [TF_BERT, FIXTURES / "bert_tiny_gelu", FIXTURES / "hf_tf_bert_tiny",
                 written["safetensors"], written["keras"]]:  # fmt: skip
        code, out, err = _verify_cli(path, capsys)
        assert code == 0, out + err
        assert out.startswith("OK: ") and out.count("\n") == 1
    report = verify(written["safetensors"])
    assert report.ok and report.tensors == 46 == report.kerasbert_checksums
    assert verify(written["keras"]).kerasbert_checksums == 46
    assert verify(TF_BERT).tf_crcs == 139


def test_verify_reports_flipped_bytes(written, tmp_path, capsys):
    st = _copy(written["safetensors"], tmp_path)
    _flip_safetensors(st / "model.safetensors", "bert.pooler.dense.bias")
    keras = _copy(written["keras"], tmp_path)
    _flip_h5(keras / "model.weights.h5", "layers/dense/vars/1")
    tf = _copy(TF_BERT, tmp_path)
    _flip(tf / "bert_model.ckpt.data-00000-of-00001", 1000)
    for folder, what in [(st, "Checksum mismatch for tensor 'bert.pooler.dense.bias'"),
                         (keras, "Checksum mismatch for tensor 'layers/dense/vars/1'"),
                         (tf, "Checksum mismatch for variable ")]:  # fmt: skip
        code, out, _ = _verify_cli(folder, capsys)
        assert code == 1
        lines = out.splitlines()
        assert len(lines) == 2 and lines[0].startswith("problem: " + what), out
        assert lines[1].startswith("1 problem(s): ")


def test_verify_reports_truncated_and_overlong_shards(tmp_path, capsys):
    tf = _copy(TF_BERT, tmp_path)
    data = tf / "bert_model.ckpt.data-00000-of-00001"
    size = data.stat().st_size
    os.truncate(data, size - 10)
    code, out, _ = _verify_cli(tf, capsys)
    assert code == 1
    assert f"has {size - 10} bytes but the index places tensors up to byte {size}" in out
    assert "the file is truncated" in out and "runs past the end of" in out
    with open(data, "ab") as f:
        f.write(b"\0" * 20)
    code, out, _ = _verify_cli(tf, capsys)
    assert code == 1 and "10 bytes more than the index accounts for" in out


def test_verify_reports_nan_and_integer_weights(tmp_path, capsys):
    prefix = tmp_path / "bert_model.ckpt"
    write_tf_checkpoint(prefix, {
        "bert/embeddings/position_embeddings": np.zeros((4, 3), "float32"),
        "bert/encoder/layer_0/output/dense/bias": np.zeros(3, "float32"),
        "bert/pooler/dense/bias": np.array([0.0, np.nan, np.inf], "float32"),
        "bert/pooler/dense/kernel": np.ones((3, 3), "int32"),
        "global_step": np.array(7, "int64"),  # no model weight: an int is fine
    })  # fmt: skip
    code, out, _ = _verify_cli(prefix, capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == (f"problem: 'bert/pooler/dense/bias' in '{prefix}.data-00000-of-00001' "
                        "holds 2 NaN or infinite values")  # fmt: skip
    assert "'bert/pooler/dense/kernel'" in lines[1] and "stored as int32, not as floats" in lines[1]
    assert lines[2].startswith("2 problem(s): ") and "(tensorflow, bert)" in lines[2]
    assert len(lines) == 3


def test_verify_bad_paths_are_one_line_errors(tmp_path, capsys):
    for path in [tmp_path / "missing", tmp_path]:
        code, out, err = _verify_cli(path, capsys)
        assert code == 2 and out == ""
        assert err.startswith("kerasbert: error: ") and err.count("\n") == 1
        assert str(path) in err
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(b"\x10\0\0\0\0\0\0\0{}")
    code, out, _ = _verify_cli(broken, capsys)
    assert code == 1 and out.startswith("problem: ") and "not a readable safetensors" in out


# -- the fetch record of the model cache -----------------------------------------------------


@pytest.fixture
def cache(local_site, tmp_path, monkeypatch):
    """tf_bert_tiny as a zip on a local server (127.0.0.1), an index, an empty cache."""
    www, url, requests = local_site
    files = ["bert_config.json", "bert_model.ckpt.index", "bert_model.ckpt.data-00000-of-00001"]
    with zipfile.ZipFile(www / "tiny.zip", "w") as archive:
        for name in files:
            archive.write(TF_BERT / name, f"tiny/{name}")
        archive.writestr("tiny/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n")
    entry = {
        "family": "bert", "language": "en", "cased": False, "layers": 2, "hidden": 32,
        "heads": 4, "parameters": 21956, "license": "Apache-2.0", "format": "tensorflow",
        "urls": [f"{url}/tiny.zip"],
        "files": files + ["vocab.txt"], "config": "bert_config.json",
        "checkpoint": "bert_model.ckpt", "vocab": "vocab.txt", "sha256": {},
        "archive_root": "tiny", "do_lower_case": True,
    }  # fmt: skip
    index = tmp_path / "index.yaml"
    index.write_text(yaml.safe_dump({"models": {"tiny": entry}}))
    monkeypatch.setenv("KERASBERT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERASBERT_INDEX", str(index))
    monkeypatch.delenv("KERASBERT_OFFLINE", raising=False)
    return requests


def test_fetch_record_lists_every_file_placed(cache):
    folder = get_pretrained("tiny", progress=False).folder
    record = read_fetch_record(folder)
    assert record["model"] == "tiny"
    assert sorted(record["files"]) == sorted(p.name for p in folder.iterdir()
                                             if p.name != FETCH_RECORD)  # fmt: skip
    data = folder / "bert_model.ckpt.data-00000-of-00001"
    assert record["files"][data.name]["size"] == data.stat().st_size
    assert verify(folder).record_files == 4 and verify(folder).ok


def test_a_truncated_cached_file_is_detected(cache, monkeypatch, capsys):
    folder = get_pretrained("tiny", progress=False).folder
    data = folder / "bert_model.ckpt.data-00000-of-00001"
    size = data.stat().st_size
    os.truncate(data, size - 4)
    index = yaml.safe_load(pathlib.Path(os.environ["KERASBERT_INDEX"]).read_text())
    assert cached_state("tiny", index["models"]["tiny"]) == "damaged"
    with pytest.raises(KerasBertError, match=f"{data.name}.*has {size - 4} bytes but had {size}"):
        open_model(folder)
    monkeypatch.setenv("KERASBERT_OFFLINE", "1")
    with pytest.raises(KerasBertError, match="cached 'tiny' was changed after kerasbert fetched"):
        get_pretrained("tiny")
    code, out, _ = _verify_cli(folder, capsys)
    assert code == 1 and f"has {size - 4} bytes but had {size} when kerasbert fetched" in out
    monkeypatch.delenv("KERASBERT_OFFLINE")
    with pytest.warns(UserWarning, match="fetching it again"):
        again = get_pretrained("tiny", progress=False)
    assert again.source == "download" and len(cache) == 2
    assert data.stat().st_size == size and verify(folder).ok


def test_verify_compares_the_sha256_of_a_fetched_folder(cache, capsys):
    folder = get_pretrained("tiny", progress=False).folder
    vocab = folder / "vocab.txt"
    vocab.write_text(vocab.read_text().replace("[UNK]", "[XYZ]"))  # same size
    assert get_pretrained("tiny").source == "cache"  # sizes only: no cost on every use
    code, out, _ = _verify_cli(folder, capsys)
    assert code == 1
    assert out.startswith(f"problem: '{vocab}' has another SHA-256 than when kerasbert fetched")
