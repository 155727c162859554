"""bert4keras's ``Lion``: ``keras.optimizers.Lion`` with bert4keras's defaults and the
per-variable options of :class:`~kerasbert.optimizers.options._PerVariableOptions`."""

import keras

from kerasbert.optimizers.options import _PerVariableOptions


@keras.saving.register_keras_serializable(package="kerasbert")
class Lion(_PerVariableOptions, keras.optimizers.Lion):
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
