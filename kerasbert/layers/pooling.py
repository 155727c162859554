"""Pooling over the sequence axis that skips padding: the one implementation behind the
pooling layers, :class:`kerasbert.encoding.SentenceEncoder` and ``kerasbert encode``."""

import keras
from keras import ops

from kerasbert.errors import ConfigError
from kerasbert.layers.core import SequenceReduction
from kerasbert.pooling_names import POOLINGS


def check_pooling(mode, allowed=POOLINGS):
    """``mode``, or a ConfigError unless it is one of ``allowed``."""
    if mode not in allowed:
        raise ConfigError(f"The pooling mode must be one of {allowed}, got {mode!r}.")
    return mode


def masked_pooling(x, mask, mode):
    """Pool ``(batch, seq_len, dim)`` to ``(batch, dim)`` over the positions where ``mask``.

    Sums and maxima are taken in float32 and the result is float32; a row whose positions
    are all masked pools to zeros.

    Args:
        x: the sequence, a tensor or numpy array.
        mask: ``(batch, seq_len)`` booleans (True = a real token), or None for all.
        mode: one of :data:`POOLINGS`.

    Example:

    >>> import numpy as np
    >>> x = np.array([[[1.0], [3.0], [100.0]]], "float32")
    >>> mask = np.array([[True, True, False]])
    >>> [float(masked_pooling(x, mask, m)[0, 0]) for m in POOLINGS]
    [1.0, 2.0, 3.0, 3.0]
    """
    x = ops.cast(x, "float32")
    if mode == "cls":
        return x[:, 0]
    if mask is None:
        mask = ops.ones(ops.shape(x)[:2], "bool")
    mask = ops.cast(mask, "bool")
    present = ops.any(mask, axis=1, keepdims=True)  # (batch, 1)
    if mode == "mean":
        weights = ops.cast(mask, "float32")[..., None]
        return ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
    if mode == "max":
        pooled = ops.max(ops.where(mask[..., None], x, -3.0e38), axis=1)
    else:  # last
        length = ops.shape(x)[1]
        index = length - 1 - ops.argmax(ops.flip(ops.cast(mask, "int32"), axis=1), axis=1)
        pooled = ops.take_along_axis(x, index[:, None, None], axis=1)[:, 0]
    return ops.where(present, pooled, 0.0)


def l2_normalize(x, epsilon=1e-12):
    """Rows of ``x`` scaled to unit L2 norm (rows of zeros stay zeros)."""
    norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return x / ops.maximum(norm, epsilon)


@keras.saving.register_keras_serializable(package="kerasbert")
class MaskedGlobalPooling1D(SequenceReduction):
    """Pools ``(batch, seq_len, dim)`` to ``(batch, dim)`` over the unmasked positions only.

    The mask is the input's Keras mask (or the ``mask`` call argument); without one every
    position counts. A row whose positions are all masked pools to zeros. Sums and maxima
    are taken in float32 (:func:`masked_pooling`); the output has the layer's compute dtype
    and no mask.

    Args:
        mode: ``"mean"`` (average of the real tokens), ``"max"`` (their element-wise
            maximum), ``"cls"`` (position 0, [CLS]) or ``"last"`` (the last unmasked
            position, e.g. [SEP] or a decoder's final token).

    Example:

    >>> import numpy as np
    >>> x = np.array([[[1.0], [3.0], [100.0]]], "float32")
    >>> mask = np.array([[True, True, False]])
    >>> [float(MaskedGlobalPooling1D(m)(x, mask=mask)[0, 0]) for m in ("mean", "max", "last")]
    [2.0, 3.0, 3.0]
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_pooling(mode)
        self.supports_masking = True

    @classmethod
    def from_config(cls, config):
        if config.get("mode") == "first":  # the name files saved before 0.2 used for "cls"
            config = dict(config, mode="cls")
        return super().from_config(config)

    def call(self, inputs, mask=None):
        return ops.cast(masked_pooling(inputs, mask, self.mode), self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class GlobalAveragePooling1D(MaskedGlobalPooling1D):
    """bert4keras's mask-aware average pooling: ``MaskedGlobalPooling1D(mode="mean")``.

    Example:

    >>> import numpy as np
    >>> GlobalAveragePooling1D()(np.ones((2, 3, 4), "float32")).shape
    (2, 4)
    """

    def __init__(self, **kwargs):
        kwargs.pop("mode", None)
        super().__init__(mode="mean", **kwargs)


@keras.saving.register_keras_serializable(package="kerasbert")
class GlobalMaxPooling1D(MaskedGlobalPooling1D):
    """bert4keras's mask-aware max pooling: ``MaskedGlobalPooling1D(mode="max")``."""

    def __init__(self, **kwargs):
        kwargs.pop("mode", None)
        super().__init__(mode="max", **kwargs)
