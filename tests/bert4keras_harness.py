"""Running the bert4keras-style scripts of tests/bert4keras_scripts/ on tiny checkpoints.

The scripts read their model folder, data folder and training length from the environment;
:func:`write_model` writes the tiny random checkpoints (the real bert-base-chinese
vocabulary, every head, the original release's layout) that ``conftest.bert4keras_models``
points them at, and :func:`run_script` runs one as ``__main__`` and records its losses.
"""

import json
import math
import pathlib
import runpy
import shutil

import keras

import kerasbert
import kerasbert.backend  # noqa: F401 (patches keras.Model first: run_script wraps the patched fit)
from kerasbert.models import build_transformer_model, save_tf_checkpoint

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "tests" / "bert4keras_scripts"
DATA = ROOT / "examples" / "data"
VOCAB = ROOT / "tests" / "data" / "zh_vocab.txt"
TINY = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 128, "type_vocab_size": 2,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1}  # fmt: skip
def write_model(folder, family="bert", **overrides):
    """A tiny random checkpoint with every head, in the original release's layout."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = sum(1 for _ in VOCAB.open(encoding="utf-8"))
    config = dict(TINY, vocab_size=vocab_size, **overrides)
    model = build_transformer_model(
        dict(config, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
        model=family, with_pool=True, with_nsp=True, with_mlm=True,
    )  # fmt: skip
    record = kerasbert.families.get(family)
    save_tf_checkpoint(model, folder / record.tf_files[0])
    (folder / record.tf_files[1]).write_text(json.dumps(config), encoding="utf-8")
    shutil.copyfile(VOCAB, folder / "vocab.txt")
    return folder


def run_script(name, monkeypatch, tmp_path, **environment):
    """Run ``tests/bert4keras_scripts/<name>`` as ``__main__`` in ``tmp_path``; returns its
    globals and the losses of every epoch its ``fit`` calls trained."""
    monkeypatch.chdir(tmp_path)
    for key, value in environment.items():
        monkeypatch.setenv(key, str(value))
    losses = []
    fit = keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        history = fit(self, *args, **kwargs)
        losses.extend(history.history.get("loss", []))
        return history

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    # Seeded (Python, numpy and Keras): the same initial head, dropout and data order on
    # every run, so "the loss falls" is a fact about the script, not about luck.
    keras.utils.set_random_seed(0)
    namespace = runpy.run_path(str(SCRIPTS / name), run_name="__main__")
    return namespace, losses


def assert_trains(losses):
    assert len(losses) >= 2 and all(math.isfinite(loss) for loss in losses), losses
    assert losses[-1] < losses[0], losses


def keras3_changes(name):
    """The script's lines marked as Keras 3 changes no library can absorb."""
    lines = (SCRIPTS / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if "# keras3:" in line]
