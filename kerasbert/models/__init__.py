"""Model builders and ``build_transformer_model``, the bert4keras-style factory."""

import re

from kerasbert.checkpoints import detect_family, open_checkpoint
from kerasbert.config import load_config
from kerasbert.errors import ConfigError, KerasBertError, ModelTypeError
from kerasbert.models.albert import ALBERT, ALBERTUnshared
from kerasbert.models.bert import BERT
from kerasbert.models.decoding import IncrementalModel
from kerasbert.models.nezha import NEZHA
from kerasbert.models.remat import RematModel
from kerasbert.models.transformer import (
    APPLICATIONS,
    Transformer,
    accepted_arguments,
    check_options,
)

MODELS = {
    "bert": BERT,
    "roberta": BERT,
    "albert": ALBERT,
    "albert_unshared": ALBERTUnshared,
    "nezha": NEZHA,
}
FAMILIES = {"bert": "bert", "roberta": "bert", "albert": "albert",
            "albert_unshared": "albert", "nezha": "nezha"}  # fmt: skip

# Keyword arguments that override config-file values (bert4keras merges them into the
# config); every other keyword argument is a builder option.
CONFIG_KEYS = {
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "hidden_act", "embedding_size", "attention_head_size",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "dropout_rate",
    "attention_dropout_rate", "layer_norm_eps", "initializer_range",
    "max_position_embeddings", "max_position", "type_vocab_size", "segment_vocab_size",
    "num_hidden_groups", "inner_group_num", "max_relative_position",
}  # fmt: skip


def family_from_config(config):
    """``bert`` / ``albert`` / ``nezha`` from a config's keys, or None if it says nothing.

    Example:

    >>> family_from_config({"model_type": "albert"}), family_from_config({"inner_group_num": 1})
    ('albert', 'albert')
    """
    model_type = str(config.get("model_type", "")).lower()
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    if "num_hidden_groups" in config or "inner_group_num" in config:
        return "albert"
    if "max_relative_position" in config or config.get("use_relative_position"):
        return "nezha"
    return None


def resolve_model(model, config, checkpoint):
    """The model name to build: ``model`` checked against the checkpoint, or detected.

    Args:
        model: a name from :data:`MODELS`, ``"auto"``, or None (= ``"auto"``).
        config: the normalized config dict.
        checkpoint: an open :class:`kerasbert.checkpoints.Checkpoint`, or None.
    """
    detected = None
    if checkpoint is not None and getattr(checkpoint, "canonical_names", True):
        detected = detect_family(checkpoint.names())
    from_config = family_from_config(config)
    if model is None or model == "auto":
        if detected and from_config and detected != from_config:
            raise ConfigError(
                f"The config describes a {from_config} model but checkpoint "
                f"{checkpoint.path!r} looks like {detected}; pass the matching config."
            )
        return detected or from_config or "bert"
    if not isinstance(model, str) or model.lower() not in MODELS:
        raise ModelTypeError(f"Unknown model {model!r}; available: {sorted(MODELS)} or 'auto'.")
    model = model.lower()
    if detected and FAMILIES[model] != detected:
        raise ModelTypeError(
            f"model={model!r} was asked for, but checkpoint {checkpoint.path!r} looks like "
            f"{detected} (judged by its variable names); pass model={detected!r} or "
            "model='auto'."
        )
    return model


def build_transformer_model(
    config_path=None,
    checkpoint_path=None,
    model=None,
    application="encoder",
    return_keras_model=True,
    **kwargs,
):
    """Build a BERT-family model from a config and (optionally) load a checkpoint.

    Args:
        config_path: a Google ``bert_config.json`` or HF ``config.json`` path (or its
            folder), or a dict. Keyword arguments override its values.
        checkpoint_path: a checkpoint in any supported format (TensorFlow prefix or
            folder, safetensors, pytorch_model.bin, HF tf_model.h5, Keras .weights.h5), a
            :class:`kerasbert.checkpoints.Checkpoint`, or None for random weights.
        model: ``"bert"`` (= ``"roberta"``), ``"albert"``, ``"albert_unshared"``,
            ``"nezha"``, or ``"auto"``. The default (None) is ``"auto"``: the family is read
            from the checkpoint's variable names and the config's keys (BERT when neither
            says). A model that contradicts the checkpoint is an error.
        application: ``"encoder"``, ``"lm"`` (causal attention, for language models) or
            ``"unilm"`` (UniLM: segment 0 is the bidirectional source, segment 1 the
            causal target), for every family.
        return_keras_model: return the ``keras.Model`` (True) or the builder object, whose
            ``.model`` is the Keras model and ``.load_report`` says what was loaded.
        **kwargs: config overrides and builder options: ``with_pool``, ``with_nsp``,
            ``with_mlm``, ``segment_vocab_size`` (0 = no segment input), ``keep_tokens``,
            ``compound_tokens``, ``sequence_length``, ``dropout_rate``, ``hidden_act``,
            ``ignore_invalid_weights``, ``gradient_checkpointing`` (recompute each
            transformer block in the backward pass to save training memory; see
            :class:`kerasbert.models.remat.RematModel`), ``name``.

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
    if application not in APPLICATIONS:
        raise ModelTypeError(
            f"Unknown application {application!r}; available: {list(APPLICATIONS)}."
        )
    config = load_config(config_path, **{k: v for k, v in kwargs.items() if k in CONFIG_KEYS})
    checkpoint = None if checkpoint_path is None else open_checkpoint(checkpoint_path)
    model = resolve_model(model, config, checkpoint)

    builder_class = MODELS[model]
    options = {k: v for k, v in kwargs.items() if k not in CONFIG_KEYS}
    check_options(builder_class, options)
    accepted = accepted_arguments(builder_class)
    arguments = {k: v for k, v in config.items() if k in accepted and k in CONFIG_KEYS}
    arguments.update(options)

    builder = builder_class(application=application, **arguments)
    builder.build()
    if checkpoint is not None:
        builder.load_weights_from_checkpoint(checkpoint)
    return builder.model if return_keras_model else builder


def mapping_for_model(model):
    """The variable mapping of a model kerasbert built, inferred from its layer names.

    Works for models returned by ``build_transformer_model`` and for ``.keras`` files saved
    from them.

    Args:
        model: the ``keras.Model``.

    Example:

    >>> model = build_transformer_model(
    ...     {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 2,
    ...      "num_attention_heads": 1, "intermediate_size": 8}, model="nezha")
    >>> "bert/encoder/layer_1/output/dense/kernel" in str(mapping_for_model(model))
    True
    """
    names = {layer.name for layer in model.layers}
    shared_name = re.compile(r"Transformer(?:-Group(\d+))?(?:-Inner(\d+))?-MultiHeadSelfAttention")
    layer_name = re.compile(r"Transformer-(\d+)(?:-Inner\d+)?-MultiHeadSelfAttention")
    shared = [m for n in names if (m := shared_name.fullmatch(n))]
    layers = [int(m.group(1)) for n in names if (m := layer_name.fullmatch(n))]
    sizes = {"vocab_size": 1, "hidden_size": 1, "num_attention_heads": 1, "intermediate_size": 1}
    if shared:
        groups = 1 + max(int(m.group(1) or 0) for m in shared)
        inner = 1 + max(int(m.group(2) or 0) for m in shared)
        return ALBERT(num_hidden_layers=groups, num_hidden_groups=groups,
                      inner_group_num=inner, **sizes).variable_mapping()  # fmt: skip
    if not layers:
        raise KerasBertError(
            f"Model {model.name!r} has no transformer layers named as kerasbert names them "
            "('Transformer-0-MultiHeadSelfAttention', ...); only kerasbert models can be "
            "exported by checkpoint name."
        )
    if model.name.startswith("albert"):
        raise KerasBertError(
            "An unshared ALBERT has one copy of the block weights per layer, which a shared "
            "ALBERT checkpoint cannot hold; export it with an explicit mapping."
        )
    builder = NEZHA if "Embedding-Relative-Position" in names else BERT
    return builder(num_hidden_layers=max(layers) + 1, **sizes).variable_mapping()


# bert4keras's names.
ALBERT_Unshared = ALBERTUnshared


def _with_application(BaseModel, application, name):
    class Extended(BaseModel):
        def __init__(self, application=application, **kwargs):
            super().__init__(application=application, **kwargs)

    Extended.__name__ = Extended.__qualname__ = name or f"{BaseModel.__name__}_{application}"
    return Extended


def extend_with_language_model(BaseModel, name=None):
    """bert4keras's ``extend_with_language_model``: the builder class with causal attention.

    Equivalent to ``build_transformer_model(..., application="lm")``.

    Example:

    >>> LM = extend_with_language_model(BERT)
    >>> LM(vocab_size=10, hidden_size=4, num_hidden_layers=1, num_attention_heads=1,
    ...    intermediate_size=8).application
    'lm'
    """
    return _with_application(BaseModel, "lm", name)


def extend_with_unified_language_model(BaseModel, name=None):
    """bert4keras's ``extend_with_unified_language_model``: UniLM attention (``"unilm"``)."""
    return _with_application(BaseModel, "unilm", name)


__all__ = [
    "ALBERT",
    "ALBERTUnshared",
    "ALBERT_Unshared",
    "BERT",
    "IncrementalModel",
    "MODELS",
    "NEZHA",
    "RematModel",
    "Transformer",
    "build_transformer_model",
    "extend_with_language_model",
    "extend_with_unified_language_model",
    "mapping_for_model",
]
