"""The family record: everything kerasbert knows about one model family, as data.

A :class:`Family` says which builder classes build the family (and under which ``model=``
names, bert4keras's included), how to recognise it (from canonical checkpoint names, from
config keys, from a built model's layer names), how each checkpoint format names its
variables (one two-way :class:`kerasbert.families.naming.NameTable` per format), which
heads show in a checkpoint, and what a conversion writes. Readers, writers, detection,
conversion and the index read these records; no other module names a family.
"""

import importlib
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Detection:
    """A test on a set of names: each ``requires`` regex matches some name, no ``excludes``
    regex matches any.

    Example:

    >>> d = Detection(requires=[r"^bert/encoder/layer_\\d+/"], excludes=[r"position"])
    >>> d.matches(["bert/encoder/layer_0/x"]), d.matches(["bert/encoder/layer_0/position"])
    (True, False)
    """

    requires: tuple = ()
    excludes: tuple = ()

    def matches(self, names):
        names = list(names)
        if not self.requires:
            return False
        if not all(any(re.search(p, n) for n in names) for p in self.requires):
            return False
        return not any(re.search(p, n) for p in self.excludes for n in names)


@dataclass(frozen=True)
class ModelEntry:
    """One ``model=`` name and the builder class behind it.

    Attributes:
        name: the name ``build_transformer_model(model=...)`` takes (``"albert_unshared"``).
        builder: ``"module:Class"`` of the builder, imported on first use (so that the
            registry imports no model code).
        canonical: whether its weights fit the family's canonical checkpoint names (an
            unshared ALBERT's per-layer copies do not: it converts to Keras files only).
        aliases: other names of the builder class (bert4keras's ``ALBERT_Unshared``),
            importable from :mod:`kerasbert.models` like the class's own name.
    """

    name: str
    builder: str
    canonical: bool = True
    aliases: tuple = ()

    def builder_class(self):
        module, _, name = self.builder.partition(":")
        return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: the family's name (``"bert"``), as in the index's ``family`` field.
        title: its name as written in prose (``"BERT"``).
        models: the :class:`ModelEntry` objects; the first is the family's default.
        description: one line for messages and ``docs/``.
        checkpoint_names: recognises the family from canonical variable names.
        layer_names: recognises a model kerasbert built from its layer names.
        config_markers: config keys whose presence (with a true value) marks the family.
        config_signatures: config keys whose presence, whatever their value, marks the
            family (RoFormer's ``rotary_value``, false in every released checkpoint).
        model_types: HF ``model_type`` values of the family; the first is written.
        hf_prefix: the module prefix of HF names (``"bert."``).
        hf_class: the HF class-name stem (``"Bert"`` -> ``BertForPreTraining``).
        hf_classes: ``{model_type: class-name stem}`` for the ``model_types`` whose HF
            classes have another stem (mT5's ``"mt5"``: ``MT5ForConditionalGeneration``).
        names: format -> :class:`~kerasbert.families.naming.NameTable` for formats whose
            names differ from the canonical ones (``"hf"`` for torch / safetensors,
            ``"hf_tf"`` for ``tf_model.h5``); a format not listed stores canonical names.
        heads: builder option -> canonical names whose presence shows that head.
        hf_architectures: ``(heads, class suffix)`` pairs; the first whose heads a model
            has names the HF class written into ``config.json``.
        config_names: ``{kerasbert's (BERT's) config key: (the family's own key, other
            spellings read)}`` for families whose configs name the sizes otherwise (GPT-2's
            ``n_embd``, OpenAI's ``hparams.json`` ``n_vocab``): a config the family claims
            (:func:`kerasbert.families.detect_from_config`) is read with its own keys where
            BERT's are absent, and an HF-style config written for it uses the first spelling.
        config_defaults: values a config the family claims gets for absent keys (after
            ``config_names``; a callable is called with the config): GPT-2's ``1e-5``
            epsilon, ``intermediate_size = 4 * hidden_size``.
        config_keys: family-specific config keys, written on conversion with the builder's
            value (``max_relative_position``).
        config_constants: keys written with a fixed value (``use_relative_position``).
        tf_files: ``(checkpoint prefix, config file)`` a TF conversion writes.
        google_gelu: what ``"gelu"`` means in a config without ``model_type`` (the original
            code's activation): ``"gelu_tanh"`` for Google's TF code, ``"gelu_erf"`` for
            families trained with bert4keras, whose ``gelu`` is the erf form.
        hf_activation: for a family whose HF configs name the activation otherwise, a
            function from kerasbert's ``hidden_act`` to those config entries (T5's
            ``{"feed_forward_proj": "gated-gelu"}``); None: HF's ``hidden_act``.
        vocab_variable: the canonical name whose rows are the vocabulary.
        sentencepiece: the :class:`kerasbert.tokenizers.SpTokenizer` preset
            (``SpTokenizer.for_<name>``) of the family's SentencePiece vocabularies
            (``*.model``); empty for a family whose releases ship WordPiece only.
        index_fields: index-entry fields this family requires beyond the common ones.
        tiny_config: config values that, over a tiny BERT-sized config, exercise what is
            particular to the family (for the round trip over every family and format in
            the tests, and ``--tiny`` smoke runs).
    """

    name: str
    title: str
    models: tuple
    description: str
    checkpoint_names: Detection
    layer_names: Detection
    config_markers: tuple = ()
    config_signatures: tuple = ()
    model_types: tuple = ()
    hf_prefix: str = ""
    hf_class: str = ""
    hf_classes: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)
    heads: dict = field(default_factory=dict)
    hf_architectures: tuple = ()
    config_names: dict = field(default_factory=dict)
    config_defaults: dict = field(default_factory=dict)
    config_keys: tuple = ()
    config_constants: dict = field(default_factory=dict)
    tf_files: tuple = ("bert_model.ckpt", "bert_config.json")
    google_gelu: str = "gelu_tanh"
    hf_activation: object = None
    vocab_variable: str = ""
    sentencepiece: str = ""
    index_fields: tuple = ()
    tiny_config: dict = field(default_factory=dict)

    def model(self, name=None):
        """The :class:`ModelEntry` called ``name`` (the default one when None)."""
        if name is None:
            return self.models[0]
        for entry in self.models:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def heads_in(self, names):
        """The head options that keep every head present among canonical ``names``."""
        names = set(names)
        return {option: bool(set(sources) & names) for option, sources in self.heads.items()}

    def hf_architecture(self, names, model_type=None):
        """The HF class for a checkpoint with these canonical names (``BertForMaskedLM``),
        written under ``model_type`` (default: the family's first)."""
        stem = self.hf_classes.get(model_type, self.hf_class)
        present = {option for option, shown in self.heads_in(names).items() if shown}
        for heads, suffix in self.hf_architectures:
            if set(heads) <= present:
                return stem + suffix
        return stem + "Model"
