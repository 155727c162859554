"""``K``'s Keras 2 functions that rearrange tensors: ``reshape``, ``flatten`` (both as
bert4keras extended them), ``batch_flatten``, ``repeat``, ``repeat_elements``, ``reverse``,
``temporal_padding``, and ``prod`` (which keeps shape arithmetic static).
"""

import math

import numpy as np  # noqa: F401 (the doctests use it)
from keras import ops

from kerasbert.errors import Keras2ArgumentError


def _to_numpy(x):
    return ops.convert_to_numpy(x)


def prod(x, axis=None, keepdims=False):
    """Product of the elements of ``x`` along ``axis``.

    A tuple or list of Python ints (a shape, e.g. ``K.shape(x)[2:]``) gives a Python int, so
    shape arithmetic such as ``K.reshape(y, (shape[0], -1, K.prod(shape[2:])))`` stays
    static inside a compiled step (Keras 2 built a shape tensor there).

    Args:
        x: tensor, or a sequence of ints.
        axis: axis (or axes) to reduce; None for all.
        keepdims: keep the reduced axes with size 1.

    Example:

    >>> prod((2, 3, 4)[1:])
    12
    >>> _to_numpy(prod(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=1)).tolist()
    [2.0, 12.0]
    """
    static = isinstance(x, (tuple, list)) and all(isinstance(d, int) for d in x)
    if static and axis is None and not keepdims:
        return math.prod(x)
    return ops.prod(x, axis=axis, keepdims=keepdims)


def repeat_elements(x, rep, axis):
    """Repeat each element ``rep`` times along ``axis`` (``[a, b]`` -> ``[a, a, b, b]``).

    Args:
        x: tensor.
        rep: number of repeats.
        axis: the axis to repeat along.

    Example:

    >>> _to_numpy(repeat_elements(np.array([1, 2]), 2, 0)).tolist()
    [1, 1, 2, 2]
    """
    return ops.repeat(x, rep, axis=axis)


def repeat(x, n):
    """Repeat a 2-D tensor ``(batch, d)`` into ``(batch, n, d)`` (Keras 2's ``repeat``;
    keras.ops' ``repeat`` is Keras 2's ``repeat_elements``).

    Args:
        x: tensor of shape ``(batch, d)``.
        n: number of copies.

    Example:

    >>> repeat(np.ones((2, 3)), 4).shape
    (2, 4, 3)
    """
    if len(x.shape) != 2:
        raise Keras2ArgumentError(
            f"K.repeat takes a 2-D tensor (batch, d); got shape {tuple(x.shape)}. For other "
            "ranks write K.repeat_elements(x, n, axis) or K.tile(x, multiples)."
        )
    return ops.repeat(ops.expand_dims(x, 1), n, axis=1)


def _static_shape(tensor):
    return tuple(ops.shape(tensor))


def reshape(tensor, *args):
    """Reshape ``tensor``, as bert4keras's ``K.reshape``: ``(tensor, shape)`` like Keras 2,
    or ``(tensor, shape1, axis1, shape2, axis2, ...)`` to split (or keep) single axes.

    Args:
        tensor: tensor.
        *args: a full target shape, or pairs (new shape of one axis, that axis); one ``-1``
            per pair stands for the rest of that axis.

    Example:

    >>> reshape(np.ones((2, 12)), (2, 3, 4)).shape
    (2, 3, 4)
    >>> reshape(np.ones((2, 12, 5)), (3, -1), 1).shape
    (2, 3, 4, 5)
    """
    if len(args) == 1:
        return ops.reshape(tensor, tuple(args[0]))
    if not args or len(args) % 2:
        raise Keras2ArgumentError(
            "K.reshape takes (tensor, shape) or (tensor, shape1, axis1, shape2, axis2, ...); "
            f"got {len(args)} arguments after the tensor."
        )
    groups = [[d] for d in _static_shape(tensor)]
    for new, axis in zip(args[::2], args[1::2]):
        new = list(new)
        if new.count(-1) > 1:
            raise Keras2ArgumentError(f"K.reshape: at most one -1 per axis; got {new}.")
        if -1 in new and groups[axis] != [None] and len(groups[axis]) == 1:
            new[new.index(-1)] = groups[axis][0] // math.prod(d for d in new if d != -1)
        groups[axis] = new
    shape = [-1 if d is None else d for group in groups for d in group]
    return ops.reshape(tensor, tuple(shape))


def flatten(tensor, start=None, end=None):
    """Merge axes ``start`` to ``end`` (exclusive) into one, as bert4keras's ``K.flatten``;
    with no bounds, a 1-D tensor as in Keras 2.

    Args:
        tensor: tensor.
        start: first axis to merge (0 when None).
        end: axis after the last one to merge (the rank when None).

    Example:

    >>> flatten(np.ones((2, 3, 4))).shape
    (24,)
    >>> flatten(np.ones((2, 3, 4)), -2).shape
    (2, 12)
    """
    shape = _static_shape(tensor)
    start, end = start or 0, end or len(shape)
    merged = shape[start:end]
    size = -1 if None in merged else math.prod(merged)
    new = [-1 if d is None else d for d in shape[:start] + (size,) + shape[end:]]
    return ops.reshape(tensor, tuple(new))


def batch_flatten(x):
    """Flatten every axis but the first: ``(batch, ...)`` -> ``(batch, prod(...))``.

    Args:
        x: tensor of rank >= 1.

    Example:

    >>> batch_flatten(np.ones((2, 3, 4))).shape
    (2, 12)
    """
    return flatten(x, 1)


def reverse(x, axes):
    """Reverse ``x`` along ``axes``.

    Args:
        x: tensor.
        axes: an axis or a list of axes.

    Example:

    >>> _to_numpy(reverse(np.array([[1, 2], [3, 4]]), 1)).tolist()
    [[2, 1], [4, 3]]
    """
    return ops.flip(x, axis=tuple(axes) if isinstance(axes, (list, tuple)) else axes)


def temporal_padding(x, padding=(1, 1)):
    """Pad axis 1 of a 3-D tensor with zeros: ``padding = (left, right)``.

    Args:
        x: tensor ``(batch, steps, features)``.
        padding: numbers of zeros before and after.

    Example:

    >>> temporal_padding(np.ones((2, 3, 4)), (0, 2)).shape
    (2, 5, 4)
    """
    return ops.pad(x, [[0, 0], list(padding), [0, 0]])
