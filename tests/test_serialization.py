"""Saving and loading: the .keras format and .weights.h5 round trips."""

import keras
import numpy as np
from conftest import FIXTURES, goldens

import kerasbert


def _model():
    fixture = FIXTURES / "bert_tiny_gelu"
    return fixture, kerasbert.build_transformer_model(
        fixture / "config.json", fixture, with_nsp="linear", with_mlm="linear"
    )


def _predict(model, g):
    return model.predict([g["token_ids"], g["segment_ids"]], verbose=0)


def test_keras_file_round_trip(tmp_path):
    fixture, model = _model()
    g = goldens(fixture)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for a, b in zip(_predict(model, g), _predict(loaded, g)):
        np.testing.assert_array_equal(a, b)


def test_weights_h5_round_trip_through_build(tmp_path):
    fixture, model = _model()
    g = goldens(fixture)
    path = tmp_path / "bert.weights.h5"
    model.save_weights(path)
    again = kerasbert.build_transformer_model(
        fixture / "config.json", path, with_nsp="linear", with_mlm="linear"
    )
    for a, b in zip(_predict(model, g), _predict(again, g)):
        np.testing.assert_array_equal(a, b)
    # A folder holding the file works too.
    again = kerasbert.build_transformer_model(
        fixture / "config.json", tmp_path, with_nsp="linear", with_mlm="linear"
    )
    np.testing.assert_array_equal(_predict(model, g)[0], _predict(again, g)[0])


def test_weights_file_of_a_trained_model_loads_without_its_optimizer_state(tmp_path):
    # save_weights on a compiled, trained model also writes the optimizer's variables.
    from conftest import TINY_CONFIG

    model = kerasbert.build_transformer_model(dict(TINY_CONFIG))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    x = [np.ones((2, 5), "int32"), np.zeros((2, 5), "int32")]
    model.fit(x, np.ones((2, 5, TINY_CONFIG["hidden_size"]), "float32"), verbose=0)
    path = tmp_path / "trained.weights.h5"
    model.save_weights(path)
    before = path.read_bytes()
    loaded = kerasbert.build_transformer_model(dict(TINY_CONFIG), path)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert path.read_bytes() == before
