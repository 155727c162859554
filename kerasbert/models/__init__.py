"""Model builders and ``build_transformer_model``, the bert4keras-style factory."""

from kerasbert.config import load_config
from kerasbert.errors import ModelTypeError
from kerasbert.models.bert import BERT
from kerasbert.models.transformer import Transformer, check_options

MODELS = {
    "bert": BERT,
    "roberta": BERT,
}
APPLICATIONS = ("encoder",)

# Config-file keys that configure the builder (everything else in a config file, such as
# HF's "architectures", is informational and ignored).
_CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "embedding_size",
    "attention_head_size",
    "dropout_rate",
    "attention_dropout_rate",
    "layer_norm_eps",
    "initializer_range",
    "max_position",
    "segment_vocab_size",
)


def build_transformer_model(
    config_path=None,
    checkpoint_path=None,
    model="bert",
    application="encoder",
    return_keras_model=True,
    **kwargs,
):
    """Build a BERT-family model from a config and (optionally) load a checkpoint.

    Args:
        config_path: a Google ``bert_config.json`` or HF ``config.json`` path (or its
            folder), or a dict. Keyword arguments override its values.
        checkpoint_path: a checkpoint file or folder in any supported format
            (safetensors, pytorch_model.bin, Keras .weights.h5), a
            :class:`kerasbert.checkpoints.Checkpoint`, or None for random weights.
        model: ``"bert"`` or ``"roberta"`` (the same architecture).
        application: ``"encoder"``.
        return_keras_model: return the ``keras.Model`` (True) or the builder object, whose
            ``.model`` is the Keras model and ``.load_report`` says what was loaded.
        **kwargs: config overrides and builder options: ``with_pool``, ``with_nsp``,
            ``with_mlm``, ``segment_vocab_size`` (0 = no segment input), ``keep_tokens``,
            ``compound_tokens``, ``sequence_length``, ``dropout_rate``, ``hidden_act``,
            ``ignore_invalid_weights``, ``name``.

    Returns:
        A functional ``keras.Model`` with inputs ``[token_ids, segment_ids]`` (padding = id
        0), or the builder.

    Example:

    >>> model = build_transformer_model(
    ...     {"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 2,
    ...      "num_attention_heads": 2, "intermediate_size": 16}, with_pool=True)
    >>> [layer.name for layer in model.layers][:3]
    ['Input-Token', 'Input-Segment', 'Embedding-Token']
    """
    builder_class = MODELS.get(str(model).lower()) if isinstance(model, str) else None
    if builder_class is None:
        raise ModelTypeError(f"Unknown model {model!r}; available: {sorted(MODELS)}.")
    if application not in APPLICATIONS:
        raise ModelTypeError(
            f"Unknown application {application!r}; available: {list(APPLICATIONS)}."
        )
    options = {k: v for k, v in kwargs.items() if k not in _CONFIG_KEYS}
    check_options(builder_class, options)
    config = load_config(config_path, **{k: v for k, v in kwargs.items() if k in _CONFIG_KEYS})
    arguments = {k: config[k] for k in _CONFIG_KEYS if k in config}
    arguments.update(options)

    builder = builder_class(**arguments)
    builder.build()
    if checkpoint_path is not None:
        builder.load_weights_from_checkpoint(checkpoint_path)
    return builder.model if return_keras_model else builder


__all__ = ["BERT", "MODELS", "Transformer", "build_transformer_model"]
