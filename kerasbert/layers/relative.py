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
    """NEZHA's relative position encodings, per pair of positions or per distance.

    The encoding of query ``i`` and key ``j`` is row ``clip(j - i, -K, K) + K`` of
    :func:`sinusoidal_relative_table`. With ``pairwise=True`` (bert4keras's form) the output
    is the ``(q_len, k_len, depth)`` tensor of every pair; with ``pairwise=False`` it is the
    ``(q_len + k_len - 1, depth)`` table of every distance, row ``j - i + q_len - 1``, which
    :class:`RelativeMultiHeadAttention` turns into the same terms with plain matmuls. It is
    a function of the lengths only: no weights, nothing trainable, nothing read from a
    checkpoint, one tensor shared by every layer and head.

    Args:
        max_relative_position: K, the distance beyond which positions are clipped.
        depth: the attention head size.
        pairwise: output one row per (query, key) pair rather than one per distance.

    Example:

    >>> import numpy as np
    >>> layer = RelativePositionEmbedding(max_relative_position=2, depth=4)
    >>> x = np.zeros((1, 6, 8), "float32")
    >>> layer([x, x]).shape
    (6, 6, 4)
    >>> RelativePositionEmbedding(2, 4, pairwise=False)([x, x]).shape
    (11, 4)
    """

    def __init__(self, max_relative_position, depth, pairwise=True, **kwargs):
        super().__init__(**kwargs)
        self.max_relative_position = max_relative_position
        self.depth = depth
        self.pairwise = pairwise
        self.table = sinusoidal_relative_table(max_relative_position, depth)

    def call(self, inputs):
        q_len, k_len = ops.shape(inputs[0])[1], ops.shape(inputs[1])[1]
        if self.pairwise:
            distances = ops.arange(k_len)[None, :] - ops.arange(q_len)[:, None]
        else:
            distances = ops.arange(q_len + k_len - 1) - (q_len - 1)
        k_max = self.max_relative_position
        index = ops.clip(distances, -k_max, k_max) + k_max
        return ops.take(ops.convert_to_tensor(self.table, dtype=self.compute_dtype), index, 0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        q_len, k_len = input_shape[0][1], input_shape[1][1]
        if self.pairwise:
            return (q_len, k_len, self.depth)
        both = None if q_len is None or k_len is None else q_len + k_len - 1
        return (both, self.depth)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_relative_position": self.max_relative_position,
                "depth": self.depth,
                "pairwise": self.pairwise,
            }
        )
        return config


def _pairs_from_distances(x, k_len):
    """``(..., q_len, q_len + k_len - 1)`` by distance -> ``(..., q_len, k_len)`` by pair.

    ``out[..., i, j] = x[..., i, j - i + q_len - 1]``: in the flattened last two axes that
    index is ``i * (q_len + k_len - 2) + j + q_len - 1``, so a slice of the flat array,
    seen with rows of ``q_len + k_len - 2``, holds the pairs in its first ``k_len`` columns
    (a strided copy; its gradient is a pad, not a scatter).
    """
    *lead, q_len, width = ops.shape(x)
    if q_len == 1:
        return x
    stride = width - 1
    flat = ops.reshape(x, (*lead, q_len * width))
    flat = flat[..., q_len - 1 : q_len - 1 + q_len * stride]
    return ops.reshape(flat, (*lead, q_len, stride))[..., :k_len]


def _distances_from_pairs(x):
    """The inverse placement: ``(..., q_len, k_len)`` -> ``(..., q_len, q_len + k_len - 1)``
    with ``x[..., i, j]`` at column ``j - i + q_len - 1`` and zeros elsewhere."""
    *lead, q_len, k_len = ops.shape(x)
    if q_len == 1:
        return x
    no_pad = [(0, 0)] * len(lead)
    rows = ops.pad(x, no_pad + [(0, 0), (0, q_len - 2)])
    flat = ops.pad(ops.reshape(rows, (*lead, -1)), no_pad + [(q_len - 1, 1)])
    return ops.reshape(flat, (*lead, q_len, q_len + k_len - 1))


@keras.saving.register_keras_serializable(package="kerasbert")
class RelativeMultiHeadAttention(MultiHeadAttention):
    """Attention with NEZHA's relative positions added to the logits and to the output.

    Inputs are ``[q, k, v, relative]`` or ``[q, k, v, bias, relative]``, ``relative`` being
    a :class:`RelativePositionEmbedding` output, per pair or per distance. Logits become
    ``q·k + q·r_ij`` (scaled together) and the output ``Σ_j p_ij (v_j + r_ij)``.

    Per distance, ``q·r`` is one matmul of every query with every distance's encoding,
    then rearranged into pairs, and ``Σ_j p_ij r_ij`` places the probabilities by distance
    and multiplies once by the table: large plain matmuls instead of per-position ones over
    a ``(q_len, k_len, depth)`` tensor, the faster form when sequences are long and few (see
    ``_by_distance``).

    NEZHA adds the relative term after the softmax too, so the fused kernel never applies.

    Example:

    >>> import numpy as np
    >>> x = np.random.rand(1, 5, 8).astype("float32")
    >>> rel = RelativePositionEmbedding(2, 4)([x, x])
    >>> RelativeMultiHeadAttention(heads=2, head_size=4)([x, x, x, rel]).shape
    (1, 5, 8)
    """

    def split_inputs(self, inputs):
        q, k, v, relative = inputs[0], inputs[1], inputs[2], inputs[-1]
        bias = inputs[3] if len(inputs) > 4 else None
        q_len, k_len = ops.shape(q)[1], ops.shape(k)[1]
        if len(relative.shape) == 2 and not self._by_distance(ops.shape(q)[0], q_len, k_len):
            # Gathered into pairs once here, for both the logits and the output.
            distances = ops.arange(k_len)[None, :] - ops.arange(q_len)[:, None]
            relative = ops.take(relative, distances + (q_len - 1), axis=0)
        return q, k, v, bias, relative

    def _by_distance(self, batch, q_len, k_len):
        """Whether a per-distance table is applied as it is (else gathered into pairs).

        The per-distance products are plain matmuls but twice as wide, plus two strided
        copies of the logits' size; the per-pair ones are batched over the query position
        with ``batch * heads`` rows each, efficient only when that is large enough. So the
        per-distance form is used when sequences are long and few (``4 * batch * heads <=
        k_len``) and the per-pair form otherwise. The threshold was chosen from NEZHA-base
        timings on CPU, where the per-distance form won clearly at one or two long sequences
        and the per-pair form narrowly at batches of shorter ones (bench/README.md, "Design
        measurements behind the layers"). Symbolic sizes (``jax.export`` with dynamic
        shapes) take the per-pair form, which needs no comparison of sizes.
        """
        if not all(isinstance(n, int) for n in (batch, q_len, k_len)):
            return False
        return 4 * batch * self.heads <= k_len

    # Per pair, the relative terms are batched matmuls over the query position t; putting t
    # first ((t, batch * heads, ...) layouts) lets XLA run them as one batched GEMM, faster
    # on CPU than the equivalent einsum on the (batch, heads, t, ...) layout (bench/README.md,
    # NEZHA in "Families").
    def attention_logits(self, qw, kw, relative_positions, heads_first=False):
        logits = super().attention_logits(qw, kw, relative_positions, heads_first=heads_first)
        if len(relative_positions.shape) == 2:  # one row per distance (see split_inputs)
            # Mixed precision: q·r accumulates into float32 like q·k (see attention_logits).
            q = ops.transpose(qw, (0, 2, 1, 3))
            by_distance = mixed_einsum("bhtd,rd->bhtr", q, ops.cast(relative_positions, qw.dtype))
            k_len = ops.shape(kw)[2 if heads_first else 1]
            return logits + _pairs_from_distances(by_distance, k_len)
        batch, length = ops.shape(qw)[0], ops.shape(qw)[1]
        q = ops.reshape(ops.transpose(qw, (1, 0, 2, 3)), (length, -1, self.key_size))
        # Mixed precision: q·r_ij accumulates into float32 like q·k (see attention_logits).
        relative = mixed_einsum("tnd,tsd->tns", q, ops.cast(relative_positions, qw.dtype))
        relative = ops.reshape(relative, (length, batch, self.heads, -1))
        return logits + ops.transpose(relative, (1, 2, 0, 3))

    def attention_output(self, probs, vw, relative_positions, heads_first=False):
        output = super().attention_output(probs, vw, relative_positions, heads_first=heads_first)
        if len(relative_positions.shape) == 2:  # one row per distance (see split_inputs)
            by_distance = _distances_from_pairs(probs)
            table = ops.cast(relative_positions, probs.dtype)
            relative = mixed_einsum("bhtr,rd->bhtd", by_distance, table)
            return output + ops.cast(ops.transpose(relative, (0, 2, 1, 3)), output.dtype)
        batch, length = ops.shape(probs)[0], ops.shape(probs)[2]
        p = ops.reshape(ops.transpose(probs, (2, 0, 1, 3)), (length, -1, ops.shape(probs)[3]))
        relative = mixed_einsum("tns,tsd->tnd", p, ops.cast(relative_positions, probs.dtype))
        relative = ops.cast(relative, output.dtype)
        relative = ops.reshape(relative, (length, batch, self.heads, self.head_size))
        return output + ops.transpose(relative, (1, 0, 2, 3))
