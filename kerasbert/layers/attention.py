"""Multi-head attention with a padding mask and an optional additive bias input."""

import functools

import keras
from keras import ops

from kerasbert.layers.dense import Dense, mixed_einsum
from kerasbert.layers.dropout import Dropout
from kerasbert.ops import sequence_masking


@functools.cache
def _fused_attention_supported(dtype):
    """Whether to use the fused ``keras.ops.dot_product_attention`` for ``dtype`` here.

    Not on JAX's CPU backend, where the einsum path is as fast for a BERT-base forward at
    short lengths and faster at long ones (the fused XLA version copies the (batch, heads,
    T, T) probabilities once more; measurements in bench/README.md, "Design measurements
    behind the layers"), and where the fused float16 product does not compile at all
    ("precision 'F16_F16_F32' is not supported by dot_general on CPU"). GPUs and TPUs, and
    other backends, keep the fused kernel (flash attention where Keras can use it).
    """
    if keras.backend.backend() != "jax":
        return True
    import jax

    return jax.default_backend() != "cpu"


def _materialized(x):
    """``x`` unchanged, in a form XLA:CPU computes into memory before the next product.

    Otherwise XLA:CPU fuses the softmax into the probabilities x values product, where it is
    recomputed tile by tile, which makes the attention several times slower (measurements
    in bench/README.md, "Design measurements behind the layers"). A rounding to the dtype's
    own precision is an exact no-op that this fusion does not take in, so the probabilities
    are computed once (``optimization_barrier`` does not survive XLA:CPU's pipeline). Other
    backends get ``x`` as it is.
    """
    if keras.backend.backend() != "jax":
        return x
    import jax
    import jax.numpy as jnp

    info = jnp.finfo(x.dtype)
    return jax.lax.reduce_precision(x, exponent_bits=info.nexp, mantissa_bits=info.nmant)


def _cache_einsum(equation, a, b):
    """An attention product with a decoding cache's heads-first keys or values as ``b``.

    ``mixed_einsum``'s float32 path lays both operands out as one batch-first dot, which
    for ``b`` means a transposed copy of the whole cache in every decoding step (a copy per
    layer of all cached keys, and XLA then copies the values too); ``keras.ops.einsum``
    leaves the layout to XLA, which reads the cache where it is. 16-bit operands keep
    ``mixed_einsum`` for its float32 accumulation.
    """
    if keras.backend.standardize_dtype(a.dtype) in ("float32", "float64"):
        return ops.einsum(equation, a, b)
    return mixed_einsum(equation, a, b)


@keras.saving.register_keras_serializable(package="kerasbert")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention (bert4keras's ``MultiHeadAttention``).

    Inputs are ``[q, k, v]`` or ``[q, k, v, bias]``. ``bias`` is added to the attention
    logits and must broadcast to ``(batch, heads, q_len, k_len)``; it carries LM / UniLM
    masks (``-inf``-like values where attention is forbidden). Keys whose Keras mask is
    false (padding) are never attended to. The output keeps the query's mask.

    With no relative-position term and no active attention dropout the fused
    ``keras.ops.dot_product_attention`` is used; otherwise an einsum path, which subclasses
    extend with position terms (``split_inputs`` returns a position input, which
    ``position_heads`` applies to the heads or keeps as the einsum path's
    ``relative_positions``).

    Args:
        heads: number of attention heads.
        head_size: size of each head's values (and keys unless ``key_size`` is given).
        out_dim: size of the output projection; defaults to ``heads * head_size``.
        key_size: size of each head's queries/keys; defaults to ``head_size``.
        use_bias: whether the q/k/v/o projections have biases.
        attention_scale: divide logits by ``sqrt(key_size)``.
        attention_dropout: dropout rate on the attention probabilities (training only).
        kernel_initializer: initializer of the projection kernels.

    Example:

    >>> import numpy as np
    >>> layer = MultiHeadAttention(heads=2, head_size=4)
    >>> x = np.random.rand(1, 5, 8).astype("float32")
    >>> layer([x, x, x]).shape
    (1, 5, 8)
    """

    def __init__(
        self,
        heads,
        head_size,
        out_dim=None,
        key_size=None,
        use_bias=True,
        attention_scale=True,
        attention_dropout=0.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.heads = heads
        self.head_size = head_size
        self.out_dim = out_dim or heads * head_size
        self.key_size = key_size or head_size
        self.use_bias = use_bias
        self.attention_scale = attention_scale
        self.attention_dropout = attention_dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

        def dense(units, name):
            return Dense(
                units,
                use_bias=use_bias,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name=name,
            )

        self.query_dense = dense(self.key_size * heads, "query")
        self.key_dense = dense(self.key_size * heads, "key")
        self.value_dense = dense(self.head_size * heads, "value")
        self.output_dense = dense(self.out_dim, "output")
        self.dropout = Dropout(attention_dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        q_shape, k_shape, v_shape = input_shape[:3]
        self.query_dense.build(q_shape)
        self.key_dense.build(k_shape)
        self.value_dense.build(v_shape)
        self.output_dense.build(tuple(v_shape[:-1]) + (self.heads * self.head_size,))

    def _split_heads(self, x, size):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (batch, length, self.heads, size))

    def split_inputs(self, inputs):
        """``(q, k, v, bias, positions)`` from the input list.

        ``positions`` is None here; subclasses take one more input and return it:
        :class:`RelativeMultiHeadAttention` its relative-position encodings (per pair or per
        distance), :class:`RotaryMultiHeadAttention` the sinusoids of its rotary embedding.
        """
        bias = inputs[3] if len(inputs) > 3 else None
        return inputs[0], inputs[1], inputs[2], bias, None

    def position_heads(self, qw, kw, vw, positions):
        """Per-head queries, keys and values after any position transform, and the position
        terms left for the logits and output (``relative_positions`` of :meth:`attend`).

        Here nothing changes. :class:`RotaryMultiHeadAttention` rotates the heads and
        leaves no term (so the fused kernel still applies); relative attention keeps its
        encodings as the term. Incremental decoding calls this on the new positions' heads
        before caching them.
        """
        return qw, kw, vw, positions

    def call(self, inputs, mask=None, training=None):
        q, k, v, bias, positions = self.split_inputs(inputs)
        key_mask = None
        if mask is not None:
            key_mask = mask[2] if mask[2] is not None else mask[1]

        qw = self._split_heads(self.query_dense(q), self.key_size)
        kw = self._split_heads(self.key_dense(k), self.key_size)
        vw = self._split_heads(self.value_dense(v), self.head_size)
        qw, kw, vw, relative_positions = self.position_heads(qw, kw, vw, positions)
        scale = 1.0 / self.key_size**0.5 if self.attention_scale else 1.0

        dropout_active = bool(training) and self.attention_dropout > 0
        fused = relative_positions is None and not dropout_active
        if fused and _fused_attention_supported(qw.dtype):
            fused_mask = None
            if key_mask is not None:
                fused_mask = ops.cast(key_mask, "bool")[:, None, None, :]
            if bias is not None:
                bias = ops.cast(bias, qw.dtype)
            o = ops.dot_product_attention(qw, kw, vw, bias=bias, mask=fused_mask, scale=scale)
        else:
            o = self.attend(qw, kw, vw, bias, key_mask, scale, training, relative_positions)

        batch, length = ops.shape(o)[0], ops.shape(o)[1]
        o = ops.reshape(o, (batch, length, self.heads * self.head_size))
        return self.output_dense(o)

    def attention_logits(self, qw, kw, relative_positions, heads_first=False):
        """Raw logits ``(batch, heads, q_len, k_len)``; subclasses add position terms.

        ``kw`` is ``(batch, k_len, heads, size)``, or with ``heads_first``
        ``(batch, heads, k_len, size)``: the layout of a decoding cache, where keys are
        appended along ``k_len`` and read by every step (see :meth:`attend`).
        """
        if heads_first:
            return _cache_einsum("bthd,bhsd->bhts", qw, kw)
        return mixed_einsum("bthd,bshd->bhts", qw, kw)

    def attention_output(self, probs, vw, relative_positions, heads_first=False):
        """Weighted values ``(batch, q_len, heads, head_size)``; subclasses add terms.
        ``vw`` is laid out as ``kw`` in :meth:`attention_logits`."""
        if heads_first:
            return ops.cast(_cache_einsum("bhts,bhsd->bthd", probs, vw), vw.dtype)
        return ops.cast(mixed_einsum("bhts,bshd->bthd", probs, vw), vw.dtype)

    def attend(self, qw, kw, vw, bias, key_mask, scale, training, relative_positions=None,
               heads_first=False):  # fmt: skip
        """The einsum path: logits, bias, key mask, float32 softmax, dropout, values.

        ``heads_first``: ``kw`` and ``vw`` are ``(batch, heads, k_len, size)``, the layout
        cached decoding keeps them in. In the ``(batch, k_len, heads, size)`` layout of the
        layer's own call, each product over a long cache first transposes all of it (XLA
        copies the keys and values to put the heads outside); a cache that is heads-first
        already is read in place.
        """
        # Mixed precision: the logits are float32, as in the fused kernel: on JAX
        # mixed_einsum accumulates 16-bit q·k into a float32 result (rounded to 16 bits,
        # large logits lose the differences the softmax depends on); scale, bias, mask and
        # softmax then run in float32. Probabilities go back to v's dtype for the product
        # with the values.
        logits = self.attention_logits(qw, kw, relative_positions, heads_first=heads_first)
        logits = ops.cast(logits, "float32") * scale
        if bias is not None:
            logits = logits + ops.cast(bias, "float32")
        logits = sequence_masking(logits, key_mask, "-inf", axis=-1)
        probs = ops.softmax(logits, axis=-1)
        probs = self.dropout(ops.cast(probs, vw.dtype), training=training)
        return self.attention_output(
            _materialized(probs), vw, relative_positions, heads_first=heads_first
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (self.out_dim,)

    def compute_mask(self, inputs, mask=None):
        return mask[0] if mask is not None else None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "heads": self.heads,
                "head_size": self.head_size,
                "out_dim": self.out_dim,
                "key_size": self.key_size,
                "use_bias": self.use_bias,
                "attention_scale": self.attention_scale,
                "attention_dropout": self.attention_dropout,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
