"""Bounded shapes and counted compilations: length buckets, shape and compilation counters.

On JAX every distinct input shape is a separate XLA program, compiled on first use. This
module holds the two halves of keeping that cost under control:

* length buckets: :func:`make_buckets` picks a bounded, sorted list of padded lengths and
  :func:`bucket_length` rounds a length up to one of them, so that a corpus of any mix of
  lengths compiles one program per bucket rather than one per length;
* counting: :func:`batch_signature` summarises a (nested) batch's shapes,
  :class:`ShapeCounter` counts the distinct ones a pipeline produced and
  :class:`CompilationCounter` counts the XLA compilations JAX really performed (from its
  compile events).

It is core code: the sentence encoder (:mod:`kerasbert.encoding`) and incremental decoding
(:mod:`kerasbert.models.decoding`) use it, and the bert4keras-style :mod:`kerasbert.snippets`
re-exports every name (its ``sequence_padding`` and ``DataGenerator`` take ``buckets``).
Only numpy is imported; JAX only when a :class:`CompilationCounter` is entered.
"""

import logging
import threading

import numpy as np

from kerasbert.errors import SnippetError

# The counters log on the "kerasbert.snippets" logger, where they were first defined: users
# (and the tests) switch their INFO messages on by that name.
logger = logging.getLogger("kerasbert.snippets")


# -- length buckets -------------------------------------------------------------------------------


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


__all__ = [
    "CompilationCounter",
    "ShapeCounter",
    "batch_signature",
    "bucket_length",
    "make_buckets",
]
