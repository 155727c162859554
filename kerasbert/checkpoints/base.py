"""The Checkpoint abstraction: canonical names -> lazily read numpy arrays.

Every format reader subclasses :class:`Checkpoint`. A reader lists its variables as
:class:`Entry` objects under their *source* names; the family registry's name tables
(:func:`kerasbert.families.translate_stored_names`) map those to the canonical names (the
original release's TF names, ``bert/encoder/layer_0/attention/self/query/kernel``) that
every model's variable mapping speaks, noting where a tensor must be transposed on the way
(torch ``Linear`` weights are stored ``(out, in)``, TF kernels ``(in, out)``).
"""

import difflib
import json
import os
from dataclasses import dataclass

import numpy as np

from kerasbert import families
from kerasbert.checkpoints.loading import load_weights
from kerasbert.errors import CheckpointError


@dataclass(frozen=True)
class Entry:
    """One stored variable: where it is, its stored shape and dtype.

    Attributes:
        source_name: the name in the file (e.g. ``bert.embeddings.word_embeddings.weight``).
        shape: the stored shape.
        dtype: the stored numpy dtype name.
        transpose: whether the canonical variable is the transpose of the stored one.
        part: ``(index, count)``: the canonical variable is part ``index`` of ``count``
            equal parts of the stored tensor's last axis (GPT-2's fused query / key /
            value); ``(0, 1)``: all of it.
        squeeze: the stored tensor has extra leading axes of size 1 (OpenAI's ``conv1d``
            weights ``[1, in, out]``), dropped from the canonical one.

    Example:

    >>> Entry("c_attn", (1, 4, 12), "float32", part=(2, 3), squeeze=True).canonical_shape
    (4, 4)
    """

    source_name: str
    shape: tuple
    dtype: str
    transpose: bool = False
    part: tuple = (0, 1)
    squeeze: bool = False

    @property
    def canonical_shape(self):
        shape = list(self.shape)
        while self.squeeze and len(shape) > 2 and shape[0] == 1:
            shape.pop(0)
        index, count = self.part
        if count > 1 and shape:
            shape[-1] //= count
        return tuple(reversed(shape)) if self.transpose else tuple(shape)

    def canonical(self, array):
        """The canonical variable from the stored ``array``."""
        while self.squeeze and array.ndim > 2 and array.shape[0] == 1:
            array = array[0]
        index, count = self.part
        if count > 1:
            if array.shape[-1] % count:
                raise CheckpointError(
                    f"Variable {self.source_name!r} holds {count} tensors side by side, but "
                    f"its last axis ({array.shape[-1]}) is not divisible by {count}; the "
                    "checkpoint does not fit this model's layout."
                )
            size = array.shape[-1] // count
            array = array[..., index * size : (index + 1) * size]
        return array.T if self.transpose else array


class Checkpoint:
    """A read-only view of a checkpoint under canonical variable names.

    Subclasses set ``format`` and ``naming`` (whose names the file stores: ``"hf"``,
    ``"hf_tf"``, ``"tensorflow"``), fill ``self._entries`` (canonical name -> Entry) with
    :meth:`_add_translated`, and implement ``_read(entry)`` returning the stored array.
    Arrays are read only when asked for, one at a time, so loading holds about one copy of
    the weights. :meth:`load_into` loads the checkpoint into a model; a format whose
    names are not canonical (Keras ``.weights.h5``) overrides it.

    Attributes:
        path: the file or TF prefix read.
        family_hint: the family whose naming the stored names follow, when the format's
            own names tell (HF ``albert.`` names), else None.
        ignored_names: stored names that hold no model weight (``position_ids``, ...).
        kerasbert_checksums: ``{stored name: crc32c}`` that kerasbert recorded when it
            wrote the file (:mod:`kerasbert.checkpoints.integrity`), checked on reading;
            None when the file has none.
        checksummed_files: the files of the checkpoint that carry such checksums.

    Example:

    >>> import numpy as np
    >>> ckpt = ArrayCheckpoint({"bert/pooler/dense/bias": np.zeros(4, "float32")})
    >>> ckpt.shape("bert/pooler/dense/bias"), "bert/pooler/dense/bias" in ckpt
    ((4,), True)
    """

    format = "unknown"
    naming = "tensorflow"
    names_are_canonical = True  # whether names() are canonical names a family can read

    def __init__(self, path):
        self.path = path
        self._entries = {}
        self.family_hint = None
        self.ignored_names = []
        self._ignored_entries = {}  # stored name -> Entry of what holds no model weight
        self.kerasbert_checksums = None
        self.checksummed_files = set()

    # -- queries -------------------------------------------------------------------------
    def names(self):
        """Canonical names of the stored variables, sorted."""
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def __len__(self):
        return len(self._entries)

    def entry(self, name):
        try:
            return self._entries[name]
        except KeyError:
            raise CheckpointError(
                f"Variable {name!r} is not in checkpoint {self.path!r}{self.suggest(name)}."
            ) from None

    def shape(self, name):
        """Canonical shape of a variable, without reading it."""
        return self.entry(name).canonical_shape

    def dtype(self, name):
        return self.entry(name).dtype

    def suggest(self, name, n=3):
        """A ``"; nearest names: ..."`` hint for a name that is not here (or '')."""
        close = difflib.get_close_matches(name, self._entries, n=n, cutoff=0.5)
        return f"; nearest names in the checkpoint: {close}" if close else ""

    def read(self, name):
        """Read one variable as a numpy array in canonical layout."""
        entry = self.entry(name)
        return entry.canonical(self._read_checked(entry))

    def stored_entries(self):
        """Every stored tensor, model weights and ignored buffers alike: ``{stored name:
        Entry}`` (for checking a whole file, :func:`kerasbert.checkpoints.verify`)."""
        entries = {e.source_name: e for e in self._entries.values()}
        entries.update(self._ignored_entries)
        return dict(sorted(entries.items()))

    def read_stored(self, source_name):
        """Read one stored tensor by its stored name, as stored (not transposed)."""
        entry = self.stored_entries().get(source_name)
        if entry is None:
            raise CheckpointError(f"{self.path!r} stores no tensor {source_name!r}.")
        return self._read_checked(entry)

    def file_of(self, source_name):
        """The file holding a stored tensor's data (the checkpoint's path by default)."""
        return self.path

    def _read_checked(self, entry):
        try:
            array = np.asarray(self._read(entry))
        except CheckpointError:
            raise
        except Exception as e:  # a reader library's own error: corrupt or truncated data
            raise CheckpointError(
                f"Could not read variable {entry.source_name!r} from {self.path!r} ({e}); "
                "the file may be truncated or corrupt: download or convert it again."
            ) from None
        if tuple(array.shape) != tuple(entry.shape):
            raise CheckpointError(
                f"Variable {entry.source_name!r} in {self.path!r} reads as shape {array.shape} "
                f"but the file's header says {entry.shape}; the file is corrupt."
            )
        return array

    def num_parameters(self, names=None):
        """Elements over ``names`` (default: every variable)."""
        names = self._entries if names is None else names
        return int(sum(int(np.prod(self._entries[n].canonical_shape)) for n in names))

    def check_files(self):
        """Raise a CheckpointError if a data file the variables need is missing or too
        short, without reading the variables (formats that validate sizes on opening need
        nothing here)."""

    def load_into(self, model, mapping, **options):
        """Assign this checkpoint's variables to ``model`` through a variable mapping.

        Args:
            model: a built ``keras.Model``.
            mapping: ``{layer name: {variable path: source}}``
                (:func:`kerasbert.checkpoints.load_weights`).
            **options: the options of :func:`kerasbert.checkpoints.load_weights`.

        Returns:
            A :class:`kerasbert.checkpoints.LoadReport`.
        """
        return load_weights(model, self, mapping, **options)

    def close(self):
        """Release open files (readers that keep none need not override)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<{type(self).__name__} {self.format} {self.path!r}: {len(self)} variables>"

    # -- for subclasses ----------------------------------------------------------------
    def _read(self, entry):
        raise NotImplementedError

    def _add_translated(self, source_entries, normalize=None):
        """Fill ``_entries`` from source-named entries, translated from ``self.naming``.

        ``normalize(source_name)``, if given, spells a stored name as the naming's tables
        read it (e.g. without an h5 group). Sets :attr:`family_hint`; stored names that
        hold no model weight (buffers, tied copies) go to :attr:`ignored_names`.
        """
        source_entries = list(source_entries)
        stored = [normalize(e.source_name) if normalize else e.source_name for e in source_entries]
        self.family_hint, translated = families.translate_stored_names(self.naming, stored)
        for entry, name in zip(source_entries, stored):
            placements = translated[name]
            if placements is None:
                self.ignored_names.append(entry.source_name)
                self._ignored_entries[entry.source_name] = Entry(
                    entry.source_name, tuple(entry.shape), entry.dtype
                )
                continue
            for placement in placements:
                squeeze = placement.squeeze and len(entry.shape) > 2
                rank = len(entry.shape) - (squeeze and entry.shape[0] == 1)
                self._entries[placement.canonical] = Entry(
                    entry.source_name, tuple(entry.shape), entry.dtype,
                    placement.transpose and rank == 2, placement.part, squeeze,
                )  # fmt: skip


class ArrayCheckpoint(Checkpoint):
    """A checkpoint held in memory: a dict of canonical name -> array.

    Args:
        arrays: mapping of canonical Google names to numpy arrays.
        path: a label used in messages.

    Example:

    >>> import numpy as np
    >>> ArrayCheckpoint({"a": np.ones(2)}).read("a").tolist()
    [1.0, 1.0]
    """

    format = "arrays"

    def __init__(self, arrays, path="<arrays>"):
        super().__init__(path)
        self._arrays = dict(arrays)
        for name, value in self._arrays.items():
            value = np.asarray(value)
            self._entries[name] = Entry(name, tuple(value.shape), value.dtype.name)

    def _read(self, entry):
        return self._arrays[entry.source_name]


class RenamedCheckpoint(Checkpoint):
    """Another checkpoint's variables under other canonical names (nothing is copied or
    read until asked for): the part of a file that holds several models, presented as a
    checkpoint of one (ELECTRA's joint pre-training checkpoints hold a generator and a
    discriminator).

    Args:
        checkpoint: the open :class:`Checkpoint` to present.
        rename: ``{name in checkpoint: name in this view}``; names it lacks keep theirs.
        **attributes: set on the view (e.g. what it was made for, so that it is not made
            twice).

    Example:

    >>> import numpy as np
    >>> inner = ArrayCheckpoint({"generator/x": np.zeros(2), "y": np.ones(1)})
    >>> view = RenamedCheckpoint(inner, {"generator/x": "x"})
    >>> view.names(), view.read("x").tolist(), view.path
    (['x', 'y'], [0.0, 0.0], '<arrays>')
    """

    def __init__(self, checkpoint, rename, **attributes):
        super().__init__(checkpoint.path)
        self.inner = checkpoint
        self.format, self.naming = checkpoint.format, checkpoint.naming
        self.family_hint = checkpoint.family_hint
        self.ignored_names = list(checkpoint.ignored_names)
        self._ignored_entries = dict(checkpoint._ignored_entries)
        self.kerasbert_checksums = checkpoint.kerasbert_checksums
        self.checksummed_files = checkpoint.checksummed_files
        for name in checkpoint.names():
            self._entries[rename.get(name, name)] = checkpoint.entry(name)
        if len(self._entries) != len(checkpoint):
            raise CheckpointError(f"Renaming the variables of {checkpoint.path!r} merged some.")
        for key, value in attributes.items():
            setattr(self, key, value)

    def _read(self, entry):
        return self.inner._read(entry)

    def file_of(self, source_name):
        return self.inner.file_of(source_name)

    def check_files(self):
        self.inner.check_files()

    def close(self):
        self.inner.close()


def inside_folder(folder, name):
    """The path ``name`` (read from a file of ``folder``) names, or None if it leaves it.

    A relative name is joined to ``folder``; an absolute one is taken as it is. Either way
    the directory the path ends in is resolved (symbolic links and ``..`` followed, as the
    OS will) and must be ``folder`` or a folder inside it (resolved the same way). The last
    component itself may be a symbolic link that the folder holds: the folder's owner put
    it there (HF's cache links every file of a snapshot to a blob outside it), while the
    name came from a file, which anyone may have written.

    Args:
        folder: the checkpoint's folder.
        name: the path as written in the file.

    Example:

    >>> inside_folder("/data/model", "shard-1.safetensors")
    '/data/model/shard-1.safetensors'
    >>> inside_folder("/data/model", "../../etc/passwd") is None
    True
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        return None
    folder = os.fspath(folder) or "."
    path = name if os.path.isabs(name) else os.path.join(folder, name)
    root = os.path.realpath(folder)
    parent = os.path.realpath(os.path.dirname(path))
    if os.path.commonpath([root, parent]) != root:
        return None
    return path


def read_shard_index(path):
    """``{tensor name: shard file path}`` from an HF ``*.index.json`` shard index.

    Every shard it names must be a regular file in the index's own folder: a name that is
    absolute, climbs out with ``..`` or leads out through a linked directory is refused
    before anything is opened (:func:`inside_folder`), so
    an index written by a stranger cannot make kerasbert read other files.

    Args:
        path: the ``model.safetensors.index.json`` / ``pytorch_model.bin.index.json``.
    """
    limit = 64 << 20  # bytes; HF's indexes are ~100 KB even for the largest models
    if not os.path.isfile(path):
        raise CheckpointError(f"Shard index {path!r} is not a regular file.")
    try:
        if os.path.getsize(path) > limit:
            raise ValueError(f"it is over {limit} bytes")
        with open(path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError("'weight_map' is not a non-empty object")
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise CheckpointError(
            f"{path!r} is not a valid shard index ({e}); it needs a 'weight_map' of tensor "
            "name -> shard file."
        ) from None
    folder = os.path.dirname(path) or "."
    shard_of = {}
    for name, file in weight_map.items():
        if not isinstance(file, str) or not file:
            raise CheckpointError(
                f"Shard index {path!r} gives tensor {name!r} the shard {file!r}, which is not "
                "a file name; the index is corrupt: download it again."
            )
        shard = inside_folder(folder, file)
        if shard is None:
            raise CheckpointError(
                f"Shard index {path!r} names shard {file!r} (for tensor {name!r}), which lies "
                f"outside the index's folder {folder!r}; kerasbert opens only shards beside "
                "the index. The index is corrupt or crafted: download it again from the "
                "model's source."
            )
        shard_of[name] = shard
    for file in sorted(set(shard_of.values())):
        if not os.path.isfile(file):
            state = "is not a regular file" if os.path.exists(file) else "is missing"
            raise CheckpointError(
                f"Shard {file!r} named in {path!r} {state}; download every shard."
            )
    return shard_of
