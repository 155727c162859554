"""The model side of ``kerasbert serve``: pooled vectors of padded batches, in few shapes.

:class:`Engine` runs a kerasbert encoder up to the layers bert-as-service's
``pooling_layer`` names (``-1`` the last block, ``-2`` the one before, several concatenated
on the feature axis) and pools them as its ``pooling_strategy`` says, in one jitted
function, so only the pooled vectors come back to the host. Batches are padded to a few
row counts (powers of 4 up to ``max_batch_size``) and a few lengths (powers of 2 up to the
longest text), so a running server compiles at most ``len(rows) * len(lengths)`` programs;
:meth:`Engine.warm_up` compiles them all before the server says it is ready.

Pooling follows bert-as-service (docs/bert_as_service_protocol.md, 4.3) with ``m`` the
real tokens (and without ``[CLS]`` / ``[SEP]`` under ``mask_cls_sep``): ``REDUCE_MEAN`` is
``sum(m * H) / (sum(m) + 1e-10)``, ``REDUCE_MAX`` the maximum where ``m``, ``REDUCE_MEAN_MAX``
both (mean first), ``FIRST_TOKEN`` position 0, ``LAST_TOKEN`` the last real token, ``NONE``
the token vectors times ``m``.
"""

import itertools
import logging
import weakref

import numpy as np

from kerasbert.compilation import CompilationCounter, bucket_length, make_buckets
from kerasbert.errors import ServingError

logger = logging.getLogger("kerasbert.serving")

STRATEGIES = ("REDUCE_MEAN", "REDUCE_MAX", "REDUCE_MEAN_MAX", "FIRST_TOKEN", "CLS_TOKEN",
              "LAST_TOKEN", "SEP_TOKEN", "NONE")  # fmt: skip
# The trailing "_x" ends each name: compile events are matched by substring, and
# "kerasbert_serving_1" would otherwise count "kerasbert_serving_12"'s too.
_NAMES = (f"kerasbert_serving_{i}_x" for i in itertools.count())


def row_buckets(max_batch_size):
    """Padded row counts: 1, 4, 16, ... up to ``max_batch_size`` (always the last).

    Example:

    >>> row_buckets(256), row_buckets(20)
    ([1, 4, 16, 64, 256], [1, 4, 16, 20])
    """
    rows, n = [], 1
    while n < max_batch_size:
        rows.append(n)
        n *= 4
    return rows + [max_batch_size]


def length_buckets(longest):
    """Padded lengths: 8, 16, 32, ... up to ``longest`` (always the last).

    Example:

    >>> length_buckets(25), length_buckets(512)[:3]
    ([8, 16, 25], [8, 16, 32])
    """
    return make_buckets(longest, start=8) if longest > 8 else [longest]


def pool(states, real, pooled_mask, lengths, strategy):
    """bert-as-service's pooling of ``states`` ``(batch, T, D)`` (float32 tensors).

    Args:
        states: the chosen layers, concatenated on the last axis.
        real: ``(batch, T)`` booleans, the real tokens.
        pooled_mask: ``(batch, T)`` booleans, the tokens pooled (``real`` without
            ``[CLS]`` / ``[SEP]`` under ``mask_cls_sep``).
        lengths: ``(batch,)`` real lengths.
        strategy: one of :data:`STRATEGIES`.
    """
    from keras import ops

    m = ops.cast(pooled_mask, "float32")[..., None]
    if strategy == "NONE":
        return states * m
    if strategy in ("FIRST_TOKEN", "CLS_TOKEN"):
        return states[:, 0]
    if strategy in ("LAST_TOKEN", "SEP_TOKEN"):
        index = ops.maximum(ops.cast(lengths, "int32") - 1, 0)
        return ops.take_along_axis(states, index[:, None, None], axis=1)[:, 0]
    mean = ops.sum(states * m, axis=1) / (ops.sum(m, axis=1) + 1e-10)
    if strategy == "REDUCE_MEAN":
        return mean
    maximum = ops.max(states - (1.0 - m) * 1e30, axis=1)
    return maximum if strategy == "REDUCE_MAX" else ops.concatenate([mean, maximum], axis=-1)


class Engine:
    """Pooled vectors of batches of :class:`~kerasbert.serving.features.Features`.

    Args:
        builder: the encoder's builder (``build_transformer_model(...,
            return_keras_model=False)``); its ``block_outputs`` give the layers.
        pooling_strategy: one of :data:`STRATEGIES`.
        pooling_layer: a block index or a list of them (negative from the last).
        max_batch_size: the most texts in one model batch.
        longest: the longest text in tokens (``max_seq_len``, or the model's limit).
        mask_cls_sep: leave the ``special_tokens`` out of the pooling.
        special_tokens: the tokenizer's start and end tokens (``[CLS]``, ``[SEP]``).
        dtype: the reply's dtype (``"float32"``, or ``"float16"`` for ``-fp16``).
    """

    def __init__(self, builder, pooling_strategy="REDUCE_MEAN", pooling_layer=-2,
                 max_batch_size=256, longest=25, mask_cls_sep=False, special_tokens=(),
                 dtype="float32"):  # fmt: skip
        import keras

        if pooling_strategy not in STRATEGIES:
            raise ServingError(f"-pooling_strategy must be one of {', '.join(STRATEGIES)}; got "
                               f"{pooling_strategy!r}")  # fmt: skip
        layers = [pooling_layer] if isinstance(pooling_layer, int) else list(pooling_layer)
        if not getattr(builder, "block_outputs", None):
            raise ServingError(f"{type(builder).__name__} is not an encoder kerasbert serve can "
                               "pool (it serves the BERT-style families)")  # fmt: skip
        blocks = len(builder.block_outputs)
        bad = [i for i in layers if not (isinstance(i, int) and -blocks <= i < blocks)]
        if not layers or bad:
            raise ServingError(
                f"-pooling_layer {bad[0] if bad else layers!r} is not a block of this model: "
                f"it has {blocks}, so -{blocks} .. {blocks - 1}"
            )
        self.builder = builder
        self.strategy = pooling_strategy
        self.layers = layers
        self.mask_cls_sep = bool(mask_cls_sep)
        self.dtype = np.dtype(dtype)
        self.rows = row_buckets(max_batch_size)
        self.lengths = length_buckets(longest)
        self.with_segments = len(builder.model.inputs) > 1
        outputs = [builder.block_outputs[i] for i in layers]
        self.model = keras.Model(builder.model.inputs, outputs, name="kerasbert_serving")
        self.special_tokens = set(special_tokens)
        self._name = next(_NAMES)
        self._function = None
        self._device_values = {}
        self.compilations = CompilationCounter(name=self._name)

    @property
    def num_programs(self):
        """The most programs a running server compiles: one per row and length bucket."""
        return len(self.rows) * len(self.lengths)

    def _forward(self):
        if self._function is not None:
            return self._function
        import jax
        from keras import ops

        model_ref, strategy = weakref.ref(self.model), self.strategy

        def forward(trainable, non_trainable, ids, segments, lengths, pooled_mask):
            model = model_ref()
            inputs = [ids, segments] if self.with_segments else ids
            outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            states = ops.concatenate([ops.cast(o, "float32") for o in outputs], axis=-1)
            real = ops.arange(ops.shape(ids)[1])[None, :] < lengths[:, None]
            return pool(states, real, pooled_mask, lengths, strategy)

        forward.__name__ = forward.__qualname__ = self._name
        self._function = jax.jit(forward)
        return self._function

    def shape_for(self, count, longest):
        """The padded ``(rows, length)`` of a batch of ``count`` texts, the longest
        ``longest`` tokens."""
        return bucket_length(count, self.rows), bucket_length(longest, self.lengths)

    def run(self, features, device=None):
        """Vectors of a list of Features (at most ``max_batch_size``): ``(n, D)``, or
        ``(n, T, D)`` for ``NONE`` with ``T`` the padded length; on ``device`` (a JAX
        device holding its own copy of the weights), or where the weights are."""
        rows, length = self.shape_for(len(features), max(f.length for f in features))
        ids = np.zeros((rows, length), np.int32)
        segments = np.zeros((rows, length), np.int32)
        pooled = np.zeros((rows, length), bool)
        lengths = np.ones(rows, np.int32)  # padding rows: one token, dropped afterwards
        for r, f in enumerate(features):
            n = f.length
            ids[r, :n], segments[r, :n], lengths[r] = f.ids, f.segments, n
            pooled[r, :n] = True
            if self.mask_cls_sep:
                pooled[r, [k for k, t in enumerate(f.tokens) if t in self.special_tokens]] = False
        ids[len(features) :, 0] = features[0].ids[0]
        return self._run(ids, segments, lengths, pooled, device)[: len(features)]

    def _values(self, device):
        """The weights' values, on ``device`` (copied there once) or where they are."""
        values = ([v.value for v in self.model.trainable_variables],
                  [v.value for v in self.model.non_trainable_variables])  # fmt: skip
        if device is None:
            return values
        if device not in self._device_values:
            import jax

            self._device_values[device] = jax.device_put(values, device)
        return self._device_values[device]

    def _run(self, ids, segments, lengths, pooled, device=None):
        import keras

        forward = self._forward()
        trainable, non_trainable = self._values(device)
        if device is not None:
            import jax

            ids, segments, lengths, pooled = jax.device_put((ids, segments, lengths, pooled),
                                                            device)  # fmt: skip
        before = self.compilations.count
        with self.compilations:
            out = forward(trainable, non_trainable, ids, segments, lengths, pooled)
            out = np.asarray(keras.ops.convert_to_numpy(out)).astype(self.dtype)
        if self.compilations.count > before:
            logger.info("compiled the forward pass for %d x %d (%d programs so far)",
                        ids.shape[0], ids.shape[1], self.compilations.count)  # fmt: skip
        return out

    def warm_up(self, devices=(None,)):
        """Compile every (rows, length) program now (on each of ``devices``); returns how
        many programs there are per device."""
        for device in devices:
            for rows, length in itertools.product(self.rows, self.lengths):
                ids = np.full((rows, length), 1, np.int32)
                lengths = np.full(rows, length, np.int32)
                self._run(ids, np.zeros_like(ids), lengths, np.ones((rows, length), bool),
                          device)  # fmt: skip
        return self.num_programs
