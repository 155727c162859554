"""Multi-label losses for logits: Su Jianlin's multilabel categorical crossentropy.

For one example with logits ``s`` and a set of positive classes ``P`` (the rest ``N``) the
loss is ``log(1 + Σ_{i∈N} exp(s_i)) + log(1 + Σ_{j∈P} exp(-s_j))``
(https://kexue.fm/archives/7359): it pushes positives above 0 and negatives below it, so
``s > 0`` is the prediction rule. Logits are unbounded: no sigmoid or softmax before them.
A logit of ``-inf`` takes part in neither sum (a masked class).

Every function returns one value per example (the leading axes), so it works as a Keras
``loss`` with sample weights; the functions are registered for model saving.
"""

import keras
from keras import ops

_EPSILON = 1e-7


def _float(x):
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) in ("float32", "float64"):
        return x
    return ops.cast(x, "float32")


def _append_zero(x):
    return ops.concatenate([x, ops.zeros_like(x[..., :1])], axis=-1)


@keras.saving.register_keras_serializable(package="kerasbert")
def multilabel_categorical_crossentropy(y_true, y_pred):
    """Multi-label crossentropy over the last axis, labels given as a dense 0/1 tensor.

    Computed as ``logsumexp([s_N, 0]) + logsumexp([-s_P, 0])``, stable for any logits.
    Soft labels in ``[0, 1]`` weight each class's terms by ``y`` and ``1 - y``.

    Args:
        y_true: ``(..., num_classes)`` with 1 for the positive classes and 0 elsewhere.
        y_pred: ``(..., num_classes)`` logits.

    Returns:
        The loss, shape ``y_pred.shape[:-1]``.

    Example:

    >>> loss = multilabel_categorical_crossentropy([[1.0, 0.0, 0.0]], [[2.0, -1.0, 0.0]])
    >>> round(float(loss[0]), 4)  # log(1 + e**-1 + e**0) + log(1 + e**-2)
    0.9889
    """
    y_pred = _float(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    active = ops.not_equal(y_pred, float("-inf"))
    neg_inf = ops.full_like(y_pred, float("-inf"))
    # log(0) = -inf removes the positives from the negative sum and vice versa.
    negatives = ops.where(active, y_pred, neg_inf) + ops.log(1.0 - y_true)
    positives = ops.where(active, -y_pred, neg_inf) + ops.log(y_true)
    return ops.logsumexp(_append_zero(negatives), axis=-1) + ops.logsumexp(
        _append_zero(positives), axis=-1
    )


@keras.saving.register_keras_serializable(package="kerasbert")
def sparse_multilabel_categorical_crossentropy(y_true, y_pred, mask_zero=False):
    """:func:`multilabel_categorical_crossentropy` with the positives given as class indices.

    Useful when there are many classes and few positives (GlobalPointer's ``seq_len**2``
    spans). The negative term is ``log(1 + Σ_all exp(s) - Σ_P exp(s))``, evaluated as
    ``lse_all + log(1 - exp(lse_P - lse_all))`` with the second factor clipped to
    ``[1e-7, 1]``, which keeps it finite when the positives dominate.

    Args:
        y_true: ``(..., num_positives)`` integer class indices; each index counts once
            per occurrence, so pad only with ``mask_zero``.
        y_pred: ``(..., num_classes)`` logits, the same leading shape as ``y_true``.
        mask_zero: index 0 is padding, not a class (class 0 is then never scored, in either
            sum), so rows with fewer positives can be padded with 0.

    Returns:
        The loss, shape ``y_pred.shape[:-1]``.

    Example:

    >>> loss = sparse_multilabel_categorical_crossentropy([[0]], [[2.0, -1.0, 0.0]])
    >>> round(float(loss[0]), 4)
    0.9889
    """
    y_pred = _float(y_pred)
    indices = ops.cast(y_true, "int32")
    logits = _append_zero(y_pred)  # the appended 0 is the "1 +" inside both logs
    if mask_zero:
        inf = ops.full_like(logits[..., :1], float("inf"))
        # +inf at the padding index: -inf in the positive sum, so it drops out.
        positive = ops.take_along_axis(ops.concatenate([inf, logits[..., 1:]], -1), indices, -1)
        logits = ops.concatenate([-inf, logits[..., 1:]], axis=-1)
    else:
        positive = ops.take_along_axis(logits, indices, axis=-1)
    pos_loss = ops.logsumexp(_append_zero(-positive), axis=-1)
    if mask_zero:
        positive = ops.take_along_axis(logits, indices, axis=-1)  # padding now -inf
    all_loss = ops.logsumexp(logits, axis=-1)
    positive_share = ops.exp(ops.logsumexp(positive, axis=-1) - all_loss)
    neg_loss = all_loss + ops.log(ops.clip(1.0 - positive_share, _EPSILON, 1.0))
    return pos_loss + neg_loss


@keras.saving.register_keras_serializable(package="kerasbert")
def global_pointer_crossentropy(y_true, y_pred):
    """Multi-label crossentropy of GlobalPointer scores, averaged over the span types.

    Each type's ``seq_len * seq_len`` spans are one multi-label problem; masked spans
    (large negative scores) contribute nothing.

    Args:
        y_true: ``(batch, heads, seq_len, seq_len)``, 1 where span ``(start, end)`` is an
            entity of that type.
        y_pred: the GlobalPointer's scores, same shape.

    Returns:
        The loss per example, shape ``(batch,)``.

    Example:

    >>> import numpy as np
    >>> y_true = np.zeros((2, 3, 4, 4), "float32"); y_true[0, 1, 0, 2] = 1
    >>> global_pointer_crossentropy(y_true, np.zeros((2, 3, 4, 4), "float32")).shape
    (2,)
    """
    y_pred = _float(y_pred)
    batch, heads = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
    y_pred = ops.reshape(y_pred, (batch, heads, -1))
    y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), (batch, heads, -1))
    return ops.mean(multilabel_categorical_crossentropy(y_true, y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="kerasbert")
def sparse_global_pointer_crossentropy(y_true, y_pred, mask_zero=True):
    """:func:`global_pointer_crossentropy` with the entities given as (start, end) pairs.

    Args:
        y_true: ``(batch, heads, max_entities, 2)`` integer ``(start, end)`` pairs; with
            ``mask_zero`` (the default) the pair ``(0, 0)`` is padding, which is safe since
            position 0 is [CLS].
        y_pred: the GlobalPointer's scores ``(batch, heads, seq_len, seq_len)``.
        mask_zero: treat ``(0, 0)`` as padding.

    Returns:
        The loss per example, shape ``(batch,)``; equal to the dense version on the same
        entities.

    Example:

    >>> import numpy as np
    >>> spans = np.array([[[[1, 2], [0, 0]]]])  # one type, one entity, one padding pair
    >>> sparse_global_pointer_crossentropy(spans, np.zeros((1, 1, 4, 4), "float32")).shape
    (1,)
    """
    y_pred = _float(y_pred)
    shape = ops.shape(y_pred)
    spans = ops.cast(y_true, "int32")
    indices = spans[..., 0] * shape[-1] + spans[..., 1]
    y_pred = ops.reshape(y_pred, (shape[0], shape[1], -1))
    loss = sparse_multilabel_categorical_crossentropy(indices, y_pred, mask_zero=mask_zero)
    return ops.mean(loss, axis=-1)
