"""End to end: a tiny BERT + softmax head learns a synthetic task under ``model.fit``,
trained with kerasbert's AdamW and a warmup PiecewiseLinearSchedule."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402

import kerasbert  # noqa: E402
from kerasbert.optimizers import AdamW, PiecewiseLinearSchedule  # noqa: E402

CLS, TARGET, VOCAB, MAXLEN = 2, 7, 30, 16


def make_task(n, rng):
    """Sequences ``[CLS] tokens... 0 0`` of random length; label: token 7 occurs."""
    other = np.array([t for t in range(3, VOCAB) if t != TARGET])
    token_ids = np.zeros((n, MAXLEN), "int32")
    labels = (rng.random(n) < 0.5).astype("int32")
    for i in range(n):
        length = rng.integers(4, MAXLEN + 1)
        tokens = rng.choice(other, size=length - 1)
        if labels[i]:
            tokens[rng.integers(0, length - 1)] = TARGET
        token_ids[i, 0] = CLS
        token_ids[i, 1:length] = tokens
    return [token_ids, np.zeros_like(token_ids)], labels


def test_tiny_bert_finetunes_with_adamw_and_warmup():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = make_task(1024, rng)
    x_test, y_test = make_task(512, rng)

    bert = kerasbert.build_transformer_model(
        {
            "vocab_size": VOCAB,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 32,
            "hidden_act": "gelu_erf",
        },
        with_pool=True,
    )
    output = keras.layers.Dense(2, activation="softmax", name="Head")(bert.output)
    model = keras.Model(bert.inputs, output)

    epochs, batch_size = 3, 32
    total = epochs * len(y_train) // batch_size
    schedule = PiecewiseLinearSchedule({total // 10: 1.0, total: 0.1}, 3e-3)  # warmup, decay
    optimizer = AdamW(schedule, weight_decay=0.01)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    gamma = model.get_layer("Embedding-Norm").gamma

    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0)

    _, accuracy = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
    assert accuracy > 0.95, accuracy
    assert int(optimizer.iterations) == total
    assert float(optimizer.learning_rate) == pytest.approx(3e-4, rel=1e-5)  # schedule end
    assert not optimizer.uses_weight_decay(gamma)
