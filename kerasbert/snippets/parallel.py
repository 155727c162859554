"""bert4keras's ``parallel_apply`` and ``parallel_apply_generator``: ``func`` over an iterable
in worker processes (or threads), with a bounded queue, standard library only.

Workers are ``multiprocessing`` processes (or ``threading`` threads with ``dummy=True``)
started for one call and stopped at its end: when the iterable is exhausted, when ``func``
raises (the error reaches the caller), when a worker dies, or when the caller stops
iterating. Processes are daemonic, so none outlives the program either.

Which start method is safe:

* ``"fork"`` (Linux's default before Python 3.14): ``func`` may be any callable, closures
  and lambdas included, since the workers inherit it. Once JAX has started its threads
  (after any Keras/JAX computation) the child gets a copy of a multi-threaded process: JAX
  warns ("os.fork() was called ..."), and a child that uses JAX or Keras may deadlock. Plain
  Python and numpy work (tokenizing, building training instances), which is what these
  helpers are for.
* ``"spawn"`` and ``"forkserver"`` (macOS's and Windows' default, Linux's from 3.14): fresh
  interpreters, safe with JAX; ``func`` must be picklable, i.e. a top-level function of an
  importable module (or a ``functools.partial`` of one), and the script's top level must be
  guarded by ``if __name__ == "__main__":``.
* ``dummy=True``: threads in this process; anything goes, and JAX may be used in ``func``,
  but pure-Python work does not run in parallel (the GIL).

In processes the items and results travel pickled, so they must be picklable.
"""

import contextlib
import itertools
import multiprocessing
import pickle
import queue
import threading
import traceback

import numpy as np

from kerasbert.errors import SnippetError

_POLL_SECONDS = 0.1  # how often a waiting caller checks that the workers are alive
_JOIN_SECONDS = 5.0  # how long a finished worker may take to exit before it is terminated


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (its ``__cause__``)."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def __str__(self):
        return f"\n\nThe error was raised in a worker process:\n\n{self.text}"


def _seed(seed):
    np.random.seed(seed)


def _process_worker(func, seeding, in_queue, out_queue):
    """A worker process: apply ``func`` to pickled ``(index, item)`` until a None arrives."""
    if seeding:
        _seed(seeding[0])
    while True:
        data = in_queue.get()
        if data is None:
            return
        index = None
        try:
            index, item = pickle.loads(data)
            message = (index, True, func(item), None)
            try:
                payload = pickle.dumps(message)
            except Exception as error:
                raise SnippetError(
                    f"parallel_apply: the result of func for item {index} cannot be pickled "
                    f"({type(error).__name__}: {error}); return picklable values (numbers, "
                    "strings, lists, dicts, numpy arrays), or pass dummy=True for threads."
                ) from None
        except Exception as error:
            text = traceback.format_exc()
            try:
                payload = pickle.dumps((index, False, error, text))
                pickle.loads(payload)
            except Exception:
                stand_in = SnippetError(
                    f"func raised {type(error).__name__}: {error} (on item {index}; the "
                    "exception itself could not be pickled)"
                )
                payload = pickle.dumps((index, False, stand_in, text))
        out_queue.put(payload)


def _thread_worker(func, in_queue, out_queue, stop):
    while not stop.is_set():
        try:
            data = in_queue.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            continue
        index, item = data
        try:
            out_queue.put((index, True, func(item), None))
        except Exception as error:
            out_queue.put((index, False, error, None))


class _Workers:
    """The workers of one call and their two queues."""

    def __init__(self, func, workers, max_queue_size, dummy, seeds, start_method):
        self.dummy, self.stop = dummy, threading.Event()
        if dummy:
            self.in_queue, self.out_queue = queue.Queue(max_queue_size), queue.Queue()
            self.workers = [
                threading.Thread(
                    target=_thread_worker,
                    args=(func, self.in_queue, self.out_queue, self.stop),
                    name=f"kerasbert-parallel-apply-{i}",
                    daemon=True,
                )
                for i in range(workers)
            ]
        else:
            context = multiprocessing.get_context(start_method)
            self.in_queue, self.out_queue = context.Queue(max_queue_size), context.Queue()
            self.workers = [
                context.Process(
                    target=_process_worker,
                    args=(func, seeds[i : i + 1], self.in_queue, self.out_queue),
                    name=f"kerasbert-parallel-apply-{i}",
                    daemon=True,
                )
                for i in range(workers)
            ]
        try:
            for worker in self.workers:
                worker.start()
        except Exception as error:
            self.close(finished=False)
            if dummy:
                raise
            raise SnippetError(
                f"parallel_apply could not start its worker processes ({type(error).__name__}: "
                f"{error}). With the {start_method or multiprocessing.get_start_method()!r} "
                "start method func must be picklable (a top-level function of an importable "
                "module, not a lambda or a nested function) and a script must keep its top "
                "level under `if __name__ == '__main__':`. Fix that, or pass "
                "start_method='fork' (Linux), or dummy=True for threads."
            ) from error

    def _check_alive(self):
        for worker in self.workers:
            if not worker.is_alive():
                code = getattr(worker, "exitcode", None)
                raise SnippetError(
                    f"parallel_apply: the worker {worker.name} exited (exit code {code}) while "
                    "items were pending. Its traceback, if it had one, is on stderr; a worker "
                    "started by 'spawn' or 'forkserver' fails this way when it cannot import "
                    "func's module or the script's top level is not under "
                    "`if __name__ == '__main__':`; one killed for memory or crashed in native "
                    "code too (then fewer workers or smaller items may help)."
                )

    def put(self, index, item):
        if self.dummy:
            data = (index, item)
        else:
            try:
                data = pickle.dumps((index, item))
            except Exception as error:
                raise SnippetError(
                    f"parallel_apply: item {index} of the iterable cannot be pickled for the "
                    f"worker processes ({type(error).__name__}: {error}); pass picklable "
                    "items, or dummy=True for threads."
                ) from None
        while True:
            try:
                self.in_queue.put(data, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                self._check_alive()

    def get(self, block=True):
        """The next ``(index, result)``, or None if ``block`` is False and none is ready."""
        while True:
            try:
                if block:
                    message = self.out_queue.get(timeout=_POLL_SECONDS)
                else:
                    message = self.out_queue.get_nowait()
                break
            except queue.Empty:
                if not block:
                    return None
                self._check_alive()
        index, ok, value, text = message if self.dummy else pickle.loads(message)
        if ok:
            return index, value
        if text is None:
            raise value
        raise value from _RemoteTraceback(text)

    def close(self, finished):
        """Stop the workers: let them exit if ``finished``, else stop them at once."""
        self.stop.set()
        started = [w for w in self.workers if w.ident is not None]
        if self.dummy:
            # Each thread exits after its current item (threads cannot be stopped midway;
            # they are daemonic, so one stuck in func does not keep the program alive).
            for worker in started:
                worker.join(_JOIN_SECONDS)
            return
        if finished:
            for _ in started:
                try:
                    self.in_queue.put(None, timeout=_JOIN_SECONDS)
                except queue.Full:
                    break
            for worker in started:
                worker.join(_JOIN_SECONDS)
        for worker in started:
            if worker.is_alive():
                worker.terminate()
            worker.join()
        self.in_queue.cancel_join_thread()
        for q in (self.in_queue, self.out_queue):
            q.close()


def _seeds(random_seeds, workers):
    if random_seeds is True:
        return [None] * workers
    if random_seeds is None or random_seeds is False:
        return []
    return list(random_seeds)


def _check(workers, max_queue_size, start_method):
    for name, value in (("workers", workers), ("max_queue_size", max_queue_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SnippetError(f"parallel_apply: {name} must be a positive int; got {value!r}.")
    methods = multiprocessing.get_all_start_methods()
    if start_method is not None and start_method not in methods:
        raise SnippetError(
            f"parallel_apply: start_method {start_method!r} is not available here; use None "
            f"(the default) or one of {methods}."
        )


def parallel_apply_generator(
    func, iterable, workers, max_queue_size, dummy=False, random_seeds=True, *, start_method=None
):
    """Apply ``func`` to each item of ``iterable`` in worker processes, yielding as they finish.

    Yields ``(index, func(item))`` pairs, ``index`` being the item's position in
    ``iterable``, in the order the workers finish (not necessarily the input order). Items
    are taken from ``iterable`` only as workers get free: at most ``max_queue_size`` wait
    for a worker and at most ``max_queue_size + workers`` are taken but not yet yielded, so
    an endless iterable works. The workers start at the first ``next()`` and stop when the
    generator ends, is closed, or raises. See the module docstring for which ``func`` is
    safe with which start method.

    Args:
        func: a function of one item.
        iterable: the items.
        workers: how many worker processes (threads with ``dummy``).
        max_queue_size: how many items may wait for a worker.
        dummy: use threads instead of processes.
        random_seeds: seeds of numpy's global random generator in each worker: True (the
            default) seeds every worker afresh from the OS (forked workers would otherwise
            all draw the same numbers), a list gives worker ``i`` the seed
            ``random_seeds[i]`` (workers past its end are not reseeded), False or None
            leaves the generators alone. Threads share this process's one generator and are
            never reseeded.
        start_method: the ``multiprocessing`` start method (``"fork"``, ``"spawn"``,
            ``"forkserver"``); None: Python's default. Not used with ``dummy``.

    Raises:
        SnippetError: bad ``workers``, ``max_queue_size`` or ``start_method``; workers that
            cannot start (an unpicklable ``func`` with ``"spawn"``), unpicklable items or
            results, or a worker that died. An exception ``func`` raises is raised again
            here, with the worker's traceback as its cause.

    Example:

    >>> import math
    >>> sorted(parallel_apply_generator(math.sqrt, [1, 4, 9], workers=2, max_queue_size=4,
    ...                                 dummy=True))
    [(0, 1.0), (1, 2.0), (2, 3.0)]
    """
    _check(workers, max_queue_size, start_method)
    seeds = _seeds(random_seeds, workers)
    return _generate(func, iterable, workers, max_queue_size, dummy, seeds, start_method)


def _generate(func, iterable, workers, max_queue_size, dummy, seeds, start_method):
    pool = _Workers(func, workers, max_queue_size, dummy, seeds, start_method)
    finished, pending, limit = False, 0, max_queue_size + workers
    try:
        for index, item in enumerate(iterable):
            while pending >= limit:
                yield pool.get()
                pending -= 1
            pool.put(index, item)
            pending += 1
            while pending:
                result = pool.get(block=False)
                if result is None:
                    break
                yield result
                pending -= 1
        while pending:
            yield pool.get()
            pending -= 1
        finished = True
    finally:
        pool.close(finished)


def parallel_apply(
    func,
    iterable,
    workers,
    max_queue_size,
    callback=None,
    dummy=False,
    random_seeds=True,
    unordered=True,
    *,
    start_method=None,
):
    """Apply ``func`` to each item of ``iterable`` in worker processes (or threads).

    Without ``callback`` it returns the list of results: in the order the workers finished
    them (``unordered=True``, bert4keras's default) or in the input order
    (``unordered=False``). With ``callback`` it returns None and calls ``callback(result)``
    on each result as it arrives (bert4keras's use: writing records while the workers go
    on); ``unordered=False`` then holds back early results so that the callback sees the
    input order (bert4keras ignored ``unordered`` with a callback). See
    :func:`parallel_apply_generator` for the queue, the seeds and the errors, and the module
    docstring for which ``func`` is safe with which start method.

    Args:
        func: a function of one item.
        iterable: the items.
        workers: how many worker processes (threads with ``dummy``).
        max_queue_size: how many items may wait for a worker.
        callback: called on each result; None to return them as a list.
        dummy: use threads instead of processes.
        random_seeds: numpy seeds of the workers (see :func:`parallel_apply_generator`).
        unordered: False to keep the input order.
        start_method: the ``multiprocessing`` start method; None: Python's default.

    Example:

    >>> import math
    >>> parallel_apply(math.sqrt, [1, 4, 9, 16], workers=2, max_queue_size=2, dummy=True,
    ...                unordered=False)
    [1.0, 2.0, 3.0, 4.0]
    >>> out = []
    >>> parallel_apply(abs, [-1, -2], 2, 2, callback=out.append, dummy=True)
    >>> sorted(out)
    [1, 2]
    """
    generator = parallel_apply_generator(
        func, iterable, workers, max_queue_size, dummy, random_seeds, start_method=start_method
    )
    with contextlib.closing(generator):
        if callback is None:
            if unordered:
                return [result for _, result in generator]
            return [result for _, result in sorted(generator, key=lambda pair: pair[0])]
        if unordered:
            for _, result in generator:
                callback(result)
            return None
        waiting, expected = {}, itertools.count()
        next_index = next(expected)
        for index, result in generator:
            waiting[index] = result
            while next_index in waiting:
                callback(waiting.pop(next_index))
                next_index = next(expected)
        return None
