"""``K``'s learning phase and random numbers, on Keras 3's call context and seeds.

Keras 2 kept a global learning phase (1 while ``fit`` ran) and stateful random ops inside
its TensorFlow graph. Keras 3 has neither: each layer call carries a ``training`` flag
(``fit`` calls the model with ``training=True``, ``predict`` and ``evaluate`` with
``False``), and on JAX a random draw is a pure function of a seed. ``K.learning_phase()``
and ``K.in_train_phase`` read the flag of the Keras call they run in; the ``K.random_*``
functions take Keras 3 seeds and refuse to be traced without one.
"""

import keras
import numpy as np
from keras import ops

from kerasbert.errors import Keras2ArgumentError
from kerasbert.keras2_backend._tensors import switch


def _call_training():
    """The ``training`` flag of the Keras layer call in progress, or None outside one."""
    # Keras 3 keeps the flag on the CallContext of the outermost call in progress
    # (keras/src/layers/layer.py, Layer.__call__ step 5); inner layers inherit it.
    from keras.src.backend.common import global_state

    context = global_state.get_global_attribute("current_call_ctx")
    return None if context is None else getattr(context, "training", None)


def learning_phase():
    """1 inside a training call (``model.fit``, ``model(x, training=True)``), else 0.

    Example:

    >>> learning_phase()
    0
    """
    training = _call_training()
    if training is None or isinstance(training, (bool, int, np.bool_, np.integer)):
        return int(bool(training))
    return ops.cast(training, "int32")


def in_train_phase(x, alt, training=None):
    """``x`` in the training phase, ``alt`` otherwise (either may be a callable).

    Args:
        x: what to return when training (a tensor or a callable returning one).
        alt: what to return otherwise.
        training: True/False (or 1/0, or a bool tensor); None reads the ``training`` flag
            of the Keras call in progress: True under ``model.fit``, False under
            ``predict``/``evaluate``, False outside any call.

    Example:

    >>> in_train_phase(lambda: "dropped", "kept")
    'kept'
    >>> in_train_phase("dropped", "kept", training=True)
    'dropped'
    """
    if training is None:
        training = _call_training()
    if training is None or isinstance(training, (bool, int, np.bool_, np.integer)):
        chosen = x if training else alt
        return chosen() if callable(chosen) else chosen
    return switch(training, x, alt)


def in_test_phase(x, alt, training=None):
    """``x`` outside the training phase, ``alt`` in it (:func:`in_train_phase` reversed).

    Args:
        x: what to return when not training.
        alt: what to return when training.
        training: as for :func:`in_train_phase`.

    Example:

    >>> in_test_phase("kept", "dropped")
    'kept'
    """
    return in_train_phase(alt, x, training=training)


def _tracing():
    if keras.backend.backend() != "jax":
        return False
    import jax

    return isinstance(jax.numpy.ones(()), jax.core.Tracer)


def _seed(seed, function):
    if seed is None and _tracing():
        raise Keras2ArgumentError(
            f"K.{function} was called without a seed inside a compiled (traced) call, such "
            "as a layer's call under model.fit or predict. On JAX a random draw is a pure "
            "function of its seed, so an unseeded draw would be frozen into the compiled "
            "step and repeat on every batch. Create a seed generator in the layer's "
            "__init__:\n    self.seed_generator = keras.random.SeedGenerator()\nand pass "
            f"it:\n    K.{function}(..., seed=self.seed_generator)"
        )
    return seed


def _shape(shape):
    return tuple(int(d) for d in shape)


def random_uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Uniform random numbers in ``[minval, maxval)``.

    Args:
        shape: the output shape.
        minval: lower bound.
        maxval: upper bound (excluded).
        dtype: float dtype; None for ``K.floatx()``.
        seed: an int (the same numbers every call) or a ``keras.random.SeedGenerator``
            (new numbers each call); inside a compiled call a SeedGenerator is required.

    Example:

    >>> random_uniform((2, 3), seed=1).shape
    (2, 3)
    """
    seed = _seed(seed, "random_uniform")
    return keras.random.uniform(_shape(shape), minval, maxval, dtype=dtype, seed=seed)


def random_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal random numbers.

    Args:
        shape: the output shape.
        mean: the mean.
        stddev: the standard deviation.
        dtype: float dtype; None for ``K.floatx()``.
        seed: as for :func:`random_uniform`.

    Example:

    >>> random_normal((2,), seed=keras.random.SeedGenerator(1)).shape
    (2,)
    """
    seed = _seed(seed, "random_normal")
    return keras.random.normal(_shape(shape), mean, stddev, dtype=dtype, seed=seed)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal random numbers redrawn beyond two standard deviations.

    Args:
        shape: the output shape.
        mean: the mean.
        stddev: the standard deviation before truncation.
        dtype: float dtype; None for ``K.floatx()``.
        seed: as for :func:`random_uniform`.

    Example:

    >>> bool(abs(float(truncated_normal((), seed=3))) <= 2)
    True
    """
    seed = _seed(seed, "truncated_normal")
    return keras.random.truncated_normal(_shape(shape), mean, stddev, dtype=dtype, seed=seed)


def random_binomial(shape, p=0.0, dtype=None, seed=None):
    """0/1 draws that are 1 with probability ``p`` (Keras 2's ``random_binomial``, a
    Bernoulli draw; ``keras.random.binomial`` counts successes of several trials instead).

    Args:
        shape: the output shape.
        p: the probability of a 1.
        dtype: the output dtype; None for ``K.floatx()``.
        seed: as for :func:`random_uniform`: in a layer, create
            ``self.seed_generator = keras.random.SeedGenerator()`` in ``__init__`` and pass
            ``seed=self.seed_generator``.

    Example:

    >>> np.asarray(random_binomial((4,), p=1.0, seed=0)).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    seed = _seed(seed, "random_binomial")
    draws = keras.random.uniform(_shape(shape), dtype="float32", seed=seed)
    return ops.cast(draws < p, dtype or keras.config.floatx())


def random_bernoulli(shape, p=0.0, dtype=None, seed=None):
    """Keras 2's newer name of :func:`random_binomial`.

    Args:
        shape: the output shape.
        p: the probability of a 1.
        dtype: the output dtype; None for ``K.floatx()``.
        seed: as for :func:`random_binomial`.

    Example:

    >>> np.asarray(random_bernoulli((2,), p=0.0, seed=0)).tolist()
    [0.0, 0.0]
    """
    seed = _seed(seed, "random_bernoulli")
    return random_binomial(shape, p, dtype=dtype, seed=seed)


def dropout(x, level, noise_shape=None, seed=None):
    """Zero each element with probability ``level`` and scale the rest by
    ``1 / (1 - level)``, always (as Keras 2's ``K.dropout``; wrap it in ``in_train_phase``
    to drop only while training).

    Args:
        x: tensor.
        level: the drop probability.
        noise_shape: shape of the keep/drop mask (broadcast to ``x``), or None.
        seed: as for :func:`random_uniform`.

    Example:

    >>> np.asarray(dropout(np.ones(3), 0.0, seed=0)).tolist()
    [1.0, 1.0, 1.0]
    """
    seed = _seed(seed, "dropout")
    return keras.random.dropout(x, level, noise_shape=noise_shape, seed=seed)
