"""kerasbert's Adam optimizers: :class:`AdamW` for BERT fine-tuning and bert4keras's :class:`Adam`.

* :class:`AdamW`: ``keras.optimizers.AdamW`` whose weight decay skips LayerNorm weights and
  biases by default, matched on the variable path;
* :class:`Adam`: bert4keras's Adam update (epsilon after the bias correction, which is
  optional), on ``keras.optimizers.Adam``.

Both take the per-variable options of :class:`~kerasbert.optimizers.options._PerVariableOptions`.
"""

import keras
from keras import ops

from kerasbert.optimizers.options import _PerVariableOptions


@keras.saving.register_keras_serializable(package="kerasbert")
class AdamW(_PerVariableOptions, keras.optimizers.AdamW):
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
class Adam(_PerVariableOptions, _BertAdamRule):
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
