"""NEZHA's functional relative positions and the attention that uses them."""

import keras
import numpy as np
from keras import ops

from kerasbert.layers.attention import MultiHeadAttention
from kerasbert.layers.dense import mixed_einsum


def sinusoidal_relative_table(max_relative_position, depth):
    """NEZHA's ``(2K + 1, depth)`` table: row ``r`` holds sin/cos of ``r / 10000**(2i/depth)``
    interleaved (even columns sin, odd columns cos), for ``r = 0 .. 2K``.

    Example:

    >>> t = sinusoidal_relative_table(2, 4)
    >>> t.shape, float(t[0, 1])
    ((5, 4), 1.0)
    """
    positions = np.arange(2 * max_relative_position + 1, dtype=np.float64)[:, None]
    rates = np.exp(np.arange(0, depth, 2, dtype=np.float64) * (-np.log(10000.0) / depth))
    table = np.zeros((len(positions), depth))
    table[:, 0::2] = np.sin(positions * rates)
    table[:, 1::2] = np.cos(positions * rates)[:, : depth // 2]
    return table.astype("float32")


@keras.saving.register_keras_serializable(package="kerasbert")
class RelativePositionEmbedding(keras.layers.Layer):
    """The ``(q_len, k_len, depth)`` tensor of NEZHA's relative position encodings.

    Entry ``[i, j]`` is row ``clip(j - i, -K, K) + K`` of :func:`sinusoidal_relative_table`.
    It is a function of the lengths only: no weights, nothing trainable, nothing read from a
    checkpoint, one tensor shared by every layer and head.

    Args:
        max_relative_position: K, the distance beyond which positions are clipped.
        depth: the attention head size.

    Example:

    >>> import numpy as np
    >>> layer = RelativePositionEmbedding(max_relative_position=2, depth=4)
    >>> x = np.zeros((1, 6, 8), "float32")
    >>> layer([x, x]).shape
    (6, 6, 4)
    """

    def __init__(self, max_relative_position, depth, **kwargs):
        super().__init__(**kwargs)
        self.max_relative_position = max_relative_position
        self.depth = depth
        self.table = sinusoidal_relative_table(max_relative_position, depth)

    def call(self, inputs):
        q, k = inputs
        q_positions = ops.arange(ops.shape(q)[1])
        k_positions = ops.arange(ops.shape(k)[1])
        k_max = self.max_relative_position
        index = ops.clip(k_positions[None, :] - q_positions[:, None], -k_max, k_max) + k_max
        return ops.take(ops.convert_to_tensor(self.table, dtype=self.compute_dtype), index, 0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0][1], input_shape[1][1], self.depth)

    def get_config(self):
        config = super().get_config()
        config.update({"max_relative_position": self.max_relative_position, "depth": self.depth})
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class RelativeMultiHeadAttention(MultiHeadAttention):
    """Attention with NEZHA's relative positions added to the logits and to the output.

    Inputs are ``[q, k, v, relative]`` or ``[q, k, v, bias, relative]``, ``relative`` being
    a :class:`RelativePositionEmbedding` output. Logits become ``q·k + q·r_ij`` (scaled
    together) and the output ``Σ_j p_ij (v_j + r_ij)``.

    NEZHA adds the relative term after the softmax too, so the fused kernel never applies.

    Example:

    >>> import numpy as np
    >>> x = np.random.rand(1, 5, 8).astype("float32")
    >>> rel = RelativePositionEmbedding(2, 4)([x, x])
    >>> RelativeMultiHeadAttention(heads=2, head_size=4)([x, x, x, rel]).shape
    (1, 5, 8)
    """

    def split_inputs(self, inputs):
        bias = inputs[3] if len(inputs) > 4 else None
        return inputs[0], inputs[1], inputs[2], bias, inputs[-1]

    # The relative terms are batched matmuls over the query position t; putting t first
    # ((t, batch * heads, ...) layouts) lets XLA run them as one batched GEMM, measurably
    # faster on CPU than the equivalent einsum on the (batch, heads, t, ...) layout.
    def attention_logits(self, qw, kw, extras):
        logits = super().attention_logits(qw, kw, extras)
        batch, length = ops.shape(qw)[0], ops.shape(qw)[1]
        q = ops.reshape(ops.transpose(qw, (1, 0, 2, 3)), (length, -1, self.key_size))
        # Mixed precision: q·r_ij accumulates into float32 like q·k (see attention_logits).
        relative = mixed_einsum("tnd,tsd->tns", q, ops.cast(extras, qw.dtype))
        relative = ops.reshape(relative, (length, batch, self.heads, -1))
        return logits + ops.transpose(relative, (1, 2, 0, 3))

    def attention_output(self, probs, vw, extras):
        output = super().attention_output(probs, vw, extras)
        batch, length = ops.shape(probs)[0], ops.shape(probs)[2]
        p = ops.reshape(ops.transpose(probs, (2, 0, 1, 3)), (length, -1, ops.shape(probs)[3]))
        relative = mixed_einsum("tns,tsd->tnd", p, ops.cast(extras, probs.dtype))
        relative = ops.cast(relative, output.dtype)
        relative = ops.reshape(relative, (length, batch, self.heads, self.head_size))
        return output + ops.transpose(relative, (1, 0, 2, 3))
