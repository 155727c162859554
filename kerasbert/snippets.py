"""bert4keras's ``snippets``: padding, text splitting, batching and decoding helpers.

Everything here is numpy and plain Python; Keras is imported only by the two helpers that
build Keras objects (:meth:`DataGenerator.to_pydataset`, :meth:`AutoRegressiveDecoder.last_token`),
so ``import kerasbert.snippets`` stays light.

The names and semantics follow ``bert4keras.snippets``: :func:`sequence_padding`,
:func:`truncate_sequences`, :func:`text_segmentate`, :class:`DataGenerator`,
:class:`ViterbiDecoder`, :func:`softmax`, :class:`AutoRegressiveDecoder`. Additions:

* length buckets (:func:`make_buckets`, :func:`bucket_length`, ``sequence_padding(...,
  buckets=...)``, ``DataGenerator(..., buckets=...)`` with :meth:`DataGenerator.pad`) so that
  JAX compiles one program per bucket rather than one per length, and a fixed batch size
  (``DataGenerator(..., remainder="drop" | "fill")`` for training, :func:`pad_batch` for
  prediction) so the last batch of an epoch adds no shape;
* counting what gets compiled: :class:`ShapeCounter` (the batch shapes a generator handed
  out, ``generator.shapes``) and :class:`CompilationCounter` (XLA compilations, from JAX's
  compile events), both logging each new one at INFO;
* :meth:`DataGenerator.to_pydataset`, a ``keras.utils.PyDataset`` for ``model.fit``;
* decoder states that follow the beams (see :class:`AutoRegressiveDecoder`).
"""

import functools
import logging
import threading

import numpy as np

from kerasbert.errors import KerasBertError
from kerasbert.tokenizers import truncate_sequences

logger = logging.getLogger(__name__)


class SnippetError(KerasBertError, ValueError):
    """A snippets helper got arguments it cannot work with."""


# -- padding and length buckets -------------------------------------------------------------------


def make_buckets(maxlen, step=None, start=16, growth=2.0):
    """A bounded, sorted list of padded lengths up to ``maxlen`` (which is always the last).

    Args:
        maxlen: the longest length; longer sequences are truncated to it.
        step: None for a geometric series (``start, start*growth, ...``); an int for its
            multiples (``step, 2*step, ...``).
        start: the smallest bucket of the geometric series (ignored with ``step``).
        growth: ratio between consecutive geometric buckets, each rounded up to a multiple
            of 8; 2 gives powers of two. Smaller ratios pad less and compile more shapes.

    Example:

    >>> make_buckets(100)
    [16, 32, 64, 100]
    >>> make_buckets(100, step=32)
    [32, 64, 96, 100]
    >>> make_buckets(128, growth=1.25)
    [16, 24, 32, 40, 56, 72, 96, 120, 128]
    """
    if not (isinstance(maxlen, (int, np.integer)) and maxlen > 0):
        raise SnippetError(f"make_buckets: maxlen must be a positive int, got {maxlen!r}.")
    if step is not None:
        if not (isinstance(step, (int, np.integer)) and step > 0):
            raise SnippetError(f"make_buckets: step must be a positive int or None, got {step!r}.")
        buckets = list(range(step, maxlen, step))
    else:
        if not (isinstance(start, (int, np.integer)) and start > 0):
            raise SnippetError(f"make_buckets: start must be a positive int, got {start!r}.")
        if not (isinstance(growth, (int, float)) and growth > 1):
            raise SnippetError(f"make_buckets: growth must be a number above 1, got {growth!r}.")
        buckets, length = [], start
        while length < maxlen:
            buckets.append(length)
            grown = max(length + 1, -int(-length * growth // 1))  # ceil, and always longer
            length = grown if grown <= 8 else -(-grown // 8) * 8
    return buckets + [int(maxlen)]


def bucket_length(length, buckets):
    """The smallest bucket holding ``length``; the largest bucket when none does.

    Args:
        length: a sequence (or batch maximum) length.
        buckets: the allowed lengths, e.g. from :func:`make_buckets`.

    Example:

    >>> bucket_length(17, [16, 32, 64])
    32
    >>> bucket_length(90, [16, 32, 64])
    64
    """
    if not len(buckets):
        raise SnippetError("bucket_length: buckets is empty; pass e.g. make_buckets(maxlen).")
    buckets = sorted(buckets)
    for bucket in buckets:
        if length <= bucket:
            return int(bucket)
    return int(buckets[-1])


def sequence_padding(inputs, length=None, value=0, seq_dims=1, mode="post", buckets=None):
    """Pad (and truncate) sequences to one length and stack them into a numpy array.

    Args:
        inputs: a non-empty list of sequences (lists or arrays); all have the same shape
            beyond their first ``seq_dims`` axes.
        length: the padded length: an int (for every sequence axis) or one per axis; None
            for the longest in ``inputs`` (per axis). Longer sequences keep their first
            ``length`` items in both modes (as in bert4keras).
        value: the padding value.
        seq_dims: how many leading axes are padded (2 for e.g. pairwise label matrices).
        mode: ``"post"`` pads after the data, ``"pre"`` before it.
        buckets: with ``length=None``, round each axis's longest length up to the smallest
            of these (see :func:`make_buckets`), so that a corpus yields a bounded set of
            shapes; a length beyond the largest bucket is truncated to it.

    Returns:
        A numpy array of shape ``(len(inputs), *length, *rest)``.

    Example:

    >>> sequence_padding([[1, 2, 3], [4]])
    array([[1, 2, 3],
           [4, 0, 0]])
    >>> sequence_padding([[1, 2, 3], [4]], length=2, mode="pre", value=-1)
    array([[ 1,  2],
           [-1,  4]])
    >>> sequence_padding([[1, 2, 3], [4]], buckets=[4, 8]).shape
    (2, 4)
    """
    if mode not in ("post", "pre"):
        raise SnippetError(f'sequence_padding: mode must be "post" or "pre", got {mode!r}.')
    if inputs is None or len(inputs) == 0:
        raise SnippetError("sequence_padding: inputs is empty; pass at least one sequence.")
    shapes = [np.shape(x) for x in inputs]
    if any(len(shape) < seq_dims for shape in shapes):
        raise SnippetError(
            f"sequence_padding: seq_dims={seq_dims} but some inputs have fewer axes "
            f"(shapes {sorted(set(shapes))[:4]}); lower seq_dims or check the inputs."
        )
    if length is None:
        length = np.max([shape[:seq_dims] for shape in shapes], axis=0).tolist()
        if buckets is not None:
            length = [bucket_length(n, buckets) for n in length]
    elif np.ndim(length) == 0:
        length = [int(length)] * seq_dims
    else:
        length = [int(n) for n in length]
        if len(length) != seq_dims:
            raise SnippetError(
                f"sequence_padding: length {length} has {len(length)} entries for "
                f"seq_dims={seq_dims}; give one per padded axis or a single int."
            )
    cut = tuple(slice(None, n) for n in length)
    outputs = []
    for x in inputs:
        x = np.asarray(x)[cut]
        pad = [(0, 0)] * x.ndim
        for axis, n in enumerate(length):
            missing = n - x.shape[axis]
            pad[axis] = (0, missing) if mode == "post" else (missing, 0)
        outputs.append(np.pad(x, pad, "constant", constant_values=value))
    try:
        return np.array(outputs)
    except ValueError as e:
        raise SnippetError(
            f"sequence_padding: the inputs differ beyond their first {seq_dims} axes "
            f"({sorted(set(s[seq_dims:] for s in shapes))[:4]}); raise seq_dims or make "
            "them agree."
        ) from e


def pad_batch(batch, batch_size):
    """Pad the leading (batch) axis of every array in ``batch`` to ``batch_size`` rows.

    The missing rows repeat the first row, so they are valid inputs for any model (no
    all-padding rows whose attention has nothing to attend to); drop their outputs, e.g.
    ``model.predict_on_batch(pad_batch(inputs, 32))[:n]``. Together with length buckets
    this keeps a model's compiled shapes to one per bucket, the last smaller batch included.

    Args:
        batch: an array, or a list / tuple / dict (nested) of arrays with the same number
            of rows; None leaves pass through.
        batch_size: the rows wanted; batches already that large are returned unchanged.

    Example:

    >>> pad_batch([np.array([[1, 2], [3, 4]]), np.array([0, 1])], 3)
    [array([[1, 2],
           [3, 4],
           [1, 2]]), array([0, 1, 0])]
    """
    if isinstance(batch, dict):
        return {k: pad_batch(v, batch_size) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(pad_batch(x, batch_size) for x in batch)
    if batch is None:
        return None
    batch = np.asarray(batch)
    if batch.ndim == 0 or len(batch) == 0:
        raise SnippetError(
            f"pad_batch: got an array of shape {batch.shape}; every array needs at least one "
            "row to repeat."
        )
    missing = batch_size - len(batch)
    if missing <= 0:
        return batch
    return np.concatenate([batch, np.repeat(batch[:1], missing, axis=0)], axis=0)


# -- counting shapes and compilations -------------------------------------------------------------


def batch_signature(batch):
    """The shapes of a (nested) batch: a hashable summary of what a jitted step sees.

    Args:
        batch: arrays, possibly nested in lists, tuples and dicts; None stays None.

    Example:

    >>> batch_signature(([np.zeros((8, 32)), np.zeros((8, 32))], np.zeros(8)))
    (((8, 32), (8, 32)), (8,))
    """
    if isinstance(batch, dict):
        return tuple((k, batch_signature(v)) for k, v in sorted(batch.items()))
    if isinstance(batch, (list, tuple)):
        return tuple(batch_signature(x) for x in batch)
    if batch is None:
        return None
    return tuple(int(n) for n in np.shape(batch))


class ShapeCounter:
    """Count the distinct batch shapes a data pipeline produced, logging each new one.

    Every distinct :func:`batch_signature` is a program that a jitted model step compiles
    (``model.fit`` / ``predict`` on JAX recompile for a new shape), so this is the number of
    compilations a dataset causes. New shapes are logged at INFO on the
    ``kerasbert.snippets`` logger.

    Args:
        name: a label used in the log messages.

    Example:

    >>> shapes = ShapeCounter("train")
    >>> for n in (3, 5, 3):
    ...     _ = shapes.observe(np.zeros((2, n)))
    >>> len(shapes), shapes.counts
    (2, {(2, 3): 2, (2, 5): 1})
    """

    def __init__(self, name="batches"):
        self.name = name
        self.counts = {}

    def observe(self, batch):
        """Record ``batch``'s shapes and return ``batch`` unchanged.

        Args:
            batch: a (nested) batch of arrays.
        """
        signature = batch_signature(batch)
        if signature not in self.counts:
            self.counts[signature] = 0
            logger.info("%s: new batch shape %s (%d so far)", self.name, signature, len(self))
        self.counts[signature] += 1
        return batch

    def __len__(self):
        return len(self.counts)

    def __repr__(self):
        return f"ShapeCounter({self.name!r}, {len(self)} shapes)"


_BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompilationCounter:
    """Count the XLA compilations JAX performs while this context manager is active.

    It listens to JAX's compile events (``jax.monitoring``), so it counts programs really
    compiled, not shapes: a jitted function called again with a shape it has seen compiles
    nothing. On other Keras backends nothing is counted. It can be entered many times;
    counts accumulate.

    Args:
        name: count only functions whose name contains this string (e.g. the name of the
            Python function under ``jax.jit``; Keras's ``fit`` compiles functions named
            ``*train_step*``); None counts every compilation, small eager ops included.
        log: also log each counted compilation at INFO on the ``kerasbert.snippets`` logger.

    Attributes:
        count: the compilations counted.
        names: the names of the compiled functions, in order.

    Example:

    >>> import jax
    >>> def double(x):
    ...     return 2 * x
    >>> double_jit = jax.jit(double)
    >>> with CompilationCounter("double") as counter:
    ...     _ = double_jit(np.ones(3)), double_jit(np.ones(3)), double_jit(np.ones(4))
    >>> counter.count
    2
    """

    def __init__(self, name=None, log=False):
        self.name = name
        self.log = log
        self.count = 0
        self.names = []
        self._active = 0
        self._lock = threading.Lock()

    def _listener(self, event, duration, **kwargs):
        if event != _BACKEND_COMPILE_EVENT:
            return
        fun_name = str(kwargs.get("fun_name", ""))
        if self.name is not None and self.name not in fun_name:
            return
        with self._lock:
            self.count += 1
            self.names.append(fun_name)
        if self.log:
            logger.info("compiled %s in %.2f s (%d so far)", fun_name, duration, self.count)

    def __enter__(self):
        monitoring = _jax_monitoring()
        if monitoring is not None:
            if self._active == 0:
                monitoring.register_event_duration_secs_listener(self._listener)
            self._active += 1
        return self

    def __exit__(self, *exc_info):
        monitoring = _jax_monitoring()
        if monitoring is not None and self._active:
            self._active -= 1
            if self._active == 0:
                monitoring.unregister_event_duration_listener(self._listener)
        return False


def _jax_monitoring():
    try:
        import jax.monitoring
    except ImportError:
        return None
    return jax.monitoring


# -- text -----------------------------------------------------------------------------------------


def text_segmentate(text, maxlen, seps="\n", strips=None):
    """Split ``text`` into pieces of at most ``maxlen`` characters at separators, recursively.

    The text is cut at ``seps[0]``; neighbouring parts are merged back while they fit in
    ``maxlen``; a piece still too long is cut again at ``seps[1]``, and so on. A piece
    that no separator can shorten is kept whole. Separators stay at the end of their piece;
    each piece is stripped of whitespace and then of ``strips``.

    Args:
        text: the text.
        maxlen: the longest piece wanted.
        seps: separators, coarsest first (a string of single characters or a list).
        strips: characters stripped from both ends of every piece (``str.strip`` argument).

    Example:

    >>> text_segmentate("one. two. three.", 6, seps=". ")
    ['one.', 'two.', 'three.']
    >>> text_segmentate("short", 10)
    ['short']
    """
    text = text.strip().strip(strips)
    if not seps or len(text) <= maxlen:
        return [text]
    sep, rest = seps[0], seps[1:]
    parts = text.split(sep)
    pieces, current = [], ""
    for i, part in enumerate(parts):
        if current and part and len(current) + len(part) > maxlen - 1:
            pieces.extend(text_segmentate(current, maxlen, rest, strips))
            current = ""
        current += part if i == len(parts) - 1 else part + sep
    if current:
        pieces.extend(text_segmentate(current, maxlen, rest, strips))
    return pieces


REMAINDERS = ("keep", "drop", "fill")


# -- batching -------------------------------------------------------------------------------------


class DataGenerator:
    """Template of a batch generator (bert4keras's ``DataGenerator``).

    Subclasses implement ``__iter__(self, random=False)``, yielding batches built from
    :meth:`sample`'s items. With ``len(data)`` known, an epoch has
    ``ceil(len(data) / batch_size)`` batches (``len(generator)``; ``floor`` with
    ``remainder="drop"``); the usual pattern yields a batch whenever it is full or
    ``is_end`` is True.

    Bounded shapes. On JAX, ``model.fit`` / ``predict`` compile a program per distinct batch
    shape, the batch size included. Two arguments keep the shapes few:

    * ``buckets``: :meth:`pad` pads each batch to the smallest bucket length holding its
      longest sequence (see :func:`make_buckets`), rather than to the longest itself;
    * ``remainder``: what becomes of the last, incomplete batch of an epoch: ``"keep"`` (as
      bert4keras: one more, smaller batch shape), ``"drop"`` (its items are left out of this
      epoch; shuffled data leave out different ones each epoch) or ``"fill"`` (it is
      completed with items from the start of this epoch's order, which then count twice).
      For training, ``"drop"`` or ``"fill"``; for evaluation keep every item once
      (``"keep"``) and pad the last batch's rows with :func:`pad_batch`, dropping their
      outputs.

    The batches handed out by :meth:`forfit`, :meth:`fortest` and :meth:`to_pydataset`
    are recorded in ``generator.shapes`` (a :class:`ShapeCounter`; ``len(generator.shapes)``
    is the number of distinct shapes, each new one logged at INFO).

    Args:
        data: a sequence (shuffled by index) or any iterable (shuffled through a buffer).
        batch_size: examples per batch.
        buffer_size: shuffle buffer of iterables without ``len``; default ``1000 * batch_size``.
        buckets: padded lengths for :meth:`pad` (None: pad to the longest in the batch).
        remainder: ``"keep"``, ``"drop"`` or ``"fill"`` (see above).

    Example:

    >>> class Batches(DataGenerator):
    ...     def __iter__(self, random=False):
    ...         batch = []
    ...         for is_end, x in self.sample(random):
    ...             batch.append(x)
    ...             if len(batch) == self.batch_size or is_end:
    ...                 yield self.pad(batch), np.zeros(len(batch))
    ...                 batch = []
    >>> data = [[1], [2, 3], [4, 5, 6]]
    >>> gen = Batches(data, batch_size=2)
    >>> len(gen), [x.shape for x, _ in gen]
    (2, [(2, 2), (1, 3)])
    >>> gen = Batches(data, batch_size=2, buckets=[4, 8], remainder="fill")
    >>> len(gen), [x.tolist() for x, _ in gen]
    (2, [[[1, 0, 0, 0], [2, 3, 0, 0]], [[4, 5, 6, 0], [1, 0, 0, 0]]])

    ``model.fit(gen.forfit(), steps_per_epoch=len(gen))`` trains as in bert4keras;
    ``model.fit(gen.to_pydataset())`` does the same through a ``keras.utils.PyDataset``.
    """

    def __init__(self, data, batch_size=32, buffer_size=None, buckets=None, remainder="keep"):
        if not (isinstance(batch_size, (int, np.integer)) and batch_size > 0):
            raise SnippetError(
                f"DataGenerator: batch_size must be a positive int, got {batch_size!r}."
            )
        if remainder not in REMAINDERS:
            raise SnippetError(
                f"DataGenerator: remainder must be one of {REMAINDERS}, got {remainder!r}."
            )
        if buckets is not None and not len(buckets):
            raise SnippetError("DataGenerator: buckets is empty; pass None or make_buckets(...).")
        self.data = data
        self.batch_size = batch_size
        self.buckets = None if buckets is None else sorted(int(b) for b in buckets)
        self.remainder = remainder
        if hasattr(data, "__len__"):
            if remainder == "drop":
                if 0 < len(data) < batch_size:
                    raise SnippetError(
                        f"DataGenerator: remainder='drop' with {len(data)} items and "
                        f"batch_size={batch_size} leaves no batch; lower batch_size or use "
                        "remainder='fill'."
                    )
                self.steps = len(data) // batch_size
            else:
                self.steps = -(-len(data) // batch_size)
        else:
            self.steps = None
        self.buffer_size = buffer_size or batch_size * 1000
        self.shapes = ShapeCounter(type(self).__name__)

    def __len__(self):
        if self.steps is None:
            raise TypeError(
                "This DataGenerator's data has no len(), so neither has the generator; give "
                "model.fit a steps_per_epoch."
            )
        return self.steps

    def pad(self, sequences, value=0, seq_dims=1, mode="post"):
        """:func:`sequence_padding` to this generator's ``buckets`` (or the longest).

        Args:
            sequences: the batch's sequences.
            value: the padding value.
            seq_dims: how many leading axes are padded.
            mode: ``"post"`` or ``"pre"``.
        """
        return sequence_padding(
            sequences, value=value, seq_dims=seq_dims, mode=mode, buckets=self.buckets
        )

    def sample(self, random=False):
        """Yield ``(is_end, item)`` over the data, ``is_end`` True for the last item.

        With ``remainder="drop"`` the items of the last incomplete batch are left out, with
        ``"fill"`` items from the start of the epoch complete it.

        Args:
            random: shuffle: a permutation of the indices for sequences; a random draw
                from a ``buffer_size`` buffer for other iterables.
        """
        if random and self.steps is not None:
            items = (self.data[i] for i in np.random.permutation(len(self.data)))
        elif random:
            items = self._buffer_shuffled()
        else:
            items = iter(self.data)
        if self.remainder == "drop":
            items = self._whole_batches(items)
        elif self.remainder == "fill":
            items = self._filled(items)
        try:
            current = next(items)
        except StopIteration:
            return
        for following in items:
            yield False, current
            current = following
        yield True, current

    def _whole_batches(self, items):
        batch = []
        for item in items:
            batch.append(item)
            if len(batch) == self.batch_size:
                yield from batch
                batch = []

    def _filled(self, items):
        first, count = [], 0
        for item in items:
            if len(first) < self.batch_size:
                first.append(item)
            count += 1
            yield item
        missing = -count % self.batch_size
        for i in range(missing):
            yield first[i % len(first)]

    def _buffer_shuffled(self):
        buffer = []
        for item in self.data:
            buffer.append(item)
            if len(buffer) > self.buffer_size:
                yield buffer.pop(np.random.randint(len(buffer)))
        while buffer:
            yield buffer.pop(np.random.randint(len(buffer)))

    def __iter__(self, random=False):
        raise NotImplementedError("Subclasses of DataGenerator implement __iter__(random).")

    def forfit(self, random=True):
        """Batches forever, epoch after epoch (for ``model.fit(..., steps_per_epoch=len(g))``).

        Args:
            random: shuffle each epoch.
        """
        return self._forever(random, lambda batch: batch)

    def fortest(self, random=False):
        """The inputs (first element) of the batches forever, for ``model.predict``.

        Args:
            random: shuffle each epoch.
        """
        return self._forever(random, lambda batch: batch[0])

    def _forever(self, random, pick):
        """``pick(batch)`` of every batch, epoch after epoch, its shape recorded."""
        while True:
            empty = True
            for batch in self.__iter__(random):
                empty = False
                yield self.shapes.observe(pick(batch))
            self._check_not_empty(empty)

    def _check_not_empty(self, empty):
        if empty:
            raise SnippetError(
                f"{type(self).__name__} yielded no batch in a whole epoch (is its data empty, or "
                "smaller than batch_size with remainder='drop'?); an endless stream of nothing "
                "would hang model.fit."
            )

    def to_pydataset(self, random=True, workers=1, max_queue_size=10):
        """This generator as a ``keras.utils.PyDataset`` for ``model.fit`` / ``evaluate``.

        Batches come from one endless stream (like :meth:`forfit`) whatever index Keras
        asks for, so its shuffling of batch indices is harmless and no batch is skipped or
        repeated across epochs. ``len(self)`` batches make an epoch; without a known length
        the dataset is endless and ``model.fit`` needs ``steps_per_epoch``.

        Args:
            random: shuffle the data (True for training, False for evaluation).
            workers: threads preparing batches ahead (the stream is read under a lock);
                processes are not supported, as each would replay the whole stream.
            max_queue_size: batches prepared ahead with ``workers > 1``.
        """
        dataset_class = _pydataset_class()
        return dataset_class(self, random, workers=workers, max_queue_size=max_queue_size)


@functools.cache
def _pydataset_class():
    import keras

    class GeneratorDataset(keras.utils.PyDataset):
        def __init__(self, generator, random, workers=1, max_queue_size=10):
            super().__init__(workers=workers, max_queue_size=max_queue_size)
            self.generator = generator
            self.random = random
            self._stream = None
            self._lock = threading.Lock()

        @property
        def num_batches(self):
            return self.generator.steps

        def __getitem__(self, index):
            with self._lock:
                if self._stream is None:
                    self._stream = self.generator.forfit(self.random)
                return next(self._stream)

    return GeneratorDataset


# -- decoding -------------------------------------------------------------------------------------


class ViterbiDecoder:
    """Best label path under a CRF's transition scores (bert4keras's ``ViterbiDecoder``).

    Args:
        trans: ``(num_labels, num_labels)`` transition scores, ``trans[i, j]`` for label
            ``j`` after ``i`` (e.g. ``keras.ops.convert_to_numpy(crf.trans)``).
        starts: labels a path may start with (None: any).
        ends: labels a path may end with (None: any).

    Example:

    >>> decoder = ViterbiDecoder(np.array([[0.0, -9.0], [0.0, 0.0]]))  # no 0 -> 1
    >>> decoder.decode(np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]])).tolist()
    [1, 1, 0]
    """

    def __init__(self, trans, starts=None, ends=None):
        self.trans = np.asarray(trans, dtype="float64")
        if self.trans.ndim != 2 or self.trans.shape[0] != self.trans.shape[1]:
            raise SnippetError(
                f"ViterbiDecoder: trans must be a square matrix, got shape {self.trans.shape}."
            )
        self.num_labels = len(self.trans)
        labels = range(self.num_labels)
        self.non_starts = [] if starts is None else [i for i in labels if i not in starts]
        self.non_ends = [] if ends is None else [i for i in labels if i not in ends]

    def decode(self, nodes):
        """The highest-scoring label path for emission scores ``nodes`` ``(seq, num_labels)``.

        Args:
            nodes: per-position label scores (left unmodified).

        Returns:
            An int numpy array of ``seq`` labels (ties go to the lowest label).
        """
        nodes = np.array(nodes, dtype="float64")
        if nodes.ndim != 2 or nodes.shape[1] != self.num_labels:
            raise SnippetError(
                f"ViterbiDecoder.decode: nodes must have shape (seq, {self.num_labels}), got "
                f"{nodes.shape}."
            )
        if len(nodes) == 0:
            return np.zeros(0, dtype=int)
        nodes[0, self.non_starts] = -np.inf
        nodes[-1, self.non_ends] = -np.inf
        scores = nodes[0]
        backpointers = []
        for emission in nodes[1:]:
            candidates = scores[:, None] + self.trans  # (previous, next)
            best_previous = candidates.argmax(axis=0)
            backpointers.append(best_previous)
            scores = candidates[best_previous, np.arange(self.num_labels)] + emission
        path = [int(scores.argmax())]
        for best_previous in reversed(backpointers):
            path.append(int(best_previous[path[-1]]))
        return np.array(path[::-1])


def softmax(x, axis=-1):
    """Numerically stable numpy softmax.

    Args:
        x: scores.
        axis: the axis normalized.

    Example:

    >>> softmax(np.array([0.0, np.log(3.0)])).tolist()
    [0.25, 0.75]
    """
    x = np.asarray(x)
    x = np.exp(x - x.max(axis=axis, keepdims=True))
    return x / x.sum(axis=axis, keepdims=True)


def _select_rows(states, rows, num_rows):
    """Take ``rows`` of every array in ``states`` whose leading axis has ``num_rows`` rows."""
    if states is None:
        return None
    if isinstance(states, dict):
        return {k: _select_rows(v, rows, num_rows) for k, v in states.items()}
    if isinstance(states, (list, tuple)):
        selected = [_select_rows(s, rows, num_rows) for s in states]
        return type(states)(selected) if type(states) in (list, tuple) else type(states)(*selected)
    shape = getattr(states, "shape", None)
    if shape is not None and len(shape) >= 1 and shape[0] == num_rows:
        return states[rows]
    return states


class AutoRegressiveDecoder:
    """Beam search and sampling over a step-wise predictor (bert4keras's decoder base).

    Subclass it and define ``predict(self, inputs, output_ids, states)`` decorated with
    :meth:`wraps`. ``inputs`` is a list of arrays with one row per live candidate,
    ``output_ids`` ``(rows, t)`` the ids generated so far (starting with ``start_id`` unless
    it is None); ``predict`` returns the next-token scores ``(rows, vocab)`` as
    probabilities or logits (``default_rtype``), and with ``use_states=True`` a pair
    ``(scores, new_states)``.

    States let ``predict`` cache work between steps (the keys/values of past tokens, an
    RNN state, ...): with ``states`` it only needs to process the newest id. ``states`` is
    what the caller passed (None by default) on the first step and the previous step's
    return afterwards. Unlike bert4keras, the decoder keeps states aligned with the
    candidates: every array in ``states`` (nested in lists, tuples or dicts) whose leading
    axis has one entry per row is re-indexed as rows are repeated, reordered by the beam or
    dropped when finished; other leaves pass through unchanged. For kerasbert's LM / UniLM
    models, :class:`kerasbert.models.IncrementalModel` returns exactly such a cache of past
    keys and values, so ``predict`` processes only the newest id.

    Args:
        start_id: id every output starts with (None: start from nothing).
        end_id: id that ends an output.
        maxlen: the most ids generated.
        minlen: outputs shorter than this (counting ``start_id``) do not end.

    Example:

    >>> class Counter(AutoRegressiveDecoder):
    ...     @AutoRegressiveDecoder.wraps(default_rtype="probas")
    ...     def predict(self, inputs, output_ids, states):
    ...         # id t+1 after t, up to the end id 3
    ...         return np.eye(4)[np.minimum(output_ids[:, -1] + 1, 3)]
    >>> Counter(start_id=0, end_id=3, maxlen=10).beam_search([np.zeros(1)], topk=2).tolist()
    [0, 1, 2, 3]
    """

    def __init__(self, start_id, end_id, maxlen, minlen=1):
        self.start_id = start_id
        self.end_id = end_id
        self.maxlen = maxlen
        self.minlen = minlen
        self.models = {}
        if start_id is None:
            self.first_output_ids = np.empty((1, 0), dtype=int)
        else:
            self.first_output_ids = np.array([[start_id]])

    @staticmethod
    def wraps(default_rtype="probas", use_states=False):
        """Decorator completing a subclass's ``predict(self, inputs, output_ids, states)``.

        The decorated method takes ``(inputs, output_ids, states, temperature=1,
        rtype=default_rtype)`` and returns ``(scores, states)``: probabilities
        (``rtype="probas"``) or log-probabilities (``rtype="logits"``) at the temperature.

        Args:
            default_rtype: what ``predict`` returns: ``"probas"`` (normalized
                probabilities) or ``"logits"`` (scores before the softmax).
            use_states: ``predict`` returns ``(scores, states)`` rather than ``scores``.
        """
        if default_rtype not in ("probas", "logits"):
            raise SnippetError(
                f'AutoRegressiveDecoder.wraps: default_rtype must be "probas" or "logits", '
                f"got {default_rtype!r}."
            )

        def decorator(predict):
            @functools.wraps(predict)
            def wrapped(self, inputs, output_ids, states, temperature=1, rtype=default_rtype):
                if rtype not in ("probas", "logits"):
                    raise SnippetError(
                        f'predict: rtype must be "probas" or "logits", got {rtype!r}.'
                    )
                result = predict(self, inputs, output_ids, states)
                scores, states = result if use_states else (result, None)
                scores = np.asarray(scores)
                if default_rtype == "logits":
                    probas = softmax(scores / temperature)
                elif temperature != 1:
                    probas = np.power(scores, 1.0 / temperature)
                    probas = probas / probas.sum(axis=-1, keepdims=True)
                else:
                    probas = scores
                if rtype == "probas":
                    return probas, states
                return np.log(probas + 1e-12), states

            return wrapped

        return decorator

    def last_token(self, model):
        """``model`` with every output reduced to its last position (cached per model).

        Args:
            model: a Keras model whose outputs are ``(batch, seq, ...)``.
        """
        if model not in self.models:
            import keras

            from kerasbert.layers.core import TokenSlice

            outputs = [TokenSlice(-1)(output) for output in model.outputs]
            self.models[model] = keras.Model(model.inputs, outputs)
        return self.models[model]

    def predict(self, inputs, output_ids, states=None):
        """Next-token scores for each row; subclasses define it, decorated with :meth:`wraps`.

        Args:
            inputs: list of arrays, one row per candidate.
            output_ids: ``(rows, t)`` ids so far.
            states: None, the caller's initial states, or the previous step's states.
        """
        raise NotImplementedError("Subclasses define predict(), decorated with wraps().")

    def _check(self, inputs, name):
        if not isinstance(inputs, (list, tuple)):
            raise SnippetError(
                f"{name}: inputs must be a list of arrays (one per model input), got "
                f"{type(inputs).__name__}; wrap a single input as [x]."
            )
        return [np.array([x]) for x in inputs]

    def beam_search(self, inputs, topk, states=None, temperature=1, min_ends=1):
        """The best output by beam search with ``topk`` beams (bert4keras semantics).

        Each step keeps the ``topk`` best continuations by total log-probability. When the
        best one has ended (its last id is ``end_id`` and it holds ``min_ends`` of them) it is
        returned; other ended candidates are dropped and the beam narrows. After ``maxlen``
        steps the best candidate is returned.

        Args:
            inputs: list of the model inputs of one example (no batch axis).
            topk: beam size.
            states: initial states for ``predict``.
            temperature: softmax temperature.
            min_ends: how many ``end_id`` an output needs to end.

        Returns:
            A numpy array of ids (with ``start_id`` first unless it is None).
        """
        inputs = self._check(inputs, "beam_search")
        output_ids, output_scores = self.first_output_ids, np.zeros(1)
        for _ in range(self.maxlen):
            scores, states = self.predict(inputs, output_ids, states, temperature, "logits")
            scores = output_scores.reshape((-1, 1)) + scores
            k = min(topk, scores.size)
            flat = scores.argpartition(-k, axis=None)[-k:]
            rows, ids = flat // scores.shape[1], flat % scores.shape[1]
            states = _select_rows(states, rows, len(output_ids))
            inputs = [x[rows] for x in inputs]  # one row per candidate (all rows are equal)
            output_ids = np.concatenate([output_ids[rows], ids[:, None]], 1)
            output_scores = scores.reshape(-1)[flat]
            is_end = output_ids[:, -1] == self.end_id
            end_counts = (output_ids == self.end_id).sum(1)
            if output_ids.shape[1] >= self.minlen:
                best = output_scores.argmax()
                if is_end[best] and end_counts[best] >= min_ends:
                    return output_ids[best]
                live = ~is_end | (end_counts < min_ends)
                if not live.all():
                    inputs = [x[live] for x in inputs]
                    states = _select_rows(states, np.flatnonzero(live), len(output_ids))
                    output_ids, output_scores = output_ids[live], output_scores[live]
                    topk = int(live.sum())
        return output_ids[output_scores.argmax()]

    def random_sample(
        self,
        inputs,
        n,
        topk=None,
        topp=None,
        states=None,
        temperature=1,
        min_ends=1,
        rng=None,
    ):
        """``n`` outputs sampled id by id (bert4keras semantics).

        Args:
            inputs: list of the model inputs of one example (no batch axis).
            n: how many outputs.
            topk: sample only among the ``topk`` most likely ids.
            topp: sample only among the most likely ids whose probabilities first reach
                ``topp`` in total (nucleus sampling); applied after ``topk``.
            states: initial states for ``predict``.
            temperature: softmax temperature.
            min_ends: how many ``end_id`` an output needs to end.
            rng: a ``numpy.random.Generator`` (default: numpy's global random state).

        Returns:
            A list of ``n`` id arrays, those that ended first (in the order they ended).
        """
        inputs = self._check(inputs, "random_sample")
        draw = rng.random if rng is not None else np.random.random_sample
        output_ids = self.first_output_ids
        results = []
        for step in range(self.maxlen):
            probas, states = self.predict(inputs, output_ids, states, temperature, "probas")
            probas = probas / probas.sum(axis=1, keepdims=True)
            if step == 0:
                probas = np.repeat(probas, n, axis=0)
                inputs = [np.repeat(x, n, axis=0) for x in inputs]
                states = _select_rows(states, np.zeros(n, dtype=int), 1)
                output_ids = np.repeat(output_ids, n, axis=0)
            candidates = np.broadcast_to(np.arange(probas.shape[1]), probas.shape)
            if topk is not None:
                keep = probas.argpartition(-topk, axis=1)[:, -topk:]
                candidates = np.take_along_axis(candidates, keep, axis=1)
                probas = np.take_along_axis(probas, keep, axis=1)
                probas = probas / probas.sum(axis=1, keepdims=True)
            if topp is not None:
                order = probas.argsort(axis=1)[:, ::-1]
                candidates = np.take_along_axis(candidates, order, axis=1)
                probas = np.take_along_axis(probas, order, axis=1)
                # Keep the most likely id, and each next one while those before it have
                # not reached topp yet.
                cumulative = np.cumsum(probas, axis=1)
                keep = np.concatenate(
                    [np.ones_like(probas[:, :1], bool), cumulative[:, :-1] < topp], 1
                )
                probas = np.where(keep, probas, 0.0)
                probas = probas / probas.sum(axis=1, keepdims=True)
            cumulative = np.cumsum(probas, axis=1)
            threshold = draw((len(probas), 1)) * cumulative[:, -1:]
            chosen = np.argmax(cumulative > threshold, axis=1)
            sample_ids = candidates[np.arange(len(probas)), chosen]
            output_ids = np.concatenate([output_ids, sample_ids[:, None]], 1)
            is_end = output_ids[:, -1] == self.end_id
            end_counts = (output_ids == self.end_id).sum(1)
            if output_ids.shape[1] >= self.minlen:
                done = is_end & (end_counts >= min_ends)
                if done.any():
                    results.extend(output_ids[done])
                    live = ~done
                    inputs = [x[live] for x in inputs]
                    states = _select_rows(states, np.flatnonzero(live), len(output_ids))
                    output_ids = output_ids[live]
                    if len(output_ids) == 0:
                        break
        results.extend(output_ids)
        return results


def to_array(*args):
    """Turn each argument into a numpy array (bert4keras's ``to_array``).

    Example:

    >>> to_array([1, 2])[0].dtype.kind
    'i'
    """
    results = [np.array(a) for a in args]
    return results[0] if len(args) == 1 else results


def is_string(value):
    """Whether ``value`` is a str."""
    return isinstance(value, str)


def strQ2B(text):  # noqa: N802 (bert4keras's name)
    """Full-width characters to half-width (ideographic space to space).

    Example:

    >>> strQ2B("ＡＢＣ１２３，")
    'ABC123,'
    """
    out = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            code = 0x20
        elif 0xFF01 <= code <= 0xFF5E:
            code -= 0xFEE0
        out.append(chr(code))
    return "".join(out)


def longest_common_substring(source, target):
    """Longest common contiguous run: ``(length, (source_start, source_end, target_start,
    target_end))`` with exclusive ends.

    Example:

    >>> longest_common_substring("abcde", "xbcdy")
    (3, (1, 4, 1, 4))
    """
    best, span = 0, (0, 0, 0, 0)
    previous = [0] * (len(target) + 1)
    for i in range(1, len(source) + 1):
        current = [0] * (len(target) + 1)
        for j in range(1, len(target) + 1):
            if source[i - 1] == target[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best, span = current[j], (i - current[j], i, j - current[j], j)
        previous = current
    return best, span


def longest_common_subsequence(source, target):
    """Longest common subsequence: ``(length, [(source_index, target_index), ...])``.

    Example:

    >>> longest_common_subsequence("abcde", "ace")
    (3, [(0, 0), (2, 1), (4, 2)])
    """
    n, m = len(source), len(target)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n):
        for j in range(m):
            if source[i] == target[j]:
                table[i + 1][j + 1] = table[i][j] + 1
            else:
                table[i + 1][j + 1] = max(table[i][j + 1], table[i + 1][j])
    pairs, i, j = [], n, m
    while i and j:
        if source[i - 1] == target[j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i - 1][j] >= table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return table[n][m], pairs[::-1]


def insert_arguments(**arguments):
    """Class decorator adding keyword arguments (with defaults) stored as attributes.

    Example:

    >>> @insert_arguments(size=3)
    ... class Box:
    ...     def __init__(self, **kwargs):
    ...         pass
    >>> Box(size=5).size, Box().size
    (5, 3)
    """

    def decorator(cls):
        init = cls.__init__

        @functools.wraps(init)
        def new_init(self, *args, **kwargs):
            for key, default in arguments.items():
                setattr(self, key, kwargs.pop(key, default))
            init(self, *args, **kwargs)

        cls.__init__ = new_init
        return cls

    return decorator


def delete_arguments(*names):
    """Class decorator refusing the named keyword arguments with a clear error."""

    def decorator(cls):
        init = cls.__init__

        @functools.wraps(init)
        def new_init(self, *args, **kwargs):
            for name in names:
                if name in kwargs:
                    raise SnippetError(f"{cls.__name__} does not take the argument {name!r}.")
            init(self, *args, **kwargs)

        cls.__init__ = new_init
        return cls

    return decorator


__all__ = [
    "AutoRegressiveDecoder",
    "CompilationCounter",
    "ShapeCounter",
    "batch_signature",
    "pad_batch",
    "delete_arguments",
    "insert_arguments",
    "is_string",
    "longest_common_subsequence",
    "longest_common_substring",
    "strQ2B",
    "to_array",
    "DataGenerator",
    "SnippetError",
    "ViterbiDecoder",
    "bucket_length",
    "make_buckets",
    "sequence_padding",
    "softmax",
    "text_segmentate",
    "truncate_sequences",
]
