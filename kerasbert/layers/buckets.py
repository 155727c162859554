"""T5's relative position buckets and the learned per-head attention bias they index."""

import math

import keras
import numpy as np
from keras import ops


def relative_position_buckets(distances, bidirectional, num_buckets, max_distance):
    """T5's bucket of each relative distance ``key position - query position``.

    Distances below ``num_buckets // 2`` (of the half of the buckets a direction gets
    when ``bidirectional``) have a bucket each; longer ones share logarithmically wider
    buckets up to ``max_distance``, beyond which all fall in the last. Without
    ``bidirectional`` (a decoder's causal self-attention) keys after the query all fall in
    bucket 0. The logarithm is taken in float32, as the original code and HF do: at exact
    powers (a distance of 16 with 32 buckets over 128) float32 rounding, not the exact
    value, decides the bucket, and the trained models saw float32's.

    Args:
        distances: an integer numpy array of ``key - query`` distances.
        bidirectional: whether keys before and after the query have buckets of their own.
        num_buckets: the number of buckets (``relative_attention_num_buckets``, 32).
        max_distance: the distance from which everything shares the last bucket (128).

    Example:

    >>> relative_position_buckets(np.arange(-3, 4), True, 8, 16).tolist()
    [2, 2, 1, 0, 5, 6, 6]
    """
    distances = np.asarray(distances, dtype=np.int64)
    buckets = np.zeros(distances.shape, dtype=np.int64)
    if bidirectional:
        num_buckets //= 2
        buckets += (distances > 0) * num_buckets
        n = np.abs(distances)
    else:
        n = -np.minimum(distances, 0)
    exact = num_buckets // 2
    with np.errstate(divide="ignore"):
        ratio = np.log(n.astype(np.float32) / np.float32(exact)).astype(np.float32)
    scaled = ratio / np.float32(math.log(max_distance / exact)) * np.float32(num_buckets - exact)
    large = exact + np.where(n < exact, 0, scaled.astype(np.float32)).astype(np.int64)
    large = np.minimum(large, num_buckets - 1)
    return buckets + np.where(n < exact, n, large)


@keras.saving.register_keras_serializable(package="kerasbert")
class RelativePositionBias(keras.layers.Layer):
    """T5's relative attention bias (bert4keras's ``RelativePositionEmbeddingT5``).

    A ``(num_buckets, heads)`` table of learned biases; the bias of query ``i`` and key
    ``j`` is the row of :func:`relative_position_buckets` of ``j - i``. Inputs
    ``[queries, keys]`` (only their lengths are used); the output is the
    ``(1, heads, q_len, k_len)`` bias that :class:`MultiHeadAttention` adds to its logits.
    With ``causal=True`` (a call argument) keys after the query also get ``-1e12``: the
    decoder's causal mask, in the same tensor.

    The buckets depend on the distance only up to ``max_distance``, so they are a constant
    ``2 * max_distance + 1`` table, indexed by the clipped distance.

    Args:
        heads: number of attention heads.
        num_buckets: ``relative_attention_num_buckets`` (32 in every release).
        max_distance: ``relative_attention_max_distance`` (128).
        bidirectional: True for the encoder, False for the decoder's self-attention.
        embeddings_initializer: initializer of the table.

    Example:

    >>> import numpy as np
    >>> layer = RelativePositionBias(heads=2, num_buckets=8, max_distance=16)
    >>> x = np.zeros((1, 5, 4), "float32")
    >>> tuple(layer([x, x]).shape), tuple(layer.embeddings.shape)
    ((1, 2, 5, 5), (8, 2))
    """

    def __init__(
        self,
        heads,
        num_buckets=32,
        max_distance=128,
        bidirectional=True,
        embeddings_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.heads = heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        distances = np.arange(-max_distance, max_distance + 1)
        self.bucket_table = relative_position_buckets(
            distances, bidirectional, num_buckets, max_distance
        ).astype("int32")

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.num_buckets, self.heads),
            initializer=self.embeddings_initializer,
        )

    def bias(self, query_positions, key_positions, causal=False):
        """The ``(1, heads, queries, keys)`` bias for integer position vectors (used by
        incremental decoding, whose queries start after the cached positions)."""
        distances = key_positions[None, :] - query_positions[:, None]
        index = ops.clip(distances, -self.max_distance, self.max_distance) + self.max_distance
        buckets = ops.take(ops.convert_to_tensor(self.bucket_table), index, axis=0)
        values = ops.take(ops.cast(self.embeddings, "float32"), buckets, axis=0)
        values = ops.transpose(values, (2, 0, 1))[None]
        if causal:
            values = ops.where(distances[None, None] > 0, -1e12, values)
        return values

    def call(self, inputs, causal=False):
        q_len, k_len = ops.shape(inputs[0])[1], ops.shape(inputs[1])[1]
        return self.bias(ops.arange(q_len, dtype="int32"), ops.arange(k_len, dtype="int32"), causal)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "heads": self.heads,
                "num_buckets": self.num_buckets,
                "max_distance": self.max_distance,
                "bidirectional": self.bidirectional,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config
