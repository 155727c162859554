"""kerasbert.backend: calls made while a ``fit`` runs see (and keep) that fit's weights.

Keras 3 on JAX empties a model's variables while ``fit`` trains it and writes the weights
back when the epoch ends. bert4keras's semi-supervised VAT calls ``train_on_batch`` on a
second model sharing the layers from a callback's ``on_batch_end``, without touching
``self.model``; under kerasbert.backend that call (and ``predict``, ``evaluate``, the
other ``*_on_batch`` methods) first syncs the running fit, and the fit keeps the update.
"""

import keras
import numpy as np
import pytest

import kerasbert.backend  # noqa: F401  (installs the keras.Model patch)
from kerasbert import keras2_compat

X = np.array([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0], [-1.0, 1.0]], "float32")
Y = np.array([[1.0], [0.0], [2.0], [-1.0]], "float32")
X_OTHER = np.array([[0.0, 1.0], [1.0, 1.0]], "float32")
Y_OTHER = np.array([[3.0], [-2.0]], "float32")


def shared_pair():
    """Two compiled models sharing one Dense layer (the labeled model and model_vat)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,))
    outputs = keras.layers.Dense(1)(inputs)
    model, other = keras.Model(inputs, outputs), keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    other.compile(keras.optimizers.SGD(0.05), "mse")
    return model, other


def weights(model):
    return [np.array(w) for w in model.get_weights()]


class TrainOther(keras.callbacks.Callback):
    """bert4keras's VAT callback: trains the other model after every batch; it never
    reads ``self.model`` (which would sync the fit by itself)."""

    def __init__(self, other):
        super().__init__()
        self.other = other

    def on_batch_end(self, batch, logs=None):
        self.other.train_on_batch(X_OTHER, Y_OTHER)


def test_train_on_batch_of_a_model_sharing_the_layers_during_fit():
    model, other = shared_pair()
    start = weights(model)
    model.fit(X, Y, batch_size=2, epochs=2, shuffle=False, verbose=0,
              callbacks=[TrainOther(other)])  # fmt: skip
    trained = weights(model)
    # The same steps outside fit: each batch of model, then one batch of other.
    model, other = shared_pair()
    model.set_weights(start)
    for _ in range(2):
        for i in (0, 2):
            model.train_on_batch(X[i : i + 2], Y[i : i + 2])
            other.train_on_batch(X_OTHER, Y_OTHER)
    for got, expected in zip(trained, weights(model)):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert int(other.optimizer.iterations) == 4
    assert not keras2_compat._RUNNING_FITS


@pytest.mark.parametrize("call", ["predict", "predict_on_batch", "evaluate", "test_on_batch"])
def test_inference_calls_during_fit_see_the_current_weights(call):
    model, _ = shared_pair()
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if call in ("predict", "predict_on_batch"):
                seen.append(np.array(getattr(model, call)(X, **_quiet(call))))
            else:
                seen.append(getattr(model, call)(X, Y, **_quiet(call)))

    model.fit(X, Y, batch_size=4, epochs=1, verbose=0, callbacks=[Probe()])
    if call in ("predict", "predict_on_batch"):
        np.testing.assert_allclose(seen[0], model.predict(X, verbose=0), rtol=1e-6)
    else:
        assert np.isclose(seen[0], model.evaluate(X, Y, verbose=0))


def _quiet(call):
    return {"verbose": 0} if call in ("predict", "evaluate") else {}


def test_running_fits_are_forgotten_when_fit_fails():
    model, _ = shared_pair()

    class Fail(keras.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            assert len(keras2_compat._RUNNING_FITS) == 1 and keras2_compat._RUNNING_FITS[0] is model
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[Fail()])
    assert not keras2_compat._RUNNING_FITS
    keras2_compat.sync_running_fits()  # nothing running: nothing to do
