"""The position-wise feed-forward block of a transformer layer."""

import keras

from kerasbert.layers.dense import Dense
from kerasbert.ops import get_activation


@keras.saving.register_keras_serializable(package="kerasbert")
class FeedForward(keras.layers.Layer):
    """``Dense(units, activation)`` followed by ``Dense(input_dim)``.

    The sublayers are named ``intermediate`` and ``output``, matching the checkpoint names
    ``intermediate/dense`` and ``output/dense``.

    A list of activations makes a gated feed-forward (bert4keras's ``FeedForward`` with
    several activations; T5 v1.1's "gated-gelu"): one inner projection per activation,
    ``intermediate``, ``intermediate_1``, ..., whose activated outputs are multiplied
    elementwise before ``output``. T5 v1.1 is ``["gelu_tanh", "linear"]``:
    ``gelu(x W_0) * (x W_1)``.

    Args:
        units: inner (intermediate) size.
        activation: activation of the inner layer: ``"gelu_erf"``, ``"gelu_tanh"``,
            ``"relu"``, ... (see ``kerasbert.ops.get_activation``), or a list of them
            (gated).
        use_bias: whether the projections have biases.
        kernel_initializer: initializer of the kernels.

    Example:

    >>> import numpy as np
    >>> FeedForward(16, activation="gelu_tanh")(np.zeros((2, 3, 4), "float32")).shape
    (2, 3, 4)
    >>> gated = FeedForward(16, activation=["gelu_tanh", "linear"])
    >>> gated(np.zeros((2, 3, 4), "float32")).shape, [d.name for d in gated.inner_denses()]
    ((2, 3, 4), ['intermediate', 'intermediate_1'])
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
        activations = list(activation) if isinstance(activation, (list, tuple)) else [activation]
        if not activations:
            raise ValueError("FeedForward: activation must be a name or a non-empty list.")
        # One attribute per inner projection (not a list): Keras saves a layer's weights
        # under its attribute names, so plain feed-forwards keep the paths of files saved
        # before gating existed (.../feed_forward/intermediate_dense/vars/0).
        self.branches = len(activations)
        for index, name in enumerate(activations):
            dense = Dense(
                units,
                activation=get_activation(name),
                use_bias=use_bias,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name="intermediate" if index == 0 else f"intermediate_{index}",
            )
            setattr(self, "intermediate_dense" if index == 0 else f"intermediate_dense_{index}",
                    dense)  # fmt: skip
        self.output_dense = None

    def inner_denses(self):
        """The inner projections, ``intermediate`` first (one unless gated). A method, not a
        property: Keras saves whatever layers a layer's attributes hold, under their names."""
        return [self.intermediate_dense] + [
            getattr(self, f"intermediate_dense_{index}") for index in range(1, self.branches)
        ]

    def build(self, input_shape):
        for dense in self.inner_denses():
            dense.build(input_shape)
        self.output_dense = Dense(
            input_shape[-1],
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="output",
        )
        self.output_dense.build(tuple(input_shape[:-1]) + (self.units,))

    def call(self, inputs):
        x = self.intermediate_dense(inputs)
        for dense in self.inner_denses()[1:]:
            x = x * dense(inputs)
        return self.output_dense(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": (
                    list(self.activation)
                    if isinstance(self.activation, (list, tuple))
                    else self.activation
                ),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
