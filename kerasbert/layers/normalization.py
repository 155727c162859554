"""Layer normalization with the epsilon taken from the model config, optionally conditional."""

import keras
from keras import ops

from kerasbert.errors import ConfigError
from kerasbert.ops import get_activation


@keras.saving.register_keras_serializable(package="kerasbert")
class LayerNormalization(keras.layers.Layer):
    """Layer normalization over the last axis, computed in float32; optionally conditional.

    Weights are named ``gamma`` and ``beta`` like the checkpoints' ``LayerNorm/gamma``.

    With ``conditional=True`` (bert4keras's conditional layer norm) the inputs are
    ``[x, cond]``, ``cond`` of shape ``(batch, cond_dim)`` or ``(batch, ..., cond_dim)``
    broadcastable to ``x``. ``cond`` goes through an optional bias-free ``hidden_dense``
    (``hidden_units`` wide, ``hidden_activation``), then the bias-free, zero-initialized
    ``gamma_dense`` and ``beta_dense`` whose outputs are added to ``gamma`` and ``beta``:
    ``y = x_hat * (gamma + cond W_g) + (beta + cond W_b)``. At initialization the layer is
    therefore a plain layer norm; ``gamma_dense`` exists only with ``scale``, ``beta_dense``
    only with ``center``. The output keeps ``x``'s mask.

    Args:
        epsilon: added to the variance; BERT uses 1e-12 (``layer_norm_eps`` in configs).
        zero_mean: subtract the mean first (a layer norm); False divides by the root mean
            square only (bert4keras's ``zero_mean=False``, RoFormer v2's normalization).
        center: learn ``beta`` (and, when conditional, ``beta_dense``).
        scale: learn ``gamma`` (and, when conditional, ``gamma_dense``).
        conditional: take ``[x, cond]`` and shift ``gamma`` / ``beta`` by projections of
            ``cond``.
        hidden_units: width of the hidden projection of ``cond``; None for none.
        hidden_activation: activation of that projection (a name such as ``"relu"``,
            ``"gelu_tanh"``, ``"linear"``, or a registered callable).
        hidden_initializer: initializer of the hidden projection's kernel.

    Example:

    >>> import numpy as np
    >>> y = LayerNormalization(epsilon=1e-12)(np.array([[1.0, 2.0, 3.0]], "float32"))
    >>> [round(v, 4) for v in keras.ops.convert_to_numpy(y)[0].tolist()]
    [-1.2247, 0.0, 1.2247]
    >>> cln = LayerNormalization(conditional=True, hidden_units=4)
    >>> cln([np.ones((2, 5, 3), "float32"), np.ones((2, 6), "float32")]).shape
    (2, 5, 3)
    """

    def __init__(
        self,
        epsilon=1e-12,
        zero_mean=True,
        center=True,
        scale=True,
        conditional=False,
        hidden_units=None,
        hidden_activation="linear",
        hidden_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.zero_mean = zero_mean
        self.center = center
        self.scale = scale
        self.conditional = conditional
        self.hidden_units = hidden_units
        if isinstance(hidden_activation, dict):
            hidden_activation = keras.saving.deserialize_keras_object(hidden_activation)
        self.hidden_activation = hidden_activation
        self.hidden_initializer = keras.initializers.get(hidden_initializer)
        self.supports_masking = True
        self.hidden_dense = self.gamma_dense = self.beta_dense = None
        if conditional and hidden_units is not None:
            self.hidden_dense = keras.layers.Dense(
                hidden_units,
                activation=get_activation(hidden_activation),
                use_bias=False,
                kernel_initializer=self.hidden_initializer,
                dtype=self.dtype_policy,
                name="hidden_dense",
            )

    def _zero_dense(self, units, name, cond_shape):
        dense = keras.layers.Dense(
            units, use_bias=False, kernel_initializer="zeros", dtype=self.dtype_policy, name=name
        )
        dense.build(cond_shape)
        return dense

    def _split(self, inputs):
        if not self.conditional:
            return inputs, None
        # A list of two tensors (call) or of two shapes (build), never one shape.
        if (
            not isinstance(inputs, (list, tuple))
            or len(inputs) != 2
            or any(v is None or isinstance(v, int) for v in inputs)
        ):
            raise ConfigError(
                f"Layer {self.name!r} is a conditional LayerNormalization: call it on "
                "[x, cond], two tensors."
            )
        return inputs[0], inputs[1]

    def build(self, input_shape):
        x_shape, cond_shape = self._split(input_shape)
        dim = x_shape[-1]
        # Mixed precision: gamma and beta are never autocast, so they enter the float32
        # computation at full precision and their gradients (sums over every token) stay
        # float32 instead of passing through float16.
        if self.scale:
            self.gamma = self.add_weight(
                name="gamma", shape=(dim,), initializer="ones", autocast=False
            )
        if self.center:
            self.beta = self.add_weight(
                name="beta", shape=(dim,), initializer="zeros", autocast=False
            )
        if self.conditional:
            if self.hidden_dense is not None:
                self.hidden_dense.build(cond_shape)
                cond_shape = tuple(cond_shape[:-1]) + (self.hidden_units,)
            if self.scale:
                self.gamma_dense = self._zero_dense(dim, "gamma_dense", cond_shape)
            if self.center:
                self.beta_dense = self._zero_dense(dim, "beta_dense", cond_shape)

    def call(self, inputs):
        if not self.conditional and self.zero_mean:
            # Keras' op normalizes in at least float32 with one fused multiply-add, which
            # XLA compiles better than the textbook (x - mean) / std sequence.
            x = ops.layer_normalization(
                ops.cast(inputs, "float32"),
                gamma=ops.cast(self.gamma, "float32") if self.scale else None,
                beta=ops.cast(self.beta, "float32") if self.center else None,
                axis=-1,
                epsilon=self.epsilon,
            )
            return ops.cast(x, self.compute_dtype)

        x, cond = self._split(inputs)
        x = ops.cast(x, "float32")
        if self.zero_mean:
            x = x - ops.mean(x, axis=-1, keepdims=True)
        x = x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)
        if cond is not None:
            if self.hidden_dense is not None:
                cond = self.hidden_dense(cond)
            while len(cond.shape) < len(x.shape):
                cond = ops.expand_dims(cond, 1)
        if self.scale:
            gamma = ops.cast(self.gamma, "float32")
            if cond is not None:
                gamma = gamma + ops.cast(self.gamma_dense(cond), "float32")
            x = x * gamma
        if self.center:
            beta = ops.cast(self.beta, "float32")
            if cond is not None:
                beta = beta + ops.cast(self.beta_dense(cond), "float32")
            x = x + beta
        return ops.cast(x, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        if self.conditional and mask is not None:
            return mask[0]
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(self._split(input_shape)[0])

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "center": self.center, "scale": self.scale})
        if not self.zero_mean:
            config["zero_mean"] = False
        if self.conditional:
            activation = self.hidden_activation
            if callable(activation):
                activation = keras.saving.serialize_keras_object(activation)
            config.update(
                {
                    "conditional": True,
                    "hidden_units": self.hidden_units,
                    "hidden_activation": activation,
                    "hidden_initializer": keras.initializers.serialize(self.hidden_initializer),
                }
            )
        return config
