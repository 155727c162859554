"""Attention with rotary position embeddings (RoPE, https://kexue.fm/archives/8265).

Each query and key head is rotated pair of channels by pair of channels, ``(2i, 2i + 1)``,
by the angle ``p * 10000**(-2i / d)`` of its position ``p``, so that ``q_m · k_n`` depends on
the positions only through ``m - n``. The angles come in as a
:class:`kerasbert.layers.SinusoidalPositionEmbedding` output (bert4keras's interleaved
``sin, cos, sin, cos, ...`` layout); nothing is learned.
"""

import keras

from kerasbert.errors import ConfigError
from kerasbert.layers.attention import MultiHeadAttention
from kerasbert.ops import apply_rotary_position_embeddings


@keras.saving.register_keras_serializable(package="kerasbert")
class RotaryMultiHeadAttention(MultiHeadAttention):
    """Multi-head attention whose queries and keys (optionally values) are rotated by RoPE.

    Inputs are ``[q, k, v, sinusoids]`` or ``[q, k, v, bias, sinusoids]``. ``sinusoids`` has
    shape ``(batch or 1, seq_len, key_size)``: the ``merge_mode="zero"`` output of
    :class:`kerasbert.layers.SinusoidalPositionEmbedding` with ``output_dim=key_size``, whose
    row ``p`` holds ``sin, cos`` of each pair's angle at position ``p``; queries and keys
    share it, so ``q``, ``k`` and ``v`` have the same length (self-attention). Rotation
    happens after the projections and before the logits, so the fused attention kernel
    applies as without it. RoFormer v1 (bert4keras's ``p_bias='rotary'``) rotates queries
    and keys; HF transformers' ``rotary_value=True`` rotates the values too.

    Args:
        heads: number of attention heads.
        head_size: size of each head's values (and keys unless ``key_size`` is given).
        rotary_value: rotate the values as well (needs ``key_size == head_size``).
        **kwargs: the other options of :class:`kerasbert.layers.MultiHeadAttention`
            (``out_dim``, ``key_size``, ``use_bias``, ``attention_scale``,
            ``attention_dropout``, ``kernel_initializer``) and of ``keras.layers.Layer``.

    Example:

    >>> import numpy as np
    >>> from kerasbert.layers import SinusoidalPositionEmbedding
    >>> x = np.random.rand(1, 5, 8).astype("float32")
    >>> sinusoids = SinusoidalPositionEmbedding(4, merge_mode="zero")(x)
    >>> layer = RotaryMultiHeadAttention(heads=2, head_size=4)
    >>> layer([x, x, x, sinusoids]).shape
    (1, 5, 8)
    """

    def __init__(self, heads, head_size, rotary_value=False, **kwargs):
        super().__init__(heads, head_size, **kwargs)
        if not isinstance(rotary_value, bool):
            raise ConfigError(f"rotary_value must be True or False, got {rotary_value!r}.")
        if self.key_size % 2:
            raise ConfigError(
                f"Rotary position embeddings rotate pairs of channels: the key size must be "
                f"even, got {self.key_size}."
            )
        if rotary_value and self.head_size != self.key_size:
            raise ConfigError(
                f"rotary_value=True rotates the values with the keys' angles: head_size "
                f"({self.head_size}) must equal key_size ({self.key_size})."
            )
        self.rotary_value = rotary_value

    def split_inputs(self, inputs):
        bias = inputs[3] if len(inputs) > 4 else None
        return inputs[0], inputs[1], inputs[2], bias, inputs[-1]

    def position_heads(self, qw, kw, vw, positions):
        if self.rotary_value:
            qw, kw, vw = apply_rotary_position_embeddings(positions, qw, kw, vw)
        else:
            qw, kw = apply_rotary_position_embeddings(positions, qw, kw)
        return qw, kw, vw, None

    def get_config(self):
        config = super().get_config()
        config["rotary_value"] = self.rotary_value
        return config
