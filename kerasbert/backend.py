"""Small ops helpers shared by the layers: GELU variants, activation lookup, masking.

Everything here is written with ``keras.ops`` so it runs on any Keras backend; kerasbert
selects JAX by default.
"""

import keras
from keras import ops

from kerasbert.errors import ConfigError


@keras.saving.register_keras_serializable(package="kerasbert")
def gelu_erf(x):
    """Exact GELU, ``0.5 * x * (1 + erf(x / sqrt(2)))`` (HF's ``gelu``).

    Example:

    >>> float(gelu_erf(keras.ops.convert_to_tensor(1.0)))  # doctest: +ELLIPSIS
    0.8413...
    """
    return ops.gelu(x, approximate=False)


@keras.saving.register_keras_serializable(package="kerasbert")
def gelu_tanh(x):
    """Tanh-approximated GELU, as in Google's BERT/ALBERT/NEZHA code (HF's ``gelu_new``).

    Example:

    >>> float(gelu_tanh(keras.ops.convert_to_tensor(1.0)))  # doctest: +ELLIPSIS
    0.8411...
    """
    return ops.gelu(x, approximate=True)


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
        big = 1e12 if keras.backend.standardize_dtype(x.dtype) == "float32" else 1e4
        value = -big if value == "-inf" else big
    axis = axis % len(x.shape)
    mask = ops.cast(mask, "bool")
    for _ in range(axis - 1):
        mask = ops.expand_dims(mask, 1)
    while len(mask.shape) < len(x.shape):
        mask = ops.expand_dims(mask, -1)
    return ops.where(mask, x, ops.cast(value, x.dtype))
