"""What the training tricks share: finding the embedding, reading and replacing it in the
JAX trainer's state, tapping the embedding layer's output, and installing a train step."""

import contextlib
import functools

import jax
import jax.numpy as jnp
import keras

from kerasbert.tricks.errors import TrickError


def find_layer(model, name):
    """Find the layer called ``name`` in ``model`` or in any model nested in it.

    Args:
        model: a Keras model (the BERT model itself, or a model wrapping it).
        name: the layer name, e.g. ``"Embedding-Token"``.

    Returns:
        The layer.

    Raises:
        TrickError: no layer has that name (the message lists the embedding-like layers
            there are), or two different layers have it.

    Example:

    >>> import kerasbert
    >>> bert = kerasbert.build_transformer_model(
    ...     {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16})
    >>> outer = keras.Model(bert.inputs, keras.layers.Dense(2)(bert(bert.inputs)))
    >>> find_layer(outer, "Embedding-Token").name
    'Embedding-Token'
    """
    layers = model._flatten_layers(include_self=False, recursive=True)
    found = [layer for layer in layers if layer.name == name]
    if len(found) > 1:
        raise TrickError(
            f"{len(found)} different layers are called {name!r} in model {model.name!r} "
            "(nested models can reuse names); pass the model that holds the one you mean."
        )
    if not found:
        similar = [
            layer.name
            for layer in layers
            if "embed" in layer.name.lower() or hasattr(layer, "embeddings")
        ]
        raise TrickError(
            f"No layer called {name!r} in model {model.name!r} or the models nested in it. "
            f"Embedding-like layers there: {similar or 'none'}. Pass one of them as "
            "embedding_name."
        )
    return found[0]


def find_embedding(model, name):
    """Return the layer called ``name`` and its ``embeddings`` variable (the lookup table).

    Args:
        model: a Keras model.
        name: the embedding layer's name.

    Example:

    >>> import kerasbert
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16})
    >>> find_embedding(model, "Embedding-Token")[1].shape
    (30, 8)
    """
    layer = find_layer(model, name)
    variable = getattr(layer, "embeddings", None)
    if not isinstance(variable, keras.Variable):
        raise TrickError(
            f"Layer {name!r} ({type(layer).__name__}) has no `embeddings` table to perturb; "
            "pass the name of an Embedding layer (bert4keras's is 'Embedding-Token')."
        )
    return layer, variable


def check_trainable_model(model, function):
    """Raise TrickError unless ``model`` can take a JAX train step (compiled, JAX backend).

    Args:
        model: a Keras model.
        function: the trick's name, for the message.

    Example:

    >>> check_trainable_model(keras.Sequential([keras.layers.Dense(1)]), "f")
    Traceback (most recent call last):
    ...
    kerasbert.tricks.TrickError: f(model, ...) must be called after model.compile(...)...
    """
    if keras.backend.backend() != "jax":
        raise TrickError(
            f"{function} replaces the JAX trainer's train_step; the backend is "
            f"{keras.backend.backend()!r}. Set KERAS_BACKEND=jax before importing keras."
        )
    if keras.config.is_nnx_enabled():
        raise TrickError(f"{function} does not support Keras's NNX mode; disable it.")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise TrickError(
            f"{function}(model, ...) must be called after model.compile(...): it trains with "
            "the compiled loss, metrics and optimizer."
        )


def variable_slot(model, variable):
    """Where ``variable`` sits in the trainer's state: ``(0, i)`` trainable, ``(1, i)`` not.

    Args:
        model: the Keras model whose state it is.
        variable: one of its variables.

    Example:

    >>> layer = keras.layers.Dense(2)
    >>> layer.build((None, 3))
    >>> variable_slot(layer, layer.bias)
    (0, 1)
    """
    for part, variables in enumerate((model.trainable_variables, model.non_trainable_variables)):
        for i, v in enumerate(variables):
            if v is variable:
                return part, i
    raise TrickError(f"Variable {variable.path!r} is not one of model {model.name!r}'s.")


def state_value(state, slot):
    """The value at ``slot`` (from :func:`variable_slot`) of a trainer state tuple.

    Args:
        state: ``(trainable_values, non_trainable_values, ...)``.
        slot: ``(part, index)``.

    Example:

    >>> state_value(([1, 2], [3]), (1, 0))
    3
    """
    return state[slot[0]][slot[1]]


def with_value(state, slot, value):
    """A copy of the state tuple with ``value`` at ``slot``; nothing else is touched.

    Args:
        state: ``(trainable_values, non_trainable_values, ...)``.
        slot: ``(part, index)``.
        value: the new value.

    Example:

    >>> with_value(([1, 2], [3], "rest"), (0, 1), 9)
    ([1, 9], [3], 'rest')
    """
    part = list(state[slot[0]])
    part[slot[1]] = value
    return tuple(part if i == slot[0] else s for i, s in enumerate(state))


def loss_scale(model, optimizer_variables):
    """The factor the optimizer scales the loss by this step (1.0 without loss scaling).

    Args:
        model: a compiled Keras model.
        optimizer_variables: the optimizer's values in the trainer's state.

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(loss_scale_factor=4.0), "mse")
    >>> float(loss_scale(model, []))
    4.0
    """
    optimizer = model.optimizer
    mapping = list(zip(optimizer.variables, optimizer_variables))
    with keras.StatelessScope(state_mapping=mapping):
        return jnp.asarray(optimizer.scale_loss(jnp.float32(1.0)), "float32")


def l2_normalize(x, scale):
    """``scale * x / (||x|| + 1e-8)`` over the whole array, and 0 where the norm is not finite.

    The zero keeps a step whose gradient overflowed (float16) from writing NaN into the
    table: the perturbation is removed by subtraction afterwards, which NaN would not undo.

    Args:
        x: an array.
        scale: the norm of the result.

    Example:

    >>> [float(v) for v in l2_normalize(jnp.array([3.0, 4.0]), 10.0)]
    [6.0, 8.0]
    """
    x = jnp.asarray(x, "float32")
    norm = jnp.sqrt(jnp.sum(jnp.square(x)))
    return jnp.where(jnp.isfinite(norm), scale * x / (norm + 1e-8), 0.0)


def _is_lookup(args, kwargs):
    # kerasbert's Embedding also runs as the tied output projection (mode="dense").
    mode = kwargs.get("mode", args[0] if args else "embedding")
    return mode == "embedding"


@contextlib.contextmanager
def tap_output(layer, transform):
    """While active, each lookup call of ``layer`` returns ``transform(i, output)``.

    ``i`` counts the lookup calls (0, 1, ...) since the context was entered; calls in
    kerasbert's tied ``mode="dense"`` pass through. The layer's ``call`` is replaced on the
    instance only, and restored on exit, so use it around the tracing of a forward pass.

    Args:
        layer: an embedding layer.
        transform: ``f(i, output) -> output`` of the same shape.

    Example:

    >>> layer = keras.layers.Embedding(5, 2, embeddings_initializer="ones")
    >>> with tap_output(layer, lambda i, out: out * 3):
    ...     tapped = layer(jnp.array([[1]]))
    >>> float(tapped[0, 0, 0]), float(layer(jnp.array([[1]]))[0, 0, 0])
    (3.0, 1.0)
    """
    original = layer.call
    counter = iter(range(1 << 30))

    @functools.wraps(original)
    def call(*args, **kwargs):
        output = original(*args, **kwargs)
        if not _is_lookup(args[1:], kwargs):
            return output
        return transform(next(counter), output)

    had_own = "call" in vars(layer)
    object.__setattr__(layer, "call", call)
    try:
        yield
    finally:
        if had_own:
            object.__setattr__(layer, "call", original)
        else:
            object.__delattr__(layer, "call")


def lookup_outputs(model, layer, trainable, non_trainable, x):
    """Shapes and dtypes (``jax.ShapeDtypeStruct``) of each lookup call of ``layer`` in a
    forward pass of ``model``; only traced, never run.

    Args:
        model: the model.
        layer: the embedding layer in it.
        trainable: the model's trainable values.
        non_trainable: its non-trainable values.
        x: a batch of inputs.

    Example:

    >>> import kerasbert, numpy as np
    >>> model = kerasbert.build_transformer_model(
    ...     {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16})
    >>> values = [v.value for v in model.trainable_variables]
    >>> x = [np.ones((2, 5), "int32"), np.zeros((2, 5), "int32")]
    >>> [s.shape for s in lookup_outputs(model, model.get_layer("Embedding-Token"),
    ...                                  values, [], x)]
    [(2, 5, 8)]
    """
    found = []

    def record(i, output):
        found.append(jax.ShapeDtypeStruct(output.shape, output.dtype))
        return output

    def forward(trainable, non_trainable, x):
        with tap_output(layer, record):
            return model.stateless_call(trainable, non_trainable, x, **inference(model))[0]

    jax.eval_shape(forward, trainable, non_trainable, x)
    return found


def inference(model):
    """The keyword arguments of an inference-mode call (``training=False`` if accepted).

    Args:
        model: a Keras model.

    Example:

    >>> inference(keras.Sequential([keras.layers.Dense(1)]))
    {'training': False}
    """
    return {"training": False} if getattr(model, "_call_has_training_arg", True) else {}


def install_train_step(model, make_step, trick):
    """Make ``model.fit`` / ``train_on_batch`` train with ``make_step(base_step)``.

    ``base_step`` is the model class's own ``train_step`` (so installing a second trick
    replaces the first instead of stacking). The jitted train function is dropped, so the
    next ``fit`` builds it from the new step.

    Args:
        model: a compiled Keras model.
        make_step: ``f(base_step) -> train_step(state, data)``.
        trick: a short name, kept as ``model.kerasbert_trick``.

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> install_train_step(model, lambda base: base, "none")
    >>> model.kerasbert_trick
    'none'
    """
    base_step = functools.partial(type(model).train_step, model)
    object.__setattr__(model, "train_step", make_step(base_step))
    object.__setattr__(model, "kerasbert_trick", trick)
    model.train_function = None


def table_gradient_fn(model, slot, state, x, y, sample_weight, training):
    """``f(table) -> d loss / d table``: the gradient of the compiled loss with respect to
    the embedding table alone, the rest of the state held fixed.

    The loss is scaled as the optimizer scales it (float16 loss scaling keeps small
    gradients from flushing to zero in the backward pass), and the gradient unscaled again.

    Args:
        model: the compiled model.
        slot: the table's place in the state (:func:`variable_slot`).
        state: the trainer's state ``(trainable, non_trainable, optimizer, metrics)``.
        x: inputs.
        y: targets.
        sample_weight: sample weights or None.
        training: the forward pass's mode.

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    >>> model.compile("sgd", "mse")
    >>> values = [v.value for v in model.trainable_variables]
    >>> f = table_gradient_fn(model, (0, 0), (values, [], [], []),
    ...                       jnp.ones((1, 1)), jnp.zeros((1, 1)), None, False)
    >>> float(f(jnp.full((1, 1), 3.0))[0, 0])  # d (3 * 1)^2 / d 3
    6.0
    """
    trainable, non_trainable, optimizer_variables, metrics_variables = state
    scale = loss_scale(model, optimizer_variables)

    def loss_of(table):
        tv, ntv = with_value((trainable, non_trainable), slot, table)
        loss, _ = model.compute_loss_and_updates(
            tv, ntv, metrics_variables, x, y, sample_weight, training=training
        )
        return jnp.asarray(loss, "float32") * scale

    def gradient(table):
        return jax.grad(loss_of)(table) / scale

    return gradient
