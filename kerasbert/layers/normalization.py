"""Layer normalization with the epsilon taken from the model config."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasbert")
class LayerNormalization(keras.layers.Layer):
    """Layer normalization over the last axis, computed in float32.

    Weights are named ``gamma`` and ``beta`` like the checkpoints' ``LayerNorm/gamma``.

    Args:
        epsilon: added to the variance; BERT uses 1e-12 (``layer_norm_eps`` in configs).
        center: learn ``beta``.
        scale: learn ``gamma``.

    Example:

    >>> import numpy as np
    >>> y = LayerNormalization(epsilon=1e-12)(np.array([[1.0, 2.0, 3.0]], "float32"))
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(y)[0].tolist()]
    [-1.2247, 0.0, 1.2247]
    """

    def __init__(self, epsilon=1e-12, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.supports_masking = True

    def build(self, input_shape):
        dim = input_shape[-1]
        if self.scale:
            self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")
        if self.center:
            self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")

    def call(self, inputs):
        # Keras' op normalizes in at least float32 with one fused multiply-add, which XLA
        # compiles better than the textbook (x - mean) / std sequence.
        x = ops.layer_normalization(
            ops.cast(inputs, "float32"),
            gamma=ops.cast(self.gamma, "float32") if self.scale else None,
            beta=ops.cast(self.beta, "float32") if self.center else None,
            axis=-1,
            epsilon=self.epsilon,
        )
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "center": self.center, "scale": self.scale})
        return config
