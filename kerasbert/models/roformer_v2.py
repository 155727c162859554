"""RoFormer v2: RoFormer without biases, with a parameter-free root-mean-square norm."""

import keras

from kerasbert.errors import ConfigError
from kerasbert.layers import Dense, Dropout, Embedding, LayerNormalization
from kerasbert.models.bert import HEAD_DTYPE
from kerasbert.models.roformer import RoFormer

# Weights that RoFormer v1 has and v2 dropped: every bias and every norm's gamma / beta.
_V1_ONLY_WEIGHTS = ("bias", "gamma", "beta")


class RoFormerV2(RoFormer):
    """Zhuiyi's RoFormer v2 (ZhuiyiTechnology/roformer-v2; bert4keras's ``RoFormerV2``).

    RoFormer v1's post-norm blocks and rotary attention, simplified: no dense layer has a
    bias, and every normalization divides by the root mean square without a learned scale
    or offset (bert4keras's ``LayerNormalization(zero_mean=False, scale=False,
    offset=False)``). The embeddings are the token and segment embeddings only, summed,
    dropped out, then normalized. The MLM head is the tied token embedding alone (no
    transform, no bias; ``Output-Mapping`` first when ``embedding_size != hidden_size``).
    There is no pooler and no NSP head. Norms use epsilon 1e-7 (Keras' default epsilon,
    which bert4keras's norm takes and Zhuiyi trained with), whatever ``layer_norm_eps`` the
    config gives: with no learned scale it shows at small activations.

    Args:
        **kwargs: the options of :class:`kerasbert.models.roformer.RoFormer`, except
            ``with_pool`` / ``with_nsp`` and ``layer_norm_cond`` (v2 has no pooler and no
            norm weights to condition).

    Example:

    >>> builder = RoFormerV2(vocab_size=20, hidden_size=8, num_hidden_layers=1,
    ...                      num_attention_heads=2, intermediate_size=16, with_mlm=True)
    >>> model = builder.build()
    >>> model.output.shape, sum(w.name == "bias" for w in model.weights)
    ((None, None, 20), 0)
    """

    default_name = "roformer_v2"
    dense_bias = False
    norm_epsilon = 1e-7

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.with_pool or self.with_nsp:
            raise ConfigError(
                "RoFormer v2 has no pooler and no NSP head: drop with_pool / with_nsp "
                "(pool the sequence output instead, e.g. its first token)."
            )
        if self.layer_norm_cond is not None:
            raise ConfigError(
                "RoFormer v2's norms have no gamma / beta to condition: layer_norm_cond "
                "needs model='roformer' or 'bert'."
            )

    def apply_embeddings(self, inputs):
        # No learned positions (rotary); dropout comes before the norm, as in bert4keras.
        x = self.apply_token_embeddings(inputs)
        x = self.apply_position_embedding(x)
        x = self.apply(x, Dropout, rate=self.dropout_rate, name="Embedding-Dropout")
        x = self.apply_norm(x, "Embedding-Norm")
        return self.apply_embedding_mapping(x)

    def apply_norm(self, x, name):
        return self.apply(
            x,
            LayerNormalization,
            epsilon=self.norm_epsilon,
            zero_mean=False,
            center=False,
            scale=False,
            name=name,
        )

    def apply_final_layers(self, inputs):
        if not self.with_mlm:
            return inputs
        x = inputs
        if self.uses_embedding_mapping():
            x = self.apply(
                x,
                Dense,
                units=self.embedding_size,
                use_bias=False,
                kernel_initializer=self.initializer,
                name="Output-Mapping",
            )
        x = self.apply(x, Dropout, rate=self.dropout_rate, name="Output-MLM-Dropout")
        x = self.apply(x, Embedding, arguments={"mode": "dense"}, name="Embedding-Token")
        return self.apply(
            x,
            keras.layers.Activation,
            activation="softmax" if self.with_mlm is True else self.with_mlm,
            dtype=HEAD_DTYPE,
            name="Output-MLM-Activation",
        )

    def variable_mapping(self):
        mapping = {}
        for layer, sources in super().variable_mapping().items():
            kept = {w: s for w, s in sources.items() if w.split("/")[-1] not in _V1_ONLY_WEIGHTS}
            if kept:
                mapping[layer] = kept
        # Not in bert4keras's mapping (no release has embedding_size != hidden_size):
        # kerasbert's own name, so that such a model still converts both ways.
        mapping["Output-Mapping"] = {"kernel": "cls/predictions/output_mapping/kernel"}
        return mapping
