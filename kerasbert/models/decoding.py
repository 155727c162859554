"""Incremental decoding with a key/value cache for ``application="lm"`` / ``"unilm"`` models.

In a causal LM, and in UniLM's target segment, a token's keys and values never change once
computed (later tokens cannot influence earlier ones), so generation can run each new token
through the network alone, attending to the cached keys and values of the prefix, instead
of recomputing the whole prefix at every step. :class:`IncrementalModel` does that with the
model's own layers (the same weights and attention code as the functional model), for
BERT, ALBERT, NEZHA, RoFormer v1 / v2 and the pre-LayerNorm GPT-2 (a builder whose
``pre_norm`` is true normalizes before each sublayer and once more, ``Output-Norm``, at
the end). Positions are absolute: a chunk after ``n`` cached tokens
takes positions ``n, n + 1, ...``, for learned position embeddings, NEZHA's relative
distances and RoFormer's rotations alike (keys and values are cached already rotated).

The cache has a fixed size: ``max_length`` positions are allocated on the first call, new
keys and values are written in place at the current length (``slice_update``, i.e. XLA's
dynamic-update-slice) and a mask hides the unfilled positions. On JAX one step is one jitted
function whose shapes do not depend on how many tokens are cached, so decoding compiles once
per batch size and chunk width, not once per step. Two choices keep a step's cost close to
its matmuls': the keys and values are stored heads-first, ``(batch, heads, positions,
size)``, the layout the attention products read (in the layers' own ``(batch, positions,
heads, size)`` XLA copies the whole cache into that layout in every step), and the step
takes over the cache's buffers (JAX donation), so writing the new positions does not copy
the rest (bench/README.md, the cache-layout ablation of ``bench_generate.py``).
"""

import itertools
import logging

import numpy as np
from keras import ops

from kerasbert.compilation import CompilationCounter, bucket_length, make_buckets
from kerasbert.errors import ConfigError
from kerasbert.ops import sinusoidal_embeddings

logger = logging.getLogger(__name__)

_FORBIDDEN = -1e12
_STEP_NAME = "kerasbert_incremental_step"
_STEP_IDS = itertools.count()


def empty_heads_first(batch, attention, positions, size):
    """Zeros for one block's cached keys (``size="key"``) or values (``"head"``) of
    ``attention`` (a MultiHeadAttention): ``(batch, heads, positions, size)``."""
    width = attention.key_size if size == "key" else attention.head_size
    return ops.zeros((batch, attention.heads, positions, width), attention.compute_dtype)


def write_heads_first(cached, heads, past):
    """``cached`` ``(batch, heads, positions, size)`` with the new ``heads``
    ``(batch, n, heads, size)`` written at positions ``past, ..., past + n - 1``."""
    return ops.slice_update(cached, (0, 0, past, 0), ops.transpose(heads, (0, 2, 1, 3)))


class CompiledSteps:
    """A function of a model's variables, jitted (JAX) with the variables as arguments, so
    that its compiled programs depend on the shapes of its other arguments only.

    Args:
        variables: the model's variables, read afresh on every call (training between
            calls is seen).
        function: ``function(*args)`` computed with the layers of the model; under
            ``keras.StatelessScope`` it reads the variables' values passed in.

        donate_argnums: positions among ``args`` whose arrays the compiled function takes
            over (JAX buffer donation): a decoding cache passed there is updated in place
            instead of copied at every step, and is unusable after the call.

    Calling it returns ``(outputs, compiled)``: whether that call compiled a new program.
    On other backends the function runs eagerly and nothing is counted.
    """

    def __init__(self, variables, function, donate_argnums=()):
        self._variables = list(variables)
        self._inner = function
        self._donate = tuple(i + 1 for i in donate_argnums)  # after the variables' values
        self._name = f"{_STEP_NAME}_{next(_STEP_IDS)}"
        self._compilations = CompilationCounter(name=self._name)
        self.function = None

    @property
    def num_compilations(self):
        return self._compilations.count

    def _stateless(self, variable_values, *args):
        import keras

        mapping = list(zip(self._variables, variable_values))
        with keras.StatelessScope(state_mapping=mapping):
            return self._inner(*args)

    def __call__(self, *args):
        import keras

        if keras.backend.backend() != "jax":
            return self._inner(*args), False
        if self.function is None:
            import jax

            stateless = self._stateless

            def step(*arguments):
                return stateless(*arguments)

            step.__name__ = step.__qualname__ = self._name
            self.function = jax.jit(step, donate_argnums=self._donate)
        values = [v.value for v in self._variables]
        before = self._compilations.count
        with self._compilations:
            outputs = self.function(values, *args)
        return outputs, self._compilations.count > before


def check_cache_alive(cache, owner):
    """Raise a ConfigError when ``cache``'s arrays were handed to an earlier step.

    A step takes over (donates) the buffers of the cache it is given and returns the
    updated cache in new ones; the old dict's arrays are deleted. Calling again with the
    old dict is a mistake (usually: keeping the first cache to branch from it); JAX's own
    error ("Array has been deleted") does not say what to do.
    """
    for arrays in cache.values():
        for array in arrays if isinstance(arrays, list) else [arrays]:
            is_deleted = getattr(array, "is_deleted", None)
            if is_deleted is not None and is_deleted():
                raise ConfigError(
                    f"{owner}: this cache was already passed to a step, which took over "
                    "its arrays and returned the updated cache in new ones; pass the "
                    "cache the last step returned. To decode several continuations from "
                    "one cache, copy it first (copy_cache(cache)) for each branch."
                )


def copy_cache(cache):
    """A copy of a decoding cache whose arrays a step may take over while ``cache`` lives.

    Example:

    >>> import numpy as np
    >>> cache = {"keys": [np.zeros((1, 2, 4, 3))], "length": 1}
    >>> copy = copy_cache(cache)
    >>> copy["length"], copy["keys"][0] is cache["keys"][0]
    (1, False)
    """
    copied = {}
    for name, arrays in cache.items():
        if isinstance(arrays, list):
            copied[name] = [ops.copy(a) for a in arrays]
        elif hasattr(arrays, "shape"):
            copied[name] = ops.copy(arrays)
        else:
            copied[name] = arrays
    return copied


class IncrementalModel:
    """Run a kerasbert LM / UniLM model chunk by chunk, caching attention keys and values.

    Args:
        builder: the builder returned by ``build_transformer_model(...,
            application="lm" or "unilm", return_keras_model=False)``.
        max_length: the most positions a sequence (prefix and generated tokens) may have;
            the cache holds that many, and each step attends over all of them (masked), so
            pick the longest length you decode rather than more. Default: the model's
            ``max_position``.

    Calling it with the first chunk (``cache=None``) processes the prefix; each later call
    processes only the new ids, appended after the cached ones. The outputs are those of
    the model (MLM probabilities / logits when it has the MLM head, else hidden states) for
    the new positions.

    The cache is a dict of device arrays with one row per sequence (``token_ids``,
    ``segment_ids``: ``(batch, max_length)``; per block ``keys`` / ``values``:
    ``(batch, heads, max_length, size)``) and ``length``, the filled positions (an int), so
    :class:`kerasbert.snippets.AutoRegressiveDecoder` can reorder its rows with the beams.
    On JAX a step takes over the arrays of the cache it is given (they are updated in
    place): pass each step the cache the previous one returned, and :func:`copy_cache`
    one to branch from it.
    A chunk of ``n`` ids is padded to a width from ``1, 2, 4, ...`` (at most ``max_length``),
    so on JAX a step compiles once per batch size and width (``num_compilations``; each
    compilation is logged at INFO on the ``kerasbert.models.decoding`` logger).

    Example:

    >>> import numpy as np, kerasbert
    >>> builder = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2,
    ...      "num_attention_heads": 2, "intermediate_size": 16},
    ...     application="lm", with_mlm=True, return_keras_model=False)
    >>> step = IncrementalModel(builder, max_length=16)
    >>> probas, cache = step(np.array([[2, 5, 7]]), np.zeros((1, 3), "int32"))
    >>> probas, cache = step(np.array([[9]]), np.zeros((1, 1), "int32"), cache)
    >>> probas.shape, cache["length"], cache["token_ids"].shape
    ((1, 1, 20), 4, (1, 16))
    """

    def __init__(self, builder, max_length=None):
        if getattr(builder, "application", None) not in ("lm", "unilm"):
            raise ConfigError(
                "IncrementalModel needs a model built with application='lm' or 'unilm' "
                "(and return_keras_model=False, to pass the builder)."
            )
        if getattr(builder, "layer_norm_cond", None) is not None:
            raise ConfigError("IncrementalModel does not support conditional layer norms.")
        self.builder = builder
        # The builder's layers by their names without the builder's prefix.
        self.layers = {name[len(builder.prefix) :]: layer for name, layer in builder.layers.items()}
        self.blocks = builder.block_prefixes()
        positions = self.layers.get("Embedding-Position")
        table_rows = None if positions is None else int(positions.embeddings.shape[0])
        if max_length is None:
            max_length = table_rows or int(getattr(builder, "max_position", 512))
        if not (isinstance(max_length, (int, np.integer)) and max_length > 0):
            raise ConfigError(f"IncrementalModel: max_length must be a positive int, got "
                              f"{max_length!r}.")  # fmt: skip
        if table_rows is not None and max_length > table_rows:
            raise ConfigError(
                f"IncrementalModel: max_length={max_length} exceeds the {table_rows} positions "
                "of the model's Embedding-Position table; pass max_length <= "
                f"{table_rows}."
            )
        self.max_length = int(max_length)
        self.widths = make_buckets(self.max_length, start=1)
        self._steps = CompiledSteps(builder.model.variables, self._step, donate_argnums=(0,))

    @property
    def num_compilations(self):
        """The XLA compilations of the step function so far (JAX; 0 on other backends)."""
        return self._steps.num_compilations

    @property
    def _function(self):  # the jitted step (its executables: ``_function._cache_size()``)
        return self._steps.function

    # -- the step, traced once per (batch, width, first call or not) -----------------------

    def _embed(self, token_ids, segment_ids, positions):
        layers = self.layers
        x = layers["Embedding-Token"](token_ids)
        if "Embedding-Segment" in layers:
            x = x + layers["Embedding-Segment"](segment_ids)
        if "Embedding-Position" in layers:
            table = layers["Embedding-Position"].embeddings
            x = x + ops.cast(ops.take(table, positions, axis=0)[None], x.dtype)
        if "Embedding-Norm" in layers:  # GPT-2 has none
            x = layers["Embedding-Norm"](x)
        if "Embedding-Mapping" in layers:
            x = layers["Embedding-Mapping"](x)
        return x

    def _attention_bias(self, all_segments, positions):
        """``(batch, 1, width, max_length)`` additive bias: 0 where attention is allowed."""
        keys = ops.arange(self.max_length, dtype="int32")
        if self.builder.application == "lm":
            allowed = keys[None, None, :] <= positions[None, :, None]
        else:  # UniLM: a key is visible when its segment index is at most the query's
            index = ops.cumsum(all_segments, axis=1)
            query_index = ops.take(index, positions, axis=1)
            allowed = index[:, None, :] <= query_index[:, :, None]
        return ops.where(allowed, 0.0, _FORBIDDEN)[:, None]

    def _positions_input(self, positions):
        """The attention layers' position input for queries at ``positions`` (absolute):
        NEZHA's relative encodings against every cache position, RoFormer's rotary
        sinusoids of the new positions, or None."""
        layer = self.layers.get("Embedding-Relative-Position")
        if layer is not None:
            k = layer.max_relative_position
            keys = ops.arange(self.max_length, dtype="int32")
            index = ops.clip(keys[None, :] - positions[:, None], -k, k) + k
            return ops.take(ops.convert_to_tensor(layer.table), index, axis=0)
        layer = self.layers.get("Embedding-Rotary-Position")
        if layer is not None:
            return sinusoidal_embeddings(positions[None], layer.output_dim)
        return None

    def _step(self, cache, token_ids, segment_ids, past, count):
        """One chunk: ``token_ids`` ``(batch, width)`` of which ``count`` are real, written
        at position ``past`` of the cache. Returns ``(outputs, new cache arrays)``."""
        batch, width = token_ids.shape
        if cache is None:
            cache = self._empty_cache(batch)
        start = (0, past)
        all_ids = ops.slice_update(cache["token_ids"], start, token_ids)
        all_segments = ops.slice_update(cache["segment_ids"], start, segment_ids)
        positions = past + ops.arange(width, dtype="int32")
        bias = self._attention_bias(all_segments, positions)
        filled = ops.arange(self.max_length, dtype="int32")[None, :] < past + count
        key_mask = ops.logical_and(all_ids != 0, filled)
        position_input = self._positions_input(positions)

        x = self._embed(token_ids, segment_ids, positions)
        pre_norm = getattr(self.builder, "pre_norm", False)
        keys, values = [], []
        for index, prefix in enumerate(self.blocks):
            attention = self.layers[f"{prefix}-MultiHeadSelfAttention"]
            attention_norm = self.layers[f"{prefix}-MultiHeadSelfAttention-Norm"]
            h = attention_norm(x) if pre_norm else x
            qw = attention._split_heads(attention.query_dense(h), attention.key_size)
            kw = attention._split_heads(attention.key_dense(h), attention.key_size)
            vw = attention._split_heads(attention.value_dense(h), attention.head_size)
            # Rotary embeddings rotate the new heads at their positions before caching.
            qw, kw, vw, relative = attention.position_heads(qw, kw, vw, position_input)
            kw = write_heads_first(cache["keys"][index], kw, past)
            vw = write_heads_first(cache["values"][index], vw, past)
            keys.append(kw)
            values.append(vw)
            scale = 1.0 / attention.key_size**0.5 if attention.attention_scale else 1.0
            o = attention.attend(qw, kw, vw, bias, key_mask, scale, False, relative,
                                 heads_first=True)  # fmt: skip
            o = ops.reshape(o, (batch, width, attention.heads * attention.head_size))
            feed_forward = self.layers[f"{prefix}-FeedForward"]
            feed_forward_norm = self.layers[f"{prefix}-FeedForward-Norm"]
            if pre_norm:
                x = x + attention.output_dense(o)
                x = x + feed_forward(feed_forward_norm(x))
            else:
                x = attention_norm(x + attention.output_dense(o))
                x = feed_forward_norm(x + feed_forward(x))

        if "LM-Activation" in self.layers:  # GPT-2: the final norm, the tied embedding
            x = self.layers["Output-Norm"](x)
            x = self.layers["Embedding-Token"](x, mode="dense")
            x = self.layers["LM-Activation"](x)
        elif "MLM-Dense" in self.layers:
            x = self.layers["MLM-Norm"](self.layers["MLM-Dense"](x))
            x = self.layers["Embedding-Token"](x, mode="dense")
            x = self.layers["MLM-Activation"](self.layers["MLM-Bias"](x))
        elif "Output-MLM-Activation" in self.layers:  # RoFormer v2: the tied embedding alone
            if "Output-Mapping" in self.layers:
                x = self.layers["Output-Mapping"](x)
            x = self.layers["Embedding-Token"](x, mode="dense")
            x = self.layers["Output-MLM-Activation"](x)
        new_cache = {"token_ids": all_ids, "segment_ids": all_segments, "keys": keys,
                     "values": values}  # fmt: skip
        return x, new_cache

    def _empty_cache(self, batch):
        shape = (batch, self.max_length)
        cache = {"token_ids": ops.zeros(shape, "int32"), "segment_ids": ops.zeros(shape, "int32"),
                 "keys": [], "values": []}  # fmt: skip
        for prefix in self.blocks:
            attention = self.layers[f"{prefix}-MultiHeadSelfAttention"]
            cache["keys"].append(empty_heads_first(batch, attention, self.max_length, "key"))
            cache["values"].append(empty_heads_first(batch, attention, self.max_length, "head"))
        return cache

    def _run(self, cache, token_ids, segment_ids, past, count):
        outputs, compiled = self._steps(cache, token_ids, segment_ids, past, count)
        if compiled:
            logger.info(
                "IncrementalModel: compiled a step for batch %d, width %d%s, max_length %d "
                "(%d compilations so far)", token_ids.shape[0], token_ids.shape[1],
                " (first chunk)" if cache is None else "", self.max_length,
                self.num_compilations,
            )  # fmt: skip
        return outputs

    def __call__(self, token_ids, segment_ids=None, cache=None):
        """Process new ids; returns ``(outputs for the new positions, updated cache)``.

        Args:
            token_ids: ``(batch, n)`` new token ids.
            segment_ids: ``(batch, n)`` their segment ids (None: zeros, e.g. for GPT-2,
                which has no segments).
            cache: None for the first chunk, else the cache the previous call returned.
        """
        token_ids = np.asarray(token_ids, "int32")
        if segment_ids is None:
            segment_ids = np.zeros_like(token_ids)
        segment_ids = np.asarray(segment_ids, "int32")
        if token_ids.ndim != 2 or token_ids.shape != segment_ids.shape:
            raise ConfigError(
                f"IncrementalModel: token_ids {token_ids.shape} and segment_ids "
                f"{segment_ids.shape} must both be (batch, n)."
            )
        batch, count = token_ids.shape
        past = 0 if cache is None else int(cache["length"])
        if past + count > self.max_length:
            raise ConfigError(
                f"IncrementalModel: {past} cached + {count} new positions exceed "
                f"max_length={self.max_length}; build it with a larger max_length."
            )
        if cache is not None:
            check_cache_alive(cache, "IncrementalModel")
        if cache is not None and cache["token_ids"].shape[0] != batch:
            raise ConfigError(
                f"IncrementalModel: the cache has {cache['token_ids'].shape[0]} rows but "
                f"token_ids has {batch}; select the cache rows that go with the new ids."
            )
        width = min(bucket_length(count, self.widths), self.max_length - past)
        pad = ((0, 0), (0, width - count))
        arrays = None if cache is None else {k: v for k, v in cache.items() if k != "length"}
        outputs, new_cache = self._run(
            arrays,
            np.pad(token_ids, pad),
            np.pad(segment_ids, pad),
            np.int32(past),
            np.int32(count),
        )
        new_cache["length"] = past + count
        return np.asarray(ops.convert_to_numpy(outputs))[:, :count], new_cache
