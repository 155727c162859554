"""The pooling names, in a module without Keras so the command line can offer them.

``"cls"``: position 0 ([CLS]); ``"mean"`` / ``"max"``: over the real tokens; ``"last"``: the
last real token ([SEP], or a decoder's final token). The encoder also takes ``"none"``: the
token vectors themselves. :func:`kerasbert.layers.pooling.masked_pooling` implements them.
"""

POOLINGS = ("cls", "mean", "max", "last")
ENCODER_POOLINGS = POOLINGS + ("none",)
