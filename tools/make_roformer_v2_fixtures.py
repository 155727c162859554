"""Write a tiny random RoFormer v2 reference fixture from keras-hub's ``RoformerV2Backbone``.

``tests/fixtures/roformer_v2_tiny/`` is (re)written from a keras-hub 0.32.0
``RoformerV2Backbone`` (the independent reference; vocab 100, hidden 32, 2 layers, 4 heads of
8, intermediate 40, relu) whose every weight is random:

- ``bert_model.ckpt.*`` + ``checkpoint``: a TF1 ``tf.compat.v1.train.Saver`` checkpoint of the
  same weights under the names of Zhuiyi's releases (bert4keras's ``RoFormerV2`` mapping:
  BERT's names without position embeddings, biases or LayerNorm), and ``bert_config.json`` in
  their format;
- ``goldens.npz``: inputs and float32 outputs of keras-hub's model (sequence output and the
  tied-embedding MLM logits, keras-hub's ``ReversibleEmbedding(reverse=True)``) for a padded
  batch with both segment ids, and for a batch of 48 tokens (the config says 32 positions:
  rotary positions have no table).

keras-hub runs on the **torch** backend: on JAX and TensorFlow keras-hub 0.32.0's
``RoformerAttention`` reshapes the padding mask to ``(batch, 1, length, 1)``, which masks
padded *queries* instead of padded keys, so real tokens attend to the padding there (the
script measures it: the real tokens' outputs change with the amount of padding). Its torch
branch builds the key mask; the script checks that outputs do not depend on padding and that
an independent float64 NumPy forward pass from the TF-named arrays (bert4keras's formulas:
RMS norm with epsilon 1e-7, interleaved rotary pairs) reproduces the goldens.

keras-hub's norms carry a ``scale`` weight (bert4keras's have none); it stays at its initial
ones, which the script asserts.

Environment: the ``/tmp/ref`` venv (torch 2.13.0+cpu, keras 3.15.1, tensorflow-cpu 2.21.0,
numpy) plus ``pip install --no-deps keras-hub==0.32.0``. Run from the repository root::

    /tmp/ref/bin/python tools/make_roformer_v2_fixtures.py

The output is deterministic (fixed seeds); rerunning rewrites the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

os.environ["KERAS_BACKEND"] = "torch"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "roformer_v2_tiny"
CONFIG = {
    "vocab_size": 100,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 40,
    "hidden_act": "relu",
    "max_position_embeddings": 32,
    "type_vocab_size": 2,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
}
EPSILON = 1e-7  # bert4keras's LayerNormalization: K.epsilon(); keras-hub's RoformerNorm too
LAYER_NAMES = {  # keras-hub sublayer -> name under bert/encoder/layer_N/
    "attention_layer/q_dense_layer": "attention/self/query",
    "attention_layer/k_dense_layer": "attention/self/key",
    "attention_layer/v_dense_layer": "attention/self/value",
    "attention_layer/o_dense_layer": "attention/output/dense",
    "feedforward_intermediate_dense": "intermediate/dense",
    "feedforward_output_dense": "output/dense",
}


def build_backbone(seed: int):
    keras.utils.set_random_seed(seed)
    model = keras_hub.models.RoformerV2Backbone(
        vocabulary_size=CONFIG["vocab_size"],
        num_layers=CONFIG["num_hidden_layers"],
        num_heads=CONFIG["num_attention_heads"],
        hidden_dim=CONFIG["hidden_size"],
        intermediate_dim=CONFIG["intermediate_size"],
        head_size=CONFIG["hidden_size"] // CONFIG["num_attention_heads"],
        activation="relu",
        dropout=0.0,
    )
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        if weight.path.endswith("/scale"):
            continue  # bert4keras's norm has no scale: keep keras-hub's at ones
        # Larger than an initializer's values, so that a mis-mapped kernel shows.
        weight.assign(rng.normal(0.0, 0.3, weight.shape).astype("float32"))
    return model


def tf_named_arrays(model) -> dict[str, np.ndarray]:
    """The backbone's weights under the names of Zhuiyi's RoFormer v2 checkpoints."""
    arrays = {}
    for weight in model.weights:
        path, value = weight.path, keras.ops.convert_to_numpy(weight.value)
        if path.endswith("/scale"):
            assert np.array_equal(value, np.ones_like(value)), path
            continue
        if path == "token_embedding/embeddings":
            arrays["bert/embeddings/word_embeddings"] = value
        elif path == "segment_embedding/embeddings":
            arrays["bert/embeddings/token_type_embeddings"] = value
        else:
            layer, _, rest = path.partition("/")
            index = int(layer.removeprefix("transformer_layer_"))
            sublayer = rest.removesuffix("/kernel")
            name = f"bert/encoder/layer_{index}/{LAYER_NAMES[sublayer]}/kernel"
            arrays[name] = value
    return arrays


def make_inputs(length: int, lengths, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    token_ids = np.zeros((len(lengths), length), "int32")
    segment_ids = np.zeros((len(lengths), length), "int32")
    for row, n in enumerate(lengths):
        token_ids[row, :n] = rng.integers(1, CONFIG["vocab_size"], n)
        segment_ids[row, n // 2 : n] = 1  # both segment ids on every row
    return {"token_ids": token_ids, "segment_ids": segment_ids}


def run_keras_hub(model, inputs) -> dict[str, np.ndarray]:
    sequence = model({"token_ids": inputs["token_ids"], "segment_ids": inputs["segment_ids"]})
    logits = model.token_embedding(sequence, reverse=True)
    return {
        "sequence_output": keras.ops.convert_to_numpy(sequence),
        "mlm_logits": keras.ops.convert_to_numpy(logits),
    }


# -- the independent NumPy forward pass (float64, bert4keras's formulas) -----------------------


def _rms_norm(x):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPSILON)


def _rotate(x, length):
    """bert4keras's rotary: channel pairs (2i, 2i + 1) by angle p * 10000**(-2i / d)."""
    dim = x.shape[-1]
    angles = np.arange(length)[:, None] * 10000.0 ** (-2 * np.arange(dim // 2) / dim)
    cos, sin = np.repeat(np.cos(angles), 2, -1), np.repeat(np.sin(angles), 2, -1)
    turned = np.stack([-x[..., 1::2], x[..., ::2]], -1).reshape(x.shape)
    return x * cos[:, None, :] + turned * sin[:, None, :]  # x: (length, heads, dim)


def numpy_forward(w, inputs):
    heads = CONFIG["num_attention_heads"]
    size = CONFIG["hidden_size"] // heads
    out = []
    for tokens, segments in zip(inputs["token_ids"], inputs["segment_ids"]):
        w64 = {k: v.astype("float64") for k, v in w.items()}
        x = w64["bert/embeddings/word_embeddings"][tokens]
        x = _rms_norm(x + w64["bert/embeddings/token_type_embeddings"][segments])
        keep = tokens != 0
        length = len(tokens)
        for i in range(CONFIG["num_hidden_layers"]):
            p = f"bert/encoder/layer_{i}/"
            q, k, v = (
                (x @ w64[p + f"attention/self/{n}/kernel"]).reshape(length, heads, size)
                for n in ("query", "key", "value")
            )
            q, k = _rotate(q, length), _rotate(k, length)
            logits = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(size)
            logits = np.where(keep[None, None, :], logits, -np.inf)
            probs = np.exp(logits - logits.max(-1, keepdims=True))
            probs /= probs.sum(-1, keepdims=True)
            attended = np.einsum("hqk,khd->qhd", probs, v).reshape(length, -1)
            x = _rms_norm(x + attended @ w64[p + "attention/output/dense/kernel"])
            hidden = np.maximum(x @ w64[p + "intermediate/dense/kernel"], 0)
            x = _rms_norm(x + hidden @ w64[p + "output/dense/kernel"])
        out.append(x)
    return np.stack(out)


def write_tf_checkpoint(prefix: Path, arrays: dict[str, np.ndarray]) -> None:
    """TF1 Saver checkpoint whose variable names are exactly the keys of ``arrays``."""
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        variables = [v1.Variable(value, name=name) for name, value in arrays.items()]
        saver = v1.train.Saver(var_list=variables, save_relative_paths=True, max_to_keep=1)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            saver.save(session, str(prefix), write_meta_graph=False)
    for name, value in arrays.items():
        assert np.array_equal(tf.train.load_variable(str(prefix), name), value), name


def real_tokens_max_diff(a, b, mask):
    return float(np.abs(np.asarray(a)[mask] - np.asarray(b)[mask]).max())


def main() -> None:
    model = build_backbone(seed=2026)
    arrays = tf_named_arrays(model)
    padded = make_inputs(12, [12, 9, 5], seed=1)
    long = make_inputs(48, [48, 40], seed=2)
    goldens = {}
    for prefix, inputs in (("", padded), ("long_", long)):
        outputs = run_keras_hub(model, inputs)
        mask = inputs["token_ids"] != 0
        reference = numpy_forward(arrays, inputs)
        diff = real_tokens_max_diff(outputs["sequence_output"], reference, mask)
        print(f"{prefix or 'padded_'}inputs: keras-hub (torch) vs NumPy float64: {diff:.2e}")
        assert diff < 1e-5, diff
        goldens.update({prefix + k: v for k, v in inputs.items()})
        goldens.update({prefix + "attention_mask": mask.astype("int32")})
        goldens.update({prefix + k: v for k, v in outputs.items()})

    # Padding must not change the real tokens' outputs (it does on keras-hub's JAX branch).
    trimmed = {k: v[:, :9] for k, v in padded.items()}
    again = run_keras_hub(model, trimmed)["sequence_output"]
    shift = float(np.abs(again[1] - goldens["sequence_output"][1, :9]).max())
    print(f"row of 9 tokens, padded to 12 vs to 9: {shift:.2e}")
    assert shift < 1e-5, shift

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        write_tf_checkpoint(Path(tmp) / "bert_model.ckpt", arrays)
        for file in Path(tmp).iterdir():
            shutil.copy(file, OUT / file.name)
    (OUT / "bert_config.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    np.savez(OUT / "goldens.npz", **goldens)
    print(f"wrote {sorted(p.name for p in OUT.iterdir())}")


if __name__ == "__main__":
    main()
