"""Mixed precision: float32 islands (softmax, layer norm, heads, losses) and measured tolerances.

The tolerances are the ones documented in docs/mixed_precision.md, where the measurements
behind them are listed. Every test leaves the global policy at "float32" (autouse fixture),
even when it fails.
"""

import contextlib

import keras
import numpy as np
import pytest
from conftest import FIXTURES, goldens

import kerasbert
from kerasbert.layers import (
    ConditionalRandomField,
    Embedding,
    GlobalPointer,
    LayerNormalization,
    Loss,
    MultiHeadAttention,
    PositionEmbedding,
    RelativeMultiHeadAttention,
)

POLICIES = ("mixed_bfloat16", "mixed_float16")
COMPUTE = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}

# docs/mixed_precision.md, "Tolerances": the largest differences measured (5 random weight
# sets x 3 families for the tiny models; 8 sentences for MiniLM) with a margin of 2-10x.
# *_abs: max abs difference to float32; *_cos: min cosine similarity to float32.
TOLERANCES = {
    "mixed_bfloat16": {
        "pooled_abs": 0.1,
        "pooled_cos": 0.999,
        "nsp_abs": 0.02,
        "mlm_abs": 0.15,
        "minilm_abs": 0.005,
        "minilm_cos": 0.9998,
    },
    "mixed_float16": {
        "pooled_abs": 0.015,
        "pooled_cos": 0.99998,
        "nsp_abs": 0.003,
        "mlm_abs": 0.02,
        "minilm_abs": 0.001,
        "minilm_cos": 0.99999,
    },
}

TINY = {
    "vocab_size": 300,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 64,
    "hidden_act": "gelu_erf",
}


@pytest.fixture(autouse=True)
def float32_policy():
    """Start from, and always return to, the float32 global policy."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@contextlib.contextmanager
def policy(name):
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def build(policy_name, config=None, checkpoint=None, **kwargs):
    with policy(policy_name):
        keras.utils.set_random_seed(0)
        return kerasbert.build_transformer_model(config or dict(TINY), checkpoint, **kwargs)


def realistic_weights(model, seed=3):
    """Random weights at trained-model scales: unit-scale projections (query/key x2, so
    attention is peaked), embeddings of std 0.4 (MLM logits of std ~3), LN gamma ~1."""
    rng = np.random.default_rng(seed)
    weights = []
    for variable in model.weights:
        shape, path = variable.shape, variable.path
        if variable.name == "gamma":
            w = 1 + 0.1 * rng.standard_normal(shape)
        elif len(shape) == 1:
            w = 0.1 * rng.standard_normal(shape)
        elif "embeddings" in path:
            w = 0.4 * rng.standard_normal(shape)
        else:
            w = rng.standard_normal(shape) / np.sqrt(shape[0])
            if "/query/" in path or "/key/" in path:
                w *= 2.0
        weights.append(w.astype("float32"))
    model.set_weights(weights)


def tiny_inputs(seed=13):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, TINY["vocab_size"], (8, 48))
    ids[1, 30:] = 0
    ids[2, 10:] = 0
    segments = np.zeros_like(ids)
    segments[:, 20:] = 1
    segments[ids == 0] = 0
    return ids, segments


def with_pooled(model):
    """The model with the pooler output prepended to its outputs."""
    return keras.Model(model.inputs, [model.get_layer("Pooler-Dense").output] + model.outputs)


def cosines(a, b):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def as_f32(x):
    return np.asarray(keras.ops.convert_to_numpy(x), "float32")


# -- whole models against float32 -------------------------------------------------------------


@pytest.fixture(scope="module", params=["bert", "albert", "nezha"])
def float32_reference(request):
    keras.mixed_precision.set_global_policy("float32")
    heads = {"with_pool": True, "with_nsp": True, "with_mlm": True}
    model = build("float32", model=request.param, **heads)
    realistic_weights(model)
    ids, segments = tiny_inputs()
    outputs = [as_f32(o) for o in with_pooled(model)([ids, segments])]
    return request.param, heads, model.get_weights(), outputs


@pytest.mark.parametrize("policy_name", POLICIES)
def test_model_outputs_within_tolerance_of_float32(float32_reference, policy_name):
    family, heads, weights, (pooled32, nsp32, mlm32) = float32_reference
    tol = TOLERANCES[policy_name]
    model = build(policy_name, model=family, **heads)
    assert {v.dtype for v in model.weights} == {"float32"}
    model.set_weights(weights)
    ids, segments = tiny_inputs()
    # predict() runs the jitted graph (float16 on CPU once failed to compile there only).
    pooled, nsp, mlm = with_pooled(model).predict([ids, segments], verbose=0)

    assert pooled.dtype == COMPUTE[policy_name]  # the encoder computes in the low dtype
    assert nsp.dtype == "float32" and mlm.dtype == "float32"  # heads are float32
    pooled = pooled.astype("float32")
    assert np.abs(pooled - pooled32).max() < tol["pooled_abs"]
    assert cosines(pooled, pooled32).min() > tol["pooled_cos"]
    assert np.abs(nsp - nsp32).max() < tol["nsp_abs"]
    assert np.abs(mlm - mlm32).max() < tol["mlm_abs"]
    # A float32 softmax: every distribution sums to 1 to float32 precision (a bfloat16 one
    # cast up would be off by ~1e-3).
    np.testing.assert_allclose(mlm.sum(-1), 1.0, atol=2e-5)
    np.testing.assert_allclose(nsp.sum(-1), 1.0, atol=2e-6)


@pytest.fixture(scope="module")
def minilm_float32(minilm_dir):
    keras.mixed_precision.set_global_policy("float32")
    model = build("float32", minilm_dir, minilm_dir)
    g = goldens(FIXTURES / "minilm")
    return model, g, as_f32(model.predict([g["token_ids"], g["segment_ids"]], verbose=0))


def mean_pool(vectors, mask):
    mask = mask[..., None].astype("float32")
    pooled = (vectors * mask).sum(1) / mask.sum(1)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


@pytest.mark.parametrize("policy_name", POLICIES)
def test_real_minilm_under_mixed_policy(minilm_dir, minilm_float32, policy_name):
    reference, g, sequence32 = minilm_float32
    tol = TOLERANCES[policy_name]
    model = build(policy_name, minilm_dir, minilm_dir)
    # Loading under a mixed policy: variables stay float32 and hold exactly the same values.
    assert {v.dtype for v in model.weights} == {"float32"}
    for ours, theirs in zip(model.weights, reference.weights):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

    sequence = model.predict([g["token_ids"], g["segment_ids"]], verbose=0)
    assert sequence.dtype == COMPUTE[policy_name]
    embeddings = mean_pool(sequence.astype("float32"), g["attention_mask"])
    for expected in (mean_pool(sequence32, g["attention_mask"]), g["sentence_embeddings"]):
        assert np.abs(embeddings - expected).max() < tol["minilm_abs"]
        assert cosines(embeddings, expected).min() > tol["minilm_cos"]


@pytest.mark.parametrize("policy_name", POLICIES)
def test_hf_checkpoint_heads_under_mixed_policy(policy_name):
    """A random-weight HF checkpoint, against HF's own float32 outputs."""
    folder = FIXTURES / "bert_tiny_gelu"
    g = goldens(folder)
    tol = TOLERANCES[policy_name]
    model = build(
        policy_name,
        folder / "config.json",
        folder / "model.safetensors",
        with_nsp="linear",
        with_mlm="linear",
    )
    pooled, nsp, mlm = with_pooled(model).predict([g["token_ids"], g["segment_ids"]], verbose=0)
    assert nsp.dtype == "float32" and mlm.dtype == "float32"
    pooled = pooled.astype("float32")
    assert np.abs(pooled - g["pooled_output"]).max() < tol["pooled_abs"]
    assert cosines(pooled, g["pooled_output"]).min() > tol["pooled_cos"]
    real = g["attention_mask"].astype(bool)
    assert cosines(nsp, g["nsp_logits"]).min() > tol["pooled_cos"]
    assert cosines(mlm[real], g["mlm_logits"][real]).min() > tol["pooled_cos"]


@pytest.mark.parametrize("application", ["lm", "unilm"])
@pytest.mark.parametrize("policy_name", POLICIES)
def test_attention_bias_masks_under_mixed_policy(policy_name, application):
    """The -1e12 LM/UniLM bias is -inf in float16; outputs stay finite and close."""
    ids, segments = tiny_inputs()
    reference = build("float32", application=application, with_pool=True)
    realistic_weights(reference)
    model = build(policy_name, application=application, with_pool=True)
    model.set_weights(reference.get_weights())
    # A language model has the MLM head too (as in bert4keras): compare the pooled output.
    expected = as_f32(reference([ids, segments])[0])
    pooled = model.predict([ids, segments], verbose=0)[0].astype("float32")
    assert np.isfinite(pooled).all()
    assert cosines(pooled, expected).min() > TOLERANCES[policy_name]["pooled_cos"]


def test_saved_weights_move_between_policies(tmp_path):
    """Weights saved by a mixed_bfloat16 model load into a float32 one, bit for bit."""
    mixed = build("mixed_bfloat16", with_mlm=True)
    realistic_weights(mixed)
    mixed.save_weights(tmp_path / "mixed.weights.h5")
    plain = build("float32", with_mlm=True)
    plain.load_weights(tmp_path / "mixed.weights.h5")
    for a, b in zip(mixed.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- the float32 islands, each checked where a low-precision computation would show ------------


def _attention_case():
    """q·k logits of 10000 + s/8 for keys s = 0..7: exact in float32, but a bfloat16 or
    float16 logit rounds them all to 10000 (uniform attention). Values are s, so the
    output is the attention-weighted mean key index."""
    s = np.arange(8, dtype="float32")
    q = np.array([[[1000.0, 1.0]]], "float32")
    k = np.stack([np.full(8, 10.0, "float32"), s / 8], -1)[None]
    v = np.stack([s, np.zeros(8, "float32")], -1)[None]
    logits = (q[0] @ k[0].T).astype("float64")[0]
    p = np.exp(logits - logits.max())
    expected = float((p / p.sum()) @ s)
    assert abs(expected - 3.5) > 0.5  # far from what uniform attention would give
    return q, k, v, expected


def _identity_attention(cls, policy_name):
    with policy(policy_name):
        layer = cls(heads=1, head_size=2, use_bias=False, attention_scale=False)
    q, k, v, expected = _attention_case()
    layer.build([q.shape, k.shape, v.shape])
    layer.set_weights([np.eye(2, dtype="float32")] * 4)
    return layer, q, k, v, expected


@pytest.mark.parametrize("policy_name", POLICIES)
def test_attention_layer_logits_and_softmax_in_float32(policy_name):
    """The layer's own path (einsum on JAX CPU, the fused kernel on accelerators)."""
    layer, q, k, v, expected = _identity_attention(MultiHeadAttention, policy_name)
    out = layer([q, k, v])
    assert keras.backend.standardize_dtype(out.dtype) == COMPUTE[policy_name]
    assert abs(as_f32(out)[0, 0, 0] - expected) < 0.1


@pytest.mark.parametrize("cls", [MultiHeadAttention, RelativeMultiHeadAttention])
@pytest.mark.parametrize("policy_name", POLICIES)
def test_einsum_attention_logits_and_softmax_in_float32(policy_name, cls):
    """The einsum path (training with attention dropout, NEZHA, cached decoding)."""
    layer, q, k, v, expected = _identity_attention(cls, policy_name)
    dtype = COMPUTE[policy_name]
    relative = None
    if cls is RelativeMultiHeadAttention:
        # NEZHA: the large logits come from q·r_ij instead (keys are zero); the output
        # gains sum_j p_j r_ij, whose first component is 10.
        relative, k = k[0][None], np.zeros_like(k)
        expected += 10.0
        relative = keras.ops.cast(relative, dtype)
    qw, kw, vw = (keras.ops.cast(x[:, :, None, :], dtype) for x in (q, k, v))
    out = layer.attend(qw, kw, vw, None, None, 1.0, False, relative)
    assert abs(as_f32(out)[0, 0, 0, 0] - expected) < 0.1


def _layer_norm_case(policy_name):
    """Eight values exact in the compute dtype whose mean (base + 7) is not: a layer norm
    computed in that dtype is off by ~0.2; the float32 one by the output rounding only."""
    base = 256.0 if policy_name == "mixed_bfloat16" else 2048.0
    x = base + 2.0 * np.arange(8)
    expected = (x - x.mean()) / x.std()
    return x[None].astype("float32"), expected


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("policy_name", POLICIES)
def test_layer_normalization_in_float32(policy_name, conditional):
    x, expected = _layer_norm_case(policy_name)
    with policy(policy_name):
        layer = LayerNormalization(conditional=conditional, hidden_units=4 if conditional else None)
    inputs = [x, np.ones((1, 3), "float32")] if conditional else x
    out = layer(inputs)
    assert keras.backend.standardize_dtype(out.dtype) == COMPUTE[policy_name]
    np.testing.assert_allclose(as_f32(out)[0], expected, atol=0.02)


@pytest.mark.parametrize("policy_name", POLICIES)
def test_crf_head_trains_in_float32(policy_name):
    """Tiny BERT + CRF with dropout (the einsum attention path) trains a few steps."""
    rng = np.random.default_rng(0)
    ids, segments = tiny_inputs()
    labels = rng.integers(0, 3, ids.shape)
    with policy(policy_name):
        keras.utils.set_random_seed(0)
        bert = kerasbert.build_transformer_model(dict(TINY), dropout_rate=0.1)
        scores = keras.layers.Dense(3, name="emissions")(bert.output)
        crf = ConditionalRandomField(name="crf")
        model = keras.Model(bert.inputs, crf(scores))
    model.compile(keras.optimizers.Adam(1e-3), loss=crf.sparse_loss)
    if policy_name == "mixed_float16":  # Keras scales the loss for float16 by itself
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = crf.trans.numpy().copy()
    history = model.fit([ids, segments], labels, batch_size=4, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert crf.trans.dtype == "float32" and not np.allclose(crf.trans.numpy(), before)
    y_pred = model([ids, segments])
    assert keras.backend.standardize_dtype(y_pred.dtype) == "float32"
    loss = crf.sparse_loss(labels, y_pred)
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"


@pytest.mark.parametrize("policy_name", POLICIES)
def test_global_pointer_scores_in_float32(policy_name):
    """Span scores (1024 + j/8) / sqrt(2) keep their differences, lost in a low dtype."""
    with policy(policy_name):
        layer = GlobalPointer(heads=1, head_size=2, RoPE=False, use_bias=False, tril_mask=False)
    layer.build((None, None, 4))
    layer.set_weights([np.eye(4, dtype="float32")])  # q_i = x_i[:2], k_j = x_j[2:]
    j = np.arange(4, dtype="float32")
    x = np.stack([np.full(4, 32.0), np.ones(4), np.full(4, 32.0), j / 8], -1)[None]
    scores = layer(x.astype("float32"))
    assert keras.backend.standardize_dtype(scores.dtype) == "float32"
    got = as_f32(scores)[0, 0]
    expected = (1024 + j / 8) / np.sqrt(2)
    differences = np.broadcast_to(expected - expected[0], got.shape)
    np.testing.assert_allclose(got - got[:, :1], differences, atol=0.02)


@pytest.mark.parametrize("policy_name", POLICIES)
def test_loss_layer_sees_float32(policy_name):
    seen = {}

    class Recorder(Loss):
        def compute_loss(self, inputs, mask=None):
            seen["dtypes"] = [keras.backend.standardize_dtype(x.dtype) for x in inputs]
            return keras.ops.mean(inputs[0])

    with policy(policy_name):
        layer = Recorder(output_axis=0)
    out = layer([np.ones((2, 3), "float32"), np.ones((2, 3), "int32")])
    assert seen["dtypes"] == ["float32", "int32"]
    assert keras.backend.standardize_dtype(out.dtype) == COMPUTE[policy_name]
    assert keras.backend.standardize_dtype(layer.losses[0].dtype) == "float32"


def _table_gradient(layer, inputs, weight):
    """d sum(weight * layer(inputs)) / d (the layer's first variable), via JAX, with the
    layer inside a functional model, so Keras applies its mixed-precision autocasting."""
    import jax

    single = not isinstance(inputs, list)
    inputs = [inputs] if single else inputs
    symbolic = [keras.Input(x.shape[1:], dtype=x.dtype.name) for x in inputs]
    model = keras.Model(symbolic, layer(symbolic[0] if single else symbolic))
    values = [v.value for v in model.trainable_variables]

    def loss(values):
        out, _ = model.stateless_call(values, [], inputs)
        return keras.ops.sum(keras.ops.cast(out, "float32") * weight)

    return as_f32(jax.grad(loss)(values)[0])


def test_embedding_gradients_sum_in_float32():
    """3000 occurrences of one id: their gradient sum (3e5) overflows float16, not float32."""
    with policy("mixed_float16"):
        layer = Embedding(4, 2)
    ids = np.ones((30, 100), "int32")
    assert keras.backend.standardize_dtype(layer(ids).dtype) == "float16"
    grad = _table_gradient(layer, ids, 100.0)
    np.testing.assert_allclose(grad, [[0, 0], [3e5, 3e5], [0, 0], [0, 0]])


def test_position_embedding_gradients_sum_in_float32():
    with policy("mixed_float16"):
        layer = PositionEmbedding(8, 2)
    x = np.zeros((3000, 8, 2), "float32")
    np.testing.assert_allclose(_table_gradient(layer, x, 100.0), np.full((8, 2), 3e5))


@pytest.mark.parametrize("conditional", [False, True])
def test_layer_norm_gradients_in_float32(conditional):
    """gamma's gradient sums x_hat over 3000 tokens: 3e5 * 1 overflows float16."""
    with policy("mixed_float16"):
        layer = LayerNormalization(conditional=conditional)
    x = np.tile(np.array([[1.0, -1.0]], "float32"), (3000, 1))  # x_hat = (1, -1)
    inputs = [x, np.zeros((3000, 1), "float32")] if conditional else x
    np.testing.assert_allclose(_table_gradient(layer, inputs, 100.0), [3e5, -3e5], rtol=1e-5)
