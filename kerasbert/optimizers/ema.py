"""An exponential moving average of a model's weights, as a callback for any optimizer.

:class:`ExponentialMovingAverage` keeps the average during ``fit`` with bert4keras's
``apply_ema_weights()`` / ``reset_old_weights()``; on JAX each update is one compiled call
(``_ema_update``). The optimizer form, bert4keras's ``extend_with_exponential_moving_average``,
is in :mod:`kerasbert.optimizers.bert4keras`.
"""

import keras
from keras import ops

from kerasbert.optimizers.errors import OptimizerError


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
