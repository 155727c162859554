"""kerasbert.backend's keras.Model patch: fit trains what was trainable at compile (Keras 2).

Keras 2 collected a model's trainable weights in ``compile``; Keras 3 on JAX reads the
layers' ``trainable`` flags when ``fit`` starts. BERT-of-Theseus (bert4keras's
examples/task_iflytek_bert_of_theseus.py) relies on Keras 2's rule: it compiles the
predecessor model, freezes the predecessor's layers and the shared classifier for the
theseus model, and then trains the predecessor model first.
"""

import inspect
import warnings

import numpy as np
import pytest

import kerasbert.backend  # noqa: F401 (installs the patch)
from kerasbert import keras2_compat
from kerasbert.backend import keras

X = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
Y = np.ones((8, 1), "float32")


def _models():
    """A body shared by two models, and a nested head model (the classifier)."""
    inputs = keras.Input((3,))
    body = keras.layers.Dense(4, name="body")
    head_in = keras.Input((4,))
    head = keras.Model(head_in, keras.layers.Dense(1, name="head_dense")(head_in), name="head")
    first = keras.Model(inputs, head(body(inputs)))
    first.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return first, body, head


def _values(layer):
    return [np.array(w) for w in layer.get_weights()]


def _changed(before, layer):
    return any(not np.array_equal(b, a) for b, a in zip(before, _values(layer)))


@pytest.mark.parametrize("train", ["fit", "train_on_batch"])
def test_layers_frozen_after_compile_still_train_and_stay_frozen(train):
    first, body, head = _models()
    body.trainable = head.trainable = False  # frozen for another model, after compile
    before_body, before_head = _values(body), _values(head)
    if train == "fit":
        first.fit(X, Y, epochs=1, verbose=0)
    else:
        first.train_on_batch(X, Y)
    assert _changed(before_body, body) and _changed(before_head, head)
    assert not body.trainable and not head.trainable
    assert not head.get_layer("head_dense").trainable  # the nested layers too
    assert all(not v.trainable for v in body.weights + head.weights)


def test_a_layer_shared_by_two_nested_models_gets_its_own_flag_back():
    shared = keras.layers.Dense(3, name="shared")
    nested = []
    for name in ("open", "frozen"):
        inputs = keras.Input((3,))
        nested.append(keras.Model(inputs, shared(inputs), name=name))
    inputs = keras.Input((3,))
    outer = keras.Model(inputs, keras.layers.Add()([model(inputs) for model in nested]))
    nested[1].trainable = False  # also freezes the shared layer ...
    shared.trainable = True  # ... which is trainable again, its holder "frozen" is not
    outer.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    outer.trainable = False
    before = _values(shared)
    outer.fit(X, np.ones((8, 3)), epochs=1, verbose=0)
    assert _changed(before, shared)
    assert not outer.trainable and not shared.trainable


def test_a_model_compiled_after_freezing_leaves_the_frozen_layers_alone():
    first, body, head = _models()
    body.trainable = False
    inputs = keras.Input((3,))
    second = keras.Model(inputs, head(body(inputs)))
    second.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before_body, before_head = _values(body), _values(head)
    second.fit(X, Y, epochs=1, verbose=0)
    assert not _changed(before_body, body) and _changed(before_head, head)
    assert len(second.trainable_variables) == 2


def test_compiling_again_records_the_new_flags():
    first, body, head = _models()
    body.trainable = False
    first.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = _values(body)
    first.fit(X, Y, epochs=1, verbose=0)
    assert not _changed(before, body)
    flags = dict((layer.name, flag) for layer, flag in keras2_compat.compiled_trainable(first))
    assert flags["body"] is False and flags["head"] is True


def test_a_flag_a_callback_changes_during_fit_stays_changed():
    first, body, head = _models()
    body.trainable = False  # put back after fit

    class Freeze(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            head.trainable = False  # True before fit and as compiled: the callback's choice

    first.fit(X, Y, epochs=1, verbose=0, callbacks=[Freeze()])
    assert not body.trainable and not head.trainable


def test_unchanged_flags_and_uncompiled_models_are_left_alone():
    first, body, head = _models()
    assert all(flag for _, flag in keras2_compat.compiled_trainable(first))
    first.fit(X, Y, epochs=1, verbose=0)
    assert body.trainable and head.trainable and len(first.trainable_variables) == 4
    uncompiled = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert keras2_compat.compiled_trainable(uncompiled) is None
    assert len(first.weights) == 4  # the record is not tracked as more sublayers


def test_the_record_is_not_saved_with_the_model(tmp_path):
    first, body, head = _models()
    first.save_weights(tmp_path / "m.weights.h5")
    first.load_weights(tmp_path / "m.weights.h5")
    first.save(tmp_path / "m.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert not [w for w in caught if "compile()` was not called" in str(w.message)]
    np.testing.assert_allclose(loaded.predict(X, verbose=0), first.predict(X, verbose=0))
    assert loaded.compiled and keras2_compat.compiled_trainable(loaded) is not None


def test_the_compile_wrapper_keeps_kerass_signature():
    patched = keras.Model.compile
    assert patched.__name__ == "compile" and patched.__doc__ == patched.__wrapped__.__doc__
    assert inspect.signature(patched) == inspect.signature(patched.__wrapped__)
