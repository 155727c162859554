"""Finding the checkpoint behind a path and opening it with the right reader."""

import os

import h5py

from kerasbert.checkpoints.base import Checkpoint
from kerasbert.checkpoints.hf_tf_h5 import HFTensorFlowCheckpoint
from kerasbert.checkpoints.keras_h5 import KerasWeightsCheckpoint
from kerasbert.checkpoints.safetensors_reader import SafetensorsCheckpoint
from kerasbert.checkpoints.tf_bundle import TFCheckpoint, resolve_prefix
from kerasbert.checkpoints.torch_reader import TorchCheckpoint
from kerasbert.errors import CheckpointError

# Files looked for, in order of preference, when a checkpoint path is a folder.
FOLDER_CANDIDATES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "model.weights.h5",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "tf_model.h5",
)
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_KNOWN = (
    ".safetensors, pytorch_model.bin, Keras .weights.h5, HF tf_model.h5, TensorFlow "
    "checkpoints (PREFIX.index + PREFIX.data-*), and shard indexes"
)


def resolve_checkpoint(path):
    """Find the checkpoint behind a path: ``(format, file or TF prefix)``.

    Args:
        path: a checkpoint file; a TensorFlow checkpoint prefix (``.../bert_model.ckpt``),
            its ``.index`` or ``.data-*`` file; or a folder holding any of these.

    Example:

    >>> resolve_checkpoint("/no/such/path")
    Traceback (most recent call last):
    ...
    kerasbert.errors.CheckpointError: Checkpoint path '/no/such/path' does not exist; ...
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        for candidate in FOLDER_CANDIDATES:
            file = os.path.join(path, candidate)
            if os.path.isfile(file):
                return detect_format(file), file
        prefix = resolve_prefix(path)
        if prefix is not None:
            return "tensorflow", prefix
        weights = sorted(f for f in os.listdir(path) if f.endswith(".weights.h5"))
        if weights:
            return "keras", os.path.join(path, weights[0])
        raise CheckpointError(
            f"No checkpoint found in folder {path!r}: expected one of "
            f"{list(FOLDER_CANDIDATES)}, a TensorFlow checkpoint (*.index + *.data-*), or a "
            "*.weights.h5 file. Pass the checkpoint file itself if it has another name."
        )
    if os.path.isfile(path):
        return detect_format(path), path
    prefix = resolve_prefix(path)
    if prefix is not None:
        return "tensorflow", prefix
    raise CheckpointError(f"Checkpoint path {path!r} does not exist; check the path.")


def detect_format(file):
    """Name the format of a checkpoint file from its name and first bytes."""
    try:
        with open(file, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise CheckpointError(f"Cannot read checkpoint file {file!r} ({e}).") from None
    name = os.path.basename(file)
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(".index.json"):
        return "pytorch" if "pytorch_model" in name or ".bin" in name else "safetensors"
    if resolve_prefix(file) is not None and (name.endswith(".index") or ".data-" in name):
        return "tensorflow"
    if head.startswith(_HDF5_MAGIC):
        return hdf5_flavour(file)
    if name.endswith((".bin", ".pt", ".pth")) or head.startswith(_ZIP_MAGIC):
        return "pytorch"
    raise CheckpointError(
        f"{file!r} is not a checkpoint kerasbert can read (recognised: {_KNOWN})."
    )


def hdf5_flavour(file):
    """``"keras"`` for Keras 3 ``.weights.h5``, ``"hf_tf"`` for HF's ``tf_model.h5``."""
    try:
        with h5py.File(file, "r") as f:
            if "layers" in f or "vars" in f:
                return "keras"
            if "layer_names" in f.attrs:
                return "hf_tf"
    except OSError as e:
        raise CheckpointError(f"{file!r} is not a readable HDF5 file ({e}); corrupt?") from None
    raise CheckpointError(
        f"{file!r} is an HDF5 file but neither a Keras .weights.h5 nor an HF tf_model.h5."
    )


_READERS = {
    "safetensors": SafetensorsCheckpoint,
    "pytorch": TorchCheckpoint,
    "keras": KerasWeightsCheckpoint,
    "tensorflow": TFCheckpoint,
    "hf_tf": HFTensorFlowCheckpoint,
}


def open_checkpoint(path):
    """Open a checkpoint of any supported format as a :class:`Checkpoint`.

    A :class:`Checkpoint` passed in is returned as it is.

    Args:
        path: a checkpoint file, TensorFlow prefix, or the folder holding one.

    Example:

    >>> import numpy as np, tempfile, os
    >>> from safetensors.numpy import save_file
    >>> d = tempfile.mkdtemp()
    >>> save_file({"bert.pooler.dense.bias": np.zeros(4, "float32")},
    ...           os.path.join(d, "model.safetensors"))
    >>> open_checkpoint(d).format
    'safetensors'
    """
    if isinstance(path, Checkpoint):
        return path
    fmt, location = resolve_checkpoint(path)
    return _READERS[fmt](location)
