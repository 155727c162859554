"""Batched, length-bucketed sentence and token vectors (bert-as-service style).

Sentences are sorted by length and cut into batches of ``batch_size`` rows (the last one
padded with repeated rows); each batch is padded to the smallest of a few bucket lengths.
On JAX one jitted function runs the model and the pooling, so only ``(batch, hidden)``
comes back to the host, and a corpus of any mix of lengths compiles at most one program per
bucket (``encoder.num_compilations``; each new one is logged at INFO on the
``kerasbert.encoding`` logger). :meth:`SentenceEncoder.encode` follows sentence-transformers'
conventions (a string gives one vector; ``batch_size``, ``normalize_embeddings``,
``show_progress_bar``, ``convert_to_numpy``), and an encoder built from a model folder or
index name is configured as the folder says (:mod:`kerasbert.folders`).
"""

import itertools
import logging
import os
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
            (``build_transformer_model`` without heads); or a model folder or index name,
            from which the model, the tokenizer and their settings are loaded
            (:meth:`from_pretrained`).
        tokenizer: a :class:`kerasbert.tokenizers.Tokenizer` (None with a folder or name).
        pooling: ``"cls"``, ``"mean"``, ``"max"``, ``"last"``
            (:func:`kerasbert.layers.pooling.masked_pooling`), or ``"none"`` (token vectors).
            None: what a sentence-transformers folder says, else ``"mean"``.
        max_seq_len: tokens per sentence (longer ones are truncated). None: the folder's
            limit, else the model's position limit (512 when it has none).
        batch_size: sentences per batch; a last, smaller batch is padded to it with
            repeated rows (their outputs are dropped), so it compiles no extra shape.
        normalize: L2-normalize pooled vectors. None: what the folder says, else False.
        buckets: padded lengths allowed (default: ``make_buckets(max_seq_len,
            growth=1.25)``, multiples of 8 about 25 % apart: 15 shapes up to 512 tokens,
            about 12 % padding on mixed-length text, where powers of two pad about 50 %).
        settings: a :class:`kerasbert.folders.FolderSettings` the None options come from
            (set by :meth:`from_pretrained`); an explicit option that contradicts it warns.

    Every batch has the shape ``(batch_size, bucket)``, so at most ``len(buckets)`` programs
    are compiled, however many calls to :meth:`encode` there are. On JAX the model and the
    pooling run as one jitted function, shared by the encoders of a model with the same
    pooling; ``encoder.num_compilations`` counts the XLA compilations this encoder's calls
    caused (on other backends: the padded shapes run), each logged at INFO with its shape,
    and ``encoder.compiled_shapes`` holds the padded shapes run so far.

    Example:

    >>> import kerasbert
    >>> from kerasbert.tokenizers import Tokenizer
    >>> tok = Tokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4})
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 5, "hidden_size": 4, "num_hidden_layers": 1,
    ...      "num_attention_heads": 1, "intermediate_size": 8})
    >>> encoder = SentenceEncoder(model, tok, max_seq_len=16, batch_size=4)
    >>> encoder.encode(["a", "a a a"]).shape, encoder.encode("a").shape
    ((2, 4), (4,))
    >>> _ = encoder.encode(["a a", "a", "a a a a", "a", "a"])  # same (4, 16) shape
    >>> encoder.num_compilations, sorted(encoder.compiled_shapes)
    (1, [(4, 16)])
    """

    def __init__(
        self,
        model,
        tokenizer=None,
        pooling=None,
        max_seq_len=None,
        batch_size=32,
        normalize=None,
        buckets=None,
        settings=None,
    ):
        if isinstance(model, (str, os.PathLike)):
            loaded = SentenceEncoder.from_pretrained(
                model, pooling=pooling, max_seq_len=max_seq_len, batch_size=batch_size,
                normalize=normalize, buckets=buckets,
            )  # fmt: skip
            self.__dict__.update(loaded.__dict__)
            return
        if tokenizer is None:
            raise KerasBertError(
                "SentenceEncoder needs a tokenizer with a model object; pass one, or pass a "
                "model folder or index name instead of the model."
            )
        from kerasbert.folders import choose

        limit = position_limit(model)
        # Token vectors ("none") are no pooling, so they contradict no folder's pooling.
        folder = None if pooling == "none" else settings
        self.pooling = check_pooling(choose("pooling", pooling, folder, "mean"), ENCODER_POOLINGS)
        self.normalize = bool(choose("normalize", normalize, settings, False))
        max_seq_len = choose("max_seq_len", max_seq_len, settings, limit or 512)
        if not (isinstance(max_seq_len, (int, np.integer)) and max_seq_len >= 2):
            raise KerasBertError(f"max_seq_len must be an int of at least 2, got {max_seq_len!r}.")
        if limit is not None and max_seq_len > limit:
            raise KerasBertError(
                f"max_seq_len={max_seq_len} exceeds the {limit} positions the model has; pass "
                f"max_seq_len <= {limit}."
            )
        check_batch_size(batch_size)
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_len = int(max_seq_len)
        self.batch_size = int(batch_size)
        self.buckets = buckets or make_buckets(self.max_seq_len, growth=1.25)
        self.compiled_shapes = set()
        self._with_segments = len(model.inputs) > 1
        self._forward = None
        self._compilations = None

    @classmethod
    def from_pretrained(cls, name_or_folder, **options):
        """An encoder for a model folder or index name, configured as the folder says.

        The tokenizer's case handling, the maximum length, the pooling and the
        normalisation come from the folder (``tokenizer_config.json``,
        ``sentence_bert_config.json``, ``modules.json``, ``1_Pooling/config.json``; an
        index entry's ``do_lower_case``; see :mod:`kerasbert.folders`); an option passed
        here wins (with a warning when it contradicts the folder).

        Args:
            name_or_folder: a model folder or a name from ``weights_index.yaml``.
            **options: the constructor's options (``pooling``, ``max_seq_len``,
                ``batch_size``, ``normalize``, ``buckets``) and ``do_lower_case``.

        Example:

        >>> encoder = SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")
        >>> encoder.pooling, encoder.normalize, encoder.max_seq_len
        ('mean', True, 256)
        """
        from kerasbert.folders import choose
        from kerasbert.models import build_transformer_model
        from kerasbert.pretrained import open_model
        from kerasbert.tokenizers.choice import family_of, tokenizer_for

        local = open_model(name_or_folder)
        if local.checkpoint is None or local.vocab is None:
            raise KerasBertError(
                f"Model folder {str(local.folder)!r} lacks a "
                f"{'checkpoint' if local.checkpoint is None else 'vocab.txt'}; an encoder "
                "needs the trained weights and the vocabulary."
            )
        lower = choose("do_lower_case", options.pop("do_lower_case", None), local.settings, True)
        model = build_transformer_model(local.config, local.checkpoint, model=local.settings.model)
        tokenizer = tokenizer_for(local.vocab, do_lower_case=lower, family=family_of(model))
        return cls(model, tokenizer, settings=local.settings, **options)

    @property
    def num_compilations(self):
        """How many programs this encoder's calls have compiled so far."""
        if self._compilations is None:  # not JAX (or nothing run yet): the padded shapes
            return len(self.compiled_shapes)
        return self._compilations.count

    def _jitted_forward(self):
        if self._forward is None:
            self._forward, name = _cached_forward(self.model, self._with_segments, self.pooling)
            self._compilations = CompilationCounter(name=name)
        return self._forward

    def _run(self, token_ids, segment_ids, lengths):
        """Pooled vectors, or token vectors with ``pooling="none"``, as numpy."""
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
            pooled = pool_outputs(outputs, lengths, self.pooling, normalize=False)
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

    def encode(
        self,
        sentences,
        batch_size=None,
        show_progress_bar=None,
        convert_to_numpy=True,
        normalize_embeddings=None,
        progress=None,
    ):
        """Vectors for ``sentences``, in their order (sentence-transformers' conventions).

        Args:
            sentences: a string (one vector comes back) or a list of strings; ``"a ||| b"``
                encodes a pair (segments 0 and 1). An empty string is a valid input: the
                vector of ``[CLS] [SEP]``.
            batch_size: sentences per batch for this call (default: the encoder's).
            show_progress_bar: draw a progress bar (:func:`kerasbert.progress.progress_bar`,
                also in notebooks); None draws one for long inputs (more than 8 batches) in
                a terminal or notebook.
            convert_to_numpy: one ``(n, hidden)`` array (True) or a list of ``(hidden,)``
                arrays (False).
            normalize_embeddings: L2-normalize for this call (default: the encoder's
                ``normalize``).
            progress: the older name of ``show_progress_bar``.

        Returns:
            ``(n, hidden)`` float32 array (``(hidden,)`` for one string), or with
            ``pooling="none"`` a list of ``(tokens, hidden)`` arrays (one array for one
            string).
        """
        from kerasbert.progress import progress_bar

        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise KerasBertError(
                f"encode takes strings; got {type(bad[0]).__name__} {bad[0]!r}."
            )
        batch_size = self.batch_size if batch_size is None else check_batch_size(batch_size)
        normalize = self.normalize if normalize_embeddings is None else normalize_embeddings
        show = show_progress_bar if show_progress_bar is not None else progress
        batches = -(-len(texts) // batch_size)
        enabled = ("auto" if batches > 8 else False) if show is None else show
        encoded = [self.tokenizer.encode(*split_pair(t), maxlen=self.max_seq_len) for t in texts]
        order = np.argsort([len(ids) for ids, _ in encoded], kind="stable")
        results = [None] * len(encoded)
        with progress_bar(total=len(texts), desc="encoding", unit="text", enabled=enabled) as bar:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                outputs, lengths = self._batch(encoded, rows, batch_size, bar)
                for r, i in enumerate(rows):
                    results[i] = outputs[r, : lengths[r]] if self.pooling == "none" else outputs[r]
                bar.update(len(rows))
        if self.pooling == "none":
            return results[0] if single else results
        if normalize:
            results = [v / max(float(np.linalg.norm(v)), 1e-12) for v in results]
        results = [np.asarray(v, "float32") for v in results]
        if single:
            return results[0]
        if not convert_to_numpy:
            return results
        return np.stack(results) if results else np.zeros((0, 0), "float32")

    def _batch(self, encoded, rows, batch_size, bar=None):
        """Run the rows of one batch, padded to ``batch_size`` rows and a bucket length (a
        progress ``bar`` says when a new shape compiles: the first batches wait on XLA)."""
        # The last batch is padded with copies of its first sentence.
        padded_rows = np.concatenate([rows, np.repeat(rows[:1], batch_size - len(rows))])
        lengths = np.array([len(encoded[i][0]) for i in padded_rows], np.int32)
        width = bucket_length(int(lengths.max()), self.buckets)
        token_ids = np.zeros((batch_size, width), np.int32)
        segment_ids = np.zeros((batch_size, width), np.int32)
        for r, i in enumerate(padded_rows):
            ids, segments = encoded[i]
            token_ids[r, : len(ids)] = ids
            segment_ids[r, : len(segments)] = segments
        compiling = bar is not None and token_ids.shape not in self.compiled_shapes
        if compiling:
            bar.set_postfix_str(f"compiling for {token_ids.shape[1]} tokens")
        outputs = self._run(token_ids, segment_ids, lengths)
        if compiling:
            bar.set_postfix_str("", refresh=False)
        return outputs, lengths


def check_batch_size(batch_size):
    """``batch_size``, or a KerasBertError unless it is a positive int."""
    if not (isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, bool)
            and batch_size > 0):  # fmt: skip
        raise KerasBertError(f"batch_size must be a positive int, got {batch_size!r}.")
    return int(batch_size)


def position_limit(model):
    """How many positions ``model`` can take: its ``Embedding-Position`` rows, or None."""
    for layer in model.layers:
        if layer.name.endswith("Embedding-Position"):
            return int(layer.input_dim)
    return None


_FORWARD_NAME = "kerasbert_sentence_encoder"
_FORWARD_IDS = itertools.count()
# model -> {(with_segments, pooling): (jitted forward, its name)}: encoders of one
# model share their compiled programs. The functions hold the model weakly, so the entries
# go when the model does.
_FORWARDS = weakref.WeakKeyDictionary()


def _cached_forward(model, with_segments, pooling):
    import jax

    forwards = _FORWARDS.setdefault(model, {})
    key = (with_segments, pooling)
    if key not in forwards:
        name = f"{_FORWARD_NAME}_{next(_FORWARD_IDS)}"
        function = _forward_function(name, weakref.ref(model), with_segments, pooling)
        forwards[key] = jax.jit(function), name
    return forwards[key]


def _forward_function(name, model_ref, with_segments, pooling):
    """The function ``jax.jit`` compiles: the model and the pooling."""

    def forward(trainable, non_trainable, token_ids, segment_ids, lengths):
        model = model_ref()
        inputs = [token_ids, segment_ids] if with_segments else token_ids
        outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return pool_outputs(outputs, lengths, pooling, normalize=False)

    forward.__name__ = forward.__qualname__ = name
    return forward
