"""kerasbert's Dropout: Keras's semantics with a 16-bit random mask on JAX."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from kerasbert.layers import Dropout
from kerasbert.layers.dropout import packed_bits_dropout


def run(layer, x, training=True):
    layer.build(x.shape)
    state = [v.value for v in layer.non_trainable_variables]
    out, _ = layer.stateless_call([], state, x, training=training)
    return np.asarray(out)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_drop_fraction_and_scale(rate):
    x = np.ones((64, 1000), "float32")
    y = run(Dropout(rate, seed=3), x)
    dropped = (y == 0).mean()
    # 64k Bernoulli draws: 5 standard deviations of the dropped fraction.
    assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / x.size)
    keep = 1 - round(rate * 2**16) / 2**16
    np.testing.assert_allclose(np.unique(y[y != 0]), [1 / keep], rtol=1e-6)
    # The expectation is preserved: the mean stays 1 within sampling noise.
    assert abs(y.mean() - 1) < 5 * np.sqrt(rate / (1 - rate) / x.size)


def test_odd_sizes_and_both_halves_of_each_word_are_used():
    x = np.ones((3, 7, 5), "float32")  # 105 elements: an odd count of 16-bit draws
    y = packed_bits_dropout(jnp.asarray(x), 0.5, jnp.array([0, 7], jnp.uint32))
    assert y.shape == x.shape
    big = packed_bits_dropout(jnp.ones((200_000,)), 0.5, jnp.array([1, 2], jnp.uint32))
    even, odd = np.asarray(big[0::2]) == 0, np.asarray(big[1::2]) == 0
    # Draws from the two halves of a word are independent: their agreement is ~50 %.
    assert abs((even == odd).mean() - 0.5) < 0.01
    assert abs(even.mean() - 0.5) < 0.01 and abs(odd.mean() - 0.5) < 0.01


def test_inference_and_zero_rate_are_identity():
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_array_equal(run(Dropout(0.3), x, training=False), x)
    np.testing.assert_array_equal(run(Dropout(0.0), x, training=True), x)


def test_masks_change_between_calls_and_follow_the_seed():
    x = np.ones((8, 256), "float32")
    layer = Dropout(0.5, seed=11)
    first, second = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    assert not np.array_equal(first == 0, second == 0)
    again = np.asarray(Dropout(0.5, seed=11)(x, training=True))
    np.testing.assert_array_equal(first, again)


def test_gradient_is_the_scaled_mask():
    layer = Dropout(0.25, seed=5)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 64)).astype("float32"))
    layer.build(x.shape)
    state = [v.value for v in layer.non_trainable_variables]

    def total(x):
        return jnp.sum(layer.stateless_call([], state, x, training=True)[0])

    grad = np.asarray(jax.grad(total)(x))
    out = np.asarray(layer.stateless_call([], state, x, training=True)[0])
    keep = 1 - round(0.25 * 2**16) / 2**16
    np.testing.assert_allclose(grad, np.where(out != 0, 1 / keep, 0), rtol=1e-6)


def test_noise_shape_falls_back_to_keras():
    x = np.ones((4, 10, 6), "float32")
    y = run(Dropout(0.5, noise_shape=(None, 1, 6), seed=2), x)
    # The same mask for every position along the broadcast axis.
    assert np.all(y == y[:, :1, :])


def test_serialization_round_trip():
    layer = Dropout(0.2, seed=4, name="Embedding-Dropout")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(clone) is Dropout
    assert (clone.rate, clone.seed, clone.name) == (0.2, 4, "Embedding-Dropout")


def test_models_use_it_for_every_dropout(tiny_config):
    import kerasbert

    for family in ("bert", "albert", "nezha"):
        model = kerasbert.build_transformer_model(tiny_config, model=family, with_mlm=True)
        dropouts = [
            sub
            for layer in model.layers
            for sub in layer._flatten_layers(include_self=True)
            if isinstance(sub, keras.layers.Dropout)
        ]
        assert dropouts, family
        assert all(type(d) is Dropout for d in dropouts), family
