"""NEZHA: BERT with functional relative positions instead of learned absolute ones."""

from kerasbert.layers import RelativeMultiHeadAttention, RelativePositionEmbedding
from kerasbert.models.bert import BERT


class NEZHA(BERT):
    """Huawei's NEZHA (huawei-noah/Pretrained-Language-Model).

    No absolute position embedding. Every attention layer adds ``q_i · r_ij`` to its logits
    and ``Σ_j p_ij r_ij`` to its output, where ``r_ij`` is row ``clip(j - i, -K, K) + K`` of a
    fixed sinusoidal table (``Embedding-Relative-Position``): shared by all layers and
    heads, not trainable, never read from a checkpoint.

    Args:
        max_relative_position: K; from the config's ``max_relative_position``, default 64.
        **kwargs: the options of :class:`kerasbert.models.bert.BERT`.

    Example:

    >>> builder = NEZHA(vocab_size=20, hidden_size=8, num_hidden_layers=1,
    ...                 num_attention_heads=2, intermediate_size=16)
    >>> "Embedding-Position" in [layer.name for layer in builder.build().layers]
    False
    """

    default_name = "nezha"
    learned_positions = False  # relative positions: no length limit from a table

    def __init__(self, max_relative_position=64, **kwargs):
        super().__init__(**kwargs)
        self.max_relative_position = max_relative_position
        self.relative_positions = None

    def apply_position_embedding(self, x):
        self.relative_positions = self.apply(
            [x, x],
            RelativePositionEmbedding,
            max_relative_position=self.max_relative_position,
            depth=self.attention_head_size,
            pairwise=False,
            name="Embedding-Relative-Position",
        )
        return x

    def attention_layer(self):
        return RelativeMultiHeadAttention, {}

    def attention_extra_inputs(self):
        return super().attention_extra_inputs() + [self.relative_positions]
