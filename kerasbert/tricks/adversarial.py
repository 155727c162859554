"""Adversarial training on the embedding table: FGM and virtual adversarial training."""

import contextlib

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import StatelessScope
from keras.utils import unpack_x_y_sample_weight

from kerasbert.tricks._common import (
    check_trainable_model,
    find_embedding,
    inference,
    install_train_step,
    l2_normalize,
    state_value,
    table_gradient_fn,
    variable_slot,
    with_value,
)
from kerasbert.tricks.errors import TrickError


def _shift(state, slot, delta):
    return with_value(state, slot, state_value(state, slot) + delta)


def adversarial_training(model, embedding_name="Embedding-Token", epsilon=1.0):
    """Train ``model`` with FGM adversarial training on its token-embedding table.

    Replaces bert4keras's ``adversarial_training`` from
    ``examples/task_iflytek_adversarial_training.py`` (the function a script defines by
    hand with ``K.gradients`` / ``K.function`` / ``model.train_function``): delete that
    definition and write ``from kerasbert.tricks import adversarial_training``; the call
    ``adversarial_training(model, 'Embedding-Token', 0.5)`` stays as it is.

    Each training step (``model.fit``, ``train_on_batch``), with E the table:

    1. g = d loss / d E at the current weights, in inference mode (no dropout), as
       bert4keras's ``K.function`` computes it (it is not fed the learning phase);
    2. delta = epsilon * g / (||g|| + 1e-8), ||.|| the norm of the whole table;
    3. the model's own train step runs at E + delta: forward pass (with dropout), gradients
       of every trainable weight there, and the optimizer's update applied to them;
    4. delta is subtracted from the updated table, so E ends as E - update(grads at E +
       delta): saved weights never contain the perturbation.

    The logged loss and metrics are those of step 3, at the perturbed table, as bert4keras
    reports them. Under loss scaling (``mixed_float16``) g is taken from the scaled loss and
    unscaled; a step whose g is not finite uses delta = 0. The trick lives on the model
    instance (its ``train_step``), survives repeated ``fit`` calls and recompiling, and is
    replaced by installing another trick.

    Args:
        model: a compiled Keras model (JAX backend) that contains the embedding layer,
            perhaps inside a nested model.
        embedding_name: the embedding layer's name.
        epsilon: the norm of the perturbation of the whole table.

    Returns:
        The model (changed in place).

    Raises:
        TrickError: the model is not compiled, or has no layer called ``embedding_name``
            (the message lists the embedding-like layers it has).

    Example:

    >>> import keras, kerasbert, numpy as np
    >>> from kerasbert.layers import TokenSlice
    >>> bert = kerasbert.build_transformer_model(
    ...     {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16})
    >>> model = keras.Model(bert.inputs, keras.layers.Dense(2, activation="softmax")(
    ...     TokenSlice(0)(bert.output)))
    >>> model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    >>> model = adversarial_training(model, "Embedding-Token", epsilon=0.5)
    >>> x = [np.array([[2, 5, 3]] * 4), np.zeros((4, 3), "int32")]
    >>> history = model.fit(x, np.array([0, 1, 0, 1]), verbose=0)
    >>> model.kerasbert_trick
    'adversarial_training'
    """
    check_trainable_model(model, "adversarial_training")
    _, table = find_embedding(model, embedding_name)

    def make_step(base_step):
        def train_step(state, data):
            x, y, sample_weight = unpack_x_y_sample_weight(data)
            slot = variable_slot(model, table)
            gradient = table_gradient_fn(model, slot, state, x, y, sample_weight, False)
            delta = l2_normalize(gradient(state_value(state, slot)), epsilon)
            logs, state = base_step(_shift(state, slot, delta), data)
            return logs, _shift(state, slot, -delta)

        return train_step

    install_train_step(model, make_step, "adversarial_training")
    return model


def _iterations(model, optimizer_variables):
    optimizer = model.optimizer
    counter = getattr(optimizer, "inner_optimizer", optimizer)._iterations
    mapping = list(zip(optimizer.variables, optimizer_variables))
    with StatelessScope(state_mapping=mapping):
        return jnp.asarray(counter.value, "uint32")


def _build_compiled_state(model):
    """Build the compiled loss and metrics from the model's own output spec, so that
    ``fit(x)`` without targets works: Keras builds them from the first batch's ``y``."""
    inputs = getattr(model, "_inputs_struct", None)
    if inputs is None:  # not a functional model: fit needs (dummy) targets
        return
    # An optional convenience: if the model cannot be traced this way, fit with dummy
    # targets (as the bert4keras script does) still works.
    with contextlib.suppress(Exception):
        x = keras.tree.map_structure(
            lambda t: keras.KerasTensor(tuple(d or 2 for d in t.shape), t.dtype), inputs
        )
        model._symbolic_build(data_batch=(x, model.compute_output_spec(x)))


def virtual_adversarial_training(
    model, embedding_name="Embedding-Token", epsilon=1.0, xi=10.0, iters=1, seed=None
):
    """Train ``model`` by virtual adversarial training (VAT) on its token-embedding table.

    Replaces bert4keras's ``virtual_adversarial_training`` from
    ``examples/task_sentiment_virtual_adversarial_training.py``: delete the hand-written
    definition and write ``from kerasbert.tricks import virtual_adversarial_training``;
    ``virtual_adversarial_training(model_vat, 'Embedding-Token')`` stays as it is, with
    bert4keras's defaults ``epsilon=1, xi=10, iters=1``.

    The model's targets are ignored (unlabeled data: ``fit(x)``, or any dummy labels as
    the bert4keras script feeds). Each training step, with E the table and p(E) the
    model's output:

    1. p0 = p(E) in inference mode (no dropout), held constant: the targets;
    2. d ~ N(0, 1) of E's shape; ``iters`` times: d = xi * d / (||d|| + 1e-8), then d =
       d loss(p0, p(E + d)) / d (E + d), in inference mode, ``loss`` the compiled one
       (bert4keras compiles ``'kld'``, KL(p0 || p));
    3. r = epsilon * d / (||d|| + 1e-8), ||.|| the norm of the whole table;
    4. the model's own train step runs on (x, p0) at E + r (with dropout); r is removed
       from the updated table afterwards.

    It is the embedding *table* (vocab x hidden) that is perturbed, as in bert4keras, not
    the embedding output. The logged loss and metrics are against p0 at the perturbed
    table. The noise is drawn from ``seed`` folded with the optimizer's step counter, so
    steps differ and runs repeat; ``seed=None`` draws the seed from numpy's global RNG once
    (``keras.utils.set_random_seed`` fixes it).

    bert4keras's semi-supervised recipe trains two models sharing the layers: ``model`` on
    labeled batches with ``fit``, and ``model_vat`` (this trick) with ``train_on_batch``
    on an unlabeled batch in a callback's ``on_batch_end``. On JAX, ``fit`` keeps the
    weights off the variables in mid-epoch; ``kerasbert.backend`` (imported by any
    bert4keras-style script) writes them back before ``model_vat.train_on_batch(...)``
    runs, and ``fit`` keeps its update. Without that import, read ``self.model`` in the
    callback (which writes them back) first, or ``train_on_batch`` finds the variables
    emptied.

    Args:
        model: a compiled Keras model (JAX backend) that contains the embedding layer.
        embedding_name: the embedding layer's name.
        epsilon: the norm of the adversarial perturbation r.
        xi: the norm of the probe perturbation in the power iteration.
        iters: power iterations (0: r is random noise of norm epsilon).
        seed: an int, or None (see above).

    Returns:
        The model (changed in place).

    Raises:
        TrickError: the model is not compiled, has no layer called ``embedding_name``, or
            ``iters`` is not a non-negative int.

    Example:

    >>> import keras, kerasbert, numpy as np
    >>> from kerasbert.layers import TokenSlice
    >>> bert = kerasbert.build_transformer_model(
    ...     {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16})
    >>> model = keras.Model(bert.inputs, keras.layers.Dense(2, activation="softmax")(
    ...     TokenSlice(0)(bert.output)))
    >>> model.compile(keras.optimizers.SGD(0.1), "kld")
    >>> model = virtual_adversarial_training(model, "Embedding-Token", seed=0)
    >>> x = [np.array([[2, 5, 3]] * 4), np.zeros((4, 3), "int32")]
    >>> history = model.fit(x, np.zeros((4, 2)), verbose=0)  # the labels are ignored
    """
    check_trainable_model(model, "virtual_adversarial_training")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 0:
        raise TrickError(f"iters must be a non-negative int (power iterations), got {iters!r}.")
    _, table = find_embedding(model, embedding_name)
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    key = jax.random.PRNGKey(seed)

    def make_step(base_step):
        def train_step(state, data):
            x, _, sample_weight = unpack_x_y_sample_weight(data)
            trainable, non_trainable, optimizer_variables, _ = state
            targets, _ = model.stateless_call(trainable, non_trainable, x, **inference(model))
            targets = jax.tree_util.tree_map(jax.lax.stop_gradient, targets)
            slot = variable_slot(model, table)
            gradient = table_gradient_fn(model, slot, state, x, targets, sample_weight, False)
            embeddings = state_value(state, slot)
            step_key = jax.random.fold_in(key, _iterations(model, optimizer_variables))
            d = jax.random.normal(step_key, embeddings.shape, "float32")
            for _ in range(int(iters)):
                d = l2_normalize(d, xi)
                d = gradient(embeddings + d)
            r = l2_normalize(d, epsilon)
            data = (x, targets) if sample_weight is None else (x, targets, sample_weight)
            logs, state = base_step(_shift(state, slot, r), data)
            return logs, _shift(state, slot, -r)

        return train_step

    install_train_step(model, make_step, "virtual_adversarial_training")
    _build_compiled_state(model)
    return model
