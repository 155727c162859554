"""ALBERT: factorized embeddings and transformer blocks shared across layers."""

import re

from kerasbert.errors import ConfigError
from kerasbert.models.bert import BERT, PLACEHOLDER_SIZES

# Checkpoint names inside one ALBERT block (google-research/albert), relative to
# bert/encoder/transformer/group_G/inner_group_J/.
ALBERT_BLOCK_NAMES = {
    "MultiHeadSelfAttention": {
        "query": "attention_1/self/query",
        "key": "attention_1/self/key",
        "value": "attention_1/self/value",
        "output": "attention_1/output/dense",
    },
    "MultiHeadSelfAttention-Norm": "LayerNorm",
    "FeedForward": {
        "intermediate": "ffn_1/intermediate/dense",
        "output": "ffn_1/intermediate/output/dense",
    },
    "FeedForward-Norm": "LayerNorm_1",
}


class ALBERT(BERT):
    """ALBERT as google-research/albert defines it.

    Embeddings of ``embedding_size`` are mapped to the hidden size by ``Embedding-Mapping``.
    The ``num_hidden_layers`` layers share the weights of ``num_hidden_groups`` groups:
    layer ``i`` uses group ``int(i / num_hidden_layers * num_hidden_groups)``, and every
    layer runs its group's ``inner_group_num`` blocks in turn. With one group and one inner
    block (the released models) the shared layers carry bert4keras's names without an
    index: ``Transformer-MultiHeadSelfAttention``, ``Transformer-FeedForward``, ...
    ``with_nsp`` is the sentence-order (SOP) head.

    Args:
        num_hidden_groups: number of weight groups (G).
        inner_group_num: blocks per group (J).
        **kwargs: the options of :class:`kerasbert.models.bert.BERT`.

    Example:

    >>> builder = ALBERT(vocab_size=20, embedding_size=4, hidden_size=8,
    ...                  num_hidden_layers=6, num_attention_heads=2, intermediate_size=16)
    >>> model = builder.build()
    >>> "Transformer-MultiHeadSelfAttention" in [layer.name for layer in model.layers]
    True
    """

    default_name = "albert"
    block_checkpoint_names = ALBERT_BLOCK_NAMES

    def __init__(self, num_hidden_groups=1, inner_group_num=1, **kwargs):
        super().__init__(**kwargs)
        if num_hidden_groups < 1 or inner_group_num < 1:
            raise ConfigError("num_hidden_groups and inner_group_num must be at least 1.")
        if num_hidden_groups > self.num_hidden_layers:
            raise ConfigError(
                f"num_hidden_groups ({num_hidden_groups}) exceeds num_hidden_layers "
                f"({self.num_hidden_layers})."
            )
        self.num_hidden_groups = num_hidden_groups
        self.inner_group_num = inner_group_num

    def uses_embedding_mapping(self):
        return True  # ALBERT always has embedding_hidden_mapping_in

    def group_of(self, index):
        return int(index / self.num_hidden_layers * self.num_hidden_groups)

    def apply_main_layers(self, inputs, index):
        x = inputs
        for inner in range(self.inner_group_num):
            x = self.apply_block(x, self.shared_block_name(self.group_of(index), inner, index))
        return x

    def block_prefixes(self):
        return [
            self.shared_block_name(self.group_of(i), j, i)
            for i in range(self.num_hidden_layers)
            for j in range(self.inner_group_num)
        ]

    @classmethod
    def from_layer_names(cls, layer_names):
        """A builder with the groups and inner blocks of a shared ALBERT, from its layer names.

        Example:

        >>> ALBERT.from_layer_names(["Transformer-Group1-Inner0-MultiHeadSelfAttention"]
        ...                         ).num_hidden_groups
        2
        """
        shared = re.compile(r"Transformer(?:-Group(\d+))?(?:-Inner(\d+))?-MultiHeadSelfAttention")
        found = [m for n in layer_names if (m := shared.fullmatch(n))]
        groups = 1 + max(int(m.group(1) or 0) for m in found)
        inner = 1 + max(int(m.group(2) or 0) for m in found)
        return cls(num_hidden_layers=groups, num_hidden_groups=groups, inner_group_num=inner,
                   **PLACEHOLDER_SIZES)  # fmt: skip

    def shared_block_name(self, group, inner, index):
        """Layer-name prefix of (group, inner block); ``index`` is the layer using it."""
        name = "Transformer"
        if self.num_hidden_groups > 1:
            name += f"-Group{group}"
        if self.inner_group_num > 1:
            name += f"-Inner{inner}"
        return name

    def block_checkpoint_pattern(self):
        block = rf"^{self.checkpoint_scope}/encoder/transformer/group_\d+/inner_group_\d+/"
        return block + r".*/(kernel|bias|gamma|beta)$"

    def block_checkpoint_prefixes(self):
        prefixes = {}
        for index in range(self.num_hidden_layers):
            group = self.group_of(index)
            for inner in range(self.inner_group_num):
                prefix = (f"{self.checkpoint_scope}/encoder/transformer/group_{group}/"
                          f"inner_group_{inner}/")  # fmt: skip
                prefixes[self.shared_block_name(group, inner, index)] = prefix
        return list(prefixes.items())


class ALBERTUnshared(ALBERT):
    """ALBERT with a separate copy of the block weights in every layer.

    Each layer's blocks start from its group's checkpoint weights and are then free to
    diverge in fine-tuning; layers are named ``Transformer-{i}`` (``Transformer-{i}-Inner{j}``
    with several inner blocks) like BERT's.

    Example:

    >>> builder = ALBERTUnshared(vocab_size=20, embedding_size=4, hidden_size=8,
    ...                          num_hidden_layers=2, num_attention_heads=2,
    ...                          intermediate_size=16)
    >>> "Transformer-1-FeedForward" in [layer.name for layer in builder.build().layers]
    True
    """

    default_name = "albert_unshared"

    def shared_block_name(self, group, inner, index):
        name = f"Transformer-{index}"
        if self.inner_group_num > 1:
            name += f"-Inner{inner}"
        return name
