"""The errors of :mod:`kerasbert.keras2_backend` (bert4keras's ``K``)."""

from kerasbert.errors import KerasBertError


class UnsupportedKeras2Error(KerasBertError, AttributeError):
    """A Keras 2 backend name that cannot work on Keras 3 and JAX (``K.function``, ...).

    An ``AttributeError``, so ``hasattr(K, "function")`` is False; the message says what to
    write instead.
    """


class Keras2ArgumentError(KerasBertError, ValueError):
    """A ``K`` function got arguments it cannot work with on JAX (e.g. an unseeded random
    draw inside a compiled step)."""
