"""GlobalPointer heads: every (start, end) span of a sequence scored at once, per entity type.

Su Jianlin's designs (https://kexue.fm/archives/8373 and /8877): a span ``(i, j)`` of type
``h`` scores ``q_i^h · k_j^h / sqrt(head_size)`` with rotary position embeddings on ``q``
and ``k``. Padded rows and columns, and with ``tril_mask`` the spans that end before they
start (``i > j``), get a large negative score, so ``score > 0`` is the decision rule and
:func:`kerasbert.losses.global_pointer_crossentropy` the matching loss.
"""

import keras
from keras import ops

from kerasbert.errors import ConfigError
from kerasbert.ops import (
    apply_rotary_position_embeddings,
    sequence_masking,
    sinusoidal_embeddings,
)


@keras.saving.register_keras_serializable(package="kerasbert")
class GlobalPointer(keras.layers.Layer):
    """Span scores ``(batch, heads, seq_len, seq_len)`` from hidden states ``(batch, seq_len, d)``.

    One dense projection, the sublayer ``query_key`` with kernel ``(d, heads * 2 *
    head_size)``, gives per head ``h`` the query (columns ``[2h * head_size, (2h + 1) *
    head_size)``) and the key (the next ``head_size`` columns); bert4keras's layout, so its
    trained weights load array for array. The input's Keras mask marks padding; the output
    has no mask. Scores are float32 under any dtype policy (under mixed precision only the
    projection runs in the compute dtype).

    Args:
        heads: number of span types (entity types).
        head_size: size of each type's queries and keys; even when ``RoPE``.
        RoPE: apply rotary position embeddings to queries and keys.
        use_bias: whether the projection has a bias.
        tril_mask: mask the spans with ``start > end``.
        kernel_initializer: initializer of the projection kernel(s).

    Example:

    >>> import numpy as np
    >>> scores = GlobalPointer(heads=3, head_size=8)(np.zeros((2, 5, 16), "float32"))
    >>> scores.shape, bool(scores[0, 0, 1, 0] < -1e11)
    ((2, 3, 5, 5), True)
    """

    def __init__(
        self,
        heads,
        head_size,
        RoPE=True,  # bert4keras's spelling, kept for compatibility
        use_bias=True,
        tril_mask=True,
        kernel_initializer="lecun_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if RoPE and head_size % 2:
            raise ConfigError(
                f"{type(self).__name__} with RoPE needs an even head_size; got {head_size}."
            )
        self.heads = heads
        self.head_size = head_size
        self.RoPE = RoPE
        self.use_bias = use_bias
        self.tril_mask = tril_mask
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True
        self._create_projections()

    def _create_projections(self):
        self.query_key = self._dense(self.heads * self.head_size * 2, "query_key")

    def _dense(self, units, name):
        return keras.layers.Dense(
            units,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        self.query_key.build(input_shape)

    def _rotate(self, qw, kw):
        if not self.RoPE:
            return qw, kw
        positions = ops.arange(ops.shape(qw)[1])[None]
        table = sinusoidal_embeddings(positions, self.head_size)
        return apply_rotary_position_embeddings(table, qw, kw)

    def span_logits(self, inputs):
        """Unmasked scores ``(batch, heads, seq_len, seq_len)``, already scaled."""
        # Mixed precision: the projection runs in the compute dtype, the rotation and the
        # span products in float32, so the scores (logits of a loss) are float32.
        x = ops.cast(self.query_key(inputs), "float32")
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.heads, 2 * self.head_size))
        qw, kw = self._rotate(x[..., : self.head_size], x[..., self.head_size :])
        return ops.einsum("bmhd,bnhd->bhmn", qw, kw) / self.head_size**0.5

    def call(self, inputs, mask=None):
        return self.mask_logits(self.span_logits(inputs), mask)

    def mask_logits(self, logits, mask):
        """Large negative scores on padded rows/columns and, with ``tril_mask``, ``i > j``."""
        logits = sequence_masking(logits, mask, "-inf", axis=2)
        logits = sequence_masking(logits, mask, "-inf", axis=3)
        if self.tril_mask:
            length = ops.shape(logits)[-1]
            index = ops.arange(length)
            upper = ops.less_equal(index[:, None], index[None, :])
            big = 1e12 if keras.backend.standardize_dtype(logits.dtype) == "float32" else 1e4
            logits = ops.where(upper[None, None], logits, ops.cast(-big, logits.dtype))
        return logits

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.heads, input_shape[1], input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "heads": self.heads,
                "head_size": self.head_size,
                "RoPE": self.RoPE,
                "use_bias": self.use_bias,
                "tril_mask": self.tril_mask,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class EfficientGlobalPointer(GlobalPointer):
    """The parameter-efficient GlobalPointer: one query/key pair shared by all span types.

    ``query_key`` projects to ``2 * head_size`` channels, queries in the even and keys in the
    odd ones; a second projection of those channels, ``head_bias`` (``2 * heads`` outputs),
    adds per-type terms: output ``2h + 1`` (halved) for the start position and ``2h``
    (halved) for the end position. Scores are ``q_i · k_j / sqrt(head_size) +
    start_h(i) + end_h(j)``; masking as in :class:`GlobalPointer`. Same arguments.

    Example:

    >>> import numpy as np
    >>> EfficientGlobalPointer(heads=3, head_size=8)(np.zeros((2, 5, 16), "float32")).shape
    (2, 3, 5, 5)
    """

    def _create_projections(self):
        self.query_key = self._dense(self.head_size * 2, "query_key")
        self.head_bias = self._dense(self.heads * 2, "head_bias")

    def build(self, input_shape):
        self.query_key.build(input_shape)
        self.head_bias.build(tuple(input_shape[:-1]) + (self.head_size * 2,))

    def span_logits(self, inputs):
        x = self.query_key(inputs)
        bias = ops.cast(self.head_bias(x), "float32")  # float32 scores, as in GlobalPointer
        x = ops.cast(x, "float32")
        qw, kw = self._rotate(x[..., ::2], x[..., 1::2])
        logits = ops.einsum("bmd,bnd->bmn", qw, kw) / self.head_size**0.5
        bias = ops.transpose(bias, (0, 2, 1)) / 2  # (batch, 2 * heads, seq_len)
        return logits[:, None] + bias[:, ::2, None, :] + bias[:, 1::2, :, None]
