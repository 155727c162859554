"""``K``'s tensor functions whose Keras 2 meaning differs from ``keras.ops`` (or that
``keras.ops`` lacks): defaults, argument orders and broadcasting as in Keras 2.3 / tf.keras,
and bert4keras's broadcasting ``K.where``. The shape-rearranging ones are in ``_shapes``.
"""

import string

import keras
import numpy as np
from keras import ops

from kerasbert.errors import Keras2ArgumentError


def _to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def _rounded(x):
    # For the doctests: float32 values as short decimals.
    return np.round(np.asarray(_to_numpy(x), "float64"), 4).tolist()


def concatenate(tensors, axis=-1):
    """Join tensors along ``axis``; Keras 2's default axis is the last (keras.ops': 0).

    Args:
        tensors: a list of tensors.
        axis: the axis to join along.

    Example:

    >>> concatenate([np.ones((2, 1)), np.zeros((2, 2))]).shape
    (2, 3)
    """
    return ops.concatenate(list(tensors), axis=axis)


def batch_dot(x, y, axes=None):
    """Per-example dot product of two batched tensors (Keras 2's ``batch_dot``).

    The result has ``x``'s axes other than the batch axis and ``axes[0]``, then ``y``'s other
    than the batch axis and ``axes[1]``; a result with only the batch axis gets a trailing
    axis of size 1.

    Args:
        x: tensor of rank >= 2, batch first.
        y: tensor of rank >= 2 with the same batch size.
        axes: an int (the same axis of both), a pair ``(axis_of_x, axis_of_y)``, or None:
            the last axis of ``x`` with the second-to-last of ``y`` (the last when ``y`` has
            rank 2), as a batched matmul.

    Example:

    >>> batch_dot(np.ones((32, 20, 1)), np.ones((32, 30, 20)), axes=(1, 2)).shape
    (32, 1, 30)
    >>> batch_dot(np.ones((32, 20)), np.ones((32, 20)), axes=1).shape
    (32, 1)
    """
    x_ndim, y_ndim = len(x.shape), len(y.shape)
    if x_ndim < 2 or y_ndim < 2:
        raise Keras2ArgumentError(
            f"K.batch_dot needs tensors of rank >= 2 (batch first); got shapes {x.shape} and "
            f"{y.shape}. For unbatched tensors write K.dot(x, y)."
        )
    if axes is None:
        axes = (x_ndim - 1, y_ndim - 1 if y_ndim == 2 else y_ndim - 2)
    elif isinstance(axes, int):
        axes = (axes, axes)
    a0, a1 = (int(a) % n for a, n in zip(axes, (x_ndim, y_ndim)))
    if 0 in (a0, a1):
        raise Keras2ArgumentError(
            f"K.batch_dot cannot contract the batch axis 0 (axes={axes}); pick axes >= 1."
        )
    letters = iter(string.ascii_letters[2:])
    x_sub = ["a"] + [next(letters) for _ in range(x_ndim - 1)]
    y_sub = ["a"] + [next(letters) for _ in range(y_ndim - 1)]
    y_sub[a1] = x_sub[a0] = "b"
    out = [s for i, s in enumerate(x_sub) if i != a0] + [
        s for i, s in enumerate(y_sub) if i not in (0, a1)
    ]
    result = ops.einsum(f"{''.join(x_sub)},{''.join(y_sub)}->{''.join(out)}", x, y)
    return ops.expand_dims(result, -1) if len(out) == 1 else result


def pow(x, a):
    """Element-wise ``x ** a`` (keras.ops calls it ``power``).

    Args:
        x: tensor.
        a: exponent (number or tensor).

    Example:

    >>> _to_numpy(pow(np.array([2.0, 3.0]), 2)).tolist()
    [4.0, 9.0]
    """
    return ops.power(x, a)


def permute_dimensions(x, pattern):
    """Transpose ``x`` so that output axis ``i`` is input axis ``pattern[i]``.

    Args:
        x: tensor.
        pattern: a permutation of ``range(ndim(x))``.

    Example:

    >>> permute_dimensions(np.ones((2, 3, 4)), (0, 2, 1)).shape
    (2, 4, 3)
    """
    return ops.transpose(x, axes=tuple(pattern))


def l2_normalize(x, axis=None):
    """``x / sqrt(max(sum(x**2, axis), 1e-12))``; Keras 2's default ``axis=None`` normalizes
    over every element.

    Args:
        x: tensor.
        axis: axis (or axes) to normalize along; None for all.

    Example:

    >>> _rounded(l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])))
    [[0.6, 0.8], [0.0, 0.0]]
    >>> _rounded(l2_normalize(np.array([[3.0, 4.0], [1.0, 0.0]]), axis=-1))
    [[0.6, 0.8], [1.0, 0.0]]
    """
    x = ops.convert_to_tensor(x)
    squares = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squares, ops.cast(1e-12, squares.dtype)))


def switch(condition, then_expression, else_expression):
    """``then_expression`` where ``condition`` holds, else ``else_expression`` (Keras 2's
    ``switch``; keras.ops' ``switch`` picks one of several branches by index instead).

    A condition of lower rank than the expressions gets trailing axes (shape ``(batch,)``
    selects whole rows of ``(batch, d)`` expressions). A Python bool picks one branch.

    Args:
        condition: bool (or 0/1) tensor, or a Python bool.
        then_expression: tensor, or a callable returning one.
        else_expression: tensor, or a callable returning one.

    Example:

    >>> x = switch(np.array([True, False]), np.ones((2, 3)), np.zeros((2, 3)))
    >>> _to_numpy(x).tolist()
    [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """
    if isinstance(condition, (bool, np.bool_)):
        chosen = then_expression if condition else else_expression
        return chosen() if callable(chosen) else chosen
    then = then_expression() if callable(then_expression) else then_expression
    other = else_expression() if callable(else_expression) else else_expression
    condition = ops.cast(condition, "bool")
    rank = max(len(ops.shape(then)), len(ops.shape(other)))
    if len(condition.shape) > rank:
        raise Keras2ArgumentError(
            f"K.switch: the condition's rank ({len(condition.shape)}) exceeds the "
            f"expressions' ({rank}); reduce the condition (e.g. K.any(c, axis=-1)) first."
        )
    while len(condition.shape) < rank:
        condition = ops.expand_dims(condition, -1)
    return ops.where(condition, then, other)


def gather(reference, indices):
    """Rows ``reference[indices]`` along axis 0 (keras.ops' ``take`` flattens by default).

    Args:
        reference: tensor.
        indices: integer tensor of row indices, any shape.

    Example:

    >>> gather(np.arange(6.0).reshape(3, 2), np.array([[2, 0]])).shape
    (1, 2, 2)
    """
    return ops.take(reference, indices, axis=0)


def stop_gradient(variables):
    """A tensor (or a list of them) treated as constant by differentiation.

    Args:
        variables: a tensor, or a list or tuple of tensors (Keras 2 takes either).

    Example:

    >>> len(stop_gradient([np.ones(2), np.zeros(2)]))
    2
    """
    if isinstance(variables, (list, tuple)):
        return [ops.stop_gradient(v) for v in variables]
    return ops.stop_gradient(variables)


def expand_dims(x, axis=-1):
    """Insert an axis of size 1; Keras 2's default is at the end.

    Args:
        x: tensor.
        axis: where the new axis goes.

    Example:

    >>> expand_dims(np.ones((2, 3))).shape
    (2, 3, 1)
    """
    return ops.expand_dims(x, axis)


def argmax(x, axis=-1):
    """Index of the maximum along ``axis`` (Keras 2's default: the last; keras.ops' default
    flattens).

    Args:
        x: tensor.
        axis: the axis to reduce.

    Example:

    >>> _to_numpy(argmax(np.array([[1, 3, 2], [5, 0, 1]]))).tolist()
    [1, 0]
    """
    return ops.argmax(x, axis=axis)


def argmin(x, axis=-1):
    """Index of the minimum along ``axis`` (Keras 2's default: the last).

    Args:
        x: tensor.
        axis: the axis to reduce.

    Example:

    >>> _to_numpy(argmin(np.array([[1, 3, 2], [5, 0, 1]]))).tolist()
    [0, 1]
    """
    return ops.argmin(x, axis=axis)


def cumsum(x, axis=0):
    """Cumulative sum along ``axis`` (Keras 2's default: the first; keras.ops' flattens).

    Args:
        x: tensor.
        axis: the axis to accumulate along.

    Example:

    >>> _to_numpy(cumsum(np.array([[1, 2], [3, 4]]))).tolist()
    [[1, 2], [4, 6]]
    """
    return ops.cumsum(x, axis=axis)


def cumprod(x, axis=0):
    """Cumulative product along ``axis`` (Keras 2's default: the first).

    Args:
        x: tensor.
        axis: the axis to accumulate along.

    Example:

    >>> _to_numpy(cumprod(np.array([[1, 2], [3, 4]]))).tolist()
    [[1, 2], [3, 8]]
    """
    return ops.cumprod(x, axis=axis)


def clip(x, min_value=None, max_value=None):
    """Clip ``x`` to ``[min_value, max_value]`` (Keras 2's argument names; None: no bound;
    a ``max_value`` below ``min_value`` is raised to it).

    Args:
        x: tensor.
        min_value: lower bound or None.
        max_value: upper bound or None.

    Example:

    >>> _to_numpy(clip(np.array([-2.0, 0.5, 3.0]), 0, 1)).tolist()
    [0.0, 0.5, 1.0]
    >>> _to_numpy(clip(np.array([-2.0, 3.0]), max_value=1)).tolist()
    [-2.0, 1.0]
    """
    x = ops.convert_to_tensor(x)
    if min_value is not None and max_value is not None and max_value < min_value:
        max_value = min_value
    if min_value is not None:
        x = ops.maximum(x, ops.cast(min_value, x.dtype))
    if max_value is not None:
        x = ops.minimum(x, ops.cast(max_value, x.dtype))
    return x


def relu(x, alpha=0.0, max_value=None, threshold=0.0):
    """Keras 2's ReLU: ``x`` above ``threshold`` (capped at ``max_value``), else
    ``alpha * (x - threshold)``.

    Args:
        x: tensor.
        alpha: slope below the threshold.
        max_value: saturation value, or None.
        threshold: where the function switches from the slope to the identity.

    Example:

    >>> _to_numpy(relu(np.array([-2.0, 1.0, 9.0]), alpha=0.5, max_value=6.0)).tolist()
    [-1.0, 1.0, 6.0]
    """
    x = ops.convert_to_tensor(x)
    positive = ops.where(x > threshold, x, ops.zeros_like(x)) if threshold else ops.relu(x)
    if max_value is not None:
        positive = ops.clip(positive, 0.0, max_value)
    if alpha:
        positive = positive - alpha * ops.relu(threshold - x)
    return positive


def sqrt(x):
    """Square root with negative inputs clipped to 0, as in Keras 2 (keras.ops gives NaN).

    Args:
        x: tensor.

    Example:

    >>> _to_numpy(sqrt(np.array([-1.0, 4.0]))).tolist()
    [0.0, 2.0]
    """
    x = ops.convert_to_tensor(x)
    return ops.sqrt(ops.maximum(x, ops.zeros_like(x)))


def hard_sigmoid(x):
    """Keras 2's piecewise-linear sigmoid ``clip(0.2 * x + 0.5, 0, 1)`` (keras.ops' has
    slope 1/6).

    Args:
        x: tensor.

    Example:

    >>> _rounded(hard_sigmoid(np.array([-3.0, 0.0, 1.0])))
    [0.0, 0.5, 0.7]
    """
    return ops.clip(0.2 * ops.convert_to_tensor(x) + 0.5, 0.0, 1.0)


def _is_tensor(value):
    return ops.is_tensor(value) or isinstance(value, (keras.Variable, keras.KerasTensor))


def where(cond, x, y):
    """``x`` where ``cond`` holds, else ``y``, broadcasting all three (bert4keras's
    ``K.where``). Python numbers take the other operand's dtype, or ``K.floatx()`` when
    neither is a tensor (keras.ops would give ``where(c, 1, 0)`` an int dtype).

    Args:
        cond: bool (or 0/1) tensor.
        x: tensor or number.
        y: tensor or number.

    Example:

    >>> keras.backend.standardize_dtype(where(np.array([True, False]), 1, 0).dtype)
    'float32'
    >>> _to_numpy(where(np.array([[True], [False]]), np.ones((2, 2)), 0.0)).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    """
    if not _is_tensor(x) and not _is_tensor(y):
        floatx = keras.config.floatx()
        x, y = ops.convert_to_tensor(x, floatx), ops.convert_to_tensor(y, floatx)
    elif not _is_tensor(x):
        x = ops.convert_to_tensor(x, y.dtype)
    elif not _is_tensor(y):
        y = ops.convert_to_tensor(y, x.dtype)
    return ops.where(ops.cast(cond, "bool"), x, y)


def bias_add(x, bias, data_format=None):
    """Add a bias along the channel axis (the last, or axis 1 for ``"channels_first"``).

    Args:
        x: tensor.
        bias: 1-D tensor of the channel size (or of ``x``'s shape without the batch axis).
        data_format: ``"channels_last"`` or ``"channels_first"``; None for
            ``keras.config.image_data_format()``.

    Example:

    >>> _to_numpy(bias_add(np.zeros((1, 2)), np.array([1.0, 2.0]))).tolist()
    [[1.0, 2.0]]
    """
    data_format = data_format or keras.config.image_data_format()
    bias = ops.convert_to_tensor(bias)
    if data_format == "channels_first" and len(bias.shape) == 1 and len(x.shape) > 2:
        bias = ops.reshape(bias, (1, -1) + (1,) * (len(x.shape) - 2))
    return x + bias


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Cross-entropy of integer labels against class probabilities (or logits).

    As in Keras 2 the labels are flattened and matched to ``output``'s non-class axes, so
    ``target`` may be ``(batch, seq)``, ``(batch, seq, 1)`` or ``(batch * seq,)`` for an
    ``output`` of shape ``(batch, seq, classes)``; the result has ``output``'s shape without
    the class axis.

    Args:
        target: integer labels.
        output: probabilities (or logits) with the classes on ``axis``.
        from_logits: whether ``output`` holds logits.
        axis: the class axis of ``output``.

    Example:

    >>> p = np.full((2, 3, 4), 0.25)
    >>> sparse_categorical_crossentropy(np.zeros(6), p).shape
    (2, 3)
    """
    output = ops.convert_to_tensor(output)
    if axis % len(output.shape) != len(output.shape) - 1:
        output = ops.moveaxis(output, axis, -1)
    rows = tuple(ops.shape(output))[:-1]
    if None not in rows:
        target = ops.reshape(target, rows)
    return ops.sparse_categorical_crossentropy(target, output, from_logits=from_logits)


def map_fn(fn, elems, name=None, dtype=None):
    """Apply ``fn`` to each slice of ``elems`` along axis 0 and stack the results.

    Args:
        fn: function of one slice.
        elems: tensor (or nested structure of tensors) to slice.
        name: ignored (Keras 2's graph op name).
        dtype: ignored (the output dtype follows ``fn``).

    Example:

    >>> _to_numpy(map_fn(lambda row: row * 2, np.array([[1, 2], [3, 4]]))).tolist()
    [[2, 4], [6, 8]]
    """
    del name, dtype
    return ops.map(fn, elems)


def symbolic(f):
    """Identity decorator: bert4keras's ``K.symbolic`` (a graph-mode marker in old Keras).

    Args:
        f: the function to decorate.

    Example:

    >>> symbolic(abs) is abs
    True
    """
    return f
