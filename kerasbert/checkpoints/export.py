"""Exporting a kerasbert model's weights under canonical names, e.g. as a TF checkpoint."""

import numpy as np

from kerasbert.checkpoints.loading import _layer_variables
from kerasbert.checkpoints.tf_bundle import write_tf_checkpoint


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
        from kerasbert.models import mapping_for_model

        mapping = mapping_for_model(model)
    layers = {layer.name: layer for layer in model.layers}
    arrays = {}
    for layer_name, sources in mapping.items():
        if layer_name not in layers:
            continue
        variables = _layer_variables(layers[layer_name])
        for var_name, source in sources.items():
            name, transform = source if isinstance(source, tuple) else (source, None)
            array = np.asarray(variables[var_name].numpy())
            arrays[name] = array.T if transform == "T" else array
    return arrays


def save_tf_checkpoint(model, prefix, mapping=None):
    """Write a model's weights as a Google-named TensorFlow checkpoint.

    The result loads with ``tf.train.load_variable``, HF's ``load_tf_weights_in_bert``,
    bert4keras, and kerasbert itself.

    Args:
        model: a kerasbert ``keras.Model``.
        prefix: the checkpoint prefix to write, e.g. ``out/bert_model.ckpt``.
        mapping: its variable mapping (inferred when None).

    Example:

    >>> import kerasbert, tempfile, os
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...      "num_attention_heads": 1, "intermediate_size": 8})
    >>> prefix = os.path.join(tempfile.mkdtemp(), "bert_model.ckpt")
    >>> save_tf_checkpoint(model, prefix)
    >>> again = kerasbert.build_transformer_model(
    ...     {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...      "num_attention_heads": 1, "intermediate_size": 8}, prefix)
    """
    write_tf_checkpoint(prefix, model_arrays(model, mapping))
