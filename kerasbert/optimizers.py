"""Optimizers for fine-tuning: Keras 3 forms of bert4keras's optimizer toolkit.

kerasbert's own API:

- :class:`AdamW`: ``keras.optimizers.AdamW`` whose weight decay skips LayerNorm weights and
  biases by default, matched on the variable *path* (``Transformer-0-FeedForward-Norm/gamma``);
- :class:`PiecewiseLinearSchedule`: bert4keras's ``lr_schedule`` dicts (warmup / decay) as a
  ``keras.optimizers.schedules.LearningRateSchedule``;
- :func:`layerwise_lr_multipliers`: layer-wise learning-rate decay, passed to any kerasbert
  optimizer as ``lr_multipliers``;
- :class:`ExponentialMovingAverage`: a callback keeping an EMA of the weights, with
  bert4keras's ``apply_ema_weights()`` / ``reset_old_weights()``;
- gradient accumulation is Keras's own ``gradient_accumulation_steps=k`` argument.

bert4keras's names (``Adam``, ``extend_with_weight_decay``, ``extend_with_piecewise_linear_lr``,
``extend_with_gradient_accumulation``, ...) are provided too: each ``extend_with_*`` returns a
Keras 3 optimizer class taking bert4keras's constructor arguments. ``docs/optimizers.md`` maps
every bert4keras name to its kerasbert form; the few not provided raise
:class:`OptimizerError` naming the replacement.

Per-variable options (weight-decay exclusions, learning-rate multipliers, layer adaptation,
lazy updates) are fixed Python values resolved from variable paths while the train step is
traced, so they cost nothing under ``jit``.
"""

import inspect
import re

import keras
from keras import ops

from kerasbert.errors import KerasBertError


class OptimizerError(KerasBertError, ValueError):
    """An optimizer option is invalid, or a bert4keras optimizer name has no Keras 3 form."""


# -- helpers ---------------------------------------------------------------------------------


def _path(variable):
    """A variable's path (``layer/.../name``), or its name where it has no path."""
    return getattr(variable, "path", None) or variable.name


def _patterns(patterns, argument):
    """``patterns`` (a string or a sequence of regexes) as a checked tuple of strings."""
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = [patterns]
    checked = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise OptimizerError(
                f"{argument} must be regular expressions (strings); got {pattern!r}."
            )
        try:
            re.compile(pattern)
        except re.error as error:
            raise OptimizerError(
                f"{argument} pattern {pattern!r} is not a valid regular expression: {error}."
            ) from None
        checked.append(pattern)
    return tuple(checked)


def _matches(patterns, variable):
    path = _path(variable)
    return any(re.search(pattern, path) for pattern in patterns)


def _multipliers(multipliers, argument="lr_multipliers"):
    """``{substring: factor}`` (dict or pairs) as a checked tuple of ``(str, float)``."""
    if not multipliers:
        return ()
    items = multipliers.items() if isinstance(multipliers, dict) else multipliers
    checked = []
    for item in items:
        try:
            pattern, factor = item
            factor = float(factor)
        except (TypeError, ValueError):
            raise OptimizerError(
                f"{argument} must map variable-path substrings to numbers, e.g. "
                f"{{'Transformer-0-': 0.5}}; got the entry {item!r}."
            ) from None
        if not isinstance(pattern, str) or factor < 0:
            raise OptimizerError(
                f"{argument} entry {item!r}: the key must be a string and the multiplier >= 0."
            )
        checked.append((pattern, factor))
    return tuple(checked)


# -- learning-rate schedule -------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kerasbert")
class PiecewiseLinearSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """bert4keras's piecewise-linear learning rate: ``base_learning_rate * f(step)``.

    ``schedule`` maps steps to multipliers, e.g. ``{1000: 1, 2000: 0.1}``: the multiplier
    rises linearly from 0 at step 0 to 1 at step 1000, falls linearly to 0.1 at step 2000
    and stays 0.1 afterwards. As in bert4keras's ``piecewise_linear``, the point
    ``(0, 0.0)`` is added when ``from_zero`` and the schedule has no step 0; before the
    first point the multiplier is the first point's value. Steps are optimizer steps
    (``optimizer.iterations`` before the update, so the first update uses step 0); with
    Keras's ``gradient_accumulation_steps`` they count batches, as bert4keras's did.

    Args:
        schedule: ``{step: multiplier}`` (steps may be strings, as JSON writes them) or a
            sequence of ``(step, multiplier)`` pairs; steps are integers >= 0.
        base_learning_rate: the learning rate a multiplier of 1 stands for.
        from_zero: start from multiplier 0 at step 0 when the schedule has no step 0.

    Example:

    >>> schedule = PiecewiseLinearSchedule({1000: 1, 2000: 0.1}, 2e-5)
    >>> [round(float(schedule(step)) / 2e-5, 3) for step in (0, 500, 1000, 1500, 5000)]
    [0.0, 0.5, 1.0, 0.55, 0.1]
    """

    def __init__(self, schedule, base_learning_rate=1.0, from_zero=True):
        items = schedule.items() if isinstance(schedule, dict) else schedule
        points = {}
        try:
            for step, value in items:
                step_int, value = int(step), float(value)
                if step_int != float(step) or step_int < 0:
                    raise ValueError
                if step_int in points:
                    raise OptimizerError(
                        f"Learning-rate schedule {schedule!r} gives step {step_int} twice."
                    )
                points[step_int] = value
        except (TypeError, ValueError) as error:
            if isinstance(error, OptimizerError):
                raise
            raise OptimizerError(
                f"Learning-rate schedule {schedule!r} must map integer steps >= 0 to numbers, "
                "e.g. {1000: 1.0, 2000: 0.1}."
            ) from None
        if not points:
            raise OptimizerError(
                "The learning-rate schedule is empty; give at least one {step: multiplier}."
            )
        self.schedule = tuple(sorted(points.items()))
        self.base_learning_rate = float(base_learning_rate)
        self.from_zero = bool(from_zero)
        knots = list(self.schedule)
        if self.from_zero and knots[0][0] != 0:
            knots.insert(0, (0, 0.0))
        self._knots = knots

    def multiplier(self, step):
        """The schedule's multiplier at ``step`` (a number or tensor), as a float32 tensor."""
        t = ops.cast(step, "float32")
        value = ops.ones_like(t) * self._knots[0][1]
        for (t0, v0), (t1, v1) in zip(self._knots, self._knots[1:]):
            ramp = v0 + (v1 - v0) * (t - t0) / (t1 - t0)
            value = ops.where(t >= t0, ramp, value)
        last_step, last_value = self._knots[-1]
        return ops.where(t >= last_step, last_value, value)

    def __call__(self, step):
        return self.multiplier(step) * self.base_learning_rate

    def get_config(self):
        return {
            "schedule": [[step, value] for step, value in self.schedule],
            "base_learning_rate": self.base_learning_rate,
            "from_zero": self.from_zero,
        }


# -- the per-variable extensions shared by every kerasbert optimizer ---------------------------


class _Extensions:
    """Mixin adding path-based per-variable options to a Keras optimizer class.

    - ``exclude_from_weight_decay``: regexes searched in the variable path; matching
      variables get no weight decay. Decay is decoupled (``w -= lr * weight_decay * w``, as
      Keras and bert4keras do it) and uses the variable's own learning rate, multiplier
      included.
    - ``lr_multipliers``: ``{substring: factor}``; a variable's learning rate is multiplied
      by the factor of every key its path contains (bert4keras's ``paramwise_lr_schedule``).
    - ``layer_adaptation``: rescale each variable's update to ``|w| / |update / lr|`` times
      itself (LAMB's trust ratio, bert4keras's ``extend_with_layer_adaptation``); the weight
      decay is inside the rescaled update. ``exclude_from_layer_adaptation`` opts out.
    - ``include_in_lazy_optimization``: regexes of variables (embeddings) whose rows with an
      all-zero gradient are left unchanged by the step.
    """

    def __init__(
        self,
        *args,
        exclude_from_weight_decay=None,
        lr_multipliers=None,
        layer_adaptation=False,
        exclude_from_layer_adaptation=None,
        include_in_lazy_optimization=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.weight_decay_exclusions = _patterns(
            exclude_from_weight_decay, "exclude_from_weight_decay"
        )
        self.lr_multipliers = _multipliers(lr_multipliers)
        self.layer_adaptation = bool(layer_adaptation)
        self.layer_adaptation_exclusions = _patterns(
            exclude_from_layer_adaptation, "exclude_from_layer_adaptation"
        )
        self.lazy_patterns = _patterns(include_in_lazy_optimization, "include_in_lazy_optimization")

    def lr_multiplier(self, variable):
        """The factor this optimizer applies to ``variable``'s learning rate.

        Args:
            variable: a model variable.
        """
        path = _path(variable)
        factor = 1.0
        for pattern, value in self.lr_multipliers:
            if pattern in path:
                factor *= value
        return factor

    def uses_weight_decay(self, variable):
        """Whether ``variable`` is decayed: decay is on and no exclusion matches it.

        Both this optimizer's path patterns and Keras's ``exclude_from_weight_decay(var_list,
        var_names)`` method (which matches the short variable name) are honoured.

        Args:
            variable: a model variable.
        """
        if not self.weight_decay:
            return False
        if _matches(self.weight_decay_exclusions, variable):
            return False
        keras_rule = getattr(self, "_use_weight_decay", None)
        return keras_rule(variable) if keras_rule is not None else True

    def _apply_weight_decay(self, variables):
        # Keras decays every variable at the global rate before the update; kerasbert decays
        # in update_step instead, at each variable's own (multiplied) learning rate.
        return

    def update_step(self, gradient, variable, learning_rate):
        factor = self.lr_multiplier(variable)
        if factor != 1.0:
            learning_rate = learning_rate * factor
        adapt = self.layer_adaptation and not _matches(self.layer_adaptation_exclusions, variable)
        lazy = bool(self.lazy_patterns) and _matches(self.lazy_patterns, variable)
        old = ops.convert_to_tensor(variable) if adapt or lazy else None
        if self.uses_weight_decay(variable):
            lr = ops.cast(learning_rate, variable.dtype)
            decay = ops.cast(self.weight_decay, variable.dtype)
            self.assign(variable, variable - variable * decay * lr)
        super().update_step(gradient, variable, learning_rate)
        if adapt:
            delta = ops.convert_to_tensor(variable) - old
            lr = ops.maximum(ops.cast(learning_rate, variable.dtype), keras.config.epsilon())
            weight_norm = ops.sqrt(ops.sum(ops.square(old)))
            update_norm = ops.sqrt(ops.sum(ops.square(delta / lr)))
            ratio = ops.where(
                weight_norm > 0,
                ops.where(update_norm > 0, weight_norm / update_norm, 1.0),
                1.0,
            )
            self.assign(variable, old + delta * ops.cast(ratio, variable.dtype))
        if lazy:
            touched = ops.any(ops.not_equal(gradient, 0), axis=-1, keepdims=True)
            delta = ops.convert_to_tensor(variable) - old
            self.assign(variable, old + delta * ops.cast(touched, variable.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "exclude_from_weight_decay": list(self.weight_decay_exclusions),
                "lr_multipliers": dict(self.lr_multipliers),
                "layer_adaptation": self.layer_adaptation,
                "exclude_from_layer_adaptation": list(self.layer_adaptation_exclusions),
                "include_in_lazy_optimization": list(self.lazy_patterns),
            }
        )
        return config


# -- kerasbert's optimizers -------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kerasbert")
class AdamW(_Extensions, keras.optimizers.AdamW):
    """``keras.optimizers.AdamW`` with BERT's weight-decay exclusions and per-layer rates.

    Weight decay is decoupled (``w -= lr * weight_decay * w`` each step, Keras's and
    bert4keras's rule) and skips every variable whose path matches one of
    ``exclude_from_weight_decay`` (regexes, searched as bert4keras does): by default the
    LayerNorms (``...-Norm/gamma``, ``...-Norm/beta``) and all biases. Keras's own
    ``exclude_from_weight_decay(var_names=...)`` only sees the short name (``gamma``); the
    path is what tells a LayerNorm apart.

    Args:
        learning_rate: a float or a ``LearningRateSchedule`` such as
            :class:`PiecewiseLinearSchedule`.
        weight_decay: the decay rate (0.01 as in BERT).
        exclude_from_weight_decay: regexes of variable paths to leave undecayed.
        lr_multipliers: ``{path substring: factor}`` per-variable learning-rate factors,
            e.g. from :func:`layerwise_lr_multipliers`; decay follows the multiplied rate.
        beta_1: first-moment decay.
        beta_2: second-moment decay.
        epsilon: added to the root of the second moment (1e-6 as in BERT and bert4keras;
            Keras's default is 1e-7).
        **kwargs: other ``keras.optimizers.AdamW`` arguments (``gradient_accumulation_steps``,
            ``global_clipnorm``, ``use_ema``, ...) and the other per-variable options
            (``layer_adaptation``, ``exclude_from_layer_adaptation``,
            ``include_in_lazy_optimization``; see ``docs/optimizers.md``).

    Example:

    >>> import keras, numpy as np
    >>> norm = keras.layers.LayerNormalization(name="Embedding-Norm")
    >>> dense = keras.layers.Dense(2, bias_initializer="ones", name="Pooler-Dense")
    >>> _ = dense(norm(np.ones((1, 2), "float32")))
    >>> variables = norm.trainable_variables + dense.trainable_variables
    >>> optimizer = AdamW(learning_rate=0.1, weight_decay=0.5)
    >>> optimizer.apply([np.zeros(v.shape, "float32") for v in variables], variables)
    >>> [(v.path, optimizer.uses_weight_decay(v)) for v in variables]
    [('Embedding-Norm/gamma', False), ('Embedding-Norm/beta', False),
     ('Pooler-Dense/kernel', True), ('Pooler-Dense/bias', False)]
    >>> float(dense.bias[0]), float(norm.gamma[0])  # untouched by a zero-gradient step
    (1.0, 1.0)
    """

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.01,
        exclude_from_weight_decay=("Norm", "bias"),
        lr_multipliers=None,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            exclude_from_weight_decay=exclude_from_weight_decay,
            lr_multipliers=lr_multipliers,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            **kwargs,
        )


class _BertAdamRule(keras.optimizers.Adam):
    """Keras's Adam with bert4keras's update rule (see :class:`Adam`)."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign(m, beta_1 * m + (1 - beta_1) * gradient)
        self.assign(v, beta_2 * v + (1 - beta_2) * ops.square(gradient))
        m_t, v_t = ops.convert_to_tensor(m), ops.convert_to_tensor(v)
        if self.bias_correction:
            step = ops.cast(self.iterations + 1, dtype)
            m_t = m_t / (1 - ops.power(beta_1, step))
            v_t = v_t / (1 - ops.power(beta_2, step))
        self.assign_sub(variable, lr * m_t / (ops.sqrt(v_t) + ops.cast(self.epsilon, dtype)))


@keras.saving.register_keras_serializable(package="kerasbert")
class Adam(_Extensions, _BertAdamRule):
    """bert4keras's ``Adam``: ``keras.optimizers.Adam`` with ``epsilon=1e-6`` and an optional
    bias correction.

    The update is ``w -= lr * m_hat / (sqrt(v_hat) + epsilon)`` with ``m_hat, v_hat`` the
    bias-corrected moments (or the raw moments when ``bias_correction=False``, as Google's
    original BERT optimizer does). Keras's Adam adds epsilon before the bias correction,
    which differs slightly in the first steps.

    Args:
        learning_rate: a float or a ``LearningRateSchedule``.
        beta_1: first-moment decay.
        beta_2: second-moment decay.
        epsilon: added to the root of the second moment.
        bias_correction: divide the moments by ``1 - beta ** step``.
        **kwargs: other ``keras.optimizers.Adam`` arguments and the per-variable options
            (``exclude_from_weight_decay``, ``lr_multipliers``, ...).

    Example:

    >>> import numpy as np
    >>> w = keras.Variable(np.ones(2, "float32"))
    >>> Adam(learning_rate=0.1).apply([np.array([0.5, -2.0], "float32")], [w])
    >>> np.round(keras.ops.convert_to_numpy(w), 4)  # one step moves by lr * sign(gradient)
    array([0.9, 1.1], dtype=float32)
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        bias_correction=True,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            **kwargs,
        )
        self.bias_correction = bool(bias_correction)

    def get_config(self):
        config = super().get_config()
        config["bias_correction"] = self.bias_correction
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class Lion(_Extensions, keras.optimizers.Lion):
    """``keras.optimizers.Lion`` with bert4keras's defaults (``beta_1=0.95, beta_2=0.98``).

    Args:
        learning_rate: a float or a ``LearningRateSchedule``.
        beta_1: interpolation factor of the update direction.
        beta_2: decay of the momentum.
        **kwargs: other ``keras.optimizers.Lion`` arguments and the per-variable options.

    Example:

    >>> Lion().beta_1, Lion().beta_2
    (0.95, 0.98)
    """

    def __init__(self, learning_rate=3e-4, beta_1=0.95, beta_2=0.98, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, **kwargs)


LionV2 = Lion


# -- layer-wise learning-rate decay -----------------------------------------------------------

_LAYER = re.compile(r"Transformer-(\d+)-")


def layerwise_lr_multipliers(model, decay):
    """Learning-rate factors that decay geometrically from the top transformer layer down.

    With ``L`` transformer layers, layer ``i`` (``Transformer-i-*``) gets ``decay ** (L - i)``,
    the embeddings (``Embedding-*``: token, segment, position, their LayerNorm) get
    ``decay ** (L + 1)``, and everything else (pooler, task heads) keeps 1. Pass the result
    as ``lr_multipliers`` to :class:`AdamW` (or any kerasbert optimizer). Keys are substrings
    of variable paths; ``Transformer-1-`` does not match ``Transformer-11-``.

    Args:
        model: a kerasbert ``keras.Model`` (its layer count is read from variable paths) or
            the number of transformer layers.
        decay: the per-layer factor, in ``(0, 1]``.

    Returns:
        ``{path substring: factor}``.

    Example:

    >>> layerwise_lr_multipliers(2, 0.5)
    {'Embedding-': 0.125, 'Transformer-0-': 0.25, 'Transformer-1-': 0.5}
    """
    if not 0 < decay <= 1:
        raise OptimizerError(f"Layer-wise decay must be in (0, 1]; got {decay!r}.")
    if isinstance(model, int):
        num_layers = model
    else:
        indices = {
            int(match.group(1))
            for variable in model.trainable_variables
            if (match := _LAYER.search(_path(variable)))
        }
        if not indices:
            raise OptimizerError(
                f"Model {model.name!r} has no variables under layers named 'Transformer-<i>-...'"
                " (a shared-layer ALBERT has one block for every layer, so it has no per-layer "
                "rates); pass the number of layers for a kerasbert model, or build "
                "lr_multipliers by hand."
            )
        num_layers = max(indices) + 1
    if num_layers < 1:
        raise OptimizerError(f"The number of layers must be >= 1; got {num_layers!r}.")
    multipliers = {"Embedding-": decay ** (num_layers + 1)}
    for index in range(num_layers):
        multipliers[f"Transformer-{index}-"] = decay ** (num_layers - index)
    return multipliers


# -- exponential moving average ---------------------------------------------------------------


def _ema_step(averages, values, momentum):
    return [a * momentum + ops.cast(w, a.dtype) * (1 - momentum) for a, w in zip(averages, values)]


_ema_step_compiled = None


def _ema_update(averages, values, momentum):
    """One EMA step over lists of arrays, compiled once per structure on JAX."""
    global _ema_step_compiled
    if keras.backend.backend() != "jax":
        return _ema_step(averages, values, momentum)
    if _ema_step_compiled is None:
        import jax

        # Donating the old averages keeps one copy on accelerators (CPU cannot donate).
        donate = () if jax.default_backend() == "cpu" else (0,)
        _ema_step_compiled = jax.jit(_ema_step, donate_argnums=donate)
    return _ema_step_compiled(averages, values, momentum)


class ExponentialMovingAverage(keras.callbacks.Callback):
    """Keeps an exponential moving average of the model's trainable weights during ``fit``.

    After every training batch, ``average = momentum * average + (1 - momentum) * weights``,
    starting from zeros; :meth:`apply_ema_weights` divides by ``1 - momentum ** steps`` (bias
    correction) as bert4keras's EMA optimizer does. Evaluate or save with the averaged
    weights between :meth:`apply_ema_weights` and :meth:`reset_old_weights`, e.g. in another
    callback's ``on_epoch_end`` (list this callback first) or after ``fit``. On JAX the update
    is one compiled call on device per step. The average carries over across ``fit`` calls;
    :meth:`reset` starts it again. With ``steps_per_execution > 1`` it is updated once per
    execution.

    Args:
        momentum: the EMA momentum (bert4keras's default 0.999).

    Example:

    >>> import keras, numpy as np
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> ema = ExponentialMovingAverage(momentum=0.9)
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=4, verbose=0,
    ...               callbacks=[ema])
    >>> ema.steps
    2
    >>> ema.apply_ema_weights()  # the model now holds the averaged weights
    >>> ema.reset_old_weights()  # and now its trained weights again
    """

    def __init__(self, momentum=0.999):
        super().__init__()
        if not 0 <= momentum < 1:
            raise OptimizerError(f"EMA momentum must be in [0, 1); got {momentum!r}.")
        self.momentum = float(momentum)
        self.reset()

    def reset(self):
        """Forget the average (the next training batch starts a new one)."""
        self.steps = 0
        self._averages = None
        self._old_weights = None

    def _variables(self):
        # On JAX the trainer keeps weights off the model during an epoch; sync them first.
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        return self.model.trainable_variables

    def on_train_batch_end(self, batch, logs=None):
        values = [v.value for v in self._variables()]
        if self._averages is None or len(self._averages) != len(values):
            self.steps = 0
            self._averages = [ops.zeros(ops.shape(v), "float32") for v in values]
        self._averages = _ema_update(self._averages, values, self.momentum)
        self.steps += 1

    def ema_weights(self, bias_correction=True):
        """The averaged weights as numpy arrays, in ``model.trainable_variables`` order.

        Args:
            bias_correction: divide by ``1 - momentum ** steps``.
        """
        if self._averages is None or self.steps == 0:
            raise OptimizerError(
                "The exponential moving average has no steps yet; train with the callback "
                "in model.fit(..., callbacks=[ema]) first."
            )
        scale = 1.0 - self.momentum**self.steps if bias_correction else 1.0
        return [ops.convert_to_numpy(a) / scale for a in self._averages]

    def apply_ema_weights(self, bias_correction=True):
        """Back up the model's weights, then give the model the averaged weights.

        Args:
            bias_correction: divide the average by ``1 - momentum ** steps``.
        """
        averages = self.ema_weights(bias_correction)
        variables = self._variables()
        self._old_weights = [ops.convert_to_numpy(v) for v in variables]
        for variable, value in zip(variables, averages):
            variable.assign(value.astype(variable.dtype))

    def reset_old_weights(self):
        """Give the model back the weights :meth:`apply_ema_weights` backed up."""
        if self._old_weights is None:
            raise OptimizerError("reset_old_weights() needs apply_ema_weights() first.")
        for variable, value in zip(self._variables(), self._old_weights):
            variable.assign(value)


# -- bert4keras's extend_with_* ---------------------------------------------------------------


def _check_base(base, function):
    if not (isinstance(base, type) and issubclass(base, keras.optimizers.Optimizer)):
        raise OptimizerError(
            f"{function}() takes a Keras 3 optimizer class such as keras.optimizers.Adam or "
            f"kerasbert.optimizers.Adam; got {base!r}."
        )


def _extended(base, function, suffix, name, namespace):
    """A subclass of ``base`` (with the per-variable mixin), registered like bert4keras's."""
    _check_base(base, function)
    bases = (base,) if issubclass(base, _Extensions) else (_Extensions, base)
    name = name or f"{base.__name__}{suffix}"
    cls = type(name, bases, dict(namespace, __module__=__name__, __qualname__=name))
    cls.__doc__ = f"{base.__name__} extended by kerasbert.optimizers.{function}()."
    keras.saving.get_custom_objects()[name] = cls
    return cls


def _learning_rate_argument(cls, args, kwargs):
    """Pop the learning rate from a constructor call, or the class's default."""
    if args:
        return args[0], args[1:]
    if "learning_rate" in kwargs:
        return kwargs.pop("learning_rate"), args
    for klass in cls.__mro__:
        parameter = inspect.signature(klass.__init__).parameters.get("learning_rate")
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default, args
    return 0.001, args


def extend_with_weight_decay(BaseOptimizer, name=None):
    """bert4keras's ``extend_with_weight_decay``: an optimizer class with decoupled decay.

    The class takes ``weight_decay_rate`` (default 0.01, Keras's ``weight_decay``) and
    ``exclude_from_weight_decay`` (regexes searched in variable paths, default none).
    kerasbert's own form is ``AdamW`` or any optimizer's ``weight_decay`` argument.

    Args:
        BaseOptimizer: a Keras 3 optimizer class.
        name: the class name (registered in Keras's custom objects).

    Example:

    >>> AdamWD = extend_with_weight_decay(Adam, name="AdamWD")
    >>> AdamWD(weight_decay_rate=0.01, exclude_from_weight_decay=["Norm", "bias"]).weight_decay
    0.01
    """

    def __init__(self, *args, **kwargs):
        if "weight_decay_rate" in kwargs:
            kwargs["weight_decay"] = kwargs.pop("weight_decay_rate")
        elif kwargs.get("weight_decay") is None:
            kwargs["weight_decay"] = 0.01
        super(cls, self).__init__(*args, **kwargs)

    cls = _extended(
        BaseOptimizer, "extend_with_weight_decay", "WithWeightDecay", name, {"__init__": __init__}
    )
    return cls


def extend_with_piecewise_linear_lr(BaseOptimizer, name=None):
    """bert4keras's ``extend_with_piecewise_linear_lr``: a class taking ``lr_schedule``.

    ``lr_schedule={step: multiplier}`` turns the ``learning_rate`` argument into
    ``PiecewiseLinearSchedule(lr_schedule, learning_rate)``; without it the learning rate
    is constant (bert4keras's default ``{0: 1}``).

    Args:
        BaseOptimizer: a Keras 3 optimizer class.
        name: the class name (registered in Keras's custom objects).

    Example:

    >>> AdamLR = extend_with_piecewise_linear_lr(Adam, name="AdamLR")
    >>> optimizer = AdamLR(learning_rate=1e-3, lr_schedule={1000: 1, 2000: 0.1})
    >>> round(float(optimizer.learning_rate), 6)  # step 0 of the warmup
    0.0
    """

    def __init__(self, *args, lr_schedule=None, **kwargs):
        if lr_schedule is not None:
            learning_rate, args = _learning_rate_argument(cls, args, kwargs)
            if callable(learning_rate):
                raise OptimizerError(
                    "lr_schedule multiplies a float learning_rate; got the schedule "
                    f"{learning_rate!r} as well. Give one or the other."
                )
            kwargs["learning_rate"] = PiecewiseLinearSchedule(lr_schedule, learning_rate)
        super(cls, self).__init__(*args, **kwargs)

    cls = _extended(
        BaseOptimizer,
        "extend_with_piecewise_linear_lr",
        "WithPiecewiseLinearLR",
        name,
        {"__init__": __init__},
    )
    return cls


def extend_with_gradient_accumulation(BaseOptimizer, name=None):
    """bert4keras's ``extend_with_gradient_accumulation``: ``grad_accum_steps`` (default 2).

    It is Keras's ``gradient_accumulation_steps``: gradients of ``k`` batches are averaged
    and applied once, so ``k`` batches of ``b`` train like one batch of ``k * b``.

    Args:
        BaseOptimizer: a Keras 3 optimizer class.
        name: the class name (registered in Keras's custom objects).

    Example:

    >>> AdamGA = extend_with_gradient_accumulation(Adam, name="AdamGA")
    >>> AdamGA(grad_accum_steps=4).gradient_accumulation_steps
    4
    """

    def __init__(self, *args, **kwargs):
        if "grad_accum_steps" in kwargs:
            kwargs["gradient_accumulation_steps"] = kwargs.pop("grad_accum_steps")
        elif kwargs.get("gradient_accumulation_steps") is None:
            kwargs["gradient_accumulation_steps"] = 2
        super(cls, self).__init__(*args, **kwargs)

    cls = _extended(
        BaseOptimizer,
        "extend_with_gradient_accumulation",
        "WithGradientAccumulation",
        name,
        {"__init__": __init__},
    )
    return cls


def extend_with_layer_adaptation(BaseOptimizer, name=None):
    """bert4keras's ``extend_with_layer_adaptation`` (LAMB's trust ratio on any optimizer).

    Each variable's step (weight decay included) is rescaled by ``|w| / |step / lr|``
    (1 where either norm is 0); ``exclude_from_layer_adaptation`` (regexes of variable
    paths) opts variables out. ``extend_with_layer_adaptation(extend_with_weight_decay(Adam))``
    is LAMB; ``keras.optimizers.Lamb`` is Keras's own LAMB (its weight decay sits outside
    the ratio).

    Args:
        BaseOptimizer: a Keras 3 optimizer class.
        name: the class name (registered in Keras's custom objects).

    Example:

    >>> import numpy as np
    >>> SGDLA = extend_with_layer_adaptation(keras.optimizers.SGD, name="SGDLA")
    >>> w = keras.Variable(np.array([3.0, 4.0], "float32"))
    >>> SGDLA(learning_rate=0.1).apply([np.array([1.0, 0.0], "float32")], [w])
    >>> keras.ops.convert_to_numpy(w)  # step of norm lr * |w| = 0.5
    array([2.5, 4. ], dtype=float32)
    """

    def __init__(self, *args, **kwargs):
        kwargs["layer_adaptation"] = True
        super(cls, self).__init__(*args, **kwargs)

    cls = _extended(
        BaseOptimizer,
        "extend_with_layer_adaptation",
        "WithLayerAdaptation",
        name,
        {"__init__": __init__},
    )
    return cls


def extend_with_lazy_optimization(BaseOptimizer, name=None):
    """bert4keras's ``extend_with_lazy_optimization``: ``include_in_lazy_optimization``.

    Variables whose path matches one of the regexes (typically ``["Embedding-Token"]``) keep
    the rows whose gradient is all zero (tokens absent from the batch) unchanged; the
    optimizer's moments still update, as in bert4keras.

    Args:
        BaseOptimizer: a Keras 3 optimizer class.
        name: the class name (registered in Keras's custom objects).

    Example:

    >>> AdamLO = extend_with_lazy_optimization(Adam, name="AdamLO")
    >>> AdamLO(include_in_lazy_optimization=["Embedding-Token"]).lazy_patterns
    ('Embedding-Token',)
    """
    cls = _extended(
        BaseOptimizer, "extend_with_lazy_optimization", "WithLazyOptimization", name, {}
    )
    return cls


def extend_with_exponential_moving_average(BaseOptimizer, name=None):
    """bert4keras's ``extend_with_exponential_moving_average``: ``ema_momentum`` (0.999).

    Built on Keras's ``use_ema``: the average is kept in optimizer variables and updated
    inside the compiled train step. The class adds bert4keras's :meth:`apply_ema_weights` /
    :meth:`reset_old_weights`; unlike plain Keras it does not overwrite the model with the
    average when ``fit`` ends (bert4keras did not either). Keras's average starts at the
    first step's weights rather than at zero, so it needs no bias correction; the
    ``bias_correction`` argument is accepted and has nothing to do. On JAX, call these
    methods outside a training step (after ``fit`` or in ``on_epoch_end``), when the
    trainer has synced its state back to the model. :class:`ExponentialMovingAverage` is the
    same as a callback for any optimizer.

    Args:
        BaseOptimizer: a Keras 3 optimizer class.
        name: the class name (registered in Keras's custom objects).

    Example:

    >>> import numpy as np
    >>> SGDEMA = extend_with_exponential_moving_average(keras.optimizers.SGD, name="SGDEMA")
    >>> optimizer, w = SGDEMA(learning_rate=1.0, ema_momentum=0.5), keras.Variable([0.0])
    >>> for _ in range(2):
    ...     optimizer.apply([np.array([-1.0], "float32")], [w])  # w: 1.0, then 2.0
    >>> optimizer.apply_ema_weights(); float(w[0])  # 0.5 * 1.0 + 0.5 * 2.0
    1.5
    >>> optimizer.reset_old_weights(); float(w[0])
    2.0
    """

    def __init__(self, *args, **kwargs):
        kwargs["use_ema"] = True
        kwargs.setdefault("ema_momentum", 0.999)
        super(cls, self).__init__(*args, **kwargs)

    def finalize_variable_values(self, var_list):
        return

    def apply_ema_weights(self, bias_correction=True):
        """Back up the model's weights, then give the model the averaged weights."""
        if not self.built:
            raise OptimizerError(
                "The optimizer has taken no step yet, so it has no weight average; train first."
            )
        variables = self._trainable_variables
        self._ema_backup = [ops.convert_to_numpy(v) for v in variables]
        super(cls, self).finalize_variable_values(variables)

    def reset_old_weights(self):
        """Give the model back the weights :meth:`apply_ema_weights` backed up."""
        backup = getattr(self, "_ema_backup", None)
        if backup is None:
            raise OptimizerError("reset_old_weights() needs apply_ema_weights() first.")
        for variable, value in zip(self._trainable_variables, backup):
            variable.assign(value)

    cls = _extended(
        BaseOptimizer,
        "extend_with_exponential_moving_average",
        "WithEMA",
        name,
        {
            "__init__": __init__,
            "finalize_variable_values": finalize_variable_values,
            "apply_ema_weights": apply_ema_weights,
            "reset_old_weights": reset_old_weights,
        },
    )
    return cls


def extend_with_parameter_wise_lr(BaseOptimizer, name=None):
    """bert4keras's ``extend_with_parameter_wise_lr``: ``paramwise_lr_schedule``.

    ``paramwise_lr_schedule={substring: factor}`` multiplies the learning rate of every
    variable whose path contains the substring (factors of several matches multiply); it is
    kerasbert's ``lr_multipliers``. :func:`layerwise_lr_multipliers` builds one for layer-wise
    decay.

    Args:
        BaseOptimizer: a Keras 3 optimizer class.
        name: the class name (registered in Keras's custom objects).

    Example:

    >>> SGDPW = extend_with_parameter_wise_lr(keras.optimizers.SGD, name="SGDPW")
    >>> SGDPW(paramwise_lr_schedule={"Embedding-": 0.1}).lr_multipliers
    (('Embedding-', 0.1),)
    """

    def __init__(self, *args, **kwargs):
        if "paramwise_lr_schedule" in kwargs:
            if kwargs.get("lr_multipliers"):
                raise OptimizerError("Give paramwise_lr_schedule or lr_multipliers, not both.")
            kwargs["lr_multipliers"] = kwargs.pop("paramwise_lr_schedule")
        super(cls, self).__init__(*args, **kwargs)

    cls = _extended(
        BaseOptimizer,
        "extend_with_parameter_wise_lr",
        "WithParameterWiseLR",
        name,
        {"__init__": __init__},
    )
    return cls


def extend_with_lookahead(BaseOptimizer, name=None):
    """Not provided: raises :class:`OptimizerError` (see ``docs/optimizers.md``).

    Args:
        BaseOptimizer: unused.
        name: unused.

    Example:

    >>> extend_with_lookahead(Adam)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kerasbert.optimizers.OptimizerError: extend_with_lookahead is not provided...
    """
    raise OptimizerError(
        "extend_with_lookahead is not provided by kerasbert: Keras 3 has no Lookahead, and "
        "bert4keras's version starts its slow weights at zero, so its first synchronisation "
        "scales the weights by slow_step_size. Use the base optimizer alone (for BERT "
        "fine-tuning, kerasbert.optimizers.AdamW with PiecewiseLinearSchedule), optionally "
        "with kerasbert.optimizers.ExponentialMovingAverage for smoothed weights."
    )


def _not_provided(bert4keras_name, replacement):
    def unavailable(*args, **kwargs):
        raise OptimizerError(
            f"bert4keras's {bert4keras_name} is not provided by kerasbert; use {replacement}."
        )

    unavailable.__name__ = unavailable.__qualname__ = bert4keras_name
    unavailable.__doc__ = (
        f"Not provided: raises :class:`OptimizerError` naming {replacement}.\n\n"
        "Args:\n    *args: unused.\n    **kwargs: unused.\n\n"
        "Example:\n\n"
        f">>> {bert4keras_name}()  # doctest: +ELLIPSIS\n"
        "Traceback (most recent call last):\n...\n"
        f"kerasbert.optimizers.OptimizerError: bert4keras's {bert4keras_name} is not provided...\n"
    )
    return unavailable


_ADAFACTOR = (
    "keras.optimizers.Adafactor (same factored second moment, update clipping and "
    "parameter scaling; it has no beta1 momentum, no min_dim_size_to_factor, and its "
    "relative step is min(learning_rate, 1/sqrt(step)))"
)
AdaFactor = _not_provided("AdaFactor", _ADAFACTOR)
AdaFactorV1 = _not_provided("AdaFactorV1", _ADAFACTOR)
AdaFactorV2 = _not_provided("AdaFactorV2", _ADAFACTOR)
AdaFactorBase = _not_provided("AdaFactorBase", _ADAFACTOR)


def export_to_custom_objects(extend_with):
    """bert4keras's decorator: register the class an ``extend_with_*`` function returns.

    kerasbert's ``extend_with_*`` functions register their classes already; this wraps a
    user's own extender the same way (the wrapped function gains a ``name`` argument).

    Args:
        extend_with: a function taking an optimizer class and returning a new class.

    Example:

    >>> def extend_with_nothing(BaseOptimizer):
    ...     return type("Plain", (BaseOptimizer,), {})
    >>> export_to_custom_objects(extend_with_nothing)(Adam, name="PlainAdam").__name__
    'PlainAdam'
    """

    def registered(BaseOptimizer, name=None):
        cls = extend_with(BaseOptimizer)
        if isinstance(name, str):
            cls.__name__ = cls.__qualname__ = name
        keras.saving.get_custom_objects()[cls.__name__] = cls
        return cls

    return registered


# bert4keras's tf.keras variants are the same functions here.
extend_with_weight_decay_v2 = extend_with_weight_decay
extend_with_layer_adaptation_v2 = extend_with_layer_adaptation
extend_with_piecewise_linear_lr_v2 = extend_with_piecewise_linear_lr
extend_with_gradient_accumulation_v2 = extend_with_gradient_accumulation
extend_with_lookahead_v2 = extend_with_lookahead
extend_with_lazy_optimization_v2 = extend_with_lazy_optimization
extend_with_exponential_moving_average_v2 = extend_with_exponential_moving_average
extend_with_parameter_wise_lr_v2 = extend_with_parameter_wise_lr

__all__ = [
    "AdaFactor",
    "AdaFactorBase",
    "AdaFactorV1",
    "AdaFactorV2",
    "Adam",
    "AdamW",
    "ExponentialMovingAverage",
    "Lion",
    "LionV2",
    "OptimizerError",
    "PiecewiseLinearSchedule",
    "export_to_custom_objects",
    "extend_with_exponential_moving_average",
    "extend_with_exponential_moving_average_v2",
    "extend_with_gradient_accumulation",
    "extend_with_gradient_accumulation_v2",
    "extend_with_layer_adaptation",
    "extend_with_layer_adaptation_v2",
    "extend_with_lazy_optimization",
    "extend_with_lazy_optimization_v2",
    "extend_with_lookahead",
    "extend_with_lookahead_v2",
    "extend_with_parameter_wise_lr",
    "extend_with_parameter_wise_lr_v2",
    "extend_with_piecewise_linear_lr",
    "extend_with_piecewise_linear_lr_v2",
    "extend_with_weight_decay",
    "extend_with_weight_decay_v2",
    "layerwise_lr_multipliers",
]
