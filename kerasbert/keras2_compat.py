"""Five Keras 2 behaviours of ``keras.Model`` that bert4keras scripts rely on, on Keras 3.

:func:`install` wraps nine methods of ``keras.Model`` once per process, so they apply to
every model: kerasbert's, one built with ``kerasbert.backend.keras.models.Model`` and one
built with ``from keras.models import Model`` (``compile`` is wrapped on Keras's
``Trainer``, the class ``keras.Model`` inherits it from). ``import kerasbert.backend``
(where bert4keras scripts get ``keras`` and ``K``) installs it; ``import kerasbert`` and
``import kerasbert.models`` do not, so code that never imports the bert4keras names sees
Keras 3 unchanged. The first two wrappers only change calls that Keras 3 rejects; the
third changes what ``fit`` trains only for a model whose layers' ``trainable`` flags
changed after its ``compile``. Every other call reaches Keras's method with its arguments
untouched. The wrappers keep the wrapped methods' names, docstrings and signatures
(``functools.wraps``).

1. ``save_weights`` / ``load_weights`` with bert4keras's file names. Keras 3 writes
   weights only to names ending in ``.weights.h5`` and raises ``ValueError`` for
   ``model.save_weights("best_model.weights")``, the name bert4keras's examples use.
   Under this patch such a name is saved to ``best_model.weights.h5`` instead
   (:func:`weights_path`), and ``load_weights("best_model.weights")`` reads that file
   when ``best_model.weights`` itself is not one Keras can read. A ``UserWarning`` names
   the file used, once per process for saving and once for loading. Names Keras accepts
   (``*.weights.h5``; ``*.keras``, legacy ``*.h5`` and ``*.weights.json`` for loading;
   sharded saves with ``max_shard_size``) behave exactly as before.
2. Python lists as data. ``model.predict([[token_ids], [segment_ids]])`` gave Keras 2
   one array per model input (it called ``numpy.asarray`` on each, and gave a 1-D result
   a trailing axis, ``(n,)`` -> ``(n, 1)``); Keras 3 raises ``ValueError: Unrecognized
   data type``. ``fit`` (``x``, ``y`` and ``validation_data``), ``evaluate``, ``predict``,
   ``train_on_batch``, ``test_on_batch`` and ``predict_on_batch`` convert Python lists
   and tuples of numbers, or of such lists, the same way (:func:`to_keras2_arrays`).
   Numpy arrays, tensors, dicts, generators, ``PyDataset`` s and lists of arrays pass
   through untouched.
3. ``trainable`` as it was at ``compile``. Keras 2 collected a model's trainable weights
   when it compiled, so a script could compile a model, then freeze some of its layers
   for another model that shares them, and still train the first model in full:
   BERT-of-Theseus compiles its predecessor and successor models, freezes the
   predecessor and the classifier for the theseus model, and then trains all three. Keras
   3 (on JAX) reads the flags when ``fit`` starts, so that predecessor would train
   nothing. ``compile`` records every layer's flag (:func:`compiled_trainable`), and
   ``fit`` / ``train_on_batch`` run with the recorded flags and put the others back
   afterwards (a flag a callback changed during ``fit`` stays as the callback set it).
   Flags that did not change since ``compile`` are left alone, and a model compiled again
   records its flags again, as in Keras 2 and as Keras 3's ``compile`` documents.
4. The weights of a model ``fit`` is training, for every other call. Keras 2 trained the
   variables themselves; Keras 3 on JAX keeps the weights in its trainer during an epoch
   and empties the variables until the epoch ends (or a callback reads ``self.model``).
   bert4keras's semi-supervised VAT trains a second model sharing the layers,
   ``model_vat.train_on_batch(...)`` in a callback's ``on_batch_end``; on Keras 3 that
   call read the emptied variables (``TypeError: 'NoneType' object is not callable``).
   While a ``fit`` runs, ``fit``, ``evaluate``, ``predict`` and the ``*_on_batch``
   methods, of any model, first write the running fits' weights back to the variables
   (:func:`sync_running_fits`); the fit then reads the variables again at its next step,
   so what the call changed is kept. Outside a ``fit`` nothing changes.
5. ``predict`` is silent unless ``verbose`` is passed, as in Keras 2 (Keras 3 prints a
   progress bar per call, pages of them in bert4keras's per-batch evaluation loops).
"""

import functools
import inspect
import numbers
import os
import warnings

import keras
import numpy as np

from kerasbert.errors import CheckpointError

_MARK = "_kerasbert_keras2_compat"
_DATA_ARGUMENTS = {
    "fit": ("x", "y", "validation_data"),
    "evaluate": ("x", "y"),
    "predict": ("x",),
    "predict_on_batch": ("x",),
    "train_on_batch": ("x", "y"),
    "test_on_batch": ("x", "y"),
}
_TRAINING_METHODS = ("fit", "train_on_batch")
_COMPILED_TRAINABLE = "_kerasbert_compiled_trainable"
_NOTED = set()
_RUNNING_FITS = []  # the models whose fit is running, innermost last


def _numeric_literal_array(value):
    """``numpy.asarray(value)`` for a Python list/tuple whose leaves are numbers, else None."""
    first = value
    while isinstance(first, (list, tuple)) and first:
        first = first[0]
    if not isinstance(value, (list, tuple)) or not isinstance(first, numbers.Number):
        return None
    try:
        array = np.asarray(value)
    except ValueError:  # ragged
        return None
    if array.dtype.kind not in "biuf":
        return None
    return array[:, None] if array.ndim == 1 else array


def to_keras2_arrays(data):
    """What Keras 2 made of Python-list data: one numpy array per input (or target).

    A list or tuple of numbers is one array; a list or tuple whose items are lists of
    numbers gives one array per item. 1-D results get a trailing axis, as in Keras 2.
    Anything Keras 3 accepts as it is (numpy arrays, tensors, dicts, datasets, lists of
    arrays) is returned unchanged, the same object.

    Args:
        data: the ``x`` or ``y`` of a ``fit``/``predict``/... call.

    Example:

    >>> [a.shape for a in to_keras2_arrays([[[2, 5, 3]], [[0, 0, 0]]])]
    [(1, 3), (1, 3)]
    >>> to_keras2_arrays([1, 0]).tolist()
    [[1], [0]]
    >>> x = np.ones((1, 3)); to_keras2_arrays(x) is x
    True
    """
    if not isinstance(data, (list, tuple)) or not data:
        return data
    if all(isinstance(item, numbers.Number) for item in data):
        array = _numeric_literal_array(data)
        return data if array is None else array
    items = [_numeric_literal_array(item) for item in data]
    if all(item is None for item in items):
        return data
    items = [item if new is None else new for item, new in zip(data, items)]
    return tuple(items) if isinstance(data, tuple) else items


def _convert(name, value):
    if name != "validation_data":
        return to_keras2_arrays(value)
    if isinstance(value, (list, tuple)) and len(value) in (2, 3):
        converted = [to_keras2_arrays(part) for part in value]
        if any(new is not old for new, old in zip(converted, value)):
            return tuple(converted)
    return value


def compiled_trainable(model):
    """``[(layer, trainable)]`` for the model and all its layers (nested ones included), as
    they were at the model's last ``compile`` under the patch; None before that.

    Args:
        model: a ``keras.Model``.

    Example:

    >>> import kerasbert.backend
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(loss="mse"); model.layers[0].trainable = False
    >>> [flag for layer, flag in compiled_trainable(model) if layer is model.layers[0]]
    [True]
    """
    record = getattr(model, _COMPILED_TRAINABLE, None)
    return None if record is None else record.flags


class _CompiledFlags:
    """The flags :func:`compiled_trainable` returns, in an object that Keras's attribute
    tracking and its weights saving (which walk a model's lists, tuples and dicts) skip."""

    __slots__ = ("flags",)

    def __init__(self, flags):
        self.flags = flags


def _ancestors_first(model):
    """The model and its layers, each after every layer holding it (a shared layer can sit
    in two nested models): the order in which setting ``trainable`` (which a layer passes
    on to its sublayers) leaves every layer with its own flag."""
    layers = model._flatten_layers()
    depth = {id(layer): 0 for layer in layers}
    changed = True
    while changed:  # longest path from the model; the sublayer graph has no cycles
        changed = False
        for layer in layers:
            for sublayer in layer._layers:
                if id(sublayer) in depth and depth[id(sublayer)] <= depth[id(layer)]:
                    depth[id(sublayer)] = depth[id(layer)] + 1
                    changed = True
    return sorted(layers, key=lambda layer: depth[id(layer)])


def _wrap_compile(method):
    @functools.wraps(method)
    def compile(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        flags = [(layer, layer.trainable) for layer in _ancestors_first(self)]
        object.__setattr__(self, _COMPILED_TRAINABLE, _CompiledFlags(flags))
        return result

    setattr(compile, _MARK, True)
    return compile


def _set_trainable(flags):
    """Give each layer its flag; ``flags`` lists the layers ancestors first."""
    for layer, flag in flags:
        if layer.trainable != flag:
            layer.trainable = flag


def _train_as_compiled(model, call):
    """Run ``call()`` with the ``trainable`` flags ``model`` had at ``compile``."""
    compiled = compiled_trainable(model)
    if not compiled or all(layer.trainable == flag for layer, flag in compiled):
        return call()
    before = [layer.trainable for layer, _ in compiled]
    _set_trainable(compiled)
    try:
        return call()
    finally:
        # The flags from before the call come back, except those changed during it.
        _set_trainable([
            (layer, prior if layer.trainable == flag else layer.trainable)
            for (layer, flag), prior in zip(compiled, before)
        ])  # fmt: skip


def sync_running_fits():
    """Write the weights of every model whose ``fit`` is running back to its variables
    (Keras's ``jax_state_sync``; nothing to do off JAX or between steps). The fit reads
    its variables again at its next step.

    Example:

    >>> import kerasbert.backend
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> class Peek(keras.callbacks.Callback):
    ...     def on_batch_end(self, batch, logs=None):  # self.model is not read
    ...         sync_running_fits()
    ...         self.kernel = np.array(model.layers[0].kernel)
    >>> peek = Peek()
    >>> _ = model.fit(np.ones((2, 1)), np.ones((2, 1)), callbacks=[peek], verbose=0)
    >>> bool(np.allclose(peek.kernel, model.layers[0].kernel))
    True
    """
    for model in list(_RUNNING_FITS):
        sync = getattr(model, "jax_state_sync", None)
        if sync is not None:
            sync()


def _wrap_data_method(method, names, training=False):
    signature = inspect.signature(method)
    fitting = method.__name__ == "fit"
    # Keras 2's predict was silent by default; Keras 3's prints a bar per call, which
    # bert4keras's evaluation loops (one predict per batch) turn into pages of output.
    silent_by_default = method.__name__ == "predict"

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        sync_running_fits()
        if not fitting:
            return run(self, *args, **kwargs)
        _RUNNING_FITS.append(self)
        try:
            return run(self, *args, **kwargs)
        finally:
            # this call's entry: the last one for this model
            index = max(i for i, model in enumerate(_RUNNING_FITS) if model is self)
            del _RUNNING_FITS[index]

    def run(self, *args, **kwargs):
        if training:
            return _train_as_compiled(self, lambda: converted(self, *args, **kwargs))
        return converted(self, *args, **kwargs)

    def converted(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:  # let Keras report the bad call
            return method(self, *args, **kwargs)
        changed = False
        if silent_by_default and "verbose" not in bound.arguments:
            bound.arguments["verbose"], changed = 0, True
        for name in names:
            if name in bound.arguments:
                value = bound.arguments[name]
                new = _convert(name, value)
                if new is not value:
                    bound.arguments[name], changed = new, True
        if not changed:
            return method(self, *args, **kwargs)
        return method(*bound.args, **bound.kwargs)

    setattr(wrapper, _MARK, True)
    return wrapper


def weights_path(filepath):
    """The file Keras 3 can save weights to for ``filepath``: the name itself when it ends
    in ``.weights.h5``; ``name.weights`` -> ``name.weights.h5``; ``name.h5`` (or
    ``.hdf5``) -> ``name.weights.h5``; any other name gets ``.weights.h5`` appended.

    Args:
        filepath: a ``str`` or ``pathlib.Path``.

    Example:

    >>> weights_path("best_model.weights"), weights_path("model.h5"), weights_path("model")
    ('best_model.weights.h5', 'model.weights.h5', 'model.weights.h5')
    """
    text = str(filepath)
    if text.endswith(".weights.h5"):
        return filepath
    if text.endswith(".weights"):
        text += ".h5"
    else:
        for suffix in (".hdf5", ".h5"):
            if text.endswith(suffix):
                text = text[: -len(suffix)]
                break
        text += ".weights.h5"
    return text if isinstance(filepath, str) else type(filepath)(text)


def _note(kind, message):
    if kind not in _NOTED:
        _NOTED.add(kind)
        warnings.warn(message, UserWarning, stacklevel=3)


def _wrap_save_weights(method):
    signature = inspect.signature(method)

    @functools.wraps(method)
    def save_weights(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        filepath = bound.arguments["filepath"]
        text = str(filepath)
        if bound.arguments.get("max_shard_size") is not None or text.endswith(".weights.h5"):
            return method(self, *args, **kwargs)
        bound.arguments["filepath"] = target = weights_path(filepath)
        _note(
            "save",
            f"Keras 3 saves weights only to names ending in '.weights.h5': "
            f"model.save_weights({text!r}) wrote {str(target)!r}, which "
            f"model.load_weights({text!r}) reads back (kerasbert.backend's Keras 2 file "
            "names; shown once).",
        )
        return method(*bound.args, **bound.kwargs)

    setattr(save_weights, _MARK, True)
    return save_weights


def _keras_reads(text):
    if text.endswith((".weights.h5", ".weights.json", ".keras")) or os.path.isdir(text):
        return True
    return text.endswith((".h5", ".hdf5")) and os.path.exists(text)


def _wrap_load_weights(method):
    signature = inspect.signature(method)

    @functools.wraps(method)
    def load_weights(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        filepath = bound.arguments["filepath"]
        text = str(filepath)
        target = weights_path(filepath)
        if _keras_reads(text):
            return method(self, *args, **kwargs)
        if os.path.exists(target):
            bound.arguments["filepath"] = target
            _note(
                "load",
                f"Keras 3 reads weights from names ending in '.weights.h5': "
                f"model.load_weights({text!r}) read {str(target)!r} (kerasbert.backend"
                "'s Keras 2 file names; shown once).",
            )
            return method(*bound.args, **bound.kwargs)
        if text.endswith((".h5", ".hdf5")):
            return method(self, *args, **kwargs)  # Keras's own missing-file error
        found = (
            f" {text!r} exists, but it is not a format Keras 3 reads (a file bert4keras saved "
            "under Keras 2 cannot be loaded by name: train again, or load the original "
            "checkpoint with build_transformer_model(..., checkpoint_path=...))."
            if os.path.exists(text)
            else ""
        )
        raise CheckpointError(
            f"Cannot load weights from {text!r}: Keras 3 reads weights from names ending in "
            f"'.weights.h5', and {str(target)!r} (where model.save_weights({text!r}) "
            f"puts them under kerasbert.backend) does not exist.{found} Save them first with "
            f"model.save_weights({text!r}), or pass a '.weights.h5' or '.keras' path."
        )

    setattr(load_weights, _MARK, True)
    return load_weights


def installed():
    """Whether :func:`install` has patched ``keras.Model`` in this process.

    Example:

    >>> import kerasbert.backend
    >>> installed()
    True
    """
    return getattr(keras.Model.save_weights, _MARK, False)


def install():
    """Patch ``keras.Model`` (see the module docstring); a no-op when already patched.

    Returns:
        True when this call installed the patch, False when it was installed already.

    Example:

    >>> install() or installed()
    True
    """
    if installed():
        return False
    for name, arguments in _DATA_ARGUMENTS.items():
        method = getattr(keras.Model, name)
        training = name in _TRAINING_METHODS
        setattr(keras.Model, name, _wrap_data_method(method, arguments, training))
    # compile is wrapped on the class defining it (Keras's Trainer), not set on keras.Model:
    # load_model compiles a loaded model only when its class's compile is Trainer.compile.
    owner = next(cls for cls in keras.Model.__mro__ if "compile" in vars(cls))
    owner.compile = _wrap_compile(vars(owner)["compile"])
    keras.Model.save_weights = _wrap_save_weights(keras.Model.save_weights)
    keras.Model.load_weights = _wrap_load_weights(keras.Model.load_weights)
    return True
