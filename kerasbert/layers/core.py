"""Small utility layers used by the model heads."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasbert")
class BiasAdd(keras.layers.Layer):
    """Adds a learned bias vector over the last axis (the ``MLM-Bias`` layer).

    Example:

    >>> import numpy as np
    >>> BiasAdd()(np.zeros((2, 3), "float32")).shape
    (2, 3)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs):
        return inputs + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class SequenceReduction(keras.layers.Layer):
    """Base of the layers that reduce ``(batch, seq_len, ...)`` to ``(batch, ...)``: the
    sequence axis and its mask are gone from the output."""

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])


@keras.saving.register_keras_serializable(package="kerasbert")
class TokenSlice(SequenceReduction):
    """Takes the vector at one position of a sequence (the ``Pooler`` layer takes [CLS]).

    Args:
        index: the position to take; negative counts from the end.

    Example:

    >>> import numpy as np
    >>> TokenSlice(0)(np.zeros((2, 5, 4), "float32")).shape
    (2, 4)
    """

    def __init__(self, index=0, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, inputs):
        return inputs[:, self.index]

    def get_config(self):
        config = super().get_config()
        config.update({"index": self.index})
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class Add(keras.layers.Add):
    """``keras.layers.Add`` whose output mask is the AND of the inputs' masks that exist.

    Keras 3's ``Add`` drops the mask when any input has none (token + segment
    embeddings: only the token embedding knows where the padding is); this keeps it.

    Example:

    >>> import numpy as np
    >>> Add()([np.ones((1, 2)), np.ones((1, 2))]).shape
    (1, 2)
    """

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        masks = [m for m in mask if m is not None]
        if not masks:
            return None
        output_mask = masks[0]
        for m in masks[1:]:
            output_mask = ops.logical_and(output_mask, m)
        return output_mask
