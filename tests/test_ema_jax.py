"""EMA on JAX: bert4keras's apply_ema_weights -> predict -> save_weights -> reset_old_weights.

The sequence once crashed on JAX (``Array has been deleted``, then ``Buffer has been deleted
or donated`` in the next ``fit``): the optimizer form assigned the optimizer's average
variable to the model variable, so both held one JAX array, which ``predict`` and ``fit``
donate. Each test runs the sequence on a tiny kerasbert model and checks the values against
a numpy recurrence over the weights recorded after every training step, and against a run
that never applied the average.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

import kerasbert  # noqa: E402
from kerasbert.optimizers import (  # noqa: E402
    Adam,
    ExponentialMovingAverage,
    extend_with_exponential_moving_average,
)

CONFIG = {
    "vocab_size": 20,
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 16,
}
MOMENTUM = 0.9  # low, so that a few steps move the average visibly away from the weights
AdamEMA = extend_with_exponential_moving_average(Adam, name="AdamEMA")


def _data(n=16, length=6):
    rng = np.random.default_rng(0)
    x = [rng.integers(1, 20, (n, length)).astype("int32"), np.zeros((n, length), "int32")]
    return x, rng.integers(0, 2, (n,))


def _build(seed=0):
    keras.utils.set_random_seed(seed)
    bert = kerasbert.build_transformer_model(CONFIG, with_pool=True)
    output = keras.layers.Dense(2, activation="softmax", name="Head")(bert.output)
    return keras.Model(bert.inputs, output)


class _Recorder(keras.callbacks.Callback):
    """The trainable weights after every training step (numpy copies)."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.model.jax_state_sync()
        self.steps.append([np.array(v.value) for v in self.model.trainable_variables])


def _weights(model):
    return [np.array(v.value) for v in model.trainable_variables]


def _keras_ema(steps, momentum):
    """Keras's ``use_ema`` average: the first step's weights, then the recurrence."""
    averages = [w.copy() for w in steps[0]]
    for weights in steps[1:]:
        averages = [
            np.float32(momentum) * a + np.float32(1 - momentum) * w
            for a, w in zip(averages, weights)
        ]
    return averages


def _bias_corrected_ema(steps, momentum):
    """The callback's average: zeros, the recurrence, divided by ``1 - momentum ** t``."""
    averages = [np.zeros_like(w) for w in steps[0]]
    for weights in steps:
        averages = [a * momentum + w * (1 - momentum) for a, w in zip(averages, weights)]
    return [a / (1 - momentum ** len(steps)) for a in averages]


def _assert_close(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def _assert_equal(actual, expected):
    assert len(actual) == len(expected)
    assert max(float(np.max(np.abs(a - e))) for a, e in zip(actual, expected)) == 0.0


class _Form:
    """The two EMA forms behind one interface: the optimizer, or the callback."""

    def __init__(self, kind):
        self.kind = kind
        self.callback = ExponentialMovingAverage(MOMENTUM) if kind == "callback" else None

    def compile(self, model):
        if self.kind == "optimizer":
            self.optimizer = AdamEMA(learning_rate=1e-2, ema_momentum=MOMENTUM)
        else:
            self.optimizer = Adam(learning_rate=1e-2)
        model.compile(optimizer=self.optimizer, loss="sparse_categorical_crossentropy")

    @property
    def ema(self):
        return self.optimizer if self.kind == "optimizer" else self.callback

    def callbacks(self):
        return [] if self.callback is None else [self.callback]

    def expected(self, steps):
        if self.kind == "optimizer":
            return _keras_ema(steps, MOMENTUM)
        return _bias_corrected_ema(steps, MOMENTUM)


def _fit(model, form, x, y, recorder, extra=()):
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[*form.callbacks(), recorder, *extra],
    )


@pytest.mark.parametrize("kind", ["optimizer", "callback"])
def test_apply_predict_save_reset_then_fit_again(kind, tmp_path):
    x, y = _data()
    model, form, recorder = _build(), _Form(kind), _Recorder()
    form.compile(model)
    _fit(model, form, x, y, recorder)
    trained = _weights(model)
    _assert_equal(trained, recorder.steps[-1])
    expected = form.expected(recorder.steps)

    form.ema.apply_ema_weights()
    _assert_close(_weights(model), expected)
    # The model and the average must not share a buffer that predict can donate.
    predictions = model.predict(x, verbose=0)
    with_ema, _ = model.stateless_call(expected, [], x, training=False)
    with_trained, _ = model.stateless_call(trained, [], x, training=False)
    np.testing.assert_allclose(predictions, np.asarray(with_ema), rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(predictions - np.asarray(with_trained))) > 1e-4

    path = str(tmp_path / "ema.weights.h5")
    model.save_weights(path)
    loaded = _build(seed=1)
    loaded.load_weights(path)
    _assert_close(_weights(loaded), expected)

    form.ema.reset_old_weights()
    _assert_equal(_weights(model), trained)
    _fit(model, form, x, y, recorder)

    # A run that never applied the average: the same weights after both fits, exactly.
    plain_model, plain_form, plain_recorder = _build(), _Form(kind), _Recorder()
    plain_form.compile(plain_model)
    _fit(plain_model, plain_form, x, y, plain_recorder)
    _fit(plain_model, plain_form, x, y, plain_recorder)
    assert len(recorder.steps) == len(plain_recorder.steps) == 8
    for steps, plain_steps in zip(recorder.steps, plain_recorder.steps):
        _assert_equal(steps, plain_steps)
    _assert_equal(_weights(model), _weights(plain_model))

    # The average went on over both fits, in both runs alike.
    form.ema.apply_ema_weights()
    plain_form.ema.apply_ema_weights()
    _assert_equal(_weights(model), _weights(plain_model))
    _assert_close(_weights(model), form.expected(recorder.steps))


def _build_two_models(seed=0):
    """GPLinker / relation-extraction style: a training model and a prediction model that
    share the encoder and one head; the training model has a second head."""
    keras.utils.set_random_seed(seed)
    bert = kerasbert.build_transformer_model(CONFIG, with_pool=True)
    first = keras.layers.Dense(2, activation="softmax", name="First")(bert.output)
    second = keras.layers.Dense(3, activation="softmax", name="Second")(bert.output)
    train_model = keras.Model(bert.inputs, [first, second])
    predict_model = keras.Model(bert.inputs, first)
    return train_model, predict_model


class _Evaluator(keras.callbacks.Callback):
    """bert4keras's Evaluator: at each epoch's end, apply the average, predict with the
    other model, save the training model's weights, then give back the training weights."""

    def __init__(self, optimizer, predict_model, x, path):
        super().__init__()
        self.optimizer, self.predict_model, self.x, self.path = optimizer, predict_model, x, path
        self.applied, self.predictions = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.optimizer.apply_ema_weights()
        self.applied.append(_weights(self.model))
        self.predictions.append(self.predict_model.predict(self.x, verbose=0))
        self.model.save_weights(self.path)
        self.optimizer.reset_old_weights()


def test_two_models_sharing_weights_ema_optimizer_on_one(tmp_path):
    x, y = _data()
    ys = [y, y % 3]
    losses = ["sparse_categorical_crossentropy"] * 2

    def run(evaluate):
        train_model, predict_model = _build_two_models()
        optimizer = AdamEMA(learning_rate=1e-2, ema_momentum=MOMENTUM)
        train_model.compile(optimizer=optimizer, loss=losses)
        recorder = _Recorder()
        callbacks = [recorder]
        evaluator = None
        if evaluate:
            evaluator = _Evaluator(optimizer, predict_model, x, str(tmp_path / "best.weights.h5"))
            callbacks.append(evaluator)
        for _ in range(2):  # two fit calls of two epochs each
            train_model.fit(
                x, ys, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=callbacks
            )
        return train_model, predict_model, recorder, evaluator

    train_model, predict_model, recorder, evaluator = run(evaluate=True)
    assert len(evaluator.applied) == 4 and len(recorder.steps) == 16
    for epoch, applied in enumerate(evaluator.applied):
        steps = recorder.steps[: 4 * (epoch + 1)]
        _assert_close(applied, _keras_ema(steps, MOMENTUM))
    # The prediction model saw the averaged weights (its variables are a subset).
    ema = dict(zip([v.path for v in train_model.trainable_variables], evaluator.applied[-1]))
    subset = [ema[v.path] for v in predict_model.trainable_variables]
    with_ema, _ = predict_model.stateless_call(subset, [], x, training=False)
    predictions = evaluator.predictions[-1]
    np.testing.assert_allclose(predictions, np.asarray(with_ema), rtol=1e-5, atol=1e-6)
    # The file holds the last epoch's average.
    loaded, _ = _build_two_models(seed=1)
    loaded.load_weights(str(tmp_path / "best.weights.h5"))
    _assert_close(_weights(loaded), evaluator.applied[-1])

    plain_model, _, plain_recorder, _ = run(evaluate=False)
    for steps, plain_steps in zip(recorder.steps, plain_recorder.steps):
        _assert_equal(steps, plain_steps)
    _assert_equal(_weights(train_model), _weights(plain_model))
