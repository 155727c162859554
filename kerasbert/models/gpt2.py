"""GPT-2: a pre-LayerNorm causal decoder with learned positions and a tied output."""

import keras

from kerasbert.errors import ConfigError, ModelTypeError
from kerasbert.layers import Add, Dense, Dropout, Embedding, FeedForward, MultiHeadAttention
from kerasbert.models.bert import BERT, HEAD_DTYPE, dense, layer_norm

# bert4keras's GPT2.variable_mapping: BERT's names with bert/ -> gpt/, encoder ->
# transformer and output/LayerNorm -> input/LayerNorm (the norms come before their sublayer).
GPT2_BLOCK_NAMES = {
    "MultiHeadSelfAttention": {
        "query": "attention/self/query",
        "key": "attention/self/key",
        "value": "attention/self/value",
        "output": "attention/output/dense",
    },
    "MultiHeadSelfAttention-Norm": "attention/input/LayerNorm",
    "FeedForward": {"intermediate": "intermediate/dense", "output": "output/dense"},
    "FeedForward-Norm": "input/LayerNorm",
}


class GPT2(BERT):
    """OpenAI's GPT-2 (bert4keras's ``GPT2``; HF ``GPT2LMHeadModel``).

    The input is the token ids alone (``Input-Token``). Token and learned position
    embeddings are summed (no embedding norm), then every block normalizes before its
    sublayer: ``-MultiHeadSelfAttention-Norm`` -> causal self-attention -> ``-Add``, then
    ``-FeedForward-Norm`` -> feed-forward -> ``-Add``; a final ``Output-Norm``, and the
    output is the token embedding used as the projection (``Embedding-Token`` in dense mode,
    no bias) followed by ``LM-Activation``. Attention is always causal (bert4keras's
    ``LM_Mask``; ``application="lm"``). Epsilon is the config's (``layer_norm_epsilon``,
    1e-5 in every release); GELU is the tanh form OpenAI uses (HF's ``gelu_new``).

    Padding follows bert4keras, not HF: token id 0 is masked out as a key (the token
    embedding's ``mask_zero``), although GPT-2's id 0 is the real token ``"!"``. HF takes
    an ``attention_mask`` instead and attends to every id. Right padding with any id leaves
    the outputs at the real tokens unchanged (attention is causal); a text whose tokens
    include id 0 differs from HF at and after it.

    Args:
        final_activation: the output's activation (bert4keras's option): ``"softmax"``
            (probabilities over the vocabulary, the default) or ``"linear"`` for logits.
        **kwargs: the options of :class:`kerasbert.models.bert.BERT`, except ``with_pool``,
            ``with_nsp`` and ``with_mlm`` (GPT-2 has its LM head only) and
            ``application="unilm"``; segments are not used (``segment_vocab_size`` is 0).
        scale_attn_weights, scale_attn_by_inverse_layer_idx: HF ``GPT2Config`` options,
            from the config; only OpenAI's values (true, false) are accepted.

    Example:

    >>> builder = GPT2(vocab_size=20, hidden_size=8, num_hidden_layers=1,
    ...                num_attention_heads=2, intermediate_size=16, max_position=10)
    >>> model = builder.build()
    >>> [i.name for i in model.inputs], model.output.shape
    (['Input-Token'], (None, None, 20))
    """

    default_name = "gpt2"
    pre_norm = True  # for kerasbert.models.IncrementalModel: norms before each sublayer
    checkpoint_scope = "gpt"
    block_scope = "transformer"
    block_checkpoint_names = GPT2_BLOCK_NAMES

    def __init__(
        self,
        final_activation="softmax",
        scale_attn_weights=True,
        scale_attn_by_inverse_layer_idx=False,
        **kwargs,
    ):
        # HF GPT2Config options that change the function (Stanford CRFM's Mistral GPT-2s
        # scale by the layer index): refused rather than computed wrongly.
        if scale_attn_weights is not True or scale_attn_by_inverse_layer_idx is not False:
            raise ConfigError(
                "GPT-2 here scales attention by 1 / sqrt(head size) only, as OpenAI's models: "
                f"the config's scale_attn_weights={scale_attn_weights!r} / "
                f"scale_attn_by_inverse_layer_idx={scale_attn_by_inverse_layer_idx!r} "
                "describe another model, which kerasbert does not build."
            )
        self.scale_attn_weights = scale_attn_weights
        self.scale_attn_by_inverse_layer_idx = scale_attn_by_inverse_layer_idx
        for option in ("with_pool", "with_nsp", "with_mlm"):
            if kwargs.get(option):
                raise ConfigError(
                    f"GPT-2 has no pooler, NSP or MLM head ({option}={kwargs[option]!r}): its "
                    "output is the language model's; pass final_activation='linear' for logits."
                )
            kwargs.pop(option, None)
        application = kwargs.pop("application", "lm")
        if application == "unilm":
            raise ModelTypeError(
                "GPT-2 is a causal language model: application='unilm' needs segment ids it "
                "does not have; use model='bert' (or another encoder) for UniLM."
            )
        kwargs["segment_vocab_size"] = 0
        super().__init__(application="lm", **kwargs)
        self.with_mlm = False
        self.final_activation = final_activation

    def apply_embeddings(self, inputs):
        x = self.apply(
            inputs[0],
            Embedding,
            input_dim=self.vocab_size,
            output_dim=self.embedding_size,
            embeddings_initializer=self.initializer,
            mask_zero=True,
            name="Embedding-Token",
        )
        x = self.apply_position_embedding(x)
        if self.uses_embedding_mapping():
            x = self.apply(
                x,
                Dense,
                units=self.hidden_size,
                kernel_initializer=self.initializer,
                name="Embedding-Mapping",
            )
        return x

    def apply_block(self, inputs, prefix):
        """One pre-LN block: norm -> attention -> add, norm -> feed-forward -> add."""
        attention_name = f"{prefix}-MultiHeadSelfAttention"
        feed_forward_name = f"{prefix}-FeedForward"
        x = self.apply_norm(inputs, f"{attention_name}-Norm")
        x = self.apply(
            [x, x, x] + self.attention_extra_inputs(),
            MultiHeadAttention,
            heads=self.num_attention_heads,
            head_size=self.attention_head_size,
            out_dim=self.hidden_size,
            attention_dropout=self.attention_dropout_rate,
            kernel_initializer=self.initializer,
            name=attention_name,
        )
        x = self.apply(x, Dropout, rate=self.dropout_rate, name=f"{attention_name}-Dropout")
        shortcut = x = self.apply([inputs, x], Add, name=f"{attention_name}-Add")
        x = self.apply_norm(x, f"{feed_forward_name}-Norm")
        x = self.apply(
            x,
            FeedForward,
            units=self.intermediate_size,
            activation=self.hidden_act,
            kernel_initializer=self.initializer,
            name=feed_forward_name,
        )
        x = self.apply(x, Dropout, rate=self.dropout_rate, name=f"{feed_forward_name}-Dropout")
        return self.apply([shortcut, x], Add, name=f"{feed_forward_name}-Add")

    def apply_final_layers(self, inputs):
        x = self.apply_norm(inputs, "Output-Norm")
        x = self.apply(x, Dropout, rate=self.dropout_rate, name="Output-Dropout")
        x = self.apply(x, Embedding, arguments={"mode": "dense"}, name="Embedding-Token")
        return self.apply(
            x,
            keras.layers.Activation,
            activation=self.final_activation,
            dtype=HEAD_DTYPE,
            name="LM-Activation",
        )

    # -- checkpoint names --------------------------------------------------------------------
    def variable_mapping(self):
        mapping = {
            "Embedding-Token": {"embeddings": ("gpt/embeddings/word_embeddings", "vocab")},
            "Embedding-Position": {"embeddings": "gpt/embeddings/position_embeddings"},
            "Embedding-Mapping": dense("gpt/transformer/embedding_hidden_mapping_in"),
            "Output-Norm": layer_norm("gpt/output/LayerNorm"),
        }
        mapping.update(self.block_mappings())
        return mapping
