"""Keras 3 layers of kerasbert; every one is serializable and registered."""

from kerasbert.layers.attention import MultiHeadAttention
from kerasbert.layers.core import Add, BiasAdd, TokenSlice
from kerasbert.layers.crf import ConditionalRandomField, CRFFunction
from kerasbert.layers.embeddings import Embedding, PositionEmbedding
from kerasbert.layers.feedforward import FeedForward
from kerasbert.layers.loss import Loss
from kerasbert.layers.masks import CausalAttentionBias, UniLMAttentionBias
from kerasbert.layers.normalization import LayerNormalization
from kerasbert.layers.pointers import EfficientGlobalPointer, GlobalPointer
from kerasbert.layers.pooling import MaskedGlobalPooling1D
from kerasbert.layers.position import SinusoidalPositionEmbedding
from kerasbert.layers.relative import RelativeMultiHeadAttention, RelativePositionEmbedding

__all__ = [
    "EfficientGlobalPointer",
    "GlobalPointer",
    "Loss",
    "MaskedGlobalPooling1D",
    "SinusoidalPositionEmbedding",
    "ConditionalRandomField",
    "CRFFunction",
    "CausalAttentionBias",
    "UniLMAttentionBias",
    "Add",
    "BiasAdd",
    "Embedding",
    "FeedForward",
    "LayerNormalization",
    "MultiHeadAttention",
    "PositionEmbedding",
    "RelativeMultiHeadAttention",
    "RelativePositionEmbedding",
    "TokenSlice",
]
