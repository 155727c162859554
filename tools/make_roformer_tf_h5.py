"""Add HF's TensorFlow weights, ``tf_model.h5``, to the RoFormer v1 fixtures.

For each of ``tests/fixtures/roformer_tiny/{base,mapped}`` (written by
``tools/make_roformer_fixtures.py`` from ``RoFormerForMaskedLM``), HF transformers'
``TFRoFormerForMaskedLM.from_pretrained(folder, from_pt=True)`` converts the folder's
``model.safetensors`` and ``save_pretrained`` writes ``tf_model.h5`` next to it. The script
checks that the TF model reproduces the folder's goldens (sequence output and MLM logits on
real tokens, within 1e-5) and that the file holds the tied word embeddings twice (under the
model's and under the MLM head's h5 group, as HF writes them), which kerasbert reads once.

Environment: the ``/tmp/ref`` venv (transformers 4.57.6, torch 2.13.0+cpu, tensorflow-cpu
2.21.0 with tf_keras 2.21.0). Run from the repository root, after the main generator::

    /tmp/ref/bin/python tools/make_roformer_tf_h5.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_OFFLINE"] = "1"

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import transformers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "roformer_tiny"


def word_embedding_copies(path: Path) -> int:
    found = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: found.append(name)
            if isinstance(obj, h5py.Dataset) and "word_embeddings" in name
            else None
        )
    return len(found)


def main() -> None:
    transformers.logging.set_verbosity_error()
    for name in ("base", "mapped"):
        folder = ROOT / name
        model = transformers.TFRoFormerForMaskedLM.from_pretrained(str(folder), from_pt=True)
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            shutil.copy(Path(tmp) / "tf_model.h5", folder / "tf_model.h5")
            # Reload from the h5 alone (with the safetensors beside it, HF would read those).
            reloaded = transformers.TFRoFormerForMaskedLM.from_pretrained(tmp)
        with np.load(folder / "goldens.npz") as g:
            out = reloaded(
                input_ids=g["token_ids"],
                token_type_ids=g["segment_ids"],
                attention_mask=g["attention_mask"],
                output_hidden_states=True,
                training=False,
            )
            mask = g["attention_mask"].astype(bool)
            diffs = {
                "sequence_output": float(
                    np.abs(out.hidden_states[-1].numpy() - g["sequence_output"])[mask].max()
                ),
                "mlm_logits": float(np.abs(out.logits.numpy() - g["mlm_logits"])[mask].max()),
            }
        print(f"{name}: TFRoFormerForMaskedLM from tf_model.h5 vs goldens {diffs}")
        assert max(diffs.values()) < 1e-5, diffs
        assert word_embedding_copies(folder / "tf_model.h5") == 2
        print(f"  {folder / 'tf_model.h5'}: {(folder / 'tf_model.h5').stat().st_size} bytes")


if __name__ == "__main__":
    main()
