"""Model builders and ``build_transformer_model``, the bert4keras-style factory.

Every family's builder class is importable from here under its class name and bert4keras's
aliases (``from kerasbert.models import BERT, ALBERT, ALBERT_Unshared, NEZHA``): the names
come from the family registry (:mod:`kerasbert.families`), so adding a family adds them.
"""

from kerasbert import families
from kerasbert.models.decoding import IncrementalModel, copy_cache
from kerasbert.models.export import (
    mapping_for_model,
    model_arrays,
    save_safetensors,
    save_tf_checkpoint,
)
from kerasbert.models.factory import (
    CONFIG_KEYS,
    build_transformer_model,
    extend_with_language_model,
    extend_with_unified_language_model,
    resolve_model,
)
from kerasbert.models.remat import RematModel
from kerasbert.models.transformer import Transformer


def _builder_classes():
    """``{class name or bert4keras alias: its ModelEntry}`` over every registered model."""
    found = {}
    for family in families.FAMILIES.values():
        for entry in family.models:
            for name in (entry.builder.partition(":")[2],) + entry.aliases:
                found[name] = entry
    return found


def __getattr__(name):
    entry = _builder_classes().get(name)
    if entry is None:
        raise AttributeError(f"module 'kerasbert.models' has no attribute {name!r}")
    return entry.builder_class()


def __dir__():
    return sorted(set(globals()) | set(_builder_classes()))


__all__ = [
    "CONFIG_KEYS",
    "IncrementalModel",
    "RematModel",
    "Transformer",
    "build_transformer_model",
    "copy_cache",
    "extend_with_language_model",
    "extend_with_unified_language_model",
    "mapping_for_model",
    "model_arrays",
    "resolve_model",
    "save_safetensors",
    "save_tf_checkpoint",
    *sorted(_builder_classes()),
]
