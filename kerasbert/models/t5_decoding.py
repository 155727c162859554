"""Cached decoding for T5: the source encoded once, its cross-attention keys and values
computed once, the decoder's own keys and values kept in a fixed-size cache.

Each decoder step then runs only the new target positions through the decoder's layers
(the model's own layers and weights), attending to the cached self-attention keys and
values of the earlier positions and to the source's precomputed ones. Shapes do not depend
on how many tokens are cached: on JAX a step compiles once per batch size, width and
source bucket (sources are padded to lengths from ``16, 32, 64, ...``; the padding is
masked like any other). As in :class:`~kerasbert.models.IncrementalModel`, keys and values
are kept heads-first and the step updates the self-attention cache in place; one source
is shared by all the rows decoded from it (a beam's candidates, samples), without copies.
"""

import numpy as np
from keras import ops

from kerasbert.compilation import bucket_length, make_buckets
from kerasbert.errors import ConfigError
from kerasbert.models.decoding import (
    CompiledSteps,
    check_cache_alive,
    empty_heads_first,
    logger,
    write_heads_first,
)
from kerasbert.snippets.decoders import CachedStepDecoder, _select_rows


class EncodedSource:
    """A batch of sources as the decoder steps read them.

    ``arrays``: ``mask`` ``(batch, length)`` (true at real ids) and per decoder block the
    cross-attention ``keys`` / ``values`` ``(batch, heads, length, size)``. A single source
    (batch 1) serves any number of target rows: the step attends every row's queries to its
    keys and values, and :meth:`select_rows` (called by the beam search as it reorders the
    candidates) keeps it as it is, so a beam of 4 over a 512-id source neither copies nor
    gathers its keys and values. A batch of several sources follows the rows.
    """

    def __init__(self, arrays):
        self.arrays = arrays

    @property
    def batch(self):
        return self.arrays["mask"].shape[0]

    def select_rows(self, rows, num_rows):
        if self.batch == 1:
            return self
        return EncodedSource(_select_rows(self.arrays, rows, num_rows))


class T5IncrementalDecoder:
    """Run a kerasbert T5's decoder token by token over one encoded source batch.

    Args:
        builder: the T5 builder (``build_transformer_model(..., model="t5.1.1",
            return_keras_model=False)``).
        max_length: the most target positions (start token included) a decoding may
            have; the cache holds that many.
        max_source_length: the longest source accepted (longer ones are an error).

    ``start(source_ids)`` encodes a batch of sources (``(batch, length)`` ids, 0 = padding)
    and returns an empty cache; ``step(token_ids, cache)`` processes the next target ids
    (``(batch, n)``, the first call starting with the start id 0) and returns the
    decoder's outputs for them (probabilities, or logits with ``with_lm="linear"``) and
    the updated cache. The cache's arrays have one row per sequence, so a beam search can
    reorder them (:class:`kerasbert.snippets.AutoRegressiveDecoder` does); its ``source``
    (an :class:`EncodedSource`) has one row per source, or one for all rows. On JAX a
    step takes over the cache it is given: pass each step the cache the previous one
    returned (``copy_cache`` one to branch from it).

    Example:

    >>> import numpy as np, kerasbert
    >>> t5 = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16}, model="t5.1.1",
    ...     return_keras_model=False)
    >>> decoder = T5IncrementalDecoder(t5, max_length=8)
    >>> cache = decoder.start(np.array([[5, 6, 7, 1]]))
    >>> probas, cache = decoder.step(np.array([[0]]), cache)
    >>> probas, cache = decoder.step(np.array([[4]]), cache)
    >>> probas.shape, cache["length"]
    ((1, 1, 20), 2)
    """

    def __init__(self, builder, max_length=64, max_source_length=512):
        if getattr(builder, "encoder", None) is None or not hasattr(builder, "num_decoder_layers"):
            raise ConfigError(
                "T5IncrementalDecoder needs a built T5 builder (build_transformer_model(..., "
                "model='t5.1.1', return_keras_model=False))."
            )
        for name, value in (("max_length", max_length), ("max_source_length", max_source_length)):
            if not (isinstance(value, (int, np.integer)) and value > 0):
                raise ConfigError(
                    f"T5IncrementalDecoder: {name} must be a positive int, got {value!r}."
                )
        self.builder = builder
        self.layers = {name[len(builder.prefix) :]: layer for name, layer in builder.layers.items()}
        self.max_length = int(max_length)
        self.max_source_length = int(max_source_length)
        self.widths = make_buckets(self.max_length, start=1)
        self.source_lengths = make_buckets(self.max_source_length, start=16)
        variables = builder.model.variables
        self._encode = CompiledSteps(variables, self._encode_source)
        self._step = CompiledSteps(variables, self._decode_step, donate_argnums=(0,))

    @property
    def num_compilations(self):
        """XLA compilations so far: the source encoding's and the steps' (JAX)."""
        return self._encode.num_compilations + self._step.num_compilations

    def _blocks(self):
        return [f"Decoder-Transformer-{i}" for i in range(self.builder.num_decoder_layers)]

    # -- traced functions -----------------------------------------------------------------
    def _encode_source(self, source_ids):
        """The sources' mask and every block's cross-attention keys and values (heads-first)."""
        states = self.builder.encoder(source_ids)
        keys, values = [], []
        for prefix in self._blocks():
            attention = self.layers[f"{prefix}-MultiHeadCrossAttention"]
            k = attention._split_heads(attention.key_dense(states), attention.key_size)
            v = attention._split_heads(attention.value_dense(states), attention.head_size)
            keys.append(ops.transpose(k, (0, 2, 1, 3)))
            values.append(ops.transpose(v, (0, 2, 1, 3)))
        return {"mask": source_ids != 0, "keys": keys, "values": values}

    def _cross_attend(self, attention, qw, source, index, bias):
        """Cross-attention of the rows' queries ``(rows, width, heads, size)`` to block
        ``index``'s source keys and values; ``(rows, width, heads * size)``."""
        rows, width = qw.shape[0], qw.shape[1]
        keys, values = source["keys"][index], source["values"][index]
        if keys.shape[0] == 1 and rows > 1:  # one source for every row: one attention
            qw = ops.reshape(qw, (1, rows * width) + tuple(qw.shape[2:]))
            if bias is not None:
                bias = ops.tile(bias, (1, 1, rows, 1))
        o = attention.attend(qw, keys, values, bias, source["mask"], 1.0, False,
                             heads_first=True)  # fmt: skip
        return ops.reshape(o, (rows, width, -1))

    def _decode_step(self, cache, source, token_ids, past, count):
        layers = self.layers
        batch, width = token_ids.shape
        all_ids = ops.slice_update(cache["token_ids"], (0, past), token_ids)
        slots = ops.arange(self.max_length, dtype="int32")
        positions = past + ops.arange(width, dtype="int32")
        filled = slots[None, :] < past + count
        key_mask = ops.logical_and(ops.logical_or(all_ids != 0, slots[None, :] == 0), filled)
        position_layer = layers["Decoder-Embedding-Relative-Position"]
        self_bias = position_layer.bias(positions, slots, causal=True)
        cross_bias = None
        if self.builder.cross_position_bias:
            source_slots = ops.arange(source["mask"].shape[1], dtype="int32")
            cross_bias = position_layer.bias(positions, source_slots)

        x = layers["Embedding-Token"](token_ids)
        keys, values = [], []
        for index, prefix in enumerate(self._blocks()):
            attention = layers[f"{prefix}-MultiHeadSelfAttention"]
            h = layers[f"{prefix}-MultiHeadSelfAttention-Norm"](x)
            qw = attention._split_heads(attention.query_dense(h), attention.key_size)
            kw = attention._split_heads(attention.key_dense(h), attention.key_size)
            vw = attention._split_heads(attention.value_dense(h), attention.head_size)
            kw = write_heads_first(cache["keys"][index], kw, past)
            vw = write_heads_first(cache["values"][index], vw, past)
            keys.append(kw)
            values.append(vw)
            o = attention.attend(qw, kw, vw, self_bias, key_mask, 1.0, False, heads_first=True)
            x = x + attention.output_dense(ops.reshape(o, (batch, width, -1)))

            cross = layers[f"{prefix}-MultiHeadCrossAttention"]
            h = layers[f"{prefix}-MultiHeadCrossAttention-Norm"](x)
            qw = cross._split_heads(cross.query_dense(h), cross.key_size)
            o = self._cross_attend(cross, qw, source, index, cross_bias)
            x = x + cross.output_dense(o)
            x = x + layers[f"{prefix}-FeedForward"](layers[f"{prefix}-FeedForward-Norm"](x))

        x = layers["Decoder-Output-Norm"](x)
        if self.builder.with_lm:
            if "Decoder-Output-Scale" in layers:
                x = layers["Decoder-Output-Scale"](x)
            if "Decoder-Output-LM" in layers:
                x = layers["Decoder-Output-LM"](x)
            else:
                x = layers["Embedding-Token"](x, mode="dense")
            x = layers["Decoder-Output-LM-Activation"](x)
        return x, {"token_ids": all_ids, "keys": keys, "values": values}

    # -- calls ------------------------------------------------------------------------------
    def start(self, source_ids):
        """Encode ``source_ids`` ``(batch, length)`` and return an empty decoding cache."""
        source_ids = np.asarray(source_ids)
        if source_ids.ndim != 2 or not np.issubdtype(source_ids.dtype, np.integer):
            raise ConfigError(
                f"T5IncrementalDecoder.start: source_ids must be integer ids of shape (batch, "
                f"length), got {source_ids.dtype} {source_ids.shape}."
            )
        batch, length = source_ids.shape
        if length > self.max_source_length:
            raise ConfigError(
                f"T5IncrementalDecoder.start: the source has {length} positions, more than "
                f"max_source_length={self.max_source_length}; truncate it or build the "
                "decoder with a larger max_source_length."
            )
        padded = bucket_length(length, self.source_lengths)
        ids = np.pad(source_ids.astype("int32"), ((0, 0), (0, padded - length)))
        source, compiled = self._encode(ids)
        if compiled:
            logger.info("T5IncrementalDecoder: compiled the encoding of batch %d, source %d",
                        batch, padded)  # fmt: skip
        cache = {"token_ids": ops.zeros((batch, self.max_length), "int32"), "keys": [],
                 "values": [], "source": EncodedSource(source), "length": 0}  # fmt: skip
        for prefix in self._blocks():
            attention = self.layers[f"{prefix}-MultiHeadSelfAttention"]
            cache["keys"].append(empty_heads_first(batch, attention, self.max_length, "key"))
            cache["values"].append(empty_heads_first(batch, attention, self.max_length, "head"))
        return cache

    def step(self, token_ids, cache):
        """Process the next target ids; returns ``(outputs for them, updated cache)``."""
        token_ids = np.asarray(token_ids)
        if token_ids.ndim != 2 or not np.issubdtype(token_ids.dtype, np.integer):
            raise ConfigError(
                f"T5IncrementalDecoder.step: token_ids must be integer ids of shape (batch, "
                f"n), got {token_ids.dtype} {token_ids.shape}."
            )
        batch, count = token_ids.shape
        past = int(cache["length"])
        if past + count > self.max_length:
            raise ConfigError(
                f"T5IncrementalDecoder: {past} cached + {count} new positions exceed "
                f"max_length={self.max_length}; build it with a larger max_length."
            )
        check_cache_alive(cache, "T5IncrementalDecoder")
        source = cache["source"]
        if cache["token_ids"].shape[0] != batch or source.batch not in (1, batch):
            raise ConfigError(
                f"T5IncrementalDecoder: the cache has {cache['token_ids'].shape[0]} rows (of "
                f"{source.batch} sources) but token_ids has {batch}; select the cache rows "
                "that go with the new ids."
            )
        width = min(bucket_length(count, self.widths), self.max_length - past)
        ids = np.pad(token_ids.astype("int32"), ((0, 0), (0, width - count)))
        arrays = {k: cache[k] for k in ("token_ids", "keys", "values")}
        (outputs, new_cache), compiled = self._step(
            arrays, source.arrays, ids, np.int32(past), np.int32(count)
        )
        if compiled:
            logger.info(
                "T5IncrementalDecoder: compiled a step for batch %d (%d sources), width %d, "
                "source %d (%d compilations so far)", batch, source.batch, width,
                source.arrays["mask"].shape[1], self.num_compilations,
            )  # fmt: skip
        new_cache["source"] = source
        new_cache["length"] = past + count
        return np.asarray(ops.convert_to_numpy(outputs))[:, :count], new_cache

    def greedy(self, source_ids, max_new_tokens, start_id=0, end_id=1):
        """Greedy outputs for a batch of sources: ``(batch, 1 + max_new_tokens)`` ids, the
        start id first; a row that produced ``end_id`` is padded with 0 after it (as HF's
        ``generate`` returns them).

        Example:

        >>> import numpy as np, kerasbert
        >>> t5 = kerasbert.build_transformer_model(
        ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
        ...      "num_attention_heads": 2, "intermediate_size": 16}, model="t5.1.1",
        ...     return_keras_model=False)
        >>> T5IncrementalDecoder(t5, max_length=8).greedy(np.array([[5, 6, 1]]), 4).shape
        (1, 5)
        """
        if not (isinstance(max_new_tokens, (int, np.integer)) and 0 < max_new_tokens
                < self.max_length):  # fmt: skip
            raise ConfigError(
                f"T5IncrementalDecoder.greedy: max_new_tokens must be a positive int below "
                f"max_length={self.max_length}, got {max_new_tokens!r}."
            )
        cache = self.start(source_ids)
        batch = len(source_ids)
        tokens = np.full((batch, 1), start_id, "int32")
        ended = np.zeros(batch, bool)
        outputs, cache = self.step(tokens, cache)
        for _ in range(max_new_tokens):
            new = np.where(ended, 0, outputs[:, -1].argmax(-1)).astype("int32")
            tokens = np.concatenate([tokens, new[:, None]], axis=1)
            ended |= new == end_id
            if ended.all() or tokens.shape[1] > max_new_tokens:
                break
            outputs, cache = self.step(new[:, None], cache)
        return np.pad(tokens, ((0, 0), (0, 1 + max_new_tokens - tokens.shape[1])))


class T5Generator(CachedStepDecoder):
    """bert4keras's decoder (beam search, top-k / top-p sampling) over T5's cached decoder.

    ``inputs`` of :meth:`beam_search` and :meth:`random_sample` is ``[source_ids]`` of one
    source (as bert4keras's T5 scripts pass the encoder's ids); the source is encoded once,
    its cross-attention keys and values computed once, and each step runs the newest id
    alone. Outputs start with ``start_id`` (T5's decoder start, 0).

    Args:
        builder: the T5 builder (``return_keras_model=False``); its head may output
            probabilities (the default) or logits (``with_lm="linear"``).
        start_id: the decoder's start id (0 in every T5 release).
        end_id: the id that ends an output (EOS, 1 in every T5 release; None: never).
        maxlen: the most ids generated.
        minlen: outputs shorter than this do not end.
        max_source_length: the longest source accepted.

    Example:

    >>> import numpy as np, kerasbert
    >>> t5 = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16}, model="t5.1.1",
    ...     return_keras_model=False)
    >>> generator = T5Generator(t5, maxlen=6)
    >>> best = generator.beam_search([np.array([5, 6, 7, 1])], topk=3)
    >>> int(best[0]), len(best) <= 7
    (0, True)
    """

    def __init__(self, builder, start_id=0, end_id=1, maxlen=32, minlen=1,
                 max_source_length=512):  # fmt: skip
        if start_id is None:
            raise ConfigError("T5Generator: T5's decoder needs a start id (0 in its releases).")
        if not (isinstance(maxlen, (int, np.integer)) and maxlen > 0):
            raise ConfigError(f"T5Generator: maxlen must be a positive int, got {maxlen!r}.")
        super().__init__(start_id=start_id, end_id=end_id, maxlen=maxlen, minlen=minlen)
        length = bucket_length(maxlen + 1, make_buckets(1 << 20, start=16))
        key = (length, max_source_length)
        decoders = builder.__dict__.setdefault("_kerasbert_t5_decoders", {})
        if key not in decoders:
            decoders[key] = T5IncrementalDecoder(builder, length, max_source_length)
        self.decoder = decoders[key]
        self.outputs_logits = builder.with_lm == "linear"

    def _next_scores(self, inputs, output_ids, states):
        if states is None:
            states, ids = self.decoder.start(inputs[0]), output_ids
        else:
            ids = output_ids[:, -1:]
        outputs, cache = self.decoder.step(ids, states)
        return outputs[:, -1], cache
