"""RoFormer v2 (ZhuiyiTechnology/roformer-v2): RoFormer without biases and norm weights.

Canonical names are those of Zhuiyi's bert4keras-trained TF checkpoints: RoFormer v1's
(BERT's without ``position_embeddings``) minus every ``bias`` and every ``LayerNorm`` —
so the names alone tell v2 apart from v1 and NEZHA, which have both. The MLM head is the
tied word embedding alone. HF transformers has no RoFormer v2 (no HF naming: conversion
writes TF checkpoints and Keras files); keras-hub's ``RoformerV2Backbone`` is the
independent reference of the tests' fixtures.
"""

from kerasbert.families.bert import BERT_LAYER
from kerasbert.families.record import Detection, Family, ModelEntry

ROFORMER_V2 = Family(
    name="roformer_v2",
    title="RoFormer v2",
    models=(ModelEntry("roformer_v2", "kerasbert.models.roformer_v2:RoFormerV2"),),
    description="RoFormer without biases, with parameter-free RMS norms",
    checkpoint_names=Detection(
        requires=(r"^bert/encoder/layer_\d+/attention/self/query/kernel$",),
        excludes=(
            r"^bert/embeddings/position_embeddings$",
            r"/LayerNorm/(gamma|beta)$",
            r"^bert/encoder/layer_\d+/.*/bias$",
        ),
    ),
    # Layer names are v1's: the norms' missing gamma tells v2 (see detect_from_layers).
    layer_names=Detection(
        requires=(BERT_LAYER, r"^Embedding-Rotary-Position$"),
        excludes=(r"^Embedding-Norm/gamma$",),
    ),
    model_types=("roformer_v2",),
    # Zhuiyi trained RoFormer v2 with bert4keras, whose "gelu" is the erf form.
    google_gelu="gelu_erf",
    vocab_variable="bert/embeddings/word_embeddings",
    tiny_config={"hidden_act": "relu"},
)
