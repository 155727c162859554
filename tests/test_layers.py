"""The layers on their own: math against numpy, both attention paths, serialization."""

import keras
import numpy as np
import pytest
from keras import ops

from kerasbert import layers
from kerasbert.backend import gelu_erf, gelu_tanh, get_activation, sequence_masking

rng = np.random.default_rng(0)


def test_gelu_variants_match_their_formulas():
    from math import erf

    x = np.linspace(-5, 5, 101).astype("float32")
    exact = np.array([0.5 * v * (1 + erf(v / np.sqrt(2))) for v in x])
    tanh = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(ops.convert_to_numpy(gelu_erf(x)), exact, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(gelu_tanh(x)), tanh, atol=1e-6)
    assert np.abs(exact - tanh).max() > 1e-4  # the two are really different
    assert get_activation("gelu_tanh") is gelu_tanh


def _numpy_attention(x, layer, key_mask=None, bias=None):
    w = {v.path.split("/", 1)[1]: v.numpy() for v in layer.weights}
    heads, size = layer.heads, layer.head_size
    b, t, _ = x.shape

    def proj(name):
        return (x @ w[f"{name}/kernel"] + w[f"{name}/bias"]).reshape(b, t, heads, size)

    q, k, v = proj("query"), proj("key"), proj("value")
    logits = np.einsum("bthd,bshd->bhts", q, k) / np.sqrt(size)
    if bias is not None:
        logits = logits + bias
    if key_mask is not None:
        logits = np.where(key_mask[:, None, None, :], logits, -1e30)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    o = np.einsum("bhts,bshd->bthd", probs, v).reshape(b, t, heads * size)
    return o @ w["output/kernel"] + w["output/bias"]


@pytest.mark.parametrize("fused_allowed", [True, False])
def test_attention_fused_and_einsum_paths_match_numpy(monkeypatch, fused_allowed):
    # The fused kernel is what GPUs/TPUs run; JAX on CPU takes the einsum path. Both are
    # checked here whatever the machine.
    from kerasbert.layers import attention

    monkeypatch.setattr(attention, "_fused_attention_supported", lambda dtype: fused_allowed)
    calls = []
    fused_op = attention.ops.dot_product_attention
    monkeypatch.setattr(
        attention.ops, "dot_product_attention", lambda *a, **k: calls.append(1) or fused_op(*a, **k)
    )
    layer = layers.MultiHeadAttention(heads=2, head_size=4, attention_dropout=0.5)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    key_mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    fused = layer([x, x, x], mask=[key_mask, key_mask, key_mask])
    assert bool(calls) == fused_allowed
    expected = _numpy_attention(x, layer, key_mask)
    np.testing.assert_allclose(ops.convert_to_numpy(fused), expected, atol=1e-5)
    # The einsum path (taken when attention dropout is active) agrees with zero dropout.
    layer.dropout.rate = 0.0
    einsum = layer([x, x, x], mask=[key_mask, key_mask, key_mask], training=True)
    np.testing.assert_allclose(ops.convert_to_numpy(einsum), expected, atol=1e-5)


def test_attention_bias_input_is_added_to_logits():
    layer = layers.MultiHeadAttention(heads=2, head_size=4)
    x = rng.normal(size=(1, 4, 8)).astype("float32")
    causal = np.triu(np.full((4, 4), -1e9, "float32"), k=1)[None, None]
    out = ops.convert_to_numpy(layer([x, x, x, causal]))
    np.testing.assert_allclose(out, _numpy_attention(x, layer, bias=causal), atol=1e-5)
    # Causal: changing the last token leaves the first three outputs unchanged.
    x2 = x.copy()
    x2[:, -1] += 1.0
    out2 = ops.convert_to_numpy(layer([x2, x2, x2, causal]))
    np.testing.assert_allclose(out[:, :3], out2[:, :3], atol=1e-6)
    assert np.abs(out[:, 3] - out2[:, 3]).max() > 1e-3


def test_attention_dropout_only_in_training():
    layer = layers.MultiHeadAttention(heads=2, head_size=4, attention_dropout=0.5)
    x = rng.normal(size=(1, 6, 8)).astype("float32")
    a = ops.convert_to_numpy(layer([x, x, x]))
    b = ops.convert_to_numpy(layer([x, x, x], training=True))
    np.testing.assert_allclose(a, ops.convert_to_numpy(layer([x, x, x])))
    assert np.abs(a - b).max() > 1e-4


def test_embedding_tied_dense_mode():
    emb = layers.Embedding(7, 3, mask_zero=True)
    ids = np.array([[1, 2, 0]])
    vectors = ops.convert_to_numpy(emb(ids))
    table = emb.embeddings.numpy()
    np.testing.assert_allclose(vectors[0], table[[1, 2, 0]])
    logits = ops.convert_to_numpy(emb(vectors, mode="dense"))
    np.testing.assert_allclose(logits, vectors @ table.T, atol=1e-6)
    assert ops.convert_to_numpy(emb.compute_mask(ids)).tolist() == [[True, True, False]]


def test_position_embedding_adds_first_rows():
    layer = layers.PositionEmbedding(10, 4, embeddings_initializer="random_normal")
    x = rng.normal(size=(2, 6, 4)).astype("float32")
    y = ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, x + layer.embeddings.numpy()[None, :6], atol=1e-6)


@pytest.mark.parametrize("epsilon", [1e-12, 1e-3])
def test_layer_norm_epsilon(epsilon):
    layer = layers.LayerNormalization(epsilon=epsilon)
    x = rng.normal(size=(2, 3, 5)).astype("float32") * 0.01
    y = ops.convert_to_numpy(layer(x))
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + epsilon), atol=1e-4)


def test_feed_forward_math():
    layer = layers.FeedForward(6, activation="gelu_tanh")
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    y = ops.convert_to_numpy(layer(x))
    w = {v.path.split("/", 1)[1]: v.numpy() for v in layer.weights}
    h = ops.convert_to_numpy(gelu_tanh(x @ w["intermediate/kernel"] + w["intermediate/bias"]))
    np.testing.assert_allclose(y, h @ w["output/kernel"] + w["output/bias"], atol=1e-5)


def test_sequence_masking():
    x = np.ones((2, 3, 4), "float32")
    mask = np.array([[1, 0, 1], [1, 1, 0]])
    y = ops.convert_to_numpy(sequence_masking(x, mask, "-inf"))
    assert (y[0, 1] < -1e11).all() and (y[1, 2] < -1e11).all() and (y[0, 0] == 1).all()


LAYER_CASES = [
    (layers.MultiHeadAttention, {"heads": 2, "head_size": 4, "attention_dropout": 0.1}, 3),
    (layers.FeedForward, {"units": 6, "activation": "gelu_tanh"}, 1),
    (layers.LayerNormalization, {"epsilon": 1e-5}, 1),
    (layers.PositionEmbedding, {"input_dim": 10, "output_dim": 8}, 1),
    (layers.BiasAdd, {}, 1),
    (layers.TokenSlice, {"index": 0}, 1),
]


@pytest.mark.parametrize("cls,kwargs,n_inputs", LAYER_CASES)
def test_layers_serialize(cls, kwargs, n_inputs):
    layer = cls(**kwargs)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    inputs = [x] * n_inputs if n_inputs > 1 else x
    y = ops.convert_to_numpy(layer(inputs))
    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config)
    assert clone.get_config() == layer.get_config()
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(clone(inputs)), y, atol=1e-6)


def test_embedding_serializes():
    layer = layers.Embedding(9, 4, mask_zero=True)
    layer(np.array([[1, 2]]))
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert clone.get_config() == layer.get_config()


def test_attention_probabilities_are_materialized_exactly():
    # A rounding to the dtype's own precision: an exact no-op that keeps XLA:CPU from
    # recomputing the softmax inside the probabilities x values product.
    import jax
    import jax.extend.core
    import jax.numpy as jnp

    from kerasbert.layers.attention import _materialized

    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        x = jnp.asarray(rng.normal(size=(2, 3, 4, 4)) * 1e3, dtype)
        assert _materialized(x).dtype == x.dtype
        np.testing.assert_array_equal(np.asarray(_materialized(x)), np.asarray(x))
    layer = layers.MultiHeadAttention(heads=2, head_size=4)
    x = rng.normal(size=(1, 3, 8)).astype("float32")
    layer([x, x, x])
    weights = [v.value for v in layer.trainable_variables]
    jaxpr = jax.make_jaxpr(lambda w: layer.stateless_call(w, [], [x, x, x])[0])(weights)

    def primitives(jaxpr):
        for eqn in jaxpr.eqns:
            yield eqn.primitive.name
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                yield from primitives(sub)

    assert "reduce_precision" in set(primitives(jaxpr.jaxpr))
