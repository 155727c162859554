"""Per-variable optimizer options, chosen by variable path, as a mixin for Keras optimizers.

:class:`_PerVariableOptions` gives any Keras 3 optimizer class bert4keras's per-variable
options: weight-decay exclusions, learning-rate multipliers, layer adaptation (LAMB's trust
ratio) and lazy updates of embedding rows. Every kerasbert optimizer (:class:`AdamW`,
:class:`Adam`, :class:`Lion`) and every class a bert4keras ``extend_with_*`` shim builds
inherits it. The options are fixed Python values resolved from variable paths
(``Transformer-0-FeedForward-Norm/gamma``) while the train step is traced, so they cost
nothing under ``jit``. The helpers below check the option values and match paths.
"""

import re

import keras
from keras import ops

from kerasbert.optimizers.errors import OptimizerError


def _path(variable):
    """A variable's path (``layer/.../name``), or its name where it has no path."""
    return getattr(variable, "path", None) or variable.name


def _patterns(patterns, argument):
    """``patterns`` (a string or a sequence of regexes) as a checked tuple of strings."""
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = [patterns]
    checked = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise OptimizerError(
                f"{argument} must be regular expressions (strings); got {pattern!r}."
            )
        try:
            re.compile(pattern)
        except re.error as error:
            raise OptimizerError(
                f"{argument} pattern {pattern!r} is not a valid regular expression: {error}."
            ) from None
        checked.append(pattern)
    return tuple(checked)


def _matches(patterns, variable):
    path = _path(variable)
    return any(re.search(pattern, path) for pattern in patterns)


def _multipliers(multipliers, argument="lr_multipliers"):
    """``{substring: factor}`` (dict or pairs) as a checked tuple of ``(str, float)``."""
    if not multipliers:
        return ()
    items = multipliers.items() if isinstance(multipliers, dict) else multipliers
    checked = []
    for item in items:
        try:
            pattern, factor = item
            factor = float(factor)
        except (TypeError, ValueError):
            raise OptimizerError(
                f"{argument} must map variable-path substrings to numbers, e.g. "
                f"{{'Transformer-0-': 0.5}}; got the entry {item!r}."
            ) from None
        if not isinstance(pattern, str) or factor < 0:
            raise OptimizerError(
                f"{argument} entry {item!r}: the key must be a string and the multiplier >= 0."
            )
        checked.append((pattern, factor))
    return tuple(checked)


class _PerVariableOptions:
    """Mixin adding path-based per-variable options to a Keras optimizer class.

    - ``exclude_from_weight_decay``: regexes searched in the variable path; matching
      variables get no weight decay. Decay is decoupled (``w -= lr * weight_decay * w``, as
      Keras and bert4keras do it) and uses the variable's own learning rate, multiplier
      included.
    - ``lr_multipliers``: ``{substring: factor}``; a variable's learning rate is multiplied
      by the factor of every key its path contains (bert4keras's ``paramwise_lr_schedule``).
    - ``layer_adaptation``: rescale each variable's update to ``|w| / |update / lr|`` times
      itself (LAMB's trust ratio, bert4keras's ``extend_with_layer_adaptation``); the weight
      decay is inside the rescaled update. ``exclude_from_layer_adaptation`` opts out.
    - ``include_in_lazy_optimization``: regexes of variables (embeddings) whose rows with an
      all-zero gradient are left unchanged by the step.
    """

    def __init__(
        self,
        *args,
        exclude_from_weight_decay=None,
        lr_multipliers=None,
        layer_adaptation=False,
        exclude_from_layer_adaptation=None,
        include_in_lazy_optimization=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.weight_decay_exclusions = _patterns(
            exclude_from_weight_decay, "exclude_from_weight_decay"
        )
        self.lr_multipliers = _multipliers(lr_multipliers)
        self.layer_adaptation = bool(layer_adaptation)
        self.layer_adaptation_exclusions = _patterns(
            exclude_from_layer_adaptation, "exclude_from_layer_adaptation"
        )
        self.lazy_patterns = _patterns(include_in_lazy_optimization, "include_in_lazy_optimization")

    def lr_multiplier(self, variable):
        """The factor this optimizer applies to ``variable``'s learning rate.

        Args:
            variable: a model variable.
        """
        path = _path(variable)
        factor = 1.0
        for pattern, value in self.lr_multipliers:
            if pattern in path:
                factor *= value
        return factor

    def uses_weight_decay(self, variable):
        """Whether ``variable`` is decayed: decay is on and no exclusion matches it.

        Both this optimizer's path patterns and Keras's ``exclude_from_weight_decay(var_list,
        var_names)`` method (which matches the short variable name) are honoured.

        Args:
            variable: a model variable.
        """
        if not self.weight_decay:
            return False
        if _matches(self.weight_decay_exclusions, variable):
            return False
        keras_rule = getattr(self, "_use_weight_decay", None)
        return keras_rule(variable) if keras_rule is not None else True

    def _apply_weight_decay(self, variables):
        # Keras decays every variable at the global rate before the update; kerasbert decays
        # in update_step instead, at each variable's own (multiplied) learning rate.
        return

    def update_step(self, gradient, variable, learning_rate):
        factor = self.lr_multiplier(variable)
        if factor != 1.0:
            learning_rate = learning_rate * factor
        adapt = self.layer_adaptation and not _matches(self.layer_adaptation_exclusions, variable)
        lazy = bool(self.lazy_patterns) and _matches(self.lazy_patterns, variable)
        old = ops.convert_to_tensor(variable) if adapt or lazy else None
        if self.uses_weight_decay(variable):
            lr = ops.cast(learning_rate, variable.dtype)
            decay = ops.cast(self.weight_decay, variable.dtype)
            self.assign(variable, variable - variable * decay * lr)
        super().update_step(gradient, variable, learning_rate)
        if adapt:
            delta = ops.convert_to_tensor(variable) - old
            lr = ops.maximum(ops.cast(learning_rate, variable.dtype), keras.config.epsilon())
            weight_norm = ops.sqrt(ops.sum(ops.square(old)))
            update_norm = ops.sqrt(ops.sum(ops.square(delta / lr)))
            ratio = ops.where(
                weight_norm > 0,
                ops.where(update_norm > 0, weight_norm / update_norm, 1.0),
                1.0,
            )
            self.assign(variable, old + delta * ops.cast(ratio, variable.dtype))
        if lazy:
            touched = ops.any(ops.not_equal(gradient, 0), axis=-1, keepdims=True)
            delta = ops.convert_to_tensor(variable) - old
            self.assign(variable, old + delta * ops.cast(touched, variable.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "exclude_from_weight_decay": list(self.weight_decay_exclusions),
                "lr_multipliers": dict(self.lr_multipliers),
                "layer_adaptation": self.layer_adaptation,
                "exclude_from_layer_adaptation": list(self.layer_adaptation_exclusions),
                "include_in_lazy_optimization": list(self.lazy_patterns),
            }
        )
        return config
