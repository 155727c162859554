"""Backend selection and the package's public surface."""

import os
import subprocess
import sys


def _backend_in_subprocess(env_backend):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if env_backend is not None:
        env["KERAS_BACKEND"] = env_backend
    code = "import kerasbert, keras; print(keras.backend.backend())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_import_selects_jax_when_unset():
    assert _backend_in_subprocess(None) == "jax"


def test_import_keeps_explicit_backend():
    assert _backend_in_subprocess("numpy") == "numpy"


def test_public_names():
    import kerasbert
    from kerasbert.models import build_transformer_model

    assert kerasbert.build_transformer_model is build_transformer_model
    assert issubclass(kerasbert.CheckpointError, kerasbert.KerasBertError)
    assert issubclass(kerasbert.ConfigError, kerasbert.KerasBertError)
