"""Dynamic batching: the texts of every pending request, merged into model batches.

Each request becomes a :class:`Job` whose texts wait as rows in one queue. The worker
thread (:meth:`Batcher.run`) takes the oldest waiting row, then up to ``max_batch_size``
rows of the same length bucket in arrival order (from any request, any client), runs them
as one batch and writes each vector into its job's row; a job whose last row is done is
handed to its ``on_done`` callback (which sends the reply). So requests are split and
merged freely, every reply keeps its own texts' order, and a batch pads only to its own
bucket. Rows of a cancelled job (its client went away) are dropped before they run.
"""

import collections
import logging
import threading
import time

import numpy as np

logger = logging.getLogger("kerasbert.serving")


class Job:
    """One request's texts and their vectors as they are computed.

    Args:
        key: who asked (``(identity, request id)`` for ZeroMQ, an object for HTTP).
        features: a list of :class:`~kerasbert.serving.features.Features`.
        columns: for token vectors (``NONE``), the columns of the reply (the request's
            token limit); None for pooled vectors.
        on_done: called with the job from the worker thread when every row is done, or
            when the job failed (``job.error`` is then set).
    """

    def __init__(self, key, features, columns, on_done):
        self.key = key
        self.features = features
        self.columns = columns
        self.on_done = on_done
        self.results = [None] * len(features)
        self.remaining = len(features)
        self.cancelled = False
        self.error = None
        self.created = time.monotonic()

    @property
    def tokens(self):
        return [f.tokens for f in self.features]

    def vectors(self):
        """The reply's array: ``(n, D)``, or ``(n, columns, D)`` for token vectors."""
        if self.columns is None:
            return np.stack(self.results)
        rows = []
        for vectors in self.results:
            padded = np.zeros((self.columns, vectors.shape[-1]), vectors.dtype)
            kept = min(self.columns, len(vectors))
            padded[:kept] = vectors[:kept]
            rows.append(padded)
        return np.stack(rows)


class Batcher:
    """The queue of waiting rows and the worker loop that runs them on an Engine.

    Args:
        engine: a :class:`~kerasbert.serving.engine.Engine`.
        max_batch_size: the most rows in one model batch.
        merge_requests: merge rows of different requests into one batch (False: each
            batch holds one request's rows only, as bert-serving-server does: the
            benchmark's naive peer).
    """

    def __init__(self, engine, max_batch_size, merge_requests=True):
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.merge_requests = merge_requests
        self._rows = collections.deque()  # (job, row index)
        self._condition = threading.Condition()
        self._stopping = False
        self.rows_run = 0

    def submit(self, job):
        with self._condition:
            self._rows.extend((job, i) for i in range(len(job.features)))
            self._condition.notify()

    def stop(self):
        """Finish the rows already queued, then end every :meth:`run`."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()

    def _take_batch(self):
        """The next batch's ``(job, row)`` pairs (oldest row first, its length bucket
        only), or None once stopping with nothing left."""
        with self._condition:
            while True:
                while self._rows and self._rows[0][0].cancelled:
                    self._rows.popleft()
                if self._rows:
                    break
                if self._stopping:
                    return None
                self._condition.wait()
            first_job, first_row = self._rows[0]
            bucket = self.engine.shape_for(1, first_job.features[first_row].length)[1]
            batch, rest = [], collections.deque()
            while self._rows:
                job, row = self._rows.popleft()
                if job.cancelled:
                    continue
                length = job.features[row].length
                same = len(batch) < self.max_batch_size and (
                    self.engine.shape_for(1, length)[1] == bucket
                    and (self.merge_requests or job is first_job)
                )
                (batch if same else rest).append((job, row))
            self._rows = rest
            return batch

    def run(self, device=None):
        """The worker loop (run it in a thread, one per model replica, ``device`` its
        JAX device); returns after :meth:`stop` once the queue is empty."""
        while (batch := self._take_batch()) is not None:
            try:
                vectors = self.engine.run([job.features[row] for job, row in batch], device)
            except Exception as e:  # noqa: BLE001 (the job fails, the server goes on)
                logger.exception("a batch failed")
                failed = {id(job): job for job, _ in batch}
                for job in failed.values():
                    if job.error is None:
                        job.error = f"the model failed on this request ({type(e).__name__})"
                        job.on_done(job)
                continue
            self.rows_run += len(batch)
            for (job, row), vector in zip(batch, vectors):
                if job.error is not None or job.cancelled:
                    continue
                job.results[row] = vector
                job.remaining -= 1
                if job.remaining == 0:
                    try:
                        job.on_done(job)
                    except Exception:  # noqa: BLE001 (the worker goes on with the others)
                        logger.exception("sending a reply failed")
