"""Finding the checkpoint behind a path and opening it with the right reader."""

import os

from kerasbert.checkpoints.base import Checkpoint
from kerasbert.checkpoints.keras_h5 import KerasWeightsCheckpoint
from kerasbert.checkpoints.safetensors_reader import SafetensorsCheckpoint
from kerasbert.checkpoints.torch_reader import TorchCheckpoint
from kerasbert.errors import CheckpointError

# Files looked for, in order of preference, when a checkpoint path is a folder.
FOLDER_CANDIDATES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "model.weights.h5",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"


def find_checkpoint_file(path):
    """Resolve a checkpoint path (a file or the folder holding one) to one file.

    Args:
        path: a checkpoint file, or a folder holding ``model.safetensors``,
            ``pytorch_model.bin``, a ``*.weights.h5`` file, or their shard indexes.

    Example:

    >>> find_checkpoint_file("/no/such/path")
    Traceback (most recent call last):
    ...
    kerasbert.errors.CheckpointError: Checkpoint path '/no/such/path' does not exist; ...
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        for candidate in FOLDER_CANDIDATES:
            if os.path.isfile(os.path.join(path, candidate)):
                return os.path.join(path, candidate)
        weights = sorted(f for f in os.listdir(path) if f.endswith(".weights.h5"))
        if weights:
            return os.path.join(path, weights[0])
        raise CheckpointError(
            f"No checkpoint found in folder {path!r}: expected one of "
            f"{list(FOLDER_CANDIDATES)} or a *.weights.h5 file. Pass the checkpoint file "
            "itself if it has another name."
        )
    if not os.path.exists(path):
        raise CheckpointError(f"Checkpoint path {path!r} does not exist; check the path.")
    return path


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
    if head.startswith(_HDF5_MAGIC):
        return "keras"
    if name.endswith((".bin", ".pt", ".pth")) or head.startswith(_ZIP_MAGIC):
        return "pytorch"
    raise CheckpointError(
        f"{file!r} is not a checkpoint kerasbert can read (recognised: .safetensors, "
        "pytorch_model.bin, Keras .weights.h5, and their shard indexes)."
    )


_READERS = {
    "safetensors": SafetensorsCheckpoint,
    "pytorch": TorchCheckpoint,
    "keras": KerasWeightsCheckpoint,
}


def open_checkpoint(path):
    """Open a checkpoint of any supported format as a :class:`Checkpoint`.

    A :class:`Checkpoint` passed in is returned as it is.

    Args:
        path: a checkpoint file or the folder holding one.

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
    file = find_checkpoint_file(path)
    return _READERS[detect_format(file)](file)
