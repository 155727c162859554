"""Gradient penalty on the token embeddings (double backpropagation under JAX)."""

import contextlib
import functools

import jax
import jax.numpy as jnp

from kerasbert.tricks._common import (
    check_trainable_model,
    find_embedding,
    install_train_step,
    lookup_outputs,
    loss_scale,
    tap_output,
)
from kerasbert.tricks.errors import TrickError


@contextlib.contextmanager
def _instance_attribute(obj, name, value):
    had_own = name in vars(obj)
    previous = vars(obj).get(name)
    object.__setattr__(obj, name, value)
    try:
        yield
    finally:
        if had_own:
            object.__setattr__(obj, name, previous)
        else:
            object.__delattr__(obj, name)


def gradient_penalty(model, embedding_name="Embedding-Token", epsilon=1.0):
    """Train ``model`` on loss + 0.5 * epsilon * ||d loss / d token embeddings||².

    Replaces bert4keras's ``loss_with_gradient_penalty`` (with its second-order-safe
    ``sparse_categorical_crossentropy``) from ``examples/task_iflytek_gradient_penalty.py``:
    compile with the plain loss, ``model.compile(loss='sparse_categorical_crossentropy',
    ...)``, then add ``gradient_penalty(model, 'Embedding-Token', epsilon=1)`` (imported
    from ``kerasbert.tricks``).

    The penalty is bert4keras's: there, ``K.gradients(loss, [embeddings])[0].values`` are
    the rows of the gradient of the table's gather, one per looked-up position, i.e. the
    gradient with respect to the embedding layer's *output*; squared and summed over every
    position (padding included) and dimension. So here gp = sum over batch, positions and
    dimensions of (d loss / d e)², e the layer's lookup output (every lookup call if the
    layer is used more than once; kerasbert's tied ``mode="dense"`` use is not a lookup),
    and ``loss`` the compiled loss (its batch mean, with sample weights as Keras applies
    them). The update is the gradient of loss + 0.5 * epsilon * gp with respect to every
    trainable weight, by differentiating through the inner gradient (``jax.grad`` of
    ``jax.grad``), in training mode, the dropout masks shared by both passes.

    The logged ``loss`` includes the penalty, as bert4keras's compiled loss does;
    ``evaluate`` reports the plain loss (bert4keras's evaluation included the penalty).
    Under loss scaling the inner gradient is taken from the scaled loss and unscaled.

    Args:
        model: a compiled Keras model (JAX backend) that contains the embedding layer.
        embedding_name: the embedding layer's name.
        epsilon: the penalty's weight, as bert4keras's ``epsilon``.

    Returns:
        The model (changed in place).

    Raises:
        TrickError: the model is not compiled, or has no layer called ``embedding_name``;
            at the first step, if the forward pass never looks anything up in that layer.

    Example:

    >>> import keras, kerasbert, numpy as np
    >>> from kerasbert.layers import TokenSlice
    >>> bert = kerasbert.build_transformer_model(
    ...     {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16})
    >>> model = keras.Model(bert.inputs, keras.layers.Dense(2, activation="softmax")(
    ...     TokenSlice(0)(bert.output)))
    >>> model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    >>> model = gradient_penalty(model, "Embedding-Token", epsilon=1.0)
    >>> x = [np.array([[2, 5, 3]] * 4), np.zeros((4, 3), "int32")]
    >>> history = model.fit(x, np.array([0, 1, 0, 1]), verbose=0)
    """
    check_trainable_model(model, "gradient_penalty")
    layer, _ = find_embedding(model, embedding_name)
    plain = functools.partial(type(model).compute_loss_and_updates, model)

    def penalized(
        trainable,
        non_trainable,
        metrics_variables,
        x,
        y,
        sample_weight,
        training=False,
        optimizer_variables=None,
    ):
        arguments = (trainable, non_trainable, metrics_variables, x, y, sample_weight)
        if not training:
            return plain(*arguments, training=False, optimizer_variables=optimizer_variables)
        shapes = lookup_outputs(model, layer, trainable, non_trainable, x)
        if not shapes:
            raise TrickError(
                f"gradient_penalty: the forward pass never looks ids up in {layer.name!r}, "
                "so there is no embedding output to penalize; pass the token embedding."
            )
        scale = loss_scale(model, optimizer_variables)

        def loss_with(deltas):
            def add(i, output):
                return (output.astype("float32") + deltas[i]).astype(output.dtype)

            with tap_output(layer, add):
                return plain(*arguments, training=True, optimizer_variables=optimizer_variables)

        zeros = [jnp.zeros(s.shape, "float32") for s in shapes]
        (loss, aux), grads = jax.value_and_grad(loss_with, has_aux=True)(zeros)
        gp = sum(jnp.sum(jnp.square(g / scale)) for g in grads)
        penalty = 0.5 * epsilon * gp
        unscaled_loss, y_pred, non_trainable, metrics_variables = aux
        return loss + scale * penalty, (
            unscaled_loss + penalty,
            y_pred,
            non_trainable,
            metrics_variables,
        )

    def make_step(base_step):
        def train_step(state, data):
            with _instance_attribute(model, "compute_loss_and_updates", penalized):
                return base_step(state, data)

        return train_step

    install_train_step(model, make_step, "gradient_penalty")
    return model
