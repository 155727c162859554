"""ConditionalRandomField: exact NLL against brute force, masking, accuracy, training, saving."""

import itertools

import keras
import numpy as np
import pytest

from kerasbert.errors import ConfigError, KerasBertError
from kerasbert.layers.crf import ConditionalRandomField, CRFFunction
from kerasbert.snippets import ViterbiDecoder, sequence_padding

NUM_LABELS = 3


def brute_force_nll(emissions, trans, labels, real):
    """-log p(labels) over the real positions, by enumerating every label path (numpy)."""
    positions = np.flatnonzero(real)
    if len(positions) == 0:
        return 0.0
    e = emissions[positions].astype("float64")

    def score(path):
        return sum(e[t, y] for t, y in enumerate(path)) + sum(
            trans[a, b] for a, b in zip(path[:-1], path[1:])
        )

    paths = itertools.product(range(e.shape[1]), repeat=len(positions))
    log_z = np.logaddexp.reduce([score(p) for p in paths])
    return log_z - score([labels[t] for t in positions])


def make_crf(trans, lr_multiplier=1):
    crf = ConditionalRandomField(lr_multiplier=lr_multiplier)
    crf.build((None, None, len(trans)))
    crf.set_weights([np.asarray(trans) / lr_multiplier])
    return crf


def random_case(rng, batch=6, length=4):
    emissions = rng.normal(size=(batch, length, NUM_LABELS)).astype("float32")
    trans = rng.normal(size=(NUM_LABELS, NUM_LABELS)).astype("float32")
    labels = rng.integers(0, NUM_LABELS, size=(batch, length))
    return emissions, trans, labels


def expected(emissions, trans, labels, real):
    return np.array([brute_force_nll(e, trans, y, r) for e, y, r in zip(emissions, labels, real)])


def test_loss_equals_brute_force_without_padding():
    emissions, trans, labels = random_case(np.random.default_rng(0))
    crf = make_crf(trans)
    y_pred = crf(emissions)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y_pred), emissions)
    want = expected(emissions, trans, labels, np.ones(labels.shape, bool))
    got = keras.ops.convert_to_numpy(crf.sparse_loss(labels, y_pred))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    one_hot = np.eye(NUM_LABELS, dtype="float32")[labels]
    got = keras.ops.convert_to_numpy(crf.dense_loss(one_hot, y_pred))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Labels shaped (batch, seq, 1), as Keras sometimes hands them over, work too.
    got = keras.ops.convert_to_numpy(crf.sparse_loss(labels[..., None], y_pred))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# post-padding, pre-padding, a gap inside, nothing real, everything real
MASKS = np.array(
    [
        [1, 1, 0, 0],
        [0, 1, 1, 1],
        [1, 0, 1, 1],
        [0, 0, 0, 0],
        [1, 1, 1, 1],
        [1, 0, 0, 0],
    ],
    bool,
)


def test_loss_equals_brute_force_with_keras_mask():
    emissions, trans, labels = random_case(np.random.default_rng(1))
    crf = make_crf(trans)
    y_pred = keras.ops.convert_to_numpy(crf(emissions, mask=MASKS))
    assert np.isneginf(y_pred[~MASKS]).all()
    np.testing.assert_array_equal(y_pred[MASKS], emissions[MASKS])
    got = keras.ops.convert_to_numpy(crf.sparse_loss(labels, y_pred))
    np.testing.assert_allclose(got, expected(emissions, trans, labels, MASKS), rtol=1e-5, atol=1e-5)
    assert got[3] == 0.0


def test_loss_reads_padding_from_labels():
    emissions, trans, labels = random_case(np.random.default_rng(2))
    crf = make_crf(trans)
    want = expected(emissions, trans, labels, MASKS)
    sparse = np.where(MASKS, labels, -1)
    got = keras.ops.convert_to_numpy(crf.sparse_loss(sparse, emissions))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    dense = np.eye(NUM_LABELS, dtype="float32")[labels] * MASKS[..., None]
    got = keras.ops.convert_to_numpy(crf.dense_loss(dense, emissions))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_loss_uses_the_effective_transitions_with_lr_multiplier():
    emissions, trans, labels = random_case(np.random.default_rng(3))
    crf = make_crf(trans, lr_multiplier=8)
    np.testing.assert_allclose(crf.get_weights()[0], trans / 8, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(crf.trans), trans, rtol=1e-6)
    got = keras.ops.convert_to_numpy(crf.sparse_loss(labels, emissions))
    want = expected(emissions, trans, labels, np.ones(labels.shape, bool))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_loss_gradients_are_finite_at_padding():
    import jax

    emissions, trans, labels = random_case(np.random.default_rng(4))
    crf = make_crf(trans)

    def total(x):
        return keras.ops.sum(crf.sparse_loss(labels, crf(x, mask=MASKS)))

    grad = np.asarray(jax.grad(total)(emissions))
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[~MASKS], 0.0)


def test_accuracy_counts_real_positions_only():
    crf = make_crf(np.zeros((NUM_LABELS, NUM_LABELS)))
    emissions = np.zeros((2, 3, NUM_LABELS), "float32")
    emissions[0, :, 1] = 1.0  # predicts 1, 1, 1
    emissions[1, :, 2] = 1.0  # predicts 2, 2, 2
    mask = np.array([[1, 1, 0], [1, 1, 1]], bool)
    y_pred = crf(emissions, mask=mask)
    labels = np.array([[1, 0, 1], [2, 2, 0]])
    # real positions: 5; correct: (0,0), (1,0), (1,1)
    acc = crf.sparse_accuracy(labels, y_pred)
    assert float(acc) == pytest.approx(3 / 5)
    acc = crf.dense_accuracy(np.eye(NUM_LABELS)[labels], y_pred)
    assert float(acc) == pytest.approx(3 / 5)
    # Negative labels / zero rows are padding as well.
    labels = np.array([[1, -1, -1], [2, 2, 0]])
    assert float(crf.sparse_accuracy(labels, emissions)) == pytest.approx(3 / 4)
    dense = np.eye(NUM_LABELS)[np.maximum(labels, 0)] * (labels >= 0)[..., None]
    assert float(crf.dense_accuracy(dense, emissions)) == pytest.approx(3 / 4)


def bio_data(rng, n, maxlen=14):
    """Tokens 1-5 are tagged O (0); runs of tokens 6-9 are tagged B (1) then I (2).

    A model that sees only the current token cannot tell B from I: the transitions can.
    """
    tokens, tags = [], []
    for _ in range(n):
        length = rng.integers(4, maxlen + 1)
        x = np.where(
            rng.random(length) < 0.5, rng.integers(1, 6, length), rng.integers(6, 10, length)
        )
        y = []
        for t, token in enumerate(x):
            if token < 6:
                y.append(0)
            else:
                y.append(2 if t > 0 and y[-1] != 0 else 1)
        tokens.append(x)
        tags.append(y)
    return tokens, tags


def tagger(lr_multiplier=1):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 16, mask_zero=True)(inputs)
    x = keras.layers.Dense(NUM_LABELS)(x)
    crf = ConditionalRandomField(lr_multiplier=lr_multiplier, name="crf")
    return keras.Model(inputs, crf(x)), crf


def viterbi_accuracy(model, crf, tokens, tags):
    emissions = model.predict(sequence_padding(tokens), verbose=0)
    decoder = ViterbiDecoder(keras.ops.convert_to_numpy(crf.trans))
    correct = total = 0
    for e, y in zip(emissions, tags):
        path = decoder.decode(e[: len(y)])
        correct += int((path == np.array(y)).sum())
        total += len(y)
    return correct / total


def test_crf_head_learns_tagging_where_transitions_matter():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens, tags = bio_data(rng, 512)
    x, y = sequence_padding(tokens), sequence_padding(tags, value=-1)
    model, crf = tagger()
    model.compile(keras.optimizers.Adam(0.05), loss=crf.sparse_loss, metrics=[crf.sparse_accuracy])
    history = model.fit(x, y, batch_size=64, epochs=25, verbose=0)
    assert "sparse_accuracy" in history.history
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.2 * losses[0]
    test_tokens, test_tags = bio_data(rng, 64)
    assert viterbi_accuracy(model, crf, test_tokens, test_tags) > 0.98
    # The emissions alone cannot separate B from I; the training metric says so.
    per_token = model.evaluate(
        sequence_padding(test_tokens), sequence_padding(test_tags, value=-1), verbose=0
    )[1]
    assert per_token < 0.9


def test_lr_multiplier_scales_the_transition_updates():
    rng = np.random.default_rng(5)
    emissions, trans, labels = random_case(rng, batch=8)
    moves = {}
    for lr_multiplier in (1, 5):
        inputs = keras.Input((None, NUM_LABELS))
        crf = ConditionalRandomField(lr_multiplier=lr_multiplier)
        model = keras.Model(inputs, crf(inputs))
        crf.set_weights([trans / lr_multiplier])
        model.compile(keras.optimizers.Adam(1e-3), loss=crf.sparse_loss)
        model.train_on_batch(emissions, labels)
        np.testing.assert_allclose(
            crf.get_weights()[0] * lr_multiplier, keras.ops.convert_to_numpy(crf.trans), rtol=1e-6
        )
        moves[lr_multiplier] = keras.ops.convert_to_numpy(crf.trans) - trans
    # Adam's first step moves each stored entry by about lr: the effective one by lr * multiplier.
    assert np.abs(moves[1]).max() == pytest.approx(1e-3, rel=0.05)
    np.testing.assert_allclose(moves[5], 5 * moves[1], rtol=0.05, atol=1e-6)
    assert [w.name for w in crf.trainable_weights] == ["trans"]


def test_save_and_load_keeps_outputs_and_transitions(tmp_path):
    keras.utils.set_random_seed(1)
    tokens, tags = bio_data(np.random.default_rng(1), 64)
    x, y = sequence_padding(tokens), sequence_padding(tags, value=-1)
    model, crf = tagger(lr_multiplier=10)
    model.compile(keras.optimizers.Adam(0.01), loss=crf.sparse_loss, metrics=[crf.sparse_accuracy])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded_crf = loaded.get_layer("crf")
    assert isinstance(loaded_crf, ConditionalRandomField) and loaded_crf.lr_multiplier == 10
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(crf.trans), keras.ops.convert_to_numpy(loaded_crf.trans)
    )
    # The compiled loss comes back unbound (Keras gives a loss no way to reach the model):
    # training says what to do, and works once compiled with the loaded layer's loss.
    with pytest.raises(KerasBertError, match="Compile the loaded model again"):
        loaded.evaluate(x, y, verbose=0)
    loaded.compile(
        keras.optimizers.Adam(0.01),
        loss=loaded_crf.sparse_loss,
        metrics=[loaded_crf.sparse_accuracy],
    )
    assert np.isfinite(loaded.train_on_batch(x, y)).all()


def test_config_functions_and_errors():
    crf = ConditionalRandomField(lr_multiplier=3, name="tags")
    again = ConditionalRandomField.from_config(crf.get_config())
    assert again.lr_multiplier == 3 and again.name == "tags"
    function = CRFFunction.from_config(make_crf(np.zeros((2, 2))).dense_accuracy.get_config())
    assert function.kind == "dense_accuracy" and function.layer is None
    with pytest.raises(ConfigError, match="lr_multiplier"):
        ConditionalRandomField(lr_multiplier=0)
    with pytest.raises(ConfigError, match="number of labels"):
        ConditionalRandomField().build((None, None, None))
    with pytest.raises(ConfigError, match="unknown kind"):
        CRFFunction(crf, "viterbi")
    # Without a Keras mask the output is the input and carries no mask either way.
    assert crf.compute_mask(np.zeros((1, 2, 2)), np.ones((1, 2), bool)) is None


def test_padding_of_a_kerasbert_model_reaches_the_crf(tiny_config):
    import kerasbert

    bert = kerasbert.build_transformer_model(tiny_config)
    crf = ConditionalRandomField()
    model = keras.Model(bert.inputs, crf(keras.layers.Dense(NUM_LABELS)(bert.output)))
    ids = np.array([[2, 5, 7, 0, 0], [3, 4, 0, 0, 0]])
    y_pred = model.predict([ids, np.zeros_like(ids)], verbose=0)
    np.testing.assert_array_equal(np.isneginf(y_pred).all(-1), ids == 0)
    assert np.isfinite(y_pred[ids != 0]).all()
