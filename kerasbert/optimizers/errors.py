"""The error every part of :mod:`kerasbert.optimizers` raises: :class:`OptimizerError`."""

from kerasbert.errors import KerasBertError


class OptimizerError(KerasBertError, ValueError):
    """An optimizer option is invalid, or a bert4keras optimizer name has no Keras 3 form."""


# Its public home, as tracebacks and pickles name it (and as it was before the package split).
OptimizerError.__module__ = "kerasbert.optimizers"
