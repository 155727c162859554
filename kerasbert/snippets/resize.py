"""bert4keras's ``orthogonally_resize``: a weight array resized to another shape, numpy only.

bert4keras uses it to load a checkpoint into a model whose sizes differ (its
``autoresize_weights``): every axis that grows is tiled block by block, every axis that
shrinks is cut, and the result is rescaled to the original Frobenius norm.
"""

import numpy as np

from kerasbert.errors import SnippetError


def orthogonally_resize(a, new_shape, window=2):
    """Resize the array ``a`` to ``new_shape`` by tiling blocks and cutting, keeping its norm.

    For each axis of size ``d1`` to become ``d2``: if ``d2 > d1``, the axis is split into
    blocks of ``window`` consecutive entries, each block is repeated ``k = ceil(d2 / d1)``
    times in place (blocks ``B0 B1`` become ``B0 B0 B1 B1`` for ``k = 2``), and the axis is
    cut to its first ``d2`` entries; if ``d2 < d1``, it is cut to its first ``d2`` entries.
    Finally the array is scaled so that its Frobenius norm equals that of ``a``.

    Args:
        a: the array (anything ``np.asarray`` takes).
        new_shape: the target shape, with as many axes as ``a``.
        window: the block size along a growing axis; each growing axis's size must be a
            multiple of it.

    Returns:
        A float numpy array of shape ``new_shape`` (all zeros if ``a`` is).

    Raises:
        SnippetError: ``new_shape`` has another number of axes, a size is not positive, or a
            growing axis is not a multiple of ``window``.

    Example:

    >>> out = orthogonally_resize(np.array([[1.0, 2.0, 3.0, 4.0]]), (1, 6))
    >>> np.round(out / np.sqrt(30 / 35), 6)  # [1 2 | 3 4] -> [1 2 1 2 3 4], norm kept
    array([[1., 2., 1., 2., 3., 4.]])
    """
    a = np.asarray(a)
    new_shape = tuple(int(d) for d in new_shape)
    if a.ndim != len(new_shape):
        raise SnippetError(
            f"orthogonally_resize: new_shape {new_shape} has {len(new_shape)} axes but the "
            f"array has {a.ndim} (shape {a.shape}); give one size per axis."
        )
    if any(d < 1 for d in new_shape):
        raise SnippetError(f"orthogonally_resize: the sizes of {new_shape} must be positive.")
    if window < 1:
        raise SnippetError(f"orthogonally_resize: window must be a positive int; got {window}.")
    norm = np.linalg.norm(a)
    for axis, (d1, d2) in enumerate(zip(a.shape, new_shape)):
        if d2 <= d1:
            continue
        if d1 % window:
            raise SnippetError(
                f"orthogonally_resize: axis {axis} grows from {d1} to {d2}, but {d1} is not "
                f"a multiple of window={window}; pass a window that divides {d1} (1 tiles "
                "single entries)."
            )
        k = -(-d2 // d1)
        blocks = a.reshape(a.shape[:axis] + (d1 // window, window) + a.shape[axis + 1 :])
        blocks = np.repeat(blocks, k, axis=axis)
        a = blocks.reshape(a.shape[:axis] + (d1 * k,) + a.shape[axis + 1 :])
    a = a[tuple(slice(0, d) for d in new_shape)].astype(np.result_type(a.dtype, np.float32))
    new_norm = np.linalg.norm(a)
    return a if new_norm == 0 else a / new_norm * norm
