"""Text generation with a key/value cache for causal LM and UniLM models (GPT-2, BERT / ALBERT /
NEZHA / RoFormer built with ``application="lm"`` or ``"unilm"``).

* :class:`CachedLMGenerator`: bert4keras's :class:`~kerasbert.snippets.AutoRegressiveDecoder`
  (``beam_search``, ``random_sample`` with ``topk`` / ``topp``, bert4keras's semantics) whose
  ``predict`` runs :class:`~kerasbert.models.IncrementalModel`: the first step processes the
  prompt, each later step only the newest id, attending to the cached keys and values. The
  cache is the decoder's ``states``, so beams and samples keep their own rows of it.
* :func:`generate`: one call from prompt ids to new ids: greedy (a batch of prompts, of any
  lengths), beam search or sampling (one prompt per call, as bert4keras's decoders).

Caches have a fixed size (a power of two from 16 holding the prompt and the new ids, at most
the model's position table), so on JAX a decoding compiles once per row count and chunk
width, and another decoding of the same size compiles nothing. The compiled steps are kept
with the builder and shared by every generator and :func:`generate` call on it.
"""

import numpy as np

from kerasbert.compilation import bucket_length, make_buckets
from kerasbert.errors import ConfigError
from kerasbert.models.decoding import IncrementalModel
from kerasbert.snippets.decoders import CachedStepDecoder

METHODS = ("greedy", "beam", "sample")
# The model's last layer (GPT-2, BERT's MLM head, RoFormer v2's tied output): its
# activation says whether the outputs are probabilities or logits.
_HEAD_ACTIVATIONS = ("LM-Activation", "MLM-Activation", "Output-MLM-Activation")
_STEPS_ATTRIBUTE = "_kerasbert_incremental_models"


def incremental_model(builder, max_length):
    """The :class:`~kerasbert.models.IncrementalModel` of ``builder`` with a cache of
    ``max_length`` positions, made on first use and then kept with the builder.

    Args:
        builder: an ``application="lm"`` / ``"unilm"`` builder (``return_keras_model=False``).
        max_length: the positions of its cache.

    Example:

    >>> import kerasbert
    >>> builder = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16},
    ...     application="lm", with_mlm=True, return_keras_model=False)
    >>> incremental_model(builder, 32) is incremental_model(builder, 32)
    True
    """
    steps = builder.__dict__.setdefault(_STEPS_ATTRIBUTE, {})
    if max_length not in steps:
        steps[max_length] = IncrementalModel(builder, max_length=max_length)
    return steps[max_length]


def num_compilations(builder):
    """The XLA compilations of the cached steps kept with ``builder`` so far (every cache
    size together; 0 on backends other than JAX, or before any generation).

    Args:
        builder: a builder that :func:`generate` or a :class:`CachedLMGenerator` ran on.

    Example:

    >>> import kerasbert
    >>> builder = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16},
    ...     application="lm", with_mlm=True, return_keras_model=False)
    >>> _ = generate(builder, [2, 5, 7], 4)
    >>> num_compilations(builder)  # the prompt's width (4) and width 1
    2
    """
    steps = builder.__dict__.get(_STEPS_ATTRIBUTE, {})
    return sum(step.num_compilations for step in steps.values())


def _check_builder(builder):
    """``(table_rows, outputs_logits, generated segment id)`` of an lm / unilm builder."""
    if getattr(builder, "application", None) not in ("lm", "unilm"):
        raise ConfigError(
            "generation needs the builder of a model built with application='lm' or 'unilm' "
            "(GPT-2 always is) and return_keras_model=False; got "
            f"{type(builder).__name__} with application="
            f"{getattr(builder, 'application', None)!r}."
        )
    layers = {name[len(builder.prefix) :]: layer for name, layer in builder.layers.items()}
    heads = [layers[name] for name in _HEAD_ACTIVATIONS if name in layers]
    if not heads:
        raise ConfigError(
            "generation needs a model with its language-model head (with_mlm=True for BERT, "
            "ALBERT, NEZHA and RoFormer; GPT-2 always has it): this one outputs hidden states."
        )
    activation = getattr(heads[0].activation, "__name__", "")
    if activation not in ("softmax", "linear"):
        raise ConfigError(
            f"generation needs the head's activation to be softmax (probabilities) or linear "
            f"(logits); {heads[0].name} uses {activation!r}."
        )
    positions = layers.get("Embedding-Position")
    rows = None if positions is None else int(positions.embeddings.shape[0])
    rows = rows or int(getattr(builder, "max_position", 512))
    return rows, activation == "linear", 1 if builder.application == "unilm" else 0


def _check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0):
        raise ConfigError(f"generation: {name} must be a positive int, got {value!r}.")


class CachedLMGenerator(CachedStepDecoder):
    """bert4keras's decoder (beam search, top-k / top-p sampling) over a cached LM step.

    ``inputs`` of :meth:`beam_search` and :meth:`random_sample` is ``[token_ids]`` (GPT-2,
    or segments all 0) or ``[token_ids, segment_ids]`` of one prompt; generated ids get
    segment 1 in a UniLM model (its target segment) and 0 in a causal LM. The outputs are the
    generated ids only (``start_id`` first unless it is None), as bert4keras's decoders
    return them. Rows of the cache follow the beams and samples; each row count and chunk
    width compiles once (JAX), and so does each cache size, chosen per decoding as a power
    of two from 16 holding the prompt and ``maxlen`` ids (or ``max_length``).

    Args:
        builder: the builder of an ``application="lm"`` / ``"unilm"`` model with its LM head
            (``build_transformer_model(..., return_keras_model=False)``); its outputs may be
            probabilities (the default) or logits (``final_activation="linear"`` for GPT-2).
        start_id: id every output starts with, fed after the prompt (None: none).
        end_id: id that ends an output (None: outputs run to ``maxlen``).
        maxlen: the most ids generated.
        minlen: outputs shorter than this do not end.
        max_length: the cache's positions (None: chosen per decoding, see above); the prompt
            and ``maxlen`` ids must fit.

    Example:

    >>> import kerasbert
    >>> builder = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16},
    ...     application="lm", with_mlm=True, return_keras_model=False)
    >>> generator = CachedLMGenerator(builder, end_id=3, maxlen=5)
    >>> best = generator.beam_search([np.array([2, 7, 9])], topk=2)
    >>> samples = generator.random_sample([np.array([2, 7, 9])], 3, topp=0.9,
    ...                                   rng=np.random.default_rng(0))
    >>> len(best) <= 5, len(samples)
    (True, 3)
    """

    def __init__(self, builder, start_id=None, end_id=None, maxlen=32, minlen=1,
                 max_length=None):  # fmt: skip
        self.table_rows, self.outputs_logits, self.generated_segment = _check_builder(builder)
        _check_positive_int("maxlen", maxlen)
        _check_positive_int("max_length", max_length, allow_none=True)
        if max_length is not None and max_length > self.table_rows:
            raise ConfigError(
                f"CachedLMGenerator: max_length={max_length} exceeds the model's "
                f"{self.table_rows} positions."
            )
        super().__init__(start_id=start_id, end_id=end_id, maxlen=maxlen, minlen=minlen)
        self.builder = builder
        self.max_length = max_length
        self.default_rtype = "logits" if self.outputs_logits else "probas"

    def incremental_model(self, length):
        """The cached step for decodings of ``length`` positions (prompt + new ids)."""
        if length > self.table_rows or (self.max_length and length > self.max_length):
            limit = min(self.table_rows, self.max_length or self.table_rows)
            raise ConfigError(
                f"CachedLMGenerator: the prompt and maxlen={self.maxlen} new ids need {length} "
                f"positions, more than the {limit} the cache can hold; shorten the prompt or "
                "lower maxlen."
            )
        if self.max_length is None:
            length = bucket_length(length, make_buckets(self.table_rows, start=16))
        return incremental_model(self.builder, self.max_length or length)

    def _next_scores(self, inputs, output_ids, states):
        if states is None:  # the prompt, then the start id if any
            token_ids = np.concatenate([inputs[0], output_ids], 1)
            generated = np.full_like(output_ids, self.generated_segment)
            if len(inputs) > 1:
                segment_ids = np.concatenate([inputs[1], generated], 1)
            else:
                segment_ids = np.zeros_like(token_ids)
                segment_ids[:, inputs[0].shape[1] :] = self.generated_segment
            if token_ids.shape[1] == 0:
                raise ConfigError("CachedLMGenerator: the prompt is empty and start_id is None.")
            step = self.incremental_model(inputs[0].shape[1] + self.maxlen)
        else:  # only the newest id
            token_ids = output_ids[:, -1:]
            segment_ids = np.full_like(token_ids, self.generated_segment)
            step = incremental_model(self.builder, int(states["token_ids"].shape[1]))
        outputs, cache = step(token_ids, segment_ids, states)
        return outputs[:, -1], cache


def greedy(builder, prompts, max_new_tokens, end_id=None):
    """Greedy continuations of a batch of prompts of any lengths, with one cache.

    Every row shares the cache's positions: all rows start with the shortest prompt's
    length as one chunk, then each step feeds every row its next id: the prompt's own while
    it lasts, else the argmax the model just gave. So a row's ids stay contiguous from
    position 0 (no padding between prompt and continuation) and a step is one batch.

    Args:
        builder: an lm / unilm builder with its LM head.
        prompts: a list of prompts, each a sequence of ids (at least one).
        max_new_tokens: ids generated per prompt.
        end_id: a row ends after generating this id (None: never).

    Returns:
        A list of int arrays, one per prompt: its new ids (ending with ``end_id`` when that
        stopped it).

    Example:

    >>> import kerasbert
    >>> builder = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16},
    ...     application="lm", with_mlm=True, return_keras_model=False)
    >>> [len(ids) for ids in greedy(builder, [[2, 5], [2, 5, 7, 9]], 4)]
    [4, 4]
    """
    table_rows, _, generated_segment = _check_builder(builder)
    _check_positive_int("max_new_tokens", max_new_tokens)
    lengths = np.array([len(p) for p in prompts])
    if len(lengths) == 0 or lengths.min() == 0:
        raise ConfigError("generation: prompt_ids must hold at least one id in every prompt.")
    total = int(lengths.max()) + max_new_tokens
    if total > table_rows:
        raise ConfigError(
            f"generation: the longest prompt ({lengths.max()} ids) and max_new_tokens="
            f"{max_new_tokens} need {total} positions; the model has {table_rows}."
        )
    step = incremental_model(builder, bucket_length(total, make_buckets(table_rows, start=16)))
    rows = np.arange(len(lengths))
    token_ids = np.zeros((len(lengths), total), "int32")
    segment_ids = np.full_like(token_ids, generated_segment)
    for row, prompt in enumerate(prompts):
        token_ids[row, : lengths[row]] = prompt
        segment_ids[row, : lengths[row]] = 0
    start = int(lengths.min())
    outputs, cache = step(token_ids[:, :start], segment_ids[:, :start])
    ended = np.zeros(len(lengths), bool)
    for t in range(start, total):
        generating = t >= lengths
        chosen = outputs[:, -1].argmax(-1)
        token_ids[generating, t] = chosen[generating]
        ended |= generating & (chosen == end_id)
        done = ended | (t >= lengths + max_new_tokens - 1)
        if done.all():
            break
        outputs, cache = step(token_ids[:, t : t + 1], segment_ids[:, t : t + 1], cache)
    results = []
    for row in rows:
        new = token_ids[row, lengths[row] : lengths[row] + max_new_tokens]
        if end_id is not None and (new == end_id).any():
            new = new[: int(np.argmax(new == end_id)) + 1]
        results.append(new.astype(int))
    return results


def generate(builder, prompt_ids, max_new_tokens, method="greedy", num_beams=4, topk=None,
             topp=None, temperature=1.0, end_id=None, seed=None):  # fmt: skip
    """Continue ``prompt_ids`` by ``max_new_tokens`` ids with the model's key/value cache.

    ``"greedy"`` takes the most likely id at each step, for one prompt or a batch (prompts
    of different lengths included: see :func:`greedy`). ``"beam"`` (bert4keras's beam
    search with ``num_beams`` beams) and ``"sample"`` (one sample, optionally restricted to
    the ``topk`` most likely ids and then to the nucleus ``topp``) take one prompt per call,
    as bert4keras's decoders do; :class:`CachedLMGenerator` gives several samples at once.

    Args:
        builder: the builder of an ``application="lm"`` / ``"unilm"`` model with its LM
            head (``build_transformer_model(..., return_keras_model=False)``; GPT-2 is always
            a causal LM).
        prompt_ids: the ids of one prompt (a sequence of ints), or a list of prompts
            (``"greedy"`` only).
        max_new_tokens: the most ids generated.
        method: ``"greedy"``, ``"beam"`` or ``"sample"``.
        num_beams: beams of ``"beam"``.
        topk: ``"sample"``: sample among the ``topk`` most likely ids (None: all).
        topp: ``"sample"``: then among the most likely ids reaching ``topp`` in total.
        temperature: softmax temperature of ``"beam"`` and ``"sample"``.
        end_id: generation stops after this id (None: never).
        seed: ``"sample"``'s random seed (None: a fresh one each call).

    Returns:
        The new ids (not the prompt) as an int numpy array, ending with ``end_id`` when it
        stopped the output; for a list of prompts, a list of such arrays.

    Example:

    >>> import kerasbert
    >>> builder = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16},
    ...     application="lm", with_mlm=True, return_keras_model=False)
    >>> generate(builder, [2, 5, 7], 6).shape
    (6,)
    >>> len(generate(builder, [[2, 5, 7], [2, 9]], 6))
    2
    >>> a = generate(builder, [2, 5, 7], 6, method="sample", topp=0.8, seed=1)
    >>> b = generate(builder, [2, 5, 7], 6, method="sample", topp=0.8, seed=1)
    >>> a.tolist() == b.tolist()
    True
    """
    if method not in METHODS:
        raise ConfigError(f"generate: method must be one of {METHODS}, got {method!r}.")
    _check_positive_int("max_new_tokens", max_new_tokens)
    _check_positive_int("num_beams", num_beams)
    _check_positive_int("topk", topk, allow_none=True)
    if topp is not None and not (isinstance(topp, (int, float)) and 0 < topp <= 1):
        raise ConfigError(f"generate: topp must be a number in (0, 1] or None, got {topp!r}.")
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ConfigError(f"generate: temperature must be a positive number, got {temperature!r}.")
    batch, is_batch = _as_prompts(prompt_ids)
    if method == "greedy":
        results = greedy(builder, batch, max_new_tokens, end_id=end_id)
        return results if is_batch else results[0]
    if len(batch) > 1:
        raise ConfigError(
            f"generate: method={method!r} takes one prompt per call (as bert4keras's decoders); "
            f"prompt_ids holds {len(batch)}. Call it once per prompt, or use method='greedy'."
        )
    generator = CachedLMGenerator(builder, end_id=end_id, maxlen=max_new_tokens)
    prompt = [batch[0]]
    if method == "beam":
        output = generator.beam_search(prompt, topk=num_beams, temperature=temperature)
    else:
        rng = np.random.default_rng(seed)
        output = generator.random_sample(
            prompt, 1, topk=topk, topp=topp, temperature=temperature, rng=rng
        )[0]
    output = np.asarray(output, int)
    return [output] if is_batch else output


def _as_prompts(prompt_ids):
    """``(prompts, is_batch)``: ``prompt_ids`` as a list of int32 arrays, one per prompt,
    and whether it was a list of prompts rather than one prompt's ids."""
    if isinstance(prompt_ids, np.ndarray) and prompt_ids.ndim == 2:
        prompts, is_batch = list(prompt_ids), True
    elif isinstance(prompt_ids, (list, tuple, np.ndarray)):
        is_batch = len(prompt_ids) > 0 and all(np.ndim(p) == 1 for p in prompt_ids)
        prompts = list(prompt_ids) if is_batch else [prompt_ids]
    else:
        prompts, is_batch = [None], False
    arrays = []
    for prompt in prompts:
        array = np.asarray(prompt)
        if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
            raise ConfigError(
                "generate: prompt_ids must be a sequence of int token ids or a list of them, "
                f"got {type(prompt_ids).__name__} {prompt_ids!r:.60}."
            )
        arrays.append(array.astype("int32"))
    if any(len(a) == 0 for a in arrays):
        raise ConfigError("generate: prompt_ids must hold at least one id in every prompt.")
    return arrays, is_batch
