"""``build_transformer_model``, bert4keras's factory, over the family registry.

The ``model=`` name is resolved through :mod:`kerasbert.families` (checked against what the
checkpoint's names and the config's keys say), the config is normalized, and the family's
builder class builds the functional model and loads the checkpoint.
"""

import logging
import os

from kerasbert import families
from kerasbert.checkpoints import open_checkpoint
from kerasbert.config import load_config
from kerasbert.errors import ConfigError, ModelTypeError
from kerasbert.models.transformer import APPLICATIONS, accepted_arguments, check_options

# Keyword arguments that override config-file values (bert4keras merges them into the
# config); every other keyword argument is a builder option.
COMMON_CONFIG_KEYS = {
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
    "intermediate_size", "hidden_act", "embedding_size", "attention_head_size",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "dropout_rate",
    "attention_dropout_rate", "layer_norm_eps", "initializer_range",
    "max_position_embeddings", "max_position", "type_vocab_size", "segment_vocab_size",
}  # fmt: skip
CONFIG_KEYS = COMMON_CONFIG_KEYS | families.config_keys()
logger = logging.getLogger("kerasbert")


def resolve_model(model, config, checkpoint):
    """The ``model=`` name to build: ``model`` checked against the checkpoint, or detected.

    A checkpoint whose names several families share (NEZHA's and RoFormer's are the same)
    is resolved by the config (``model_type``, or a family's own keys) or by ``model=``;
    with neither it is an error, never a guess.

    Args:
        model: a name from :func:`kerasbert.families.model_names`, ``"auto"``, or None
            (= ``"auto"``).
        config: the normalized config dict.
        checkpoint: an open :class:`kerasbert.checkpoints.Checkpoint`, or None.

    Example:

    >>> resolve_model(None, {"inner_group_num": 1}, None), resolve_model("roberta", {}, None)
    ('albert', 'roberta')
    """
    candidates = [] if checkpoint is None else families.checkpoint_candidates(checkpoint)
    from_config = families.detect_from_config(config)
    if model is None or model == "auto":
        if candidates and from_config not in candidates:
            if from_config:
                raise ConfigError(
                    f"The config describes a {from_config} model but checkpoint "
                    f"{checkpoint.path!r} looks like {_either(candidates)}; pass the "
                    "matching config."
                )
            if len(candidates) > 1:
                raise ModelTypeError(
                    f"Checkpoint {checkpoint.path!r} could be {_either(candidates)}: their "
                    "variable names are the same, and neither the checkpoint nor the config "
                    "(no model_type or family-specific key) says which; pass "
                    f"{' or '.join(f'model={name!r}' for name in candidates)}."
                )
        found = from_config or (candidates[0] if candidates else families.DEFAULT)
        return families.get(found).model().name
    if not isinstance(model, str):
        raise ModelTypeError(
            f"Unknown model {model!r}; available: {families.model_names()} or 'auto'."
        )
    entry = families.model_entry(model)
    if candidates and families.get(entry.name).name not in candidates:
        raise ModelTypeError(
            f"model={model!r} was asked for, but checkpoint {checkpoint.path!r} looks like "
            f"{_either(candidates)} (judged by its variable names); pass "
            f"model={candidates[0]!r} or model='auto'."
        )
    return entry.name


def _either(names):
    return " or ".join(names)


def config_for_family(normalized, config, model, overrides):
    """``normalized`` (:func:`kerasbert.config.load_config` of ``config`` with ``overrides``),
    read again when the family of ``model`` means another GELU by a Google-format config's
    ``"gelu"`` (its record's ``google_gelu``: bert4keras's erf for RoFormer) than the tanh form
    Google's code computes, which ``load_config`` assumes before the family is known, or
    has defaults of its own for keys a config leaves out (``config_defaults``: GPT-2's
    epsilon in a bert4keras-style config).

    Args:
        normalized: the config as first normalized.
        config: the config as given (path or dict).
        model: the resolved ``model=`` name.
        overrides: keyword arguments; the config keys among them are applied again.
    """
    family = families.get(model)
    google_gelu = family.google_gelu
    if google_gelu == "gelu_tanh" and not (family.config_names or family.config_defaults):
        return normalized
    keys = {k: v for k, v in overrides.items() if k in CONFIG_KEYS}
    return load_config(config, google_gelu=google_gelu, family=family.name, **keys)


def build_transformer_model(
    config_path=None,
    checkpoint_path=None,
    model=None,
    application="encoder",
    return_keras_model=True,
    progress=False,
    **kwargs,
):
    """Build a model of any registered family from a config and (optionally) a checkpoint.

    Args:
        config_path: a Google ``bert_config.json`` or HF ``config.json`` path (or its
            folder), or a dict. Keyword arguments override its values.
        checkpoint_path: a checkpoint in any supported format (TensorFlow prefix or
            folder, safetensors, pytorch_model.bin, HF tf_model.h5, Keras .weights.h5), a
            :class:`kerasbert.checkpoints.Checkpoint`, or None for random weights.
        model: a family's model name (:func:`kerasbert.families.model_names`: ``"bert"``
            (= ``"roberta"``), ``"albert"``, ``"albert_unshared"``, ``"nezha"``), or
            ``"auto"``. The default (None) is ``"auto"``: the family is read from the
            checkpoint's variable names and the config's keys (BERT when neither says). A
            model that contradicts the checkpoint is an error.
        application: ``"encoder"``, ``"lm"`` (causal attention, for language models) or
            ``"unilm"`` (UniLM: segment 0 is the bidirectional source, segment 1 the
            causal target), for every family.
        return_keras_model: return the ``keras.Model`` (True) or the builder object, whose
            ``.model`` is the Keras model and ``.load_report`` says what was loaded.
        progress: draw a progress bar while the checkpoint loads (``True``, ``"auto"``: in
            a terminal or notebook, ``False``). A summary line (family, format, parameters,
            unused variables) is logged at INFO on the ``kerasbert`` logger either way.
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
    if checkpoint is not None and not checkpoint.names_are_canonical:
        # A Keras .weights.h5 shows no heads by its names: `kerasbert convert --to keras`
        # recorded the builder's model and options beside it.
        from kerasbert.folders import read_record

        record = read_record(os.path.dirname(os.path.abspath(checkpoint.path))) or {}
        kwargs = {**record.get("build_kwargs", {}), **kwargs}
        model = model or record.get("model")
    model = resolve_model(model, config, checkpoint)
    config = config_for_family(config, config_path, model, kwargs)

    builder_class = families.model_entry(model).builder_class()
    options = {k: v for k, v in kwargs.items() if k not in CONFIG_KEYS}
    check_options(builder_class, options)
    accepted = accepted_arguments(builder_class)
    arguments = {k: v for k, v in config.items() if k in accepted and k in CONFIG_KEYS}
    arguments.update(options)

    builder = builder_class(application=application, **arguments)
    builder.build()
    if checkpoint is not None:
        deliberate = {"num_hidden_layers", "num_hidden_groups", "inner_group_num"} & set(kwargs)
        report = builder.load_weights_from_checkpoint(
            checkpoint, progress=progress, fewer_blocks=bool(deliberate)
        )
        logger.info(
            "loaded %s (%s) from %s: %s parameters, %d checkpoint variables unused",
            model, checkpoint.format, checkpoint.path, f"{builder.model.count_params():,}",
            len(report.unused),
        )  # fmt: skip
    else:
        _say_random(config_path, model)
    return builder.model if return_keras_model else builder


def _say_random(config_path, model):
    """Log that a model has random weights (a warning: nothing runs on them silently)."""
    hint = ""
    if isinstance(config_path, (str, os.PathLike)) and os.path.isdir(config_path):
        from kerasbert.checkpoints import resolve_checkpoint
        from kerasbert.errors import CheckpointError

        try:
            resolve_checkpoint(config_path)
            hint = (f"; the folder holds a checkpoint: load it with "
                    f"build_transformer_model({os.fspath(config_path)!r}, "
                    f"{os.fspath(config_path)!r})")  # fmt: skip
        except CheckpointError:
            pass
    logger.warning(
        "built %s with random weights (no checkpoint given)%s; load a checkpoint or "
        "model.load_weights(...) before using it for anything but training from scratch.",
        model, hint,
    )  # fmt: skip


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

    >>> from kerasbert.models.bert import BERT
    >>> LM = extend_with_language_model(BERT)
    >>> LM(vocab_size=10, hidden_size=4, num_hidden_layers=1, num_attention_heads=1,
    ...    intermediate_size=8).application
    'lm'
    """
    return _with_application(BaseModel, "lm", name)


def extend_with_unified_language_model(BaseModel, name=None):
    """bert4keras's ``extend_with_unified_language_model``: UniLM attention (``"unilm"``)."""
    return _with_application(BaseModel, "unilm", name)
