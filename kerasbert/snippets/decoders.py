"""Decoders over a model's scores: CRF paths and autoregressive generation (bert4keras's).

* :class:`ViterbiDecoder`: the best label path under a CRF's transition scores;
* :class:`AutoRegressiveDecoder`: beam search and sampling over a step-wise predictor, with
  decoder states (e.g. a key/value cache) kept aligned with the candidates by
  ``_select_rows``;
* :func:`softmax`: the numpy softmax the decoder uses for logits.

All numpy; Keras is imported only by :meth:`AutoRegressiveDecoder.last_token`, whose
:class:`LastTokenModel` pads the growing prefixes of a decoding to a few bucket lengths so
that a bert4keras-style ``predict`` compiles a handful of programs, not one per step.
"""

import functools
import itertools
import logging

import numpy as np

from kerasbert.compilation import CompilationCounter, bucket_length, make_buckets
from kerasbert.errors import SnippetError

logger = logging.getLogger(__name__)
_LAST_TOKEN_NAME = "kerasbert_last_token"
_LAST_TOKEN_IDS = itertools.count()


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
    """Take ``rows`` of every array in ``states`` whose leading axis has ``num_rows`` rows.

    A leaf with a ``select_rows(rows, num_rows)`` method selects its own rows (e.g. an
    encoded source that one row shares with every candidate returns itself).
    """
    if states is None:
        return None
    if hasattr(states, "select_rows"):
        return states.select_rows(rows, num_rows)
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
    dropped when finished; a leaf with a ``select_rows(rows, num_rows)`` method does that
    itself; other leaves pass through unchanged. For kerasbert's LM / UniLM
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

        Returns a :class:`LastTokenModel`, whose ``predict`` takes the whole prefix at each
        step, as bert4keras scripts pass it, and compiles one program per bucket length
        and row count rather than one per step.

        Args:
            model: a Keras model whose outputs are ``(batch, seq, ...)``.
        """
        if model not in self.models:
            self.models[model] = LastTokenModel(model)
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


class CachedStepDecoder(AutoRegressiveDecoder):
    """An :class:`AutoRegressiveDecoder` whose model call is a cached step.

    Subclasses implement ``_next_scores(inputs, output_ids, states)``, returning the
    model's outputs at the last position and the updated cache (the decoder's ``states``,
    whose rows follow the beams and samples), and set ``outputs_logits`` when the model's
    head outputs logits rather than probabilities; :meth:`predict` then scores with the
    right ``wraps`` conversion (kerasbert's :class:`kerasbert.generation.CachedLMGenerator`
    and :class:`kerasbert.models.t5_decoding.T5Generator`).
    """

    outputs_logits = False

    def _next_scores(self, inputs, output_ids, states):
        raise NotImplementedError

    @AutoRegressiveDecoder.wraps(default_rtype="probas", use_states=True)
    def _predict_probas(self, inputs, output_ids, states):
        return self._next_scores(inputs, output_ids, states)

    @AutoRegressiveDecoder.wraps(default_rtype="logits", use_states=True)
    def _predict_logits(self, inputs, output_ids, states):
        return self._next_scores(inputs, output_ids, states)

    def predict(self, inputs, output_ids, states=None, temperature=1, rtype="probas"):
        """Next-id scores for each row and the updated cache.

        Args:
            inputs: the model inputs, one row per candidate.
            output_ids: ``(rows, t)`` the ids generated so far.
            states: None on the first step, else the cache the previous step returned.
            temperature: softmax temperature.
            rtype: ``"probas"`` or ``"logits"`` (log-probabilities), what is returned.
        """
        predict = self._predict_logits if self.outputs_logits else self._predict_probas
        return predict(inputs, output_ids, states, temperature, rtype)


def _masks_padding(model):
    """Whether ``model`` ignores right-padding with id 0: a kerasbert model, whose token
    embedding masks id 0 in every attention layer."""
    return any(
        layer.name.endswith("Embedding-Token") and getattr(layer, "mask_zero", False)
        for layer in model.layers
    )


class LastTokenModel:
    """The outputs of a model at the last position of its inputs, for step-wise decoding.

    A decoder's ``predict`` passes prefixes that grow by one id per step and a row count
    that changes as beams end. For a kerasbert model (padding id 0 is masked, so ids
    appended as padding change no real position's output), :meth:`predict` right-pads the
    sequence inputs to a bucket length and the rows to a power of two, and runs one jitted
    function per padded shape on JAX: a decoding compiles a handful of programs
    (:attr:`num_compilations`), not one per step. Other models, and other backends, run
    ``keras.Model.predict`` on the exact shapes.

    Args:
        model: a Keras model whose outputs are ``(batch, seq, ...)``.

    Attributes:
        model: the Keras model whose outputs are sliced at the last position.

    Example:

    >>> import kerasbert
    >>> lm = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16}, application="lm")
    >>> last = LastTokenModel(lm)
    >>> for n in range(3, 12):
    ...     probas = last.predict([np.ones((2, n), "int32"), np.zeros((2, n), "int32")])
    >>> probas.shape, last.num_compilations
    ((2, 20), 1)
    """

    def __init__(self, model):
        import keras

        from kerasbert.layers.core import TokenSlice

        self.source = model
        outputs = [TokenSlice(-1)(output) for output in model.outputs]
        self.model = keras.Model(model.inputs, outputs)
        self.inputs, self.outputs = self.model.inputs, self.model.outputs
        self.padded = keras.backend.backend() == "jax" and _masks_padding(model)
        # Inputs with a free sequence axis are padded; others (a label, a vector) are not.
        self._sequence_inputs = [len(x.shape) >= 2 and x.shape[1] is None for x in model.inputs]
        positions = [getattr(layer, "input_dim", None) for layer in model.layers
                     if layer.name.endswith("Embedding-Position")]  # fmt: skip
        self.buckets = make_buckets(positions[0] if positions else 4096, start=16, growth=1.25)
        self._name = f"{_LAST_TOKEN_NAME}_{next(_LAST_TOKEN_IDS)}"
        self._compilations = CompilationCounter(name=self._name)
        self._function = None

    @property
    def num_compilations(self):
        """The programs the padded path has compiled so far (0 when it is not used)."""
        return self._compilations.count

    def __call__(self, inputs, **kwargs):
        return self.model(inputs, **kwargs)

    def predict(self, inputs, batch_size=None, verbose=0, **kwargs):
        """The outputs at the last position, as numpy arrays (one per model output).

        Args:
            inputs: the model's inputs (a list of arrays, or one array), rows of equal
                length along the sequence axis.
            batch_size, verbose, **kwargs: as ``keras.Model.predict`` (used when the padded
                path does not apply; ``verbose`` defaults to 0, as in bert4keras).
        """
        several = isinstance(inputs, (list, tuple)) and len(inputs) == len(self.inputs) > 1
        arrays = [np.asarray(x) for x in inputs] if several else [np.asarray(inputs)]
        if len(self.inputs) == 1 and arrays[0].ndim == 3 and len(arrays[0]) == 1:
            arrays = [arrays[0][0]]  # [ids] for a one-input model
        if not self.padded or any(a.ndim < 2 for a in arrays[:1]):
            return self.model.predict(inputs, batch_size=batch_size, verbose=verbose, **kwargs)
        rows, length = arrays[0].shape[:2]
        width = bucket_length(length, self.buckets) if length <= self.buckets[-1] else length
        padded_rows = 1 << max(rows - 1, 0).bit_length()
        padded = []
        for array, is_sequence in zip(arrays, self._sequence_inputs):
            array = np.concatenate([array, np.repeat(array[:1], padded_rows - rows, axis=0)])
            if is_sequence:
                pad = [(0, 0), (0, width - length)] + [(0, 0)] * (array.ndim - 2)
                array = np.pad(array, pad)
            padded.append(array)
        outputs = self._run(padded, np.int32(length - 1))
        outputs = [np.asarray(o)[:rows] for o in outputs]
        return outputs[0] if len(outputs) == 1 else outputs

    def _run(self, arrays, position):
        if self._function is None:
            import jax
            from keras import ops

            model = self.source

            def last_position(trainable, non_trainable, arrays, position):
                outputs, _ = model.stateless_call(trainable, non_trainable, arrays)
                outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
                return [ops.take(o, position, axis=1) for o in outputs]

            last_position.__name__ = last_position.__qualname__ = self._name
            self._function = jax.jit(last_position)
        before = self._compilations.count
        with self._compilations:
            outputs = self._function(
                [v.value for v in self.source.trainable_variables],
                [v.value for v in self.source.non_trainable_variables],
                arrays, position,
            )  # fmt: skip
        if self._compilations.count > before:
            logger.info(
                "LastTokenModel: compiled %s for padded inputs %s (%d compilations so far)",
                self.source.name, [a.shape for a in arrays], self._compilations.count,
            )  # fmt: skip
        return outputs
