"""Write tiny random RoFormer v1 reference fixtures (HF safetensors + bert4keras-named TF).

Two folders are (re)written under ``tests/fixtures/roformer_tiny/``, each from a
``transformers.RoFormerForMaskedLM`` (the independent reference) with every parameter random:

- ``base/``    vocab 100, hidden 32, 2 layers, 4 heads (head size 8), intermediate 40,
               32 positions, ``rotary_value=False`` (as every released RoFormer v1);
- ``mapped/``  the same with ``embedding_size=16`` (HF's ``embeddings_project``, bert4keras's
               ``Embedding-Mapping``) and ``rotary_value=True`` (values rotated too).

Each folder holds the HF ``config.json`` + ``model.safetensors`` (``save_pretrained``), a TF1
``tf.compat.v1.train.Saver`` checkpoint ``bert_model.ckpt.*`` + ``checkpoint`` of the same
weights under the names bert4keras's ``RoFormer`` reads (BERT's, without
``position_embeddings``; plus a random ``bert/pooler/dense``, RoFormer-Sim's linear pooler, which
HF's RoFormer has no place for), a ``bert_config.json`` in the format of Zhuiyi's releases, and
``goldens.npz``: inputs and float32 outputs of the HF model in eval mode, for a padded batch
with both segment ids and for a batch longer (48) than ``max_position_embeddings`` (32),
computed by the same weights in an HF model built with 64 positions (RoFormer's sinusoid is a
function, not a trained table, so only HF's buffer size limits the length).

Checks done by the script (it stops on failure):

- ``from_pretrained`` of each folder reproduces the goldens; the TF checkpoint holds exactly the
  intended arrays (``tf.train.load_variable``);
- ``transformers.load_tf_weights_in_roformer`` rebuilds every HF parameter from the TF
  checkpoint's other variables, except, for ``mapped``, ``roformer.embeddings_project``:
  HF's importer has no rule for ``bert/encoder/embedding_hidden_mapping_in`` nor for
  ``bert/pooler/dense``, and stops with an AttributeError on either, so it reads a copy
  without them;
- an independent float64 NumPy forward pass from the TF-named arrays with bert4keras's rotary
  formulas (``sinusoidal_embeddings`` interleaved ``sin, cos``; ``apply_rotary_position_embeddings``
  rotating channel pairs ``(2i, 2i + 1)``) reproduces the goldens, while rotating the pairs
  ``(i, i + d/2)`` (GPT-NeoX's layout) or not rotating does not;
- kerasbert's HF safetensors output loads in ``RoFormerForMaskedLM`` / ``RoFormerModel`` with
  the goldens' outputs. kerasbert runs in its own venv (``KERASBERT_PYTHON``, default
  ``.venv/bin/python``, JAX backend), converting: ``base``'s TF checkpoint (``model="roformer"``,
  ``hidden_act="gelu_erf"``: bert4keras's ``gelu``) to safetensors, and ``mapped``'s HF folder
  to a TF checkpoint and that to safetensors. The record (HF's loading info, diffs, the
  written tensors' names and SHA-256) goes to ``roformer_tiny/hf_loads.json``.

It also writes its section of ``tests/fixtures/README.md`` (between the
``make_roformer_fixtures`` markers).

Environment: the ``/tmp/ref`` venv (torch 2.13.0+cpu, transformers 4.57.6, tensorflow-cpu
2.21.0, safetensors, numpy; CPU only), and kerasbert's own venv for the last check. Run from
the repository root::

    /tmp/ref/bin/python tools/make_roformer_fixtures.py

The output is deterministic (fixed seeds); rerunning rewrites the same files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from transformers import (  # noqa: E402
    RoFormerConfig,
    RoFormerForMaskedLM,
    RoFormerModel,
    load_tf_weights_in_roformer,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
ROOT_DIR = FIXTURES_DIR / "roformer_tiny"
README_PATH = FIXTURES_DIR / "README.md"
README_KEY = "make_roformer_fixtures"
KERASBERT_PYTHON = os.environ.get("KERASBERT_PYTHON", str(REPO_ROOT / ".venv" / "bin" / "python"))

MAX_FOLDER_BYTES = 600 * 1024  # two variants
TOL = 1e-5
WEIGHT_STD = 0.2
GAMMA_STD = 0.1
INPUT_SEED = 4141
POOLER_SEED = 77

CLS_ID, SEP_ID, FIRST_RANDOM_ID = 2, 3, 5
MAX_LEN = 13
# (length of segment A incl. CLS and its SEP, total real length) per row; row 2 has one segment.
ROW_LAYOUT = ((7, 13), (5, 9), (5, 5))
LONG_LEN = 48  # > max_position_embeddings (32): RoFormer's positions are a function
LONG_LAYOUT = ((20, 48), (11, 30))
LONG_POSITIONS = 64  # the HF model that computes the long goldens

COMMON = dict(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=40,
    max_position_embeddings=32,
    type_vocab_size=2,
    hidden_act="gelu",  # HF: erf, as bert4keras's "gelu" that trained RoFormer
    layer_norm_eps=1e-12,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    initializer_range=0.02,
)
VARIANTS = {
    "base": dict(embedding_size=None, rotary_value=False, seed=505),
    "mapped": dict(embedding_size=16, rotary_value=True, seed=606),
}
# Zhuiyi's chinese_roformer bert_config.json keys (bert4keras reads these).
GOOGLE_KEYS = (
    "attention_probs_dropout_prob",
    "hidden_act",
    "hidden_dropout_prob",
    "embedding_size",
    "hidden_size",
    "initializer_range",
    "intermediate_size",
    "max_position_embeddings",
    "num_attention_heads",
    "num_hidden_layers",
    "type_vocab_size",
    "vocab_size",
)
HF_OUTPUTS = ("sequence_output", "mlm_logits")

v1 = tf.compat.v1


# --------------------------------------------------------------------------------------------
# HF model, inputs, goldens
# --------------------------------------------------------------------------------------------


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def build(name: str, max_positions: int | None = None) -> RoFormerForMaskedLM:
    spec = VARIANTS[name]
    kwargs = dict(COMMON, embedding_size=spec["embedding_size"], rotary_value=spec["rotary_value"])
    if max_positions is not None:
        kwargs["max_position_embeddings"] = max_positions
    torch.manual_seed(spec["seed"])
    return RoFormerForMaskedLM(RoFormerConfig(**kwargs))


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Every trained parameter random: LayerNorm gamma ~ 1 + 0.1 N(0, 1), the rest 0.2 N(0, 1).
    The rotary sinusoid (``embed_positions``, a fixed parameter) keeps HF's values."""
    gammas = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "embed_positions" in name:
                continue
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            param.copy_(1.0 + GAMMA_STD * noise if id(param) in gammas else WEIGHT_STD * noise)
    model.tie_weights()
    model.eval()


def make_inputs(vocab_size: int, layout, length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = len(layout)
    token_ids = np.zeros((batch, length), dtype=np.int32)
    segment_ids = np.zeros((batch, length), dtype=np.int32)
    lengths = np.zeros((batch,), dtype=np.int32)
    for row, (first_len, total_len) in enumerate(layout):
        token_ids[row, :total_len] = rng.integers(FIRST_RANDOM_ID, vocab_size, size=total_len)
        token_ids[row, 0] = CLS_ID
        token_ids[row, first_len - 1] = SEP_ID
        token_ids[row, total_len - 1] = SEP_ID
        segment_ids[row, first_len:total_len] = 1
        lengths[row] = total_len
    attention_mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int32)
    assert np.all(token_ids[attention_mask == 0] == 0)
    assert np.all(token_ids[attention_mask == 1] != 0)
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "attention_mask": attention_mask,
        "lengths": lengths,
    }


def torch_inputs(inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.from_numpy(inputs["token_ids"]).long(),
        "token_type_ids": torch.from_numpy(inputs["segment_ids"]).long(),
        "attention_mask": torch.from_numpy(inputs["attention_mask"]).long(),
    }


def run_hf(model: RoFormerForMaskedLM, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    kwargs = torch_inputs(inputs)
    with torch.no_grad():
        out = model(**kwargs, output_hidden_states=True)
        bare = model.roformer(**kwargs)
    assert torch.equal(bare.last_hidden_state, out.hidden_states[-1])
    return {
        "sequence_output": bare.last_hidden_state.numpy().astype(np.float32),
        "mlm_logits": out.logits.numpy().astype(np.float32),
    }


def max_diffs(got: dict, want: dict, lengths, names=HF_OUTPUTS, suffix="") -> dict[str, float]:
    """Max abs diff per output over real tokens (per-token outputs) or all rows."""
    diffs = {}
    for name in names:
        a, b = np.asarray(got[name]), np.asarray(want[name + suffix])
        if a.ndim == 3:
            diffs[name] = max(
                float(np.abs(a[r, :n] - b[r, :n]).max()) for r, n in enumerate(lengths)
            )
        else:
            diffs[name] = float(np.abs(a - b).max())
    return diffs


def fmt(diffs: dict[str, float]) -> str:
    short = {"sequence_output": "seq", "mlm_logits": "mlm", "pooled_linear": "pooled"}
    return ", ".join(f"{short.get(k, k)} {v:.1e}" for k, v in diffs.items())


# --------------------------------------------------------------------------------------------
# bert4keras names and the TF checkpoint
# --------------------------------------------------------------------------------------------


def to_bert4keras(state: dict[str, np.ndarray], config: RoFormerConfig) -> dict[str, np.ndarray]:
    """HF RoFormerForMaskedLM state -> the names bert4keras's RoFormer maps its layers to."""
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        used.add(name)
        return np.ascontiguousarray(state[name], dtype=np.float32)

    def dense(tf_name: str, hf: str) -> None:
        out[f"{tf_name}/kernel"] = np.ascontiguousarray(take(f"{hf}.weight").T)
        out[f"{tf_name}/bias"] = take(f"{hf}.bias")

    def layer_norm(tf_name: str, hf: str) -> None:
        out[f"{tf_name}/gamma"] = take(f"{hf}.weight")
        out[f"{tf_name}/beta"] = take(f"{hf}.bias")

    for kind in ("word", "token_type"):
        out[f"bert/embeddings/{kind}_embeddings"] = take(
            f"roformer.embeddings.{kind}_embeddings.weight"
        )
    layer_norm("bert/embeddings/LayerNorm", "roformer.embeddings.LayerNorm")
    if config.embedding_size != config.hidden_size:
        dense("bert/encoder/embedding_hidden_mapping_in", "roformer.embeddings_project")
    for i in range(config.num_hidden_layers):
        t, h = f"bert/encoder/layer_{i}", f"roformer.encoder.layer.{i}"
        for proj in ("query", "key", "value"):
            dense(f"{t}/attention/self/{proj}", f"{h}.attention.self.{proj}")
        dense(f"{t}/attention/output/dense", f"{h}.attention.output.dense")
        layer_norm(f"{t}/attention/output/LayerNorm", f"{h}.attention.output.LayerNorm")
        dense(f"{t}/intermediate/dense", f"{h}.intermediate.dense")
        dense(f"{t}/output/dense", f"{h}.output.dense")
        layer_norm(f"{t}/output/LayerNorm", f"{h}.output.LayerNorm")
    dense("cls/predictions/transform/dense", "cls.predictions.transform.dense")
    layer_norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm")
    out["cls/predictions/output_bias"] = take("cls.predictions.bias")

    not_weights = {"roformer.encoder.embed_positions.weight"}  # the fixed sinusoid
    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert np.array_equal(
        state["cls.predictions.decoder.weight"], out["bert/embeddings/word_embeddings"]
    )
    assert np.array_equal(state["cls.predictions.decoder.bias"], out["cls/predictions/output_bias"])
    leftover = set(state) - used - tied - not_weights
    assert not leftover, leftover
    return out


def write_tf_checkpoint(prefix: Path, weights: dict[str, np.ndarray]) -> None:
    """Save ``weights`` with a TF1 Saver (op names = checkpoint names), as bert4keras's
    ``save_weights_as_checkpoint`` does (no global_step), and read them back."""
    with tf.Graph().as_default():
        var_list = {}
        for name in sorted(weights):
            var = v1.Variable(weights[name], dtype=tf.float32, name=name)
            assert var.op.name == name, (var.op.name, name)
            var_list[name] = var
        saver = v1.train.Saver(var_list=var_list, save_relative_paths=True, max_to_keep=1)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            saved = saver.save(sess, str(prefix), write_meta_graph=False)
    assert saved == str(prefix), saved
    listed = dict(tf.train.list_variables(str(prefix)))
    assert set(listed) == set(weights), sorted(set(listed) ^ set(weights))
    for name, value in weights.items():
        got = tf.train.load_variable(str(prefix), name)
        assert got.dtype == np.float32 and np.array_equal(got, value), name
    print(f"  {prefix.name}: {len(listed)} variables written and read back bit-identically")


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------
# Independent float64 NumPy forward pass with bert4keras's formulas
# --------------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _layer_norm(x, w, scope, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w[f"{scope}/gamma"] + w[f"{scope}/beta"]


def _dense(x, w, scope):
    return x @ w[f"{scope}/kernel"] + w[f"{scope}/bias"]


def sinusoid_table(length: int, dim: int) -> np.ndarray:
    """bert4keras's ``sinusoidal_embeddings``: row p = sin, cos of p * 10000**(-2i/dim),
    interleaved."""
    inv = np.power(10000.0, -2.0 * np.arange(dim // 2, dtype=np.float64) / dim)
    angles = np.arange(length, dtype=np.float64)[:, None] * inv
    return np.stack([np.sin(angles), np.cos(angles)], axis=-1).reshape(length, dim)


def rotate(x: np.ndarray, table: np.ndarray, variant: str = "") -> np.ndarray:
    """``x`` (b, heads, t, d) rotated by RoPE; ``variant="half"`` pairs (i, i + d/2)."""
    if variant == "none":
        return x
    if variant == "half":
        d = x.shape[-1]
        sin, cos = table[:, 0::2], table[:, 1::2]
        a, b = x[..., : d // 2], x[..., d // 2 :]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)
    # bert4keras's apply_rotary_position_embeddings
    cos = np.repeat(table[:, 1::2], 2, axis=-1)
    sin = np.repeat(table[:, 0::2], 2, axis=-1)
    swapped = np.stack([-x[..., 1::2], x[..., 0::2]], axis=-1).reshape(x.shape)
    return x * cos + swapped * sin


def numpy_forward(w, cfg, inputs, variant=""):
    w = {k: v.astype(np.float64) for k, v in w.items()}
    ids, seg = inputs["token_ids"], inputs["segment_ids"]
    mask = inputs["attention_mask"].astype(np.float64)
    eps = cfg["layer_norm_eps"]
    x = w["bert/embeddings/word_embeddings"][ids] + w["bert/embeddings/token_type_embeddings"][seg]
    x = _layer_norm(x, w, "bert/embeddings/LayerNorm", eps)
    if "bert/encoder/embedding_hidden_mapping_in/kernel" in w:
        x = _dense(x, w, "bert/encoder/embedding_hidden_mapping_in")
    b, t, hidden = x.shape
    heads = cfg["num_attention_heads"]
    d = hidden // heads
    table = sinusoid_table(t, d)
    for i in range(cfg["num_hidden_layers"]):
        s = f"bert/encoder/layer_{i}"

        def split(y):
            return y.reshape(b, t, heads, d).transpose(0, 2, 1, 3)

        q, k, v = (
            split(_dense(x, w, f"{s}/attention/self/{n}")) for n in ("query", "key", "value")
        )
        q, k = rotate(q, table, variant), rotate(k, table, variant)
        if cfg["rotary_value"]:
            v = rotate(v, table, variant)
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + (1.0 - mask[:, None, None, :]) * -1e9
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs = probs / probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, hidden)
        a = _layer_norm(x + _dense(ctx, w, f"{s}/attention/output/dense"), w,
                        f"{s}/attention/output/LayerNorm", eps)  # fmt: skip
        f = _dense(_gelu(_dense(a, w, f"{s}/intermediate/dense")), w, f"{s}/output/dense")
        x = _layer_norm(a + f, w, f"{s}/output/LayerNorm", eps)
    h = _gelu(_dense(x, w, "cls/predictions/transform/dense"))
    h = _layer_norm(h, w, "cls/predictions/transform/LayerNorm", eps)
    mlm = h @ w["bert/embeddings/word_embeddings"].T + w["cls/predictions/output_bias"]
    return {"sequence_output": x, "mlm_logits": mlm}


def importer_fails(name: str, weights: dict[str, np.ndarray]) -> bool:
    """Whether ``load_tf_weights_in_roformer`` stops with an AttributeError on ``weights``."""
    model = build(name)
    with tempfile.TemporaryDirectory() as tmp:
        write_tf_checkpoint(Path(tmp) / "model.ckpt", weights)
        try:
            load_tf_weights_in_roformer(model, model.config, str(Path(tmp) / "model.ckpt"))
        except AttributeError:
            return True
    return False


# --------------------------------------------------------------------------------------------
# One variant
# --------------------------------------------------------------------------------------------


def make_variant(name: str, inputs: dict, long_inputs: dict) -> dict:
    print(name)
    folder = fresh_dir(ROOT_DIR / name)
    spec = VARIANTS[name]
    model = build(name)
    randomize(model, spec["seed"])
    config = model.config
    d = config.hidden_size // config.num_attention_heads
    head = model.cls.predictions
    assert head.decoder.weight is model.roformer.embeddings.word_embeddings.weight
    assert head.decoder.bias is head.bias
    goldens = run_hf(model, inputs)

    # Longer than the config's 32 positions: the same weights in a 64-position HF model.
    long_model = build(name, LONG_POSITIONS)
    state = model.state_dict()
    long_state = {k: v for k, v in state.items() if "embed_positions" not in k}
    missing, unexpected = long_model.load_state_dict(long_state, strict=False)
    assert missing == ["roformer.encoder.embed_positions.weight"] and not unexpected, missing
    long_model.eval()
    table64 = long_model.roformer.encoder.embed_positions.weight.detach().numpy()
    table32 = model.roformer.encoder.embed_positions.weight.detach().numpy()
    assert np.array_equal(table64[: config.max_position_embeddings], table32)
    long = run_hf(long_model, long_inputs)

    # HF's table is sin | cos halves (not interleaved); its rotation pairs (2i, 2i+1).
    theirs = np.concatenate([table64[:, : d // 2], table64[:, d // 2 :]], axis=-1)
    interleaved = np.stack([theirs[:, : d // 2], theirs[:, d // 2 :]], axis=-1).reshape(-1, d)
    table_vs_float64 = float(np.abs(interleaved - sinusoid_table(LONG_POSITIONS, d)).max())
    assert table_vs_float64 < 1e-6, table_vs_float64

    np_state = {k: v.detach().numpy() for k, v in state.items()}
    tf_weights = to_bert4keras(np_state, config)
    rng = np.random.default_rng(POOLER_SEED + spec["seed"])
    pooler = {
        "bert/pooler/dense/kernel": (WEIGHT_STD * rng.standard_normal((32, 32))).astype(np.float32),
        "bert/pooler/dense/bias": (WEIGHT_STD * rng.standard_normal(32)).astype(np.float32),
    }
    # RoFormer-Sim's pooler: with_pool="linear" = first token's output times the kernel.
    first = goldens["sequence_output"][:, 0].astype(np.float64)
    pooled = first @ pooler["bert/pooler/dense/kernel"] + pooler["bert/pooler/dense/bias"]

    model.save_pretrained(str(folder), safe_serialization=True)
    np.savez(
        folder / "goldens.npz",
        **inputs,
        **goldens,
        pooled_linear=pooled.astype(np.float32),
        **{f"long_{k}": v for k, v in long_inputs.items()},
        **{f"long_{k}": v for k, v in long.items()},
    )
    write_tf_checkpoint(folder / "bert_model.ckpt", {**tf_weights, **pooler})
    google = {key: getattr(config, key) for key in GOOGLE_KEYS}
    if config.rotary_value:
        google["rotary_value"] = True  # Zhuiyi's configs have none: every release has False
    write_json(folder / "bert_config.json", google)

    # 1. from_pretrained reproduces the goldens.
    reloaded = RoFormerForMaskedLM.from_pretrained(str(folder))
    reloaded.eval()
    reload_diffs = max_diffs(run_hf(reloaded, inputs), goldens, inputs["lengths"])
    print(f"  from_pretrained vs goldens: {fmt(reload_diffs)}")
    assert max(reload_diffs.values()) <= 1e-6

    # 2. HF's TF importer from the bert4keras names. It stops with an AttributeError on the
    # pooler and on embedding_hidden_mapping_in (no rule for either), so it reads a copy
    # without them.
    fresh = build(name)
    with torch.no_grad():
        for param_name, param in fresh.named_parameters():
            if "embed_positions" not in param_name:
                param.fill_(float("nan"))
    importable = {k: v for k, v in tf_weights.items() if "embedding_hidden_mapping_in" not in k}
    assert importer_fails(name, {**importable, **pooler})
    assert importer_fails(name, tf_weights) == bool(spec["embedding_size"])
    with tempfile.TemporaryDirectory() as tmp:
        write_tf_checkpoint(Path(tmp) / "importable.ckpt", importable)
        load_tf_weights_in_roformer(fresh, config, str(Path(tmp) / "importable.ckpt"))
    fresh.eval()
    fresh_state = fresh.state_dict()
    not_loaded = sorted(k for k, v in fresh_state.items() if torch.isnan(v).any())
    differ = sorted(
        k for k, v in fresh_state.items() if k not in not_loaded and not torch.equal(v, state[k])
    )
    assert not differ, differ
    expected_gap = ["roformer.embeddings_project.bias", "roformer.embeddings_project.weight"]
    assert not_loaded == (expected_gap if spec["embedding_size"] else []), not_loaded
    importer = "every parameter bit-identical"
    if not_loaded:
        importer = f"every parameter bit-identical except {not_loaded} (left unset)"
    else:
        tf_diffs = max_diffs(run_hf(fresh, inputs), goldens, inputs["lengths"])
        assert max(tf_diffs.values()) <= TOL, tf_diffs
    print(f"  load_tf_weights_in_roformer: {importer}")

    # 3. Independent NumPy forward from the bert4keras-named arrays.
    cfg = {**COMMON, "rotary_value": config.rotary_value}
    np_diffs = max_diffs(numpy_forward(tf_weights, cfg, inputs), goldens, inputs["lengths"])
    np_long = max_diffs(numpy_forward(tf_weights, cfg, long_inputs), long, long_inputs["lengths"])
    print(f"  float64 NumPy forward vs goldens: {fmt(np_diffs)}; long: {fmt(np_long)}")
    assert max(np_diffs.values()) <= 1e-4 and max(np_long.values()) <= 1e-4
    variants = {}
    for variant in ("half", "none"):
        variants[variant] = max_diffs(
            numpy_forward(tf_weights, cfg, inputs, variant), goldens, inputs["lengths"]
        )
        print(f"  (check) rotation {variant!r} instead: {fmt(variants[variant])}")
        assert min(variants[variant].values()) > 1e-2
    return {
        "folder": folder,
        "config": config,
        "goldens": goldens,
        "reload_diffs": reload_diffs,
        "importer": importer,
        "np_diffs": np_diffs,
        "np_long": np_long,
        "variants": variants,
        "table_vs_float64": table_vs_float64,
        "safetensors_keys": sorted(load_file(str(folder / "model.safetensors"))),
        "tf_names": sorted({**tf_weights, **pooler}),
    }


# --------------------------------------------------------------------------------------------
# kerasbert's safetensors output, loaded by transformers
# --------------------------------------------------------------------------------------------

KERASBERT_CONVERT = """
import json, sys
from kerasbert.convert import convert
for source, destination, to, options in json.loads(sys.argv[1]):
    print(convert(source, destination, to=to, **options))
"""


def kerasbert_convert(steps) -> None:
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    subprocess.run(
        [KERASBERT_PYTHON, "-c", KERASBERT_CONVERT, json.dumps(steps)],
        check=True,
        cwd=REPO_ROOT,
        env=env,
    )


def check_hf_loads(name: str, written: Path, info: dict, inputs: dict, source: str) -> dict:
    file = written / "model.safetensors"
    with safe_open(str(file), framework="numpy") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    config = json.loads((written / "config.json").read_text())
    reference = {k: v.detach().numpy() for k, v in build_reference(info).items()}
    record = {
        "source": source,
        "config": {
            k: config.get(k)
            for k in ("architectures", "model_type", "hidden_act", "embedding_size", "rotary_value")
        },  # fmt: skip
        "tensors": {
            k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
            for k, v in sorted(tensors.items())
        },  # fmt: skip
        "loads": {},
    }
    for cls in (RoFormerForMaskedLM, RoFormerModel):
        model, loading = cls.from_pretrained(str(written), output_loading_info=True)
        model.eval()
        state = model.state_dict()
        prefix = "" if cls is RoFormerForMaskedLM else "roformer."
        differ = sorted(
            k for k, v in state.items()
            if prefix + k in reference and not np.array_equal(v.numpy(), reference[prefix + k])
        )  # fmt: skip
        with torch.no_grad():
            out = model(**torch_inputs(inputs))
            if cls is RoFormerForMaskedLM:
                bare = model.roformer(**torch_inputs(inputs)).last_hidden_state
                got = {"sequence_output": bare, "mlm_logits": out.logits}
            else:
                got = {"sequence_output": out.last_hidden_state}
        diffs = max_diffs({k: v.numpy() for k, v in got.items()}, info["goldens"],
                          inputs["lengths"], names=tuple(got))  # fmt: skip
        record["loads"][cls.__name__] = {
            "missing_keys": sorted(loading["missing_keys"]),
            "unexpected_keys": sorted(loading["unexpected_keys"]),
            "mismatched_keys": sorted(str(k) for k in loading["mismatched_keys"]),
            "error_msgs": [str(e) for e in loading["error_msgs"]],
            "params_differing_from_reference": differ,
            "max_diff": diffs,
        }
        print(f"  {name} -> {cls.__name__}: {json.dumps(record['loads'][cls.__name__])}")
        assert not differ and max(diffs.values()) <= TOL, record["loads"][cls.__name__]
        assert not loading["mismatched_keys"] and not loading["error_msgs"]
        assert set(loading["missing_keys"]) <= {
            "encoder.embed_positions.weight",
            "roformer.encoder.embed_positions.weight",
        }
    return record


def build_reference(info: dict) -> dict:
    return RoFormerForMaskedLM.from_pretrained(str(info["folder"])).state_dict()


def verify_kerasbert_output(results: dict, inputs: dict) -> dict:
    print("kerasbert's safetensors in transformers")
    record = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "kerasbert_python": os.path.relpath(KERASBERT_PYTHON, REPO_ROOT),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base, mapped = results["base"]["folder"], results["mapped"]["folder"]
        kerasbert_convert([
            [str(base / "bert_model.ckpt"), str(tmp / "base_hf"), "safetensors",
             {"model": "roformer", "hidden_act": "gelu_erf"}],
            [str(mapped / "model.safetensors"), str(tmp / "mapped_tf"), "tf", {}],
            [str(tmp / "mapped_tf"), str(tmp / "mapped_hf"), "safetensors", {}],
        ])  # fmt: skip
        record["models"]["base"] = check_hf_loads(
            "base", tmp / "base_hf", results["base"], inputs,
            "base/bert_model.ckpt -> safetensors (model='roformer', hidden_act='gelu_erf')",
        )  # fmt: skip
        record["models"]["mapped"] = check_hf_loads(
            "mapped", tmp / "mapped_hf", results["mapped"], inputs,
            "mapped/model.safetensors -> tf -> safetensors",
        )  # fmt: skip
    write_json(ROOT_DIR / "hf_loads.json", record)
    return record


# --------------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------------

README_SECTION = """\
## roformer_tiny/

Generated by `tools/make_roformer_fixtures.py` (venv and command in its docstring; written
with transformers {hf_version}, torch {torch_version}, tensorflow {tf_version}). Two random
`transformers.RoFormerForMaskedLM` models (every parameter random: LayerNorm gamma = 1 + 0.1
N(0,1), everything else incl. all biases 0.2 N(0,1); the MLM decoder tied to the word
embeddings, its bias the prediction bias), vocab 100, hidden 32, 2 layers, 4 heads (head size
d = 8), intermediate 40, `max_position_embeddings` 32, 2 token types, `hidden_act="gelu"`
(HF: erf), eps 1e-12:

- `base/`: `embedding_size` = hidden, `rotary_value=False` (every released RoFormer v1).
- `mapped/`: `embedding_size=16` (HF `roformer.embeddings_project`, bert4keras
  `Embedding-Mapping` = `bert/encoder/embedding_hidden_mapping_in`) and `rotary_value=True`
  (values rotated too).

Files per folder:

- `config.json` + `model.safetensors` from `save_pretrained`. The safetensors holds
  `roformer.encoder.embed_positions.weight` ({positions} x d), HF's fixed sinusoid (not
  trained; kerasbert skips it when reading and does not write it).
- `bert_model.ckpt.index` / `.data-00000-of-00001` + `checkpoint`: a TF1 Saver checkpoint of
  the same weights under the names bert4keras's `RoFormer` maps to (BERT's without
  `position_embeddings`; kernels `(in, out)`, LayerNorm `gamma`/`beta`, `cls/predictions/...`,
  no NSP head, no `global_step`), plus a random `bert/pooler/dense/{{kernel,bias}}`
  (RoFormer-Sim's pooler, which HF's RoFormer has no place for).
- `bert_config.json`: the keys of Zhuiyi's `chinese_roformer` releases (no `model_type`, so its
  names alone are NEZHA's too; `"hidden_act": "gelu"`, bert4keras's erf GELU);
  `mapped/` adds `"rotary_value": true`.
- `goldens.npz`: int32 `token_ids`, `segment_ids`, `attention_mask` (3, 13) and `lengths`
  (13, 9, 5; id 2 first, id 3 after segment A and at the end, padding 0; rows 0 and 1 have
  segment B); float32 `sequence_output` (3, 13, 32), `mlm_logits` (3, 13, 100) from the HF model
  in eval mode; `pooled_linear` (3, 32) = `sequence_output[:, 0] @ kernel + bias` of the
  TF-only pooler (float64 NumPy); and `long_token_ids`, `long_segment_ids`,
  `long_attention_mask` (2, 48), `long_lengths` (48, 30), `long_sequence_output`,
  `long_mlm_logits`: 48 positions, more than the config's 32, computed with the same weights
  in an HF model built with 64 positions (its sinusoid's first 32 rows equal the 32-row one).
  Values at padded positions are whatever HF computed; ignore them.

Rotary layout: HF stores the sinusoid as `sin` in the first d/2 columns and `cos` in the last
d/2 and rotates channel pairs `(2i, 2i + 1)` by the angle `p * 10000**(-2i/d)`; bert4keras
interleaves `sin, cos` per pair and rotates the same pairs: identical rotations (the table,
re-interleaved, matches the float64 formula to {table_vs_float64:.1e}).

Checks (max abs diffs over real tokens; seq = sequence_output, mlm = mlm_logits):

- `from_pretrained` vs goldens: base {base_reload}; mapped {mapped_reload}.
- `transformers.load_tf_weights_in_roformer` stops with an AttributeError on
  `bert/pooler/dense/*` and on `bert/encoder/embedding_hidden_mapping_in/*` (it has no rule
  for either); from a copy of the TF checkpoint without them: base: {base_importer};
  mapped: {mapped_importer}.
- independent float64 NumPy forward pass from the TF-named arrays with bert4keras's formulas:
  base {base_np} (long: {base_np_long}); mapped {mapped_np} (long: {mapped_np_long});
  rotating pairs `(i, i + d/2)` instead: base {base_half}, mapped {mapped_half}; no
  rotation: base {base_none}, mapped {mapped_none}.
- kerasbert's HF output (`hf_loads.json`): kerasbert (its own venv, JAX backend) converted
  `base/bert_model.ckpt` to safetensors (`model="roformer"`; `hidden_act="gelu_erf"`, since
  `convert` still writes a Google config's `"gelu"` as tanh whatever the family: the xfail
  in `tests/test_roformer.py`) and `mapped/model.safetensors` to a TF checkpoint and that to
  safetensors; transformers'
  `from_pretrained(..., output_loading_info=True)` loads both in `RoFormerForMaskedLM` and
  `RoFormerModel` with every parameter equal to the reference's, no mismatched keys, only
  `embed_positions` missing (HF recomputes it) and only the pooler (and, for the bare model, the
  MLM head) unexpected; outputs vs goldens: base {base_hf}; mapped {mapped_hf}.
  `hf_loads.json` records HF's loading info, the diffs and the SHA-256 of every tensor
  kerasbert wrote, so the suite (no torch) can check that kerasbert still writes them.
"""


def update_readme_section(key: str, body: str) -> None:
    begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = README_PATH.read_text(encoding="utf-8")
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    README_PATH.write_text(text, encoding="utf-8")


def main() -> None:
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"tensorflow {tf.__version__}, numpy {np.__version__}")  # fmt: skip
    vocab = COMMON["vocab_size"]
    inputs = make_inputs(vocab, ROW_LAYOUT, MAX_LEN, INPUT_SEED)
    long_inputs = make_inputs(vocab, LONG_LAYOUT, LONG_LEN, INPUT_SEED + 1)
    ROOT_DIR.mkdir(parents=True, exist_ok=True)
    results = {name: make_variant(name, inputs, long_inputs) for name in VARIANTS}
    hf = verify_kerasbert_output(results, inputs)

    def hf_diffs(name):
        return "; ".join(
            f"{cls} {fmt(load['max_diff'])}" for cls, load in hf["models"][name]["loads"].items()
        )

    values = {"hf_version": transformers.__version__, "torch_version": torch.__version__,
              "tf_version": tf.__version__, "positions": COMMON["max_position_embeddings"],
              "table_vs_float64": max(r["table_vs_float64"] for r in results.values())}  # fmt: skip
    for name, r in results.items():
        values[f"{name}_reload"] = fmt(r["reload_diffs"])
        values[f"{name}_importer"] = r["importer"]
        values[f"{name}_np"] = fmt(r["np_diffs"])
        values[f"{name}_np_long"] = fmt(r["np_long"])
        values[f"{name}_half"] = fmt(r["variants"]["half"])
        values[f"{name}_none"] = fmt(r["variants"]["none"])
        values[f"{name}_hf"] = hf_diffs(name)
    update_readme_section(README_KEY, README_SECTION.format(**values))

    for name, r in results.items():
        print(f"\n{name}: safetensors keys ({len(r['safetensors_keys'])}):")
        for key in r["safetensors_keys"]:
            print(f"  {key}")
        print(f"{name}: TF checkpoint names ({len(r['tf_names'])}):")
        for key in r["tf_names"]:
            print(f"  {key}")
    total = 0
    for path in sorted(ROOT_DIR.rglob("*")):
        if path.is_file():
            total += path.stat().st_size
            print(f"  {path.relative_to(FIXTURES_DIR)}  {path.stat().st_size}")
    print(f"  roformer_tiny/ total {total}")
    if total >= MAX_FOLDER_BYTES:
        sys.exit(f"roformer_tiny/ is over {MAX_FOLDER_BYTES} bytes")


if __name__ == "__main__":
    main()
