"""bert4keras's ``K`` and the Keras 2 behaviours ``kerasbert.backend`` absorbs.

Each K test pins a place where Keras 2's documented behaviour differs from keras.ops'
(argument defaults, argument order, return types, broadcasting), so it fails if K falls
back to the keras.ops function of the same name. The keras.Model patch is tested on a tiny
kerasbert model wrapped in a plain keras.Model, as bert4keras scripts build them.
"""

import inspect
import os
import pathlib
import subprocess
import sys
import warnings

import jax
import keras
import numpy as np
import pytest

import kerasbert
from kerasbert import keras2_compat
from kerasbert.backend import K
from kerasbert.errors import CheckpointError, KerasBertError
from kerasbert.keras2_backend import Keras2ArgumentError, UnsupportedKeras2Error

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16}  # fmt: skip

# Every K.<name> in bert4keras 0.11.5's examples/*.py and pretraining/*.py.
EXAMPLE_NAMES = [
    "binary_crossentropy", "cast", "categorical_crossentropy", "concatenate", "cumsum",
    "epsilon", "eval", "floatx", "in_train_phase", "int_shape", "mean", "not_equal",
    "one_hot", "prod", "random_binomial", "random_uniform", "reshape", "set_value", "shape",
    "sparse_categorical_crossentropy", "stop_gradient", "sum", "switch", "zeros",
    "zeros_like",
]  # fmt: skip
EXAMPLE_NAMES_THAT_RAISE = ["function", "gradients"]


def np_(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# -- how names resolve --------------------------------------------------------------------------


def test_K_is_the_keras2_backend_and_resolves_in_order():
    import kerasbert.keras2_backend as keras2_backend

    assert K is keras2_backend
    assert K.concatenate is not keras.ops.concatenate  # a Keras 2 form first
    assert K.sum is keras.ops.sum  # then keras.ops
    assert K.floatx() == keras.config.floatx() and K.epsilon() == keras.config.epsilon()
    assert K.image_data_format() == "channels_last" and K.clear_session
    assert {"sum", "int_shape", "floatx", "function"} <= set(dir(K))


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_name_the_bert4keras_examples_use_resolves(name):
    assert callable(getattr(K, name))


@pytest.mark.parametrize("name", EXAMPLE_NAMES_THAT_RAISE)
def test_example_names_that_cannot_work_raise_with_the_replacement(name):
    with pytest.raises(UnsupportedKeras2Error, match="jax.grad inside a custom train_step") as info:
        getattr(K, name)
    assert "kerasbert.tricks.adversarial_training(model)" in str(info.value)
    import kerasbert.tricks

    assert callable(kerasbert.tricks.adversarial_training)  # the named replacement exists


@pytest.mark.parametrize(
    "name, replacement",
    [
        ("get_session", "K.eval"),
        ("set_session", "drop the session code"),
        ("placeholder", "keras.Input"),
        ("update", "x.assign"),
        ("update_add", "assign_add"),
        ("update_sub", "assign_sub"),
        ("moving_average_update", "momentum"),
        ("set_learning_phase", "training=True/False"),
        ("rnn", "keras.ops.scan"),
        ("get_graph", "jax.jit"),
    ],
)
def test_unsupported_names_say_what_to_write(name, replacement):
    with pytest.raises(UnsupportedKeras2Error, match=replacement) as info:
        getattr(K, name)
    assert isinstance(info.value, KerasBertError) and isinstance(info.value, AttributeError)
    assert not hasattr(K, name)


def test_an_unknown_name_is_an_attribute_error_naming_keras_ops():
    with pytest.raises(UnsupportedKeras2Error, match="keras.ops"):
        K.no_such_function  # noqa: B018


# -- Keras 2 semantics where keras.ops differs ------------------------------------------------


def test_concatenate_defaults_to_the_last_axis():
    a, b = np.ones((2, 2)), np.zeros((2, 2))
    assert K.concatenate([a, b]).shape == (2, 4)  # keras.ops: (4, 2)
    assert K.concatenate([a, b], axis=0).shape == (4, 2)


def test_batch_dot_follows_keras2():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 20, 1)), rng.normal(size=(4, 30, 20))
    out = K.batch_dot(x, y, axes=(1, 2))  # Keras 2's documented example
    assert out.shape == (4, 1, 30)
    np.testing.assert_allclose(np_(out), np.einsum("bik,bji->bkj", x, y), atol=1e-5)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    rows = K.batch_dot(a, b, axes=1)
    assert rows.shape == (4, 1)  # rank-1 results get an axis back
    np.testing.assert_allclose(np_(rows)[:, 0], (a * b).sum(1), atol=1e-5)
    q, k = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 5))
    np.testing.assert_allclose(np_(K.batch_dot(q, k)), q @ k, atol=1e-5)  # default axes
    with pytest.raises(Keras2ArgumentError, match="batch axis"):
        K.batch_dot(a, b, axes=0)


def test_dot_contracts_the_last_axis_with_the_second_to_last():
    x, y = np.ones((2, 3, 4)), np.arange(140.0).reshape(7, 4, 5)
    assert K.dot(x, y).shape == (2, 3, 7, 5)  # Keras 2's documented shapes
    np.testing.assert_allclose(np_(K.dot(x, y)), np.dot(x, y), rtol=1e-5)


def test_switch_selects_elementwise_with_a_lower_rank_condition():
    cond = np.array([True, False])
    out = K.switch(cond, lambda: np.ones((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(np_(out), [[1, 1, 1], [0, 0, 0]])
    assert K.switch(False, lambda: 1 / 0, "else") == "else"  # a Python bool picks a branch
    with pytest.raises(Keras2ArgumentError, match="rank"):
        K.switch(np.ones((2, 3), bool), np.ones(2), np.zeros(2))


def test_l2_normalize_defaults_to_all_elements():
    x = np.array([[3.0, 0.0], [0.0, 4.0]])
    np.testing.assert_allclose(np_(K.l2_normalize(x)), x / 5.0, rtol=1e-6)
    np.testing.assert_allclose(np_(K.l2_normalize(x, axis=-1)), [[1, 0], [0, 1]], rtol=1e-6)
    assert np.isfinite(np_(K.l2_normalize(np.zeros(3)))).all()


def test_crossentropies_take_target_then_output():
    target, output = np.array([[0.0, 1.0]]), np.array([[0.2, 0.8]])
    np.testing.assert_allclose(np_(K.categorical_crossentropy(target, output)), [-np.log(0.8)],
                               rtol=1e-5)  # fmt: skip
    np.testing.assert_allclose(
        np_(K.binary_crossentropy(np.array([1.0, 0.0]), np.array([0.9, 0.2]))),
        [-np.log(0.9), -np.log(0.8)], rtol=1e-4,
    )  # fmt: skip
    logits = np.array([[2.0, 0.0]])
    np.testing.assert_allclose(
        np_(K.categorical_crossentropy(target, logits, from_logits=True)),
        [np.log1p(np.exp(2.0))], rtol=1e-5,
    )  # fmt: skip


def test_sparse_categorical_crossentropy_flattens_the_labels():
    probs = np.full((2, 3, 4), 0.25, "float32")
    expected = np.full((2, 3), np.log(4.0))
    for labels in (np.zeros((2, 3)), np.zeros((2, 3, 1)), np.zeros(6)):  # Keras 2 took all
        np.testing.assert_allclose(np_(K.sparse_categorical_crossentropy(labels, probs)),
                                   expected, rtol=1e-5)  # fmt: skip


def test_defaults_that_differ_from_keras_ops():
    x = np.array([[1.0, 3.0, 2.0], [5.0, 0.0, 1.0]])
    assert np_(K.argmax(x)).tolist() == [1, 0]  # axis=-1 (keras.ops: flattened)
    assert np_(K.argmin(x)).tolist() == [0, 1]
    np.testing.assert_array_equal(np_(K.cumsum(x)), np.cumsum(x, axis=0))  # axis=0
    np.testing.assert_array_equal(np_(K.cumprod(x)), np.cumprod(x, axis=0))
    assert K.expand_dims(x).shape == (2, 3, 1)  # axis=-1
    np.testing.assert_array_equal(np_(K.sqrt(np.array([-4.0, 4.0]))), [0.0, 2.0])  # no NaN
    np.testing.assert_allclose(np_(K.hard_sigmoid(np.array([1.0]))), [0.7], rtol=1e-6)
    rows = K.gather(np.arange(6).reshape(3, 2), np.array([2, 0]))  # axis 0
    assert np_(rows).tolist() == [[4, 5], [0, 1]]
    assert K.repeat(np.ones((2, 3)), 4).shape == (2, 4, 3)  # keras.ops.repeat differs
    assert np_(K.repeat_elements(np.array([1, 2]), 2, 0)).tolist() == [1, 1, 2, 2]
    assert K.permute_dimensions(np.ones((2, 3, 4)), (2, 0, 1)).shape == (4, 2, 3)
    np.testing.assert_array_equal(np_(K.pow(np.array([2.0, 3.0]), 3)), [8.0, 27.0])


def test_clip_and_relu_take_keras2_arguments():
    x = np.array([-2.0, 0.5, 9.0])
    np.testing.assert_array_equal(np_(K.clip(x, min_value=0, max_value=1)), [0, 0.5, 1])
    np.testing.assert_array_equal(np_(K.clip(x, 1, 0)), [1, 1, 1])  # max raised to min
    np.testing.assert_array_equal(np_(K.relu(x, alpha=0.5, max_value=6.0)), [-1.0, 0.5, 6.0])
    np.testing.assert_array_equal(np_(K.relu(x, threshold=1.0)), [0.0, 0.0, 9.0])


def test_shapes_are_static_and_prod_keeps_them_static_in_a_compiled_step():
    x = np.ones((2, 3, 4, 5), "float32")
    assert K.shape(x) == (2, 3, 4, 5) and K.int_shape(keras.Input((None, 8))) == (None, None, 8)
    assert K.prod(K.shape(x)[2:]) == 20 and isinstance(K.prod(K.shape(x)[2:]), int)
    assert K.ndim(x) == 4 and K.dtype(x) == "float32"

    def gplinker_reshape(y):  # task_relation_extraction_gplinker.py's loss does this
        shape = K.shape(y)
        return K.reshape(y, (shape[0], -1, K.prod(shape[2:])))

    inputs = keras.Input((3, 4, 5))
    model = keras.Model(inputs, keras.layers.Lambda(gplinker_reshape)(inputs))
    assert model.predict(x, verbose=0).shape == (2, 3, 20)


def test_reshape_flatten_and_where_as_bert4keras_extended_them():
    x = np.arange(24.0).reshape(2, 12)
    assert K.reshape(x, (2, 3, 4)).shape == (2, 3, 4)
    np.testing.assert_array_equal(np_(K.reshape(x, (3, -1), 1)), x.reshape(2, 3, 4))
    assert K.flatten(np.ones((2, 3, 4))).shape == (24,)
    assert K.flatten(np.ones((2, 3, 4)), -2).shape == (2, 12)
    assert K.batch_flatten(np.ones((2, 3, 4))).shape == (2, 12)
    out = K.where(np.array([[True], [False]]), 1, 0)  # broadcast, floatx for Python numbers
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_array_equal(np_(out), [[1.0], [0.0]])
    half = keras.ops.ones((2,), "float16")
    assert keras.backend.standardize_dtype(K.where(np.array([1, 0]), half, 0).dtype) == "float16"
    with pytest.raises(Keras2ArgumentError, match="shape1, axis1"):
        K.reshape(x, (2, 3), 1, (4,))


def test_small_keras2_helpers():
    np.testing.assert_array_equal(np_(K.reverse(np.array([[1, 2], [3, 4]]), 1)), [[2, 1], [4, 3]])
    assert K.temporal_padding(np.ones((2, 3, 4)), (1, 2)).shape == (2, 6, 4)
    np.testing.assert_array_equal(np_(K.bias_add(np.zeros((1, 2)), np.array([1.0, 2.0]))),
                                  [[1.0, 2.0]])  # fmt: skip
    grads = jax.grad(lambda v: K.sum(K.stop_gradient([v])[0] * v))(np.float32(3.0))
    assert float(grads) == 3.0  # stop_gradient takes a list, as in Keras 2
    assert np_(K.map_fn(lambda row: row * 2, np.array([[1, 2]]))).tolist() == [[2, 4]]
    assert K.symbolic(len) is len and K.one_hot(np.array([1]), 3).shape == (1, 3)
    assert keras.backend.standardize_dtype(K.arange(3).dtype) == "int32"
    with K.name_scope("block"):
        pass


def test_values_and_variables():
    v = K.variable([1, 2])  # Keras 2: floatx, whatever the value's dtype
    assert v.dtype == "float32" and isinstance(v, keras.Variable)
    K.set_value(v, np.array([3, 4]))  # cast to the variable's dtype
    assert K.get_value(v).tolist() == [3.0, 4.0] and K.eval(v).dtype == np.float32
    K.batch_set_value([(v, [5, 6])])
    assert [a.tolist() for a in K.batch_get_value([v])] == [[5.0, 6.0]]
    assert K.count_params(v) == 2 and K.cast_to_floatx([1]).dtype == np.float32
    c = K.constant(1, shape=(2,))  # Keras 2: floatx (keras.ops would keep int32)
    assert keras.backend.standardize_dtype(c.dtype) == "float32" and K.eval(c).tolist() == [1, 1]
    with pytest.raises(Keras2ArgumentError, match="needs a variable"):
        K.set_value(keras.ops.ones(2), [0, 0])
    with pytest.raises(Keras2ArgumentError, match="add_weight"):
        K.variable(1.0, constraint=keras.constraints.NonNeg())
    zeros = K.variable(K.zeros((2,)))  # K.zeros is a tensor; wrap it for a variable
    assert K.eval(zeros).tolist() == [0.0, 0.0]


def test_floatx_and_epsilon_setters_are_keras_config():
    try:
        K.set_floatx("float16")
        assert keras.config.floatx() == "float16"
        assert keras.backend.standardize_dtype(K.constant(1.0).dtype) == "float16"
        K.set_epsilon(1e-5)
        assert keras.config.epsilon() == 1e-5
    finally:
        K.set_floatx("float32")
        K.set_epsilon(1e-7)


# -- learning phase and random numbers ------------------------------------------------------


class _PhaseProbe(keras.layers.Layer):
    """Ones while training, zeros otherwise, through K.in_train_phase and K.learning_phase."""

    def call(self, inputs):
        ones = keras.ops.ones_like(inputs)
        flag = K.cast(K.learning_phase(), K.floatx())
        return K.in_train_phase(lambda: ones * flag, lambda: ones * 0.0)


def test_in_train_phase_follows_the_training_flag_of_the_keras_call():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, _PhaseProbe()(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 2), "float32")
    history = model.fit(x, y, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(1.0)  # fit: training=True
    assert model.evaluate(x, y, verbose=0) == pytest.approx(0.0)  # evaluate: False
    assert np.all(model.predict(x, verbose=0) == 0.0)
    assert np.all(np_(model(x, training=True)) == 1.0)
    assert K.learning_phase() == 0 and K.in_train_phase("train", "test") == "test"
    assert K.in_train_phase("train", "test", training=1) == "train"
    assert K.in_test_phase("test", "train", training=True) == "train"


def test_random_binomial_is_a_bernoulli_draw_in_floatx():
    draws = K.random_binomial((4000,), p=0.3, seed=0)
    assert keras.backend.standardize_dtype(draws.dtype) == "float32"
    assert set(np.unique(np_(draws))) == {0.0, 1.0}
    assert abs(np_(draws).mean() - 0.3) < 0.03
    assert np_(K.random_binomial((8,), p=0.0, seed=1)).sum() == 0
    assert np_(K.random_binomial([8], p=1.0, seed=1)).sum() == 8  # shape as a list
    assert K.random_uniform((2, 3), seed=1).shape == (2, 3)
    np.testing.assert_array_equal(np_(K.random_normal((3,), seed=5)),
                                  np_(K.random_normal((3,), seed=5)))  # fmt: skip
    assert K.truncated_normal((2,), seed=2).shape == (2,)


class _Theseus(keras.layers.Layer):
    """task_iflytek_bert_of_theseus.py's BinaryRandomChoice, seeded as JAX requires."""

    def __init__(self, seeded=True, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(7) if seeded else None

    def call(self, inputs):
        source, target = inputs
        mask = K.random_binomial(shape=[1], p=0.5, seed=self.seed_generator)
        output = mask * source + (1 - mask) * target
        return K.in_train_phase(output, target)


def test_random_binomial_takes_a_seed_generator_inside_a_compiled_step():
    a, b = keras.Input((1,)), keras.Input((1,))
    model = keras.Model([a, b], _Theseus()([a, b]))
    ones, zeros = np.ones((1, 1), "float32"), np.zeros((1, 1), "float32")
    assert model.predict([ones, zeros], verbose=0)[0, 0] == 0.0  # inference: the target
    picks = {float(np_(model([ones, zeros], training=True))[0, 0]) for _ in range(12)}
    assert picks == {0.0, 1.0}  # a fresh draw per call


def test_an_unseeded_random_draw_in_a_traced_call_says_what_to_write():
    a, b = keras.Input((1,)), keras.Input((1,))
    with pytest.raises(Keras2ArgumentError) as info:
        _Theseus(seeded=False)([a, b])
    message = str(info.value)
    assert "self.seed_generator = keras.random.SeedGenerator()" in message
    assert "K.random_binomial(..., seed=self.seed_generator)" in message
    assert isinstance(info.value, ValueError)  # what Keras itself raises
    assert np_(K.random_binomial((3,), p=1.0)).sum() == 3  # eager: the global seed is fine


# -- the keras.Model patch ------------------------------------------------------------------


def _classifier():
    encoder = kerasbert.build_transformer_model(dict(TINY), with_pool=True)
    probs = keras.layers.Dense(2, activation="softmax")(encoder.output)
    model = keras.Model(encoder.inputs, probs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


TOKENS, SEGMENTS = [2, 5, 6, 3], [0, 0, 0, 0]


def _notes(caught):
    return [w for w in caught if "kerasbert.backend's Keras 2 file names" in str(w.message)]


@pytest.fixture
def fresh_notes(monkeypatch):
    monkeypatch.setattr(keras2_compat, "_NOTED", set())


def test_save_and_load_weights_accept_bert4keras_names(tmp_path, fresh_notes):
    model = _classifier()
    x = [np.array([TOKENS]), np.array([SEGMENTS])]
    before = model.predict(x, verbose=0)
    name = str(tmp_path / "best_model.weights")
    with pytest.warns(UserWarning, match=r"best_model\.weights\.h5"):
        model.save_weights(name)
    assert os.listdir(tmp_path) == ["best_model.weights.h5"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.save_weights(name)
    assert not _notes(caught)  # the note is shown once
    for weight in model.weights:
        weight.assign(np.zeros(weight.shape, weight.dtype))
    with pytest.warns(UserWarning, match="read"):
        model.load_weights(name)
    np.testing.assert_allclose(model.predict(x, verbose=0), before, rtol=1e-6)
    model.load_weights(tmp_path / "best_model.weights")  # pathlib.Path too


def test_weight_names_keras_accepts_are_untouched(tmp_path, fresh_notes):
    model = _classifier()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.save_weights(tmp_path / "m.weights.h5")
        model.load_weights(tmp_path / "m.weights.h5")
    assert not _notes(caught) and os.listdir(tmp_path) == ["m.weights.h5"]
    with pytest.raises(ValueError, match="weights.json"):  # Keras's own rule for shards
        model.save_weights(tmp_path / "shards", max_shard_size=1)


def test_loading_a_missing_bert4keras_name_says_what_is_missing(tmp_path):
    model = _classifier()
    with pytest.raises(CheckpointError, match=r"nothing\.weights\.h5.*does not exist"):
        model.load_weights(str(tmp_path / "nothing.weights"))


def test_nested_python_lists_become_one_array_per_input():
    model = _classifier()
    arrays = [np.array([TOKENS]), np.array([SEGMENTS])]
    expected = model.predict(arrays, verbose=0)
    lists = [[TOKENS], [SEGMENTS]]  # bert4keras's model.predict([[token_ids], [segment_ids]])
    np.testing.assert_allclose(model.predict(lists, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(tuple(lists), verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(lists), expected, rtol=1e-6)
    assert np.isfinite(model.test_on_batch(lists, [1]))
    assert np.isfinite(model.evaluate(lists, [1], verbose=0))
    assert np.isfinite(model.train_on_batch(lists, [1]))
    history = model.fit(lists, [1], validation_data=(lists, [1]), epochs=1, verbose=0)
    assert set(history.history) == {"loss", "val_loss"}


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")  # length-1 rows
def test_a_one_input_model_gets_keras2s_per_input_conversion():
    encoder = kerasbert.build_transformer_model(dict(TINY), segment_vocab_size=0)
    assert len(encoder.inputs) == 1
    model = keras.Model(encoder.inputs, encoder.output)
    assert model.predict([[[1, 2, 3]]], verbose=0).shape == (1, 3, 8)  # one sequence
    assert model.predict([[1, 2, 3]], verbose=0).shape == (3, 1, 8)  # Keras 2: three


def test_data_keras3_accepts_is_passed_through_unchanged():
    arrays = [np.ones((1, 3))]
    for data in (arrays, {"a": [1, 2]}, np.ones(3), keras.ops.ones(2), iter([1]), [], "text"):
        assert keras2_compat.to_keras2_arrays(data) is data
    ragged = [[[1, 2], [3]]]
    assert keras2_compat.to_keras2_arrays(ragged) is ragged
    per_input = keras2_compat.to_keras2_arrays([[1, 2], [3]])  # each input its own array
    assert [a.tolist() for a in per_input] == [[[1], [2]], [[3]]]


def test_the_patch_keeps_signatures_and_docstrings_and_installs_once():
    from keras.src.backend.jax.trainer import JAXTrainer

    for name in ("fit", "evaluate", "predict", "predict_on_batch", "train_on_batch",
                 "test_on_batch", "save_weights", "load_weights"):  # fmt: skip
        patched = getattr(keras.Model, name)
        original = getattr(JAXTrainer, name, None) or getattr(keras.Model, name).__wrapped__
        assert patched.__wrapped__ is original
        assert inspect.signature(patched) == inspect.signature(original)
        assert patched.__doc__ == original.__doc__ and patched.__name__ == name
    assert keras2_compat.installed() and keras2_compat.install() is False


def test_importing_kerasbert_or_its_models_leaves_keras_unpatched(tmp_path):
    code = f"""
import sys, numpy as np, keras, kerasbert, kerasbert.models
encoder = kerasbert.build_transformer_model({TINY!r})
model = keras.Model(encoder.inputs, encoder.output)
for call in (lambda: model.save_weights({str(tmp_path / "m.weights")!r}),
             lambda: model.predict([[[1, 2]], [[0, 0]]], verbose=0)):
    try:
        call()
    except ValueError as error:
        print("keras refused:", str(error).splitlines()[0][:30])
print("kerasbert.backend" in sys.modules)
"""
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=300).stdout.splitlines()  # fmt: skip
    assert out[-3].startswith("keras refused: The filename must end in")
    assert out[-2].startswith("keras refused: Unrecognized data type")
    assert out[-1] == "False"  # kerasbert.backend was never imported


def test_predict_is_silent_by_default_as_in_keras2(capsys):
    import kerasbert.backend  # noqa: F401 (installs the Keras 2 behaviours)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    x = np.ones((4, 3), "float32")
    model.predict(x)
    assert capsys.readouterr().out == ""
    model.predict(x, verbose=1)
    assert "step" in capsys.readouterr().out
