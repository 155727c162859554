"""Global pooling over the sequence axis that skips padding (the Keras mask)."""

import keras
from keras import ops

from kerasbert.errors import ConfigError

_MODES = ("mean", "max", "first", "last")


@keras.saving.register_keras_serializable(package="kerasbert")
class MaskedGlobalPooling1D(keras.layers.Layer):
    """Pools ``(batch, seq_len, dim)`` to ``(batch, dim)`` over the unmasked positions only.

    The mask is the input's Keras mask (or the ``mask`` call argument); without one every
    position counts. A row whose positions are all masked pools to zeros. Sums and maxima
    are taken in float32; the output has the layer's compute dtype and no mask.

    Args:
        mode: ``"mean"`` (average of the real tokens), ``"max"`` (their element-wise
            maximum), ``"first"`` (position 0, e.g. [CLS]) or ``"last"`` (the last
            unmasked position, e.g. [SEP] or a decoder's final token).

    Example:

    >>> import numpy as np
    >>> x = np.array([[[1.0], [3.0], [100.0]]], "float32")
    >>> mask = np.array([[True, True, False]])
    >>> [float(MaskedGlobalPooling1D(m)(x, mask=mask)[0, 0]) for m in ("mean", "max", "last")]
    [2.0, 3.0, 3.0]
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in _MODES:
            raise ConfigError(f"MaskedGlobalPooling1D mode must be one of {_MODES}, got {mode!r}.")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if self.mode == "first":
            return ops.cast(inputs[:, 0], self.compute_dtype)
        x = ops.cast(inputs, "float32")
        length = ops.shape(x)[1]
        if mask is None:
            mask = ops.ones(ops.shape(x)[:2], "bool")
        mask = ops.cast(mask, "bool")
        present = ops.any(mask, axis=1, keepdims=True)  # (batch, 1)
        if self.mode == "mean":
            weights = ops.cast(mask, "float32")[..., None]
            count = ops.maximum(ops.sum(weights, axis=1), 1.0)
            pooled = ops.sum(x * weights, axis=1) / count
        elif self.mode == "max":
            pooled = ops.max(ops.where(mask[..., None], x, -3.0e38), axis=1)
            pooled = ops.where(present, pooled, 0.0)
        else:  # last
            index = length - 1 - ops.argmax(ops.flip(ops.cast(mask, "int32"), axis=1), axis=1)
            pooled = ops.take_along_axis(x, index[:, None, None], axis=1)[:, 0]
            pooled = ops.where(present, pooled, 0.0)
        return ops.cast(pooled, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])

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
