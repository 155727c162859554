"""Writing canonical (Google-named) weights as HF transformers ``model.safetensors``.

The inverse of :class:`kerasbert.checkpoints.safetensors_reader.SafetensorsCheckpoint`: every
canonical name becomes the name HF's ``BertForPreTraining`` / ``AlbertForPreTraining`` /
``NezhaForPreTraining`` (or the bare ``*Model``) gives it, and every Dense kernel is
transposed to torch's ``Linear`` layout ``(out, in)``. As in the files HF's
``save_pretrained`` writes, the MLM decoder, which is tied to the word embeddings (its bias
to the prediction bias), is not stored.

Each name is checked on the way out: the reader's own translation of the HF name must give
back the canonical name (and the transpose), so reading a written file returns the same
names and bit-identical arrays.
"""

import os
import re

import numpy as np

from kerasbert.checkpoints.names import hf_names
from kerasbert.errors import CheckpointError

_DENSE = r"(kernel|bias)"
_NORM = r"(gamma|beta)"
_EMBEDDINGS = r"bert/embeddings/(word|position|token_type)_embeddings"
_MAPPING = rf"bert/encoder/embedding_hidden_mapping_in/{_DENSE}"
_BERT_DENSE = r"attention/self/(?:query|key|value)|(?:attention/output|intermediate|output)/dense"

# (canonical full-name pattern, HF name template); "{p}" is the family's prefix. The leaf
# (kernel / gamma / beta / bias) is renamed afterwards: kernel, gamma -> weight; beta -> bias.
_BERT_RULES = [
    (_EMBEDDINGS, r"{p}.embeddings.\1_embeddings.weight"),
    (rf"bert/embeddings/LayerNorm/{_NORM}", r"{p}.embeddings.LayerNorm.\1"),
    # Only a BERT whose embedding size differs from its hidden size has this mapping; HF's
    # BertModel has no such layer, but kerasbert reads it back.
    (_MAPPING, r"{p}.encoder.embedding_hidden_mapping_in.\1"),
    (rf"bert/encoder/layer_(\d+)/({_BERT_DENSE})/{_DENSE}", r"{p}.encoder.layer.\1.\2.\3"),
    (
        rf"bert/encoder/layer_(\d+)/(attention/output|output)/LayerNorm/{_NORM}",
        r"{p}.encoder.layer.\1.\2.LayerNorm.\3",
    ),
    (rf"bert/pooler/dense/{_DENSE}", r"{p}.pooler.dense.\1"),
    (rf"cls/predictions/transform/dense/{_DENSE}", r"cls.predictions.transform.dense.\1"),
    (rf"cls/predictions/transform/LayerNorm/{_NORM}", r"cls.predictions.transform.LayerNorm.\1"),
    (r"cls/predictions/output_bias", "cls.predictions.bias"),
    (r"cls/seq_relationship/output_weights", "cls.seq_relationship.weight"),
    (r"cls/seq_relationship/output_bias", "cls.seq_relationship.bias"),
]

_BLOCK = r"bert/encoder/transformer/group_(\d+)/inner_group_(\d+)/"
_LAYER = r"albert.encoder.albert_layer_groups.\1.albert_layers.\2."
_ALBERT_RULES = [
    (_EMBEDDINGS, r"albert.embeddings.\1_embeddings.weight"),
    (rf"bert/embeddings/LayerNorm/{_NORM}", r"albert.embeddings.LayerNorm.\1"),
    (_MAPPING, r"albert.encoder.embedding_hidden_mapping_in.\1"),
    (rf"{_BLOCK}attention_1/self/(query|key|value)/{_DENSE}", _LAYER + r"attention.\3.\4"),
    (rf"{_BLOCK}attention_1/output/dense/{_DENSE}", _LAYER + r"attention.dense.\3"),
    (rf"{_BLOCK}LayerNorm/{_NORM}", _LAYER + r"attention.LayerNorm.\3"),
    (rf"{_BLOCK}ffn_1/intermediate/dense/{_DENSE}", _LAYER + r"ffn.\3"),
    (rf"{_BLOCK}ffn_1/intermediate/output/dense/{_DENSE}", _LAYER + r"ffn_output.\3"),
    (rf"{_BLOCK}LayerNorm_1/{_NORM}", _LAYER + r"full_layer_layer_norm.\3"),
    (rf"bert/pooler/dense/{_DENSE}", r"albert.pooler.\1"),
    (rf"cls/predictions/transform/dense/{_DENSE}", r"predictions.dense.\1"),
    (rf"cls/predictions/transform/LayerNorm/{_NORM}", r"predictions.LayerNorm.\1"),
    (r"cls/predictions/output_bias", "predictions.bias"),
    (r"cls/seq_relationship/output_weights", "sop_classifier.classifier.weight"),
    (r"cls/seq_relationship/output_bias", "sop_classifier.classifier.bias"),
]

_LEAVES = {"kernel": "weight", "gamma": "weight", "beta": "bias"}
FAMILY_PREFIXES = {"bert": "bert", "roberta": "bert", "nezha": "nezha", "albert": "albert"}


def _rules(family):
    if family not in FAMILY_PREFIXES:
        raise CheckpointError(
            f"No HF transformers naming for family {family!r}; known: {sorted(FAMILY_PREFIXES)}."
        )
    prefix = FAMILY_PREFIXES[family]
    table = _ALBERT_RULES if prefix == "albert" else _BERT_RULES
    return [(re.compile(p), t.replace("{p}", prefix)) for p, t in table]


def hf_name(name, family="bert"):
    """The HF transformers name of a canonical variable, and whether it is transposed.

    Args:
        name: a canonical (Google TF) variable name.
        family: ``"bert"``, ``"albert"`` or ``"nezha"``.

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
    for pattern, template in _rules(family):
        match = pattern.fullmatch(name)
        if match:
            hf = match.expand(template).replace("/", ".")
            stem, _, leaf = hf.rpartition(".")
            hf = f"{stem}.{_LEAVES.get(leaf, leaf)}"
            back = hf_names(hf)
            if back is None or back[0] != name:  # the reader must give the same name back
                raise CheckpointError(
                    f"Internal error: {name!r} would be written as {hf!r}, which kerasbert "
                    f"reads back as {back and back[0]!r}; please report this."
                )
            return hf, back[1]
    return None


def hf_state_dict(arrays, family="bert"):
    """Turn canonical Google-named arrays into HF transformers names and layouts.

    Kernels are transposed to torch's ``(out, in)``; ``cls/seq_relationship/output_weights``
    is already ``(2, hidden)`` in both. Arrays are returned C-contiguous, values unchanged.

    Args:
        arrays: ``{canonical name: numpy array}``, e.g. from
            :func:`kerasbert.checkpoints.model_arrays`.
        family: ``"bert"`` (also ``"roberta"``), ``"albert"`` or ``"nezha"``: sets the
            prefix (``bert.`` / ``albert.`` / ``nezha.``) and ALBERT's layout.

    Raises:
        CheckpointError: naming the variables HF's models have no place for.

    Example:

    >>> import numpy as np
    >>> sd = hf_state_dict({"bert/pooler/dense/kernel": np.arange(6.0).reshape(2, 3)})
    >>> {name: value.shape for name, value in sd.items()}
    {'bert.pooler.dense.weight': (3, 2)}
    """
    state, unknown = {}, []
    for name, value in arrays.items():
        found = hf_name(name, family)
        if found is None:
            unknown.append(name)
            continue
        hf, transpose = found
        value = np.asarray(value)
        if transpose and value.ndim == 2:
            value = value.T
        state[hf] = np.ascontiguousarray(value)
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} variable(s) have no place in an HF {family} model: "
            f"{sorted(unknown)[:5]}; drop them (e.g. global_step, optimizer slots) before "
            "writing safetensors."
        )
    return state


def save_safetensors(model, path, family=None, mapping=None):
    """Write a kerasbert model's weights as an HF transformers ``model.safetensors``.

    The file loads with ``BertForPreTraining.from_pretrained`` (``AlbertForPreTraining``,
    ``NezhaForPreTraining``; or the bare ``*Model``) given a matching ``config.json``, and
    with kerasbert itself. Its metadata is ``{"format": "pt"}``, as HF writes it.

    Args:
        model: a kerasbert ``keras.Model``.
        path: the ``.safetensors`` file to write, or a folder (``model.safetensors`` in it).
        family: ``"bert"``, ``"albert"`` or ``"nezha"``; detected from the weights if None.
        mapping: the model's variable mapping (inferred from the layer names when None).

    Returns:
        The path of the written file.

    Example:

    >>> import kerasbert, tempfile
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...      "num_attention_heads": 1, "intermediate_size": 8})
    >>> path = save_safetensors(model, tempfile.mkdtemp())
    >>> kerasbert.checkpoints.open_checkpoint(path).shape("bert/embeddings/word_embeddings")
    (10, 4)
    """
    from kerasbert.checkpoints.detect import detect_family
    from kerasbert.checkpoints.export import model_arrays

    arrays = model_arrays(model, mapping)
    return write_safetensors(arrays, path, family or detect_family(arrays) or "bert")


def write_safetensors(arrays, path, family="bert"):
    """Write canonical Google-named arrays as an HF ``model.safetensors``.

    Args:
        arrays: ``{canonical name: numpy array}``.
        path: the ``.safetensors`` file to write, or a folder (``model.safetensors`` in it).
        family: ``"bert"``, ``"albert"`` or ``"nezha"``.

    Returns:
        The path of the written file (written under a temporary name, then renamed).

    Example:

    >>> import numpy as np, tempfile
    >>> path = write_safetensors({"bert/pooler/dense/bias": np.zeros(4, "float32")},
    ...                          tempfile.mkdtemp())
    >>> from safetensors import safe_open
    >>> safe_open(path, "numpy").metadata(), list(safe_open(path, "numpy").keys())
    ({'format': 'pt'}, ['bert.pooler.dense.bias'])
    """
    from safetensors.numpy import save_file

    path = os.fspath(path)
    if os.path.isdir(path) or not path.endswith(".safetensors"):
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, "model.safetensors")
    state = hf_state_dict(arrays, family)
    save_file(dict(sorted(state.items())), path + ".tmp", metadata={"format": "pt"})
    os.replace(path + ".tmp", path)
    return path
