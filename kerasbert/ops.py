"""Small tensor functions the layers share: GELU variants, activation lookup, masking,
sinusoidal and rotary position encodings.

Everything here is written with ``keras.ops``, so it runs on any Keras backend (kerasbert
selects JAX by default). These are kerasbert's own helpers; :mod:`kerasbert.backend`
re-exports them under bert4keras's names, next to its Keras-2-style ``K``.
"""

import keras
from keras import ops

from kerasbert.errors import ConfigError

# One mutable cell, so set_infinity changes what every caller of infinity() sees.
_INFINITY = [1e12]


def infinity():
    """The large number standing for infinity in masks (bert4keras's ``infinity``).

    Example:

    >>> infinity()
    1000000000000.0
    """
    return _INFINITY[0]


def set_infinity(value):
    """Change the value :func:`infinity` returns (e.g. 1e4 for float16 work).

    Args:
        value: the new large number; :func:`sequence_masking` uses it for ``"-inf"`` /
            ``"inf"`` fills of float32 tensors.

    Example:

    >>> set_infinity(1e4); infinity()
    10000.0
    >>> set_infinity(1e12)
    """
    _INFINITY[0] = float(value)


@keras.saving.register_keras_serializable(package="kerasbert")
def gelu_erf(x):
    """Exact GELU, ``0.5 * x * (1 + erf(x / sqrt(2)))`` (HF's ``gelu``).

    Args:
        x: a float tensor.

    Example:

    >>> float(gelu_erf(keras.ops.convert_to_tensor(1.0)))  # doctest: +ELLIPSIS
    0.8413...
    """
    return ops.gelu(x, approximate=False)


@keras.saving.register_keras_serializable(package="kerasbert")
def gelu_tanh(x):
    """Tanh-approximated GELU, as in Google's BERT/ALBERT/NEZHA code (HF's ``gelu_new``).

    Args:
        x: a float tensor.

    Example:

    >>> float(gelu_tanh(keras.ops.convert_to_tensor(1.0)))  # doctest: +ELLIPSIS
    0.8411...
    """
    return ops.gelu(x, approximate=True)


# Names get_activation resolves before keras.activations; kerasbert.backend.set_gelu
# rebinds "gelu" here.
_ACTIVATIONS = {
    "gelu_erf": gelu_erf,
    "gelu_tanh": gelu_tanh,
    # bert4keras spells them this way.
    "gelu": gelu_erf,
}


def get_activation(identifier):
    """Return the activation function for a name, a callable, or None (linear).

    ``gelu_erf`` / ``gelu_tanh`` are kerasbert's GELU variants; every other name goes to
    ``keras.activations.get``.

    Args:
        identifier: a name such as ``"gelu_tanh"``, ``"relu"``, ``"softmax"``, a callable,
            or None.

    Example:

    >>> get_activation("gelu_tanh") is gelu_tanh
    True
    """
    if identifier is None or callable(identifier):
        return keras.activations.get(identifier)
    if identifier in _ACTIVATIONS:
        return _ACTIVATIONS[identifier]
    try:
        return keras.activations.get(identifier)
    except (ValueError, TypeError):
        raise ConfigError(
            f"Unknown activation {identifier!r}; use 'gelu_erf', 'gelu_tanh' or a Keras "
            "activation name."
        ) from None


def sequence_masking(x, mask, value=0.0, axis=1):
    """Set the positions of ``x`` where ``mask`` is false to ``value``.

    Args:
        x: tensor with a sequence axis.
        mask: boolean or 0/1 tensor of shape (batch, seq_len), or None (no-op).
        value: fill value; ``"-inf"`` / ``"inf"`` give a large finite number of that sign.
        axis: the sequence axis of ``x`` that ``mask`` refers to.

    Example:

    >>> x = keras.ops.ones((1, 3, 2))
    >>> m = keras.ops.convert_to_tensor([[1, 1, 0]])
    >>> keras.ops.convert_to_numpy(sequence_masking(x, m))[0, :, 0].tolist()
    [1.0, 1.0, 0.0]
    """
    if mask is None:
        return x
    if value in ("-inf", "inf"):
        big = infinity() if keras.backend.standardize_dtype(x.dtype) == "float32" else 1e4
        value = -big if value == "-inf" else big
    axis = axis % len(x.shape)
    mask = ops.cast(mask, "bool")
    for _ in range(axis - 1):
        mask = ops.expand_dims(mask, 1)
    while len(mask.shape) < len(x.shape):
        mask = ops.expand_dims(mask, -1)
    return ops.where(mask, x, ops.cast(value, x.dtype))


def sinusoidal_embeddings(positions, dim, base=10000.0):
    """Sin/cos encodings of ``positions``: shape ``positions.shape + (dim,)``, float32.

    Args:
        positions: a tensor of (integer or float) positions, any shape.
        dim: the encoding size; must be even.
        base: the wavelength base; 10000 as in the Transformer paper.

    Example:

    >>> e = sinusoidal_embeddings(keras.ops.arange(3), 4)
    >>> e.shape, [round(v, 3) for v in keras.ops.convert_to_numpy(e)[1].tolist()]
    ((3, 4), [0.841, 0.54, 0.01, 1.0])
    """
    if dim % 2:
        raise ConfigError(f"Sinusoidal embeddings need an even size; got dim={dim}.")
    positions = ops.cast(positions, "float32")
    exponents = ops.arange(0, dim // 2, dtype="float32") * (-2.0 / dim)
    inv_freq = ops.power(ops.cast(base, "float32"), exponents)
    angles = ops.expand_dims(positions, -1) * inv_freq
    pairs = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)
    return ops.reshape(pairs, tuple(ops.shape(angles)[:-1]) + (dim,))


def apply_rotary_position_embeddings(sinusoidal, *tensors):
    """Rotate each channel pair of ``tensors`` by its position's angle (RoPE).

    With ``(s, c) = (sin, cos)`` of a pair's angle, channels ``(x0, x1)`` become
    ``(x0 c - x1 s, x1 c + x0 s)``, so the dot product of a rotated query at position ``m``
    and a rotated key at position ``n`` depends on ``m - n`` only.

    Args:
        sinusoidal: :func:`sinusoidal_embeddings` of shape ``(batch or 1, seq_len, dim)``.
        *tensors: tensors of shape ``(batch, seq_len, ..., dim)`` (e.g. per-head queries and
            keys ``(batch, seq_len, heads, dim)``), all of the same shape.

    Returns:
        The rotated tensor, or a list of them when more than one was given.

    Example:

    >>> import numpy as np
    >>> x = np.ones((1, 3, 2), "float32")
    >>> y = apply_rotary_position_embeddings(sinusoidal_embeddings(np.arange(3)[None], 2), x)
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(y)[0, 1].tolist()]
    [-0.3012, 1.3818]
    """
    if not tensors:
        raise ConfigError("apply_rotary_position_embeddings needs at least one tensor.")
    outputs = []
    for x in tensors:
        table = ops.cast(sinusoidal, x.dtype)
        while len(table.shape) < len(x.shape):
            table = ops.expand_dims(table, -2)
        cos = ops.repeat(table[..., 1::2], 2, axis=-1)
        sin = ops.repeat(table[..., ::2], 2, axis=-1)
        # (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)
        swapped = ops.reshape(ops.stack([-x[..., 1::2], x[..., ::2]], axis=-1), ops.shape(x))
        outputs.append(x * cos + swapped * sin)
    return outputs[0] if len(outputs) == 1 else outputs
