"""A layer that adds a loss computed from its inputs (bert4keras's ``Loss``)."""

import keras
from keras import ops

from kerasbert.errors import ConfigError


def _to_float32(values):
    def cast(x):
        if x is None or not hasattr(x, "dtype"):
            return x
        dtype = keras.backend.standardize_dtype(x.dtype)
        if "float" in dtype and dtype != "float64":
            return ops.cast(x, "float32")
        return x

    return keras.tree.map_structure(cast, values)


@keras.saving.register_keras_serializable(package="kerasbert")
class Loss(keras.layers.Layer):
    """Base class of layers that compute a training loss inside the model.

    Subclasses implement :meth:`compute_loss`; ``call`` adds its result with
    ``self.add_loss`` and passes (some of) its inputs through, so the loss can use labels
    fed as model inputs and anything else in the graph. Compile such a model with just an
    optimizer, ``model.compile(optimizer)``, and fit it without targets; Keras sums the
    added losses into the training loss. A non-scalar result is averaged. Under a mixed
    precision policy :meth:`compute_loss` receives floating inputs as float32, and the
    added loss is float32.

    Args:
        output_axis: what ``call`` returns: ``None`` the inputs unchanged, an int
            ``inputs[output_axis]``, a list of ints the list of those inputs. Masks follow.

    Example:

    >>> import numpy as np
    >>> class MeanSquare(Loss):
    ...     def compute_loss(self, inputs, mask=None):
    ...         return keras.ops.mean(keras.ops.square(inputs[0] - inputs[1]))
    >>> y_pred, y_true = np.ones((2, 3), "float32"), np.zeros((2, 3), "float32")
    >>> MeanSquare(output_axis=0)([y_pred, y_true]).shape
    (2, 3)
    """

    def __init__(self, output_axis=None, **kwargs):
        super().__init__(**kwargs)
        if not (output_axis is None or isinstance(output_axis, (int, list, tuple))):
            raise ConfigError(
                f"Loss output_axis must be None, an int or a list of ints; got {output_axis!r}."
            )
        self.output_axis = list(output_axis) if isinstance(output_axis, tuple) else output_axis
        self.supports_masking = True

    def compute_loss(self, inputs, mask=None):
        """The loss of a batch: a scalar tensor (anything else is averaged).

        Args:
            inputs: the layer's inputs, as passed to ``call``.
            mask: their Keras mask(s), or None.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss().")

    def call(self, inputs, mask=None):
        # Mixed precision: Keras cast the floating inputs to the compute dtype on the way
        # in; the loss sees them in float32 (integer and boolean inputs are left alone).
        # The inputs passed through keep the compute dtype.
        loss = ops.cast(self.compute_loss(_to_float32(inputs), mask), "float32")
        if len(loss.shape):
            loss = ops.mean(loss)
        self.add_loss(loss)
        return self._select(inputs)

    def _select(self, values):
        if self.output_axis is None:
            return values
        if isinstance(self.output_axis, list):
            return [values[i] for i in self.output_axis]
        return values[self.output_axis]

    def compute_output_shape(self, input_shape):
        return self._select(input_shape)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return self._select(mask)

    def get_config(self):
        config = super().get_config()
        config.update({"output_axis": self.output_axis})
        return config
