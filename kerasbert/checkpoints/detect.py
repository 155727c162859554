"""Telling the model family of a checkpoint from its variable names."""

import re

_ALBERT = re.compile(r"(^|/)(transformer/group_\d+/inner_group_\d+|albert)(/|$)")
_BERT_LAYER = re.compile(r"^bert/encoder/layer_\d+/")


def detect_family(names):
    """``"bert"``, ``"albert"``, ``"nezha"`` or None, from canonical variable names.

    NEZHA has BERT's layout but no learned absolute position embedding (its positions are
    functional, relative), which is how it is told apart.

    Args:
        names: canonical (Google TF) variable names.

    Example:

    >>> detect_family(["bert/embeddings/position_embeddings", "bert/encoder/layer_0/a"])
    'bert'
    >>> detect_family(["bert/embeddings/word_embeddings", "bert/encoder/layer_0/a"])
    'nezha'
    """
    names = list(names)
    if any(_ALBERT.search(n) for n in names):
        return "albert"
    if any(_BERT_LAYER.match(n) for n in names):
        if "bert/embeddings/position_embeddings" in names:
            return "bert"
        return "nezha"
    return None
