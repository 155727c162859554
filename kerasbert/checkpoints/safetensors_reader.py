"""Reader of HF ``model.safetensors`` files, single or sharded (``*.index.json``).

The safetensors library validates a file's header (offsets, sizes, dtypes) when it opens
it; whatever it raises, at opening or reading, is a :class:`CheckpointError` naming the
file. A shard index's file names must stay in the index's folder
(:func:`kerasbert.checkpoints.base.read_shard_index`). A file kerasbert wrote carries a
CRC-32C of every tensor in its metadata (:mod:`kerasbert.checkpoints.integrity`), checked
when the tensor is read.
"""

import os

from safetensors import safe_open

from kerasbert.checkpoints import integrity
from kerasbert.checkpoints.base import Checkpoint, Entry, read_shard_index
from kerasbert.errors import CheckpointError

# safetensors' dtype codes -> numpy names.
_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
}
_CORRUPT = "it may be truncated or corrupt: download or convert it again"


def _open(path):
    if not os.path.isfile(path):
        raise CheckpointError(f"{path!r} is not a regular file; pass the safetensors file itself.")
    try:
        return safe_open(path, framework="numpy")
    except Exception as e:  # SafetensorError, OSError, ...: whatever the header's parser finds
        raise CheckpointError(
            f"{path!r} is not a readable safetensors file ({e}); {_CORRUPT}."
        ) from None


def _checksums(handle, path, listed):
    """The kerasbert checksums in a file's metadata (``{name: crc}``), or None."""
    try:
        metadata = handle.metadata() or {}
    except Exception as e:
        raise CheckpointError(
            f"{path!r} has an unreadable safetensors metadata header ({e}); {_CORRUPT}."
        ) from None
    names = [name for name, _, _ in listed]
    return integrity.parse_metadata(metadata.get(integrity.METADATA_KEY), path, names)


def _list(handle, path):
    """``[(name, shape, dtype code)]`` of an open file, from its (validated) header."""
    try:
        listed = []
        for name in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
            view = handle.get_slice(name)
            listed.append((name, tuple(view.get_shape()), view.get_dtype()))
        return listed
    except Exception as e:
        raise CheckpointError(
            f"{path!r} has an unreadable safetensors header ({e}); {_CORRUPT}."
        ) from None


class SafetensorsCheckpoint(Checkpoint):
    """HF safetensors weights under canonical names, read lazily through memory maps.

    Args:
        path: a ``.safetensors`` file or a ``model.safetensors.index.json`` shard index.

    Attributes:
        kerasbert_checksums: ``{stored name: crc32c}`` from the files' metadata
            (:mod:`kerasbert.checkpoints.integrity`), or None when no file has any.

    Example (writing a one-tensor file first):

    >>> import numpy as np, tempfile, os
    >>> from safetensors.numpy import save_file
    >>> p = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> save_file({"bert.pooler.dense.bias": np.zeros(4, "float32")}, p)
    >>> SafetensorsCheckpoint(p).names()
    ['bert/pooler/dense/bias']
    """

    format = "safetensors"
    naming = "hf"

    def __init__(self, path):
        path = os.fspath(path)
        super().__init__(path)
        self._files = {}
        if path.endswith(".json"):
            shard_of = read_shard_index(path)
        else:
            shard_of = None
        sources = []
        for file in sorted(set(shard_of.values())) if shard_of else [path]:
            handle = _open(file)
            self._files[file] = handle
            listed = _list(handle, file)
            stored = _checksums(handle, file, listed)
            if stored is not None:
                self.kerasbert_checksums = self.kerasbert_checksums or {}
                self.checksummed_files.add(file)
            for name, shape, code in listed:
                if shard_of is not None and shard_of.get(name) != file:
                    continue
                if stored is not None and name in stored:
                    self.kerasbert_checksums[name] = stored[name]
                sources.append(Entry(name, shape, _DTYPES.get(code, code)))
        self._file_of = shard_of or {e.source_name: path for e in sources}
        if shard_of:
            missing = sorted(set(shard_of) - {e.source_name for e in sources})
            if missing:
                raise CheckpointError(
                    f"Shard index {path!r} lists {len(missing)} tensor(s) its shards lack, "
                    f"e.g. {missing[:3]}; a shard is incomplete: download it again."
                )
        self._add_translated(sources)

    def _read(self, entry):
        file = self._file_of[entry.source_name]
        if entry.dtype not in _DTYPES.values():
            raise CheckpointError(
                f"Tensor {entry.source_name!r} in {file!r} is stored as {entry.dtype}, which "
                f"kerasbert cannot read (supported: {', '.join(_DTYPES)}); convert the "
                "checkpoint to float32 or float16."
            )
        try:
            array = self._files[file].get_tensor(entry.source_name)
        except Exception as e:
            raise CheckpointError(
                f"Could not read tensor {entry.source_name!r} from {file!r} ({e}); {_CORRUPT}."
            ) from None
        stored = (self.kerasbert_checksums or {}).get(entry.source_name)
        integrity.check(entry.source_name, array, stored, file)
        return array

    def file_of(self, source_name):
        return self._file_of.get(source_name, self.path)

    def close(self):
        self._files.clear()
