"""T5 / mT5: a pre-RMS-norm encoder-decoder with bucketed relative position biases."""

import re

import keras
import numpy as np

from kerasbert.errors import ConfigError, ModelTypeError, WeightLoadingError
from kerasbert.layers import (
    Add,
    Dense,
    Dropout,
    Embedding,
    FeedForward,
    FirstPositionVisible,
    LayerNormalization,
    MultiHeadAttention,
    NonzeroMask,
    RelativePositionBias,
    ZerosWhereMasked,
)
from kerasbert.models.bert import HEAD_DTYPE
from kerasbert.models.transformer import Transformer

# Canonical (mesh-TensorFlow) names of one block's sublayers: (layer suffix, mesh-TF layer
# index, mesh-TF sublayer).
ENCODER_SUBLAYERS = (("MultiHeadSelfAttention", 0, "SelfAttention"), ("FeedForward", 1, ""))
DECODER_SUBLAYERS = (
    ("MultiHeadSelfAttention", 0, "SelfAttention"),
    ("MultiHeadCrossAttention", 1, "EncDecAttention"),
    ("FeedForward", 2, ""),
)
SHARED = "shared/embedding"
LOGITS = "decoder/logits/kernel"


class T5(Transformer):
    """Google's T5 (bert4keras's ``T5``; HF ``T5ForConditionalGeneration`` / mT5).

    ``build()`` makes three functional models over the same layers (bert4keras's API):

    - ``encoder``: ``Encoder-Input-Token`` ids -> encoder states ``(batch, length,
      hidden)``, zero at the padding (id 0);
    - ``decoder``: ``[Input-Context, Decoder-Input-Token]`` (encoder states, decoder ids
      starting with the start id 0) -> probabilities over the vocabulary (or logits with
      ``with_lm="linear"``, or the decoder states with ``with_lm=False``). The source's
      padding is read off the context (its all-zero rows) and masked in cross-attention;
    - ``model``: ``[Encoder-Input-Token, Decoder-Input-Token]`` -> the decoder's output,
      for training.

    Each block normalizes before its sublayer (RMS norm with a learned scale, no bias, no
    mean) and adds the sublayer's output to its input. Attention has no biases and no
    ``1/sqrt(d)`` scale; one learned relative-position bias per stack, from T5's distance
    buckets, is added in every block (the decoder's is causal). The feed-forward is
    ``relu`` (T5 1.0) or gated, ``gelu(x W_0) * x W_1`` (T5 1.1, mT5:
    ``hidden_act=["gelu_tanh", "linear"]``). The head is the shared embedding after a
    ``hidden_size**-0.5`` rescale (tied, T5 1.0) or a separate ``Decoder-Output-LM``
    kernel (T5 1.1, mT5).

    This follows the original mesh-TensorFlow T5 (and HF). bert4keras's T5 differs in two
    places, each one option away: its cross-attention adds the decoder's position bias
    too (``cross_position_bias=True``) and it rescales the decoder's output by
    ``hidden_size**-0.5`` for untied heads as well (``output_scale=True``): use both for
    models trained with bert4keras (T5 PEGASUS).

    Args:
        num_decoder_layers: decoder blocks (default: ``num_hidden_layers``).
        relative_attention_num_buckets: buckets of the position bias (32).
        relative_attention_max_distance: distance from which buckets are shared (128).
        tie_word_embeddings: the head is the shared embedding (T5 1.0) or a kernel of
            its own (T5 1.1, mT5); None: the model name's default.
        cross_position_bias: add the decoder's position bias in cross-attention
            (bert4keras's default; not in the original).
        output_scale: rescale the decoder's output by ``hidden_size**-0.5`` before the
            head: None = where the head is tied (the original); True (bert4keras) / False.
        with_lm: the head's activation: ``True`` = softmax (bert4keras's default), an
            activation name (``"linear"`` for logits), or False for the decoder states.
        **kwargs: the sizes and options of :class:`kerasbert.models.transformer.Transformer`
            (``attention_head_size`` is T5's ``d_kv``; ``layer_norm_eps`` 1e-6).

    Example:

    >>> t5 = T5(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
    ...         intermediate_size=16, hidden_act=["gelu_tanh", "linear"])
    >>> _ = t5.build()
    >>> [i.name for i in t5.decoder.inputs], t5.model.output.shape
    (['Input-Context', 'Decoder-Input-Token'], (None, None, 20))
    """

    default_name = "t5"
    default_tie_word_embeddings = False
    version = "t5.1.1"

    def __init__(
        self,
        num_decoder_layers=None,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        tie_word_embeddings=None,
        cross_position_bias=False,
        output_scale=None,
        with_lm=True,
        layer_norm_eps=1e-6,
        max_position=None,
        segment_vocab_size=0,
        **kwargs,
    ):
        for option in ("with_pool", "with_nsp", "with_mlm", "layer_norm_cond"):
            if kwargs.pop(option, None):
                raise ConfigError(
                    f"T5 has no {option} (it is an encoder-decoder whose head is the "
                    "decoder's language model: with_lm=)."
                )
        if kwargs.get("gradient_checkpointing"):
            raise ConfigError("gradient_checkpointing is not available for T5 models yet.")
        application = kwargs.pop("application", "encoder")
        if application != "encoder":
            raise ModelTypeError(
                f"T5 is an encoder-decoder: application={application!r} does not apply "
                "(its decoder is causal already); build it without application=."
            )
        super().__init__(layer_norm_eps=layer_norm_eps, **kwargs)
        if self.embedding_size != self.hidden_size:
            raise ConfigError("T5's embeddings are hidden_size wide; do not set embedding_size.")
        if tie_word_embeddings is None:
            tie_word_embeddings = self.default_tie_word_embeddings
        self.num_decoder_layers = num_decoder_layers or self.num_hidden_layers
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.tie_word_embeddings = bool(tie_word_embeddings)
        self.cross_position_bias = bool(cross_position_bias)
        self.output_scale = self.tie_word_embeddings if output_scale is None else output_scale
        self.with_lm = with_lm
        self.encoder = self.decoder = None

    # -- building ---------------------------------------------------------------------------
    def build(self):
        """Build ``encoder``, ``decoder`` and ``model`` (returned, also kept as ``.model``)."""
        shape = (self.sequence_length,)
        source = keras.Input(shape, dtype="int32", name=self.prefixed("Encoder-Input-Token"))
        context = keras.Input(
            (self.sequence_length, self.hidden_size), name=self.prefixed("Input-Context")
        )
        target = keras.Input(shape, dtype="int32", name=self.prefixed("Decoder-Input-Token"))
        states = self.apply_encoder(source)
        self.encoder = keras.Model(source, states, name=f"{self.name}_encoder")
        self.decoder = keras.Model(
            [context, target], self.apply_decoder(context, target), name=f"{self.name}_decoder"
        )
        self.model = keras.Model(
            [source, target], self.apply_decoder(states, target), name=self.name
        )
        self.inputs, self.outputs = list(self.model.inputs), list(self.model.outputs)
        self.input, self.output = self.inputs, self.outputs[0]
        return self.model

    def apply_norm(self, x, name):
        return self.apply(
            x,
            LayerNormalization,
            epsilon=self.layer_norm_eps,
            zero_mean=False,
            center=False,
            name=name,
        )

    def apply_attention(self, x, inputs, name):
        """Norm, attention over ``inputs`` (``[keys/values, bias]`` lists), dropout, add."""
        h = self.apply_norm(x, f"{name}-Norm")
        memory = h if inputs[0] is None else inputs[0]
        h = self.apply(
            [h, memory, memory] + inputs[1:],
            MultiHeadAttention,
            heads=self.num_attention_heads,
            head_size=self.attention_head_size,
            out_dim=self.hidden_size,
            use_bias=False,
            attention_scale=False,
            attention_dropout=self.attention_dropout_rate,
            kernel_initializer=self.initializer,
            name=name,
        )
        h = self.apply(h, Dropout, rate=self.dropout_rate, name=f"{name}-Dropout")
        return self.apply([x, h], Add, name=f"{name}-Add")

    def apply_feed_forward(self, x, name):
        h = self.apply_norm(x, f"{name}-Norm")
        h = self.apply(
            h,
            FeedForward,
            units=self.intermediate_size,
            activation=self.hidden_act,
            use_bias=False,
            kernel_initializer=self.initializer,
            name=name,
        )
        h = self.apply(h, Dropout, rate=self.dropout_rate, name=f"{name}-Dropout")
        return self.apply([x, h], Add, name=f"{name}-Add")

    def position_bias(self, stack, queries, keys, causal=False):
        return self.apply(
            [queries, keys],
            RelativePositionBias,
            arguments={"causal": causal},
            heads=self.num_attention_heads,
            num_buckets=self.relative_attention_num_buckets,
            max_distance=self.relative_attention_max_distance,
            bidirectional=stack == "Encoder",
            embeddings_initializer=self.initializer,
            name=f"{stack}-Embedding-Relative-Position",
        )

    def embed(self, token_ids, stack):
        x = self.apply(
            token_ids,
            Embedding,
            input_dim=self.vocab_size,
            output_dim=self.hidden_size,
            embeddings_initializer=self.initializer,
            mask_zero=True,
            name="Embedding-Token",
        )
        if stack == "Decoder":  # the start id is 0, the padding id: keep it visible
            x = self.apply(x, FirstPositionVisible, name="Decoder-Input-Mask")
        return self.apply(x, Dropout, rate=self.dropout_rate, name=f"{stack}-Embedding-Dropout")

    def apply_encoder(self, token_ids):
        x = self.embed(token_ids, "Encoder")
        bias = self.position_bias("Encoder", x, x)
        for index in range(self.num_hidden_layers):
            prefix = f"Encoder-Transformer-{index}"
            x = self.apply_attention(x, [None, bias], f"{prefix}-MultiHeadSelfAttention")
            x = self.apply_feed_forward(x, f"{prefix}-FeedForward")
        x = self.apply_norm(x, "Encoder-Output-Norm")
        x = self.apply(x, Dropout, rate=self.dropout_rate, name="Encoder-Output-Dropout")
        return self.apply(x, ZerosWhereMasked, name="Encoder-Output-Mask")

    def apply_decoder(self, context, token_ids):
        context = self.apply(context, NonzeroMask, name="Decoder-Context-Mask")
        x = self.embed(token_ids, "Decoder")
        self_bias = self.position_bias("Decoder", x, x, causal=True)
        cross = [context]
        if self.cross_position_bias:
            cross.append(self.position_bias("Decoder", x, context))
        for index in range(self.num_decoder_layers):
            prefix = f"Decoder-Transformer-{index}"
            x = self.apply_attention(x, [None, self_bias], f"{prefix}-MultiHeadSelfAttention")
            x = self.apply_attention(x, cross, f"{prefix}-MultiHeadCrossAttention")
            x = self.apply_feed_forward(x, f"{prefix}-FeedForward")
        return self.apply_head(x)

    def apply_head(self, x):
        x = self.apply_norm(x, "Decoder-Output-Norm")
        x = self.apply(x, Dropout, rate=self.dropout_rate, name="Decoder-Output-Dropout")
        if not self.with_lm:
            return x
        if self.output_scale:
            x = self.apply(
                x, keras.layers.Rescaling, scale=self.hidden_size**-0.5, name="Decoder-Output-Scale"
            )
        if self.tie_word_embeddings:
            x = self.apply(x, Embedding, arguments={"mode": "dense"}, name="Embedding-Token")
        else:
            x = self.apply(
                x,
                Dense,
                units=self.vocab_size,
                use_bias=False,
                kernel_initializer=self.initializer,
                name="Decoder-Output-LM",
            )
        return self.apply(
            x,
            keras.layers.Activation,
            activation="softmax" if self.with_lm is True else self.with_lm,
            dtype=HEAD_DTYPE,
            name="Decoder-Output-LM-Activation",
        )

    # -- checkpoint names ---------------------------------------------------------------------
    def variable_mapping(self):
        mapping = {
            "Embedding-Token": {"embeddings": (SHARED, "vocab")},
            "Encoder-Output-Norm": {"gamma": "encoder/final_layer_norm/scale"},
            "Decoder-Output-Norm": {"gamma": "decoder/final_layer_norm/scale"},
            "Decoder-Output-LM": {"kernel": (LOGITS, "vocab_columns")},
        }
        for stack in ("encoder", "decoder"):
            name = f"{stack}/block_000/layer_000/SelfAttention/relative_attention_bias"
            mapping[f"{stack.title()}-Embedding-Relative-Position"] = {"embeddings": (name, "T")}
        gated = isinstance(self.hidden_act, (list, tuple))
        for stack, sublayers, count in (
            ("encoder", ENCODER_SUBLAYERS, self.num_hidden_layers),
            ("decoder", DECODER_SUBLAYERS, self.num_decoder_layers),
        ):
            for index in range(count):
                layer_prefix = f"{stack.title()}-Transformer-{index}"
                for suffix, number, attention in sublayers:
                    scope = f"{stack}/block_{index:03d}/layer_{number:03d}/"
                    layer = f"{layer_prefix}-{suffix}"
                    mapping[f"{layer}-Norm"] = {"gamma": scope + "layer_norm/scale"}
                    if attention:
                        mapping[layer] = {
                            f"{part}/kernel": f"{scope}{attention}/{part[0]}"
                            for part in ("query", "key", "value", "output")
                        }
                    else:
                        inner = ["wi_0", "wi_1"] if gated else ["wi"]
                        mapping[layer] = {
                            "intermediate/kernel": f"{scope}DenseReluDense/{inner[0]}/kernel",
                            "output/kernel": f"{scope}DenseReluDense/wo/kernel",
                        }
                        if gated:
                            mapping[layer]["intermediate_1/kernel"] = (
                                f"{scope}DenseReluDense/wi_1/kernel"
                            )
        return mapping

    def block_prefixes(self):
        return [f"Encoder-Transformer-{i}" for i in range(self.num_hidden_layers)] + [
            f"Decoder-Transformer-{i}" for i in range(self.num_decoder_layers)
        ]

    def block_checkpoint_pattern(self):
        return r"^(encoder|decoder)/block_\d+/layer_\d+/.*/(q|k|v|o|kernel|scale)$"

    def load_weights_from_checkpoint(self, checkpoint, progress=False, fewer_blocks=False):
        from kerasbert.checkpoints import open_checkpoint

        checkpoint = open_checkpoint(checkpoint)
        if self.with_lm and checkpoint.names_are_canonical:
            self._check_head(checkpoint)
        return super().load_weights_from_checkpoint(checkpoint, progress, fewer_blocks)

    def _check_head(self, checkpoint):
        """A tied model from a checkpoint with an output kernel of its own (or the reverse)
        would load into another model without a word: say which model= fits."""
        if self.tie_word_embeddings and LOGITS in checkpoint:
            if SHARED in checkpoint and np.array_equal(
                checkpoint.read(LOGITS).T, checkpoint.read(SHARED)
            ):
                return  # a tied model saved with its head's copy of the embedding
            raise WeightLoadingError(
                f"Checkpoint {checkpoint.path!r} has an output kernel of its own ({LOGITS}): "
                "it is a T5 1.1 / mT5 model with an untied head, but this model ties its "
                "head to the embedding; pass model='t5.1.1' or 'mt5.1.1' (or "
                "tie_word_embeddings=False)."
            )
        if not self.tie_word_embeddings and LOGITS not in checkpoint:
            raise WeightLoadingError(
                f"Checkpoint {checkpoint.path!r} has no output kernel ({LOGITS}): it is a T5 "
                "1.0 model whose head is the shared embedding; pass model='t5.1.0' (or "
                "tie_word_embeddings=True)."
            )

    @classmethod
    def from_layer_names(cls, layer_names):
        """A builder with the structure of a T5 model this class built, from its layer
        names and ``"layer/weight"`` paths (:func:`kerasbert.families.model_layer_names`)."""

        def count(stack):
            pattern = re.compile(rf"{stack}-Transformer-(\d+)-MultiHeadSelfAttention")
            return max(int(m.group(1)) for n in layer_names if (m := pattern.fullmatch(n))) + 1

        # A gated feed-forward has three kernels (two inner projections and the output).
        gated = layer_names.count("Encoder-Transformer-0-FeedForward/kernel") == 3
        names = set(layer_names)
        return cls(
            vocab_size=8,
            hidden_size=8,
            num_hidden_layers=count("Encoder"),
            num_decoder_layers=count("Decoder"),
            num_attention_heads=1,
            intermediate_size=8,
            hidden_act=["gelu_tanh", "linear"] if gated else "relu",
            tie_word_embeddings="Decoder-Output-LM" not in names,
            with_lm="Decoder-Output-LM-Activation" in names,
        )


class T5_1_0(T5):  # noqa: N801 (bert4keras's version name)
    """T5 1.0 (``model="t5.1.0"``): the head tied to the shared embedding, ``relu``."""

    default_tie_word_embeddings = True
    version = "t5.1.0"


class MT5(T5):
    """mT5 (``model="mt5.1.1"``): T5 1.1's architecture, trained on 101 languages."""

    default_name = "mt5"
    version = "mt5.1.1"
