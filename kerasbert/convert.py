"""Converting a checkpoint of any supported format into Keras, HF safetensors or TensorFlow.

:func:`convert` builds the model a checkpoint describes, with every head the checkpoint has
(pooler, NSP / SOP, MLM), loads it, and writes it in the target format into a new folder
together with a matching config (and the ``vocab.txt``):

- ``to="keras"``: ``model.weights.h5`` (``model.save_weights``, then a ``kerasbert_crc32c``
  checksum attribute on each dataset), ``kerasbert.json`` and an HF-style ``config.json``;
- ``to="safetensors"``: ``model.safetensors`` under HF transformers' names (with kerasbert's
  per-tensor checksums in its metadata) and an HF-style ``config.json`` (loads with
  ``BertForPreTraining.from_pretrained`` and friends);
- ``to="tf"``: a Google-named TF checkpoint ``bert_model.ckpt`` (``albert_model.ckpt`` for
  ALBERT) and a Google-style ``bert_config.json`` (``albert_config.json``).

A Keras ``.weights.h5`` file loads only into a model of the same architecture, heads
included; ``kerasbert.json`` records the builder's ``model`` and head options, and
:func:`load_model` (and :func:`convert`, given such a folder as its source) rebuild from
it. Safetensors and TF outputs need no record: their heads are read off the variable names.

Every tensor written carries a CRC-32C (TF checkpoints by their format, the others by
kerasbert: :mod:`kerasbert.checkpoints.integrity`), checked whenever kerasbert reads it.

Activations: Google's configs mean the tanh GELU by ``"gelu"``, HF's mean the erf GELU
(``"gelu_new"`` is tanh). HF-style configs get ``"gelu"`` / ``"gelu_new"`` accordingly;
Google-style ones get ``"gelu"`` for tanh and ``"gelu_erf"`` for erf, which kerasbert
reads back exactly (Google's own code has no erf GELU, so it refuses the name rather than
compute the wrong function).

The input is never modified: the destination may not be the source folder, nor hold any
input file, and a destination that already holds a checkpoint is refused unless
``overwrite=True``.
"""

import json
import os
import shutil

from kerasbert import families
from kerasbert.checkpoints import open_checkpoint, resolve_checkpoint
from kerasbert.checkpoints.hf_writer import write_safetensors
from kerasbert.checkpoints.integrity import add_h5_checksums
from kerasbert.checkpoints.tf_bundle import write_tf_checkpoint
from kerasbert.config import load_config, read_config_file
from kerasbert.errors import CheckpointError, ConfigError, KerasBertError, WeightLoadingError
from kerasbert.folders import RECORD, read_record
from kerasbert.models.export import model_arrays
from kerasbert.models.factory import (
    CONFIG_KEYS,
    build_transformer_model,
    config_for_family,
    resolve_model,
)

TARGETS = ("keras", "safetensors", "tf")
# hparams.json: OpenAI's GPT-2 releases.
CONFIG_NAMES = ("config.json", "bert_config.json", "albert_config.json", "hparams.json")
GOOGLE_CONFIG_NAMES = ("bert_config.json", "albert_config.json", "config.json", "hparams.json")
HEAD_OPTIONS = ("with_pool", "with_nsp", "with_mlm")


class ConversionError(KerasBertError, ValueError):
    """A conversion was asked for that cannot be done safely (bad target, would overwrite)."""


def checkpoint_heads(names, family=None):
    """The head options that keep every head present in a checkpoint.

    Args:
        names: canonical variable names.
        family: the checkpoint's family (name or record; None:
            :data:`kerasbert.families.DEFAULT`); it says which names show a head.

    Example:

    >>> checkpoint_heads(["bert/pooler/dense/kernel", "cls/predictions/output_bias"])
    {'with_pool': True, 'with_nsp': False, 'with_mlm': True}
    """
    return families.get(families.DEFAULT if family is None else family).heads_in(names)


def find_config(folder, prefer_google=False):
    """The config file in a folder: ``config.json``, ``bert_config.json`` or
    ``albert_config.json`` (Google's names first when ``prefer_google``), or None.

    Args:
        folder: the folder to look in.
        prefer_google: look for Google's file names first (for TF checkpoints).

    Example:

    >>> find_config("/no/such/folder") is None
    True
    """
    for name in GOOGLE_CONFIG_NAMES if prefer_google else CONFIG_NAMES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def _prepare(source, config, model, build_kwargs):
    """Everything needed to build the model of ``source``: paths, model name, options."""
    fmt, location = resolve_checkpoint(source)
    source = os.fspath(source)
    folder = source if os.path.isdir(source) else os.path.dirname(location) or "."
    if config is None:
        config = find_config(folder, prefer_google=fmt == "tensorflow")
        if config is None:
            raise ConfigError(
                f"No config.json, bert_config.json or albert_config.json beside checkpoint "
                f"{location!r}; pass config=PATH."
            )
    elif not isinstance(config, dict) and os.path.isdir(config):
        config = find_config(config) or config  # read_config_file explains a miss
    if isinstance(config, dict):
        raw, config = dict(config), None
    else:
        config = os.fspath(config)
        raw = read_config_file(config)
    normalized = load_config(raw, **{k: v for k, v in build_kwargs.items() if k in CONFIG_KEYS})
    checkpoint = open_checkpoint(location)
    # Names that are not canonical (a Keras .weights.h5) cannot show the heads: the record
    # convert wrote beside the file says which the model had.
    record = None if checkpoint.names_are_canonical else read_record(folder)
    kwargs = {}
    if record is not None:
        kwargs.update(record.get("build_kwargs", {}))
        model = model or record.get("model")
    model = resolve_model(model, normalized, checkpoint)
    normalized = config_for_family(normalized, raw, model, build_kwargs)
    # The model's part of a file that holds several (ELECTRA's joint checkpoints): its heads.
    builder_class = families.model_entry(model).builder_class()
    checkpoint = builder_class.checkpoint_view(checkpoint, {**kwargs, **build_kwargs})
    if checkpoint.names_are_canonical:
        kwargs.update(checkpoint_heads(checkpoint.names(), families.get(model)))
    kwargs.update(build_kwargs)
    return {
        "format": fmt,
        "location": location,
        "folder": folder,
        "config": config,
        "raw": raw,
        "normalized": normalized,
        "checkpoint": checkpoint,
        "record": record,
        "model": model,
        "kwargs": kwargs,
    }


def _build(prep):
    try:
        return build_transformer_model(
            prep["config"] or prep["raw"],
            prep["checkpoint"],
            model=prep["model"],
            return_keras_model=False,
            **prep["kwargs"],
        )
    except WeightLoadingError as e:
        if prep["checkpoint"].names_are_canonical or prep["record"] is not None:
            raise
        raise WeightLoadingError(
            f"{e} There is no {RECORD} beside {prep['location']!r} saying which heads the "
            "model had: pass with_pool= / with_nsp= / with_mlm= as when it was saved."
        ) from None


def load_model(path, config=None, model=None, **build_kwargs):
    """Build the model stored in a folder :func:`convert` wrote (or any checkpoint), heads
    included.

    A Keras ``.weights.h5`` is rebuilt with the ``model`` and options recorded in
    ``kerasbert.json``; other formats with every head their variable names show.

    Args:
        path: the folder (or checkpoint file / TF prefix).
        config: config path or dict; default: the one beside the checkpoint.
        model: model name (``"bert"``, ``"albert"``, ...); default: the record's, or detected.
        **build_kwargs: options of ``build_transformer_model`` that replace the recorded or
            detected ones (e.g. ``with_mlm="linear"`` for logits).

    Returns:
        The loaded ``keras.Model``.

    Example:

    >>> import kerasbert, tempfile, os
    >>> src = tempfile.mkdtemp()
    >>> cfg = {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...        "num_attention_heads": 1, "intermediate_size": 8}
    >>> with open(os.path.join(src, "bert_config.json"), "w") as f:
    ...     json.dump(cfg, f)
    >>> kerasbert.models.export.save_tf_checkpoint(
    ...     kerasbert.build_transformer_model(cfg, with_pool=True),
    ...                    os.path.join(src, "bert_model.ckpt"))
    >>> load_model(src).get_layer("Pooler-Dense").name
    'Pooler-Dense'
    """
    prep = _prepare(path, config, model, build_kwargs)
    return _build(prep).model


def _hf_activation(name):
    if isinstance(name, list):  # a gated feed-forward's branches
        return [_hf_activation(n) for n in name]
    return {"gelu_erf": "gelu", "gelu_tanh": "gelu_new"}.get(name, name)


def _google_activation(name, google_gelu="gelu_tanh"):
    """``hidden_act`` for a config without ``model_type``, read back by
    :func:`kerasbert.config.normalize_activation` with the family's ``google_gelu``."""
    if isinstance(name, list):
        return [_google_activation(n, google_gelu) for n in name]
    return "gelu" if name == google_gelu else name


# Keys only HF's configs (or kerasbert's derived form) have; not written to Google configs.
_DERIVED_KEYS = ("max_position", "dropout_rate", "attention_dropout_rate", "segment_vocab_size")


def output_config(raw, normalized, family, arrays, style, family_values=None):
    """The config written beside a converted checkpoint.

    Args:
        raw: the source config as read from its file.
        normalized: the same after :func:`kerasbert.config.load_config` (with overrides).
        family: the family (name or record).
        arrays: the converted weights (canonical names), for the vocabulary size and heads.
        style: ``"hf"`` (``config.json`` with ``model_type``) or ``"google"``.
        family_values: values of the family's own config keys (``family.config_keys``),
            e.g. the builder's; default: those in ``normalized``.

    Example:

    >>> raw = {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...        "num_attention_heads": 1, "intermediate_size": 8, "hidden_act": "gelu"}
    >>> output_config(raw, load_config(raw), "bert", {}, "hf")["hidden_act"]
    'gelu_new'
    """
    family = families.get(family)
    word = arrays.get(family.vocab_variable)
    hidden = normalized["hidden_size"]
    heads = normalized["num_attention_heads"]
    values = {
        "vocab_size": int(word.shape[0]) if word is not None else normalized["vocab_size"],
        "hidden_size": hidden,
        "num_hidden_layers": normalized["num_hidden_layers"],
        "num_attention_heads": heads,
        "intermediate_size": normalized["intermediate_size"],
        "hidden_dropout_prob": normalized["dropout_rate"],
        "attention_probs_dropout_prob": normalized["attention_dropout_rate"],
        "max_position_embeddings": normalized["max_position"],
        "type_vocab_size": normalized["segment_vocab_size"],
        "initializer_range": normalized.get("initializer_range", 0.02),
    }
    embedding_size = normalized.get("embedding_size") or hidden
    if embedding_size != hidden:
        values["embedding_size"] = embedding_size
    if family_values is None:
        family_values = {k: normalized[k] for k in family.config_keys if k in normalized}
    values.update({k: v for k, v in family_values.items() if v is not None})
    values.update(family.config_constants)
    head_size = normalized.get("attention_head_size")
    if head_size and head_size * heads != hidden:
        values["attention_head_size"] = head_size

    if style == "google":
        values["hidden_act"] = _google_activation(normalized["hidden_act"], family.google_gelu)
        if normalized["layer_norm_eps"] != 1e-12:  # Google's code fixes 1e-12
            values["layer_norm_eps"] = normalized["layer_norm_eps"]
        return dict(sorted(values.items()))

    out = {k: v for k, v in raw.items() if k not in _DERIVED_KEYS}
    out.update(values)
    out["hidden_act"] = _hf_activation(normalized["hidden_act"])
    if family.hf_activation is not None:  # T5's feed_forward_proj says it instead
        del out["hidden_act"]
        out.update(family.hf_activation(normalized["hidden_act"]))
    out["layer_norm_eps"] = normalized["layer_norm_eps"]
    # mT5's own model_type where the source says it ("mt5"); the family's first otherwise.
    kept = raw.get("model_type") in family.model_types
    out["model_type"] = raw["model_type"] if kept else family.model_types[0]
    out["architectures"] = [family.hf_architecture(arrays, out["model_type"])]
    return families.write_family_config(out, family)  # GPT-2's n_embd, n_layer, ...


def _outputs(to, family):
    if to == "keras":
        return ["model.weights.h5", "config.json", RECORD]
    if to == "safetensors":
        return ["model.safetensors", "config.json"]
    prefix, config = family.tf_files
    return [prefix + ".index", prefix + ".data-00000-of-00001", "checkpoint", config]


def _same(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def _check_destination(destination, prep, vocab, outputs, overwrite):
    if os.path.exists(destination) and not os.path.isdir(destination):
        raise ConversionError(
            f"Destination {destination!r} is a file; pass a folder to write into "
            "(it is created if missing)."
        )
    if _same(destination, prep["folder"]) or _same(destination, prep["location"]):
        raise ConversionError(
            f"Destination {destination!r} is the source folder or checkpoint; convert never "
            "writes beside its input. Pass another folder."
        )
    inputs = [i for i in (prep["config"], prep["location"], vocab) if i and os.path.exists(i)]
    for name in outputs:
        path = os.path.join(destination, name)
        if os.path.exists(path) and any(_same(path, i) for i in inputs):
            raise ConversionError(
                f"Writing {path!r} would overwrite an input of this conversion; pass "
                "another destination folder."
            )
    if overwrite or not os.path.isdir(destination):
        return
    existing = [n for n in outputs if os.path.exists(os.path.join(destination, n))]
    try:
        resolve_checkpoint(destination)
        existing.append("a checkpoint")
    except CheckpointError:
        pass
    if existing:
        raise ConversionError(
            f"Destination {destination!r} already holds {sorted(set(existing))}; pass "
            "overwrite=True to replace the files this conversion writes, or another folder."
        )


def convert(
    source,
    destination,
    to,
    config=None,
    vocab=None,
    model=None,
    overwrite=False,
    **build_kwargs,
):
    """Convert a checkpoint to Keras ``.weights.h5``, HF safetensors or a TF checkpoint.

    The model is built with every head the checkpoint holds (``with_pool`` / ``with_nsp``
    / ``with_mlm`` decided from its variable names; for a Keras source, from its
    ``kerasbert.json``), so nothing is dropped; the result holds the same weights
    bit for bit.

    Args:
        source: a checkpoint in any supported format: file, TF prefix, or folder.
        destination: the output folder (created if missing). Never the source folder.
        to: ``"keras"``, ``"safetensors"`` or ``"tf"`` (table in the module docstring).
        config: the source config: a path (file or folder) or a dict; default:
            ``config.json`` / ``bert_config.json`` / ``albert_config.json`` beside the
            checkpoint (Google's names first for a TF checkpoint).
        vocab: a ``vocab.txt`` to copy; default: ``vocab.txt`` beside the checkpoint, if
            any.
        model: ``"bert"``, ``"albert"``, ``"nezha"``, ...; default: detected.
        overwrite: replace the files this conversion writes in a destination that already
            holds a checkpoint (other files there are left alone). Inputs are never
            overwritten.
        **build_kwargs: config overrides and options of ``build_transformer_model``
            (e.g. ``hidden_act="gelu_erf"``); overrides land in the written config, head
            options in ``kerasbert.json``.

    Returns:
        The destination folder's path.

    Raises:
        ConversionError: bad ``to``, or a destination that would overwrite anything.

    Example:

    >>> import kerasbert, tempfile, os
    >>> src = tempfile.mkdtemp()
    >>> cfg = {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...        "num_attention_heads": 1, "intermediate_size": 8}
    >>> with open(os.path.join(src, "bert_config.json"), "w") as f:
    ...     json.dump(cfg, f)
    >>> kerasbert.models.export.save_tf_checkpoint(kerasbert.build_transformer_model(cfg),
    ...                    os.path.join(src, "bert_model.ckpt"))
    >>> out = convert(src, os.path.join(tempfile.mkdtemp(), "hf"), to="safetensors")
    >>> sorted(os.listdir(out))
    ['config.json', 'model.safetensors']
    """
    if to not in TARGETS:
        raise ConversionError(f"Unknown target format to={to!r}; choose one of {list(TARGETS)}.")
    for option in ("keep_tokens", "compound_tokens"):
        if build_kwargs.get(option) is not None:
            raise ConversionError(
                f"convert() keeps the whole vocabulary (vocab.txt is copied as it is); "
                f"convert first, then build with {option}= from the converted checkpoint."
            )
    destination = os.path.abspath(os.fspath(destination))
    prep = _prepare(source, config, model, build_kwargs)
    if vocab is None:
        found = os.path.join(prep["folder"], "vocab.txt")
        vocab = found if os.path.isfile(found) else None
    elif not os.path.isfile(vocab):
        raise ConversionError(f"Vocabulary file {os.fspath(vocab)!r} does not exist.")
    family = families.get(prep["model"])
    if not families.model_entry(prep["model"]).canonical and to != "keras":
        raise ConversionError(
            f"model={prep['model']!r} keeps weights (e.g. an unshared ALBERT's per-layer "
            f"copies) that HF and original {family.name} checkpoints cannot hold; convert it "
            f"to='keras', or build model={family.model().name!r}."
        )
    outputs = _outputs(to, family) + (["vocab.txt"] if vocab else [])
    _check_destination(destination, prep, vocab, outputs, overwrite)

    builder = _build(prep)  # every failure to read or load happens before anything is written
    mapping = builder.variable_mapping()
    arrays = model_arrays(builder.model, mapping)
    os.makedirs(destination, exist_ok=True)

    def write_json(name, value):
        with open(os.path.join(destination, name), "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, sort_keys=True)
            f.write("\n")

    style = "google" if to == "tf" else "hf"
    family_values = {key: getattr(builder, key) for key in family.config_keys}
    written_config = output_config(
        prep["raw"], prep["normalized"], family, arrays, style, family_values
    )
    if to == "keras":
        weights = os.path.join(destination, "model.weights.h5")
        builder.model.save_weights(weights)
        add_h5_checksums(weights)  # the file Keras has just written, and only that one
        options = {k: v for k, v in prep["kwargs"].items() if k not in CONFIG_KEYS}
        for option in ("ignore_invalid_weights", *builder.checkpoint_options):
            options.pop(option, None)  # how the source was read, not what the model is
        try:
            json.dumps(options)
        except TypeError:
            raise ConversionError(
                f"Builder options {sorted(options)} cannot be recorded in {RECORD} (not "
                "JSON values); convert to='safetensors' or 'tf', or pass plain values."
            ) from None
        import kerasbert

        write_json(
            RECORD,
            {"format": "keras", "model": prep["model"], "build_kwargs": options,
             "kerasbert": kerasbert.__version__},
        )  # fmt: skip
        write_json("config.json", written_config)
    elif to == "safetensors":
        write_safetensors(arrays, os.path.join(destination, outputs[0]), family.name)
        write_json("config.json", written_config)
    else:
        prefix = outputs[0][: -len(".index")]
        write_tf_checkpoint(os.path.join(destination, prefix), arrays)
        write_json(outputs[3], written_config)
    if vocab:
        shutil.copyfile(vocab, os.path.join(destination, "vocab.txt"))
    return destination
