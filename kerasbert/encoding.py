"""Batched, length-bucketed sentence and token vectors (bert-as-service style).

Sentences are sorted by length and cut into batches; each batch is padded to the smallest
of a few bucket lengths, so a corpus of many lengths compiles a handful of shapes.
"""

import sys

import numpy as np

from kerasbert.errors import KerasBertError
from kerasbert.snippets import bucket_length, make_buckets

POOLINGS = ("cls", "mean", "max", "none")
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


def _pool(vectors, lengths, pooling):
    mask = (np.arange(vectors.shape[1])[None, :] < lengths[:, None])[..., None]
    if pooling == "cls":
        return vectors[:, 0]
    if pooling == "mean":
        return (vectors * mask).sum(1) / np.maximum(mask.sum(1), 1)
    if pooling == "max":
        return np.where(mask, vectors, -np.inf).max(1)
    return [v[:n] for v, n in zip(vectors, lengths)]


class SentenceEncoder:
    """Encode sentences (or ``"a ||| b"`` pairs) into vectors with a kerasbert encoder.

    Args:
        model: a model whose first output is the sequence output ``(batch, T, hidden)``
            (``build_transformer_model`` without heads).
        tokenizer: a :class:`kerasbert.tokenizers.Tokenizer`.
        pooling: ``"cls"``, ``"mean"``, ``"max"``, or ``"none"`` (token vectors).
        max_seq_len: tokens per sentence (longer ones are truncated).
        batch_size: sentences per batch.
        normalize: L2-normalize pooled vectors.
        buckets: padded lengths allowed (default: powers of two up to ``max_seq_len``).

    The number of distinct padded shapes run so far is ``len(encoder.compiled_shapes)``.

    Example:

    >>> import kerasbert
    >>> from kerasbert.tokenizers import Tokenizer
    >>> tok = Tokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4})
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 5, "hidden_size": 4, "num_hidden_layers": 1,
    ...      "num_attention_heads": 1, "intermediate_size": 8})
    >>> SentenceEncoder(model, tok, max_seq_len=16).encode(["a", "a a a"]).shape
    (2, 4)
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
        if pooling not in POOLINGS:
            raise KerasBertError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
        if max_seq_len < 2:
            raise KerasBertError(f"max_seq_len must be at least 2, got {max_seq_len}.")
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_seq_len = max_seq_len
        self.batch_size = batch_size
        self.normalize = normalize
        self.buckets = buckets or make_buckets(max_seq_len)
        self.compiled_shapes = set()
        self._with_segments = len(model.inputs) > 1

    def _run(self, token_ids, segment_ids):
        self.compiled_shapes.add(token_ids.shape)
        inputs = [token_ids, segment_ids] if self._with_segments else token_ids
        outputs = self.model.predict_on_batch(inputs)
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return np.asarray(outputs)

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
            lengths = np.array([len(encoded[i][0]) for i in rows])
            width = bucket_length(int(lengths.max()), self.buckets)
            token_ids = np.zeros((len(rows), width), np.int32)
            segment_ids = np.zeros((len(rows), width), np.int32)
            for r, i in enumerate(rows):
                ids, segments = encoded[i]
                token_ids[r, : len(ids)] = ids
                segment_ids[r, : len(segments)] = segments
            pooled = _pool(self._run(token_ids, segment_ids), lengths, self.pooling)
            for r, i in enumerate(rows):
                results[i] = pooled[r]
            if progress:
                done = min(start + self.batch_size, len(order))
                bar = "#" * int(30 * done / max(len(order), 1))
                print(f"\rencoding [{bar:<30}] {done}/{len(order)}", end="", file=sys.stderr)
        if progress:
            print(file=sys.stderr)
        if self.pooling == "none":
            return results
        vectors = np.stack(results).astype("float32") if results else np.zeros((0, 0), "float32")
        if self.normalize and len(vectors):
            vectors /= np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
        return vectors
