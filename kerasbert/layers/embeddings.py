"""Token embeddings (also the tied output projection) and learned position embeddings."""

import keras
from keras import ops

from kerasbert.layers.dense import mixed_matmul


@keras.saving.register_keras_serializable(package="kerasbert")
class Embedding(keras.layers.Layer):
    """Token embedding that doubles as the tied output projection of an MLM head.

    ``layer(ids)`` looks rows up; ``layer(hidden, mode="dense")`` multiplies by the
    transposed table, giving logits over the vocabulary. With ``mask_zero=True`` id 0 is
    padding and the output carries a Keras mask (bert4keras's convention).

    Args:
        input_dim: vocabulary size.
        output_dim: embedding size.
        embeddings_initializer: initializer of the table.
        mask_zero: whether id 0 is padding.

    Example:

    >>> import numpy as np
    >>> emb = Embedding(10, 4, mask_zero=True)
    >>> vectors = emb(np.array([[1, 2, 0]]))
    >>> emb(vectors, mode="dense").shape
    (1, 3, 10)
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        embeddings_initializer="uniform",
        mask_zero=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.mask_zero = mask_zero
        self.supports_masking = True

    def build(self, input_shape=None):
        # Mixed precision: the table is never autocast. Rows are gathered from the float32
        # table and then cast, so the gradient's scatter-add over every occurrence of a
        # token (or segment id) sums in float32; in the compute dtype it overflowed float16
        # under loss scaling. Casts to the compute dtype are explicit in call.
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            autocast=False,
        )

    def call(self, inputs, mode="embedding"):
        if mode == "dense":
            inputs = ops.cast(inputs, self.compute_dtype)
            kernel = ops.cast(self.embeddings, inputs.dtype)
            logits = mixed_matmul(inputs, kernel, transpose_kernel=True)
            return ops.cast(logits, inputs.dtype)
        if mode != "embedding":
            raise ValueError(f"mode must be 'embedding' or 'dense', got {mode!r}")
        rows = ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)
        return ops.cast(rows, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        # Float inputs mean the tied "dense" mode: the hidden states' mask passes through.
        if "float" in keras.backend.standardize_dtype(inputs.dtype):
            return mask
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class PositionEmbedding(keras.layers.Layer):
    """Learned absolute position embedding, added to (or multiplied with) its input.

    Args:
        input_dim: the maximum number of positions.
        output_dim: embedding size; must equal the input's last dimension.
        merge_mode: ``"add"`` (BERT), ``"mul"``, or ``"zero"`` (return the embeddings,
            broadcast over the batch).
        embeddings_initializer: initializer of the table.

    Example:

    >>> import numpy as np
    >>> PositionEmbedding(16, 4)(np.zeros((2, 5, 4), "float32")).shape
    (2, 5, 4)
    """

    def __init__(
        self, input_dim, output_dim, merge_mode="add", embeddings_initializer="zeros", **kwargs
    ):
        super().__init__(**kwargs)
        if merge_mode not in ("add", "mul", "zero"):
            raise ValueError(f"merge_mode must be 'add', 'mul' or 'zero', got {merge_mode!r}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.merge_mode = merge_mode
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.supports_masking = True

    def build(self, input_shape=None):
        # Mixed precision: never autocast; the merge runs in float32, so the table's
        # gradient (a sum over the batch) stays float32. The output has the compute dtype.
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            autocast=False,
        )

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        positions = ops.cast(self.embeddings[None, :length], "float32")
        if self.merge_mode == "add":
            x = ops.cast(inputs, "float32") + positions
        elif self.merge_mode == "mul":
            x = ops.cast(inputs, "float32") * (positions + 1.0)
        else:
            x = ops.broadcast_to(positions, ops.shape(inputs)[:2] + (self.output_dim,))
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2]) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "merge_mode": self.merge_mode,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config
