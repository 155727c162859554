"""Convert the T5 / mT5 fixtures' mesh-TF checkpoints with kerasbert and load them in transformers.

For each variant of ``tests/fixtures/t5_tiny`` (``t5.1.0``, ``t5.1.1``, ``mt5.1.1``), kerasbert
(its own venv, ``KERASBERT_PYTHON``, default ``.venv/bin/python``, in a subprocess) runs
``kerasbert.convert.convert("<v>/tf/model.ckpt", ..., to="safetensors", config="<v>/config.json")``
into a temporary folder; then transformers (this venv) loads that folder with

- ``T5ForConditionalGeneration`` (``MT5ForConditionalGeneration`` for ``mt5.1.1``)
  ``from_pretrained(..., output_loading_info=True)``: no missing, unexpected or mismatched keys,
  and every parameter (``state_dict``, tied copies included) equal bit for bit to the fixture's
  own HF model (its ``model.safetensors``, written by ``save_pretrained``); its decoder logits
  (``input_ids`` = ``encoder_ids`` with the padding mask, ``decoder_input_ids`` =
  ``decoder_ids``, as the goldens were made) and its greedy ``generate`` (12 new tokens, with
  and without ``min_new_tokens``) against ``goldens.npz``;
- ``T5EncoderModel`` (``MT5EncoderModel`` for ``mt5.1.1``): nothing missing or mismatched, only
  the decoder and the untied head unused; its ``last_hidden_state`` against ``encoder_states``.

It also reads kerasbert's written ``config.json`` with ``AutoConfig`` and checks the values
HF's T5 reads (``feed_forward_proj``, ``is_gated_act``, ``dense_act_fn``,
``tie_word_embeddings``, ``d_kv``, ``num_decoder_layers``, ``relative_attention_*``, ...)
against those of the fixture's own config, and that ``architectures`` names the loading class.
Everything goes to ``tests/fixtures/t5_tiny/hf_loads.json`` with the written file's SHA-256
and tensor names (the same names as the fixture's ``save_pretrained`` file), which
``tests/test_t5.py`` (no torch there) checks kerasbert still writes.

Environment: the ``/tmp/ref`` venv of tools/make_t5_fixtures.py (torch 2.13.0+cpu,
transformers 4.57.6, safetensors, numpy; CPU only); that script runs this one as its last step.
Run from the repository root::

    /tmp/ref/bin/python tools/verify_t5_hf_loads.py
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "t5_tiny"
OUT = FIXTURES / "hf_loads.json"
KERASBERT_PYTHON = os.environ.get("KERASBERT_PYTHON", str(REPO_ROOT / ".venv" / "bin" / "python"))
VARIANTS = {  # folder: (conditional-generation class, encoder class)
    "t5.1.0": (transformers.T5ForConditionalGeneration, transformers.T5EncoderModel),
    "t5.1.1": (transformers.T5ForConditionalGeneration, transformers.T5EncoderModel),
    "mt5.1.1": (transformers.MT5ForConditionalGeneration, transformers.MT5EncoderModel),
}
CONFIG_KEYS = (
    "model_type", "feed_forward_proj", "is_gated_act", "dense_act_fn", "tie_word_embeddings",
    "vocab_size", "d_model", "d_kv", "d_ff", "num_heads", "num_layers", "num_decoder_layers",
    "relative_attention_num_buckets", "relative_attention_max_distance", "layer_norm_epsilon",
    "pad_token_id", "eos_token_id", "decoder_start_token_id",
)  # fmt: skip
PAD, NEW_TOKENS = 0, 12

KERASBERT_CONVERT = """
import json, sys
from kerasbert.convert import convert
for source, destination, config in json.loads(sys.argv[1]):
    convert(source, destination, to="safetensors", config=config)
"""


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def loading_info(info: dict) -> dict:
    return {k: sorted(map(str, v)) for k, v in info.items() if k != "error_msgs"}


def hf_config_values(folder: Path) -> dict:
    config = transformers.AutoConfig.from_pretrained(str(folder))
    values = {k: getattr(config, k) for k in CONFIG_KEYS}
    values["class"] = type(config).__name__
    return values


def greedy(model, ids, mask, **extra) -> np.ndarray:
    with torch.no_grad():
        tokens = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, num_beams=1,
                                max_new_tokens=NEW_TOKENS, **extra).numpy()  # fmt: skip
    return np.pad(tokens, ((0, 0), (0, NEW_TOKENS + 1 - tokens.shape[1])))


def check_variant(variant: str, folder: Path) -> dict:
    seq2seq_cls, encoder_cls = VARIANTS[variant]
    fixture = FIXTURES / variant
    g = np.load(fixture / "goldens.npz")
    ids = torch.from_numpy(g["encoder_ids"]).long()
    mask = torch.from_numpy((g["encoder_ids"] != PAD).astype(np.int64))
    reference = state(seq2seq_cls.from_pretrained(str(fixture)))

    # The written config, as HF reads it, against the fixture's own.
    written = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    got, expected = hf_config_values(folder), hf_config_values(fixture)
    assert got == expected, {k: (got[k], expected[k]) for k in got if got[k] != expected[k]}
    assert written["architectures"] == [seq2seq_cls.__name__], written["architectures"]

    model, info = seq2seq_cls.from_pretrained(str(folder), output_loading_info=True)
    model.eval()
    info = loading_info(info)
    assert not any(info.values()), info
    loaded = state(model)
    assert sorted(loaded) == sorted(reference), sorted(set(loaded) ^ set(reference))
    for key, value in reference.items():
        assert loaded[key].dtype == value.dtype and np.array_equal(loaded[key], value), key
    with torch.no_grad():
        decoder_ids = torch.from_numpy(g["decoder_ids"]).long()
        logits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
    logits_diff = float(np.abs(logits.numpy() - g["decoder_logits"]).max())
    assert logits_diff == 0.0, logits_diff
    greedy_equal = {
        "greedy_ids": bool(np.array_equal(greedy(model, ids, mask), g["greedy_ids"])),
        "greedy_ids_min": bool(np.array_equal(
            greedy(model, ids, mask, min_new_tokens=NEW_TOKENS), g["greedy_ids_min"])),
    }  # fmt: skip
    assert all(greedy_equal.values()), greedy_equal

    encoder, encoder_info = encoder_cls.from_pretrained(str(folder), output_loading_info=True)
    encoder.eval()
    encoder_info = loading_info(encoder_info)
    assert not encoder_info["missing_keys"] and not encoder_info["mismatched_keys"], encoder_info
    unused = {k for k in encoder_info["unexpected_keys"] if not k.startswith("decoder.")}
    assert unused <= {"lm_head.weight"}, unused
    encoder_state = state(encoder)
    for key, value in encoder_state.items():
        assert np.array_equal(value, reference[key]), key
    with torch.no_grad():
        states = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    real = g["encoder_ids"] != PAD
    states_diff = float(np.abs(states - g["encoder_states"])[real].max())
    assert states_diff == 0.0, states_diff

    with safe_open(str(folder / "model.safetensors"), framework="numpy") as f:
        tensors = sorted(f.keys())
    with safe_open(str(fixture / "model.safetensors"), framework="numpy") as f:
        assert tensors == sorted(f.keys())  # the names save_pretrained writes
    print(f"  {variant}: {seq2seq_cls.__name__} loads kerasbert's safetensors, nothing missing "
          f"or unexpected, every parameter equal, logits diff {logits_diff}, greedy equal; "
          f"{encoder_cls.__name__}: states diff {states_diff}, "
          f"{len(encoder_info['unexpected_keys'])} unused decoder / head keys")  # fmt: skip
    return {
        "source": f"{variant}/tf/model.ckpt",
        "config": f"{variant}/config.json",
        "class": seq2seq_cls.__name__,
        "loading_info": info,
        "parameters_equal": True,
        "max_abs_logits_diff": logits_diff,
        "greedy_equal": greedy_equal,
        "encoder_class": encoder_cls.__name__,
        "encoder_loading_info": {
            "missing_keys": encoder_info["missing_keys"],
            "mismatched_keys": encoder_info["mismatched_keys"],
            "unexpected_keys_count": len(encoder_info["unexpected_keys"]),
            "unexpected_keys_not_decoder": sorted(unused),
        },
        "encoder_parameters_equal": True,
        "max_abs_encoder_states_diff": states_diff,
        "architectures": written["architectures"],
        "hf_config": got,
        "tensors_as_save_pretrained": True,
        "sha256": hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest(),
        "tensors": tensors,
    }


def main() -> None:
    torch.set_num_threads(1)
    record = {"kerasbert_python": os.path.relpath(KERASBERT_PYTHON, REPO_ROOT),
              "transformers": transformers.__version__, "torch": torch.__version__,
              "models": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        steps = [[str(FIXTURES / v / "tf" / "model.ckpt"), str(tmp / v),
                  str(FIXTURES / v / "config.json")] for v in VARIANTS]  # fmt: skip
        env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
        subprocess.run([KERASBERT_PYTHON, "-c", KERASBERT_CONVERT, json.dumps(steps)],
                       check=True, cwd=REPO_ROOT, env=env)  # fmt: skip
        for variant in VARIANTS:
            record["models"][variant] = check_variant(variant, tmp / variant)
    write_json(OUT, record)
    print(f"  {OUT.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
