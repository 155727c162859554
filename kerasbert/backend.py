"""bert4keras's ``backend`` module on Keras 3: ``keras``, ``K`` and its helper functions.

bert4keras scripts start with ``from bert4keras.backend import keras, K``; with the package
renamed they get:

- ``keras``: the real Keras 3 module.
- ``K``: :mod:`kerasbert.keras2_backend`, bert4keras's Keras 2 backend (``K.floatx()``,
  ``K.int_shape(x)``, ``K.eval(x)``, ``K.concatenate(xs)`` on the last axis, ...) on
  Keras 3 and JAX; its docstring says how names resolve.
- bert4keras's helpers: ``set_gelu``, ``piecewise_linear``, ``search_layer``,
  ``batch_gather``, ``align``, ``reshape``, ``flatten``, ``where``, ... and, re-exported
  from :mod:`kerasbert.ops` (the tensor functions kerasbert's own layers use),
  ``gelu_erf``, ``gelu_tanh``, ``sequence_masking``, ``sinusoidal_embeddings``, ...

Importing this module also installs :mod:`kerasbert.keras2_compat`'s patch of
``keras.Model``: ``save_weights("best_model.weights")`` / ``load_weights`` with
bert4keras's file names, and nested Python lists as ``predict``/``fit``/... data. Only this
import installs it; ``import kerasbert`` and ``import kerasbert.models`` do not.
"""

import keras
from keras import ops

from kerasbert import keras2_backend as K
from kerasbert import keras2_compat
from kerasbert import ops as _core
from kerasbert.errors import ConfigError
from kerasbert.losses import (  # noqa: F401 (bert4keras scripts import them from the backend)
    multilabel_categorical_crossentropy,
    sparse_multilabel_categorical_crossentropy,
)
from kerasbert.ops import (  # noqa: F401 (bert4keras's backend names)
    apply_rotary_position_embeddings,
    gelu_erf,
    gelu_tanh,
    get_activation,
    infinity,
    sequence_masking,
    set_infinity,
    sinusoidal_embeddings,
)

reshape = K.reshape
flatten = K.flatten
where = K.where
symbolic = K.symbolic

keras2_compat.install()


def set_gelu(version):
    """Choose what the activation name ``"gelu"`` means: ``"erf"`` or ``"tanh"``.

    Model configs are unaffected (they name ``gelu_erf`` / ``gelu_tanh`` explicitly); this
    is for layers that a script creates with ``activation="gelu"`` through
    :func:`get_activation`.

    Args:
        version: ``"erf"`` (exact, the default) or ``"tanh"`` (the approximation).

    Example:

    >>> set_gelu("tanh"); get_activation("gelu") is gelu_tanh
    True
    >>> set_gelu("erf")
    """
    version = str(version).lower()
    if version not in ("erf", "tanh"):
        raise ConfigError(f"set_gelu takes 'erf' or 'tanh', not {version!r}.")
    _core._ACTIVATIONS["gelu"] = gelu_erf if version == "erf" else gelu_tanh


def piecewise_linear(t, schedule, from_zero=True):
    """bert4keras's piecewise-linear function of a step ``t`` ({step: value} knots).

    Args:
        t: the step (number or scalar tensor).
        schedule: ``{step: value}``; linear between knots, constant after the last.
        from_zero: start from value 0 at step 0 when the schedule has no step-0 knot.

    Example:

    >>> float(piecewise_linear(500, {1000: 1.0}))
    0.5
    """
    from kerasbert.optimizers import PiecewiseLinearSchedule

    return PiecewiseLinearSchedule(schedule, 1.0, from_zero).multiplier(t)


def batch_gather(params, indices):
    """Per-example gather along axis 1: ``out[b, i] = params[b, indices[b, i]]``.

    Args:
        params: tensor ``(batch, n, ...)``.
        indices: integer tensor ``(batch, m)``.

    Example:

    >>> import numpy as np
    >>> p = np.arange(12.0).reshape(2, 3, 2)
    >>> keras.ops.convert_to_numpy(batch_gather(p, np.array([[2], [0]])))[:, 0].tolist()
    [[4.0, 5.0], [6.0, 7.0]]
    """
    indices = ops.cast(indices, "int32")
    extra = len(params.shape) - 2
    expanded = ops.reshape(indices, tuple(ops.shape(indices)) + (1,) * extra)
    target = tuple(ops.shape(indices)) + tuple(ops.shape(params)[2:])
    return ops.take_along_axis(params, ops.broadcast_to(expanded, target), axis=1)


def align(tensor, axes, ndim=None):
    """Insert size-1 axes so that axis ``i`` of ``tensor`` becomes axis ``axes[i]``.

    Args:
        tensor: tensor of rank ``len(axes)``.
        axes: the new position of each axis, increasing.
        ndim: rank of the result; None for ``max(axes) + 1``.

    Example:

    >>> align(keras.ops.ones((2, 5)), [0, 2], 4).shape
    (2, 1, 5, 1)
    """
    if len(axes) != len(tensor.shape):
        raise ConfigError(
            f"align needs one position per axis of the tensor: got axes={list(axes)} for "
            f"a tensor of rank {len(tensor.shape)}."
        )
    ndim = ndim or max(axes) + 1
    index = [None] * ndim
    for axis in axes:
        index[axis] = slice(None)
    return tensor[tuple(index)]


def dtype(x):
    """The dtype name of a tensor or variable, or None for anything else (bert4keras's
    forgiving ``dtype``; ``K.dtype`` raises instead).

    Args:
        x: anything.

    Example:

    >>> dtype(keras.ops.ones(2)), dtype(3.0)
    ('float32', None)
    """
    if ops.is_tensor(x) or isinstance(x, (keras.Variable, keras.KerasTensor)):
        return keras.backend.standardize_dtype(x.dtype)
    return None


def swish(x):
    """``x * sigmoid(x)``.

    Args:
        x: a float tensor.

    Example:

    >>> round(float(swish(keras.ops.convert_to_tensor(1.0))), 4)
    0.7311
    """
    return ops.silu(x)


def leaky_relu(x, alpha=0.2):
    """Leaky ReLU with bert4keras's default slope 0.2.

    Args:
        x: a float tensor.
        alpha: the slope for negative inputs.

    Example:

    >>> round(float(leaky_relu(keras.ops.convert_to_tensor(-1.0))), 4)
    -0.2
    """
    return ops.leaky_relu(x, negative_slope=alpha)


def root_mean_square(x, axis=None, keepdims=False):
    """``sqrt(mean(x**2))`` over ``axis``.

    Args:
        x: a float tensor.
        axis: axis (or axes) to reduce; None for all.
        keepdims: keep the reduced axes with size 1.

    Example:

    >>> float(root_mean_square(keras.ops.convert_to_tensor([3.0, 4.0, 0.0, 0.0])))
    2.5
    """
    return ops.sqrt(ops.mean(ops.square(x), axis=axis, keepdims=keepdims))


def search_layer(inputs, name, exclude_from=None):
    """Find the layer called ``name`` upstream of a symbolic tensor (bert4keras's helper).

    Args:
        inputs: a Keras symbolic tensor (e.g. ``model.output``), or a layer (its output).
        name: the layer name.
        exclude_from: layers not to walk through.

    Returns:
        The layer, or None.

    Example:

    >>> x = keras.Input((3,))
    >>> y = keras.layers.Dense(2, name="head")(keras.layers.Dense(4, name="body")(x))
    >>> search_layer(y, "body").name, search_layer(y, "nowhere")
    ('body', None)
    """
    if isinstance(inputs, keras.layers.Layer):
        inputs = inputs.output
    seen, stack = {id(layer) for layer in exclude_from or ()}, [inputs]
    while stack:
        tensor = stack.pop()
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            continue
        layer = history[0]
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if layer.name == name:
            return layer
        node = layer._inbound_nodes[history[1]]
        stack.extend(node.input_tensors)
    return None
