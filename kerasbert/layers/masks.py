"""Attention biases for language-model applications: causal (LM) and UniLM masks."""

import keras
from keras import ops

# Added to forbidden logits; softmax runs in float32, where this is effectively -inf.
_FORBIDDEN = -1e12


@keras.saving.register_keras_serializable(package="kerasbert")
class CausalAttentionBias(keras.layers.Layer):
    """``(1, 1, T, T)`` additive bias letting position i attend to positions j <= i only.

    Input: the token ids (only their length is used).

    Example:

    >>> import numpy as np
    >>> bias = CausalAttentionBias()(np.ones((2, 3), "int32"))
    >>> (keras.ops.convert_to_numpy(bias)[0, 0] < 0).astype(int).tolist()
    [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    """

    def call(self, token_ids):
        length = ops.shape(token_ids)[1]
        positions = ops.arange(length)
        allowed = positions[None, :] <= positions[:, None]
        return ops.where(allowed, 0.0, _FORBIDDEN)[None, None]

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="kerasbert")
class UniLMAttentionBias(keras.layers.Layer):
    """``(batch, 1, T, T)`` bias of UniLM's sequence-to-sequence mask.

    Segment 0 (the source) attends to all of segment 0 and never to segment 1; segment 1
    (the target) attends to all of segment 0 and causally within itself. As in bert4keras:
    j is visible from i when ``cumsum(segment_ids)[j] <= cumsum(segment_ids)[i]``.

    Input: the segment ids.

    Example:

    >>> import numpy as np
    >>> bias = UniLMAttentionBias()(np.array([[0, 0, 1, 1]]))
    >>> (keras.ops.convert_to_numpy(bias)[0, 0] < 0).astype(int).tolist()
    [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    """

    def call(self, segment_ids):
        index = ops.cumsum(ops.cast(segment_ids, "int32"), axis=1)
        allowed = index[:, None, :] <= index[:, :, None]
        return ops.where(allowed, 0.0, _FORBIDDEN)[:, None]

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="kerasbert")
class ZerosWhereMasked(keras.layers.Layer):
    """Its input, with the positions its Keras mask hides set to zero (the mask passes on).

    T5's encoder ends with it, so that its output says where the source's padding is even
    without a Keras mask (a numpy array handed to ``t5.decoder``): :class:`NonzeroMask`
    reads it back.

    Example:

    >>> import numpy as np
    >>> x = np.ones((1, 3, 2), "float32")
    >>> mask = np.array([[True, True, False]])
    >>> keras.ops.convert_to_numpy(ZerosWhereMasked()(x, mask=mask))[0, :, 0].tolist()
    [1.0, 1.0, 0.0]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return inputs
        return inputs * ops.cast(mask, inputs.dtype)[..., None]


@keras.saving.register_keras_serializable(package="kerasbert")
class NonzeroMask(keras.layers.Layer):
    """Its input unchanged, masked where a position's vector is all zeros.

    The mask of encoder states that :class:`ZerosWhereMasked` wrote (T5's decoder reads
    the source's padding from its ``Input-Context`` this way). A real position's states
    are never exactly zero: they are the output of a learned RMS norm.

    Example:

    >>> import numpy as np
    >>> x = np.array([[[1.0, 0.0], [0.0, 0.0]]], "float32")
    >>> keras.ops.convert_to_numpy(NonzeroMask().compute_mask(x)).tolist()
    [[True, False]]
    """

    def call(self, inputs):
        # A new tensor: Keras keeps the mask an input already carries when a layer returns
        # that input itself, and would never ask compute_mask.
        return ops.copy(inputs)

    def compute_mask(self, inputs, mask=None):
        return ops.any(ops.not_equal(inputs, 0), axis=-1)


@keras.saving.register_keras_serializable(package="kerasbert")
class FirstPositionVisible(keras.layers.Layer):
    """Its input unchanged, with position 0 always unmasked (bert4keras keeps the first
    token of a sequence unmasked the same way).

    T5's decoder starts with ``decoder_start_token_id`` 0, which is also the padding id:
    without this, the token embedding's mask would hide the start token from attention.

    Example:

    >>> import numpy as np
    >>> mask = np.array([[False, True, False]])
    >>> x = np.zeros((1, 3, 2), "float32")
    >>> keras.ops.convert_to_numpy(FirstPositionVisible().compute_mask(x, mask)).tolist()
    [[True, True, False]]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        # A new tensor: Keras keeps the mask an input already carries when a layer returns
        # that input itself, and would never ask compute_mask.
        return ops.copy(inputs)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        first = ops.ones_like(mask[:, :1], dtype="bool")
        return ops.concatenate([first, ops.cast(mask[:, 1:], "bool")], axis=1)
