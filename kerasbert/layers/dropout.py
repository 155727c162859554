"""Dropout that draws 16 random bits per element instead of a 32-bit uniform float."""

import keras

# Keep-mask resolution: an element is dropped when its 16 random bits fall below
# round(rate * 2**16), so the rate is exact to 2**-17 (0.1 becomes 0.100006).
MASK_BITS = 16


@keras.saving.register_keras_serializable(package="kerasbert")
class Dropout(keras.layers.Dropout):
    """``keras.layers.Dropout`` with a cheaper random mask on the JAX backend.

    JAX's counter-based generator (threefry) costs the same per 32-bit word whatever the
    dtype asked for, and Keras draws one 32-bit uniform float per element. Here one 32-bit
    word is split into two 16-bit draws, which halves the random-number work; on CPU that
    work is a visible part of a BERT training step (three dropouts per layer, one of them
    on the ``(batch, heads, T, T)`` attention probabilities). Kept elements are scaled by
    ``1 / keep`` where ``keep`` is the quantized keep probability, so the expectation is
    preserved exactly. Other backends, and ``noise_shape``, use Keras's implementation.

    Args:
        rate: fraction of the inputs to drop, in ``[0, 1)``.
        noise_shape: as in Keras (then Keras's implementation is used).
        seed: seed of the layer's random generator.

    Example:

    >>> import numpy as np
    >>> layer = Dropout(0.5, seed=1)
    >>> y = np.asarray(layer(np.ones((4, 1000), "float32"), training=True))
    >>> sorted(set(np.round(y.ravel(), 3).tolist()))
    [0.0, 2.0]
    >>> bool(0.45 < (y == 0).mean() < 0.55)
    True
    """

    def call(self, inputs, training=False):
        if not (training and self.rate > 0):
            return inputs
        if self.noise_shape is not None or keras.backend.backend() != "jax":
            return super().call(inputs, training=training)
        return packed_bits_dropout(inputs, self.rate, self.seed_generator.next())


def packed_bits_dropout(inputs, rate, key):
    """Drop elements of ``inputs`` using ``MASK_BITS`` random bits each (JAX only).

    Args:
        inputs: a JAX array.
        rate: drop probability in ``(0, 1)``.
        key: a raw ``uint32[2]`` JAX PRNG key (what Keras's seed generators hold).
    """
    import jax
    import jax.numpy as jnp

    threshold = round(rate * 2**MASK_BITS)
    if threshold >= 2**MASK_BITS:
        return jnp.zeros_like(inputs)
    keep = 1.0 - threshold / 2**MASK_BITS
    size = inputs.size
    words = jax.random.bits(key, (-(-size // 2),), dtype=jnp.uint32)
    draws = jax.lax.bitcast_convert_type(words, jnp.uint16).reshape(-1)[:size]
    mask = draws.reshape(inputs.shape) >= jnp.uint16(threshold)
    scale = jnp.asarray(1.0 / keep, inputs.dtype)
    return jnp.where(mask, inputs * scale, jnp.zeros_like(inputs))
