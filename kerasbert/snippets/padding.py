"""Padding batches to one shape: :func:`sequence_padding` (bert4keras's) and :func:`pad_batch`.

:func:`sequence_padding` pads and truncates a batch's sequences to one length: the longest,
or with ``buckets`` the smallest bucket holding it (see
:func:`kerasbert.compilation.make_buckets`). :func:`pad_batch` fills the batch axis up to a
fixed batch size by repeating the first row. Together they keep the shapes a jitted model
sees, and so its compilations, to a bounded set.
"""

import numpy as np

from kerasbert.compilation import bucket_length
from kerasbert.errors import SnippetError


def sequence_padding(inputs, length=None, value=0, seq_dims=1, mode="post", buckets=None):
    """Pad (and truncate) sequences to one length and stack them into a numpy array.

    Args:
        inputs: a non-empty list of sequences (lists or arrays); all have the same shape
            beyond their first ``seq_dims`` axes.
        length: the padded length: an int (for every sequence axis) or one per axis; None
            for the longest in ``inputs`` (per axis). Longer sequences keep their first
            ``length`` items in both modes (as in bert4keras).
        value: the padding value.
        seq_dims: how many leading axes are padded (2 for e.g. pairwise label matrices).
        mode: ``"post"`` pads after the data, ``"pre"`` before it.
        buckets: with ``length=None``, round each axis's longest length up to the smallest
            of these (see :func:`make_buckets`), so that a corpus yields a bounded set of
            shapes; a length beyond the largest bucket is truncated to it.

    Returns:
        A numpy array of shape ``(len(inputs), *length, *rest)``.

    Example:

    >>> sequence_padding([[1, 2, 3], [4]])
    array([[1, 2, 3],
           [4, 0, 0]])
    >>> sequence_padding([[1, 2, 3], [4]], length=2, mode="pre", value=-1)
    array([[ 1,  2],
           [-1,  4]])
    >>> sequence_padding([[1, 2, 3], [4]], buckets=[4, 8]).shape
    (2, 4)
    """
    if mode not in ("post", "pre"):
        raise SnippetError(f'sequence_padding: mode must be "post" or "pre", got {mode!r}.')
    if inputs is None or len(inputs) == 0:
        raise SnippetError("sequence_padding: inputs is empty; pass at least one sequence.")
    shapes = [np.shape(x) for x in inputs]
    if any(len(shape) < seq_dims for shape in shapes):
        raise SnippetError(
            f"sequence_padding: seq_dims={seq_dims} but some inputs have fewer axes "
            f"(shapes {sorted(set(shapes))[:4]}); lower seq_dims or check the inputs."
        )
    if length is None:
        length = np.max([shape[:seq_dims] for shape in shapes], axis=0).tolist()
        if buckets is not None:
            length = [bucket_length(n, buckets) for n in length]
    elif np.ndim(length) == 0:
        length = [int(length)] * seq_dims
    else:
        length = [int(n) for n in length]
        if len(length) != seq_dims:
            raise SnippetError(
                f"sequence_padding: length {length} has {len(length)} entries for "
                f"seq_dims={seq_dims}; give one per padded axis or a single int."
            )
    cut = tuple(slice(None, n) for n in length)
    outputs = []
    for x in inputs:
        x = np.asarray(x)[cut]
        pad = [(0, 0)] * x.ndim
        for axis, n in enumerate(length):
            missing = n - x.shape[axis]
            pad[axis] = (0, missing) if mode == "post" else (missing, 0)
        outputs.append(np.pad(x, pad, "constant", constant_values=value))
    try:
        return np.array(outputs)
    except ValueError as e:
        raise SnippetError(
            f"sequence_padding: the inputs differ beyond their first {seq_dims} axes "
            f"({sorted(set(s[seq_dims:] for s in shapes))[:4]}); raise seq_dims or make "
            "them agree."
        ) from e


def pad_batch(batch, batch_size):
    """Pad the leading (batch) axis of every array in ``batch`` to ``batch_size`` rows.

    The missing rows repeat the first row, so they are valid inputs for any model (no
    all-padding rows whose attention has nothing to attend to); drop their outputs, e.g.
    ``model.predict_on_batch(pad_batch(inputs, 32))[:n]``. Together with length buckets
    this keeps a model's compiled shapes to one per bucket, the last smaller batch included.

    Args:
        batch: an array, or a list / tuple / dict (nested) of arrays with the same number
            of rows; None leaves pass through.
        batch_size: the rows wanted; batches already that large are returned unchanged.

    Example:

    >>> pad_batch([np.array([[1, 2], [3, 4]]), np.array([0, 1])], 3)
    [array([[1, 2],
           [3, 4],
           [1, 2]]), array([0, 1, 0])]
    """
    if isinstance(batch, dict):
        return {k: pad_batch(v, batch_size) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(pad_batch(x, batch_size) for x in batch)
    if batch is None:
        return None
    batch = np.asarray(batch)
    if batch.ndim == 0 or len(batch) == 0:
        raise SnippetError(
            f"pad_batch: got an array of shape {batch.shape}; every array needs at least one "
            "row to repeat."
        )
    missing = batch_size - len(batch)
    if missing <= 0:
        return batch
    return np.concatenate([batch, np.repeat(batch[:1], missing, axis=0)], axis=0)
