"""Exceptions raised by kerasbert.

Every error a user can cause (bad paths, corrupt files, missing or misshaped variables, bad
configs) is a :class:`KerasBertError`, whose message says what is wrong, which names or paths
are involved, and what to do about it.
"""


class KerasBertError(Exception):
    """Base class of every error kerasbert raises on bad input."""


class ConfigError(KerasBertError, ValueError):
    """A model configuration is missing, unreadable, or has invalid values."""


class CheckpointError(KerasBertError, OSError):
    """A checkpoint path is missing, unreadable, corrupt, or of an unknown format."""


class WeightLoadingError(KerasBertError, ValueError):
    """A checkpoint does not fit the model: variables missing or of the wrong shape."""


class ModelTypeError(KerasBertError, ValueError):
    """An unknown model family or application was requested."""


class UnsupportedKeras2Error(KerasBertError, AttributeError):
    """A Keras 2 backend name that cannot work on Keras 3 and JAX (``K.function``, ...).

    An ``AttributeError``, so ``hasattr(K, "function")`` is False; the message says what to
    write instead.
    """


class Keras2ArgumentError(KerasBertError, ValueError):
    """A ``K`` function of :mod:`kerasbert.keras2_backend` got arguments it cannot work with
    on JAX (e.g. an unseeded random draw inside a compiled step)."""


class SnippetError(KerasBertError, ValueError):
    """A helper of :mod:`kerasbert.snippets` (or the shape buckets of
    :mod:`kerasbert.compilation`) got arguments it cannot work with."""


class ServingError(KerasBertError, ValueError):
    """A request ``kerasbert serve`` cannot encode, or a server option that cannot work."""
