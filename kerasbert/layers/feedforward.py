"""The position-wise feed-forward block of a transformer layer."""

import keras

from kerasbert.layers.dense import Dense
from kerasbert.ops import get_activation


@keras.saving.register_keras_serializable(package="kerasbert")
class FeedForward(keras.layers.Layer):
    """``Dense(units, activation)`` followed by ``Dense(input_dim)``.

    The sublayers are named ``intermediate`` and ``output``, matching the checkpoint names
    ``intermediate/dense`` and ``output/dense``.

    Args:
        units: inner (intermediate) size.
        activation: activation of the inner layer: ``"gelu_erf"``, ``"gelu_tanh"``,
            ``"relu"``, ... (see ``kerasbert.ops.get_activation``).
        use_bias: whether both projections have biases.
        kernel_initializer: initializer of both kernels.

    Example:

    >>> import numpy as np
    >>> FeedForward(16, activation="gelu_tanh")(np.zeros((2, 3, 4), "float32")).shape
    (2, 3, 4)
    """

    def __init__(
        self,
        units,
        activation="gelu_erf",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.activation = activation
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True
        self.intermediate_dense = Dense(
            units,
            activation=get_activation(activation),
            use_bias=use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="intermediate",
        )
        self.output_dense = None

    def build(self, input_shape):
        self.intermediate_dense.build(input_shape)
        self.output_dense = Dense(
            input_shape[-1],
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="output",
        )
        self.output_dense.build(tuple(input_shape[:-1]) + (self.units,))

    def call(self, inputs):
        return self.output_dense(self.intermediate_dense(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": self.activation,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
