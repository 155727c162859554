"""Reading Google / HF JSON model configs into one normalized dict.

Google's original TF code (BERT, ALBERT, NEZHA) implements ``hidden_act: "gelu"`` as the tanh
approximation, while HF transformers means the exact erf form by ``gelu`` (and tanh by
``gelu_new``). A config without a ``model_type`` key is a Google-format config, so its
``gelu`` becomes ``gelu_tanh``; an HF config's ``gelu`` becomes ``gelu_erf``. Families
trained with bert4keras (RoFormer), whose ``gelu`` is the erf form, read their Google-format
configs with ``google_gelu="gelu_erf"`` (the family record's ``google_gelu``). Pass
``hidden_act="gelu_erf"`` or ``"gelu_tanh"`` to override either way.
"""

import json
import os

from kerasbert import families
from kerasbert.errors import ConfigError

REQUIRED_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)

# HF activation names -> kerasbert's canonical names.
_HF_ACTIVATIONS = {
    "gelu": "gelu_erf",
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
    "tanh": "tanh",
    "silu": "silu",
    "swish": "silu",
    "linear": "linear",
    "gelu_erf": "gelu_erf",
    "gelu_tanh": "gelu_tanh",
}
# The original TF code's `gelu` is the tanh approximation.
_GOOGLE_ACTIVATIONS = dict(_HF_ACTIVATIONS, gelu="gelu_tanh")


def normalize_activation(name, google_format, google_gelu="gelu_tanh"):
    """Map a config's ``hidden_act`` to ``gelu_erf``, ``gelu_tanh``, ``relu``, ...

    Args:
        name: the activation name as written in the config.
        google_format: True for configs of the original TF code (no ``model_type`` key).
        google_gelu: what ``"gelu"`` means in such a config: Google's TF code computes the
            tanh form; bert4keras, which trained RoFormer, the erf one.

    Example:

    >>> normalize_activation("gelu", google_format=True)
    'gelu_tanh'
    >>> normalize_activation("gelu", google_format=False)
    'gelu_erf'
    >>> normalize_activation(["gelu", "linear"], google_format=True)
    ['gelu_tanh', 'linear']
    """
    table = dict(_GOOGLE_ACTIVATIONS, gelu=google_gelu) if google_format else _HF_ACTIVATIONS
    if isinstance(name, (list, tuple)) and name:
        # bert4keras's gated feed-forward (T5 v1.1: ["gelu", "linear"]): one per branch.
        return [normalize_activation(n, google_format, google_gelu) for n in name]
    if not isinstance(name, str) or name not in table:
        raise ConfigError(
            f"Unsupported hidden_act {name!r}; expected one of {sorted(table)}. "
            "Use 'gelu_erf' for exact GELU or 'gelu_tanh' for the tanh approximation."
        )
    return table[name]


def read_config_file(path):
    """Read a JSON config file into a dict, with a clear error when it cannot be read.

    Args:
        path: path of a ``bert_config.json`` / ``config.json`` file, or of the folder
            holding one.

    Example:

    >>> import json, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with open(os.path.join(d, "config.json"), "w") as f:
    ...     json.dump({"vocab_size": 10}, f)
    >>> read_config_file(d)["vocab_size"]
    10
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        for candidate in ("config.json", "bert_config.json", "albert_config.json", "hparams.json"):
            if os.path.isfile(os.path.join(path, candidate)):
                path = os.path.join(path, candidate)
                break
        else:
            raise ConfigError(
                f"No config.json or bert_config.json in folder {path!r}; pass the config "
                "file's path."
            )
    if not os.path.isfile(path):
        raise ConfigError(f"Config file {path!r} does not exist; check the path.")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"Config file {path!r} is not valid JSON ({e}).") from None
    if not isinstance(config, dict):
        raise ConfigError(f"Config file {path!r} must hold a JSON object, not {type(config)}.")
    return config


def load_config(config=None, google_gelu="gelu_tanh", family=None, **overrides):
    """Merge a config (path or dict) with keyword overrides and normalize it.

    The result keeps every original key and adds bert4keras's derived keys:
    ``max_position`` (from ``max_position_embeddings``, default 512), ``dropout_rate``
    (``hidden_dropout_prob``), ``attention_dropout_rate`` (``attention_probs_dropout_prob``),
    ``segment_vocab_size`` (``type_vocab_size``, default 2), ``layer_norm_eps`` (default
    1e-12) and a canonical ``hidden_act``.

    Args:
        config: path of a JSON config file (or its folder), a dict, or None.
        google_gelu: what ``"gelu"`` means in a config without ``model_type``
            (:func:`normalize_activation`; the family's ``google_gelu``).
        family: the family the config is for, when known (a config in BERT's keys for a
            GPT-2 checkpoint): its record's ``config_names`` / ``config_defaults`` apply
            (:func:`kerasbert.families.read_family_config`); by default those of the family
            the config shows, if any.
        **overrides: values that replace the config's.

    Example:

    >>> c = load_config({"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 1,
    ...                  "num_attention_heads": 2, "intermediate_size": 16,
    ...                  "hidden_act": "gelu"})
    >>> c["hidden_act"], c["max_position"], c["segment_vocab_size"]
    ('gelu_tanh', 512, 2)
    """
    if config is None:
        raw = {}
    elif isinstance(config, dict):
        raw = dict(config)
    elif isinstance(config, (str, os.PathLike)):
        raw = read_config_file(config)
    else:
        raise ConfigError(f"config must be a path or a dict, not {type(config).__name__}.")

    google_format = "model_type" not in raw
    # A family whose configs name the sizes otherwise (GPT-2's n_embd, n_layer, ...).
    merged = families.read_family_config({**raw, **overrides}, family)

    missing = [k for k in REQUIRED_KEYS if merged.get(k) is None]
    if missing:
        source = config if isinstance(config, (str, os.PathLike)) else "the config dict"
        raise ConfigError(
            f"Config {source} lacks required key(s) {missing}; a BERT config needs "
            f"{list(REQUIRED_KEYS)} (pass them in the JSON file or as keyword arguments)."
        )
    for key in REQUIRED_KEYS:
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"Config key {key!r} must be a positive integer, got {value!r}.")

    merged.setdefault("max_position", merged.get("max_position_embeddings") or 512)
    merged.setdefault("dropout_rate", merged.get("hidden_dropout_prob") or 0.0)
    merged.setdefault("attention_dropout_rate", merged.get("attention_probs_dropout_prob") or 0.0)
    if "segment_vocab_size" not in merged:
        merged["segment_vocab_size"] = merged.get("type_vocab_size", 2)
    merged.setdefault("layer_norm_eps", 1e-12)
    merged["hidden_act"] = normalize_activation(
        merged.get("hidden_act", "gelu"), google_format, google_gelu
    )
    _check_values(merged, config)
    return merged


# key -> (kind, lowest allowed, highest allowed or None, whether the lowest is allowed)
# (the keys of config files first, then the derived keys, so a message names the file's key)
_RANGES = {
    "max_position_embeddings": ("int", 1, None, True),
    "type_vocab_size": ("int", 0, None, True),
    "hidden_dropout_prob": ("number", 0, 1, True),
    "attention_probs_dropout_prob": ("number", 0, 1, True),
    "embedding_size": ("int", 1, None, True),
    "attention_head_size": ("int", 1, None, True),
    "num_hidden_groups": ("int", 1, None, True),
    "inner_group_num": ("int", 1, None, True),
    "max_relative_position": ("int", 1, None, True),
    "layer_norm_eps": ("number", 0, 1, False),
    "initializer_range": ("number", 0, None, False),
    "max_position": ("int", 1, None, True),
    "segment_vocab_size": ("int", 0, None, True),
    "dropout_rate": ("number", 0, 1, True),
    "attention_dropout_rate": ("number", 0, 1, True),
}


def _check_values(merged, config):
    """A ConfigError naming the key, the value and what is accepted, for a value of the
    wrong type or out of range (a string ``"1e-12"``, a negative epsilon, ``1.5`` dropout)."""
    source = config if isinstance(config, (str, os.PathLike)) else "the config"
    for key, (kind, low, high, low_ok) in _RANGES.items():
        value = merged.get(key)
        if value is None:
            continue
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
            accepted = f"an integer >= {low}"
        else:
            ok = numeric and (value >= low if low_ok else value > low)
            ok = ok and (high is None or value < high) and value == value  # NaN fails
            accepted = f"a number {'>=' if low_ok else '>'} {low}" + (
                f" and < {high}" if high is not None else ""
            )
        if not ok:
            raise ConfigError(
                f"Config key {key!r} in {source} is {value!r}; it must be {accepted}"
                f"{' (a JSON number, not a string)' if isinstance(value, str) else ''}."
            )
