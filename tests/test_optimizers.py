"""kerasbert.optimizers: AdamW exclusions, piecewise-linear schedule, gradient accumulation,
EMA, layer-wise learning rates, and the bert4keras ``extend_with_*`` names."""

import json
import os
import pathlib
import re

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

import kerasbert  # noqa: E402
from kerasbert import optimizers as kbo  # noqa: E402
from kerasbert.errors import KerasBertError  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

TINY = {
    "vocab_size": 30,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 16,
    "hidden_act": "gelu_erf",
}

# Every public name of bert4keras's optimizers module (bojone/bert4keras, bert4keras/optimizers.py).
BERT4KERAS_NAMES = [
    "Adam",
    "AdaFactor",
    "AdaFactorBase",
    "AdaFactorV1",
    "AdaFactorV2",
    "Lion",
    "LionV2",
    "export_to_custom_objects",
    "extend_with_weight_decay",
    "extend_with_weight_decay_v2",
    "extend_with_layer_adaptation",
    "extend_with_layer_adaptation_v2",
    "extend_with_piecewise_linear_lr",
    "extend_with_piecewise_linear_lr_v2",
    "extend_with_gradient_accumulation",
    "extend_with_gradient_accumulation_v2",
    "extend_with_lookahead",
    "extend_with_lookahead_v2",
    "extend_with_lazy_optimization",
    "extend_with_lazy_optimization_v2",
    "extend_with_exponential_moving_average",
    "extend_with_exponential_moving_average_v2",
    "extend_with_parameter_wise_lr",
    "extend_with_parameter_wise_lr_v2",
]


def values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def tiny_classifier(num_layers=2, seed=0):
    keras.utils.set_random_seed(seed)
    bert = kerasbert.build_transformer_model(
        dict(TINY, num_hidden_layers=num_layers), with_pool=True
    )
    output = keras.layers.Dense(2, activation="softmax", name="Head")(bert.output)
    return keras.Model(bert.inputs, output)


def toy_data(n=16, length=8, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, TINY["vocab_size"], size=(n, length)).astype("int32")
    tokens[:, length // 2 :] *= rng.random((n, 1)) < 0.5  # some padded sequences
    labels = (tokens == 7).any(axis=1).astype("int32")
    return [tokens, np.zeros_like(tokens)], labels


def bert4keras_piecewise(t, schedule, from_zero=True):
    """bert4keras's piecewise_linear, restated with numpy."""
    points = sorted((int(k), float(v)) for k, v in dict(schedule).items())
    if from_zero and points[0][0] != 0:
        points.insert(0, (0, 0.0))
    steps, multipliers = zip(*points)
    return np.interp(t, steps, multipliers)


# -- PiecewiseLinearSchedule -------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule, from_zero",
    [
        ({1000: 1, 2000: 0.1}, True),
        ({0: 1}, True),
        ({0: 0.5, 10: 1, 20: 0.0}, True),
        ({5: 1, 9: 0.2}, False),
        ({"3": 2, "7": 0}, True),
        ([(2, 1), (4, 0.5), (8, 0.25)], True),
    ],
)
def test_piecewise_linear_matches_bert4keras(schedule, from_zero):
    lr = kbo.PiecewiseLinearSchedule(schedule, 2e-5, from_zero=from_zero)
    steps = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 500, 1000, 1500, 2000, 10**6])
    got = keras.ops.convert_to_numpy(lr(keras.ops.convert_to_tensor(steps, "int32")))
    expected = 2e-5 * bert4keras_piecewise(steps, schedule, from_zero)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)


def test_piecewise_linear_under_jit_and_serialized():
    import jax

    lr = kbo.PiecewiseLinearSchedule({100: 1, 200: 0.1}, 1e-3)
    assert float(jax.jit(lr)(np.int32(50))) == pytest.approx(5e-4)
    config = keras.optimizers.schedules.serialize(lr)
    json.dumps(config)
    again = keras.optimizers.schedules.deserialize(config)
    assert isinstance(again, kbo.PiecewiseLinearSchedule)
    assert again.get_config() == lr.get_config()
    assert float(again(150)) == pytest.approx(float(lr(150)))


@pytest.mark.parametrize("schedule", [{}, {-1: 1}, [(1, 1), (1, 2)], {"a": 1}, {1.5: 1}, [3]])
def test_piecewise_linear_rejects_bad_schedules(schedule):
    with pytest.raises(KerasBertError, match="schedule"):
        kbo.PiecewiseLinearSchedule(schedule, 1e-3)


# -- AdamW ------------------------------------------------------------------------------------


def test_adamw_decays_all_but_norms_and_biases():
    import jax

    model = tiny_classifier(num_layers=1)
    variables = model.trainable_variables
    before = values(variables)
    optimizer = kbo.AdamW(learning_rate=0.1, weight_decay=0.5)
    optimizer.build(variables)
    after, _ = jax.jit(optimizer.stateless_apply)(
        [v.value for v in optimizer.variables],
        [np.zeros(v.shape, "float32") for v in variables],
        [v.value for v in variables],
    )
    excluded = set()
    for variable, old, new in zip(variables, before, after):
        if variable.path.endswith(("/gamma", "/beta", "/bias")):
            excluded.add(variable.path)
            np.testing.assert_array_equal(np.asarray(new), old)  # zero gradient: no Adam step
        else:
            np.testing.assert_allclose(np.asarray(new), old * (1 - 0.1 * 0.5), rtol=1e-6)
    assert "Transformer-0-FeedForward-Norm/gamma" in excluded
    assert "Embedding-Norm/beta" in excluded and "Pooler-Dense/bias" in excluded
    assert len(excluded) < len(variables)


def test_adamw_exclusion_holds_under_jit_and_with_keras_exclusions():
    import jax

    model = tiny_classifier(num_layers=1)
    variables = model.trainable_variables
    optimizer = kbo.AdamW(learning_rate=0.1, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_names=["embeddings"])  # Keras's own rule: short name
    optimizer.build(variables)
    grads = [np.zeros(v.shape, "float32") for v in variables]
    new, _ = jax.jit(optimizer.stateless_apply)(
        [v.value for v in optimizer.variables], grads, [v.value for v in variables]
    )
    for variable, value in zip(variables, new):
        kept = variable.path.endswith(("/gamma", "/beta", "/bias", "/embeddings"))
        factor = 1.0 if kept else 0.95
        np.testing.assert_allclose(np.asarray(value), np.asarray(variable.value) * factor, 1e-6)


def test_adamw_decay_follows_lr_multipliers():
    variables = named_variables(
        **{"Transformer-0-FeedForward__kernel": [1.0, 2.0], "Pooler-Dense__kernel": [1.0]}
    )
    optimizer = kbo.AdamW(
        learning_rate=0.1, weight_decay=0.5, lr_multipliers={"Transformer-0-": 0.5}
    )
    optimizer.apply([np.zeros(v.shape, "float32") for v in variables], variables)
    np.testing.assert_allclose(values(variables)[0], np.array([1.0, 2.0]) * (1 - 0.1 * 0.5 * 0.5))
    np.testing.assert_allclose(values(variables)[1], [1.0 - 0.1 * 0.5])


def test_adamw_config_round_trip(tmp_path):
    lr = kbo.PiecewiseLinearSchedule({10: 1, 20: 0.1}, 2e-5)
    optimizer = kbo.AdamW(lr, weight_decay=0.02, lr_multipliers={"Embedding-": 0.1})
    config = keras.optimizers.serialize(optimizer)
    json.dumps(config)
    again = keras.optimizers.deserialize(config)
    assert type(again) is kbo.AdamW
    assert again.get_config() == optimizer.get_config()
    assert again.weight_decay_exclusions == ("Norm", "bias")
    assert isinstance(again._learning_rate, kbo.PiecewiseLinearSchedule)

    # ... and inside a saved model.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.optimizer) is kbo.AdamW
    assert loaded.optimizer.get_config() == optimizer.get_config()


# -- gradient accumulation --------------------------------------------------------------------


def small_model(seed=1):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def small_data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), rng.normal(size=(n, 1))


@pytest.mark.parametrize(
    "k, make_model, data, loss, make_optimizer",
    [
        (2, lambda: tiny_classifier(num_layers=1), toy_data(n=16),
         "sparse_categorical_crossentropy",
         lambda k: keras.optimizers.Adam(0.01, gradient_accumulation_steps=k)),
        (3, small_model, small_data(n=24), "mse",
         lambda k: kbo.extend_with_gradient_accumulation(keras.optimizers.SGD)(
             0.1, grad_accum_steps=k)),
    ],
    ids=["bert-keras-adam", "mlp-bert4keras-sgd"],
)  # fmt: skip
def test_gradient_accumulation_equals_one_big_batch(k, make_model, data, loss, make_optimizer):
    batch = 4
    x, y = data
    results = []
    for steps, size in ((k, batch), (None, k * batch)):
        model = make_model()
        optimizer = make_optimizer(steps)
        assert optimizer.gradient_accumulation_steps == steps
        model.compile(optimizer=optimizer, loss=loss)
        model.fit(x, y, batch_size=size, shuffle=False, verbose=0)
        assert int(optimizer.iterations) == 2  # two updates either way
        results.append(values(model.trainable_variables))
    initial = values(make_model().trainable_variables)
    for accumulated, big in zip(*results):
        np.testing.assert_allclose(accumulated, big, atol=1e-6)
    assert any(not np.allclose(a, s) for a, s in zip(results[0], initial))  # it did train


# -- exponential moving average ---------------------------------------------------------------


class Trajectory(keras.callbacks.Callback):
    """Records the trainable weights after every training batch."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        self.weights.append(values(self.model.trainable_variables))


class ApplyAndReset(keras.callbacks.Callback):
    """Evaluates with EMA weights at each epoch end, as bert4keras scripts do."""

    def __init__(self, ema):
        super().__init__()
        self.ema = ema

    def on_epoch_end(self, epoch, logs=None):
        self.ema.apply_ema_weights()
        self.model.predict(np.ones((2, 3)), verbose=0)
        self.ema.reset_old_weights()


def test_ema_callback_is_the_bias_corrected_average_of_the_trajectory():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    model, momentum = small_model(), 0.8
    ema, trajectory = kbo.ExponentialMovingAverage(momentum), Trajectory()
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[ema, trajectory])
    assert ema.steps == len(trajectory.weights) == 10

    average = [np.zeros_like(w) for w in trajectory.weights[0]]
    for weights in trajectory.weights:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    corrected = [a / (1 - momentum**10) for a in average]
    final = values(model.trainable_variables)
    ema.apply_ema_weights()
    for got, expected in zip(values(model.trainable_variables), corrected):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for got, expected in zip(ema.ema_weights(bias_correction=False), average):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    ema.reset_old_weights()
    for got, expected in zip(values(model.trainable_variables), final):
        np.testing.assert_array_equal(got, expected)

    # Applying and resetting at every epoch end leaves training itself unchanged.
    model = small_model()
    ema = kbo.ExponentialMovingAverage(momentum)
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0,
              callbacks=[ema, ApplyAndReset(ema)])  # fmt: skip
    for got, expected in zip(values(model.trainable_variables), final):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_ema_callback_errors():
    with pytest.raises(KerasBertError, match="momentum"):
        kbo.ExponentialMovingAverage(1.5)
    ema = kbo.ExponentialMovingAverage()
    with pytest.raises(KerasBertError, match="no steps"):
        ema.apply_ema_weights()


def test_ema_optimizer_follows_keras_average_and_keeps_raw_weights_after_fit():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 1))
    model, momentum = small_model(), 0.7
    SGDEMA = kbo.extend_with_exponential_moving_average(keras.optimizers.SGD)
    model.compile(optimizer=SGDEMA(0.05, ema_momentum=momentum), loss="mse")
    trajectory = Trajectory()
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[trajectory])

    final = values(model.trainable_variables)
    for got, expected in zip(final, trajectory.weights[-1]):
        np.testing.assert_array_equal(got, expected)  # fit did not swap in the average
    average = trajectory.weights[0]  # Keras starts the average at the first step's weights
    for weights in trajectory.weights[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    model.optimizer.apply_ema_weights()
    for got, expected in zip(values(model.trainable_variables), average):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    model.optimizer.reset_old_weights()
    for got, expected in zip(values(model.trainable_variables), final):
        np.testing.assert_array_equal(got, expected)
    assert model.optimizer.get_config()["use_ema"] is True


# -- layer-wise learning rates ----------------------------------------------------------------


def test_layerwise_multipliers_scale_sgd_updates_under_jit():
    import jax

    model = tiny_classifier(num_layers=2)
    multipliers = kbo.layerwise_lr_multipliers(model, 0.5)
    assert multipliers == {"Embedding-": 0.125, "Transformer-0-": 0.25, "Transformer-1-": 0.5}
    variables = model.trainable_variables
    rng = np.random.default_rng(3)
    grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
    SGDPW = kbo.extend_with_parameter_wise_lr(keras.optimizers.SGD)
    optimizer = SGDPW(0.5, paramwise_lr_schedule=multipliers)
    optimizer.build(variables)
    new, _ = jax.jit(optimizer.stateless_apply)(
        [v.value for v in optimizer.variables], grads, [v.value for v in variables]
    )
    expected_factor = {"Embedding": 0.125, "Transformer-0": 0.25, "Transformer-1": 0.5}
    seen = set()
    for variable, grad, value in zip(variables, grads, new):
        prefix = re.match(r"(Embedding|Transformer-\d)", variable.path)
        factor = expected_factor[prefix.group(1)] if prefix else 1.0
        assert optimizer.lr_multiplier(variable) == factor
        step = np.asarray(variable.value) - np.asarray(value)
        np.testing.assert_allclose(step, 0.5 * factor * grad, rtol=1e-4, atol=1e-6)
        seen.add(factor)
    assert seen == {0.125, 0.25, 0.5, 1.0}


def test_layerwise_multipliers_need_indexed_layers():
    keras.utils.set_random_seed(0)
    albert = kerasbert.build_transformer_model(dict(TINY, embedding_size=8), model="albert")
    with pytest.raises(KerasBertError, match="Transformer-<i>"):
        kbo.layerwise_lr_multipliers(albert, 0.9)
    assert kbo.layerwise_lr_multipliers(2, 1.0) == {
        "Embedding-": 1.0,
        "Transformer-0-": 1.0,
        "Transformer-1-": 1.0,
    }
    with pytest.raises(KerasBertError, match="decay"):
        kbo.layerwise_lr_multipliers(2, 0.0)


# -- bert4keras extenders ---------------------------------------------------------------------


def named_variables(**arrays):
    variables = []
    for name, array in arrays.items():
        layer, short = name.split("__")
        with keras.name_scope(layer):
            variables.append(keras.Variable(np.array(array, "float32"), name=short))
    return variables


def test_bert4keras_adam_matches_its_formula():
    rng = np.random.default_rng(2)
    grads = rng.normal(size=(4, 5)).astype("float32")
    for bias_correction in (True, False):
        w = keras.Variable(np.ones(5, "float32"))
        optimizer = kbo.Adam(learning_rate=0.01, bias_correction=bias_correction)
        expected, m, v = np.ones(5), np.zeros(5), np.zeros(5)
        for step, g in enumerate(grads, start=1):
            optimizer.apply([g], [w])
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g**2
            m_hat, v_hat = (
                (m / (1 - 0.9**step), v / (1 - 0.999**step)) if bias_correction else (m, v)
            )
            expected = expected - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-6)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(w), expected, rtol=1e-5)
        assert kbo.Adam.from_config(optimizer.get_config()).bias_correction is bias_correction


def test_extend_with_weight_decay_defaults_to_bert4keras():
    SGDWD = kbo.extend_with_weight_decay(keras.optimizers.SGD)
    assert SGDWD.__name__ == "SGDWithWeightDecay"
    variables = named_variables(Dense__kernel=[1.0, 2.0], Dense__bias=[1.0], Norm__gamma=[3.0])
    optimizer = SGDWD(learning_rate=0.5)  # weight_decay_rate=0.01, nothing excluded
    optimizer.apply([np.zeros(v.shape, "float32") for v in variables], variables)
    np.testing.assert_allclose(values(variables)[0], [0.995, 1.99])
    np.testing.assert_allclose(values(variables)[1], [0.995])
    optimizer = SGDWD(learning_rate=0.5, weight_decay_rate=0.1, exclude_from_weight_decay=["Norm"])
    optimizer.apply([np.zeros(v.shape, "float32") for v in variables], variables)
    np.testing.assert_allclose(values(variables)[2], [3.0 * 0.995])  # earlier decay only


def test_extend_with_piecewise_linear_lr_scales_steps():
    SGDLR = kbo.extend_with_piecewise_linear_lr(keras.optimizers.SGD)
    w = keras.Variable(np.zeros(1, "float32"))
    optimizer = SGDLR(0.1, lr_schedule={2: 1, 4: 0.5})
    deltas = []
    for _ in range(6):
        before = float(w[0])
        optimizer.apply([np.ones(1, "float32")], [w])
        deltas.append(before - float(w[0]))
    np.testing.assert_allclose(deltas, [0.0, 0.05, 0.1, 0.075, 0.05, 0.05], atol=1e-7)
    assert float(SGDLR(learning_rate=0.1).learning_rate) == pytest.approx(0.1)  # constant
    with pytest.raises(KerasBertError, match="lr_schedule"):
        SGDLR(learning_rate=kbo.PiecewiseLinearSchedule({1: 1}), lr_schedule={2: 1})


def test_extend_with_layer_adaptation_is_lamb_trust_ratio():
    LAMB = kbo.extend_with_layer_adaptation(kbo.extend_with_weight_decay(keras.optimizers.SGD))
    variables = named_variables(Dense__kernel=[3.0, 4.0], Norm__gamma=[3.0, 4.0])
    g = np.array([1.0, 0.0], "float32")
    optimizer = LAMB(0.1, weight_decay_rate=0.1, exclude_from_layer_adaptation=["Norm"],
                     exclude_from_weight_decay=["Norm"])  # fmt: skip
    optimizer.apply([g, g], variables)
    w = np.array([3.0, 4.0])
    step = g + 0.1 * w  # gradient + decay, rescaled to the weight's norm
    expected = w - 0.1 * step * np.linalg.norm(w) / np.linalg.norm(step)
    np.testing.assert_allclose(values(variables)[0], expected, rtol=1e-6)
    np.testing.assert_allclose(values(variables)[1], w - 0.1 * g, rtol=1e-6)  # plain SGD


def test_extend_with_lazy_optimization_freezes_rows_without_gradient():
    AdamLO = kbo.extend_with_lazy_optimization(kbo.Adam)
    results = []
    for optimizer in (AdamLO(0.1, include_in_lazy_optimization=["Embedding-Token"]), kbo.Adam(0.1)):
        (table,) = named_variables(**{"Embedding-Token__embeddings": np.ones((3, 2))})
        optimizer.apply([np.ones((3, 2), "float32")], [table])
        after_first = values([table])[0]
        grad = np.ones((3, 2), "float32")
        grad[0] = 0.0  # token 0 is not in the second batch
        optimizer.apply([grad], [table])
        results.append((after_first, values([table])[0]))
    (lazy_first, lazy), (plain_first, plain) = results
    np.testing.assert_array_equal(lazy[0], lazy_first[0])  # row 0 kept
    assert not np.allclose(plain[0], plain_first[0])  # Adam's momentum moves it otherwise
    np.testing.assert_allclose(lazy[1:], plain[1:])


def test_extend_with_parameter_wise_lr_multiplies_matching_factors():
    SGDPW = kbo.extend_with_parameter_wise_lr(keras.optimizers.SGD)
    optimizer = SGDPW(1.0, paramwise_lr_schedule={"Pooler": 2.0, "kernel": 0.5})
    variables = named_variables(
        **{"Pooler-Dense__kernel": [1.0], "Pooler-Dense__bias": [1.0], "Head__kernel": [1.0]}
    )
    assert [optimizer.lr_multiplier(v) for v in variables] == [1.0, 2.0, 0.5]
    optimizer.apply([np.ones(1, "float32")] * 3, variables)
    np.testing.assert_allclose(np.concatenate(values(variables)), [0.0, -1.0, 0.5])
    with pytest.raises(KerasBertError, match="not both"):
        SGDPW(paramwise_lr_schedule={"a": 1}, lr_multipliers={"b": 2})
    with pytest.raises(KerasBertError, match="lr_multipliers"):
        SGDPW(paramwise_lr_schedule={"a": "fast"})


def test_extenders_compose_serialize_and_register():
    Optimizer = kbo.extend_with_piecewise_linear_lr(
        kbo.extend_with_weight_decay(kbo.extend_with_gradient_accumulation(kbo.Adam)),
        name="AdamWLRGA",
    )
    optimizer = Optimizer(
        learning_rate=1e-3,
        lr_schedule={10: 1, 100: 0.1},
        weight_decay_rate=0.01,
        exclude_from_weight_decay=["Norm", "bias"],
        grad_accum_steps=4,
    )
    assert keras.saving.get_custom_objects()["AdamWLRGA"] is Optimizer
    assert isinstance(optimizer, kbo.Adam)
    assert optimizer.gradient_accumulation_steps == 4 and optimizer.weight_decay == 0.01
    assert optimizer.weight_decay_exclusions == ("Norm", "bias")
    assert float(optimizer._learning_rate(55)) == pytest.approx(5.5e-4)
    config = keras.optimizers.serialize(optimizer)
    json.dumps(config)
    again = keras.optimizers.deserialize(config)
    assert type(again) is Optimizer and again.get_config() == optimizer.get_config()

    # A model compiled with it trains under jit.
    model = small_model()
    model.compile(optimizer=again, loss="mse")
    history = model.fit(*small_data(16), batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and int(again.iterations) == 1


def test_names_not_provided_raise_with_their_replacement():
    for call, replacement in (
        (lambda: kbo.extend_with_lookahead(kbo.Adam), "AdamW"),
        (lambda: kbo.extend_with_lookahead_v2(kbo.Adam), "AdamW"),
        (lambda: kbo.AdaFactor(learning_rate=1e-3), "keras.optimizers.Adafactor"),
        (lambda: kbo.AdaFactorV2(), "keras.optimizers.Adafactor"),
    ):
        with pytest.raises(KerasBertError, match=re.escape(replacement)):
            call()
    with pytest.raises(KerasBertError, match="optimizer class"):
        kbo.extend_with_weight_decay(kbo.Adam())
    with pytest.raises(KerasBertError, match="optimizer class"):
        kbo.extend_with_weight_decay("adam")
    with pytest.raises(KerasBertError, match="regular expression"):
        kbo.AdamW(exclude_from_weight_decay=["(unclosed"])


def test_every_bert4keras_name_resolves_and_is_documented():
    docs = (ROOT / "docs" / "optimizers.md").read_text(encoding="utf-8")
    for name in BERT4KERAS_NAMES:
        assert hasattr(kbo, name), name
        assert f"`{name}`" in docs, name
    for name in kbo.__all__:
        assert f"`{name}" in docs or name in docs, name
