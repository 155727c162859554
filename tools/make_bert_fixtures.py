"""Generate tiny random BERT checkpoints and reference outputs for the kerasbert tests.

For each ``hidden_act`` in (``gelu``, ``gelu_new``) this script builds a tiny
``transformers.BertForPreTraining`` (float32, eval mode), overwrites *every* parameter with
seeded random values (so LayerNorm / bias / head bugs cannot hide behind HF's ones/zeros
initialisation), re-ties the MLM decoder to the word embeddings and writes to
``tests/fixtures/bert_tiny_<hidden_act>/``:

- ``config.json``        HF config (``"model_type": "bert"``, the ``hidden_act``, ...).
- ``model.safetensors``  weights written by ``save_pretrained(..., safe_serialization=True)``.
- ``pytorch_model.bin``  the same weights via ``torch.save(model.state_dict(), ...)``.
- ``goldens.npz``        inputs (``token_ids``, ``segment_ids``, ``lengths``,
                         ``attention_mask``; int32) and float32 outputs ``sequence_output``
                         (3, 11, 32), ``pooled_output`` (3, 32), ``mlm_logits`` (3, 11, 120) and
                         ``nsp_logits`` (3, 2). Values at padded positions are kept as computed.

It also (re)writes its own section of ``tests/fixtures/README.md``.

Reference environment (CPU only is fine)::

    python3 -m venv /tmp/ref
    /tmp/ref/bin/pip install torch==2.13.0 transformers==4.57.6 safetensors numpy

Run from the repository root::

    /tmp/ref/bin/python tools/make_bert_fixtures.py

The output is deterministic (fixed seeds); rerunning replaces the fixture folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForPreTraining

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
README_PATH = FIXTURES_DIR / "README.md"

HIDDEN_ACTS = ("gelu", "gelu_new")
WEIGHT_SEED = 1234
INPUT_SEED = 4321
WEIGHT_STD = 0.2
GAMMA_STD = 0.1

CLS_ID = 2
SEP_ID = 3
FIRST_RANDOM_ID = 5
MAX_LEN = 11
# (length of first segment incl. CLS and its SEP, total real length) per row.
# Rows 0 and 1 contain two segments; row 2 is a single segment.
ROW_LAYOUT = ((6, 11), (4, 7), (4, 4))

CONFIG_KWARGS = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
)


def build_model(hidden_act: str) -> BertForPreTraining:
    """Build the tiny model and fill every parameter with seeded random values."""
    config = BertConfig(hidden_act=hidden_act, **CONFIG_KWARGS)
    # Eager attention is the plain reference implementation.
    config._attn_implementation = "eager"
    torch.manual_seed(WEIGHT_SEED)
    model = BertForPreTraining(config).eval()

    gammas = {
        id(module.weight) for module in model.modules() if isinstance(module, torch.nn.LayerNorm)
    }
    generator = torch.Generator().manual_seed(WEIGHT_SEED)
    with torch.no_grad():
        # named_parameters() yields each shared tensor once, in a fixed order.
        for _, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            if id(param) in gammas:
                param.copy_(1.0 + GAMMA_STD * noise)
            else:
                param.copy_(WEIGHT_STD * noise)
    model.tie_weights()

    head = model.cls.predictions
    assert head.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert head.decoder.bias is head.bias
    return model


def make_inputs() -> dict[str, np.ndarray]:
    """Create a padded batch of three sequences (lengths 11, 7 and 4)."""
    rng = np.random.default_rng(INPUT_SEED)
    vocab_size = CONFIG_KWARGS["vocab_size"]
    batch = len(ROW_LAYOUT)
    token_ids = np.zeros((batch, MAX_LEN), dtype=np.int32)
    segment_ids = np.zeros((batch, MAX_LEN), dtype=np.int32)
    lengths = np.zeros((batch,), dtype=np.int32)
    for row, (first_len, total_len) in enumerate(ROW_LAYOUT):
        token_ids[row, :total_len] = rng.integers(FIRST_RANDOM_ID, vocab_size, size=total_len)
        token_ids[row, 0] = CLS_ID
        token_ids[row, first_len - 1] = SEP_ID
        token_ids[row, total_len - 1] = SEP_ID
        segment_ids[row, first_len:total_len] = 1
        lengths[row] = total_len
    attention_mask = (np.arange(MAX_LEN)[None, :] < lengths[:, None]).astype(np.int32)

    assert np.all(token_ids[attention_mask == 1] != 0)
    assert np.all(token_ids[attention_mask == 0] == 0)
    assert (segment_ids == 1).any(axis=1).sum() >= 2
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "lengths": lengths,
        "attention_mask": attention_mask,
    }


def run_model(model: BertForPreTraining, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the model and return float32 numpy goldens."""
    kwargs = dict(
        input_ids=torch.from_numpy(inputs["token_ids"]).long(),
        token_type_ids=torch.from_numpy(inputs["segment_ids"]).long(),
        attention_mask=torch.from_numpy(inputs["attention_mask"]).long(),
    )
    with torch.no_grad():
        outputs = model(**kwargs, output_hidden_states=True)
        pooled = model.bert(**kwargs).pooler_output
    result = {
        "sequence_output": outputs.hidden_states[-1],
        "pooled_output": pooled,
        "mlm_logits": outputs.prediction_logits,
        "nsp_logits": outputs.seq_relationship_logits,
    }
    return {name: value.numpy().astype(np.float32) for name, value in result.items()}


def check_reload(out_dir: Path, inputs: dict[str, np.ndarray], goldens: dict[str, np.ndarray]):
    """Reload both weight files and make sure they reproduce the goldens."""
    reloaded = BertForPreTraining.from_pretrained(out_dir, attn_implementation="eager").eval()
    for name, value in run_model(reloaded, inputs).items():
        np.testing.assert_allclose(value, goldens[name], rtol=0, atol=1e-6, err_msg=name)

    state = torch.load(out_dir / "pytorch_model.bin", weights_only=True)
    reference = reloaded.state_dict()
    assert state.keys() == reference.keys()
    for name, tensor in state.items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0)

    for name, tensor in load_file(out_dir / "model.safetensors").items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0)


def write_variant(hidden_act: str, inputs: dict[str, np.ndarray]) -> Path:
    out_dir = FIXTURES_DIR / f"bert_tiny_{hidden_act}"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)

    model = build_model(hidden_act)
    model.save_pretrained(out_dir, safe_serialization=True)
    torch.save(model.state_dict(), out_dir / "pytorch_model.bin")

    goldens = run_model(model, inputs)
    np.savez(out_dir / "goldens.npz", **inputs, **goldens)
    check_reload(out_dir, inputs, goldens)

    print(f"wrote {out_dir.relative_to(REPO_ROOT)}")
    for path in sorted(out_dir.iterdir()):
        print(f"  {path.name:20s} {path.stat().st_size:8d} bytes")
    print(f"  safetensors keys: {sorted(load_file(out_dir / 'model.safetensors'))}")
    return out_dir


README_SECTION = """\
## bert_tiny_gelu/ and bert_tiny_gelu_new/

Generated by `tools/make_bert_fixtures.py` (see its docstring for the venv and command).

Tiny random `transformers.BertForPreTraining` checkpoints (vocab 120, hidden 32, 2 layers,
4 heads, intermediate 37, max positions 64, 2 token types, `layer_norm_eps=1e-12`), one per
`hidden_act`: `gelu` (erf GELU) and `gelu_new` (tanh approximation). Every parameter, including
LayerNorm gamma/beta, all biases, `cls.predictions.bias` and the NSP head, is random; the MLM
decoder is tied to the word embeddings and its bias is `cls.predictions.bias`.

- `config.json`: HF config from `save_pretrained`.
- `model.safetensors`: `save_pretrained(..., safe_serialization=True)`; tied tensors
  (`cls.predictions.decoder.weight` / `.bias`) are dropped by HF.
- `pytorch_model.bin`: `torch.save(model.state_dict())` (contains the tied keys too).
- `goldens.npz`: int32 `token_ids`, `segment_ids`, `attention_mask` (3, 11) and `lengths` (3,)
  (real lengths 11, 7, 4; CLS id 2, SEP id 3, padding id 0; rows 0 and 1 have two segments,
  row 2 has one), and float32 `sequence_output` (3, 11, 32), `pooled_output` (3, 32),
  `mlm_logits` (3, 11, 120), `nsp_logits` (3, 2) from the model in eval mode with the
  attention mask. Values at padded positions are whatever HF computed; ignore them.

Both folders hold bit-identical weights (same seed); only `hidden_act` differs. The two sets of
goldens differ by only ~1e-3 at most, so a test that must tell `gelu` from `gelu_new` needs a
tolerance well below that (float32 reproductions typically agree to ~1e-5).
"""


def update_readme_section(key: str, body: str) -> None:
    """Replace (or append) the README section delimited by markers for ``key``."""
    begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = README_PATH.read_text() if README_PATH.exists() else "# Test fixtures\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    README_PATH.write_text(text)


def main() -> None:
    torch.set_num_threads(1)
    inputs = make_inputs()
    for hidden_act in HIDDEN_ACTS:
        write_variant(hidden_act, inputs)
    update_readme_section("make_bert_fixtures", README_SECTION)


if __name__ == "__main__":
    main()
