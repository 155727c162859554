"""Fine-tuning toolkit pieces: masked pooling, the Loss layer, conditional layer norm, losses."""

import jax
import keras
import numpy as np
import pytest
from keras import ops

from kerasbert import losses
from kerasbert.errors import ConfigError
from kerasbert.layers.embeddings import Embedding
from kerasbert.layers.loss import Loss
from kerasbert.layers.normalization import LayerNormalization
from kerasbert.layers.pooling import MaskedGlobalPooling1D

rng = np.random.default_rng(0)


def np_(x):
    return ops.convert_to_numpy(x)


# --- masked pooling -------------------------------------------------------------------


X = rng.normal(size=(3, 5, 4)).astype("float32")
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)


def _np_pool(mode, x, mask):
    out = np.zeros((x.shape[0], x.shape[2]), "float32")
    for b in range(x.shape[0]):
        real = x[b][mask[b]]
        if mode == "cls":
            out[b] = x[b, 0]
        elif len(real):
            out[b] = {"mean": real.mean(0), "max": real.max(0), "last": real[-1]}[mode]
    return out


@pytest.mark.parametrize("mode", ["mean", "max", "cls", "last"])
def test_masked_pooling_matches_numpy(mode):
    layer = MaskedGlobalPooling1D(mode)
    np.testing.assert_allclose(np_(layer(X, mask=MASK)), _np_pool(mode, X, MASK), atol=1e-6)
    full = np.ones((3, 5), bool)
    np.testing.assert_allclose(np_(layer(X)), _np_pool(mode, X, full), atol=1e-6)


def test_masked_pooling_takes_the_keras_mask():
    ids = keras.Input((None,), dtype="int32")
    h = Embedding(10, 4, mask_zero=True)(ids)
    model = keras.Model(ids, [MaskedGlobalPooling1D(m)(h) for m in ("mean", "max")])
    token_ids = np.array([[3, 4, 0, 0], [5, 6, 7, 8]])
    mean, peak = model.predict(token_ids, verbose=0)
    vectors = model.layers[1].embeddings.numpy()[token_ids]
    np.testing.assert_allclose(mean[0], vectors[0, :2].mean(0), atol=1e-6)
    np.testing.assert_allclose(peak[1], vectors[1].max(0), atol=1e-6)
    with pytest.raises(ConfigError, match="mode"):
        MaskedGlobalPooling1D("sum")


def test_one_set_of_pooling_names_for_the_layer_the_encoder_and_the_cli():
    from kerasbert.cli import build_parser
    from kerasbert.pooling_names import ENCODER_POOLINGS, POOLINGS

    assert ENCODER_POOLINGS == POOLINGS + ("none",)
    encode = build_parser()._subparsers._group_actions[0].choices["encode"]
    pooling = next(a for a in encode._actions if a.dest == "pooling")
    assert tuple(pooling.choices) == ENCODER_POOLINGS
    # Layers saved under the old name of "cls" load as "cls".
    restored = MaskedGlobalPooling1D.from_config(MaskedGlobalPooling1D("cls").get_config()
                                                 | {"mode": "first"})  # fmt: skip
    np.testing.assert_array_equal(np_(restored(X, mask=MASK)), X[:, 0])


# --- the Loss layer -------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kerasbert_tests")
class MaskedSquareError(Loss):
    """Mean squared error of inputs [y_pred, y_true] over the positions the mask keeps."""

    def compute_loss(self, inputs, mask=None):
        y_pred, y_true = inputs
        error = ops.sum(ops.square(y_pred - y_true), axis=-1)
        if mask is not None and mask[0] is not None:
            weights = ops.cast(mask[0], error.dtype)
            return ops.sum(error * weights) / ops.sum(weights)
        return error  # not a scalar: the layer averages it


def _regression_model():
    ids = keras.Input((None,), dtype="int32", name="ids")
    target = keras.Input((None, 2), name="target")
    h = Embedding(12, 2, mask_zero=True, name="emb")(ids)
    pred = keras.layers.Dense(2, name="dense")(h)
    out = MaskedSquareError(output_axis=0, name="loss")([pred, target])
    return keras.Model([ids, target], out)


def test_loss_layer_trains_a_model_compiled_without_loss():
    model = _regression_model()
    model.compile(keras.optimizers.Adam(0.05))
    ids = rng.integers(1, 12, size=(32, 6))
    ids[:, 4:] = 0
    target = np.stack([ids / 12.0, -ids / 6.0], -1).astype("float32")
    target[:, 4:] = 100.0  # padding: ignored thanks to the mask
    history = model.fit([ids, target], epochs=15, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < 0.2 * history[0]
    assert history[-1] < 0.05  # the padding targets would make it huge
    assert model.predict([ids, target], verbose=0).shape == (32, 6, 2)


def test_loss_layer_outputs_and_config():
    a, b = np.ones((2, 3), "float32"), np.zeros((2, 3), "float32")
    assert MaskedSquareError()([a, b])[1].shape == (2, 3)
    both = MaskedSquareError(output_axis=[1, 0])([a, b])
    np.testing.assert_array_equal(np_(both[0]), b)
    layer = MaskedSquareError(output_axis=(0,), name="l")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is MaskedSquareError and clone.get_config() == layer.get_config()
    np.testing.assert_array_equal(np_(clone([a, b])[0]), np_(layer([a, b])[0]))
    with pytest.raises(NotImplementedError):
        Loss()([a, b])
    with pytest.raises(ConfigError):
        Loss(output_axis="first")


# --- conditional layer normalization --------------------------------------------------


def _np_layer_norm(x, gamma, beta, eps):
    x = x.astype(np.float64)
    x_hat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    return x_hat * gamma + beta


def test_plain_layer_norm_config_is_unchanged():
    layer = LayerNormalization(epsilon=1e-5, name="ln")
    config = layer.get_config()
    assert {"epsilon", "center", "scale"} <= set(config)
    assert not {"conditional", "hidden_units"} & set(config)
    # A config saved before the conditional options existed still loads.
    old = {"name": "ln", "epsilon": 1e-5, "center": True, "scale": False}
    assert LayerNormalization.from_config(old).get_config()["scale"] is False


@pytest.mark.parametrize("hidden_units", [None, 3])
def test_conditional_layer_norm(hidden_units):
    x = rng.normal(size=(2, 4, 6)).astype("float32")
    cond = rng.normal(size=(2, 5)).astype("float32")
    plain = LayerNormalization(epsilon=1e-6)
    layer = LayerNormalization(
        epsilon=1e-6, conditional=True, hidden_units=hidden_units, hidden_activation="gelu_tanh"
    )
    # At initialization it is the plain layer norm, whatever the condition.
    np.testing.assert_allclose(np_(layer([x, cond])), np_(plain(x)), atol=1e-5)
    names = sorted(v.path.split("/", 1)[1] for v in layer.weights)
    expected = ["beta", "beta_dense/kernel", "gamma", "gamma_dense/kernel"]
    assert names == sorted(expected + (["hidden_dense/kernel"] if hidden_units else []))

    for v in layer.weights:
        v.assign(rng.normal(size=v.shape).astype("float32") * 0.5)
    y = np_(layer([x, cond]))
    assert not np.allclose(y, np_(layer([x, cond[::-1]])), atol=1e-3)
    w = {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in layer.weights}
    c = cond.astype(np.float64)
    if hidden_units:
        c = np_(keras.activations.get("gelu")(c @ w["hidden_dense/kernel"], approximate=True))
    gamma = (w["gamma"] + c @ w["gamma_dense/kernel"])[:, None]
    beta = (w["beta"] + c @ w["beta_dense/kernel"])[:, None]
    np.testing.assert_allclose(y, _np_layer_norm(x, gamma, beta, 1e-6), rtol=1e-4, atol=1e-4)

    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert clone.get_config() == layer.get_config()
    assert clone.get_config()["hidden_units"] == hidden_units
    clone([x, cond])
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np_(clone([x, cond])), y)


def test_conditional_layer_norm_options_and_mask():
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    layer = LayerNormalization(conditional=True, center=False)
    per_token = rng.normal(size=(2, 3, 5)).astype("float32")  # a condition per position
    assert layer([x, per_token]).shape == (2, 3, 4)
    assert [v.path.split("/", 1)[1] for v in layer.weights] == ["gamma", "gamma_dense/kernel"]
    with pytest.raises(ConfigError, match="conditional"):
        LayerNormalization(conditional=True)(x)
    ids = keras.Input((None,), dtype="int32")
    cond = keras.Input((5,))
    h = Embedding(10, 4, mask_zero=True)(ids)
    out = LayerNormalization(conditional=True)([h, cond])
    assert out._keras_mask is not None


# --- losses ---------------------------------------------------------------------------


def _np_mlce(y_true, y_pred):
    """log(1 + Σ_neg e^s) + log(1 + Σ_pos e^-s), with soft labels weighting the terms."""
    y_pred = y_pred.astype(np.float64)
    # Terms with a zero weight are left out before exp, which could overflow for them.
    neg = (1 - y_true) * np.exp(np.where(y_true < 1, y_pred, -np.inf))
    pos = y_true * np.exp(np.where(y_true > 0, -y_pred, -np.inf))
    return np.log1p(neg.sum(-1)) + np.log1p(pos.sum(-1))


def test_multilabel_crossentropy_matches_formula():
    y_pred = rng.normal(size=(4, 3, 7)).astype("float32") * 3
    y_true = (rng.random((4, 3, 7)) < 0.3).astype("float32")
    got = np_(losses.multilabel_categorical_crossentropy(y_true, y_pred))
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, _np_mlce(y_true, y_pred), rtol=1e-5)
    soft = rng.random((4, 3, 7)).astype("float32")
    np.testing.assert_allclose(
        np_(losses.multilabel_categorical_crossentropy(soft, y_pred)),
        _np_mlce(soft, y_pred),
        rtol=1e-5,
    )


def test_multilabel_crossentropy_is_stable():
    y_pred = np.array([[300.0, -300.0, 0.0, -np.inf]], "float32")
    y_true = np.array([[0.0, 1.0, 0.0, 0.0]], "float32")
    loss = np_(losses.multilabel_categorical_crossentropy(y_true, y_pred))
    np.testing.assert_allclose(loss, [600.0], rtol=1e-5)  # ~300 + ~300; -inf drops out

    def total(p):
        return ops.sum(losses.multilabel_categorical_crossentropy(y_true, p))

    grad = np_(jax.grad(total)(y_pred))
    assert np.isfinite(grad).all() and grad[0, 3] == 0


def test_sparse_multilabel_crossentropy_equals_dense():
    y_pred = rng.normal(size=(5, 9)).astype("float32") * 2
    positives = np.array([[1, 4], [2, 3], [8, 0], [5, 6], [7, 1]])
    dense = np.zeros((5, 9), "float32")
    np.put_along_axis(dense, positives, 1.0, axis=1)
    expected = np_(losses.multilabel_categorical_crossentropy(dense, y_pred))
    got = np_(losses.sparse_multilabel_categorical_crossentropy(positives, y_pred))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got, _np_mlce(dense, y_pred), rtol=1e-5)
    # mask_zero: 0 pads the index lists and class 0 is left out of both sums.
    padded = np.array([[1, 4, 0], [2, 3, 0], [8, 0, 0], [5, 6, 7], [7, 1, 0]])
    dense_no_zero = np.zeros((5, 9), "float32")
    np.put_along_axis(dense_no_zero, padded, 1.0, axis=1)
    expected = _np_mlce(dense_no_zero[:, 1:], y_pred[:, 1:])
    got = losses.sparse_multilabel_categorical_crossentropy(padded, y_pred, mask_zero=True)
    np.testing.assert_allclose(np_(got), expected, rtol=1e-5)


def test_global_pointer_crossentropy_dense_and_sparse_agree():
    scores = rng.normal(size=(2, 3, 5, 5)).astype("float32") * 2
    scores[0, :, 4, :] = scores[0, :, :, 4] = -1e12  # a padded position
    spans = np.zeros((2, 3, 2, 2), "int32")  # (0, 0) pairs are padding
    spans[0, 0] = [[1, 2], [2, 3]]
    spans[0, 2, 0] = [3, 3]
    spans[1, 1] = [[0, 4], [4, 4]]
    dense = np.zeros((2, 3, 5, 5), "float32")
    for b, h, e in zip(*np.nonzero(spans.any(-1))):
        dense[b, h, spans[b, h, e, 0], spans[b, h, e, 1]] = 1
    got = np_(losses.global_pointer_crossentropy(dense, scores))
    expected = _np_mlce(dense.reshape(2, 3, 25), scores.reshape(2, 3, 25)).mean(-1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # The sparse version leaves span (0, 0) out entirely; make it irrelevant to compare.
    scores[:, :, 0, 0] = -1e12
    np.testing.assert_allclose(
        np_(losses.sparse_global_pointer_crossentropy(spans, scores)),
        np_(losses.global_pointer_crossentropy(dense, scores)),
        rtol=1e-5,
    )
