"""bert4keras's ``DataGenerator`` batch template, with length buckets and a fixed batch size.

:class:`DataGenerator` turns a dataset into batches for ``model.fit``
(:meth:`~DataGenerator.forfit`), ``model.predict`` (:meth:`~DataGenerator.fortest`) or a
``keras.utils.PyDataset`` (:meth:`~DataGenerator.to_pydataset`; its class is built on first
use, so Keras is imported only then). The ``buckets`` and ``remainder`` arguments bound the
batch shapes, which the generator records in a :class:`~kerasbert.compilation.ShapeCounter`.
"""

import functools
import threading

import numpy as np

from kerasbert.compilation import ShapeCounter
from kerasbert.errors import SnippetError
from kerasbert.snippets.padding import sequence_padding

REMAINDERS = ("keep", "drop", "fill")


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
