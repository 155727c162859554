"""Writing canonical weights as HF transformers ``model.safetensors``.

The inverse of :class:`kerasbert.checkpoints.safetensors_reader.SafetensorsCheckpoint`, from
the same name table: every canonical name becomes the name the family's HF class
(``BertForPreTraining``, ``AlbertForPreTraining``, ``NezhaForPreTraining``, or the bare
``*Model``) gives it, and every Dense kernel is transposed to torch's ``Linear`` layout
``(out, in)``. As in the files HF's ``save_pretrained`` writes, the MLM decoder, which is
tied to the word embeddings (its bias to the prediction bias), is not stored.

The file's metadata is HF's ``{"format": "pt"}`` plus kerasbert's per-tensor CRC-32C under
``"kerasbert.crc32c"`` (:mod:`kerasbert.checkpoints.integrity`), which kerasbert checks when it
reads the file back; HF reads only ``"format"``.
"""

import json
import os

import numpy as np

from kerasbert import families
from kerasbert.checkpoints import integrity
from kerasbert.errors import CheckpointError, ModelTypeError


def _hf_table(family):
    family = families.DEFAULT if family is None else family
    try:
        table = families.name_table(family, "hf")
    except ModelTypeError:
        table = None
    if table is None:
        raise CheckpointError(
            f"No HF transformers naming for family {family!r}; known: "
            f"{[name for name in families.names() if families.name_table(name, 'hf')]}."
        )
    return table


def hf_name(name, family=None):
    """The HF transformers name of a canonical variable, and whether it is transposed.

    Args:
        name: a canonical variable name.
        family: a family name (``"bert"``, ``"albert"``, ``"nezha"``) or ``model=`` name;
            None for :data:`kerasbert.families.DEFAULT`.

    Returns:
        ``(hf_name, transpose)``, or None for a name HF's models have no place for
        (``global_step``, optimizer slots, ...).

    Example:

    >>> hf_name("bert/encoder/layer_3/attention/self/query/kernel")
    ('bert.encoder.layer.3.attention.self.query.weight', True)
    >>> hf_name("bert/encoder/transformer/group_1/inner_group_0/LayerNorm_1/beta", "albert")
    ('albert.encoder.albert_layer_groups.1.albert_layers.0.full_layer_layer_norm.bias', False)
    >>> hf_name("cls/seq_relationship/output_weights", "nezha")
    ('cls.seq_relationship.weight', False)
    >>> hf_name("global_step") is None
    True
    """
    return _hf_table(family).from_canonical(name)


def hf_state_dict(arrays, family=None):
    """Turn canonical arrays into HF transformers names and layouts.

    Kernels are transposed to torch's ``(out, in)``; ``cls/seq_relationship/output_weights``
    is already ``(2, hidden)`` in both. Arrays are returned C-contiguous, values unchanged.

    Args:
        arrays: ``{canonical name: numpy array}``, e.g. from
            :func:`kerasbert.models.export.model_arrays`.
        family: a family name or ``model=`` name (``"roberta"`` is BERT; None:
            :data:`kerasbert.families.DEFAULT`): sets the prefix (``bert.`` / ``albert.`` /
            ``nezha.``) and the layout.

    Raises:
        CheckpointError: naming the variables HF's models have no place for.

    Example:

    >>> import numpy as np
    >>> sd = hf_state_dict({"bert/pooler/dense/kernel": np.arange(6.0).reshape(2, 3)})
    >>> {name: value.shape for name, value in sd.items()}
    {'bert.pooler.dense.weight': (3, 2)}
    """
    table = _hf_table(family)
    state, unknown, fused = {}, [], {}
    for name, value in arrays.items():
        placement = table.place(name)
        if placement is None:
            unknown.append(name)
            continue
        value = np.asarray(value)
        if placement.transpose and value.ndim == 2:
            value = value.T
        if placement.squeeze and value.ndim == 2:
            value = value[None]
        index, count = placement.part
        if count > 1:  # one part of a stored tensor (GPT-2's fused c_attn)
            fused.setdefault(placement.stored, [None] * count)[index] = (name, value)
            continue
        state[placement.stored] = np.ascontiguousarray(value)
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} variable(s) have no place in an HF {family} model: "
            f"{sorted(unknown)[:5]}; drop them (e.g. global_step, optimizer slots) before "
            "writing safetensors."
        )
    for stored, parts in fused.items():
        if any(part is None for part in parts):
            present = [part[0] for part in parts if part is not None]
            raise CheckpointError(
                f"HF's {stored!r} holds {len(parts)} variables side by side, but only "
                f"{present} are given; pass all of them."
            )
        state[stored] = np.ascontiguousarray(np.concatenate([v for _, v in parts], axis=-1))
    return state


def write_safetensors(arrays, path, family=None, checksums=True):
    """Write canonical arrays as an HF ``model.safetensors``.

    Args:
        arrays: ``{canonical name: numpy array}``.
        path: the ``.safetensors`` file to write, or a folder (``model.safetensors`` in it).
        family: a family name or ``model=`` name (None: :data:`kerasbert.families.DEFAULT`).
        checksums: store kerasbert's per-tensor CRC-32C in the metadata (False writes the
            bytes HF's ``save_pretrained`` writes, metadata ``{"format": "pt"}`` only).

    Returns:
        The path of the written file (written under a temporary name, then renamed).

    Example:

    >>> import numpy as np, tempfile
    >>> path = write_safetensors({"bert/pooler/dense/bias": np.zeros(4, "float32")},
    ...                          tempfile.mkdtemp())
    >>> from safetensors import safe_open
    >>> handle = safe_open(path, "numpy")
    >>> sorted(handle.metadata().items()), list(handle.keys())
    ([('format', 'pt'), ('kerasbert.crc32c', '{"bert.pooler.dense.bias":1114675946}')],
     ['bert.pooler.dense.bias'])
    """
    from safetensors.numpy import save_file

    path = os.fspath(path)
    if os.path.isdir(path) or not path.endswith(".safetensors"):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, "model.safetensors")
    state = dict(sorted(hf_state_dict(arrays, family).items()))
    metadata = {"format": "pt"}
    if checksums:
        metadata[integrity.METADATA_KEY] = integrity.metadata_value(state)
    save_file(state, path + ".tmp", metadata=metadata)
    _sort_metadata(path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def _sort_metadata(path):
    """Write the header's ``__metadata__`` keys in sorted order, in place.

    The safetensors library keeps metadata in a hash map and writes its keys in an order
    that changes from process to process, so with two keys the same weights would give
    files with different bytes (and SHA-256s). The header is rewritten with the same bytes
    otherwise and the same length, so every data offset stays valid.
    """
    with open(path, "r+b") as f:
        length = int.from_bytes(f.read(8), "little")
        raw = f.read(length)
        header = json.loads(raw)
        if len(header.get("__metadata__") or {}) < 2:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) != len(raw.rstrip(b" ")):  # not the library's serialization: keep it
            return
        f.seek(8)
        f.write(text.ljust(length, b" "))
