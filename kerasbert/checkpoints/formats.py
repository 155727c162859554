"""Finding the checkpoint behind a path and opening it with the right reader."""

import importlib.util
import os
import stat

import ml_dtypes
import numpy as np

from kerasbert.checkpoints.base import Checkpoint
from kerasbert.checkpoints.hf_tf_h5 import HFTensorFlowCheckpoint, open_hdf5
from kerasbert.checkpoints.keras_h5 import KerasWeightsCheckpoint
from kerasbert.checkpoints.safetensors_reader import SafetensorsCheckpoint
from kerasbert.checkpoints.tf_bundle import TFCheckpoint, resolve_prefix
from kerasbert.checkpoints.torch_reader import TorchCheckpoint
from kerasbert.errors import CheckpointError

# HF's files of one model, in the order transformers' from_pretrained prefers them.
HF_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "tf_model.h5",
)
# Files looked for when a checkpoint path is a folder (beside TF checkpoints and any
# *.weights.h5), for messages.
FOLDER_CANDIDATES = HF_FILES + ("model.weights.h5",)
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_KNOWN = (
    ".safetensors, pytorch_model.bin, Keras .weights.h5, HF tf_model.h5, TensorFlow "
    "checkpoints (PREFIX.index + PREFIX.data-*), and shard indexes"
)
_SPECIAL_FILES = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def resolve_checkpoint(path):
    """Find the checkpoint behind a path: ``(format, file or TF prefix)``.

    A folder must hold one checkpoint. What counts as one:

    - HF's files of a model (``model.safetensors``, its shard index,
      ``pytorch_model.bin``, its shard index, ``tf_model.h5``), any number of them side
      by side: one model in several formats, as HF hub repositories ship it
      (``save_pretrained`` and the hub's converters write them from the same weights).
      The first of :data:`HF_FILES` is read, ``model.safetensors`` before the others:
      the file ``transformers`` itself loads from such a folder, so kerasbert loads what
      the folder means to HF, not a guess.
    - a TensorFlow checkpoint (one ``.index`` + ``.data-*``, or the one a ``checkpoint``
      state file names), alone, or beside HF's files *of the same model* (Google's BERT
      releases on the HF hub ship ``bert_model.ckpt.*`` next to ``pytorch_model.bin``
      and ``tf_model.h5``). That they are the same model is checked, not assumed: every
      variable both hold has the same shape, and every 1-D one (the biases and layer-norm
      weights of every layer, which any training changes) the same values, to the
      precision of the less precise file. Then HF's file is read.
    - a Keras ``*.weights.h5``, alone (its names cannot be compared with other files').

    Anything else, e.g. a fine-tuned TF checkpoint or ``best.weights.h5`` saved into a
    downloaded model's folder, holds two checkpoints, and which one a user means is not
    for kerasbert to guess: that is a :class:`CheckpointError` naming both files and
    asking for the one meant.

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
        return _resolve_folder(path)
    if os.path.isfile(path):
        return detect_format(path), path
    _refuse_special(path)
    prefix = resolve_prefix(path)
    if prefix is not None:
        return "tensorflow", prefix
    raise CheckpointError(f"Checkpoint path {path!r} does not exist; check the path.")


def _refuse_special(path):
    """Raise if ``path`` exists (or dangles as a link) but is no regular file or folder."""
    if os.path.islink(path) and not os.path.exists(path):
        raise CheckpointError(
            f"Checkpoint path {path!r} is a symbolic link to {os.readlink(path)!r}, which "
            "does not exist; fix the link or pass the checkpoint itself."
        )
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    kind = next((what for test, what in _SPECIAL_FILES if test(mode)), "not a regular file")
    raise CheckpointError(
        f"Checkpoint path {path!r} exists but is {kind}, not a regular checkpoint file; "
        "pass a checkpoint file, a TensorFlow checkpoint prefix, or a folder holding one."
    )


def _resolve_folder(folder):
    hf = [os.path.join(folder, n) for n in HF_FILES if os.path.isfile(os.path.join(folder, n))]
    prefix = resolve_prefix(folder)
    keras = sorted(
        os.path.join(folder, n)
        for n in os.listdir(folder)
        if n.endswith(".weights.h5") and os.path.isfile(os.path.join(folder, n))
    )
    found = []  # (format, location, description)
    if hf:
        found.append((detect_format(hf[0]), hf[0], _describe(hf, "HF weights")))
    if prefix is not None:
        found.append(("tensorflow", prefix, _describe([prefix], "TensorFlow checkpoint")))
    found.extend(("keras", k, _describe([k], "Keras weights")) for k in keras)
    if not found:
        raise CheckpointError(
            f"No checkpoint found in folder {folder!r}: expected one of "
            f"{list(FOLDER_CANDIDATES)}, a TensorFlow checkpoint (*.index + *.data-*), or a "
            "*.weights.h5 file. Pass the checkpoint file itself if it has another name."
        )
    if len(found) == 1:
        return found[0][:2]
    why = ""
    if len(found) == 2 and hf and prefix is not None:
        why = _tf_beside_hf(hf, prefix)
        if why is None:
            return found[0][:2]
    listing = " and ".join(description for _, _, description in found)
    choices = ", ".join(repr(location) for _, location, _ in found)
    raise CheckpointError(
        f"Folder {folder!r} holds more than one checkpoint: {listing}{why}. kerasbert does "
        f"not guess which one you mean: pass it instead of the folder (one of {choices})."
    )


def _describe(files, kind):
    names = ", ".join(repr(os.path.basename(f)) for f in files)
    return f"{kind} {names}"


def _tf_beside_hf(hf_files, prefix):
    """None if the TF checkpoint ``prefix`` holds the model of HF's files, else why not
    (``"; they ..."``)."""
    readable = [
        f
        for f in hf_files
        if not os.path.basename(f).startswith("pytorch_model")
        or importlib.util.find_spec("torch") is not None
    ]
    if not readable:
        return (
            "; whether they are the same model cannot be checked without torch (for "
            "pytorch_model.bin)"
        )
    try:
        with open_checkpoint(readable[0]) as hf, TFCheckpoint(prefix) as tf:
            return _differences(hf, tf)
    except CheckpointError as e:
        return f"; whether they are the same model could not be checked ({e})"


def _differences(a, b):
    """None if checkpoints ``a`` and ``b`` hold the same model (:func:`resolve_checkpoint`),
    else a ``"; they ..."`` clause naming a variable that differs."""
    common = sorted(set(a.names()) & set(b.names()))
    if not common:
        return "; they share no variable"
    first, second = (repr(os.path.basename(c.path)) for c in (a, b))
    for name in common:
        if a.shape(name) != b.shape(name):
            return (
                f"; they are different models ({name!r} is {a.shape(name)} in {first}, "
                f"{b.shape(name)} in {second})"
            )
    vectors = [n for n in common if len(a.shape(n)) <= 1] or common[:1]
    for name in vectors:
        if not _same_values(a.read(name), b.read(name)):
            return f"; they are different models ({name!r} differs between {first} and {second})"
    return None


_MANTISSA_BITS = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7}


def _same_values(x, y):
    """Equal, to the precision of the less precise of the two arrays' dtypes."""
    bits = [_MANTISSA_BITS.get(np.asarray(v).dtype.name) for v in (x, y)]
    if None in bits:  # ints, bools
        return np.array_equal(np.asarray(x), np.asarray(y))
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if bits[0] == bits[1]:
        return np.array_equal(x, y, equal_nan=True)
    low = {52: np.float64, 23: np.float32, 10: np.float16, 7: ml_dtypes.bfloat16}[min(bits)]
    x, y = (np.asarray(v.astype(low), np.float64) for v in (x, y))
    eps = 2.0 ** -min(bits)  # one unit in the last place, relative: rounding twice may differ
    return bool(np.all((x == y) | (np.abs(x - y) <= eps * np.maximum(np.abs(x), np.abs(y)))))


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
    """``"keras"`` for Keras 3 ``.weights.h5``, ``"hf_tf"`` for HF's ``tf_model.h5``.

    The file is checked (:func:`kerasbert.checkpoints.hf_tf_h5.open_hdf5`) before its
    names are looked up: looking up a name that is an external link opens another file.
    """
    f, _ = open_hdf5(file)
    try:
        with f:
            if "layers" in f or "vars" in f:
                return "keras"
            if "layer_names" in f.attrs:
                return "hf_tf"
    except Exception as e:
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
