"""Per-tensor checksums in the files kerasbert writes, beyond what the formats give.

TensorFlow checkpoints carry a CRC-32C of every tensor; safetensors and HDF5 files carry
none, so a flipped bit in a weight loads silently. Every safetensors or HDF5 file kerasbert
writes therefore records the CRC-32C (:func:`kerasbert.checkpoints.crc32c.crc32c`, the
function TF bundles use) of each tensor's C-contiguous little-endian bytes:

- safetensors: one key of the header's ``__metadata__``, :data:`METADATA_KEY`
  (``"kerasbert.crc32c"``), whose value is a JSON object ``{tensor name: crc as int}``
  (safetensors' metadata values are strings);
- HDF5 (Keras ``.weights.h5`` from ``convert --to keras``): an attribute
  :data:`H5_ATTRIBUTE` (``"kerasbert_crc32c"``) on each dataset, added to the file Keras
  wrote. An attribute travels with its dataset, so it holds :func:`dataset_crc`, which binds
  the dataset's name too: two same-shaped datasets swapped no longer match their checksums.
  A file in which some datasets have one must have one on every dataset.

Readers verify a tensor's CRC when it is read and raise a :class:`CheckpointError` naming the
tensor and the file on a mismatch; malformed checksums (not JSON, not ints, names the file does
not hold) are an error when the file is opened. Files without them load as before.

Example:

>>> import numpy as np
>>> array_crc(np.arange(3, dtype="<f4")) == array_crc(np.arange(3, dtype=">f4"))
True
"""

import json
import sys

import numpy as np

from kerasbert.checkpoints.crc32c import crc32c
from kerasbert.errors import CheckpointError

METADATA_KEY = "kerasbert.crc32c"
H5_ATTRIBUTE = "kerasbert_crc32c"
_AGAIN = "the file was changed or damaged after kerasbert wrote it: convert or download it again"


def little_endian_bytes(array):
    """``array`` as C-contiguous little-endian memory (a view when it already is)."""
    array = np.ascontiguousarray(array)
    order = array.dtype.byteorder
    if order == ">" or (order == "=" and sys.byteorder == "big"):
        array = array.astype(array.dtype.newbyteorder("<"))
    return array


def array_crc(array):
    """CRC-32C of an array's C-contiguous little-endian bytes (the bytes a safetensors file
    or a TF bundle stores).

    Example:

    >>> array_crc(np.zeros(0, "float32"))
    0
    """
    return crc32c(little_endian_bytes(array).reshape(-1).view(np.uint8))


def dataset_crc(name, array):
    """The :data:`H5_ATTRIBUTE` checksum of HDF5 dataset ``name``: CRC-32C of the name
    (UTF-8), a NUL byte and the 4 little-endian bytes of :func:`array_crc` of its data.

    Example:

    >>> data = np.ones(3, "float32")
    >>> dataset_crc("layers/a/vars/0", data) == dataset_crc("layers/b/vars/0", data)
    False
    """
    data_crc = array_crc(array).to_bytes(4, "little")
    return crc32c(name.encode("utf-8", "surrogateescape") + b"\0" + data_crc)


def checksums(arrays):
    """``{name: crc}`` of a dict of arrays (:func:`array_crc`)."""
    return {name: array_crc(value) for name, value in arrays.items()}


def metadata_value(arrays):
    """The value of :data:`METADATA_KEY` for a safetensors file holding ``arrays``.

    Example:

    >>> metadata_value({"b": np.zeros(2, "float32"), "a": np.ones(1, "int8")})
    '{"a":2685849682,"b":2351477386}'
    """
    return json.dumps(checksums(arrays), sort_keys=True, separators=(",", ":"))


def _is_crc(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and (
        0 <= int(value) < 1 << 32
    )


def parse_metadata(value, path, names):
    """The checksums a safetensors file's :data:`METADATA_KEY` holds, validated.

    Args:
        value: the metadata value (a string), or None when the file has none.
        path: the file, for messages.
        names: the tensor names the file holds.

    Returns:
        ``{tensor name: crc}``, or None when ``value`` is None.

    Raises:
        CheckpointError: not a JSON object of ints in [0, 2**32), or names a tensor the
            file does not hold.

    Example:

    >>> parse_metadata('{"a": 5}', "x.safetensors", ["a", "b"])
    {'a': 5}
    >>> parse_metadata('{"c": 5}', "x.safetensors", ["a"])
    Traceback (most recent call last):
    ...
    kerasbert.errors.CheckpointError: ... names tensor(s) the file does not hold: ['c']; ...
    """
    if value is None:
        return None

    def malformed(why):
        return CheckpointError(
            f"{path!r} has malformed kerasbert checksums (safetensors metadata key "
            f"{METADATA_KEY!r}): {why}; {_AGAIN}."
        )

    try:
        parsed = json.loads(value)
    except (TypeError, ValueError, RecursionError) as e:
        raise malformed(f"not JSON ({e})") from None
    if not isinstance(parsed, dict):
        raise malformed(f"a JSON {type(parsed).__name__}, not an object of tensor name -> crc")
    bad = sorted(name for name, crc in parsed.items() if not _is_crc(crc))
    if bad:
        raise malformed(
            f"the checksum of {bad[0]!r} is {parsed[bad[0]]!r}, not an int in [0, 2**32)"
        )
    unknown = sorted(set(parsed) - set(names))
    if unknown:
        raise malformed(f"names tensor(s) the file does not hold: {unknown[:5]}")
    return {name: int(crc) for name, crc in parsed.items()}


def h5_checksum(path, name, dataset):
    """The :data:`H5_ATTRIBUTE` checksum of an HDF5 dataset, or None when it has none.

    Raises:
        CheckpointError: an attribute that is not one int in [0, 2**32).
    """
    try:
        if H5_ATTRIBUTE not in dataset.attrs:
            return None
        value = dataset.attrs[H5_ATTRIBUTE]
    except Exception as e:
        raise CheckpointError(
            f"HDF5 file {path!r}: the {H5_ATTRIBUTE!r} attribute of dataset {name!r} is "
            f"unreadable ({e}); {_AGAIN}."
        ) from None
    value = value.item() if isinstance(value, np.ndarray) and value.size == 1 else value
    if not _is_crc(value):
        raise CheckpointError(
            f"HDF5 file {path!r}: dataset {name!r} has a malformed kerasbert checksum "
            f"({H5_ATTRIBUTE} = {value!r}, not an int in [0, 2**32)); {_AGAIN}."
        )
    return int(value)


def check(name, array, expected, path):
    """Raise a CheckpointError unless ``array``'s CRC is ``expected`` (None: nothing to check).

    Example:

    >>> check("a", np.zeros(2, "float32"), 0, "x.safetensors")
    Traceback (most recent call last):
    ...
    kerasbert.errors.CheckpointError: Checksum mismatch for tensor 'a' in 'x.safetensors' ...
    """
    if expected is not None:
        _compare(name, array_crc(array), expected, path)


def check_dataset(name, array, expected, path):
    """:func:`check` for an HDF5 dataset, whose checksum is :func:`dataset_crc`."""
    if expected is not None:
        _compare(name, dataset_crc(name, array), expected, path)


def _compare(name, actual, expected, path):
    if actual != expected:
        raise CheckpointError(
            f"Checksum mismatch for tensor {name!r} in {path!r} (kerasbert's stored crc32c "
            f"{expected:#010x}, the data's {actual:#010x}): {_AGAIN}."
        )


def add_h5_checksums(path):
    """Add an :data:`H5_ATTRIBUTE` checksum to every dataset of an HDF5 file kerasbert has
    just written (e.g. with Keras' ``save_weights``), computed from the data read back.

    Only for files kerasbert itself wrote: the file is opened for writing.

    Example:

    >>> import h5py, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "w.weights.h5")
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("layers/dense/vars/0", data=np.zeros(2, "float32"))
    >>> add_h5_checksums(path)
    1
    >>> with h5py.File(path) as f:
    ...     stored = int(f["layers/dense/vars/0"].attrs[H5_ATTRIBUTE])
    >>> stored == dataset_crc("layers/dense/vars/0", np.zeros(2, "f4"))
    True
    """
    import h5py

    datasets = []  # (visititems stops at a callback's first non-None result)
    with h5py.File(path, "r+") as file:
        file.visititems(
            lambda n, o: datasets.append((n, o)) if isinstance(o, h5py.Dataset) else None
        )
        for name, dataset in datasets:
            dataset.attrs[H5_ATTRIBUTE] = np.int64(dataset_crc(name, dataset[()]))
    return len(datasets)
