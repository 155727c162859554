"""kerasbert: BERT-family models for Keras 3, reading every checkpoint format users have.

Importing kerasbert selects the JAX backend when ``KERAS_BACKEND`` is unset; an explicit
choice is never overridden. When Keras was imported before kerasbert and runs on another
backend, kerasbert works on it but warns: its fast paths (jitted encoding, bucketed
decoding), layout maps and gradient checkpointing are JAX's.

Example:

>>> import kerasbert
>>> model = kerasbert.build_transformer_model(
...     {"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 1,
...      "num_attention_heads": 2, "intermediate_size": 16})
>>> model.output.shape
(None, None, 8)
"""

import os
import sys
import warnings

if "keras" not in sys.modules:
    os.environ.setdefault("KERAS_BACKEND", "jax")
else:  # Keras has chosen already; the environment must not claim otherwise
    _backend = sys.modules["keras"].backend.backend()
    if _backend != "jax":
        warnings.warn(
            f"Keras was imported before kerasbert and runs on the {_backend!r} backend; "
            "kerasbert works there, but its fast paths (jitted encoding, bucketed decoding), "
            "layout maps and gradient checkpointing need JAX. Set KERAS_BACKEND=jax before "
            "importing keras (or import kerasbert first).",
            stacklevel=2,
        )

from kerasbert.errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    KerasBertError,
    WeightLoadingError,
)

__version__ = "0.1.0"


def __getattr__(name):
    # Imported on first use, so ``kerasbert.tokenizers`` loads without Keras and JAX.
    if name == "build_transformer_model":
        from kerasbert.models import build_transformer_model

        return build_transformer_model
    raise AttributeError(f"module 'kerasbert' has no attribute {name!r}")


__all__ = [
    "CheckpointError",
    "ConfigError",
    "KerasBertError",
    "WeightLoadingError",
    "build_transformer_model",
    "__version__",
]
