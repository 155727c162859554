"""Crafted and corrupt checkpoints: what reaches outside the file or folder is refused before
anything is read, special files and library errors become CheckpointErrors, and a folder
holding two different models is an error (the readers' hardening of commit b8090f0).

Every case is built in ``tmp_path`` from the committed tiny fixtures; nothing here needs
torch, TensorFlow or transformers. Cases that would block forever on a FIFO if a check were
missing run in a subprocess with a timeout, so a regression fails instead of hanging.
"""

import json
import os
import shutil
import struct
import subprocess
import sys

import h5py
import ml_dtypes
import numpy as np
import pytest
from conftest import FIXTURES
from safetensors.numpy import load_file, save_file

from kerasbert.checkpoints import (
    TFCheckpoint,
    open_checkpoint,
    resolve_checkpoint,
    safetensors_reader,
    torch_reader,
    write_tf_checkpoint,
)
from kerasbert.checkpoints import protobuf as pb
from kerasbert.checkpoints.base import read_shard_index
from kerasbert.checkpoints.crc32c import crc32c, mask
from kerasbert.checkpoints.keras_h5 import KerasWeightsCheckpoint
from kerasbert.checkpoints.sstable import read_table, write_table
from kerasbert.checkpoints.tf_bundle import TF_DTYPES, resolve_prefix
from kerasbert.errors import CheckpointError, KerasBertError, WeightLoadingError
from kerasbert.models import build_transformer_model

HF = FIXTURES / "bert_tiny_gelu"  # model.safetensors (+ pytorch_model.bin) + config.json
HF_TF_H5 = FIXTURES / "hf_tf_bert_tiny" / "tf_model.h5"
TF = FIXTURES / "tf_bert_tiny"  # the same weights as HF, as a TF1 checkpoint
H5_NAME = "bert/tf_bert_for_pre_training/bert/pooler/dense/bias:0"
H5_OTHER = "bert/tf_bert_for_pre_training/bert/encoder/layer_._0/attention/self/key/bias:0"
KERAS_NAME = "layers/layer_normalization/vars/1"  # Embedding-Norm/beta
KERAS_OTHER = "layers/layer_normalization/vars/0"  # Embedding-Norm/gamma
KERAS_VARIABLE = "Embedding-Norm/beta"
CONFIG = HF / "config.json"  # every model built here has this one's shapes (one compile)


@pytest.fixture(scope="module")
def keras_weights(tmp_path_factory):
    """A Keras ``.weights.h5`` of a random model: ``(path, model)``."""
    model = build_transformer_model(CONFIG)
    rng = np.random.default_rng(5)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.2, variable.shape).astype("float32"))
    path = tmp_path_factory.mktemp("keras") / "model.weights.h5"
    model.save_weights(path)
    return path, model


def _copy(src, folder, name=None):
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (name or src.name)
    shutil.copy(src, target)
    return target


def _h5_file(kind_of_file, tmp_path, keras_weights):
    """A copy of the HF ``tf_model.h5`` or of the Keras weights: ``(path, name, other)``."""
    if kind_of_file == "tf_model.h5":
        return _copy(HF_TF_H5, tmp_path / "model"), H5_NAME, H5_OTHER
    return _copy(keras_weights[0], tmp_path / "model"), KERAS_NAME, KERAS_OTHER


def _craft(path, name, other, kind, outside):
    """Replace dataset ``name`` of ``path`` by one whose bytes or link lead elsewhere:
    ``outside`` (a file outside the checkpoint's folder) or, for a soft link, ``other``."""
    with h5py.File(path, "r+") as f:
        shape, dtype = f[name].shape, f[name].dtype
        del f[name]
        size = int(np.prod(shape)) * dtype.itemsize
        if kind == "external storage":
            outside.write_bytes(np.ones(shape, dtype).tobytes())
            f.create_dataset(name, shape=shape, dtype=dtype, external=[(str(outside), 0, size)])
        elif kind == "virtual dataset":
            with h5py.File(outside, "w") as g:
                g["x"] = np.ones(shape, dtype)
            layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
            layout[...] = h5py.VirtualSource(str(outside), "x", shape=shape)
            f.create_virtual_dataset(name, layout)
        elif kind == "soft link":
            f[name] = h5py.SoftLink("/" + other)
        elif kind == "external link":
            with h5py.File(outside, "w") as g:
                g["x"] = np.ones(shape, dtype)
            f[name] = h5py.ExternalLink(str(outside), "/x")
        elif kind == "filter plugin":
            f.create_dataset(
                name, shape=shape, dtype=dtype, chunks=shape, compression=32001,
                allow_unknown_filter=True,
            )  # fmt: skip
        else:
            raise AssertionError(kind)


_REFUSALS = {
    "external storage": r"keeps its data in external file\(s\) \[.*outside",
    "virtual dataset": r"is a virtual dataset mapping data from \[.*outside",
    "soft link": r"is a soft link \(to '/.*(key/bias:0|vars/0)'\)",
    "external link": r"is an external link to '/x' in file '.*outside",
    "filter plugin": r"filter 32001.*not built into HDF5",
}


def _run_isolated(code, timeout=60):
    """Run ``code`` in a fresh interpreter (a call that blocks on a FIFO cannot hang the
    suite); it prints one JSON document, returned."""
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


_OUTCOMES = """
import json
from kerasbert.checkpoints import open_checkpoint
from kerasbert.checkpoints.hf_tf_h5 import HFTensorFlowCheckpoint
from kerasbert.checkpoints.keras_h5 import KerasWeightsCheckpoint
from kerasbert.checkpoints.safetensors_reader import SafetensorsCheckpoint
from kerasbert.checkpoints.tf_bundle import TFCheckpoint
from kerasbert.checkpoints.torch_reader import TorchCheckpoint
from kerasbert.errors import CheckpointError

def outcome(reader, path):
    try:
        ckpt = globals()[reader](path)
        for name in ckpt.names():
            ckpt.read(name)
        return ["ok", ""]
    except CheckpointError as e:
        return ["CheckpointError", str(e)]
    except Exception as e:
        return [type(e).__name__, str(e)]

print(json.dumps({label: outcome(reader, path) for label, (reader, path) in CASES.items()}))
"""
_FIFO_KINDS = ("external storage", "virtual dataset", "external link")
_READERS = ("SafetensorsCheckpoint", "HFTensorFlowCheckpoint", "KerasWeightsCheckpoint",
            "TorchCheckpoint", "TFCheckpoint", "open_checkpoint")  # fmt: skip


@pytest.fixture(scope="module")
def fifo_outcomes(tmp_path_factory, keras_weights):
    """Outcomes of opening (and reading) files that lead to a FIFO nobody writes, or are
    one: any attempt to read the FIFO would block, so all run in one subprocess with a
    timeout. ``{(file kind, what, reader): (error type, message)}``."""
    tmp_path = tmp_path_factory.mktemp("fifo")
    cases = {}
    for file_kind in ("tf_model.h5", ".weights.h5"):
        reader = (
            "HFTensorFlowCheckpoint" if file_kind == "tf_model.h5" else "KerasWeightsCheckpoint"
        )
        for kind in _FIFO_KINDS:
            folder = tmp_path / file_kind / kind.replace(" ", "_")
            path, name, other = _h5_file(file_kind, folder, keras_weights)
            outside = folder / "outside.fifo"
            _craft(path, name, other, kind, outside)
            outside.unlink()
            os.mkfifo(outside)
            for call in (reader, "open_checkpoint"):
                cases[json.dumps([file_kind, kind, call])] = (call, str(path))
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    for call in _READERS:
        cases[json.dumps(["fifo", "", call])] = (call, str(fifo))
    code = f"CASES = {json.dumps(cases)}\n" + _OUTCOMES
    return {tuple(json.loads(k)): v for k, v in _run_isolated(code).items()}


# -- 1. HDF5 data or links leading outside the file -------------------------------------------


@pytest.mark.parametrize("kind", list(_REFUSALS))
@pytest.mark.parametrize("file_kind", ["tf_model.h5", ".weights.h5"])
def test_hdf5_data_from_elsewhere_is_refused_on_open(tmp_path, keras_weights, kind, file_kind):
    path, name, other = _h5_file(file_kind, tmp_path, keras_weights)
    outside = tmp_path / "outside.bin"
    _craft(path, name, other, kind, outside)
    with pytest.raises(CheckpointError, match=_REFUSALS[kind]):
        open_checkpoint(path)
    with pytest.raises(CheckpointError, match=_REFUSALS[kind]):
        open_checkpoint(path.parent)


@pytest.mark.parametrize("file_kind", ["tf_model.h5", ".weights.h5"])
def test_hdf5_pointing_at_a_fifo_neither_blocks_nor_reads_it(fifo_outcomes, file_kind):
    """With the outside file a FIFO nobody writes, any attempt to read it would block:
    every crafted file must be refused, and within the subprocess's timeout."""
    results = {k: v for k, v in fifo_outcomes.items() if k[0] == file_kind}
    assert len(results) == 2 * len(_FIFO_KINDS)
    for (_, kind, reader), (error, message) in results.items():
        assert error == "CheckpointError", (kind, reader, error, message)
        assert "outside.fifo" in message and "kerasbert reads only data stored" in message


def test_keras_weights_are_checked_again_when_loaded(tmp_path, keras_weights):
    """The file Keras opens by its path at load time is checked again: one swapped for a
    crafted file after it was opened is refused."""
    path, name, other = _h5_file(".weights.h5", tmp_path, keras_weights)
    ckpt = KerasWeightsCheckpoint(path)
    ckpt.close()
    _craft(path, name, other, "external storage", tmp_path / "outside.bin")
    model = build_transformer_model(CONFIG)
    with pytest.raises(CheckpointError, match=_REFUSALS["external storage"]):
        ckpt.load_into(model)


# -- 2. shard indexes and TF state files naming paths outside the folder ------------------


def _sharded(folder):
    """model.safetensors of HF split into two shards with an index: the weight map."""
    folder.mkdir(parents=True)
    tensors = load_file(HF / "model.safetensors")
    names = sorted(tensors)
    weight_map = {}
    for i, part in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):
        shard = f"model-0000{i + 1}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, folder / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, shard))
    shutil.copy(HF / "config.json", folder)
    return weight_map


def _write_index(path, weight_map):
    path.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def _escape(tmp_path, folder, how, shard_name):
    """A shard name that leads out of ``folder`` to a copy of its second shard."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    shutil.copy(folder / "model-00002-of-00002.safetensors", elsewhere / shard_name)
    if how == "absolute":
        return str(elsewhere / shard_name)
    if how == "dot-dot":
        return f"../elsewhere/{shard_name}"
    os.symlink(elsewhere, folder / "linked")  # a linked directory inside the folder
    return f"linked/{shard_name}"


@pytest.fixture
def opened_safetensors(monkeypatch):
    """Every file the safetensors reader opens, in order."""
    opened = []
    real = safetensors_reader.safe_open

    def recording(path, *args, **kwargs):
        opened.append(os.path.realpath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(safetensors_reader, "safe_open", recording)
    return opened


def test_a_sharded_folder_loads(tmp_path, opened_safetensors):
    folder = tmp_path / "model"
    _write_index(folder / "model.safetensors.index.json", _sharded(folder))
    ckpt = open_checkpoint(folder)
    whole = open_checkpoint(HF / "model.safetensors")
    assert ckpt.names() == whole.names()
    for name in whole.names():
        np.testing.assert_array_equal(ckpt.read(name), whole.read(name))
    assert len(opened_safetensors) == 3


def test_a_shard_that_is_a_link_to_a_blob_is_accepted(tmp_path):
    """HF's cache links each file of a snapshot to a blob outside the snapshot folder: the
    last component may be a link the folder holds."""
    folder = tmp_path / "snapshot"
    weight_map = _sharded(folder)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for shard in set(weight_map.values()):
        os.replace(folder / shard, blobs / shard)
        os.symlink(blobs / shard, folder / shard)
    _write_index(folder / "model.safetensors.index.json", weight_map)
    assert len(open_checkpoint(folder)) == len(open_checkpoint(HF / "model.safetensors"))


@pytest.mark.parametrize("how", ["absolute", "dot-dot", "linked directory"])
def test_a_safetensors_index_naming_a_shard_outside_is_refused(tmp_path, how, opened_safetensors):
    folder = tmp_path / "model"
    weight_map = _sharded(folder)
    bad = _escape(tmp_path, folder, how, "model-00002-of-00002.safetensors")
    weight_map = {n: bad if s.startswith("model-00002") else s for n, s in weight_map.items()}
    _write_index(folder / "model.safetensors.index.json", weight_map)
    with pytest.raises(CheckpointError, match=r"names shard .*which lies outside the index's"):
        open_checkpoint(folder)
    with pytest.raises(CheckpointError, match="outside"):
        build_transformer_model(folder, folder)
    assert opened_safetensors == []  # refused before any shard, inside or out, was opened


@pytest.mark.parametrize("how", ["absolute", "dot-dot", "linked directory"])
def test_a_torch_index_naming_a_shard_outside_is_refused(tmp_path, how):
    """Refused by read_shard_index, before torch (not installed here) is even needed."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"PK\x03\x04")
    inside = "pytorch_model-00001-of-00002.bin"
    (folder / inside).write_bytes(b"PK\x03\x04")
    bad = _escape(tmp_path, folder, how, "pytorch_model-00002-of-00002.bin")
    index = folder / "pytorch_model.bin.index.json"
    _write_index(index, {"bert.pooler.dense.bias": inside, "bert.pooler.dense.weight": bad})
    with pytest.raises(CheckpointError, match=r"'bert.pooler.dense.weight'.*lies outside"):
        read_shard_index(str(index))
    with pytest.raises(CheckpointError, match="outside"):
        open_checkpoint(index)


def _tf_copy(folder, prefix_name="bert_model.ckpt"):
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(TF / f"bert_model.ckpt{suffix}", folder / f"{prefix_name}{suffix}")
    return folder / prefix_name


def _state_file(folder, named):
    (folder / "checkpoint").write_text(
        f'model_checkpoint_path: "{named}"\nall_model_checkpoint_paths: "{named}"\n'
    )


@pytest.mark.parametrize("relative", [False, True])
def test_a_state_file_naming_a_checkpoint_outside_is_an_error(tmp_path, relative):
    outside = _tf_copy(tmp_path / "elsewhere")
    folder = tmp_path / "model"
    folder.mkdir()
    _state_file(folder, "../elsewhere/bert_model.ckpt" if relative else outside)
    with pytest.raises(CheckpointError, match=r"state file '.*checkpoint' names .*outside"):
        resolve_prefix(folder)
    with pytest.raises(CheckpointError, match="state file"):
        open_checkpoint(folder)


def test_a_state_file_naming_outside_uses_the_same_named_checkpoint_inside(tmp_path):
    """A TF1 checkpoint moved from where it was written: its own copy, not the original."""
    _tf_copy(tmp_path / "elsewhere")
    folder = tmp_path / "model"
    local = _tf_copy(folder)
    _state_file(folder, tmp_path / "elsewhere" / "bert_model.ckpt")
    assert resolve_prefix(folder) == str(local)
    assert open_checkpoint(folder).path == str(local)


def test_an_absolute_state_file_path_into_the_folder_is_accepted(tmp_path):
    """TF1 wrote absolute paths; one that leads into the folder is still followed."""
    folder = tmp_path / "model"
    _tf_copy(folder, "model.ckpt-100")
    chosen = _tf_copy(folder, "model.ckpt-200")
    _state_file(folder, chosen)
    assert resolve_prefix(folder) == str(chosen)


# -- 3. special files ------------------------------------------------------------------------


def test_a_character_device_is_named():
    with pytest.raises(CheckpointError, match="'/dev/null' exists but is a character device"):
        resolve_checkpoint("/dev/null")


def test_a_fifo_is_named_and_never_opened(tmp_path, fifo_outcomes):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="is a named pipe"):
        resolve_checkpoint(fifo)
    # Each reader given a FIFO directly refuses it without opening it (which would block).
    for reader in _READERS:
        error, message = fifo_outcomes["fifo", "", reader]
        assert error == "CheckpointError", (reader, error, message)
        assert (
            "named pipe" in message
            or "not a regular file" in message
            or (reader == "TFCheckpoint" and "No TensorFlow checkpoint" in message)
        ), (reader, message)


def test_a_dangling_symlink_says_so(tmp_path):
    link = tmp_path / "model.safetensors"
    os.symlink(tmp_path / "gone.safetensors", link)
    with pytest.raises(CheckpointError, match=r"symbolic link to '.*gone.safetensors'.*not exist"):
        resolve_checkpoint(link)


# -- 4. torch files, without torch ---------------------------------------------------------


@pytest.fixture
def no_torch(monkeypatch):
    """``import torch`` fails (it is not installed here; this makes sure of it)."""
    monkeypatch.setitem(sys.modules, "torch", None)


def test_a_legacy_torch_pickle_is_named_as_such(tmp_path, no_torch):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(torch_reader._LEGACY_MAGIC + b"}q\x00(X\x04")
    for path in (folder, folder / "pytorch_model.bin"):
        with pytest.raises(CheckpointError, match=r"legacy pickle format \(torch.save") as e:
            open_checkpoint(path)
        assert "truncated or corrupt" not in str(e.value)
        assert "needs torch" not in str(e.value)  # checked before torch is imported


def test_a_torch_file_that_is_not_a_zip_says_so(tmp_path, no_torch):
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(b"these bytes are not a torch checkpoint")
    with pytest.raises(CheckpointError, match=r"not a PyTorch checkpoint in torch's zip format"):
        open_checkpoint(path)


def test_torch_advice_to_unpickle_code_is_not_passed_on():
    torch_message = (
        "Weights only load failed. This file can still be loaded, to do so you have two "
        "options, do those steps only if you trust the source of the checkpoint.\n\t(1) "
        "Re-running `torch.load` with `weights_only` set to `False` will likely succeed, but "
        "it can result in arbitrary code execution.\n\t(2) Alternatively, to load with "
        "`weights_only=True` please check the recommended steps in the following error "
        "message.\n\tWeightsUnpickler error: Unsupported global: GLOBAL builtins.eval was not "
        "an allowed global by default. Please use `torch.serialization.add_safe_globals"
        "([eval])` or the `torch.serialization.safe_globals([eval])` context manager to "
        "allowlist this global if you trust this class/function. Or weights_only=False."
    )
    error = torch_reader._load_error("x.bin", RuntimeError(torch_message))
    message = str(error)
    assert isinstance(error, CheckpointError)
    assert "weights_only=False" not in message and "set to `False`" not in message
    assert "safe_globals" not in message
    assert "restricted" in message and "builtins.eval" in message
    plain = torch_reader._load_error("x.bin", RuntimeError("PytorchStreamReader failed"))
    assert "truncated or corrupt" in str(plain) and "PytorchStreamReader failed" in str(plain)


# -- 5. safetensors: bad headers, truncation, dtypes -----------------------------------------


def _write_raw_safetensors(path, tensors):
    """A safetensors file from ``{name: (dtype code, shape, raw bytes)}``, by hand."""
    header, blobs, offset = {}, [], 0
    for name, (code, shape, raw) in tensors.items():
        header[name] = {
            "dtype": code,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


_ST_CODES = {"float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32"}


def _hf_tensors_raw(replace=None):
    tensors = {
        name: (_ST_CODES[array.dtype.name], array.shape, array.tobytes())
        for name, array in load_file(HF / "model.safetensors").items()
    }
    tensors.update(replace or {})
    return tensors


@pytest.mark.parametrize(
    "damage",
    ["garbage header", "huge header length", "header not an object", "truncated",
     "unknown dtype code", "offsets past the end"],
)  # fmt: skip
def test_a_damaged_safetensors_file_is_a_checkpoint_error(tmp_path, damage):
    path = tmp_path / "model.safetensors"
    data = (HF / "model.safetensors").read_bytes()
    if damage == "garbage header":
        path.write_bytes(struct.pack("<Q", 16) + b"{not json at all" + data[100:200])
    elif damage == "huge header length":
        path.write_bytes(b"\xff" * 8 + data[8:])
    elif damage == "header not an object":
        path.write_bytes(struct.pack("<Q", 8) + b"[1,2,3] " + b"\0" * 16)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "unknown dtype code":
        _write_raw_safetensors(path, {"bert.pooler.dense.bias": ("X9", (4,), b"\0" * 16)})
    else:
        text = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}})
        text = text.encode() + b" " * (-len(text) % 8)
        path.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 16)
    with pytest.raises(CheckpointError, match=r"safetensors"):
        ckpt = open_checkpoint(path)
        for name in ckpt.names():
            ckpt.read(name)


def test_a_dtype_safetensors_knows_but_kerasbert_does_not(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(HF / "config.json", folder)
    fp8 = {"bert.pooler.dense.bias": ("F8_E4M3", (32,), b"\x38" * 32)}
    _write_raw_safetensors(folder / "model.safetensors", _hf_tensors_raw(fp8))
    with pytest.raises(CheckpointError, match=r"bert.pooler.dense.bias.*stored as F8_E4M3.*cannot"):
        build_transformer_model(folder, folder, with_pool=True)


def test_unsigned_dtypes_are_listed():
    assert {"U16": "uint16", "U32": "uint32", "U64": "uint64"}.items() <= (
        safetensors_reader._DTYPES.items()
    )


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
def test_an_unsigned_tensor_for_a_float_weight_is_refused(tmp_path, dtype):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(HF / "config.json", folder)
    tensors = load_file(HF / "model.safetensors")
    tensors["bert.pooler.dense.bias"] = np.arange(32, dtype=dtype)
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(WeightLoadingError, match=rf"'bert/pooler/dense/bias'.* is {dtype}, but"):
        build_transformer_model(folder, folder, with_pool=True)


# -- 6. folders holding two checkpoints ------------------------------------------------------


def _hf_folder(folder):
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(HF / name, folder)
    return folder


def test_a_tf_checkpoint_of_the_same_model_beside_hf_files_is_allowed(tmp_path):
    folder = _hf_folder(tmp_path / "model")
    _tf_copy(folder)
    _state_file(folder, "bert_model.ckpt")
    assert resolve_checkpoint(folder) == ("safetensors", str(folder / "model.safetensors"))
    # The same, written by kerasbert's own TF writer from the arrays of the HF file.
    other = _hf_folder(tmp_path / "written")
    hf = open_checkpoint(other / "model.safetensors")
    write_tf_checkpoint(other / "bert_model.ckpt", {n: hf.read(n) for n in hf.names()})
    assert resolve_checkpoint(other) == ("safetensors", str(other / "model.safetensors"))


def test_a_tf_checkpoint_of_another_model_beside_hf_files_is_an_error(tmp_path):
    folder = _hf_folder(tmp_path / "model")
    tf = TFCheckpoint(TF / "bert_model.ckpt")
    arrays = {name: tf.read(name) for name in tf.names()}
    bias = "bert/encoder/layer_1/output/dense/bias"
    arrays[bias] = arrays[bias] + np.float32(1e-3)  # one fine-tuning step, say
    write_tf_checkpoint(folder / "bert_model.ckpt", arrays)
    with pytest.raises(
        CheckpointError,
        match=rf"more than one checkpoint: HF weights 'model.safetensors' and TensorFlow "
        rf"checkpoint 'bert_model.ckpt'; they are different models \('{bias}' differs",
    ):
        resolve_checkpoint(folder)
    with pytest.raises(CheckpointError, match="more than one checkpoint"):
        build_transformer_model(folder, folder)


def test_keras_weights_beside_hf_files_are_an_error(tmp_path, keras_weights):
    folder = _hf_folder(tmp_path / "model")
    shutil.copy(keras_weights[0], folder / "best.weights.h5")
    with pytest.raises(
        CheckpointError, match=r"HF weights 'model.safetensors' and Keras weights 'best.weights.h5'"
    ):
        resolve_checkpoint(folder)


# -- 7. TF bundle byte order -----------------------------------------------------------------

_TF_CODE = {dtype: code for code, dtype in TF_DTYPES.items()}


def _write_bundle(prefix, arrays, endianness):
    """A one-shard TF bundle whose header says ``endianness`` (None: field absent) and whose
    data is stored in that byte order (1: big-endian), each CRC-32C over the stored bytes."""
    data, entries, offset = [], [], 0
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        itemsize = array.dtype.itemsize
        raw = np.frombuffer(array.astype(array.dtype.newbyteorder("<")).tobytes(), np.uint8)
        if endianness == 1:
            raw = np.ascontiguousarray(raw.reshape(-1, itemsize)[:, ::-1]).reshape(-1)
        dims = b"".join(
            pb.field(2, pb.BYTES, pb.field(1, pb.VARINT, d) if d else b"") for d in array.shape
        )
        entry = pb.field(1, pb.VARINT, _TF_CODE[array.dtype]) + pb.field(2, pb.BYTES, dims)
        entry += pb.field(4, pb.VARINT, offset) + pb.field(5, pb.VARINT, raw.size)
        entry += pb.field(6, pb.FIXED32, mask(crc32c(raw)))
        entries.append((name.encode(), entry))
        data.append(raw.tobytes())
        offset += raw.size
    header = pb.field(1, pb.VARINT, 1)
    if endianness is not None:
        header += pb.field(2, pb.VARINT, endianness)
    header += pb.field(3, pb.BYTES, pb.field(1, pb.VARINT, 1))
    prefix.parent.mkdir(parents=True, exist_ok=True)
    (prefix.parent / (prefix.name + ".index")).write_bytes(write_table([(b"", header)] + entries))
    (prefix.parent / (prefix.name + ".data-00000-of-00001")).write_bytes(b"".join(data))


_BYTE_ORDER_ARRAYS = {
    "dtypes/float32": np.linspace(-3, 3, 6, dtype="float32").reshape(2, 3),
    "dtypes/float64": np.array([1.5, -2.25e300], "float64"),
    "dtypes/float16": np.array([0.5, -1.0, 65504.0], "float16"),
    "dtypes/bfloat16": np.array([1.0, -0.0078125, 3.0e38], ml_dtypes.bfloat16),
    "dtypes/int32": np.array([1, -2, 2**31 - 1], "int32"),
    "dtypes/int64": np.array([2**40 + 3, -1], "int64"),
    "dtypes/uint16": np.array([1, 65535], "uint16"),
    "dtypes/bool": np.array([True, False, True]),
    "shapes/scalar": np.array(7.25, "float32"),
}


def test_a_big_endian_bundle_reads_as_the_little_endian_one(tmp_path):
    little, big = tmp_path / "le" / "model.ckpt", tmp_path / "be" / "model.ckpt"
    _write_bundle(little, _BYTE_ORDER_ARRAYS, endianness=None)
    _write_bundle(big, _BYTE_ORDER_ARRAYS, endianness=1)
    assert (tmp_path / "le/model.ckpt.data-00000-of-00001").read_bytes() != (
        tmp_path / "be/model.ckpt.data-00000-of-00001"
    ).read_bytes()
    le, be = TFCheckpoint(little), TFCheckpoint(big)
    assert not le.big_endian and be.big_endian
    for name, expected in _BYTE_ORDER_ARRAYS.items():
        a, b = le.read(name), be.read(name)
        assert a.dtype == b.dtype and a.dtype.isnative and b.dtype.isnative
        np.testing.assert_array_equal(b, a)
        np.testing.assert_array_equal(b, np.asarray(expected, a.dtype))


def test_an_unknown_endianness_is_refused(tmp_path):
    prefix = tmp_path / "model.ckpt"
    write_tf_checkpoint(prefix, {"dtypes/float32": np.ones(3, "float32")})
    index = tmp_path / "model.ckpt.index"
    entries = read_table(index.read_bytes())
    header = pb.field(1, pb.VARINT, 1) + pb.field(2, pb.VARINT, 2)
    header += pb.field(3, pb.BYTES, pb.field(1, pb.VARINT, 1))
    index.write_bytes(write_table([(b"", header)] + entries[1:]))
    with pytest.raises(CheckpointError, match=r"endianness 2, which is neither little"):
        TFCheckpoint(prefix)


# -- 8. corrupt HDF5 -------------------------------------------------------------------------


def test_a_corrupt_tf_model_h5_is_a_kerasbert_error_or_loads(tmp_path):
    """A few seeded mutations of the fixture (byte flips, mostly in the metadata at the
    start and end of the file, and truncations): each either opens and reads, or raises a
    kerasbert error, never h5py's or numpy's own (RuntimeError, KeyError, OSError, ...)."""
    original = HF_TF_H5.read_bytes()
    rng = np.random.default_rng(20261202)
    outcomes = {"loaded": 0, "refused": 0}
    for i in range(30):
        data = bytearray(original)
        if i % 3 == 2:
            data = data[: int(rng.integers(1, len(data)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                region = (0, 4096) if rng.random() < 0.6 else (len(data) - 8192, len(data))
                pos = int(rng.integers(*region))
                data[pos] ^= 1 << int(rng.integers(8))
        path = tmp_path / f"m{i}" / "tf_model.h5"
        path.parent.mkdir()
        path.write_bytes(bytes(data))
        try:
            ckpt = open_checkpoint(path)
            for name in ckpt.names():
                ckpt.read(name)
            ckpt.close()
            outcomes["loaded"] += 1
        except KerasBertError:
            outcomes["refused"] += 1
        except Exception as e:  # noqa: BLE001 (the point of the test)
            pytest.fail(f"mutation {i}: {type(e).__name__}: {e}")
    assert outcomes["refused"] >= 10  # every truncation at least


# -- 9. and the Keras .weights.h5 load: shapes, dtypes, finiteness --------------------------


def test_keras_weights_that_do_not_fit_name_a_variable_and_both_shapes(tmp_path, keras_weights):
    other = dict(json.loads(CONFIG.read_text()), intermediate_size=40)
    with pytest.raises(
        WeightLoadingError,
        match=r"in the file, not the model: 'layers/feed_forward/intermediate_dense/vars/0' "
        r"\(layer 'intermediate'\) is \(32, 37\).*in the model, not the file: "
        r"'Transformer-0-FeedForward/intermediate/kernel' is \(32, 40\)",
    ):
        build_transformer_model(other, keras_weights[0])


def _rewrite_dataset(path, name, value):
    with h5py.File(path, "r+") as f:
        del f[name]
        f[name] = value


def _weights(model):
    return [np.array(v.numpy()) for v in model.weights]


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_keras_weights_with_integers_for_a_float_variable_are_refused(
    tmp_path, keras_weights, dtype
):
    path = _copy(keras_weights[0], tmp_path)
    _rewrite_dataset(path, KERAS_NAME, np.ones(32, dtype))
    model = build_transformer_model(CONFIG)
    before = _weights(model)
    with pytest.raises(
        WeightLoadingError,
        match=rf"'{KERAS_NAME}' in '.*' is {dtype}, but the model's {KERAS_VARIABLE} is float32",
    ):
        KerasWeightsCheckpoint(path).load_into(model)
    for a, b in zip(before, _weights(model)):  # nothing was assigned
        np.testing.assert_array_equal(a, b)
    with pytest.raises(WeightLoadingError, match=rf"{KERAS_VARIABLE} is float32"):
        build_transformer_model(CONFIG, path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_keras_weights_with_non_finite_values_are_refused_unless_allowed(
    tmp_path, keras_weights, value
):
    path = _copy(keras_weights[0], tmp_path)
    beta = keras_weights[1].get_layer("Embedding-Norm").beta.numpy().copy()
    beta[3] = value
    _rewrite_dataset(path, KERAS_NAME, beta)
    with pytest.raises(WeightLoadingError, match=rf"'{KERAS_NAME}'.* holds 1 NaN or infinite"):
        build_transformer_model(CONFIG, path)
    model = build_transformer_model(CONFIG, path, allow_non_finite=True)
    loaded = model.get_layer("Embedding-Norm").beta.numpy()
    assert not np.isfinite(loaded[3])
    np.testing.assert_array_equal(np.delete(loaded, 3), np.delete(beta, 3))


def test_keras_weights_that_fit_still_load(keras_weights):
    path, source = keras_weights
    model = build_transformer_model(CONFIG, path)
    for a, b in zip(_weights(source), _weights(model)):
        np.testing.assert_array_equal(a, b)
