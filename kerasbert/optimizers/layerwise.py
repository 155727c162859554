"""Layer-wise learning-rate decay: :func:`layerwise_lr_multipliers`.

The result is a ``{variable path substring: factor}`` dict for any kerasbert optimizer's
``lr_multipliers`` (bert4keras's ``paramwise_lr_schedule``).
"""

import re

from kerasbert.optimizers.errors import OptimizerError
from kerasbert.optimizers.options import _path

_LAYER = re.compile(r"Transformer-(\d+)-")


def layerwise_lr_multipliers(model, decay):
    """Learning-rate factors that decay geometrically from the top transformer layer down.

    With ``L`` transformer layers, layer ``i`` (``Transformer-i-*``) gets ``decay ** (L - i)``,
    the embeddings (``Embedding-*``: token, segment, position, their LayerNorm) get
    ``decay ** (L + 1)``, and everything else (pooler, task heads) keeps 1. Pass the result
    as ``lr_multipliers`` to :class:`AdamW` (or any kerasbert optimizer). Keys are substrings
    of variable paths; ``Transformer-1-`` does not match ``Transformer-11-``.

    Args:
        model: a kerasbert ``keras.Model`` (its layer count is read from variable paths) or
            the number of transformer layers.
        decay: the per-layer factor, in ``(0, 1]``.

    Returns:
        ``{path substring: factor}``.

    Example:

    >>> layerwise_lr_multipliers(2, 0.5)
    {'Embedding-': 0.125, 'Transformer-0-': 0.25, 'Transformer-1-': 0.5}
    """
    if not 0 < decay <= 1:
        raise OptimizerError(f"Layer-wise decay must be in (0, 1]; got {decay!r}.")
    if isinstance(model, int):
        num_layers = model
    else:
        indices = {
            int(match.group(1))
            for variable in model.trainable_variables
            if (match := _LAYER.search(_path(variable)))
        }
        if not indices:
            raise OptimizerError(
                f"Model {model.name!r} has no variables under layers named 'Transformer-<i>-...'"
                " (a shared-layer ALBERT has one block for every layer, so it has no per-layer "
                "rates); pass the number of layers for a kerasbert model, or build "
                "lr_multipliers by hand."
            )
        num_layers = max(indices) + 1
    if num_layers < 1:
        raise OptimizerError(f"The number of layers must be >= 1; got {num_layers!r}.")
    multipliers = {"Embedding-": decay ** (num_layers + 1)}
    for index in range(num_layers):
        multipliers[f"Transformer-{index}-"] = decay ** (num_layers - index)
    return multipliers
