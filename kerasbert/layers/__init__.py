"""Keras 3 layers of kerasbert; every one is serializable and registered."""

from kerasbert.layers.attention import MultiHeadAttention
from kerasbert.layers.buckets import RelativePositionBias
from kerasbert.layers.core import Add, BiasAdd, TokenSlice
from kerasbert.layers.crf import ConditionalRandomField, CRFFunction
from kerasbert.layers.dense import Dense
from kerasbert.layers.dropout import Dropout
from kerasbert.layers.embeddings import Embedding, PositionEmbedding
from kerasbert.layers.feedforward import FeedForward
from kerasbert.layers.loss import Loss
from kerasbert.layers.masks import (
    CausalAttentionBias,
    FirstPositionVisible,
    NonzeroMask,
    UniLMAttentionBias,
    ZerosWhereMasked,
)
from kerasbert.layers.normalization import LayerNormalization
from kerasbert.layers.pointers import EfficientGlobalPointer, GlobalPointer
from kerasbert.layers.pooling import (
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaskedGlobalPooling1D,
)
from kerasbert.layers.position import SinusoidalPositionEmbedding
from kerasbert.layers.relative import RelativeMultiHeadAttention, RelativePositionEmbedding
from kerasbert.layers.rotary import RotaryMultiHeadAttention

__all__ = [
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "custom_objects",
    "EfficientGlobalPointer",
    "GlobalPointer",
    "Loss",
    "MaskedGlobalPooling1D",
    "SinusoidalPositionEmbedding",
    "ConditionalRandomField",
    "CRFFunction",
    "CausalAttentionBias",
    "Dense",
    "Dropout",
    "UniLMAttentionBias",
    "FirstPositionVisible",
    "NonzeroMask",
    "RelativePositionBias",
    "ZerosWhereMasked",
    "Add",
    "BiasAdd",
    "Embedding",
    "FeedForward",
    "LayerNormalization",
    "MultiHeadAttention",
    "PositionEmbedding",
    "RelativeMultiHeadAttention",
    "RelativePositionEmbedding",
    "RotaryMultiHeadAttention",
    "TokenSlice",
]

# bert4keras's ``custom_objects``: every kerasbert layer by class name (Keras 3 also finds
# them through registration, so ``load_model`` needs no ``custom_objects``).
custom_objects = {name: globals()[name] for name in __all__ if name != "custom_objects"}
