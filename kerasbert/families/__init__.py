"""The family registry: one record per model family, and the questions asked of them.

Each module of this package holds one family's record (:class:`Family`); :data:`FAMILIES`
lists them. Everything else in kerasbert asks the registry instead of naming a family:
which builder a ``model=`` name means (:func:`model_entry`), which family a checkpoint's
names, a config or a built model's layers show (:func:`detect_from_names`,
:func:`detect_from_config`, :func:`detect_from_layers`), and how a format's stored names
translate to canonical ones and back (:func:`translate_stored_names`, :func:`name_table`).
Adding a family is adding its module here and its line in :data:`FAMILIES`
(``docs/architecture.md``).

Example:

>>> model_entry("roberta").builder_class().__name__, get("albert").tf_files[0]
('BERT', 'albert_model.ckpt')
>>> candidates_from_names(["bert/encoder/layer_0/output/LayerNorm/gamma"])
['nezha', 'roformer']
>>> candidates_from_names(["bert/encoder/layer_0/attention/self/query/kernel"])
['roformer_v2']
"""

from kerasbert.errors import ModelTypeError
from kerasbert.families.albert import ALBERT
from kerasbert.families.bert import BERT
from kerasbert.families.electra import ELECTRA
from kerasbert.families.gpt2 import GPT2
from kerasbert.families.naming import NameTable, Placement, Rule, Slot
from kerasbert.families.nezha import NEZHA
from kerasbert.families.record import Detection, Family, ModelEntry
from kerasbert.families.roformer import ROFORMER
from kerasbert.families.roformer_v2 import ROFORMER_V2
from kerasbert.families.t5 import T5

FAMILIES = {
    family.name: family
    for family in (BERT, ALBERT, NEZHA, ROFORMER, ROFORMER_V2, ELECTRA, GPT2, T5)
}
DEFAULT = "bert"  # the family of a checkpoint and a config that show none


def names():
    """The registered family names, in registration order."""
    return list(FAMILIES)


def model_names():
    """Every name ``build_transformer_model(model=...)`` accepts, sorted."""
    return sorted(entry.name for family in FAMILIES.values() for entry in family.models)


def get(name):
    """The :class:`Family` called ``name``, or owning the ``model=`` name ``name`` (a
    :class:`Family` passed in is returned as it is).

    Raises:
        ModelTypeError: naming the known families and models.

    Example:

    >>> get("albert_unshared").name, get("nezha").hf_class
    ('albert', 'Nezha')
    """
    if isinstance(name, Family):
        return name
    if isinstance(name, str):
        key = name.lower()
        if key in FAMILIES:
            return FAMILIES[key]
        for family in FAMILIES.values():
            if any(entry.name == key for entry in family.models):
                return family
    raise ModelTypeError(
        f"Unknown model family {name!r}; known families: {names()}, models: {model_names()}."
    )


def model_entry(name):
    """The :class:`ModelEntry` of a ``model=`` name (``"bert"``, ``"albert_unshared"``...).

    Raises:
        ModelTypeError: for an unknown name, listing the known ones.
    """
    key = name.lower() if isinstance(name, str) else name
    for family in FAMILIES.values():
        for entry in family.models:
            if entry.name == key:
                return entry
    raise ModelTypeError(f"Unknown model {name!r}; available: {model_names()} or 'auto'.")


def _single(found, what):
    if len(found) > 1:
        raise ModelTypeError(
            f"{what} fit(s) several families: {found}; pass model= to say which one."
        )
    return found[0] if found else None


def candidates_from_names(names, hint=None):
    """Every family whose canonical checkpoint names these could be, in registration order.

    Families whose names agree (NEZHA and RoFormer both have BERT's names without
    ``position_embeddings``) are all listed, unless ``hint`` is one of them: then only it.

    Args:
        names: canonical variable names of a checkpoint.
        hint: a family the stored names' own spelling points to (a checkpoint's
            ``family_hint``).

    Example:

    >>> candidates_from_names(["bert/encoder/layer_0/output/LayerNorm/gamma"], hint="nezha")
    ['nezha']
    """
    names = list(names)
    found = [f.name for f in FAMILIES.values() if f.checkpoint_names.matches(names)]
    return [hint] if hint in found else found


def checkpoint_candidates(checkpoint):
    """:func:`candidates_from_names` of an open :class:`kerasbert.checkpoints.Checkpoint`
    (its names and ``family_hint``); empty for a format whose names are not canonical."""
    if not checkpoint.names_are_canonical:
        return []
    return candidates_from_names(checkpoint.names(), checkpoint.family_hint)


def detect_from_names(names, hint=None):
    """The family whose canonical checkpoint names these are, or None.

    Args:
        names: canonical variable names of a checkpoint.
        hint: a family the stored names' own spelling points to (a checkpoint's
            ``family_hint``); it decides between families whose canonical names agree.

    Raises:
        ModelTypeError: when the names fit several families and the hint is none of them.

    Example:

    >>> detect_from_names(["bert/embeddings/position_embeddings", "bert/encoder/layer_0/a"])
    'bert'
    """
    return _single(candidates_from_names(names, hint), "The checkpoint's variable names")


def detect_checkpoint(checkpoint):
    """The family of an open :class:`kerasbert.checkpoints.Checkpoint`, or None: unknown,
    ambiguous (names several families share, no hint: :func:`checkpoint_candidates` lists
    them), or a format whose names are not canonical, such as Keras ``.weights.h5``."""
    found = checkpoint_candidates(checkpoint)
    return found[0] if len(found) == 1 else None


def detect_from_layers(layer_names):
    """The :class:`Family` of a model kerasbert built, from its layer names, or None.

    ``layer_names`` may include ``"layer/weight"`` paths (:func:`model_layer_names`): some
    families have the same layers and differ in their weights (RoFormer v1 and v2)."""
    layer_names = list(layer_names)
    found = [f for f in FAMILIES.values() if f.layer_names.matches(layer_names)]
    return _single(found, "The model's layer names")


def model_layer_names(model):
    """A built model's layer names and ``"layer/weight"`` paths, for :func:`detect_from_layers`.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")], name="m")
    >>> model_layer_names(model)
    ['d', 'd/kernel', 'd/bias', 'model:m']

    The model's own name comes last, as ``"model:<name>"``: what tells a bare ELECTRA, whose
    layers are BERT's, from a BERT.
    """
    found = []
    for layer in model.layers:
        found.append(layer.name)
        found += [f"{layer.name}/{weight.name}" for weight in layer.weights]
    return found + [f"model:{model.name}"]


def detect_from_config(config):
    """The family a config names (``model_type``) or shows (its keys), or None.

    Example:

    >>> detect_from_config({"model_type": "albert"}), detect_from_config({"inner_group_num": 1})
    ('albert', 'albert')
    >>> detect_from_config({"use_relative_position": True}), detect_from_config({})
    ('nezha', None)
    >>> detect_from_config({"rotary_value": False})
    'roformer'
    """
    model_type = str(config.get("model_type", "")).lower()
    for family in FAMILIES.values():
        if model_type in family.model_types or model_type in {m.name for m in family.models}:
            return family.name
    for family in FAMILIES.values():
        if any(config.get(key) not in (None, False) for key in family.config_markers):
            return family.name
        if any(key in config for key in family.config_signatures):
            return family.name
    return None


def read_family_config(config, family=None):
    """``config`` with kerasbert's (BERT's) keys filled in from those of ``family`` (default:
    the family that claims it, :func:`detect_from_config`): the record's ``config_names``
    and ``config_defaults``; configs of other families are returned as they are.

    Example:

    >>> read_family_config({"model_type": "bert", "hidden_size": 8})
    {'model_type': 'bert', 'hidden_size': 8}
    """
    name = family or detect_from_config(config)
    family = get(name) if name else None
    if family is None or not (family.config_names or family.config_defaults):
        return config
    config = dict(config)
    for key, spellings in family.config_names.items():
        if config.get(key) is None:
            found = [config[s] for s in spellings if config.get(s) is not None]
            if found:
                config[key] = found[0]
    for key, default in family.config_defaults.items():
        if config.get(key) is None:
            config[key] = default(config) if callable(default) else default
    return config


def write_family_config(config, family):
    """An HF-style config for ``family`` from one in kerasbert's keys: each key the
    record's ``config_names`` renames is written under the family's first spelling
    (``n_embd`` for GPT-2's ``hidden_size``), and only there."""
    names = get(family).config_names
    config = dict(config)
    for key, spellings in names.items():
        if key in config:
            value = config.pop(key)
            for spelling in spellings:
                config.pop(spelling, None)
            config[spellings[0]] = value
    return dict(sorted(config.items()))


def config_keys():
    """Config keys some family adds to the common ones (``max_relative_position``, ...)."""
    return {key for family in FAMILIES.values() for key in family.config_keys}


def name_table(family, naming):
    """The :class:`NameTable` of ``family`` for a naming (``"hf"``, ``"hf_tf"``), or None
    where that naming is the canonical one."""
    return get(family).names.get(naming)


def translate_stored_names(naming, stored_names):
    """Canonical names for the names stored in one file of a naming (format).

    The family whose table reads the most names translates all of them (each file holds
    one model); names no rule reads keep their stored name, with ``/`` separators, so they
    show as unused rather than vanish.

    Args:
        naming: ``"hf"`` (torch / safetensors), ``"hf_tf"`` (``tf_model.h5``) or
            ``"tensorflow"`` (canonical names: no family has a table, names pass as they are).
        stored_names: the names in the file.

    Returns:
        ``(family or None, {stored name: [Placement, ...] or None})``: where each canonical
        tensor lies in the stored one (:class:`kerasbert.families.naming.Placement`; several
        for a tensor that holds several, GPT-2's fused ``c_attn``); None marks names that
        hold no model weight (buffers, tied copies). The family is returned only when its
        table read strictly more names than every other.

    Example:

    >>> family, names = translate_stored_names("hf", ["albert.pooler.weight", "position_ids"])
    >>> [(p.canonical, p.transpose) for p in names["albert.pooler.weight"]]
    [('bert/pooler/dense/kernel', True)]
    >>> family, names["position_ids"]
    ('albert', None)
    """
    stored_names = list(stored_names)
    scored = []
    for family in FAMILIES.values():
        table = family.names.get(naming)
        if table is not None:
            read = sum(table.is_skipped(n) or table.translate(n) is not None for n in stored_names)
            scored.append((read, family, table))
    separator = "." if naming == "hf" else "/"

    def as_is(name):
        return [Placement(name, name.replace(separator, "/"))]

    if not scored:
        return None, {name: as_is(name) for name in stored_names}
    best = max(score for score, _, _ in scored)
    winners = [(family, table) for score, family, table in scored if score == best]
    family, table = winners[0]
    translated = {}
    for name in stored_names:
        if table.is_skipped(name):
            translated[name] = None
        else:
            translated[name] = table.translate(name) or as_is(name)
    return (family.name if len(winners) == 1 and best else None), translated


__all__ = [
    "DEFAULT",
    "Detection",
    "FAMILIES",
    "Family",
    "ModelEntry",
    "NameTable",
    "Placement",
    "Rule",
    "Slot",
    "candidates_from_names",
    "checkpoint_candidates",
    "config_keys",
    "detect_checkpoint",
    "detect_from_config",
    "detect_from_layers",
    "detect_from_names",
    "get",
    "model_entry",
    "model_layer_names",
    "model_names",
    "name_table",
    "names",
    "read_family_config",
    "translate_stored_names",
    "write_family_config",
]
