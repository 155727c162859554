"""bert4keras's optimizer names: the ``extend_with_*`` shims, as one table, and the rest.

bert4keras builds optimizers by stacking ``extend_with_*`` functions over a base class.
Each one here returns a Keras 3 subclass of the class it is given (with the per-variable
options of :class:`~kerasbert.optimizers.options._PerVariableOptions`), registered in
Keras's custom objects, whose constructor takes bert4keras's arguments and passes them on
as Keras's or kerasbert's own. They differ only in data, so they are one table,
``_SHIMS``: for each bert4keras name, the class-name suffix, the argument renamed, set or
defaulted, any further translation, the methods the class gains, or, for the name that is
not provided, the error that names the replacement. The ``_v2`` names of bert4keras's
``tf.keras`` variants are the same functions.

Also here: ``export_to_custom_objects``, and ``AdaFactor*``, which are not provided and
raise :class:`~kerasbert.optimizers.errors.OptimizerError` naming Keras's Adafactor.
``docs/optimizers.md`` maps every bert4keras name to its kerasbert form.
"""

import dataclasses
import inspect

import keras
from keras import ops

from kerasbert.optimizers.errors import OptimizerError
from kerasbert.optimizers.options import _PerVariableOptions
from kerasbert.optimizers.schedules import PiecewiseLinearSchedule

# The module the built classes name (unchanged by the split into a package, so that their
# serialized configs are too).
_MODULE = "kerasbert.optimizers"


@dataclasses.dataclass(frozen=True)
class _Shim:
    """How kerasbert provides one bert4keras ``extend_with_*`` function: a row of ``_SHIMS``.

    Attributes:
        doc: the function's docstring up to its arguments.
        example: the docstring's example (a doctest).
        suffix: the class built from ``Base`` is named ``Base<suffix>`` unless the call
            gives ``name``.
        rename: ``(bert4keras argument, Keras argument, default)``: the bert4keras argument
            is passed on under the Keras name; without it the Keras argument is set to
            ``default`` where it is not given or None (a None default: left alone).
        exclusive: with ``rename``: giving both arguments is an error.
        sets: Keras arguments always set to these values.
        defaults: Keras arguments set to these values where not given.
        translate: any further translation, ``translate(cls, args, kwargs) -> args``
            (changing ``kwargs`` in place).
        methods: a mixin whose methods the class gains.
        missing: for a name kerasbert does not provide: the error message.
    """

    doc: str
    example: str
    suffix: str = ""
    rename: tuple = None
    exclusive: bool = False
    sets: dict = dataclasses.field(default_factory=dict)
    defaults: dict = dataclasses.field(default_factory=dict)
    translate: object = None
    methods: type = None
    missing: str = None

    def arguments(self, cls, args, kwargs):
        """bert4keras's constructor arguments as Keras's: ``kwargs`` is changed in place.

        Args:
            cls: the class being constructed (built by this row).
            args: the positional arguments.
            kwargs: the keyword arguments.

        Returns:
            The positional arguments to pass on.
        """
        if self.rename is not None:
            old, new, default = self.rename
            if old in kwargs:
                if self.exclusive and kwargs.get(new):
                    raise OptimizerError(f"Give {old} or {new}, not both.")
                kwargs[new] = kwargs.pop(old)
            elif default is not None and kwargs.get(new) is None:
                kwargs[new] = default
        kwargs.update(self.sets)
        for key, value in self.defaults.items():
            kwargs.setdefault(key, value)
        return args if self.translate is None else self.translate(cls, args, kwargs)


def _check_base(base, function):
    if not (isinstance(base, type) and issubclass(base, keras.optimizers.Optimizer)):
        raise OptimizerError(
            f"{function}() takes a Keras 3 optimizer class such as keras.optimizers.Adam or "
            f"kerasbert.optimizers.Adam; got {base!r}."
        )


def _extended(function, base, name):
    """The class ``function`` (a ``_SHIMS`` key) builds from ``base``, registered as
    bert4keras's ``export_to_custom_objects`` does."""
    shim = _SHIMS[function]
    if shim.missing is not None:
        raise OptimizerError(shim.missing)
    _check_base(base, function)
    bases = (base,) if issubclass(base, _PerVariableOptions) else (_PerVariableOptions, base)
    if shim.methods is not None and not issubclass(base, shim.methods):
        bases = (shim.methods, *bases)
    name = name or f"{base.__name__}{shim.suffix}"

    def __init__(self, *args, **kwargs):
        args = shim.arguments(cls, args, kwargs)
        super(cls, self).__init__(*args, **kwargs)

    cls = type(name, bases, {"__init__": __init__, "__module__": _MODULE, "__qualname__": name})
    cls.__doc__ = f"{base.__name__} extended by kerasbert.optimizers.{function}()."
    keras.saving.get_custom_objects()[name] = cls
    return cls


def _learning_rate_argument(cls, args, kwargs):
    """Pop the learning rate from a constructor call, or the class's default."""
    if args:
        return args[0], args[1:]
    if "learning_rate" in kwargs:
        return kwargs.pop("learning_rate"), args
    for klass in cls.__mro__:
        parameter = inspect.signature(klass.__init__).parameters.get("learning_rate")
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default, args
    return 0.001, args


def _lr_schedule(cls, args, kwargs):
    """``lr_schedule={step: multiplier}``: the learning rate as a PiecewiseLinearSchedule."""
    lr_schedule = kwargs.pop("lr_schedule", None)
    if lr_schedule is None:
        return args
    learning_rate, args = _learning_rate_argument(cls, args, kwargs)
    if callable(learning_rate):
        raise OptimizerError(
            "lr_schedule multiplies a float learning_rate; got the schedule "
            f"{learning_rate!r} as well. Give one or the other."
        )
    kwargs["learning_rate"] = PiecewiseLinearSchedule(lr_schedule, learning_rate)
    return args


class _EMAWeights:
    """bert4keras's EMA-optimizer methods, over Keras's ``use_ema`` average.

    The model variables are given *copies* of the averages. Keras's own
    ``finalize_variable_values`` assigns the average variable itself, and on JAX that makes
    the model variable and the optimizer's average hold one array; ``predict`` and ``fit``
    donate the model's arrays to their compiled steps, which deleted the average too
    (``Array has been deleted`` in ``save_weights``, ``Buffer has been deleted or donated``
    in the next ``fit``). The backup is a numpy copy on the host, which the model never
    shares either.
    """

    def finalize_variable_values(self, var_list):
        # Keras would overwrite the model with the average when fit ends; bert4keras did not.
        return

    def apply_ema_weights(self, bias_correction=True):
        """Back up the model's weights, then give the model the averaged weights."""
        if not self.built:
            raise OptimizerError(
                "The optimizer has taken no step yet, so it has no weight average; train first."
            )
        variables = self._trainable_variables
        averages = self._model_variables_moving_average
        self._ema_backup = [ops.convert_to_numpy(v) for v in variables]
        for variable, average in zip(variables, averages):
            if average is not None:
                # A new array (on the device), never the average's own.
                variable.assign(ops.copy(average))

    def reset_old_weights(self):
        """Give the model back the weights :meth:`apply_ema_weights` backed up."""
        backup = getattr(self, "_ema_backup", None)
        if backup is None:
            raise OptimizerError("reset_old_weights() needs apply_ema_weights() first.")
        for variable, value in zip(self._trainable_variables, backup):
            variable.assign(value)


# -- the table: bert4keras name -> how kerasbert provides it ----------------------------------

_SHIMS = {
    "extend_with_weight_decay": _Shim(
        suffix="WithWeightDecay",
        rename=("weight_decay_rate", "weight_decay", 0.01),
        doc="""bert4keras's ``extend_with_weight_decay``: an optimizer class with decoupled decay.

        The class takes ``weight_decay_rate`` (default 0.01, Keras's ``weight_decay``) and
        ``exclude_from_weight_decay`` (regexes searched in variable paths, default none).
        kerasbert's own form is ``AdamW`` or any optimizer's ``weight_decay`` argument.""",
        example="""
        >>> from kerasbert.optimizers import Adam
        >>> AdamWD = extend_with_weight_decay(Adam, name="AdamWD")
        >>> AdamWD(weight_decay_rate=0.01, exclude_from_weight_decay=["Norm", "bias"]).weight_decay
        0.01""",
    ),
    "extend_with_piecewise_linear_lr": _Shim(
        suffix="WithPiecewiseLinearLR",
        translate=_lr_schedule,
        doc="""bert4keras's ``extend_with_piecewise_linear_lr``: a class taking ``lr_schedule``.

        ``lr_schedule={step: multiplier}`` turns the ``learning_rate`` argument into
        ``PiecewiseLinearSchedule(lr_schedule, learning_rate)``; without it the learning rate
        is constant (bert4keras's default ``{0: 1}``).""",
        example="""
        >>> from kerasbert.optimizers import Adam
        >>> AdamLR = extend_with_piecewise_linear_lr(Adam, name="AdamLR")
        >>> optimizer = AdamLR(learning_rate=1e-3, lr_schedule={1000: 1, 2000: 0.1})
        >>> round(float(optimizer.learning_rate), 6)  # step 0 of the warmup
        0.0""",
    ),
    "extend_with_gradient_accumulation": _Shim(
        suffix="WithGradientAccumulation",
        rename=("grad_accum_steps", "gradient_accumulation_steps", 2),
        doc="""bert4keras's ``extend_with_gradient_accumulation``: ``grad_accum_steps`` (default 2).

        It is Keras's ``gradient_accumulation_steps``: gradients of ``k`` batches are averaged
        and applied once, so ``k`` batches of ``b`` train like one batch of ``k * b``.""",
        example="""
        >>> from kerasbert.optimizers import Adam
        >>> AdamGA = extend_with_gradient_accumulation(Adam, name="AdamGA")
        >>> AdamGA(grad_accum_steps=4).gradient_accumulation_steps
        4""",
    ),
    "extend_with_layer_adaptation": _Shim(
        suffix="WithLayerAdaptation",
        sets={"layer_adaptation": True},
        doc="""bert4keras's ``extend_with_layer_adaptation`` (LAMB's trust ratio on any optimizer).

        Each variable's step (weight decay included) is rescaled by ``|w| / |step / lr|``
        (1 where either norm is 0); ``exclude_from_layer_adaptation`` (regexes of variable
        paths) opts variables out. ``extend_with_layer_adaptation(extend_with_weight_decay(Adam))``
        is LAMB; ``keras.optimizers.Lamb`` is Keras's own LAMB (its weight decay sits outside
        the ratio).""",
        example="""
        >>> import numpy as np
        >>> SGDLA = extend_with_layer_adaptation(keras.optimizers.SGD, name="SGDLA")
        >>> w = keras.Variable(np.array([3.0, 4.0], "float32"))
        >>> SGDLA(learning_rate=0.1).apply([np.array([1.0, 0.0], "float32")], [w])
        >>> keras.ops.convert_to_numpy(w)  # step of norm lr * |w| = 0.5
        array([2.5, 4. ], dtype=float32)""",
    ),
    "extend_with_lazy_optimization": _Shim(
        suffix="WithLazyOptimization",
        doc="""bert4keras's ``extend_with_lazy_optimization``: ``include_in_lazy_optimization``.

        Variables whose path matches one of the regexes (typically ``["Embedding-Token"]``) keep
        the rows whose gradient is all zero (tokens absent from the batch) unchanged; the
        optimizer's moments still update, as in bert4keras. (Every kerasbert optimizer takes
        the argument; the class adds nothing else.)""",
        example="""
        >>> from kerasbert.optimizers import Adam
        >>> AdamLO = extend_with_lazy_optimization(Adam, name="AdamLO")
        >>> AdamLO(include_in_lazy_optimization=["Embedding-Token"]).lazy_patterns
        ('Embedding-Token',)""",
    ),
    "extend_with_exponential_moving_average": _Shim(
        suffix="WithEMA",
        sets={"use_ema": True},
        defaults={"ema_momentum": 0.999},
        methods=_EMAWeights,
        doc="""bert4keras's ``extend_with_exponential_moving_average``: ``ema_momentum`` (0.999).

        Built on Keras's ``use_ema``: the average is kept in optimizer variables and updated
        inside the compiled train step. The class adds bert4keras's ``apply_ema_weights()`` /
        ``reset_old_weights()``; unlike plain Keras it does not overwrite the model with the
        average when ``fit`` ends (bert4keras did not either). Keras's average starts at the
        first step's weights rather than at zero, so it needs no bias correction; the
        ``bias_correction`` argument is accepted and has nothing to do. On JAX, call these
        methods outside a training step (after ``fit`` or in ``on_epoch_end``), when the
        trainer has synced its state back to the model. :class:`ExponentialMovingAverage` is the
        same as a callback for any optimizer.""",
        example="""
        >>> import numpy as np
        >>> SGDEMA = extend_with_exponential_moving_average(keras.optimizers.SGD, name="SGDEMA")
        >>> optimizer, w = SGDEMA(learning_rate=1.0, ema_momentum=0.5), keras.Variable([0.0])
        >>> for _ in range(2):
        ...     optimizer.apply([np.array([-1.0], "float32")], [w])  # w: 1.0, then 2.0
        >>> optimizer.apply_ema_weights(); float(w[0])  # 0.5 * 1.0 + 0.5 * 2.0
        1.5
        >>> optimizer.reset_old_weights(); float(w[0])
        2.0""",
    ),
    "extend_with_parameter_wise_lr": _Shim(
        suffix="WithParameterWiseLR",
        rename=("paramwise_lr_schedule", "lr_multipliers", None),
        exclusive=True,
        doc="""bert4keras's ``extend_with_parameter_wise_lr``: ``paramwise_lr_schedule``.

        ``paramwise_lr_schedule={substring: factor}`` multiplies the learning rate of every
        variable whose path contains the substring (factors of several matches multiply); it is
        kerasbert's ``lr_multipliers``. :func:`layerwise_lr_multipliers` builds one for layer-wise
        decay.""",
        example="""
        >>> SGDPW = extend_with_parameter_wise_lr(keras.optimizers.SGD, name="SGDPW")
        >>> SGDPW(paramwise_lr_schedule={"Embedding-": 0.1}).lr_multipliers
        (('Embedding-', 0.1),)""",
    ),
    "extend_with_lookahead": _Shim(
        missing=(
            "extend_with_lookahead is not provided by kerasbert: Keras 3 has no Lookahead, and "
            "bert4keras's version starts its slow weights at zero, so its first "
            "synchronisation scales the weights by slow_step_size. Use the base optimizer alone "
            "(for BERT fine-tuning, kerasbert.optimizers.AdamW with PiecewiseLinearSchedule), "
            "optionally with kerasbert.optimizers.ExponentialMovingAverage for smoothed weights."
        ),
        doc="""Not provided: raises :class:`OptimizerError` (see ``docs/optimizers.md``).""",
        example="""
        >>> from kerasbert.optimizers import Adam
        >>> extend_with_lookahead(Adam)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        kerasbert.optimizers.OptimizerError: extend_with_lookahead is not provided...""",
    ),
}


def _shim_function(function):
    """The ``extend_with_*`` function ``_SHIMS[function]`` describes, with its docstring."""
    shim = _SHIMS[function]

    def extend_with(BaseOptimizer, name=None):
        return _extended(function, BaseOptimizer, name)

    if shim.missing is None:
        args = (
            "BaseOptimizer: a Keras 3 optimizer class.\n"
            "    name: the class name (registered in Keras's custom objects)."
        )
    else:
        args = "BaseOptimizer: unused.\n    name: unused."
    doc, example = inspect.cleandoc(shim.doc), inspect.cleandoc(shim.example)
    extend_with.__name__ = extend_with.__qualname__ = function
    extend_with.__doc__ = f"{doc}\n\nArgs:\n    {args}\n\nExample:\n\n{example}\n"
    return extend_with


extend_with_weight_decay = _shim_function("extend_with_weight_decay")
extend_with_piecewise_linear_lr = _shim_function("extend_with_piecewise_linear_lr")
extend_with_gradient_accumulation = _shim_function("extend_with_gradient_accumulation")
extend_with_layer_adaptation = _shim_function("extend_with_layer_adaptation")
extend_with_lazy_optimization = _shim_function("extend_with_lazy_optimization")
extend_with_exponential_moving_average = _shim_function("extend_with_exponential_moving_average")
extend_with_parameter_wise_lr = _shim_function("extend_with_parameter_wise_lr")
extend_with_lookahead = _shim_function("extend_with_lookahead")


# -- bert4keras's other names ---------------------------------------------------------------------


def _not_provided(bert4keras_name, replacement):
    def unavailable(*args, **kwargs):
        raise OptimizerError(
            f"bert4keras's {bert4keras_name} is not provided by kerasbert; use {replacement}."
        )

    unavailable.__name__ = unavailable.__qualname__ = bert4keras_name
    unavailable.__doc__ = (
        f"Not provided: raises :class:`OptimizerError` naming {replacement}.\n\n"
        "Args:\n    *args: unused.\n    **kwargs: unused.\n\n"
        "Example:\n\n"
        f">>> {bert4keras_name}()  # doctest: +ELLIPSIS\n"
        "Traceback (most recent call last):\n...\n"
        f"kerasbert.optimizers.OptimizerError: bert4keras's {bert4keras_name} is not provided...\n"
    )
    return unavailable


_ADAFACTOR = (
    "keras.optimizers.Adafactor (same factored second moment, update clipping and "
    "parameter scaling; it has no beta1 momentum, no min_dim_size_to_factor, and its "
    "relative step is min(learning_rate, 1/sqrt(step)))"
)
AdaFactor = _not_provided("AdaFactor", _ADAFACTOR)
AdaFactorV1 = _not_provided("AdaFactorV1", _ADAFACTOR)
AdaFactorV2 = _not_provided("AdaFactorV2", _ADAFACTOR)
AdaFactorBase = _not_provided("AdaFactorBase", _ADAFACTOR)


def export_to_custom_objects(extend_with):
    """bert4keras's decorator: register the class an ``extend_with_*`` function returns.

    kerasbert's ``extend_with_*`` functions register their classes already; this wraps a
    user's own extender the same way (the wrapped function gains a ``name`` argument).

    Args:
        extend_with: a function taking an optimizer class and returning a new class.

    Example:

    >>> from kerasbert.optimizers import Adam
    >>> def extend_with_nothing(BaseOptimizer):
    ...     return type("Plain", (BaseOptimizer,), {})
    >>> export_to_custom_objects(extend_with_nothing)(Adam, name="PlainAdam").__name__
    'PlainAdam'
    """

    def registered(BaseOptimizer, name=None):
        cls = extend_with(BaseOptimizer)
        if isinstance(name, str):
            cls.__name__ = cls.__qualname__ = name
        keras.saving.get_custom_objects()[cls.__name__] = cls
        return cls

    return registered


# bert4keras's tf.keras variants are the same functions here.
extend_with_weight_decay_v2 = extend_with_weight_decay
extend_with_layer_adaptation_v2 = extend_with_layer_adaptation
extend_with_piecewise_linear_lr_v2 = extend_with_piecewise_linear_lr
extend_with_gradient_accumulation_v2 = extend_with_gradient_accumulation
extend_with_lookahead_v2 = extend_with_lookahead
extend_with_lazy_optimization_v2 = extend_with_lazy_optimization
extend_with_exponential_moving_average_v2 = extend_with_exponential_moving_average
extend_with_parameter_wise_lr_v2 = extend_with_parameter_wise_lr
