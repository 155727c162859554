"""Convert TF checkpoints to HF safetensors with kerasbert and check that transformers loads them.

For each Google-named TF checkpoint fixture below, ``kerasbert.convert.convert(...,
to="safetensors")`` writes ``model.safetensors`` + ``config.json`` into a temporary folder;
then transformers loads that folder with ``from_pretrained(..., output_loading_info=True)``
into the pre-training class and the bare model class, and this script records:

- the missing / unexpected / mismatched keys HF reports (the pre-training class must have
  none; the bare model may only leave the heads unused);
- whether every HF parameter equals, bit for bit, the reference HF checkpoint of the same
  weights (the fixture's own ``model.safetensors`` written by ``save_pretrained``);
- max abs differences of HF's outputs from the fixture's goldens (real tokens only);
- the tensor names and SHA-256 of the written file, so the test suite (which has neither
  torch nor transformers) can check that kerasbert still writes exactly what was verified.

Fixtures (Google configs say ``"gelu"``, computed with tanh, so the converted HF configs say
``"gelu_new"`` and are compared with tanh goldens):

- ``tf_bert_tiny`` -> ``BertForPreTraining`` / ``BertModel`` vs ``bert_tiny_gelu_new`` goldens;
- ``albert_groups/albert_model.ckpt`` -> ``AlbertForPreTraining`` / ``AlbertModel`` vs
  ``albert_groups`` goldens (tanh GELU);
- ``nezha_tiny/model.ckpt`` -> ``NezhaForPreTraining`` / ``NezhaModel`` vs ``nezha_tiny``'s
  ``*_tanh`` goldens;
- ``electra_tiny/discriminator/electra_model.ckpt`` (Google's names; its BertConfig-format
  config's ``"gelu"`` is ELECTRA's erf, so the HF config says ``"gelu"``) ->
  ``ElectraForPreTraining`` / ``ElectraModel`` vs ``electra_tiny/discriminator`` goldens;
- ``electra_tiny/joint/electra_tiny`` (a joint pre-training checkpoint) read with
  ``body="generator"`` and ``joint/generator.json`` -> ``ElectraForMaskedLM`` /
  ``ElectraModel`` vs ``electra_tiny/generator`` goldens.

The record goes to ``tests/fixtures/converted/hf_loads.json``.

Venv: ``/work/venvs/tf`` (see tools/make_tf_fixtures.py: torch 2.13.0, transformers 4.57.6,
safetensors, tensorflow-cpu; no jax, so kerasbert runs on Keras' TensorFlow backend). Run from
the repository root::

    /work/venvs/tf/bin/python tools/verify_hf_loads_converted.py   (any venv with that list works)
"""

import hashlib
import json
import os
import pathlib
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402

import kerasbert  # noqa: E402
from kerasbert.convert import convert  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
OUT = FIXTURES / "converted" / "hf_loads.json"

CASES = {
    "bert": {
        "source": FIXTURES / "tf_bert_tiny",
        "classes": ("BertForPreTraining", "BertModel"),
        "reference": FIXTURES / "bert_tiny_gelu" / "model.safetensors",
        "goldens": FIXTURES / "bert_tiny_gelu_new" / "goldens.npz",
        "suffix": "",
    },
    "albert": {
        "source": FIXTURES / "albert_groups" / "albert_model.ckpt",
        "classes": ("AlbertForPreTraining", "AlbertModel"),
        "reference": FIXTURES / "albert_groups" / "model.safetensors",
        "goldens": FIXTURES / "albert_groups" / "goldens.npz",
        "suffix": "",
    },
    "nezha": {
        "source": FIXTURES / "nezha_tiny" / "model.ckpt",
        "classes": ("NezhaForPreTraining", "NezhaModel"),
        "reference": FIXTURES / "nezha_tiny" / "model.safetensors",
        "goldens": FIXTURES / "nezha_tiny" / "goldens.npz",
        "suffix": "_tanh",
    },
    "electra": {
        "source": FIXTURES / "electra_tiny" / "discriminator" / "electra_model.ckpt",
        "classes": ("ElectraForPreTraining", "ElectraModel"),
        "reference": FIXTURES / "electra_tiny" / "discriminator" / "model.safetensors",
        "goldens": FIXTURES / "electra_tiny" / "discriminator" / "goldens.npz",
        "suffix": "",
    },
    "electra_generator": {
        "source": FIXTURES / "electra_tiny" / "joint" / "electra_tiny",
        "options": {
            "config": FIXTURES / "electra_tiny" / "joint" / "generator.json",
            "body": "generator",
        },
        "classes": ("ElectraForMaskedLM", "ElectraModel"),
        "reference": FIXTURES / "electra_tiny" / "generator" / "model.safetensors",
        "goldens": FIXTURES / "electra_tiny" / "generator" / "goldens.npz",
        "suffix": "",
    },
}


def _max_diff(a, b, mask=None):
    a, b = np.asarray(a), np.asarray(b)
    if mask is not None:
        a, b = a[mask], b[mask]
    return float(np.abs(a - b).max())


def _params_equal(model, reference):
    """Every parameter of an HF model equals the reference safetensors' tensor of that name."""
    with safe_open(str(reference), framework="numpy") as f:
        expected = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    prefix = model.base_model_prefix + "."
    state = model.state_dict()
    compared = 0
    for name, tensor in state.items():
        key = name if name in expected else prefix + name
        if key not in expected:
            continue  # buffers (position_ids), tied decoder copies
        value = tensor.detach().numpy()
        if value.dtype != expected[key].dtype or value.tobytes() != expected[key].tobytes():
            return False, compared
        compared += 1
    return True, compared


def check(family, case, folder):
    path = convert(case["source"], folder, to="safetensors", **case.get("options", {}))
    file = os.path.join(path, "model.safetensors")
    with safe_open(file, framework="numpy") as f:
        keys = sorted(f.keys())  # noqa: SIM118
        metadata = f.metadata()
    with np.load(case["goldens"]) as g:
        golden = {k: g[k] for k in g.files}
    mask = golden["attention_mask"].astype(bool)
    inputs = {
        "input_ids": torch.tensor(golden["token_ids"]).long(),
        "token_type_ids": torch.tensor(golden["segment_ids"]).long(),
        "attention_mask": torch.tensor(golden["attention_mask"]).long(),
    }
    s = case["suffix"]
    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    result = {
        "source": str(case["source"].relative_to(ROOT)),
        "hidden_act": config["hidden_act"],
        "keys": keys,
        "metadata": metadata,
        "sha256": hashlib.sha256(pathlib.Path(file).read_bytes()).hexdigest(),
        "loads": {},
    }
    if case.get("options"):
        result["convert_options"] = {
            k: str(v.relative_to(ROOT)) if isinstance(v, pathlib.Path) else v
            for k, v in case["options"].items()
        }
    for class_name in case["classes"]:
        cls = getattr(transformers, class_name)
        model, info = cls.from_pretrained(path, output_loading_info=True)
        model.eval()
        equal, compared = _params_equal(model, case["reference"])
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True)
        diffs = {
            "sequence_output": _max_diff(out.hidden_states[-1], golden["sequence_output" + s], mask)
        }
        if class_name == "ElectraForPreTraining":  # per-token replaced-token logits
            diffs["discriminator_logits"] = _max_diff(
                out.logits, golden["discriminator_logits"], mask
            )
        elif class_name.endswith("ForMaskedLM"):
            diffs["mlm_logits"] = _max_diff(out.logits, golden["mlm_logits" + s], mask)
        elif class_name.endswith("ForPreTraining"):
            nsp = out.sop_logits if family == "albert" else out.seq_relationship_logits
            diffs["mlm_logits"] = _max_diff(out.prediction_logits, golden["mlm_logits" + s], mask)
            diffs["nsp_logits"] = _max_diff(nsp, golden["nsp_logits" + s])
        elif "pooled_output" + s in golden:  # ElectraModel has no pooler
            diffs["pooled_output"] = _max_diff(out.pooler_output, golden["pooled_output" + s])
        result["loads"][class_name] = {
            "missing_keys": sorted(info["missing_keys"]),
            "unexpected_keys": sorted(info["unexpected_keys"]),
            "mismatched_keys": sorted(str(k) for k in info["mismatched_keys"]),
            "error_msgs": [str(e) for e in info["error_msgs"]],
            "params_equal_reference": equal,
            "params_compared": compared,
            "max_diff": diffs,
        }
        print(family, class_name, json.dumps(result["loads"][class_name], indent=None)[:400])
    return result


def main():
    record = {
        "kerasbert": kerasbert.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "keras_backend": os.environ["KERAS_BACKEND"],
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for family, case in CASES.items():
            record["models"][family] = check(family, case, os.path.join(tmp, family))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
