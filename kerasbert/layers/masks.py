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
