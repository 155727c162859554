"""bert4keras's ``K``: the Keras 2 backend API (``keras.backend`` of Keras 2.3 / tf.keras)
on Keras 3 and JAX. ``kerasbert.backend.K`` is this module.

An attribute ``K.<name>`` resolves, in this order, to:

1. kerasbert's Keras-2 form defined here, where Keras 2's meaning differs from
   ``keras.ops`` (``K.concatenate``'s default axis is -1, ``K.switch`` selects elementwise,
   ``K.sqrt`` clips negatives, ...) or ``keras.ops`` lacks the name (``K.int_shape``,
   ``K.eval``, ``K.set_value``, ``K.in_train_phase``, ``K.random_binomial``, ...);
2. an error for the Keras 2 names that cannot work on Keras 3 and JAX (``K.function``,
   ``K.gradients``, ``K.get_session``, ``K.placeholder``, ``K.update``, ...): accessing
   one raises :class:`UnsupportedKeras2Error` (an ``AttributeError``) whose message says
   what to write instead;
3. ``keras.ops`` (``K.sum``, ``K.mean``, ``K.cast``, ``K.softmax``, ``K.one_hot``, ...,
   whose Keras 2 and Keras 3 meanings agree);
4. ``keras.backend``, then ``keras.config`` (``K.floatx``, ``K.epsilon``,
   ``K.set_floatx``, ``K.image_data_format``, ``K.clear_session``, ...).

Anything else raises :class:`UnsupportedKeras2Error` too.

Known differences that stay: ``K.shape(x)`` is a tuple of ints (static under JAX), not a
shape tensor; ``K.zeros``/``K.ones``/``K.eye`` return tensors, not variables (write
``K.variable(K.zeros(shape))`` for a variable); ``K.backend()`` is ``"jax"``.

Example:

>>> import kerasbert.keras2_backend as K
>>> K.concatenate([K.ones((2, 1)), K.zeros((2, 2))]).shape, K.floatx(), K.int_shape(K.ones(3))
((2, 3), 'float32', (3,))
"""

import keras

from kerasbert.errors import Keras2ArgumentError, UnsupportedKeras2Error
from kerasbert.keras2_backend._phase import (
    dropout,
    in_test_phase,
    in_train_phase,
    learning_phase,
    random_bernoulli,
    random_binomial,
    random_normal,
    random_uniform,
    truncated_normal,
)
from kerasbert.keras2_backend._shapes import (
    batch_flatten,
    flatten,
    prod,
    repeat,
    repeat_elements,
    reshape,
    reverse,
    temporal_padding,
)
from kerasbert.keras2_backend._state import (
    batch_get_value,
    batch_set_value,
    cast_to_floatx,
    constant,
    count_params,
    eval,
    get_value,
    int_shape,
    set_value,
    variable,
)
from kerasbert.keras2_backend._tensors import (
    argmax,
    argmin,
    batch_dot,
    bias_add,
    clip,
    concatenate,
    cumprod,
    cumsum,
    expand_dims,
    gather,
    hard_sigmoid,
    l2_normalize,
    map_fn,
    permute_dimensions,
    pow,
    relu,
    sparse_categorical_crossentropy,
    sqrt,
    stop_gradient,
    switch,
    symbolic,
    where,
)

name_scope = keras.name_scope

_GRADIENTS = (
    "for the gradient tricks of bert4keras's examples call kerasbert.tricks."
    "adversarial_training(model) / virtual_adversarial_training / gradient_penalty(model) "
    "after model.compile, or kerasbert.tricks.integrated_gradients for attributions; for "
    "anything else write jax.grad inside a custom train_step"
)
_ASSIGN = (
    "Keras 3 variables update in place: write x.assign(new_value), x.assign_add(delta) or "
    "x.assign_sub(delta) (in a layer's call, on non-trainable variables; the optimizer "
    "updates trainable ones)"
)
_UNSUPPORTED = {
    "function": "K.function builds a TensorFlow graph function, which Keras 3 on JAX does "
    "not have. To run a model, write model.predict(x) or model(x) (a sub-model: "
    "keras.Model(inputs, outputs).predict(x)); " + _GRADIENTS + ".",
    "gradients": "K.gradients differentiates a TensorFlow graph, which Keras 3 on JAX does "
    "not have; " + _GRADIENTS + ".",
    "get_session": "Keras 3 on JAX has no sessions: drop the session code; read values "
    "with K.eval(x) / K.get_value(v) and set them with K.set_value(v, value).",
    "set_session": "Keras 3 on JAX has no sessions: drop the session code (devices and "
    "memory are JAX's: see jax.devices() and XLA_PYTHON_CLIENT_MEM_FRACTION).",
    "get_graph": "Keras 3 on JAX has no graphs: functions are traced by jax.jit when a "
    "model compiles; drop the graph code.",
    "placeholder": "Keras 3 has no placeholders: use keras.Input(shape=..., dtype=...) "
    "for a model input, or a numpy array for a value.",
    "update": "K.update returned a TensorFlow update op; " + _ASSIGN + ".",
    "update_add": "K.update_add returned a TensorFlow update op; " + _ASSIGN + ".",
    "update_sub": "K.update_sub returned a TensorFlow update op; " + _ASSIGN + ".",
    "moving_average_update": "K.moving_average_update returned a TensorFlow update op; "
    "write x.assign(x * momentum + value * (1 - momentum)) (" + _ASSIGN + ").",
    "set_learning_phase": "Keras 3 has no global learning phase: model.fit calls the "
    "model with training=True and predict/evaluate with training=False; pass "
    "training=True/False to a model or layer call to choose. K.in_train_phase and "
    "K.learning_phase() read that flag.",
    "rnn": "K.rnn is Keras 2's TensorFlow while-loop; write the loop with keras.ops.scan "
    "(or keras.ops.fori_loop / keras.ops.while_loop), or use a keras.layers.RNN.",
}


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in _UNSUPPORTED:
        raise UnsupportedKeras2Error(_UNSUPPORTED[name])
    for source in (keras.ops, keras.backend, keras.config):
        if hasattr(source, name):
            return getattr(source, name)
    raise UnsupportedKeras2Error(
        f"K.{name}: kerasbert's Keras 2 backend has no {name!r}, and neither do keras.ops, "
        "keras.backend or keras.config. Write it with keras.ops (see also keras.random, "
        "keras.layers); docs/bert4keras_compat.md lists the Keras 2 names K covers."
    )


def __dir__():
    names = set(globals()) | set(_UNSUPPORTED)
    for source in (keras.ops, keras.backend, keras.config):
        names.update(n for n in dir(source) if not n.startswith("_"))
    return sorted(names)


__all__ = [
    "Keras2ArgumentError",
    "UnsupportedKeras2Error",
    "argmax",
    "argmin",
    "batch_dot",
    "batch_flatten",
    "batch_get_value",
    "batch_set_value",
    "bias_add",
    "cast_to_floatx",
    "clip",
    "concatenate",
    "constant",
    "count_params",
    "cumprod",
    "cumsum",
    "dropout",
    "eval",
    "expand_dims",
    "flatten",
    "gather",
    "get_value",
    "hard_sigmoid",
    "in_test_phase",
    "in_train_phase",
    "int_shape",
    "l2_normalize",
    "learning_phase",
    "map_fn",
    "name_scope",
    "permute_dimensions",
    "pow",
    "prod",
    "random_bernoulli",
    "random_binomial",
    "random_normal",
    "random_uniform",
    "relu",
    "repeat",
    "repeat_elements",
    "reshape",
    "reverse",
    "set_value",
    "sparse_categorical_crossentropy",
    "sqrt",
    "stop_gradient",
    "switch",
    "symbolic",
    "temporal_padding",
    "truncated_normal",
    "variable",
    "where",
]
