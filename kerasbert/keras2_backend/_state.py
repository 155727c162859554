"""``K``'s Keras 2 functions for shapes, values and variables: ``int_shape``, ``eval``,
``get_value``, ``set_value``, ``variable``, ``constant``, ...

Keras 3 on JAX has no sessions: a value is read with ``keras.ops.convert_to_numpy`` and a
variable set with ``Variable.assign``; these functions are Keras 2's names for that.
"""

import keras
import numpy as np
from keras import ops

from kerasbert.errors import Keras2ArgumentError


def int_shape(x):
    """The shape of ``x`` as a tuple of ints, None for unknown sizes (e.g. a model input's
    batch axis).

    Args:
        x: a tensor, variable, Keras symbolic tensor or numpy array.

    Example:

    >>> int_shape(keras.Input((None, 8)))
    (None, None, 8)
    >>> int_shape(np.ones((2, 3)))
    (2, 3)
    """
    shape = x.shape if hasattr(x, "shape") else np.shape(x)
    return tuple(None if d is None else int(d) for d in shape)


def eval(x):
    """The value of a tensor or variable as a numpy array (Keras 2's ``K.eval``).

    Args:
        x: a tensor, variable or array-like.

    Example:

    >>> eval(keras.Variable([1.0, 2.0])).tolist()
    [1.0, 2.0]
    """
    return np.asarray(ops.convert_to_numpy(x))


def get_value(x):
    """The value of a variable as a numpy array (Keras 2's ``K.get_value``).

    Args:
        x: a variable (or tensor).

    Example:

    >>> float(get_value(keras.Variable(3.0)))
    3.0
    """
    return eval(x)


def batch_get_value(tensors):
    """The values of several variables, as a list of numpy arrays.

    Args:
        tensors: a list of variables or tensors.

    Example:

    >>> [v.tolist() for v in batch_get_value([keras.Variable(1.0), keras.Variable([2.0])])]
    [1.0, [2.0]]
    """
    return [eval(x) for x in tensors]


def set_value(x, value):
    """Overwrite a variable with ``value`` (cast to the variable's dtype), in place.

    Args:
        x: a ``keras.Variable`` (a layer's weight, ``model.optimizer.learning_rate``, ...).
        value: array-like of the variable's shape.

    Example:

    >>> v = keras.Variable([0.0, 0.0])
    >>> set_value(v, [1, 2]); get_value(v).tolist()
    [1.0, 2.0]
    """
    if not hasattr(x, "assign"):
        raise Keras2ArgumentError(
            f"K.set_value needs a variable (a keras.Variable such as layer.embeddings or "
            f"model.optimizer.learning_rate); got {type(x).__name__}. Tensors are immutable: "
            "compute a new one instead."
        )
    x.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(x.dtype)))


def batch_set_value(tuples):
    """:func:`set_value` for each ``(variable, value)`` pair.

    Args:
        tuples: an iterable of ``(variable, value)`` pairs.

    Example:

    >>> v = keras.Variable(0.0)
    >>> batch_set_value([(v, 5.0)]); float(get_value(v))
    5.0
    """
    for x, value in tuples:
        set_value(x, value)


def variable(value, dtype=None, name=None, constraint=None):
    """A new ``keras.Variable`` holding ``value``; the dtype defaults to ``K.floatx()`` as in
    Keras 2 (``keras.Variable`` keeps the value's dtype).

    Args:
        value: initial value (array-like or tensor).
        dtype: the variable's dtype; None for ``K.floatx()``.
        name: the variable's name.
        constraint: must be None (Keras 3 variables have no constraint; give the layer's
            ``add_weight(constraint=...)`` one instead).

    Example:

    >>> v = variable([1, 2])
    >>> v.dtype, get_value(v).tolist()
    ('float32', [1.0, 2.0])
    """
    if constraint is not None:
        raise Keras2ArgumentError(
            "K.variable(constraint=...) has no Keras 3 form: a bare variable has no "
            "constraint. Create the weight in a layer with self.add_weight(..., "
            "constraint=...) instead."
        )
    dtype = dtype or keras.config.floatx()
    if not ops.is_tensor(value):
        value = np.asarray(value, dtype=dtype)
    return keras.Variable(value, dtype=dtype, name=name)


def constant(value, dtype=None, shape=None, name=None):
    """A tensor holding ``value``, ``K.floatx()`` unless ``dtype`` says otherwise (keras.ops'
    ``convert_to_tensor`` keeps an int value an int).

    Args:
        value: a number or array-like.
        dtype: the tensor's dtype; None for ``K.floatx()``.
        shape: broadcast ``value`` to this shape (a number fills it), or None.
        name: ignored (Keras 2's graph op name).

    Example:

    >>> t = constant(1, shape=(2,))
    >>> keras.backend.standardize_dtype(t.dtype), eval(t).tolist()
    ('float32', [1.0, 1.0])
    """
    del name
    tensor = ops.convert_to_tensor(value, dtype=dtype or keras.config.floatx())
    return tensor if shape is None else ops.broadcast_to(tensor, tuple(shape))


def cast_to_floatx(x):
    """``x`` as a numpy array of dtype ``K.floatx()``.

    Args:
        x: number or array-like.

    Example:

    >>> cast_to_floatx([1, 2]).dtype
    dtype('float32')
    """
    return np.asarray(x, dtype=keras.config.floatx())


def count_params(x):
    """The number of elements of a variable or tensor.

    Args:
        x: a variable or tensor with a known shape.

    Example:

    >>> count_params(keras.Variable(np.zeros((3, 4))))
    12
    """
    return int(np.prod(int_shape(x)))
