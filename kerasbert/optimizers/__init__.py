"""Optimizers for fine-tuning: Keras 3 forms of bert4keras's optimizer toolkit.

kerasbert's own API:

- :class:`AdamW`: ``keras.optimizers.AdamW`` whose weight decay skips LayerNorm weights and
  biases by default, matched on the variable *path* (``Transformer-0-FeedForward-Norm/gamma``);
- :class:`PiecewiseLinearSchedule`: bert4keras's ``lr_schedule`` dicts (warmup / decay) as a
  ``keras.optimizers.schedules.LearningRateSchedule``;
- :func:`layerwise_lr_multipliers`: layer-wise learning-rate decay, passed to any kerasbert
  optimizer as ``lr_multipliers``;
- :class:`ExponentialMovingAverage`: a callback keeping an EMA of the weights, with
  bert4keras's ``apply_ema_weights()`` / ``reset_old_weights()``;
- gradient accumulation is Keras's own ``gradient_accumulation_steps=k`` argument.

bert4keras's names (``Adam``, ``extend_with_weight_decay``, ``extend_with_piecewise_linear_lr``,
``extend_with_gradient_accumulation``, ...) are provided too: each ``extend_with_*`` returns a
Keras 3 optimizer class taking bert4keras's constructor arguments. ``docs/optimizers.md`` maps
every bert4keras name to its kerasbert form; the few not provided raise
:class:`OptimizerError` naming the replacement.

Per-variable options (weight-decay exclusions, learning-rate multipliers, layer adaptation,
lazy updates) are fixed Python values resolved from variable paths while the train step is
traced, so they cost nothing under ``jit``.

Where each name lives (all are importable from ``kerasbert.optimizers``):

- :mod:`~kerasbert.optimizers.errors`: ``OptimizerError``;
- :mod:`~kerasbert.optimizers.options`: the per-variable options every kerasbert optimizer
  class inherits (``_PerVariableOptions``);
- :mod:`~kerasbert.optimizers.adam`: ``AdamW``, ``Adam``;
- :mod:`~kerasbert.optimizers.lion`: ``Lion`` (= ``LionV2``);
- :mod:`~kerasbert.optimizers.schedules`: ``PiecewiseLinearSchedule``;
- :mod:`~kerasbert.optimizers.layerwise`: ``layerwise_lr_multipliers``;
- :mod:`~kerasbert.optimizers.ema`: ``ExponentialMovingAverage``;
- :mod:`~kerasbert.optimizers.bert4keras`: the ``extend_with_*`` functions (one table of
  what each sets) and their ``_v2`` names, ``export_to_custom_objects``, ``AdaFactor*``.
"""

from kerasbert.errors import KerasBertError as KerasBertError
from kerasbert.optimizers.adam import Adam, AdamW
from kerasbert.optimizers.bert4keras import (
    AdaFactor,
    AdaFactorBase,
    AdaFactorV1,
    AdaFactorV2,
    export_to_custom_objects,
    extend_with_exponential_moving_average,
    extend_with_exponential_moving_average_v2,
    extend_with_gradient_accumulation,
    extend_with_gradient_accumulation_v2,
    extend_with_layer_adaptation,
    extend_with_layer_adaptation_v2,
    extend_with_lazy_optimization,
    extend_with_lazy_optimization_v2,
    extend_with_lookahead,
    extend_with_lookahead_v2,
    extend_with_parameter_wise_lr,
    extend_with_parameter_wise_lr_v2,
    extend_with_piecewise_linear_lr,
    extend_with_piecewise_linear_lr_v2,
    extend_with_weight_decay,
    extend_with_weight_decay_v2,
)
from kerasbert.optimizers.ema import ExponentialMovingAverage
from kerasbert.optimizers.errors import OptimizerError
from kerasbert.optimizers.layerwise import layerwise_lr_multipliers
from kerasbert.optimizers.lion import Lion, LionV2
from kerasbert.optimizers.schedules import PiecewiseLinearSchedule

__all__ = [
    "AdaFactor",
    "AdaFactorBase",
    "AdaFactorV1",
    "AdaFactorV2",
    "Adam",
    "AdamW",
    "ExponentialMovingAverage",
    "Lion",
    "LionV2",
    "OptimizerError",
    "PiecewiseLinearSchedule",
    "export_to_custom_objects",
    "extend_with_exponential_moving_average",
    "extend_with_exponential_moving_average_v2",
    "extend_with_gradient_accumulation",
    "extend_with_gradient_accumulation_v2",
    "extend_with_layer_adaptation",
    "extend_with_layer_adaptation_v2",
    "extend_with_lazy_optimization",
    "extend_with_lazy_optimization_v2",
    "extend_with_lookahead",
    "extend_with_lookahead_v2",
    "extend_with_parameter_wise_lr",
    "extend_with_parameter_wise_lr_v2",
    "extend_with_piecewise_linear_lr",
    "extend_with_piecewise_linear_lr_v2",
    "extend_with_weight_decay",
    "extend_with_weight_decay_v2",
    "layerwise_lr_multipliers",
]
