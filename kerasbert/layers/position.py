"""Fixed sin/cos position encodings and rotary position embeddings (RoPE).

The encodings are functions of the positions only: no weights, nothing to train or load.
Channel ``2i`` holds ``sin(p * base**(-2i/dim))`` and channel ``2i + 1`` the matching cosine
(interleaved, bert4keras's layout); RoPE rotates each channel pair ``(2i, 2i + 1)`` of a
query or key by the angle of its position.
"""

import keras
from keras import ops

from kerasbert.errors import ConfigError
from kerasbert.ops import sinusoidal_embeddings

_MERGE_MODES = ("add", "mul", "zero", "concat")


@keras.saving.register_keras_serializable(package="kerasbert")
class SinusoidalPositionEmbedding(keras.layers.Layer):
    """Fixed sin/cos position encodings merged into the input (bert4keras semantics).

    Positions are ``0 .. seq_len - 1`` unless ``custom_position_ids``, in which case the
    inputs are ``[x, position_ids]`` with ``position_ids`` of shape ``(batch or 1, seq_len)``.
    The layer has no weights; the input's Keras mask passes through.

    Args:
        output_dim: size of the encodings (even). For ``"add"`` and ``"mul"`` it must equal
            the input's last dimension.
        merge_mode: ``"add"`` (``x + e``), ``"mul"`` (``x * (e + 1)``), ``"zero"`` (just
            ``e``, broadcast over the batch) or ``"concat"`` (``[x, e]`` on the last axis).
        custom_position_ids: take the positions from a second input.

    Example:

    >>> import numpy as np
    >>> layer = SinusoidalPositionEmbedding(4, merge_mode="zero")
    >>> e = keras.ops.convert_to_numpy(layer(np.zeros((2, 3, 8), "float32")))
    >>> e.shape, e[0, 0].tolist()
    ((2, 3, 4), [0.0, 1.0, 0.0, 1.0])
    """

    def __init__(self, output_dim, merge_mode="add", custom_position_ids=False, **kwargs):
        super().__init__(**kwargs)
        if merge_mode not in _MERGE_MODES:
            raise ConfigError(
                f"SinusoidalPositionEmbedding merge_mode must be one of {_MERGE_MODES}, "
                f"got {merge_mode!r}."
            )
        if output_dim % 2:
            raise ConfigError(
                f"SinusoidalPositionEmbedding needs an even output_dim; got {output_dim}."
            )
        self.output_dim = output_dim
        self.merge_mode = merge_mode
        self.custom_position_ids = custom_position_ids
        self.supports_masking = True

    def call(self, inputs):
        if self.custom_position_ids:
            x, positions = inputs
        else:
            x = inputs
            positions = ops.arange(ops.shape(x)[1])[None]
        embeddings = ops.cast(sinusoidal_embeddings(positions, self.output_dim), x.dtype)
        if self.merge_mode == "add":
            return x + embeddings
        if self.merge_mode == "mul":
            return x * (embeddings + 1.0)
        shape = tuple(ops.shape(x)[:2]) + (self.output_dim,)
        embeddings = ops.broadcast_to(embeddings, shape)
        if self.merge_mode == "zero":
            return embeddings
        return ops.concatenate([x, embeddings], axis=-1)

    def compute_mask(self, inputs, mask=None):
        if self.custom_position_ids and mask is not None:
            return mask[0]
        return mask

    def compute_output_shape(self, input_shape):
        if self.custom_position_ids:
            input_shape = input_shape[0]
        if self.merge_mode == "concat":
            last = None if input_shape[-1] is None else input_shape[-1] + self.output_dim
            return tuple(input_shape[:2]) + (last,)
        return tuple(input_shape[:2]) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_dim": self.output_dim,
                "merge_mode": self.merge_mode,
                "custom_position_ids": self.custom_position_ids,
            }
        )
        return config
