"""BERT (and every BERT-architecture checkpoint: RoBERTa-wwm, MiniLM, ...)."""

import re

import keras

from kerasbert.layers import (
    Add,
    BiasAdd,
    Dense,
    Dropout,
    Embedding,
    FeedForward,
    LayerNormalization,
    MultiHeadAttention,
    PositionEmbedding,
    TokenSlice,
)
from kerasbert.models.transformer import Transformer

# Output heads (NSP-Proba, MLM-Bias, MLM-Activation) compute in float32 whatever the global
# dtype policy: under mixed_float16 / mixed_bfloat16 their softmax and the probabilities or
# logits they return stay float32 (see docs/mixed_precision.md). Their variables are float32
# under every mixed policy anyway, so checkpoints load the same way.
HEAD_DTYPE = "float32"

# Sizes of a builder made only for its variable mapping (which names no size).
PLACEHOLDER_SIZES = {"vocab_size": 1, "hidden_size": 1, "num_attention_heads": 1,
                     "intermediate_size": 1}  # fmt: skip

# Checkpoint names inside one transformer block, relative to its prefix: Dense sublayers
# (attention projections, feed-forward) map sublayer -> name; LayerNorms map to one name.
BERT_BLOCK_NAMES = {
    "MultiHeadSelfAttention": {
        "query": "attention/self/query",
        "key": "attention/self/key",
        "value": "attention/self/value",
        "output": "attention/output/dense",
    },
    "MultiHeadSelfAttention-Norm": "attention/output/LayerNorm",
    "FeedForward": {"intermediate": "intermediate/dense", "output": "output/dense"},
    "FeedForward-Norm": "output/LayerNorm",
}


class BERT(Transformer):
    """Google's BERT, post-LayerNorm, with optional pooler / NSP / tied MLM heads.

    Args:
        max_position: number of learned positions.
        segment_vocab_size: number of segment (token type) ids; 0 drops the segment input.
        with_pool: add the pooler (``True`` = tanh, or an activation name).
        with_nsp: add the next-sentence head over the pooler (``True`` = softmax, or an
            activation name such as ``"linear"`` for logits); implies ``with_pool``.
        with_mlm: add the MLM head tied to the token embedding (``True`` = softmax, or an
            activation name such as ``"linear"`` for logits). ``application="lm"`` and
            ``"unilm"`` always have it (softmax unless an activation is named), as in
            bert4keras: a language model is trained on token probabilities.
        layer_norm_cond: a tensor (e.g. a ``keras.Input`` of shape ``(dim,)``) that
            conditions every layer normalization (bert4keras's conditional LayerNorm); its
            projections start at zero, so a loaded model starts as the unconditioned one.
        layer_norm_cond_hidden_size: size of an optional hidden projection of the condition.
        layer_norm_cond_hidden_act: its activation.
        additional_input_layers: extra ``keras.Input`` layers the model takes after the token
            and segment inputs (the inputs ``layer_norm_cond`` is computed from).
        **kwargs: the sizes and options of :class:`kerasbert.models.transformer.Transformer`.

    Outputs follow bert4keras: no head -> the sequence output; one head -> that head's
    output; several -> the list of head outputs. Under a mixed-precision policy the NSP and
    MLM heads compute and return float32 (docs/mixed_precision.md).

    Example:

    >>> builder = BERT(vocab_size=20, hidden_size=8, num_hidden_layers=1,
    ...                num_attention_heads=2, intermediate_size=16, with_pool=True)
    >>> builder.build().output.shape
    (None, 8)
    """

    default_name = "bert"
    # Positions are a learned table of max_position rows: inputs may not be longer.
    learned_positions = True
    dense_bias = True  # the encoder's projections have biases (RoFormer v2's have none)

    def __init__(
        self,
        max_position=512,
        segment_vocab_size=2,
        with_pool=False,
        with_nsp=False,
        with_mlm=False,
        layer_norm_cond=None,
        layer_norm_cond_hidden_size=None,
        layer_norm_cond_hidden_act=None,
        additional_input_layers=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if self.application in ("lm", "unilm") and not with_mlm:
            # A language model predicts tokens: as in bert4keras, it has the MLM head.
            with_mlm = True
        self.layer_norm_cond = layer_norm_cond
        self.layer_norm_cond_hidden_size = layer_norm_cond_hidden_size
        self.layer_norm_cond_hidden_act = layer_norm_cond_hidden_act
        if additional_input_layers is not None and not isinstance(
            additional_input_layers, (list, tuple)
        ):
            additional_input_layers = [additional_input_layers]
        self.additional_input_layers = list(additional_input_layers or [])
        self.max_position = max_position
        self.segment_vocab_size = segment_vocab_size
        self.with_pool = with_pool or bool(with_nsp)
        self.with_nsp = with_nsp
        self.with_mlm = with_mlm

    # -- architecture ------------------------------------------------------------------------
    def get_inputs(self):
        shape = (self.sequence_length,)
        inputs = [keras.Input(shape, dtype="int32", name=self.prefixed("Input-Token"))]
        if self.segment_vocab_size > 0:
            inputs.append(keras.Input(shape, dtype="int32", name=self.prefixed("Input-Segment")))
        return inputs + self.additional_input_layers

    def apply_embeddings(self, inputs):
        x = self.apply_token_embeddings(inputs)
        x = self.apply_position_embedding(x)
        x = self.apply_norm(x, "Embedding-Norm")
        x = self.apply(x, Dropout, rate=self.dropout_rate, name="Embedding-Dropout")
        return self.apply_embedding_mapping(x)

    def apply_token_embeddings(self, inputs):
        """``Embedding-Token`` of the token ids, plus ``Embedding-Segment`` of the segment
        ids when the model has segments (``Embedding-Token-Segment``)."""
        x = self.apply(
            inputs[0],
            Embedding,
            input_dim=self.vocab_size,
            output_dim=self.embedding_size,
            embeddings_initializer=self.initializer,
            mask_zero=True,
            name="Embedding-Token",
        )
        if self.segment_vocab_size > 0:
            s = self.apply(
                inputs[1],
                Embedding,
                input_dim=self.segment_vocab_size,
                output_dim=self.embedding_size,
                embeddings_initializer=self.initializer,
                name="Embedding-Segment",
            )
            x = self.apply([x, s], Add, name="Embedding-Token-Segment")
        return x

    def apply_embedding_mapping(self, x):
        """``Embedding-Mapping`` to the hidden size, when the embedding size differs."""
        if not self.uses_embedding_mapping():
            return x
        return self.apply(
            x,
            Dense,
            units=self.hidden_size,
            use_bias=self.dense_bias,
            kernel_initializer=self.initializer,
            name="Embedding-Mapping",
        )

    def uses_embedding_mapping(self):
        """BERT projects embeddings to the hidden size only when their sizes differ."""
        return self.embedding_size != self.hidden_size

    def apply_position_embedding(self, x):
        return self.apply(
            x,
            PositionEmbedding,
            input_dim=self.max_position,
            output_dim=self.embedding_size,
            merge_mode="add",
            embeddings_initializer=self.initializer,
            name="Embedding-Position",
        )

    def attention_layer(self):
        """The attention class and its options (NEZHA swaps in a relative one)."""
        return MultiHeadAttention, {}

    def apply_main_layers(self, inputs, index):
        return self.apply_block(inputs, self.block_name(index))

    def block_name(self, index):
        """Prefix of the layer names of transformer layer ``index``."""
        return f"Transformer-{index}"

    def block_prefixes(self):
        return [self.block_name(i) for i in range(self.num_hidden_layers)]

    @classmethod
    def from_layer_names(cls, layer_names):
        """A builder with the layer count of a model this class built, from its layer names.

        Example:

        >>> BERT.from_layer_names(["Transformer-0-MultiHeadSelfAttention",
        ...                        "Transformer-1-MultiHeadSelfAttention"]).num_hidden_layers
        2
        """
        layer = re.compile(r"Transformer-(\d+)(?:-Inner\d+)?-MultiHeadSelfAttention")
        indexes = [int(m.group(1)) for n in layer_names if (m := layer.fullmatch(n))]
        return cls(num_hidden_layers=max(indexes) + 1, **PLACEHOLDER_SIZES)

    def apply_block(self, inputs, prefix):
        """One post-LN transformer block: attention and feed-forward, each + residual + norm.

        Layers are named ``{prefix}-MultiHeadSelfAttention``, ``{prefix}-FeedForward`` and
        their ``-Dropout`` / ``-Add`` / ``-Norm``; a repeated prefix reuses (shares) them.
        """
        attention_name = f"{prefix}-MultiHeadSelfAttention"
        feed_forward_name = f"{prefix}-FeedForward"
        attention_class, attention_options = self.attention_layer()

        x = self.apply(
            [inputs, inputs, inputs] + self.attention_extra_inputs(),
            attention_class,
            heads=self.num_attention_heads,
            head_size=self.attention_head_size,
            out_dim=self.hidden_size,
            attention_dropout=self.attention_dropout_rate,
            use_bias=self.dense_bias,
            kernel_initializer=self.initializer,
            name=attention_name,
            **attention_options,
        )
        x = self.apply_residual_block(inputs, x, attention_name)
        y = self.apply(
            x,
            FeedForward,
            units=self.intermediate_size,
            activation=self.hidden_act,
            use_bias=self.dense_bias,
            kernel_initializer=self.initializer,
            name=feed_forward_name,
        )
        return self.apply_residual_block(x, y, feed_forward_name)

    def apply_norm(self, x, name):
        """A layer normalization, conditioned on ``layer_norm_cond`` when one is given."""
        if self.layer_norm_cond is None:
            return self.apply(x, LayerNormalization, epsilon=self.layer_norm_eps, name=name)
        return self.apply(
            [x, self.layer_norm_cond],
            LayerNormalization,
            epsilon=self.layer_norm_eps,
            conditional=True,
            hidden_units=self.layer_norm_cond_hidden_size,
            hidden_activation=self.layer_norm_cond_hidden_act or "linear",
            hidden_initializer=self.initializer,
            name=name,
        )

    def apply_residual_block(self, shortcut, x, name):
        x = self.apply(x, Dropout, rate=self.dropout_rate, name=f"{name}-Dropout")
        x = self.apply([shortcut, x], Add, name=f"{name}-Add")
        return self.apply_norm(x, f"{name}-Norm")

    def attention_extra_inputs(self):
        """Tensors appended to ``[q, k, v]``: the LM / UniLM bias (NEZHA adds positions)."""
        return [] if self.attention_bias is None else [self.attention_bias]

    def apply_final_layers(self, inputs):
        x = inputs
        outputs = [x]
        if self.with_pool:
            pooled = self.apply(x, TokenSlice, index=0, name="Pooler")
            pooled = self.apply(
                pooled,
                Dense,
                units=self.hidden_size,
                activation="tanh" if self.with_pool is True else self.with_pool,
                kernel_initializer=self.initializer,
                name="Pooler-Dense",
            )
            if self.with_nsp:
                pooled = self.apply(
                    pooled,
                    Dense,
                    units=2,
                    activation="softmax" if self.with_nsp is True else self.with_nsp,
                    kernel_initializer=self.initializer,
                    dtype=HEAD_DTYPE,
                    name="NSP-Proba",
                )
            outputs.append(pooled)
        if self.with_mlm:
            y = self.apply(
                x,
                Dense,
                units=self.embedding_size,
                activation=self.hidden_act_function(),
                kernel_initializer=self.initializer,
                name="MLM-Dense",
            )
            y = self.apply_norm(y, "MLM-Norm")
            y = self.apply(y, Embedding, arguments={"mode": "dense"}, name="Embedding-Token")
            # The tied projection returns the compute dtype (it is the head's big matmul);
            # the bias and the softmax over the vocabulary run in float32.
            y = self.apply(y, BiasAdd, dtype=HEAD_DTYPE, name="MLM-Bias")
            y = self.apply(
                y,
                keras.layers.Activation,
                activation="softmax" if self.with_mlm is True else self.with_mlm,
                dtype=HEAD_DTYPE,
                name="MLM-Activation",
            )
            outputs.append(y)
        if len(outputs) == 1:
            return outputs[0]
        if len(outputs) == 2:
            return outputs[1]
        return outputs[1:]

    def hidden_act_function(self):
        from kerasbert.ops import get_activation

        return get_activation(self.hidden_act)

    # -- checkpoint names --------------------------------------------------------------------
    # The first component of the encoder's canonical names: Google's "bert"; a family whose
    # original checkpoints scope the same layout otherwise (ELECTRA's "electra") sets its own.
    checkpoint_scope = "bert"
    # The component after the scope that holds the blocks (GPT's converted names: "transformer").
    block_scope = "encoder"
    block_checkpoint_names = BERT_BLOCK_NAMES

    def variable_mapping(self):
        scope = self.checkpoint_scope
        mapping = {
            "Embedding-Token": {"embeddings": (f"{scope}/embeddings/word_embeddings", "vocab")},
            "Embedding-Segment": {"embeddings": f"{scope}/embeddings/token_type_embeddings"},
            "Embedding-Position": {"embeddings": f"{scope}/embeddings/position_embeddings"},
            "Embedding-Norm": layer_norm(f"{scope}/embeddings/LayerNorm"),
            "Embedding-Mapping": dense(f"{scope}/encoder/embedding_hidden_mapping_in"),
            "Pooler-Dense": dense(f"{scope}/pooler/dense"),
            "NSP-Proba": {
                "kernel": ("cls/seq_relationship/output_weights", "T"),
                "bias": "cls/seq_relationship/output_bias",
            },
            "MLM-Dense": dense("cls/predictions/transform/dense"),
            "MLM-Norm": layer_norm("cls/predictions/transform/LayerNorm"),
            "MLM-Bias": {"bias": ("cls/predictions/output_bias", "vocab")},
        }
        mapping.update(self.block_mappings())
        return mapping

    def block_mappings(self):
        """The mapping entries of every transformer block."""
        mapping = {}
        for layer_prefix, checkpoint_prefix in self.block_checkpoint_prefixes():
            mapping.update(
                block_mapping(layer_prefix, checkpoint_prefix, self.block_checkpoint_names)
            )
        return mapping

    def block_checkpoint_pattern(self):
        # Weights only (kernel, bias, gamma, beta): optimizer slots (.../adam_m) are no block.
        scope = f"{self.checkpoint_scope}/{self.block_scope}"
        return rf"^{scope}/layer_\d+/.*/(kernel|bias|gamma|beta)$"

    def block_checkpoint_prefixes(self):
        """``(layer name prefix, checkpoint name prefix)`` of every transformer block."""
        return [
            (self.block_name(i), f"{self.checkpoint_scope}/{self.block_scope}/layer_{i}/")
            for i in range(self.num_hidden_layers)
        ]


def block_mapping(layer_prefix, checkpoint_prefix, table):
    """The mapping entries of one transformer block from a block-names table."""
    mapping = {}
    for block, names in table.items():
        if isinstance(names, dict):
            entries = {}
            for sublayer, name in names.items():
                entries.update(dense(checkpoint_prefix + name, sublayer))
        else:
            entries = layer_norm(checkpoint_prefix + names)
        mapping[f"{layer_prefix}-{block}"] = entries
    return mapping


def dense(name, sublayer=None):
    """Mapping entries of a Dense layer's kernel and bias (inside ``sublayer`` if given)."""
    at = f"{sublayer}/" if sublayer else ""
    return {f"{at}kernel": f"{name}/kernel", f"{at}bias": f"{name}/bias"}


def layer_norm(name):
    """Mapping entries of a LayerNormalization's gamma and beta."""
    return {"gamma": f"{name}/gamma", "beta": f"{name}/beta"}
