"""Batched, length-bucketed sentence and token vectors (bert-as-service style).

Sentences are sorted by length and cut into batches of ``batch_size`` rows (the last one
padded with repeated rows); each batch is padded to the smallest of a few bucket lengths.
On JAX one jitted function runs the model, the pooling and the normalisation, so only
``(batch, hidden)`` comes back to the host, and a corpus of any mix of lengths compiles at
most one program per bucket (``encoder.num_compilations``; each new one is logged at INFO on
the ``kerasbert.encoding`` logger).
"""

import itertools
import logging
import sys
import weakref

import numpy as np

from kerasbert.compilation import CompilationCounter, bucket_length, make_buckets
from kerasbert.errors import KerasBertError
from kerasbert.layers.pooling import check_pooling, l2_normalize, masked_pooling
from kerasbert.pooling_names import ENCODER_POOLINGS

logger = logging.getLogger(__name__)

PAIR_SEPARATOR = "|||"


def split_pair(text):
    """``"a ||| b"`` -> ``("a", "b")``; other text -> ``(text, None)``.

    Example:

    >>> split_pair("How old are you? ||| What is your age?")
    ('How old are you?', 'What is your age?')
    """
    if PAIR_SEPARATOR in text:
        first, second = text.split(PAIR_SEPARATOR, 1)
        return first.strip(), second.strip()
    return text, None


def pool_outputs(outputs, lengths, pooling, normalize):
    """Pooled (and L2-normalized) vectors of padded model outputs, or with ``pooling="none"``
    the outputs themselves, as float32 tensors (:func:`kerasbert.layers.pooling.masked_pooling`).

    Args:
        outputs: ``(batch, T, hidden)`` sequence outputs.
        lengths: ``(batch,)`` real lengths.
        pooling: one of :data:`ENCODER_POOLINGS`.
        normalize: L2-normalize the pooled vectors.
    """
    from keras import ops

    vectors = ops.cast(outputs, "float32")
    if pooling == "none":
        return vectors
    mask = ops.arange(ops.shape(vectors)[1])[None, :] < ops.convert_to_tensor(lengths)[:, None]
    pooled = masked_pooling(vectors, mask, pooling)
    return l2_normalize(pooled) if normalize else pooled


class SentenceEncoder:
    """Encode sentences (or ``"a ||| b"`` pairs) into vectors with a kerasbert encoder.

    Args:
        model: a model whose first output is the sequence output ``(batch, T, hidden)``
            (``build_transformer_model`` without heads).
        tokenizer: a :class:`kerasbert.tokenizers.Tokenizer`.
        pooling: ``"cls"``, ``"mean"``, ``"max"``, ``"last"``
            (:func:`kerasbert.layers.pooling.masked_pooling`), or ``"none"`` (token vectors).
        max_seq_len: tokens per sentence (longer ones are truncated).
        batch_size: sentences per batch; a last, smaller batch is padded to it with
            repeated rows (their outputs are dropped), so it compiles no extra shape.
        normalize: L2-normalize pooled vectors.
        buckets: padded lengths allowed (default: ``make_buckets(max_seq_len,
            growth=1.25)``, multiples of 8 about 25 % apart: 15 shapes up to 512 tokens,
            about 12 % padding on mixed-length text, where powers of two pad about 50 %).

    Every batch has the shape ``(batch_size, bucket)``, so at most ``len(buckets)`` programs
    are compiled, however many calls to :meth:`encode` there are. On JAX the model, the
    pooling and the normalisation run as one jitted function, shared by the encoders of a
    model with the same pooling; ``encoder.num_compilations`` counts the XLA compilations
    this encoder's calls caused (on other backends: the padded shapes run), each logged at
    INFO with its shape, and ``encoder.compiled_shapes`` holds the padded shapes run so far.

    Example:

    >>> import kerasbert
    >>> from kerasbert.tokenizers import Tokenizer
    >>> tok = Tokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4})
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 5, "hidden_size": 4, "num_hidden_layers": 1,
    ...      "num_attention_heads": 1, "intermediate_size": 8})
    >>> encoder = SentenceEncoder(model, tok, max_seq_len=16, batch_size=4)
    >>> encoder.encode(["a", "a a a"]).shape
    (2, 4)
    >>> _ = encoder.encode(["a a", "a", "a a a a", "a", "a"])  # same (4, 16) shape
    >>> encoder.num_compilations, sorted(encoder.compiled_shapes)
    (1, [(4, 16)])
    """

    def __init__(
        self,
        model,
        tokenizer,
        pooling="mean",
        max_seq_len=512,
        batch_size=32,
        normalize=False,
        buckets=None,
    ):
        check_pooling(pooling, ENCODER_POOLINGS)
        if max_seq_len < 2:
            raise KerasBertError(f"max_seq_len must be at least 2, got {max_seq_len}.")
        if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise KerasBertError(f"batch_size must be a positive int, got {batch_size!r}.")
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_seq_len = max_seq_len
        self.batch_size = int(batch_size)
        self.normalize = normalize
        self.buckets = buckets or make_buckets(max_seq_len, growth=1.25)
        self.compiled_shapes = set()
        self._with_segments = len(model.inputs) > 1
        self._forward = None
        self._compilations = None

    @property
    def num_compilations(self):
        """How many programs this encoder's calls have compiled so far."""
        if self._compilations is None:  # not JAX (or nothing run yet): the padded shapes
            return len(self.compiled_shapes)
        return self._compilations.count

    def _jitted_forward(self):
        if self._forward is None:
            self._forward, name = _cached_forward(
                self.model, self._with_segments, self.pooling, self.normalize
            )
            self._compilations = CompilationCounter(name=name)
        return self._forward

    def _run(self, token_ids, segment_ids, lengths):
        """Pooled (normalised) vectors, or token vectors with ``pooling="none"``, as numpy."""
        import keras

        shape = token_ids.shape
        new_shape = shape not in self.compiled_shapes
        self.compiled_shapes.add(shape)
        if keras.backend.backend() != "jax":
            inputs = [token_ids, segment_ids] if self._with_segments else token_ids
            outputs = self.model.predict_on_batch(inputs)
            if isinstance(outputs, (list, tuple)):
                outputs = outputs[0]
            if new_shape:
                logger.info("SentenceEncoder: new padded shape %s", shape)
            pooled = pool_outputs(outputs, lengths, self.pooling, self.normalize)
            return np.asarray(keras.ops.convert_to_numpy(pooled))
        forward = self._jitted_forward()
        before = self._compilations.count
        with self._compilations:
            outputs = forward(
                [v.value for v in self.model.trainable_variables],
                [v.value for v in self.model.non_trainable_variables],
                token_ids, segment_ids, lengths,
            )  # fmt: skip
            outputs = np.asarray(outputs)
        if self._compilations.count > before:
            logger.info(
                "SentenceEncoder: compiled the %s-pooling forward pass for padded shape %s "
                "(%d compilations so far)", self.pooling, shape, self._compilations.count,
            )  # fmt: skip
        return outputs

    def encode(self, texts, progress=False):
        """Vectors for ``texts``, in their order.

        Args:
            texts: strings; ``"a ||| b"`` encodes a pair (segments 0 and 1).
            progress: print a progress bar on stderr.

        Returns:
            ``(n, hidden)`` float32 array, or with ``pooling="none"`` a list of
            ``(tokens, hidden)`` arrays.
        """
        encoded = [self.tokenizer.encode(*split_pair(t), maxlen=self.max_seq_len) for t in texts]
        order = np.argsort([len(ids) for ids, _ in encoded], kind="stable")
        results = [None] * len(encoded)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            # The last batch is padded with copies of its first sentence.
            padded_rows = np.concatenate([rows, np.repeat(rows[:1], self.batch_size - len(rows))])
            lengths = np.array([len(encoded[i][0]) for i in padded_rows], np.int32)
            width = bucket_length(int(lengths.max()), self.buckets)
            token_ids = np.zeros((self.batch_size, width), np.int32)
            segment_ids = np.zeros((self.batch_size, width), np.int32)
            for r, i in enumerate(padded_rows):
                ids, segments = encoded[i]
                token_ids[r, : len(ids)] = ids
                segment_ids[r, : len(segments)] = segments
            outputs = self._run(token_ids, segment_ids, lengths)
            for r, i in enumerate(rows):
                results[i] = outputs[r, : lengths[r]] if self.pooling == "none" else outputs[r]
            if progress:
                done = min(start + self.batch_size, len(order))
                bar = "#" * int(30 * done / max(len(order), 1))
                print(f"\rencoding [{bar:<30}] {done}/{len(order)}", end="", file=sys.stderr)
        if progress:
            print(file=sys.stderr)
        if self.pooling == "none":
            return results
        return np.stack(results).astype("float32") if results else np.zeros((0, 0), "float32")


_FORWARD_NAME = "kerasbert_sentence_encoder"
_FORWARD_IDS = itertools.count()
# model -> {(with_segments, pooling, normalize): (jitted forward, its name)}: encoders of one
# model share their compiled programs. The functions hold the model weakly, so the entries
# go when the model does.
_FORWARDS = weakref.WeakKeyDictionary()


def _cached_forward(model, with_segments, pooling, normalize):
    import jax

    forwards = _FORWARDS.setdefault(model, {})
    key = (with_segments, pooling, normalize)
    if key not in forwards:
        name = f"{_FORWARD_NAME}_{next(_FORWARD_IDS)}"
        function = _forward_function(name, weakref.ref(model), with_segments, pooling, normalize)
        forwards[key] = jax.jit(function), name
    return forwards[key]


def _forward_function(name, model_ref, with_segments, pooling, normalize):
    """The function ``jax.jit`` compiles: the model, the pooling and the normalisation."""

    def forward(trainable, non_trainable, token_ids, segment_ids, lengths):
        model = model_ref()
        inputs = [token_ids, segment_ids] if with_segments else token_ids
        outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return pool_outputs(outputs, lengths, pooling, normalize)

    forward.__name__ = forward.__qualname__ = name
    return forward
