"""RoFormer: BERT with rotary position embeddings instead of learned absolute ones."""

from kerasbert.errors import ConfigError
from kerasbert.layers import RotaryMultiHeadAttention, SinusoidalPositionEmbedding
from kerasbert.models.bert import BERT


class RoFormer(BERT):
    """Zhuiyi's RoFormer v1 (ZhuiyiTechnology/roformer; bert4keras's ``RoFormer``).

    BERT's layout and checkpoint names without ``position_embeddings``: every attention
    layer rotates its queries and keys by their absolute positions (RoPE), so attention
    logits depend on relative positions only. The angles are one fixed sinusoid of the
    attention head size (``Embedding-Rotary-Position``, base 10000, shared by all layers
    and heads): nothing to train, nothing read from a checkpoint, and no length limit from
    a table (``max_position`` only sets :class:`kerasbert.models.IncrementalModel`'s
    default cache length). RoFormer-Sim is this model with ``with_pool="linear"``.

    Args:
        rotary_value: rotate the values too (HF transformers' ``rotary_value``; from the
            config, default False as in every released RoFormer v1).
        **kwargs: the options of :class:`kerasbert.models.bert.BERT` (an ``embedding_size``
            other than ``hidden_size`` adds bert4keras's ``Embedding-Mapping``).

    Example:

    >>> builder = RoFormer(vocab_size=20, hidden_size=8, num_hidden_layers=1,
    ...                    num_attention_heads=2, intermediate_size=16)
    >>> names = [layer.name for layer in builder.build().layers]
    >>> "Embedding-Rotary-Position" in names, "Embedding-Position" in names
    (True, False)
    """

    default_name = "roformer"
    learned_positions = False  # rotary positions: no length limit from a table

    def __init__(self, rotary_value=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rotary_value, bool):
            raise ConfigError(f"rotary_value must be true or false, got {rotary_value!r}.")
        self.rotary_value = rotary_value
        self.rotary_positions = None

    def apply_position_embedding(self, x):
        # No absolute positions: the sinusoids every attention layer rotates by.
        if self.attention_head_size % 2:
            raise ConfigError(
                "Rotary position embeddings rotate pairs of channels: the attention head "
                f"size must be even, got {self.attention_head_size}."
            )
        self.rotary_positions = self.apply(
            x,
            SinusoidalPositionEmbedding,
            output_dim=self.attention_head_size,
            merge_mode="zero",
            name="Embedding-Rotary-Position",
        )
        return x

    def attention_layer(self):
        return RotaryMultiHeadAttention, {"rotary_value": self.rotary_value}

    def attention_extra_inputs(self):
        return super().attention_extra_inputs() + [self.rotary_positions]
