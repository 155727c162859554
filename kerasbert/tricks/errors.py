"""The error every part of :mod:`kerasbert.tricks` raises: :class:`TrickError`."""

from kerasbert.errors import KerasBertError


class TrickError(KerasBertError, ValueError):
    """A training trick or an attribution got a model or arguments it cannot work with."""


# Its public home, as tracebacks and pickles name it.
TrickError.__module__ = "kerasbert.tricks"
