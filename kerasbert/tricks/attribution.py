"""Integrated gradients over the token embeddings: which input tokens a prediction rests on."""

import jax
import jax.numpy as jnp
import numpy as np

from kerasbert.tricks._common import find_embedding, inference, tap_output
from kerasbert.tricks.errors import TrickError

_REDUCTIONS = ("norm", "max_abs", "sum", None)
_WEIGHTINGS = ("input", "path")


def _as_arrays(inputs):
    if isinstance(inputs, dict):
        return {k: np.asarray(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [np.asarray(v) for v in inputs]
    return np.asarray(inputs)


def _class_scores(outputs, labels):
    if isinstance(outputs, (list, tuple, dict)) or outputs.ndim != 2:
        raise TrickError(
            "integrated_gradients: a class index needs a model with one output of shape "
            "(batch, classes); pass target=f(outputs) -> (batch,) scores instead."
        )
    return jnp.take_along_axis(outputs, labels[:, None], axis=1)[:, 0]


def _attribution_fn(model, layer, steps, weighting, target):
    def scores(outputs, labels):
        values = target(outputs) if callable(target) else _class_scores(outputs, labels)
        return jnp.asarray(values, "float32")

    def compute(trainable, non_trainable, x, labels):
        def forward(alpha, deltas=None, record=None):
            def path_point(i, output):
                if record is not None:
                    record.append(output)
                    return output
                point = alpha * output.astype("float32") + deltas[i]
                return point.astype(output.dtype)

            with tap_output(layer, path_point):
                outputs, _ = model.stateless_call(trainable, non_trainable, x, **inference(model))
            return outputs

        # The input's own lookup output e, and the prediction at the input.
        recorded = []
        outputs = forward(1.0, record=recorded)
        if len(recorded) != 1:
            raise TrickError(
                f"integrated_gradients: {layer.name!r} looks ids up {len(recorded)} times "
                "in one forward pass; attributions need exactly one lookup."
            )
        embedded = recorded[0].astype("float32")
        zeros = [jnp.zeros_like(embedded)]
        if not callable(target) and labels is None:
            labels = jnp.argmax(outputs, axis=-1).astype("int32")
        at_input = scores(outputs, labels)
        at_baseline = scores(forward(0.0, zeros), labels)

        def gradient_at(alpha):
            def total(deltas):
                return jnp.sum(scores(forward(alpha, deltas), labels))

            grad = jax.grad(total)(zeros)[0]
            return grad * alpha if weighting == "path" else grad

        alphas = jnp.linspace(0.0, 1.0, steps)
        mean_grad = jnp.mean(jax.lax.map(gradient_at, alphas), axis=0)
        return embedded * mean_grad, at_input, at_baseline

    return jax.jit(compute)


def integrated_gradients(
    model,
    inputs,
    target=None,
    embedding_name="Embedding-Token",
    steps=20,
    weighting="input",
    reduce="norm",
    normalize=False,
    return_scores=False,
):
    """Per-token integrated-gradients attributions of a prediction, from a zero baseline.

    Replaces the analysis of bert4keras's ``examples/task_sentiment_integrated_gradients.py``
    (its ``Gradient`` layer, ``grad_model`` and the loop setting the table to
    ``alpha * values``): ``scores = integrated_gradients(model, [[token_ids],
    [segment_ids]])[0]`` gives the script's first ``scores`` before its min-max rescaling
    (``normalize=True`` applies that too; ``reduce="max_abs"`` gives its second).

    With e the ``embedding_name`` layer's lookup output for ``inputs`` (the token
    embeddings, before segment and position embeddings are added) and f the target (by
    default the predicted class's probability), the path runs from e = 0 to e, as the
    script's scaling of the table does; alpha_i = i / (steps - 1), i = 0 .. steps - 1:

    - ``weighting="input"``: A = e * mean_i grad f(alpha_i e), the integrated gradients
      of Sundararajan et al.; sum(A) approaches f(e) - f(0) (completeness) as steps grow.
    - ``weighting="path"``: A = mean_i (alpha_i e) * grad f(alpha_i e), what the script
      computes (it multiplies each gradient by the *current* input alpha_i e); sum(A) is
      then not f(e) - f(0): half of it where f is linear in e, 72% on the tests' tiny model.

    One jitted function (cached per model and options) runs the forward and backward passes
    in inference mode, with the current weights; the weights are not changed.

    Args:
        model: a Keras model (JAX backend) containing the embedding layer, e.g. a kerasbert
            classifier with a softmax output.
        inputs: the model's inputs for a batch: ``[token_ids, segment_ids]`` arrays of
            shape (batch, seq_len), as for ``model.predict``.
        target: None (each sample's predicted class), a class index, one index per sample,
            or ``f(outputs) -> (batch,)`` scores written with ``jax.numpy``/``keras.ops``.
        embedding_name: the embedding layer's name.
        steps: points on the path (the script uses 20); at least 2.
        weighting: ``"input"`` or ``"path"`` (see above).
        reduce: how A (batch, seq_len, hidden) becomes per-token scores: ``"norm"`` (L2 over
            the hidden axis, the script's first), ``"max_abs"`` (its second), ``"sum"``
            (signed; the token's share of f(e) - f(0)), or None (return A itself).
        normalize: rescale each sample's scores to [0, 1] (min-max over its positions, the
            script's display rescaling); needs a ``reduce``.
        return_scores: also return f(e) and f(0), each of shape (batch,).

    Returns:
        float32 numpy scores of shape (batch, seq_len) (or A, (batch, seq_len, hidden),
        for ``reduce=None``); with ``return_scores``, ``(scores, f_input, f_baseline)``.

    Raises:
        TrickError: no layer called ``embedding_name``, a bad option, or a class index with
            a model whose output is not (batch, classes).

    Example:

    >>> import keras, kerasbert, numpy as np
    >>> from kerasbert.layers import TokenSlice
    >>> bert = kerasbert.build_transformer_model(
    ...     {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
    ...      "num_attention_heads": 2, "intermediate_size": 16})
    >>> model = keras.Model(bert.inputs, keras.layers.Dense(2, activation="softmax")(
    ...     TokenSlice(0)(bert.output)))
    >>> x = [np.array([[1, 5, 7, 2]]), np.zeros((1, 4), "int32")]
    >>> a, f_x, f_0 = integrated_gradients(model, x, target=0, reduce="sum", steps=64,
    ...                                    return_scores=True)
    >>> a.shape, bool(abs(a.sum() - (f_x - f_0)[0]) < 1e-2)
    ((1, 4), True)
    """
    layer, _ = find_embedding(model, embedding_name)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise TrickError(f"steps must be an int >= 2 (points on the path), got {steps!r}.")
    if weighting not in _WEIGHTINGS:
        raise TrickError(f"weighting must be one of {_WEIGHTINGS}, got {weighting!r}.")
    if reduce not in _REDUCTIONS:
        raise TrickError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}.")
    if normalize and reduce is None:
        raise TrickError("normalize=True rescales per-token scores; give a reduce as well.")
    x = _as_arrays(inputs)
    first = next(iter(x.values())) if isinstance(x, dict) else x[0] if isinstance(x, list) else x
    batch = first.shape[0]
    labels = None
    if target is not None and not callable(target):
        labels = np.broadcast_to(np.asarray(target, "int32"), (batch,)).copy()

    key = (layer, int(steps), weighting, target if callable(target) else None)
    per_model = vars(model).get("_kerasbert_attribution_cache")
    if per_model is None:
        per_model = {}
        object.__setattr__(model, "_kerasbert_attribution_cache", per_model)
    if key not in per_model:
        per_model[key] = _attribution_fn(model, layer, int(steps), weighting, key[3])
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    attributions, at_input, at_baseline = per_model[key](trainable, non_trainable, x, labels)
    attributions = np.asarray(attributions, "float32")
    if reduce == "norm":
        attributions = np.sqrt(np.sum(np.square(attributions), axis=-1))
    elif reduce == "max_abs":
        attributions = np.max(np.abs(attributions), axis=-1)
    elif reduce == "sum":
        attributions = np.sum(attributions, axis=-1)
    if normalize:
        low = attributions.min(axis=1, keepdims=True)
        span = attributions.max(axis=1, keepdims=True) - low
        attributions = (attributions - low) / np.where(span > 0, span, 1.0)
    if return_scores:
        return attributions, np.asarray(at_input, "float32"), np.asarray(at_baseline, "float32")
    return attributions
