"""Linear-chain conditional random field head (bert4keras's ``ConditionalRandomField``).

The layer owns the label transition matrix; it leaves the emission scores of real positions
as they are and provides the negative log-likelihood and a token accuracy to pass to
``model.compile``. Decoding is done outside the graph with
:class:`kerasbert.snippets.ViterbiDecoder` and the layer's :attr:`trans`.

How padding reaches the loss
----------------------------
Keras 3 hands a loss only ``(y_true, y_pred)``, and under JAX the loss runs inside the jitted
train step, so a mask stashed on the layer during ``call`` would be a leaked tracer. Like
bert4keras, the layer therefore writes the mask into its output: where the Keras mask is
False, every emission score becomes ``-inf``. The losses and metrics read padding back from
that (a position is padding when all its scores are ``-inf``), and also from the labels: a
negative sparse label or an all-zero one-hot row marks padding too, for models that carry
no Keras mask. Both are pure functions of their arguments, so they trace and jit cleanly.
Padding may sit anywhere (after, before or inside a sequence): the path runs over the real
positions only, with a transition between each real position and the previous real one.
"""

import numbers

import keras
import numpy as np
from keras import ops

from kerasbert.errors import ConfigError, KerasBertError


@keras.saving.register_keras_serializable(package="kerasbert")
class ConditionalRandomField(keras.layers.Layer):
    """CRF over emission scores ``(batch, seq, num_labels)`` with a learned transition matrix.

    ``trans[i, j]`` is the score of label ``j`` following label ``i``. A path's score is the
    sum of its emission scores and transition scores over the real (non-padding) positions;
    ``sparse_loss`` / ``dense_loss`` return ``log Z - score(gold path)`` per sequence, with
    ``log Z`` from the forward algorithm (a ``keras.ops.scan`` over the sequence).

    The output is the input, except that positions the incoming Keras mask marks as padding
    hold ``-inf`` (see the module docstring: that is how the mask reaches the loss). The
    output carries no Keras mask, so Keras does not try to mask the per-sequence loss. It is
    float32 under any dtype policy, and the losses and metrics compute in float32.

    ``lr_multiplier`` scales the transitions' learning rate the bert4keras way: the variable
    stores ``trans / lr_multiplier`` and the layer uses ``stored * lr_multiplier``, so every
    gradient step on the stored value moves the transitions ``lr_multiplier`` times as far
    with Adam-like optimizers (``lr_multiplier**2`` times with plain SGD). ``get_weights`` /
    ``set_weights`` see the stored value; :attr:`trans` is the effective matrix.

    Args:
        lr_multiplier: learning-rate multiplier of the transitions (> 0; 1 = none).

    Example:

    >>> import numpy as np
    >>> crf = ConditionalRandomField()
    >>> emissions = np.zeros((1, 3, 2), "float32")
    >>> crf(emissions).shape
    (1, 3, 2)
    >>> crf.set_weights([np.zeros((2, 2))])  # all 2**3 paths now score 0: loss = log 8
    >>> loss = crf.sparse_loss(np.array([[0, 1, 1]]), emissions)
    >>> round(float(loss[0]), 4), round(float(np.log(8)), 4)
    (2.0794, 2.0794)

    In a model: ``model.compile(loss=crf.sparse_loss, metrics=[crf.sparse_accuracy])``;
    these are :class:`CRFFunction` objects, so the compiled model can be saved.
    """

    def __init__(self, lr_multiplier=1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(lr_multiplier, numbers.Real) or not lr_multiplier > 0:
            raise ConfigError(
                f"ConditionalRandomField: lr_multiplier must be a positive number, got "
                f"{lr_multiplier!r}; use 1 for the optimizer's own learning rate."
            )
        self.lr_multiplier = lr_multiplier
        self.supports_masking = True

    def build(self, input_shape):
        num_labels = input_shape[-1]
        if num_labels is None:
            raise ConfigError(
                f"ConditionalRandomField {self.name!r}: the last axis of its input (the number "
                f"of labels) must be known, got input shape {tuple(input_shape)}; put a "
                "Dense(num_labels) layer before it."
            )
        self._trans = self.add_weight(
            name="trans", shape=(num_labels, num_labels), initializer="glorot_uniform"
        )
        if self.lr_multiplier != 1:
            self._trans.assign(self._trans / self.lr_multiplier)

    @property
    def trans(self):
        """The effective transition matrix ``(num_labels, num_labels)`` (a tensor).

        ``keras.ops.convert_to_numpy(crf.trans)`` is what ``ViterbiDecoder`` wants.
        """
        if self.lr_multiplier != 1:
            return self._trans * self.lr_multiplier
        return self._trans

    def call(self, inputs, mask=None):
        # Mixed precision: the emission scores leave the layer as float32, the dtype the
        # losses and metrics compute in (Keras cast them to the compute dtype on the way in).
        inputs = ops.cast(inputs, "float32")
        if mask is None:
            return inputs
        mask = ops.expand_dims(ops.cast(mask, "bool"), -1)
        return ops.where(mask, inputs, ops.cast(-np.inf, inputs.dtype))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # -- losses and metrics (serializable callables, see CRFFunction) ------------------------------

    @property
    def sparse_loss(self):
        """Loss ``(y_true, y_pred) -> (batch,)`` NLL for integer labels ``(batch, seq)``.

        Each value is ``log Z - score(gold path)`` over the sequence's real positions
        (0 for a sequence with none). A negative label marks padding, as does an output
        position of all ``-inf`` (the layer writes that where the Keras mask is False).
        """
        return CRFFunction(self, "sparse_loss")

    @property
    def dense_loss(self):
        """:attr:`sparse_loss` for one-hot labels ``(batch, seq, num_labels)``.

        An all-zero label row marks padding.
        """
        return CRFFunction(self, "dense_loss")

    @property
    def sparse_accuracy(self):
        """Metric: token accuracy of the per-position argmax over real positions (a scalar).

        Like bert4keras it scores each position's best emission, not the Viterbi path (a
        cheap training signal; decode with ``ViterbiDecoder`` for the real thing). Keras
        averages the per-batch values over an epoch.
        """
        return CRFFunction(self, "sparse_accuracy")

    @property
    def dense_accuracy(self):
        """:attr:`sparse_accuracy` for one-hot labels (an all-zero row is padding)."""
        return CRFFunction(self, "dense_accuracy")

    def _num_labels(self):
        return self._trans.shape[0]

    @staticmethod
    def _real_emissions(y_pred):
        # A position is padding when every one of its scores is -inf.
        return ops.logical_not(ops.all(ops.equal(y_pred, -np.inf), axis=-1))

    def _sparse_labels(self, y_true, y_pred):
        return ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")

    def _sparse_loss(self, y_true, y_pred):
        labels = self._sparse_labels(y_true, y_pred)
        one_hot = ops.one_hot(ops.maximum(labels, 0), self._num_labels(), dtype="float32")
        # Negative labels (padding) become all-zero rows, whatever the backend's one_hot does.
        one_hot = one_hot * ops.cast(ops.expand_dims(labels >= 0, -1), "float32")
        return self._dense_loss(one_hot, y_pred)

    def _dense_loss(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        real = ops.logical_and(
            self._real_emissions(y_pred), ops.any(ops.not_equal(y_true, 0), axis=-1)
        )
        real_3d = ops.expand_dims(real, -1)
        # Zero out padding before any arithmetic, so -inf never meets a 0 (NaN) or a gradient.
        emissions = ops.where(real_3d, y_pred, 0.0)
        y_true = ops.where(real_3d, y_true, 0.0)
        trans = ops.cast(self.trans, "float32")

        def step(carry, x):
            alpha, started, previous, gold = carry
            emission, label, is_real = x
            # previous is all-zero until a real position has been seen and label is all-zero
            # at padding, so the transition term vanishes exactly where it should.
            gold = (
                gold
                + ops.sum(label * emission, axis=-1)
                + ops.einsum("bi,ij,bj->b", previous, trans, label)
            )
            extended = ops.logsumexp(ops.expand_dims(alpha, 2) + trans, axis=1) + emission
            is_real_2d = ops.expand_dims(is_real, -1)
            alpha = ops.where(
                is_real_2d, ops.where(ops.expand_dims(started, -1), extended, emission), alpha
            )
            previous = ops.where(is_real_2d, label, previous)
            started = ops.logical_or(started, is_real)
            return (alpha, started, previous, gold), None

        first = emissions[:, 0]
        init = (
            ops.zeros_like(first),
            ops.zeros_like(real[:, 0]),
            ops.zeros_like(first),
            ops.zeros_like(first[:, 0]),
        )
        xs = (
            ops.moveaxis(emissions, 1, 0),
            ops.moveaxis(y_true, 1, 0),
            ops.moveaxis(real, 1, 0),
        )
        (alpha, started, _, gold), _ = ops.scan(step, init, xs)
        log_z = ops.where(started, ops.logsumexp(alpha, axis=-1), 0.0)
        return log_z - gold

    def _accuracy(self, labels, real, y_pred):
        real = ops.logical_and(real, self._real_emissions(y_pred))
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        correct = ops.logical_and(ops.equal(predicted, labels), real)
        total = ops.sum(ops.cast(real, "float32"))
        return ops.sum(ops.cast(correct, "float32")) / ops.maximum(total, 1.0)

    def _sparse_accuracy(self, y_true, y_pred):
        labels = self._sparse_labels(y_true, y_pred)
        return self._accuracy(labels, labels >= 0, y_pred)

    def _dense_accuracy(self, y_true, y_pred):
        labels = ops.cast(ops.argmax(y_true, axis=-1), "int32")
        return self._accuracy(labels, ops.any(ops.not_equal(y_true, 0), axis=-1), y_pred)

    def get_config(self):
        config = super().get_config()
        config.update({"lr_multiplier": self.lr_multiplier})
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class CRFFunction:
    """A loss or metric of a :class:`ConditionalRandomField`, bound to the layer.

    ``crf.sparse_loss`` and friends return one of these rather than a bound method so that a
    compiled model can be saved: Keras stores ``{"kind", "layer_name"}`` for it. A model read
    back with ``keras.models.load_model`` predicts normally, but its losses are no longer
    bound to a layer (Keras gives a loss no access to the model), so training or evaluating
    raises :class:`~kerasbert.errors.KerasBertError` until you compile again with the loaded
    layer's functions, metrics included (Keras keeps the old metrics when none are given):
    ``crf = model.get_layer("crf")``,
    ``model.compile(optimizer, loss=crf.sparse_loss, metrics=[crf.sparse_accuracy])``.

    Args:
        layer: the ``ConditionalRandomField`` (None when read back from a saved model).
        kind: ``"sparse_loss"``, ``"dense_loss"``, ``"sparse_accuracy"`` or ``"dense_accuracy"``.
        layer_name: the layer's name, used in messages (defaults to ``layer.name``).

    Example:

    >>> import numpy as np
    >>> crf = ConditionalRandomField(name="crf")
    >>> y_pred = crf(np.zeros((1, 2, 3), "float32"))
    >>> loss = crf.sparse_loss
    >>> loss.__name__, loss.get_config()
    ('sparse_loss', {'kind': 'sparse_loss', 'layer_name': 'crf'})
    >>> loss(np.array([[0, 2]]), y_pred).shape
    (1,)
    """

    KINDS = ("sparse_loss", "dense_loss", "sparse_accuracy", "dense_accuracy")

    def __init__(self, layer=None, kind="sparse_loss", layer_name=None):
        if kind not in self.KINDS:
            raise ConfigError(
                f"CRFFunction: unknown kind {kind!r}; use one of {', '.join(self.KINDS)}."
            )
        self.layer = layer
        self.kind = kind
        self.layer_name = layer_name if layer is None else layer.name
        self.__name__ = kind

    def __call__(self, y_true, y_pred):
        if self.layer is None:
            layer = f"model.get_layer({self.layer_name!r})"
            raise KerasBertError(
                f"The CRF {self.kind} of layer {self.layer_name!r} was read back from a saved "
                "model and is bound to no layer (Keras gives losses no access to the model). "
                "Compile the loaded model again with the layer's own loss and metrics, e.g. "
                f"model.compile(optimizer=..., loss={layer}.sparse_loss, "
                f"metrics=[{layer}.sparse_accuracy]) (pass metrics=[] for none: Keras keeps "
                "the old ones otherwise)."
            )
        return getattr(self.layer, "_" + self.kind)(y_true, y_pred)

    def __repr__(self):
        return f"<CRFFunction {self.kind} of {self.layer_name!r}>"

    def get_config(self):
        return {"kind": self.kind, "layer_name": self.layer_name}

    @classmethod
    def from_config(cls, config):
        return cls(None, **config)
