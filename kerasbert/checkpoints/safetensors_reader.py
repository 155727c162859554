"""Reader of HF ``model.safetensors`` files, single or sharded (``*.index.json``)."""

from safetensors import SafetensorError, safe_open

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
    "U8": "uint8",
    "BOOL": "bool",
}


def _open(path):
    try:
        return safe_open(path, framework="numpy")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path!r} is not a readable safetensors file ({e}); it may be truncated or "
            "corrupt: download or convert it again."
        ) from None


class SafetensorsCheckpoint(Checkpoint):
    """HF safetensors weights under canonical names, read lazily through memory maps.

    Args:
        path: a ``.safetensors`` file or a ``model.safetensors.index.json`` shard index.

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
            for name in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
                if shard_of is not None and shard_of.get(name) != file:
                    continue
                view = handle.get_slice(name)
                dtype = _DTYPES.get(view.get_dtype(), view.get_dtype())
                sources.append(Entry(name, tuple(view.get_shape()), dtype))
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
        return self._files[self._file_of[entry.source_name]].get_tensor(entry.source_name)

    def close(self):
        self._files.clear()
