"""Name translation tables: each format's variable names -> canonical Google TF names.

A table is an ordered list of ``(pattern, replacement, transposes)`` regex rules applied in
turn to a source name; afterwards the format's separator (``.`` for torch) becomes ``/``.
``transposes`` marks rules that turn a torch ``Linear`` weight ``(out, in)`` (or a Keras
kernel stored where TF keeps the transpose) into the canonical layout. A second list names
source variables that hold no model weight (buffers, tied copies) and are skipped.
"""

import re

# HF transformers' BERT names (BertModel / BertForPreTraining, torch and safetensors).
HF_BERT_RULES = [
    # Checkpoints saved from a bare BertModel have no "bert." prefix.
    (r"^(embeddings|encoder|pooler)\.", r"bert.\1.", False),
    (r"\.layer\.(\d+)\.", r".layer_\1.", False),
    (r"\.LayerNorm\.(weight|gamma)$", ".LayerNorm.gamma", False),
    (r"\.LayerNorm\.(bias|beta)$", ".LayerNorm.beta", False),
    (r"_embeddings\.weight$", "_embeddings", False),
    (r"^cls\.predictions\.bias$", "cls.predictions.output_bias", False),
    (r"^cls\.seq_relationship\.weight$", "cls.seq_relationship.output_weights", False),
    (r"^cls\.seq_relationship\.bias$", "cls.seq_relationship.output_bias", False),
    (r"\.weight$", ".kernel", True),
]
HF_BERT_SKIPPED = [
    r"position_ids$",
    # The MLM decoder is tied to the word embeddings; its bias duplicates cls.predictions.bias.
    r"^cls\.predictions\.decoder\.(weight|bias)$",
]

# HF transformers' TF BERT names in tf_model.h5, e.g.
# "bert/tf_bert_for_pre_training/bert/encoder/layer_._0/attention/self/query/kernel:0".
HF_TF_BERT_RULES = [
    (r":\d+$", "", False),
    (r"^(?:[^/]+/)*?tf_\w+?/", "", False),  # the h5 group and the Keras model's scope
    (r"^(mlm|nsp)___cls/", "cls/", False),
    (r"/layer_\._(\d+)/", r"/layer_\1/", False),
    (r"_embeddings/(weight|embeddings)$", "_embeddings", False),
    (r"^cls/predictions/bias$", "cls/predictions/output_bias", False),
    (r"^cls/seq_relationship/kernel$", "cls/seq_relationship/output_weights", True),
    (r"^cls/seq_relationship/bias$", "cls/seq_relationship/output_bias", False),
]


class NameTranslator:
    """Applies a rule table to source names.

    Args:
        rules: ordered ``(pattern, replacement, transposes)`` regex rules.
        skipped: patterns of source names that hold no model weight.
        separator: the format's name separator, turned into ``/`` at the end.

    Example:

    >>> hf_bert = NameTranslator(HF_BERT_RULES, HF_BERT_SKIPPED)
    >>> hf_bert("bert.encoder.layer.3.attention.self.query.weight")
    ('bert/encoder/layer_3/attention/self/query/kernel', True)
    >>> hf_bert("embeddings.LayerNorm.gamma")
    ('bert/embeddings/LayerNorm/gamma', False)
    >>> hf_bert("bert.embeddings.position_ids") is None
    True
    """

    def __init__(self, rules, skipped=(), separator="."):
        self.rules = [(re.compile(p), r, t) for p, r, t in rules]
        self.skipped = [re.compile(p) for p in skipped]
        self.separator = separator

    def __call__(self, name):
        if any(p.search(name) for p in self.skipped):
            return None
        transpose = False
        for pattern, replacement, transposes in self.rules:
            name, count = pattern.subn(replacement, name)
            transpose = transpose or (transposes and count > 0)
        return name.replace(self.separator, "/"), transpose


def identity(name):
    """Translation for files that already use Google names (TF checkpoints)."""
    return name, False


hf_bert = NameTranslator(HF_BERT_RULES, HF_BERT_SKIPPED)
hf_tf_bert = NameTranslator(HF_TF_BERT_RULES, separator="/")
