"""Loading a checkpoint into a model through its variable mapping.

A variable mapping is data: ``{layer name: {variable path in the layer: source}}``, where a
source is a canonical checkpoint name, or ``(name, transform)`` with ``transform`` one of

- ``"T"``: the checkpoint stores the transpose (e.g. ``cls/seq_relationship/output_weights``);
- ``"vocab"``: rows are token ids, so ``keep_tokens`` / ``compound_tokens`` apply;
- ``"vocab_columns"``: columns are token ids (T5's untied output kernel, ``[hidden, vocab]``).

Loading is all or nothing: every mapped variable is checked (present, right shape), then
every array is read and checked (its checksum where the format has one, a float dtype for a
float weight, finite values), and only then is anything assigned; a bad file leaves the
model as it was. The checked arrays are held until assigned, so a load briefly needs about
two copies of the weights (the model's and the file's).
"""

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from kerasbert.errors import ConfigError, WeightLoadingError
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


def check_vocab_options(keep_tokens, compound_tokens, rows):
    """Raise a ConfigError unless ``keep_tokens`` / ``compound_tokens`` are ids among a
    vocabulary of ``rows`` (no negative ids: ``-1`` would quietly take the last row).

    Example:

    >>> check_vocab_options([0, 5, 2], [[1, 2], ([3], [1.0])], rows=6)
    >>> check_vocab_options([0, -1], None, rows=6)
    Traceback (most recent call last):
    ...
    kerasbert.errors.ConfigError: keep_tokens[1] is -1; ...
    """

    def check_ids(ids, what):
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__") or len(ids) == 0:
            raise ConfigError(f"{what} must be a non-empty list of token ids, got {ids!r}.")
        for i, token in enumerate(ids):
            ok = isinstance(token, (int, np.integer)) and not isinstance(token, bool)
            if not ok or not 0 <= token < rows:
                raise ConfigError(
                    f"{what}[{i}] is {token!r}; token ids must be ints in [0, {rows}) for a "
                    f"checkpoint vocabulary of {rows} rows."
                )

    if keep_tokens is not None:
        check_ids(keep_tokens, "keep_tokens")
    for n, item in enumerate(compound_tokens or ()):
        ids, weights = item if isinstance(item, tuple) else (item, None)
        check_ids(ids, f"compound_tokens[{n}]")
        if weights is not None and (len(weights) != len(ids) or sum(weights) <= 0
                                    or any(w < 0 for w in weights)):  # fmt: skip
            raise ConfigError(
                f"compound_tokens[{n}] weights {weights!r} must be as many as its ids "
                f"({len(ids)}), non-negative, with a positive sum."
            )


def _expected_shape(shape, transform, keep_tokens, compound_tokens):
    shape = tuple(shape)
    if transform == "T":
        return tuple(reversed(shape))
    if transform == "vocab" and shape:
        rows = len(keep_tokens) if keep_tokens is not None else shape[0]
        return (rows + len(compound_tokens or ()),) + shape[1:]
    if transform == "vocab_columns" and len(shape) == 2:
        columns = len(keep_tokens) if keep_tokens is not None else shape[1]
        return (shape[0], columns + len(compound_tokens or ()))
    return shape


def _mismatch(checkpoint, name, expected, variable):
    """A shape-mismatch line that says which layout each shape is in."""
    canonical = checkpoint.shape(name)
    entry = checkpoint.entry(name)
    stored = tuple(entry.shape)
    text = f"shape mismatch: {name!r} is {canonical} in the checkpoint"
    index, count = getattr(entry, "part", (0, 1))
    if count > 1:  # one of several tensors stored side by side (GPT-2's c_attn)
        text += f" (part {index + 1} of {count} of {entry.source_name!r}, stored as {stored})"
    elif stored != canonical:
        how = "transposed" if entry.transpose else "with leading axes of size 1"
        text += f" (stored {how}, as {stored})"
    if expected != canonical:
        text += f", {expected} as the model takes it"
    return text + f"; the model's {variable.path} needs {tuple(variable.shape)}"


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
            if transform == "vocab" and checkpoint.shape(name):  # a scalar is a mismatch
                check_vocab_options(keep_tokens, compound_tokens, checkpoint.shape(name)[0])
            if transform == "vocab_columns" and len(checkpoint.shape(name)) == 2:
                check_vocab_options(keep_tokens, compound_tokens, checkpoint.shape(name)[1])
            shape = _expected_shape(checkpoint.shape(name), transform, keep_tokens, compound_tokens)
            if shape != tuple(variable.shape):
                problems.append(_mismatch(checkpoint, name, shape, variable))
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
    unused_not_allowed=(),
    allow_non_finite=False,
):
    """Assign a checkpoint's variables to a model through a variable mapping.

    Args:
        model: a built ``keras.Model``.
        checkpoint: an open :class:`kerasbert.checkpoints.Checkpoint`.
        mapping: ``{layer name: {variable path in layer: source}}`` (module docstring).
            Layers the model does not have are skipped.
        ignore_invalid_weights: warn about missing / misshaped variables (and unused ones
            matching ``unused_not_allowed``) and load the rest, instead of raising.
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
        unused_not_allowed: regexes of checkpoint names that must not be left unused (the
            blocks of a deeper model than the config describes: a config with fewer layers
            than the checkpoint would load silently into a different model).
        allow_non_finite: load NaN / inf values (by default they are an error: a model of
            NaNs is a corrupt file, not a model).

    Returns:
        A :class:`LoadReport`.

    Raises:
        WeightLoadingError: listing every missing, misshaped or wrongly typed variable, with
            the nearest names the checkpoint does have. Nothing is assigned in that case.
        CheckpointError: a variable that cannot be read (corrupt data, a failed checksum).
            Nothing is assigned in that case either.

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
    mapped = {name for _, name, _ in plan}
    patterns = [re.compile(p) for p in unused_not_allowed]
    extra = [n for n in checkpoint.names()
             if n not in mapped and any(p.search(n) for p in patterns)]  # fmt: skip
    if extra:
        problems.append(
            f"the checkpoint has {len(extra)} weights of blocks the model lacks, e.g. "
            f"{extra[:3]}: the config describes fewer layers (or groups) than the checkpoint "
            "holds; fix the config, or pass num_hidden_layers= explicitly to load the first "
            "layers only"
        )
    report = LoadReport(problems=problems, untouched=untouched)
    if problems:
        _raise_or_warn(problems, checkpoint, ignore_invalid_weights)

    # Read and check everything before assigning anything: a bad array leaves the model
    # as it was.
    arrays = []
    with progress_bar(total=len(plan), desc="loading", unit="var", enabled=progress) as bar:
        for variable, name, transform in plan:
            array = checkpoint.read(name)
            _check_values(array, name, variable, checkpoint, allow_non_finite)
            if transform == "T":
                array = array.T
            elif transform == "vocab":
                array = _vocab_rows(array, keep_tokens, compound_tokens)
            elif transform == "vocab_columns":
                array = _vocab_rows(array.T, keep_tokens, compound_tokens).T
            arrays.append(array.astype(variable.dtype, copy=False))
            bar.update(1)
    for (variable, name, _), array in zip(plan, arrays):
        variable.assign(array)
        report.loaded.append((variable.path, name))
    used = {name for _, name in report.loaded}
    report.unused = [name for name in checkpoint.names() if name not in used]
    return report


def _raise_or_warn(problems, checkpoint, ignore_invalid_weights):
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
    warnings.warn(message + "These weights keep their random initial values.", stacklevel=4)


def _check_values(array, name, variable, checkpoint, allow_non_finite):
    """A float weight takes float values only (an integer or bool tensor of the same size
    is a relabelled or corrupt file), and, unless allowed, finite ones."""
    stored = checkpoint.dtype(name)
    is_float = array.dtype.kind == "f" or "float" in array.dtype.name  # bfloat16 is kind 'V'
    if np.dtype(variable.dtype).kind == "f" and not is_float:
        raise WeightLoadingError(
            f"Variable {name!r} in {checkpoint.path!r} is {stored}, but the model's "
            f"{variable.path} is {variable.dtype}: a float weight stored as integers or "
            "booleans is a mislabelled or corrupt file; convert or download it again."
        )
    if not allow_non_finite and is_float and not np.isfinite(array).all():
        bad = int(array.size - np.isfinite(array).sum())
        raise WeightLoadingError(
            f"Variable {name!r} in {checkpoint.path!r} holds {bad} NaN or infinite values; "
            "the file is corrupt (or the model diverged when it was saved). Pass "
            "allow_non_finite=True to load it anyway."
        )
