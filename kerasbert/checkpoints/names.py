"""Name translation tables: each format's variable names -> canonical Google TF names.

A table is an ordered list of ``(pattern, replacement, transposes)`` regex rules applied in
turn to a source name; afterwards the format's separator (``.`` for torch) becomes ``/``.
``transposes`` marks rules that turn a torch ``Linear`` weight ``(out, in)`` (or a Keras
kernel stored where TF keeps the transpose) into the canonical layout. A second list names
source variables that hold no model weight (buffers, tied copies) and are skipped.
"""

import re

# HF transformers' names for BERT (BertModel / BertForPreTraining), NEZHA (same layout
# under "nezha.") and ALBERT (AlbertModel / AlbertForPreTraining), torch and safetensors.
HF_RULES = [
    # Checkpoints saved from a bare BertModel / AlbertModel have no prefix.
    (r"^(embeddings|encoder|pooler)\.", r"bert.\1.", False),
    (r"^(nezha|albert)\.", "bert.", False),
    # ALBERT's shared blocks and heads (google-research/albert names).
    (
        r"\.albert_layer_groups\.(\d+)\.albert_layers\.(\d+)\.",
        r".transformer.group_\1.inner_group_\2.",
        False,
    ),
    (r"\.attention\.(query|key|value)\.", r".attention_1.self.\1.", False),
    (r"\.attention\.dense\.", ".attention_1.output.dense.", False),
    (r"\.attention\.LayerNorm\.", ".LayerNorm.", False),
    (r"\.ffn\.", ".ffn_1.intermediate.dense.", False),
    (r"\.ffn_output\.", ".ffn_1.intermediate.output.dense.", False),
    (r"\.full_layer_layer_norm\.", ".LayerNorm_1.", False),
    (r"^bert\.pooler\.(weight|bias)$", r"bert.pooler.dense.\1", False),
    (r"^predictions\.bias$", "cls.predictions.output_bias", False),
    (r"^predictions\.(dense|LayerNorm)\.", r"cls.predictions.transform.\1.", False),
    (r"^sop_classifier\.classifier\.", "cls.seq_relationship.", False),
    # BERT.
    (r"\.layer\.(\d+)\.", r".layer_\1.", False),
    (r"\.LayerNorm\.(weight|gamma)$", ".LayerNorm.gamma", False),
    (r"\.LayerNorm\.(bias|beta)$", ".LayerNorm.beta", False),
    (r"\.LayerNorm_1\.(weight|gamma)$", ".LayerNorm_1.gamma", False),
    (r"\.LayerNorm_1\.(bias|beta)$", ".LayerNorm_1.beta", False),
    (r"_embeddings\.weight$", "_embeddings", False),
    (r"^cls\.predictions\.bias$", "cls.predictions.output_bias", False),
    (r"^cls\.seq_relationship\.weight$", "cls.seq_relationship.output_weights", False),
    (r"^cls\.seq_relationship\.bias$", "cls.seq_relationship.output_bias", False),
    (r"\.weight$", ".kernel", True),
]
HF_SKIPPED = [
    r"position_ids$",
    # NEZHA's relative table is a fixed function, kept by HF as a buffer.
    r"relative_positions_encoding\.positions_encoding$",
    # The MLM decoder is tied to the word embeddings; its bias duplicates the output bias.
    r"^(cls\.)?predictions\.decoder\.(weight|bias)$",
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

    >>> hf = NameTranslator(HF_RULES, HF_SKIPPED)
    >>> hf("bert.encoder.layer.3.attention.self.query.weight")
    ('bert/encoder/layer_3/attention/self/query/kernel', True)
    >>> hf("embeddings.LayerNorm.gamma")
    ('bert/embeddings/LayerNorm/gamma', False)
    >>> hf("bert.embeddings.position_ids") is None
    True
    >>> hf("albert.encoder.albert_layer_groups.0.albert_layers.1.ffn_output.weight")
    ('bert/encoder/transformer/group_0/inner_group_1/ffn_1/intermediate/output/dense/kernel', True)
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


hf_names = NameTranslator(HF_RULES, HF_SKIPPED)
hf_tf_bert = NameTranslator(HF_TF_BERT_RULES, separator="/")
