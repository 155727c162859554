"""Write a TF checkpoint with kerasbert's writer and check that TensorFlow and HF read it.

Writes ``tests/fixtures/tf_written_by_kerasbert/``: the tiny BERT of
``tests/fixtures/tf_bert_tiny`` loaded into a kerasbert model and exported with
``kerasbert.models.save_tf_checkpoint``; then reads it back with TensorFlow's
``tf.train.load_variable`` and HF's ``load_tf_weights_in_bert`` and records the outcome in
``verified.json`` (the test suite, which has no TensorFlow, asserts on that record).

Venv (the same one tools/make_tf_fixtures.py uses)::

    python3 -m venv /tmp/tf
    /tmp/tf/bin/pip install torch==2.13.0
    /tmp/tf/bin/pip install tensorflow-cpu tf-keras transformers==4.57.6 safetensors numpy h5py \
        ml_dtypes

Run from the repository root (kerasbert is imported from the checkout, on Keras' TensorFlow
backend, so jax is not needed in this venv)::

    /tmp/tf/bin/python tools/verify_tf_written.py
"""

import json
import os
import pathlib
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertConfig, BertForPreTraining, load_tf_weights_in_bert  # noqa: E402

import kerasbert  # noqa: E402
from kerasbert.models import model_arrays, save_tf_checkpoint  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
SOURCE = FIXTURES / "tf_bert_tiny"
OUT = FIXTURES / "tf_written_by_kerasbert"


def main():
    model = kerasbert.build_transformer_model(
        SOURCE / "bert_config.json", SOURCE, with_nsp=True, with_mlm=True
    )
    OUT.mkdir(exist_ok=True)
    prefix = str(OUT / "bert_model.ckpt")
    save_tf_checkpoint(model, prefix)
    arrays = model_arrays(model)

    listed = dict(tf.train.list_variables(prefix))
    tf_equal = sorted(listed) == sorted(arrays) and all(
        np.array_equal(tf.train.load_variable(prefix, name), value)
        and tf.train.load_variable(prefix, name).dtype == value.dtype
        for name, value in arrays.items()
    )
    print("tf.train.load_variable equal:", tf_equal)

    # HF's loader maps Google names onto BertForPreTraining; compare with the HF goldens.
    hf_config = BertConfig.from_json_file(str(FIXTURES / "bert_tiny_gelu" / "config.json"))
    hf_model = BertForPreTraining(hf_config)
    load_tf_weights_in_bert(hf_model, hf_config, prefix)
    hf_model.eval()
    with np.load(FIXTURES / "bert_tiny_gelu" / "goldens.npz") as g:
        golden = {k: g[k] for k in g.files}
    with torch.no_grad():
        out = hf_model(
            input_ids=torch.tensor(golden["token_ids"]).long(),
            token_type_ids=torch.tensor(golden["segment_ids"]).long(),
            attention_mask=torch.tensor(golden["attention_mask"]).long(),
        )
    mask = golden["attention_mask"].astype(bool)
    diffs = [
        float(np.abs(out.prediction_logits.numpy()[mask] - golden["mlm_logits"][mask]).max()),
        float(np.abs(out.seq_relationship_logits.numpy() - golden["nsp_logits"]).max()),
    ]
    print("load_tf_weights_in_bert max diff vs goldens:", max(diffs))

    record = {
        "tensorflow": tf.__version__,
        "transformers": transformers.__version__,
        "tf_load_variable_equal": bool(tf_equal),
        "load_tf_weights_in_bert_max_diff": max(diffs),
        "variables": {name: [str(v.dtype), list(v.shape)] for name, v in arrays.items()},
    }
    (OUT / "verified.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
