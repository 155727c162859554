"""A kerasbert model's weights under canonical checkpoint names, and writing them out.

:func:`model_arrays` reads a model's variables through its variable mapping (the same data
loading uses, read the other way); :func:`save_tf_checkpoint` and :func:`save_safetensors`
write them as an original-style TF checkpoint or an HF ``model.safetensors``. For a model
without its builder (e.g. one loaded from a ``.keras`` file), :func:`mapping_for_model`
rebuilds the mapping from the layer names, asking the family registry which family built it.
"""

import numpy as np

from kerasbert import families
from kerasbert.checkpoints.hf_writer import write_safetensors
from kerasbert.checkpoints.loading import layer_variables
from kerasbert.checkpoints.tf_bundle import write_tf_checkpoint
from kerasbert.errors import KerasBertError


def mapping_for_model(model):
    """The variable mapping of a model kerasbert built, inferred from its layer names.

    Works for models returned by ``build_transformer_model`` and for ``.keras`` files saved
    from them.

    Args:
        model: the ``keras.Model``.

    Example:

    >>> import kerasbert
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 2,
    ...      "num_attention_heads": 1, "intermediate_size": 8}, model="nezha")
    >>> "bert/encoder/layer_1/output/dense/kernel" in str(mapping_for_model(model))
    True
    """
    for family in families.FAMILIES.values():
        for entry in family.models:
            if not entry.canonical and model.name.startswith(entry.name):
                raise KerasBertError(
                    f"Model {model.name!r} ({entry.name}) keeps weights that the canonical "
                    f"{family.name} checkpoint names cannot hold; export it with an explicit "
                    "mapping, or save it as a Keras file."
                )
    layer_names = families.model_layer_names(model)
    family = families.detect_from_layers(layer_names)
    if family is None:
        raise KerasBertError(
            f"Model {model.name!r} has no transformer layers named as kerasbert names them "
            "('Transformer-0-MultiHeadSelfAttention', ...); only kerasbert models can be "
            "exported by checkpoint name."
        )
    builder_class = family.model().builder_class()
    return builder_class.from_layer_names(layer_names).variable_mapping()


def model_arrays(model, mapping=None):
    """``{canonical checkpoint name: numpy array}`` of a model's weights.

    Args:
        model: a kerasbert ``keras.Model``.
        mapping: its variable mapping (inferred from the layer names when None).

    Example:

    >>> import kerasbert
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...      "num_attention_heads": 1, "intermediate_size": 8})
    >>> model_arrays(model)["bert/embeddings/word_embeddings"].shape
    (10, 4)
    """
    if mapping is None:
        mapping = mapping_for_model(model)
    layers = {layer.name: layer for layer in model.layers}
    arrays = {}
    for layer_name, sources in mapping.items():
        if layer_name not in layers:
            continue
        variables = layer_variables(layers[layer_name])
        for var_name, source in sources.items():
            name, transform = source if isinstance(source, tuple) else (source, None)
            array = np.asarray(variables[var_name].numpy())
            arrays[name] = array.T if transform == "T" else array
    return arrays


def save_tf_checkpoint(model, prefix, mapping=None):
    """Write a model's weights as a TensorFlow checkpoint under the canonical names.

    The result loads with ``tf.train.load_variable``, HF's ``load_tf_weights_in_bert``,
    bert4keras, and kerasbert itself.

    Args:
        model: a kerasbert ``keras.Model``.
        prefix: the checkpoint prefix to write, e.g. ``out/bert_model.ckpt``.
        mapping: its variable mapping (inferred when None).

    Example:

    >>> import kerasbert, tempfile, os
    >>> config = {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...           "num_attention_heads": 1, "intermediate_size": 8}
    >>> prefix = os.path.join(tempfile.mkdtemp(), "bert_model.ckpt")
    >>> save_tf_checkpoint(kerasbert.build_transformer_model(config), prefix)
    >>> again = kerasbert.build_transformer_model(config, prefix)
    """
    write_tf_checkpoint(prefix, model_arrays(model, mapping))


def save_safetensors(model, path, family=None, mapping=None):
    """Write a kerasbert model's weights as an HF transformers ``model.safetensors``.

    The file loads with the family's HF class (``BertForPreTraining.from_pretrained``,
    ``AlbertForPreTraining``, ``NezhaForPreTraining``; or the bare ``*Model``) given a
    matching ``config.json``, and with kerasbert itself. Its metadata is
    ``{"format": "pt"}``, as HF writes it, plus kerasbert's CRC-32C of every tensor under
    ``"kerasbert.crc32c"`` (:mod:`kerasbert.checkpoints.integrity`), checked when kerasbert
    reads the file.

    Args:
        model: a kerasbert ``keras.Model``.
        path: the ``.safetensors`` file to write, or a folder (``model.safetensors`` in it).
        family: the family whose HF names to write; if None, the family whose layers the
            model has (else the one its weights' names show).
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
    arrays = model_arrays(model, mapping)
    if family is None:
        # The layers tell families apart whose checkpoint names agree (NEZHA, RoFormer).
        found = families.detect_from_layers(families.model_layer_names(model))
        family = found.name if found else families.detect_from_names(arrays) or families.DEFAULT
    return write_safetensors(arrays, path, family)
