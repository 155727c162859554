"""Reader of HF transformers' TensorFlow weights, ``tf_model.h5`` (read with h5py).

This module also holds what both HDF5 readers (this one and Keras ``.weights.h5``,
:mod:`kerasbert.checkpoints.keras_h5`) use to open a stranger's HDF5 file safely,
:func:`open_hdf5`. HDF5 can make a dataset's bytes come from somewhere else: external
storage (``create_dataset(..., external=...)``: raw bytes of any file, a FIFO included),
virtual datasets (a mapping onto datasets of other HDF5 files) and external links (a name
that opens another file). Followed, any of them reads files outside the checkpoint, or
blocks forever on a FIFO. Neither Keras nor HF writes them, so a file that uses them is
refused, before any of its data is read.

An HDF5 file kerasbert wrote carries a CRC-32C of each dataset in its ``kerasbert_crc32c``
attribute (:mod:`kerasbert.checkpoints.integrity`); :func:`read_dataset` checks it.
"""

import mmap
import os
import re

import h5py
from h5py import h5d, h5l, h5z

from kerasbert.checkpoints import integrity
from kerasbert.checkpoints.base import Checkpoint, Entry
from kerasbert.errors import CheckpointError

# HF's Keras models store e.g.
# "bert/tf_bert_for_pre_training/bert/encoder/layer_._0/attention/self/query/kernel:0": an h5
# group, the Keras model's scope (tf_*), list items as "layer_._N", and embedding layers'
# own weight names. These conventions are the same for every HF TF model.
_HF_KERAS_CONVENTIONS = [
    (re.compile(r":\d+$"), ""),
    (re.compile(r"^(?:[^/]+/)*?tf_\w+?/"), ""),
    (re.compile(r"_\._(\d+)(/|$)"), r"_\1\2"),
    (re.compile(r"_embeddings/(weight|embeddings)$"), "_embeddings"),
]

# Dataset layouts whose bytes live in the file itself (COMPACT: inside the object header).
_IN_FILE_LAYOUTS = {h5d.CONTIGUOUS: "contiguous", h5d.CHUNKED: "chunked", h5d.COMPACT: "compact"}
# Filters built into HDF5 and h5py. Any other filter id makes HDF5 search its plugin path for
# a shared library to load, i.e. run code, so it is refused rather than looked for.
_BUILTIN_FILTERS = {
    h5z.FILTER_DEFLATE,
    h5z.FILTER_SHUFFLE,
    h5z.FILTER_FLETCHER32,
    h5z.FILTER_SZIP,
    h5z.FILTER_NBIT,
    h5z.FILTER_SCALEOFFSET,
    h5z.FILTER_LZF,
}
_CORRUPT = "it may be truncated or corrupt: download or convert it again"


def _text(name):
    return name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else str(name)


def _refuse(path, name, why):
    return CheckpointError(
        f"HDF5 file {path!r}: {_text(name)!r} {why}. kerasbert reads only data stored in the "
        "checkpoint file itself (neither Keras nor HF writes such files); the file is "
        "corrupt or was crafted to read other files: do not use it, get the checkpoint "
        "again from its source."
    )


def check_dataset_storage(path, name, dataset):
    """Raise unless ``dataset``'s bytes are stored in its own file, in a layout h5py reads
    with HDF5's built-in code (contiguous, chunked or compact; built-in filters only).

    Looks only at the dataset's creation properties (no data, not even its shape, is read:
    a virtual dataset's shape may open its source files).

    Args:
        path: the HDF5 file (for messages).
        name: the dataset's name in the file.
        dataset: the open ``h5py.Dataset``.
    """
    plist = dataset.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5d.VIRTUAL:
        sources = sorted(
            {_text(plist.get_virtual_filename(i)) for i in range(plist.get_virtual_count())}
        )
        raise _refuse(path, name, f"is a virtual dataset mapping data from {sources}")
    external = plist.get_external_count()
    if external:
        files = [_text(plist.get_external(i)[0]) for i in range(external)]
        raise _refuse(path, name, f"keeps its data in external file(s) {files}")
    if layout not in _IN_FILE_LAYOUTS:
        raise _refuse(path, name, f"has HDF5 storage layout {layout}, which kerasbert refuses")
    for i in range(plist.get_nfilters()):
        code, _, _, filter_name = plist.get_filter(i)
        if code not in _BUILTIN_FILTERS:
            raise CheckpointError(
                f"HDF5 file {path!r}: dataset {_text(name)!r} is compressed with filter "
                f"{code} ({_text(filter_name)!r}), which is not built into HDF5; kerasbert "
                "does not load HDF5 filter plugins (they are code). Re-save the weights "
                "without that filter (e.g. gzip or no compression)."
            )


def check_hdf5_file(path, file):
    """Check a whole open HDF5 file before anything in it is read; return its datasets.

    Every name must be a hard link (no soft links, no external links to other files), and
    every dataset must pass :func:`check_dataset_storage`.

    Args:
        path: the file's path (for messages).
        file: the open ``h5py.File``.

    Returns:
        ``[(name, h5py.Dataset)]`` in h5py's visiting order.
    """
    names = []
    file.id.links.visit(names.append)  # every link, without following soft / external ones
    for name in names:
        kind = file.id.links.get_info(name).type
        if kind == h5l.TYPE_EXTERNAL:
            target_file, target = file.id.links.get_val(name)
            raise _refuse(
                path, name, f"is an external link to {_text(target)!r} in file "
                f"{_text(target_file)!r}"
            )  # fmt: skip
        if kind == h5l.TYPE_SOFT:
            target = file.id.links.get_val(name)
            raise _refuse(path, name, f"is a soft link (to {_text(target)!r})")
        if kind != h5l.TYPE_HARD:
            raise _refuse(path, name, f"is a user-defined HDF5 link (type {kind})")
    datasets = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            check_dataset_storage(path, name, obj)
            datasets.append((name, obj))

    file.visititems(visit)
    return datasets


_HEAP_SIGNATURE = b"GCOL"  # a global heap collection: variable-length data (strings)
_HEAP_MIN_SIZE = 4096  # HDF5's H5HG_MINSIZE: it refuses smaller collections


def check_global_heaps(path, file):
    """Raise if a global heap collection in the file would make HDF5 loop forever.

    HDF5 keeps variable-length data (the layer-name strings Keras records) in global heap
    collections: ``GCOL``, version 1, 3 reserved bytes, the collection's size, then its
    objects (index, reference count, 4 reserved bytes, size, data). Decoding one, HDF5
    steps from object to object by their sizes, in size_t arithmetic and without checking
    that a step is positive: by zero over a free-space object (index 0) of size 0 (zeroed
    bytes), backwards over a size that wraps around (0xFF bytes). Either hangs the first
    read of any string, in C, where no timeout reaches. Every collection HDF5 would decode
    (found by its signature; one running past the end of the file HDF5 refuses) is walked
    the same way first, and an object whose step does not land inside the collection,
    after it, is refused.

    Args:
        path: the HDF5 file.
        file: the same file, open (for the size of its length fields).
    """
    n = file.id.get_create_plist().get_sizes()[1]  # bytes of a length field (8 by default)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = data.find(_HEAP_SIGNATURE)
        while start >= 0:
            size = int.from_bytes(data[start + 8 : start + 8 + n], "little")
            end = start + size
            version = data[start + 4 : start + 5]
            if version == b"\x01" and _HEAP_MIN_SIZE <= size <= len(data) - start:
                at = start + 8 + n
                while at + 8 + n <= end:  # a shorter tail is free space
                    index = int.from_bytes(data[at : at + 2], "little")
                    length = int.from_bytes(data[at + 8 : at + 8 + n], "little")
                    # HDF5's step, in its size_t arithmetic: a huge size wraps around
                    aligned = ((length + 7) % 2**64) // 8 * 8
                    step = (8 + n + aligned) % 2**64 if index else length
                    if not 0 < step <= end - at:
                        raise CheckpointError(
                            f"HDF5 file {path!r}: the global heap at byte {start} holds an "
                            f"object at byte {at} of size {length}, which HDF5 steps over "
                            f"by {step} bytes: it loops forever (or reads outside the heap) "
                            f"decoding it; {_CORRUPT}."
                        )
                    at += step
            start = data.find(_HEAP_SIGNATURE, start + 1)


def open_hdf5(path):
    """Open a stranger's HDF5 file for reading, checked by :func:`check_hdf5_file`.

    Every error of h5py (and of HDF5 underneath) is a :class:`CheckpointError` naming the
    file.

    Returns:
        ``(h5py.File, [(dataset name, h5py.Dataset)])``; the caller closes the file.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path!r} is not a regular file; pass the checkpoint file itself.")
    try:
        file = h5py.File(path, "r")
    except Exception as e:
        raise CheckpointError(f"{path!r} is not a readable HDF5 file ({e}); {_CORRUPT}.") from None
    try:
        check_global_heaps(path, file)
        return file, check_hdf5_file(path, file)
    except CheckpointError:
        file.close()
        raise
    except Exception as e:
        file.close()
        raise CheckpointError(f"HDF5 file {path!r} is unreadable ({e}); {_CORRUPT}.") from None


def dataset_entry(path, name, dataset, numeric=False):
    """The :class:`Entry` of a checked dataset (its name must be UTF-8 text).

    Args:
        numeric: refuse what cannot be a model weight: a dtype that is not bool, int,
            uint or float, or a null dataspace (no data at all).
    """
    if not isinstance(name, str):
        raise CheckpointError(
            f"HDF5 file {path!r}: a dataset name ({_text(name)!r}) is not UTF-8 text; {_CORRUPT}."
        )
    try:
        shape, dtype = dataset.shape, dataset.dtype
    except Exception as e:
        raise CheckpointError(
            f"HDF5 file {path!r}: dataset {name!r} has an unreadable shape or type ({e}); "
            f"{_CORRUPT}."
        ) from None
    if numeric and shape is None:
        raise CheckpointError(
            f"HDF5 file {path!r}: dataset {name!r} has no data (an HDF5 null dataspace); it "
            "cannot be a model weight."
        )
    if numeric and dtype.kind not in "biuf":
        raise CheckpointError(
            f"HDF5 file {path!r}: dataset {name!r} holds {dtype} values, not numbers; it "
            "cannot be a model weight (the file is not an HF tf_model.h5, or is corrupt)."
        )
    return Entry(name, tuple(shape or ()), dtype.name)


def dataset_checksums(path, datasets):
    """The kerasbert checksums of checked datasets: ``{name: crc}``, or None if none has one.

    Raises:
        CheckpointError: a malformed checksum attribute, or checksums on only some datasets.
    """
    found = {}
    for name, dataset in datasets:
        crc = integrity.h5_checksum(path, name, dataset)
        if crc is not None:
            found[name] = crc
    missing = [name for name, _ in datasets if name not in found]
    if found and missing:
        raise CheckpointError(
            f"HDF5 file {path!r}: {len(found)} datasets carry kerasbert checksums but "
            f"{missing[:3]} {'does' if len(missing) == 1 else 'do'} not (kerasbert writes one "
            "on every dataset); the file was changed after kerasbert wrote it: convert or "
            "download it again."
        )
    return found or None


def read_dataset(checkpoint, name):
    """Read dataset ``name`` of an open HDF5 checkpoint, checked against its kerasbert
    checksum when it has one."""
    array = checkpoint._file[name][()]
    stored = (checkpoint.kerasbert_checksums or {}).get(name)
    integrity.check_dataset(name, array, stored, checkpoint.path)
    return array


def hf_keras_name(path):
    """An h5 dataset path of ``tf_model.h5`` without HF Keras's scopes and suffixes.

    Example:

    >>> hf_keras_name("bert/tf_bert_model/bert/encoder/layer_._3/output/dense/kernel:0")
    'bert/encoder/layer_3/output/dense/kernel'
    """
    for pattern, replacement in _HF_KERAS_CONVENTIONS:
        path = pattern.sub(replacement, path)
    return path


class HFTensorFlowCheckpoint(Checkpoint):
    """HF ``tf_model.h5`` weights under canonical names.

    The file is checked by :func:`open_hdf5` when opened: a dataset stored outside the
    file, a virtual dataset or a link to another file is refused before anything is read.

    Args:
        path: the ``tf_model.h5`` file.

    Example::

        ckpt = HFTensorFlowCheckpoint("bert-base-chinese/tf_model.h5")
        ckpt.read("bert/encoder/layer_0/attention/self/query/kernel").shape  # (768, 768)
    """

    format = "hf_tf"
    naming = "hf_tf"

    def __init__(self, path):
        path = os.fspath(path)
        super().__init__(path)
        self._file, datasets = open_hdf5(path)
        try:
            sources = [dataset_entry(path, n, d, numeric=True) for n, d in datasets]
            self.kerasbert_checksums = dataset_checksums(path, datasets)
            if self.kerasbert_checksums:
                self.checksummed_files.add(path)
            self._add_translated(sources, normalize=hf_keras_name)
        except BaseException:
            self._file.close()
            raise

    def _read(self, entry):
        return read_dataset(self, entry.source_name)

    def close(self):
        self._file.close()
