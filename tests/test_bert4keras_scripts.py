"""bert4keras-style scripts (tests/bert4keras_scripts/) run end to end on tiny checkpoints.

Each script is written in bert4keras's idiom, importing bert4keras's names from kerasbert's
modules; a line that differs from what a bert4keras script would write because of a Keras 3
change no library can absorb carries a ``# keras3:`` comment saying so. The scripts read
their model folder, data folder and training length from the environment, which these tests
point at tiny random checkpoints with the real bert-base-chinese vocabulary
(``conftest.bert4keras_models``), the sample data in examples/data and a few steps. Each run
must train (a finite loss that falls over its epochs) and, for the generative tasks,
generate real tokens. The other test_bert4keras_scripts_*.py files run the other scripts.
"""

import ast

import pytest
from bert4keras_harness import DATA, SCRIPTS, assert_trains, run_script
from test_bert4keras_compat import BERT4KERAS

# Where a script may take a name from besides bert4keras's own modules: the documented
# replacement of code bert4keras scripts wrote with Keras 2 internals (marked "# keras3:").
REPLACEMENT_MODULES = {"kerasbert.tricks"}


def _imported_names(name):
    tree = ast.parse((SCRIPTS / name).read_text(encoding="utf-8"))
    lines = (SCRIPTS / name).read_text(encoding="utf-8").splitlines()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kerasbert"):
            marked = "# keras3:" in lines[node.lineno - 1]
            for alias in node.names:
                yield node.module, alias.name, marked
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("kerasbert"):
                    yield alias.name, None, "# keras3:" in lines[node.lineno - 1]


SCRIPT_NAMES = sorted(p.name for p in SCRIPTS.glob("task_*.py"))


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_scripts_use_only_bert4keras_names(name):
    for module, imported, marked in _imported_names(name):
        if module in REPLACEMENT_MODULES and marked:
            continue
        short = module.removeprefix("kerasbert.")
        assert short in BERT4KERAS, f"{name}: {module} is not a bert4keras module"
        names = set(BERT4KERAS[short].split()) | {"K", "keras", "uniout"}
        assert imported in names, f"{name}: {module}.{imported} is not a bert4keras name"


def test_sentiment_albert(bert4keras_models, monkeypatch, tmp_path):
    namespace, losses = run_script(
        "task_sentiment_albert.py", monkeypatch, tmp_path, MODEL_DIR=bert4keras_models["albert"],
        DATA_DIR=DATA / "sentiment", EPOCHS=3, BATCH_SIZE=32, LEARNING_RATE=2e-3,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    assert 0.0 <= namespace["evaluate"](namespace["valid_generator"]) <= 1.0

