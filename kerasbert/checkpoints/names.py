"""Name translation tables: each format's variable names -> canonical Google TF names.

A table is an ordered list of ``(pattern, replacement, transposes)`` regex rules applied in
turn to a source name; afterwards dots become slashes. ``transposes`` marks rules that turn a
torch ``Linear`` weight ``(out, in)`` into a TF kernel ``(in, out)``. A second list names
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


class NameTranslator:
    """Applies a rule table to source names.

    Args:
        rules: ordered ``(pattern, replacement, transposes)`` regex rules.
        skipped: patterns of source names that hold no model weight.

    Example:

    >>> hf_bert = NameTranslator(HF_BERT_RULES, HF_BERT_SKIPPED)
    >>> hf_bert("bert.encoder.layer.3.attention.self.query.weight")
    ('bert/encoder/layer_3/attention/self/query/kernel', True)
    >>> hf_bert("embeddings.LayerNorm.gamma")
    ('bert/embeddings/LayerNorm/gamma', False)
    >>> hf_bert("bert.embeddings.position_ids") is None
    True
    """

    def __init__(self, rules, skipped=()):
        self.rules = [(re.compile(p), r, t) for p, r, t in rules]
        self.skipped = [re.compile(p) for p in skipped]

    def __call__(self, name):
        if any(p.search(name) for p in self.skipped):
            return None
        transpose = False
        for pattern, replacement, transposes in self.rules:
            name, count = pattern.subn(replacement, name)
            transpose = transpose or (transposes and count > 0)
        return name.replace(".", "/"), transpose


def identity(name):
    """Translation for files that already use Google names (TF checkpoints)."""
    return name, False


hf_bert = NameTranslator(HF_BERT_RULES, HF_BERT_SKIPPED)
