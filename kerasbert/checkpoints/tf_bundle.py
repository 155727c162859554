"""TensorFlow checkpoints (TensorBundle V2) read and written without TensorFlow.

A checkpoint ``PREFIX`` is ``PREFIX.index`` (an SSTable: key ``""`` holds a
``BundleHeaderProto``, every other key is a variable name holding a ``BundleEntryProto``:
dtype, shape, shard, offset, size, CRC-32C) plus ``PREFIX.data-SSSSS-of-NNNNN`` shards of
raw little-endian tensor bytes. Data shards are memory-mapped; a tensor is a view into the
map, checked against its CRC when read.
"""

import contextlib
import math
import mmap
import os
import re

import ml_dtypes
import numpy as np

from kerasbert.checkpoints import protobuf as pb
from kerasbert.checkpoints.base import Checkpoint, Entry, inside_folder
from kerasbert.checkpoints.crc32c import crc32c, mask, unmask
from kerasbert.checkpoints.sstable import read_table, write_table
from kerasbert.errors import CheckpointError

# TensorFlow DataType enum values <-> numpy dtypes.
TF_DTYPES = {
    1: np.dtype("float32"),
    2: np.dtype("float64"),
    3: np.dtype("int32"),
    4: np.dtype("uint8"),
    5: np.dtype("int16"),
    6: np.dtype("int8"),
    9: np.dtype("int64"),
    10: np.dtype("bool"),
    14: np.dtype(ml_dtypes.bfloat16),
    17: np.dtype("uint16"),
    19: np.dtype("float16"),
    22: np.dtype("uint32"),
    23: np.dtype("uint64"),
}
TF_DTYPE_NAMES = {7: "string", 8: "complex64", 18: "complex128", 20: "resource", 21: "variant"}
_NUMPY_TO_TF = {dtype: code for code, dtype in TF_DTYPES.items()}
_DATA_SHARD = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STATE_FILE_LIMIT = 1 << 20  # bytes; TF's state files are a few lines
_INDEX_LIMIT = 1 << 30  # bytes; an index of a million variables is ~100 MB
_LITTLE, _BIG = 0, 1  # BundleHeaderProto.Endianness


def _read_state_file(state):
    """``model_checkpoint_path`` of a TF ``checkpoint`` state file, or None."""
    try:
        with open(state, "rb") as f:
            text = f.read(_STATE_FILE_LIMIT + 1)
    except OSError as e:
        raise CheckpointError(f"Cannot read TensorFlow state file {state!r} ({e}).") from None
    if len(text) > _STATE_FILE_LIMIT:
        raise CheckpointError(
            f"TensorFlow state file {state!r} is over {_STATE_FILE_LIMIT} bytes; TensorFlow "
            "writes a few lines there. Delete it or pass the checkpoint prefix itself."
        )
    match = re.search(r'^model_checkpoint_path:\s*"(.*)"', text.decode("utf-8", "replace"), re.M)
    return match.group(1) if match else None


def resolve_prefix(path):
    """Find the checkpoint prefix behind a path, or None if it is not a TF checkpoint.

    Accepts the prefix itself (``.../bert_model.ckpt``), its ``.index`` or a
    ``.data-*`` file, or a folder holding one checkpoint or a ``checkpoint`` state file.

    The prefix a state file names must lie in the state file's folder
    (:func:`inside_folder`). TensorFlow 2 writes it relative to the folder; TensorFlow 1
    wrote absolute paths, accepted when they lead into the folder. A path that leads out
    of it (a checkpoint moved from where it was written, or a crafted file) is not
    followed: the checkpoint of the same name in the folder is used, and without one it
    is an error naming the state file, the path and the folder.

    Args:
        path: the path the user gave.

    Example:

    >>> resolve_prefix("/no/such/folder") is None
    True
    """
    path = os.fspath(path)
    if path.endswith(".index") and os.path.isfile(path):
        return path[: -len(".index")]
    if _DATA_SHARD.search(path) and os.path.isfile(path):
        return _DATA_SHARD.sub("", path)
    if os.path.isfile(path + ".index"):
        return path
    if not os.path.isdir(path):
        return None
    state = os.path.join(path, "checkpoint")
    named = _read_state_file(state) if os.path.isfile(state) else None
    if named:
        prefix = inside_folder(path, named)
        if prefix is not None and os.path.isfile(prefix + ".index"):
            return prefix
        # The name's last component, in this folder (TF1 on Windows wrote backslashes).
        local = inside_folder(path, re.split(r"[\\/]", named)[-1])
        if local is not None and os.path.isfile(local + ".index"):
            return local  # a checkpoint moved from where it was written
        if prefix is None:
            raise CheckpointError(
                f"TensorFlow state file {state!r} names checkpoint {named!r}, which lies "
                f"outside the checkpoint's folder {path!r}, and the folder holds no "
                "checkpoint of that name; kerasbert opens only files inside the folder. "
                "Pass the prefix of the checkpoint you mean (e.g. .../bert_model.ckpt)."
            )
    indexes = sorted(
        f
        for f in os.listdir(path)
        if f.endswith(".index") and os.path.isfile(os.path.join(path, f))
    )
    if len(indexes) > 1:
        raise CheckpointError(
            f"Folder {path!r} holds several TensorFlow checkpoints ({indexes}); pass the "
            "prefix of the one you want (e.g. .../model.ckpt-1000)."
        )
    return os.path.join(path, indexes[0][: -len(".index")]) if indexes else None


class TFCheckpoint(Checkpoint):
    """A TensorFlow V2 checkpoint read with numpy alone.

    Args:
        prefix: the checkpoint prefix (see :func:`resolve_prefix` for accepted paths).
        verify_checksums: check each tensor's CRC-32C when it is read.

    Example:

    >>> import numpy as np, tempfile, os
    >>> prefix = os.path.join(tempfile.mkdtemp(), "model.ckpt")
    >>> write_tf_checkpoint(prefix, {"bert/pooler/dense/bias": np.arange(3, dtype="float32")})
    >>> TFCheckpoint(prefix).read("bert/pooler/dense/bias").tolist()
    [0.0, 1.0, 2.0]
    """

    format = "tensorflow"

    def __init__(self, prefix, verify_checksums=True):
        resolved = resolve_prefix(prefix)
        if resolved is None:
            raise CheckpointError(
                f"No TensorFlow checkpoint at {os.fspath(prefix)!r} (looked for "
                f"{os.fspath(prefix)}.index); pass the prefix, e.g. .../bert_model.ckpt."
            )
        super().__init__(resolved)
        self.verify_checksums = verify_checksums
        self._maps = {}
        self._source = {}
        index_path = resolved + ".index"
        entries = _read_index(index_path)
        if not entries or entries[0][0] != b"":
            raise CheckpointError(f"{index_path!r} has no bundle header (corrupt index).")
        header = _message(entries[0][1], index_path, "the bundle header")
        self.num_shards = _scalar(header, 1, int, 1, index_path, "the bundle header")
        endianness = _scalar(header, 2, int, _LITTLE, index_path, "the bundle header")
        if endianness not in (_LITTLE, _BIG):
            raise CheckpointError(
                f"{index_path!r}: the bundle header gives endianness {endianness}, which is "
                "neither little- (0) nor big-endian (1); the index is corrupt."
            )
        self.big_endian = endianness == _BIG
        if not 1 <= self.num_shards <= 100000:
            raise CheckpointError(f"{index_path!r}: implausible shard count {self.num_shards}")
        sources = []
        self._slice_entries = []  # (key, BundleEntryProto bytes) of partitioned data
        for key, value in entries[1:]:
            if key.startswith(b"\x00"):
                self._slice_entries.append((key, value))
                continue  # the data of one slice of a partitioned variable
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                raise CheckpointError(f"{index_path!r}: a variable name is not UTF-8") from None
            info = self._parse_entry(name, value, index_path)
            self._source[name] = info
            sources.append(Entry(name, info["shape"], info["dtype_name"]))
        self._add_translated(sources)

    def _parse_entry(self, name, value, index_path):
        where = f"variable {name!r}"
        fields = _message(value, index_path, where)
        if 7 in fields:
            return {"shape": (), "dtype_name": "sliced", "sliced": True}
        dtype_code = _scalar(fields, 1, int, 0, index_path, where)
        dims = []
        for shape_bytes in _repeated(fields, 2, bytes, index_path, where):
            shape = _message(shape_bytes, index_path, where)
            for dim_bytes in _repeated(shape, 2, bytes, index_path, where):
                dim = _message(dim_bytes, index_path, where)
                dims.append(pb.to_signed64(_scalar(dim, 1, int, 0, index_path, where)))
        if any(d < 0 for d in dims):
            raise CheckpointError(f"{index_path!r}: variable {name!r} has a negative dimension")
        dtype = TF_DTYPES.get(dtype_code)
        info = {
            "shape": tuple(dims),
            "dtype": dtype,
            "dtype_name": dtype.name
            if dtype is not None
            else TF_DTYPE_NAMES.get(dtype_code, f"tf-dtype-{dtype_code}"),
            "shard": _scalar(fields, 3, int, 0, index_path, where),
            "offset": pb.to_signed64(_scalar(fields, 4, int, 0, index_path, where)),
            "size": pb.to_signed64(_scalar(fields, 5, int, 0, index_path, where)),
            "crc32c": _scalar(fields, 6, int, None, index_path, where),
            "sliced": False,
        }
        if info["shard"] >= self.num_shards or info["offset"] < 0 or info["size"] < 0:
            raise CheckpointError(f"{index_path!r}: variable {name!r} has a bad location")
        return info

    def _shard(self, shard):
        if shard not in self._maps:
            path = self.shard_path(shard)
            if not os.path.isfile(path):
                state = "is not a regular file" if os.path.exists(path) else "is missing"
                raise CheckpointError(
                    f"Data shard {path!r} of checkpoint {self.path!r} {state}; copy every "
                    f".data-*-of-{self.num_shards:05d} file beside the .index file."
                )
            try:
                size = os.path.getsize(path)
                data = np.memmap(path, np.uint8, mode="r") if size else np.zeros(0, np.uint8)
            except (OSError, ValueError) as e:
                raise CheckpointError(f"Cannot read data shard {path!r} ({e}).") from None
            self._maps[shard] = (data, path)
        return self._maps[shard]

    def _read(self, entry):
        info = self._source[entry.source_name]
        name = entry.source_name
        if info["sliced"]:
            raise CheckpointError(
                f"Variable {name!r} in {self.path!r} is partitioned (saved in slices), "
                "which kerasbert does not support; re-save it unpartitioned."
            )
        dtype = info["dtype"]
        if dtype is None:
            raise CheckpointError(
                f"Variable {name!r} in {self.path!r} has dtype {info['dtype_name']}, which "
                "kerasbert cannot read (supported: float16/32/64, bfloat16, ints, bool)."
            )
        data, path = self._shard(info["shard"])
        offset, size = info["offset"], info["size"]
        expected = math.prod(info["shape"]) * dtype.itemsize  # Python ints: no overflow
        if size != expected:
            raise CheckpointError(
                f"Variable {name!r} in {self.path!r}: {size} bytes stored for shape "
                f"{info['shape']} of {dtype.name} ({expected} expected); corrupt index."
            )
        if offset + size > data.size:
            raise CheckpointError(
                f"Variable {name!r} runs past the end of {path!r} (bytes {offset}-"
                f"{offset + size} of {data.size}); the data file is truncated."
            )
        # Copy the bytes out of the memory map (a model must never alias a file that may
        # change later), check them, and give the mapped pages back so RSS stays at about
        # one copy of the weights.
        raw = np.array(data[offset : offset + size])
        _release_pages(data, offset, size)
        checked = self.verify_checksums and info["crc32c"] is not None
        if checked and crc32c(raw) != unmask(info["crc32c"]):
            raise CheckpointError(
                f"Checksum mismatch for variable {name!r} in {path!r}: the data file is "
                "corrupt; download or copy it again."
            )
        array = raw.view(dtype.newbyteorder(">") if self.big_endian else dtype)
        array = array.reshape(info["shape"])
        if self.big_endian:
            array = array.astype(dtype)
        if dtype == np.dtype(ml_dtypes.bfloat16):
            array = array.astype(np.float32)  # numpy and Keras variables have no bfloat16
        return array

    def check_files(self):
        needed = {}
        for info in self._source.values():
            if not info["sliced"]:
                end = info["offset"] + info["size"]
                needed[info["shard"]] = max(needed.get(info["shard"], 0), end)
        for shard, end in sorted(needed.items()):
            data, path = self._shard(shard)
            if data.size < end:
                raise CheckpointError(
                    f"Data file {path!r} has {data.size} bytes but its index places "
                    f"variables up to byte {end}; the file is truncated: download or copy it "
                    "again."
                )

    def shard_path(self, shard):
        """The path of data shard number ``shard``."""
        return f"{self.path}.data-{shard:05d}-of-{self.num_shards:05d}"

    def data_spans(self):
        """``{shard: [(offset, size, what)]}``: where the index places every tensor's bytes,
        partitioned variables' slices included (for :func:`kerasbert.checkpoints.verify`)."""
        spans = {shard: [] for shard in range(self.num_shards)}
        for name, info in self._source.items():
            if not info["sliced"]:
                spans[info["shard"]].append((info["offset"], info["size"], repr(name)))
        index_path = self.path + ".index"
        for key, value in self._slice_entries:
            what = f"a slice of {key[1:].decode('utf-8', 'backslashreplace')!r}"
            info = self._parse_entry(what, value, index_path)
            if not info["sliced"]:
                spans[info["shard"]].append((info["offset"], info["size"], what))
        return spans

    def stored_dtype(self, name):
        """The dtype as stored (``bfloat16`` is read as float32)."""
        return self._source[self.entry(name).source_name]["dtype_name"]

    def file_of(self, source_name):
        info = self._source.get(source_name)
        return self.path if info is None or info["sliced"] else self.shard_path(info["shard"])

    def close(self):
        self._maps.clear()


def _read_index(index_path):
    """The ``(key, value)`` entries of a bundle's ``.index`` table."""
    try:
        size = os.path.getsize(index_path)
        if size > _INDEX_LIMIT:
            raise CheckpointError(
                f"{index_path!r} is {size} bytes, more than any checkpoint index kerasbert "
                f"reads ({_INDEX_LIMIT}); it is not a checkpoint index, or is corrupt."
            )
        with open(index_path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckpointError(f"Cannot read checkpoint index {index_path!r} ({e}).") from None
    try:
        return read_table(data, index_path)
    except CheckpointError as e:
        if index_path in str(e):
            raise
        raise CheckpointError(f"{index_path!r}: {e}; the index is corrupt.") from None
    except Exception as e:  # struct / index arithmetic on malformed bytes
        raise CheckpointError(
            f"{index_path!r} is not a readable checkpoint index ({type(e).__name__}: {e}); "
            "it is corrupt: download or copy it again."
        ) from None


def _message(data, index_path, where):
    """A protobuf message of the index, decoded; errors name the file and the entry."""
    try:
        return pb.parse_message(data)
    except CheckpointError as e:
        raise CheckpointError(
            f"{index_path!r}: {where} is not a valid protobuf message ({e}); the index is corrupt."
        ) from None


def _repeated(fields, number, kind, index_path, where):
    values = fields.get(number, [])
    if any(not isinstance(v, kind) for v in values):
        raise CheckpointError(
            f"{index_path!r}: field {number} of {where} has the wrong protobuf wire type; "
            "the index is corrupt."
        )
    return values


def _scalar(fields, number, kind, default, index_path, where):
    """A singular field (the last value wins, as in protobuf), checked for its type."""
    values = _repeated(fields, number, kind, index_path, where)
    return values[-1] if values else default


def _release_pages(data, offset, size):
    """Drop the mapped pages of bytes [offset, offset + size) from this process."""
    mapping = getattr(data, "_mmap", None)
    if mapping is None or not hasattr(mapping, "madvise") or size < mmap.PAGESIZE:
        return
    start = offset - offset % mmap.PAGESIZE
    with contextlib.suppress(OSError, ValueError):  # advice only
        mapping.madvise(mmap.MADV_DONTNEED, start, offset + size - start)


def write_tf_checkpoint(prefix, arrays):
    """Write arrays as a TensorFlow V2 checkpoint readable by ``tf.train.load_variable``.

    Writes ``PREFIX.index``, ``PREFIX.data-00000-of-00001`` and a ``checkpoint`` state file
    beside them. Files are written to temporary names and renamed at the end, so an
    interrupted write leaves no half checkpoint under the final name.

    Args:
        prefix: the checkpoint prefix, e.g. ``out/bert_model.ckpt``.
        arrays: mapping of variable name -> numpy array (float16/32/64, bfloat16, ints,
            bool).

    Example:

    >>> import numpy as np, tempfile, os
    >>> prefix = os.path.join(tempfile.mkdtemp(), "bert_model.ckpt")
    >>> write_tf_checkpoint(prefix, {"global_step": np.array(7, "int64")})
    >>> sorted(os.listdir(os.path.dirname(prefix)))
    ['bert_model.ckpt.data-00000-of-00001', 'bert_model.ckpt.index', 'checkpoint']
    """
    prefix = os.fspath(prefix)
    folder = os.path.dirname(prefix) or "."
    os.makedirs(folder, exist_ok=True)
    data_path = prefix + ".data-00000-of-00001"
    index_entries = []
    offset = 0
    with open(data_path + ".tmp", "wb") as data_file:
        for name in sorted(arrays, key=lambda n: n.encode("utf-8")):
            array = np.asarray(arrays[name])
            code = _NUMPY_TO_TF.get(array.dtype.newbyteorder("="))
            if code is None:
                raise CheckpointError(f"Cannot write {name!r}: unsupported dtype {array.dtype}")
            raw = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
            raw_bytes = raw.reshape(-1).view(np.uint8)
            data_file.write(raw_bytes.tobytes())
            dims = b"".join(
                pb.field(2, pb.BYTES, pb.field(1, pb.VARINT, d) if d else b"") for d in array.shape
            )
            entry = pb.field(1, pb.VARINT, code) + pb.field(2, pb.BYTES, dims)
            if offset:
                entry += pb.field(4, pb.VARINT, offset)
            if raw_bytes.size:
                entry += pb.field(5, pb.VARINT, raw_bytes.size)
            entry += pb.field(6, pb.FIXED32, mask(crc32c(raw_bytes)))
            index_entries.append((name.encode("utf-8"), entry))
            offset += raw_bytes.size
    header = pb.field(1, pb.VARINT, 1) + pb.field(3, pb.BYTES, pb.field(1, pb.VARINT, 1))
    with open(prefix + ".index.tmp", "wb") as index_file:
        index_file.write(write_table([(b"", header)] + index_entries))
    os.replace(data_path + ".tmp", data_path)
    os.replace(prefix + ".index.tmp", prefix + ".index")
    name = os.path.basename(prefix)
    with open(os.path.join(folder, "checkpoint"), "w", encoding="utf-8") as f:
        f.write(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
