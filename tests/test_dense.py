"""kerasbert's Dense: Keras's layer, with float32 accumulation of 16-bit matmuls."""

import jax
import jax.extend
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from kerasbert.layers import Dense
from kerasbert.layers.dense import mixed_einsum, mixed_matmul

RNG = np.random.default_rng(0)


def bf16_round(x):
    return np.asarray(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32))


def dot_generals(fn, *args):
    """(operand dtypes, result dtype) of every dot_general in fn's jaxpr, nested ones too."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.append(
                    (tuple(str(v.aval.dtype) for v in eqn.invars), str(eqn.outvars[0].aval.dtype))
                )
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def test_float32_is_keras_dense_exactly():
    x = RNG.normal(size=(2, 5, 8)).astype("float32")
    ours, theirs = Dense(6, activation="gelu"), keras.layers.Dense(6, activation="gelu")
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(theirs(x)))


@pytest.mark.parametrize("transpose", [False, True])
def test_16bit_product_accumulates_in_float32(transpose):
    x = RNG.normal(size=(3, 4, 256)).astype("float32")
    w = RNG.normal(size=(256, 5)).astype("float32")
    kernel = w.T if transpose else w
    out = mixed_matmul(jnp.bfloat16(x), jnp.bfloat16(kernel), transpose_kernel=transpose)
    assert out.dtype == jnp.float32
    exact = bf16_round(x) @ bf16_round(w)
    np.testing.assert_allclose(np.asarray(out), exact, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("transpose", [False, True])
def test_gradients_match_float32_math(transpose):
    x = bf16_round(RNG.normal(size=(6, 64)))
    w = bf16_round(RNG.normal(size=(64, 3)))
    kernel = w.T if transpose else w
    up = bf16_round(RNG.normal(size=(6, 3)))

    def loss(x, k):
        return jnp.sum(mixed_matmul(x, k, transpose_kernel=transpose) * up)

    dx, dk = jax.grad(loss, argnums=(0, 1))(jnp.bfloat16(x), jnp.bfloat16(kernel))
    assert dx.dtype == dk.dtype == jnp.bfloat16
    dw = x.T @ up
    np.testing.assert_allclose(np.float32(dx), up @ w.T, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(np.float32(dk), dw.T if transpose else dw, rtol=1e-2, atol=1e-2)


def test_forward_and_backward_dots_take_16bit_operands_into_float32():
    # This is what makes mixed precision fast (bf16 matrix units) on CPU: no dot may
    # multiply float32 operands or produce a 16-bit result.
    x = jnp.ones((4, 8), jnp.bfloat16)
    k = jnp.ones((8, 2), jnp.bfloat16)

    def loss(x, k):
        return jnp.sum(mixed_matmul(x, k))

    dots = dot_generals(jax.grad(loss, argnums=(0, 1)), x, k)
    assert len(dots) == 3  # forward, d input, d kernel
    assert all(d == (("bfloat16", "bfloat16"), "float32") for d in dots), dots


def test_layer_under_mixed_bfloat16():
    x = RNG.normal(size=(2, 16)).astype("float32")
    layer = Dense(4, activation="tanh", dtype="mixed_bfloat16")
    out = layer(x)
    assert out.dtype == "bfloat16" and layer.kernel.dtype == "float32"
    w, b = layer.get_weights()
    exact = np.tanh(bf16_round(x) @ bf16_round(w) + b)
    np.testing.assert_allclose(np.float32(out), exact, atol=1e-2)
    inputs = keras.Input((16,))
    model = keras.Model(inputs, layer(inputs))
    dots = dot_generals(lambda k: model.stateless_call([k, jnp.asarray(b)], [], x)[0], w)
    assert dots == [(("bfloat16", "bfloat16"), "float32")]


def test_lora_uses_keras_code_and_serialization_round_trips():
    layer = Dense(3, name="Pooler-Dense")
    layer.build((None, 5))
    layer.enable_lora(2)
    assert layer(np.ones((1, 5), "float32")).shape == (1, 3)
    clone = keras.layers.deserialize(keras.layers.serialize(Dense(3, activation="tanh")))
    assert type(clone) is Dense and clone.units == 3


@pytest.mark.parametrize(
    "equation, a_shape, b_shape",
    [
        ("bthd,bshd->bhts", (2, 5, 3, 4), (2, 6, 3, 4)),  # attention logits
        ("bhts,bshd->bthd", (2, 3, 5, 6), (2, 6, 3, 4)),  # attention output
        ("bthd,tsd->bhts", (2, 5, 3, 4), (5, 5, 4)),  # NEZHA's relative keys
    ],
)
def test_mixed_einsum_values_gradients_and_dtypes(equation, a_shape, b_shape):
    a = bf16_round(RNG.normal(size=a_shape))
    b = bf16_round(RNG.normal(size=b_shape))
    out = mixed_einsum(equation, jnp.bfloat16(a), jnp.bfloat16(b))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out), np.einsum(equation, a, b), rtol=1e-5, atol=1e-5)

    up = jnp.asarray(bf16_round(RNG.normal(size=out.shape)))

    def loss(a, b):
        return jnp.sum(mixed_einsum(equation, a, b) * up)

    grads = jax.grad(loss, argnums=(0, 1))(jnp.bfloat16(a), jnp.bfloat16(b))
    expected = jax.grad(lambda a, b: jnp.sum(jnp.einsum(equation, a, b) * up), argnums=(0, 1))(
        jnp.asarray(a), jnp.asarray(b)
    )
    for got, want in zip(grads, expected):
        assert got.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.float32(got), np.asarray(want), rtol=2e-2, atol=5e-2)
    dots = dot_generals(jax.grad(loss, argnums=(0, 1)), jnp.bfloat16(a), jnp.bfloat16(b))
    assert dots and all(d == (("bfloat16", "bfloat16"), "float32") for d in dots), dots


@pytest.mark.parametrize(
    "equation, a_shape, b_shape, batched",
    [
        ("bthd,bshd->bhts", (2, 5, 3, 4), (2, 6, 3, 4), True),
        ("bhts,bshd->bthd", (2, 3, 5, 6), (2, 6, 3, 4), True),
        ("tnd,tsd->tns", (5, 6, 4), (5, 7, 4), True),
        ("td,sd->ts", (5, 4), (7, 4), False),
    ],
)
def test_float32_einsum_is_one_canonical_dot_with_einsum_values(
    equation, a_shape, b_shape, batched
):
    a = jnp.asarray(RNG.normal(size=a_shape), jnp.float32)
    b = jnp.asarray(RNG.normal(size=b_shape), jnp.float32)
    out = mixed_einsum(equation, a, b)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out), np.einsum(equation, a, b), rtol=1e-5, atol=1e-5)

    up = jnp.asarray(RNG.normal(size=out.shape), jnp.float32)
    grads = jax.grad(lambda a, b: jnp.sum(mixed_einsum(equation, a, b) * up), (0, 1))(a, b)
    expected = jax.grad(lambda a, b: jnp.sum(jnp.einsum(equation, a, b) * up), (0, 1))(a, b)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)

    # One dot laid out as (B, M, K) @ (B, K, N), batch first, or as (M, K) @ (K, N).
    jaxpr = jax.make_jaxpr(lambda a, b: mixed_einsum(equation, a, b))(a, b).jaxpr
    dots = [e.params["dimension_numbers"] for e in jaxpr.eqns if e.primitive.name == "dot_general"]
    if batched:
        assert dots == [(((2,), (1,)), ((0,), (0,)))]
    else:
        assert dots == [(((1,), (0,)), ((), ()))]


def test_einsum_cases_the_canonical_dot_does_not_cover_use_keras_einsum():
    # Integers keep Keras's result type (int8 x int8 -> int32 on JAX, no overflow).
    a = np.full((2, 64), 100, "int8")
    out = mixed_einsum("ij,jk->ik", jnp.asarray(a), jnp.asarray(a.T))
    assert np.asarray(out)[0, 0] == 640_000
    # An index summed within one operand, and an ellipsis.
    x = jnp.asarray(RNG.normal(size=(3, 4)), jnp.float32)
    y = jnp.asarray(RNG.normal(size=(4, 5)), jnp.float32)
    np.testing.assert_allclose(
        np.asarray(mixed_einsum("ij,jk->k", x, y)), np.einsum("ij,jk->k", x, y), rtol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(mixed_einsum("...j,jk->...k", x, y)), np.asarray(x) @ np.asarray(y), rtol=1e-5
    )
    # Symbolic Keras tensors.
    symbolic = mixed_einsum("ij,jk->ik", keras.KerasTensor((None, 4)), keras.KerasTensor((4, 5)))
    assert symbolic.shape == (None, 5)


def test_mixed_operand_dtypes_fall_back_to_keras_einsum():
    a = jnp.asarray(RNG.normal(size=(3, 4)), jnp.float32)
    b = jnp.asarray(RNG.normal(size=(4, 2)), jnp.bfloat16)
    out = mixed_einsum("ij,jk->ik", a, b)
    np.testing.assert_allclose(
        np.asarray(out, np.float32), np.float32(a) @ np.float32(b), rtol=1e-2
    )


def test_mixed_einsum_rejects_what_it_cannot_differentiate():
    x = jnp.ones((2, 3), jnp.bfloat16)
    with pytest.raises(ValueError, match="cannot differentiate"):
        mixed_einsum("ij,jk->i", x, jnp.ones((3, 4), jnp.bfloat16))


@pytest.mark.parametrize(
    "equation, a_shape, b_shape",
    [
        # Shapes whose gradient dots XLA:CPU once sent to its generic dot, which cannot
        # multiply bf16 x bf16 into f32 ("Unsupported element type for DotThunk::Execute").
        ("bhts,bshd->bthd", (8, 12, 128, 128), (8, 128, 12, 64)),
        ("bhts,bshd->bthd", (4, 2, 9, 9), (4, 9, 2, 8)),
        ("bthd,bshd->bhts", (8, 128, 12, 64), (8, 128, 12, 64)),
        ("bthd,bshd->bhts", (1, 1, 2, 4), (1, 7, 2, 4)),
        ("tnd,tsd->tns", (128, 96, 64), (128, 128, 64)),
        ("tns,tsd->tnd", (128, 96, 128), (128, 128, 64)),
    ],
)
def test_16bit_einsum_runs_compiled_at_every_shape(equation, a_shape, b_shape):
    a = jnp.ones(a_shape, jnp.bfloat16)
    b = jnp.ones(b_shape, jnp.bfloat16)
    step = jax.jit(jax.value_and_grad(lambda a, b: jnp.sum(mixed_einsum(equation, a, b)), (0, 1)))
    value, grads = step(a, b)
    jax.block_until_ready(grads)
    assert np.isfinite(float(value))


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("rows, k, n", [(1, 8, 4), (3, 5, 7), (1024, 768, 3072), (2048, 64, 1)])
def test_16bit_matmul_runs_compiled_at_every_shape(rows, k, n, transpose):
    x = jnp.ones((rows, k), jnp.bfloat16)
    kernel = jnp.ones((n, k) if transpose else (k, n), jnp.bfloat16)

    def loss(x, kernel):
        return jnp.sum(mixed_matmul(x, kernel, transpose_kernel=transpose))

    value, grads = jax.jit(jax.value_and_grad(loss, (0, 1)))(x, kernel)
    jax.block_until_ready(grads)
    assert np.isclose(float(value), rows * k * n, rtol=1e-6)
