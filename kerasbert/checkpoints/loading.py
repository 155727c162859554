"""Loading a checkpoint into a model through its variable mapping.

A variable mapping is data: ``{layer name: {variable path in the layer: source}}``, where a
source is a canonical checkpoint name, or ``(name, transform)`` with ``transform`` one of

- ``"T"``: the checkpoint stores the transpose (e.g. ``cls/seq_relationship/output_weights``);
- ``"vocab"``: rows are token ids, so ``keep_tokens`` / ``compound_tokens`` apply.

Loading checks every mapped variable (present, right shape) before assigning any, so a model
is never half-loaded; then it reads, converts and assigns one array at a time.
"""

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from kerasbert.errors import WeightLoadingError
from kerasbert.progress import progress_bar


@dataclass
class LoadReport:
    """What a load did.

    Attributes:
        loaded: ``(model variable path, checkpoint name)`` pairs assigned.
        unused: checkpoint names no model variable took (optimizer slots, heads the
            model lacks, step counters).
        problems: descriptions of missing or misshaped variables (non-empty only with
            ``ignore_invalid_weights=True``).
        untouched: paths of model variables outside the mapped layers (layers a script
            added around the builder's, e.g. a label embedding feeding a conditional
            layer norm), left as they were.
    """

    loaded: list = field(default_factory=list)
    unused: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    untouched: list = field(default_factory=list)


def layer_variables(layer):
    """A layer's variables keyed by their path inside the layer (``query/kernel``)."""
    prefix = layer.name + "/"
    found = {}
    for variable in layer.weights:
        path = variable.path
        found[path[len(prefix) :] if path.startswith(prefix) else variable.name] = variable
    return found


def _vocab_rows(array, keep_tokens, compound_tokens):
    if keep_tokens is not None:
        array = array[np.asarray(keep_tokens)]
    if compound_tokens:
        extra = []
        for item in compound_tokens:
            ids, weights = item if isinstance(item, tuple) else (item, [1.0] * len(item))
            extra.append(np.average(array[np.asarray(ids)], axis=0, weights=weights))
        array = np.concatenate([array, np.stack(extra).astype(array.dtype)], axis=0)
    return array


def _expected_shape(shape, transform, keep_tokens, compound_tokens):
    shape = tuple(shape)
    if transform == "T":
        return tuple(reversed(shape))
    if transform == "vocab":
        rows = len(keep_tokens) if keep_tokens is not None else shape[0]
        return (rows + len(compound_tokens or ()),) + shape[1:]
    return shape


def _plan(model, checkpoint, mapping, keep_tokens, compound_tokens, keep_initial, model_layers):
    """Pair model variables with checkpoint names; collect what does not fit, and the
    variables of layers outside ``model_layers`` (left alone)."""
    layers = {layer.name: layer for layer in model.layers}
    plan, problems, mapped = [], [], set()
    for layer_name, sources in mapping.items():
        layer = layers.get(layer_name)
        if layer is None:
            continue
        variables = layer_variables(layer)
        for var_name, source in sources.items():
            name, transform = source if isinstance(source, tuple) else (source, None)
            variable = variables.get(var_name)
            if variable is None:
                raise KeyError(f"mapping names {layer_name}/{var_name}, which does not exist")
            mapped.add(variable.path)
            if name not in checkpoint:
                problems.append(
                    f"missing: {name!r} (for {variable.path}){checkpoint.suggest(name)}"
                )
                continue
            shape = _expected_shape(checkpoint.shape(name), transform, keep_tokens, compound_tokens)
            if shape != tuple(variable.shape):
                problems.append(
                    f"shape mismatch: {name!r} is {checkpoint.shape(name)} in the "
                    f"checkpoint, the model's {variable.path} needs {tuple(variable.shape)}"
                )
                continue
            plan.append((variable, name, transform))
    keep_initial = [re.compile(pattern) for pattern in keep_initial]
    owned = set(layers) if model_layers is None else set(model_layers)
    untouched, seen = [], set()
    for layer in model.layers:
        for variable in layer.weights:
            if id(variable) in seen or variable.path in mapped:
                continue
            seen.add(id(variable))
            if layer.name not in owned:
                untouched.append(variable.path)
            elif not any(p.search(variable.path) for p in keep_initial):
                problems.append(f"no checkpoint variable is mapped to {variable.path}")
    return plan, problems, untouched


def load_weights(
    model,
    checkpoint,
    mapping,
    ignore_invalid_weights=False,
    keep_tokens=None,
    compound_tokens=None,
    keep_initial=(),
    model_layers=None,
    progress=False,
):
    """Assign a checkpoint's variables to a model through a variable mapping.

    Args:
        model: a built ``keras.Model``.
        checkpoint: an open :class:`kerasbert.checkpoints.Checkpoint`.
        mapping: ``{layer name: {variable path in layer: source}}`` (module docstring).
            Layers the model does not have are skipped.
        ignore_invalid_weights: warn about missing / misshaped variables and load the
            rest, instead of raising.
        keep_tokens: token ids to keep from the checkpoint's vocabulary, in order.
        compound_tokens: extra tokens, each a list of ids (or ``(ids, weights)``) whose
            embeddings are averaged.
        keep_initial: regexes of variable paths that no checkpoint holds and that keep their
            initial values (e.g. a conditional layer norm's projections).
        model_layers: names of the layers whose every variable the checkpoint must provide
            (a builder's own layers); variables of the model's other layers are left as they
            are and listed in ``LoadReport.untouched``. None: every layer of the model.
        progress: draw a progress bar over the variables (``True``, ``"auto"``: in a
            terminal or notebook, ``False``; :func:`kerasbert.progress.progress_bar`).

    Returns:
        A :class:`LoadReport`.

    Raises:
        WeightLoadingError: listing every missing or misshaped variable, with the nearest
            names the checkpoint does have. Nothing is assigned in that case.

    Example:

    >>> import kerasbert, numpy as np
    >>> from kerasbert.checkpoints import ArrayCheckpoint
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    ...      "num_attention_heads": 1, "intermediate_size": 8})
    >>> load_weights(model, ArrayCheckpoint({}), {"Embedding-Token":
    ...     {"embeddings": "bert/embeddings/word_embeddings"}})
    Traceback (most recent call last):
    ...
    kerasbert.errors.WeightLoadingError: ...
    """
    plan, problems, untouched = _plan(
        model, checkpoint, mapping, keep_tokens, compound_tokens, keep_initial, model_layers
    )
    report = LoadReport(problems=problems, untouched=untouched)
    if problems:
        listing = "\n  ".join(problems[:40])
        more = f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""
        message = (
            f"{len(problems)} model weight(s) could not be loaded from {checkpoint.path!r} "
            f"({checkpoint.format}):\n  {listing}{more}\n"
        )
        if not ignore_invalid_weights:
            raise WeightLoadingError(
                message + "Check that the config and model= match the checkpoint, or pass "
                "ignore_invalid_weights=True to load the rest and keep the others random."
            )
        warnings.warn(message + "These weights keep their random initial values.", stacklevel=3)

    used = set()
    with progress_bar(total=len(plan), desc="loading", unit="var", enabled=progress) as bar:
        for variable, name, transform in plan:
            array = checkpoint.read(name)
            if transform == "T":
                array = array.T
            elif transform == "vocab":
                array = _vocab_rows(array, keep_tokens, compound_tokens)
            variable.assign(array.astype(variable.dtype, copy=False))
            report.loaded.append((variable.path, name))
            used.add(name)
            bar.update(1)
    report.unused = [name for name in checkpoint.names() if name not in used]
    return report
