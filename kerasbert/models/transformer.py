"""The model-builder base class shared by every family (bert4keras's ``Transformer``).

A builder turns a normalized config into a functional ``keras.Model``: ``get_inputs`` ->
``apply_embeddings`` -> ``apply_main_layers`` (once per layer) -> ``apply_final_layers``.
Layers are created through :meth:`Transformer.apply`, which reuses a layer when its name
was seen before; ALBERT's sharing is nothing more than repeating names.
Each family also provides :meth:`variable_mapping`, its table from layer variables to
canonical checkpoint names.
"""

import difflib
import inspect

import keras

from kerasbert.checkpoints import open_checkpoint
from kerasbert.errors import ConfigError, ModelTypeError
from kerasbert.layers import CausalAttentionBias, UniLMAttentionBias
from kerasbert.models.remat import RematModel, check_gradient_checkpointing

APPLICATIONS = ("encoder", "lm", "unilm")


class Transformer:
    """Base of the model builders; subclasses define the architecture and mapping.

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
        intermediate_size: the usual BERT sizes.
        hidden_act: activation of the feed-forward block (``"gelu_erf"``, ``"gelu_tanh"``).
        embedding_size: embedding width (ALBERT factorizes it); defaults to hidden_size.
        attention_head_size: size of each head; defaults to hidden_size / heads.
        dropout_rate: dropout on embeddings and sublayer outputs.
        attention_dropout_rate: dropout on attention probabilities.
        layer_norm_eps: epsilon of every layer normalization.
        initializer_range: stddev of the truncated-normal kernel initializer.
        sequence_length: fixed input length, or None for any length.
        keep_tokens: token ids kept from the checkpoint's vocabulary (shrinks it).
        compound_tokens: extra tokens whose embeddings average existing ones.
        ignore_invalid_weights: load what fits and warn about the rest.
        allow_non_finite: load NaN / inf weights (by default a checkpoint holding any is an
            error: it is corrupt, or saved from a diverged run).
        application: ``"encoder"`` (bidirectional), ``"lm"`` (causal attention) or
            ``"unilm"`` (UniLM's seq2seq mask from the segment ids).
        gradient_checkpointing: recompute each transformer block's activations in the
            backward pass instead of keeping them (JAX backend): training memory drops to
            about one tensor per block, for about one extra forward pass of compute. The
            model is then a :class:`kerasbert.models.remat.RematModel`, with the same layers,
            weights and outputs.
        prefix: a string put before every layer name (inputs included), so that two models
            of the same family can live in one Keras model (bert4keras's ``prefix``, e.g.
            ``"Successor-"`` in BERT-of-Theseus); checkpoints load as without it.
        name: name of the keras.Model.

    After :meth:`build`, the builder has bert4keras's ``inputs`` / ``input`` and
    ``outputs`` / ``output`` (the model's tensors: lists, or the single one), ``model`` and
    ``layers`` (every layer it created, by name).

    Example:

    >>> from kerasbert.models.bert import BERT
    >>> builder = BERT(vocab_size=20, hidden_size=8, num_hidden_layers=1,
    ...                num_attention_heads=2, intermediate_size=16)
    >>> builder.build().name
    'bert'
    """

    default_name = "transformer"

    def __init__(
        self,
        vocab_size,
        hidden_size,
        num_hidden_layers,
        num_attention_heads,
        intermediate_size,
        hidden_act="gelu_erf",
        embedding_size=None,
        attention_head_size=None,
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        layer_norm_eps=1e-12,
        initializer_range=0.02,
        sequence_length=None,
        keep_tokens=None,
        compound_tokens=None,
        ignore_invalid_weights=False,
        allow_non_finite=False,
        application="encoder",
        gradient_checkpointing=False,
        prefix=None,
        name=None,
    ):
        if keep_tokens is not None:
            vocab_size = len(keep_tokens)
        if compound_tokens is not None:
            vocab_size += len(compound_tokens)
        if attention_head_size is None:
            if hidden_size % num_attention_heads:
                raise ConfigError(
                    f"hidden_size {hidden_size} is not divisible by num_attention_heads "
                    f"{num_attention_heads}; fix the config or pass attention_head_size."
                )
            attention_head_size = hidden_size // num_attention_heads
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.attention_head_size = attention_head_size
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.embedding_size = embedding_size or hidden_size
        self.dropout_rate = dropout_rate or 0.0
        self.attention_dropout_rate = attention_dropout_rate or 0.0
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.sequence_length = sequence_length
        self.keep_tokens = keep_tokens
        self.compound_tokens = compound_tokens
        self.ignore_invalid_weights = ignore_invalid_weights
        self.allow_non_finite = allow_non_finite
        if application not in APPLICATIONS:
            raise ModelTypeError(
                f"Unknown application {application!r}; available: {list(APPLICATIONS)}."
            )
        self.application = application
        self.gradient_checkpointing = check_gradient_checkpointing(gradient_checkpointing)
        self.attention_bias = None
        if prefix is not None and not isinstance(prefix, str):
            raise ConfigError(f"prefix must be a string, got {prefix!r}.")
        self.prefix = prefix or ""
        self.name = name or self.default_name
        self.layers = {}
        self.model = None
        self.inputs = self.input = self.outputs = self.output = None
        self.load_report = None

    # -- building ------------------------------------------------------------------------
    @property
    def initializer(self):
        return keras.initializers.TruncatedNormal(stddev=self.initializer_range)

    def apply(self, inputs, layer=None, arguments=None, **kwargs):
        """Call the layer named ``kwargs['name']`` on ``inputs``, creating it on first use.

        Args:
            inputs: a tensor or list of tensors.
            layer: the layer class (needed on first use).
            arguments: extra keyword arguments of the layer's ``call``.
            **kwargs: the layer's constructor arguments, including ``name``.
        """
        name = kwargs["name"] = self.prefixed(kwargs["name"])
        if name not in self.layers:
            self.layers[name] = layer(**kwargs)
        return self.layers[name](inputs, **(arguments or {}))

    def prefixed(self, name):
        """``name`` with the builder's :attr:`prefix` in front (as the model's layers are
        named)."""
        return self.prefix + name

    def layer(self, name):
        """The layer this builder created under ``name`` (given without the prefix), or None."""
        return self.layers.get(self.prefixed(name))

    def build(self):
        """Build and return the functional ``keras.Model`` (also kept as ``.model``)."""
        inputs = self.get_inputs()
        self.attention_bias = self.compute_attention_bias(inputs)
        outputs = self.apply_embeddings(inputs)
        # Each block's output, for what reads inner layers (bert-as-service's
        # pooling_layer, kerasbert.serving): HF's hidden_states[1:].
        self.block_outputs = []
        for index in range(self.num_hidden_layers):
            outputs = self.apply_main_layers(outputs, index)
            self.block_outputs.append(outputs)
        outputs = self.apply_final_layers(outputs)
        model_class = RematModel if self.gradient_checkpointing else keras.Model
        self.model = model_class(inputs, outputs, name=self.name)
        self.inputs, self.outputs = list(self.model.inputs), list(self.model.outputs)
        self.input = self.inputs if len(self.inputs) > 1 else self.inputs[0]
        self.output = self.outputs if len(self.outputs) > 1 else self.outputs[0]
        return self.model

    def get_inputs(self):
        raise NotImplementedError

    def compute_attention_bias(self, inputs):
        """The additive attention bias of the application (None for the encoder)."""
        if self.application == "lm":
            return self.apply(inputs[0], CausalAttentionBias, name="Attention-LM-Mask")
        if self.application == "unilm":
            if getattr(self, "segment_vocab_size", 0) <= 0:
                raise ConfigError(
                    "application='unilm' reads the source/target split from the segment "
                    "ids; do not set segment_vocab_size=0."
                )
            return self.apply(inputs[1], UniLMAttentionBias, name="Attention-UniLM-Mask")
        return None

    def apply_embeddings(self, inputs):
        raise NotImplementedError

    def apply_main_layers(self, inputs, index):
        raise NotImplementedError

    def apply_final_layers(self, inputs):
        raise NotImplementedError

    # -- weights ----------------------------------------------------------------------------
    def variable_mapping(self):
        """``{layer name: {variable path in layer: checkpoint source}}``."""
        raise NotImplementedError

    # Regexes of the paths of variables that no checkpoint holds, which keep their initial
    # values: the projections of a conditional layer normalization start at zero by design.
    variables_without_checkpoint = (r"-Norm/(hidden|gamma|beta)_dense/",)
    # Builder options that say which part of a checkpoint to read, not what the model is
    # (ELECTRA's body=): not recorded beside converted files, whose checkpoint is that part.
    checkpoint_options = ()

    @classmethod
    def checkpoint_view(cls, checkpoint, options):
        """The variables of ``checkpoint`` that this builder reads, under the canonical names
        of one model: the checkpoint itself, unless a file holds several models (ELECTRA's
        joint pre-training checkpoints); :func:`kerasbert.convert.convert` reads the heads
        off it.

        Args:
            checkpoint: an open :class:`kerasbert.checkpoints.Checkpoint`.
            options: the builder options (``body=``, ...).
        """
        return checkpoint

    def load_weights_from_checkpoint(self, checkpoint, progress=False, fewer_blocks=False):
        """Load a checkpoint (path or :class:`Checkpoint`) into ``self.model``.

        A checkpoint with more transformer blocks than the model is an error (the config
        does not describe it) unless ``fewer_blocks`` (``build_transformer_model`` sets it
        when ``num_hidden_layers`` / groups were passed explicitly: a deliberate truncation,
        as in BERT-of-Theseus) or ``ignore_invalid_weights``.

        Args:
            checkpoint: a path or an open :class:`kerasbert.checkpoints.Checkpoint`.
            progress: draw a bar over the variables (``True``, ``"auto"`` or ``False``).
            fewer_blocks: load the model's blocks from a deeper checkpoint.

        Returns the :class:`kerasbert.checkpoints.LoadReport` (also kept as
        ``.load_report``).
        """
        mapping = {self.prefixed(name): v for name, v in self.variable_mapping().items()}
        options = {name: getattr(self, name) for name in self.checkpoint_options}
        checkpoint = self.checkpoint_view(open_checkpoint(checkpoint), options)
        self.load_report = checkpoint.load_into(
            self.model,
            mapping,
            ignore_invalid_weights=self.ignore_invalid_weights,
            keep_tokens=self.keep_tokens,
            compound_tokens=self.compound_tokens,
            keep_initial=self.variables_without_checkpoint,
            model_layers=list(self.layers),
            progress=progress,
            unused_not_allowed=() if fewer_blocks else (self.block_checkpoint_pattern(),),
            allow_non_finite=self.allow_non_finite,
        )
        return self.load_report

    def save_weights_as_checkpoint(self, filename, mapping=None, dtype=None):
        """Write the model's weights as a TF checkpoint under the canonical names
        (bert4keras's method; :func:`kerasbert.models.save_tf_checkpoint` for any model).

        Args:
            filename: the checkpoint prefix, e.g. ``out/bert_model.ckpt``.
            mapping: a variable mapping to use instead of the builder's.
            dtype: cast every array to this dtype (e.g. ``"float16"``) first.
        """
        from kerasbert.checkpoints import write_tf_checkpoint
        from kerasbert.models.export import model_arrays

        mapping = mapping or {self.prefixed(k): v for k, v in self.variable_mapping().items()}
        arrays = model_arrays(self.model, mapping)
        if dtype is not None:
            arrays = {name: value.astype(dtype) for name, value in arrays.items()}
        write_tf_checkpoint(filename, arrays)

    def block_prefixes(self):
        """Layer-name prefixes of the transformer blocks, in the order the model runs them."""
        raise NotImplementedError

    def block_checkpoint_pattern(self):
        """A regex matching the canonical names of any transformer block's weights (of any
        index, optimizer slots excluded): those the model leaves unused belong to blocks it
        lacks."""
        raise NotImplementedError

    @classmethod
    def from_layer_names(cls, layer_names):
        """A builder with the block structure of a model built by this class, from its layer
        names (sizes are placeholders): enough for :meth:`variable_mapping`."""
        raise NotImplementedError


def accepted_arguments(cls):
    """Names of the constructor arguments of a builder class and its bases."""
    accepted = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            accepted.update(inspect.signature(klass.__init__).parameters)
    accepted.discard("self")
    accepted.discard("kwargs")
    return accepted


def check_options(cls, options):
    """Raise a ConfigError naming options ``cls`` does not take (with a suggestion)."""
    accepted = accepted_arguments(cls)
    unknown = sorted(set(options) - accepted)
    if unknown:
        hints = []
        for option in unknown:
            close = difflib.get_close_matches(option, accepted, n=1)
            hints.append(f"{option!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"Unknown option(s) for {cls.__name__}: {', '.join(hints)}.")
