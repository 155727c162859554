"""Incremental decoding with a key/value cache for ``application="lm"`` / ``"unilm"`` models.

In a causal LM, and in UniLM's target segment, a token's keys and values never change once
computed (later tokens cannot influence earlier ones), so generation can run each new token
through the network alone, attending to the cached keys and values of the prefix, instead
of recomputing the whole prefix at every step. :class:`IncrementalModel` does that with the
model's own layers (the same weights and attention code as the functional model), for
BERT, ALBERT and NEZHA.
"""

import numpy as np
from keras import ops

from kerasbert.errors import ConfigError

_FORBIDDEN = -1e12


class IncrementalModel:
    """Run a kerasbert LM / UniLM model chunk by chunk, caching attention keys and values.

    Args:
        builder: the builder returned by ``build_transformer_model(...,
            application="lm" or "unilm", return_keras_model=False)``.

    Calling it with the first chunk (``cache=None``) processes the prefix; each later call
    processes only the new ids, appended after the cached ones. The outputs are those of
    the model (MLM probabilities / logits when it has the MLM head, else hidden states) for
    the new positions.

    Example:

    >>> import numpy as np, kerasbert
    >>> builder = kerasbert.build_transformer_model(
    ...     {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 2,
    ...      "num_attention_heads": 2, "intermediate_size": 16},
    ...     application="lm", with_mlm=True, return_keras_model=False)
    >>> step = IncrementalModel(builder)
    >>> probas, cache = step(np.array([[2, 5, 7]]), np.zeros((1, 3), "int32"))
    >>> probas, cache = step(np.array([[9]]), np.zeros((1, 1), "int32"), cache)
    >>> probas.shape, cache["token_ids"].shape
    ((1, 1, 20), (1, 4))
    """

    def __init__(self, builder):
        if getattr(builder, "application", None) not in ("lm", "unilm"):
            raise ConfigError(
                "IncrementalModel needs a model built with application='lm' or 'unilm' "
                "(and return_keras_model=False, to pass the builder)."
            )
        if getattr(builder, "layer_norm_cond", None) is not None:
            raise ConfigError("IncrementalModel does not support conditional layer norms.")
        self.builder = builder
        self.layers = {layer.name: layer for layer in builder.model.layers}
        self.blocks = self._block_prefixes()

    def _block_prefixes(self):
        builder = self.builder
        if hasattr(builder, "inner_group_num"):  # ALBERT: blocks in the order layers run them
            return [
                builder.shared_block_name(builder.group_of(i), j, i)
                for i in range(builder.num_hidden_layers)
                for j in range(builder.inner_group_num)
            ]
        return [builder.block_name(i) for i in range(builder.num_hidden_layers)]

    def _embed(self, token_ids, segment_ids, past):
        layers = self.layers
        x = layers["Embedding-Token"](token_ids)
        if "Embedding-Segment" in layers:
            x = x + layers["Embedding-Segment"](segment_ids)
        if "Embedding-Position" in layers:
            table = layers["Embedding-Position"].embeddings
            x = x + ops.cast(table[past : past + token_ids.shape[1]][None], x.dtype)
        x = layers["Embedding-Norm"](x)
        if "Embedding-Mapping" in layers:
            x = layers["Embedding-Mapping"](x)
        return x

    def _attention_bias(self, token_ids, segment_ids, past):
        total = token_ids.shape[1]
        queries = np.arange(past, total)
        if self.builder.application == "lm":
            allowed = np.arange(total)[None, None, :] <= queries[None, :, None]
        else:
            index = np.cumsum(segment_ids, axis=1)
            allowed = index[:, None, :] <= index[:, queries, None]
        return np.where(allowed, 0.0, _FORBIDDEN).astype("float32")[:, None]

    def _relative(self, past, total):
        layer = self.layers.get("Embedding-Relative-Position")
        if layer is None:
            return None
        k = layer.max_relative_position
        index = np.clip(np.arange(total)[None, :] - np.arange(past, total)[:, None], -k, k) + k
        return ops.convert_to_tensor(layer.table[index])

    def __call__(self, token_ids, segment_ids, cache=None):
        """Process new ids; returns ``(outputs for the new positions, updated cache)``.

        Args:
            token_ids: ``(batch, n)`` new token ids.
            segment_ids: ``(batch, n)`` their segment ids.
            cache: None for the first chunk, else the cache the previous call returned.
        """
        token_ids = np.asarray(token_ids, "int32")
        segment_ids = np.asarray(segment_ids, "int32")
        past = 0 if cache is None else cache["token_ids"].shape[1]
        all_ids = token_ids if cache is None else np.concatenate([cache["token_ids"], token_ids], 1)
        all_segments = (
            segment_ids if cache is None else np.concatenate([cache["segment_ids"], segment_ids], 1)
        )
        bias = self._attention_bias(all_ids, all_segments, past)
        key_mask = all_ids != 0
        relative = self._relative(past, all_ids.shape[1])

        x = self._embed(token_ids, segment_ids, past)
        keys, values = [], []
        for index, prefix in enumerate(self.blocks):
            attention = self.layers[f"{prefix}-MultiHeadSelfAttention"]
            qw = attention._split_heads(attention.query_dense(x), attention.key_size)
            kw = attention._split_heads(attention.key_dense(x), attention.key_size)
            vw = attention._split_heads(attention.value_dense(x), attention.head_size)
            if cache is not None:
                kw = ops.concatenate([cache["keys"][index], kw], axis=1)
                vw = ops.concatenate([cache["values"][index], vw], axis=1)
            keys.append(kw)
            values.append(vw)
            scale = 1.0 / attention.key_size**0.5 if attention.attention_scale else 1.0
            o = attention.attend(qw, kw, vw, bias, key_mask, scale, False, relative)
            o = ops.reshape(o, tuple(o.shape[:2]) + (attention.heads * attention.head_size,))
            x = self.layers[f"{prefix}-MultiHeadSelfAttention-Norm"](x + attention.output_dense(o))
            y = self.layers[f"{prefix}-FeedForward"](x)
            x = self.layers[f"{prefix}-FeedForward-Norm"](x + y)

        if "MLM-Dense" in self.layers:
            x = self.layers["MLM-Norm"](self.layers["MLM-Dense"](x))
            x = self.layers["Embedding-Token"](x, mode="dense")
            x = self.layers["MLM-Activation"](self.layers["MLM-Bias"](x))
        new_cache = {
            "token_ids": all_ids,
            "segment_ids": all_segments,
            "keys": [np.asarray(k) for k in keys],
            "values": [np.asarray(v) for v in values],
        }
        return np.asarray(ops.convert_to_numpy(x)), new_cache
