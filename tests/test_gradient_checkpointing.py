"""gradient_checkpointing=True: same layers, weights, outputs and gradients, less memory."""

import json

import jax
import jax.extend
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from conftest import FIXTURES, goldens

import kerasbert
from kerasbert.errors import ConfigError
from kerasbert.models import RematModel

TOL = 1e-6
# Real checkpoints (HF goldens in the folders): ALBERT with 2 groups x 2 inner blocks.
CASES = ["bert_tiny_gelu", "albert_groups", "nezha_tiny"]


def _pair(folder, **options):
    """The model built without and with the option, from the same checkpoint."""
    config, checkpoint = FIXTURES / folder / "config.json", FIXTURES / folder
    if folder == "albert_groups":
        options["num_hidden_layers"] = 2  # still 2 groups x 2 inner blocks, fewer repeats
    plain = kerasbert.build_transformer_model(config, checkpoint, **options)
    remat = kerasbert.build_transformer_model(
        config, checkpoint, gradient_checkpointing=True, **options
    )
    for a, b in zip(plain.non_trainable_variables, remat.non_trainable_variables):
        b.assign(np.array(a))  # the same dropout seed states (a copy: fit donates buffers)
    return plain, remat


def _loss_and_grads(model, inputs, training):
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss(trainable):
        out, new_state = model.stateless_call(trainable, non_trainable, inputs, training=training)
        weights = jnp.cos(jnp.arange(out.shape[-1], dtype="float32"))
        return jnp.sum(jnp.tanh(out) * weights), (out, new_state)

    grads, (out, new_state) = jax.jit(jax.grad(loss, has_aux=True))(trainable)
    return out, grads, new_state


def _assert_close(a, b):
    """Equal within TOL of the values' scale (XLA fuses the recomputation differently from
    the forward pass, which moves float32 rounding by a few ulps)."""
    a, b = [np.asarray(x) for x in a], [np.asarray(y) for y in b]
    assert [(x.shape, x.dtype) for x in a] == [(y.shape, y.dtype) for y in b]
    scale = max([1.0] + [float(np.abs(x).max(initial=0)) for x in a])
    for x, y in zip(a, b):
        assert np.abs(x.astype("float64") - y).max(initial=0) <= TOL * scale


@pytest.mark.parametrize("folder", CASES)
def test_same_outputs_and_gradients(folder):
    # Dropout on, so that the recomputation must redraw the forward pass's masks.
    plain, remat = _pair(folder, dropout_rate=0.1, attention_dropout_rate=0.1, with_mlm="linear")
    assert isinstance(remat, RematModel) and not isinstance(plain, RematModel)
    assert [layer.name for layer in remat.layers] == [layer.name for layer in plain.layers]
    assert [w.path for w in remat.weights] == [w.path for w in plain.weights]
    blocks = remat.remat_blocks()
    config = json.loads((FIXTURES / folder / "config.json").read_text())
    # One block per layer and inner block (albert_groups: 2 layers x 2 inner blocks).
    assert len(blocks) == 2 * config.get("inner_group_num", 1)
    assert all(len(block) == 8 and block[-1].endswith("-FeedForward-Norm") for block in blocks)

    g = goldens(FIXTURES / folder)
    inputs = [g["token_ids"], g["segment_ids"]]  # with padding (g["attention_mask"])
    assert not g["attention_mask"].all()

    out_a, grads_a, state_a = _loss_and_grads(plain, inputs, training=True)
    out_b, grads_b, state_b = _loss_and_grads(remat, inputs, training=True)
    _assert_close([out_a], [out_b])
    _assert_close(grads_a, grads_b)
    _assert_close(state_a, state_b)  # the seed states advance the same way
    before = [np.asarray(v.value) for v in remat.non_trainable_variables]
    assert any((np.asarray(x) != y).any() for x, y in zip(state_b, before))  # dropout drew
    assert all(np.abs(np.asarray(x)).max() > 0 for x in grads_b[:4])


def _train_loss(model, batch, length):
    """A masked-LM-style loss of the trainable variables, and their values."""
    ids = np.random.default_rng(0).integers(1, 100, (batch, length)).astype("int32")
    inputs = [ids, np.zeros_like(ids)]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss(trainable):
        out, _ = model.stateless_call(trainable, non_trainable, inputs, training=True)
        return jnp.mean(out**2)

    return loss, [v.value for v in model.trainable_variables]


def _matmuls(fn, *args):
    """How many dot_general equations ``fn``'s jaxpr has, nested jaxprs included."""

    def count(jaxpr):
        return sum(
            (eqn.primitive.name == "dot_general")
            + sum(count(sub) for sub in jax.extend.core.jaxprs_in_params(eqn.params))
            for eqn in jaxpr.eqns
        )

    return count(jax.make_jaxpr(fn)(*args).jaxpr)


def _train_step_program(model, batch, length):
    """The compiled forward + backward of a masked-LM-style loss."""
    loss, trainable = _train_loss(model, batch, length)
    return jax.jit(jax.grad(loss)).lower(trainable).compile()


def test_backward_pass_recomputes_blocks_and_needs_less_memory():
    config = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 3,
              "num_attention_heads": 4, "intermediate_size": 64,
              "max_position_embeddings": 256, "hidden_dropout_prob": 0.1}  # fmt: skip
    plain = kerasbert.build_transformer_model(config)
    remat = kerasbert.build_transformer_model(config, gradient_checkpointing=True)
    # The backward pass recomputes the blocks: the gradient has exactly one forward pass's
    # matmuls more (every matmul of this encoder is in a block) ...
    loss, trainable = _train_loss(plain, batch=2, length=16)
    forward = _matmuls(loss, trainable)
    assert forward > 0
    remat_loss, remat_trainable = _train_loss(remat, batch=2, length=16)
    assert _matmuls(remat_loss, remat_trainable) == forward
    plain_backward = _matmuls(jax.grad(loss), trainable)
    assert _matmuls(jax.grad(remat_loss), remat_trainable) == plain_backward + forward
    # ... and the compiled program keeps far fewer activations: the attention probabilities
    # dominate, and only one block's worth is alive at a time (measured: about 0.56 of the
    # temp memory). Had XLA merged the recomputation back into the forward pass (as it
    # does with jax.checkpoint on CPU), the temp memory would be that of the plain model.
    without = _train_step_program(plain, batch=2, length=128)
    with_option = _train_step_program(remat, batch=2, length=128)
    temp_without = without.memory_analysis().temp_size_in_bytes
    temp_with = with_option.memory_analysis().temp_size_in_bytes
    assert temp_with < 0.75 * temp_without, (temp_with, temp_without)


def test_fit_with_a_head_on_top_matches(tiny_config):
    """A RematModel built over the encoder's tensors with a head, trained with fit()."""

    def classifier(gradient_checkpointing):
        keras.utils.set_random_seed(7)
        encoder = kerasbert.build_transformer_model(tiny_config, dropout_rate=0.1)
        pooled = kerasbert.layers.TokenSlice(index=0, name="CLS")(encoder.output)
        proba = keras.layers.Dense(2, activation="softmax", name="Proba")(pooled)
        model = RematModel(encoder.inputs, proba, gradient_checkpointing=gradient_checkpointing)
        model.compile(keras.optimizers.AdamW(1e-2), "sparse_categorical_crossentropy")
        return model

    plain, remat = classifier(False), classifier(True)
    assert plain.remat_blocks() == remat.remat_blocks() and len(remat.remat_blocks()) == 2
    for a, b in zip(plain.variables, remat.variables):
        b.assign(np.array(a))
    initial = np.array(plain.weights[0])
    rng = np.random.default_rng(5)
    ids = rng.integers(1, 50, (8, 12)).astype("int32")
    ids[:, 9:] = 0  # padding: the key mask must reach the attention inside a block
    labels = rng.integers(0, 2, (8,))
    for model in (plain, remat):
        model.fit(
            [ids, np.zeros_like(ids)], labels, batch_size=4, epochs=1, shuffle=False, verbose=0
        )
    _assert_close(plain.get_weights(), remat.get_weights())
    assert not np.allclose(np.array(plain.weights[0]), initial)  # it did train


def test_keras_file_round_trip_keeps_the_option(tmp_path, tiny_config):
    model = kerasbert.build_transformer_model(
        tiny_config, model="nezha", application="unilm", gradient_checkpointing=True
    )
    assert model.get_config()["gradient_checkpointing"] is True
    path = tmp_path / "remat.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, RematModel) and loaded.gradient_checkpointing is True
    assert loaded.remat_blocks() == model.remat_blocks()
    ids = np.random.default_rng(1).integers(1, 50, (2, 10)).astype("int32")
    segments = np.repeat([[0] * 6 + [1] * 4], 2, axis=0).astype("int32")
    np.testing.assert_array_equal(
        model.predict([ids, segments], verbose=0), loaded.predict([ids, segments], verbose=0)
    )


def test_option_must_be_a_bool(tiny_config):
    with pytest.raises(ConfigError, match="gradient_checkpointing"):
        kerasbert.build_transformer_model(tiny_config, gradient_checkpointing="yes")
