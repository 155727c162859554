"""Write tiny random ALBERT and NEZHA reference fixtures (HF + Google-named TF checkpoints).

Three folders are (re)written under ``tests/fixtures/``:

- ``albert_tiny/``    ``transformers.AlbertForPreTraining``: vocab 90, embedding 16, hidden 32,
                      3 layers, 4 heads, intermediate 40, 40 positions, 1 group x 1 inner block.
- ``albert_groups/``  the same shapes with 4 layers, ``num_hidden_groups=2``,
                      ``inner_group_num=2`` (layers 0-1 run group 0, layers 2-3 run group 1,
                      every layer applies both inner blocks of its group).
- ``nezha_tiny/``     ``NezhaForPreTraining`` (``transformers.models.deprecated.nezha``): vocab
                      100, hidden 32, 2 layers, 4 heads, intermediate 40, 64 positions,
                      ``max_relative_position=3``.

Each folder holds the HF ``config.json`` + ``model.safetensors`` (``save_pretrained``),
``goldens.npz`` (inputs and float32 outputs of the HF model in eval mode) and a TF1
``tf.compat.v1.train.Saver`` checkpoint of the same weights under the original Google / Huawei
variable names (``albert_model.ckpt.*`` + ``albert_config.json`` for ALBERT, ``model.ckpt.*`` +
``bert_config.json`` for NEZHA, each with a ``checkpoint`` state file). Every parameter
(LayerNorm gamma/beta, all biases, head weights) is overwritten with seeded random values so
that HF's ones/zeros initialisation cannot hide a bug; the MLM decoder stays tied to the word
embeddings and its bias is the prediction bias.

Verification done by the script (it stops on failure): the TF checkpoints hold exactly the
intended arrays (``tf.train.load_variable``); ``transformers.load_tf_weights_in_albert`` /
``load_tf_weights_in_nezha`` rebuild every HF parameter bit-exactly from them and reproduce the
goldens within 1e-5; ``from_pretrained`` of each folder reproduces the goldens; an independent
float64 NumPy forward pass written from the Google-named arrays (and the formulas stated in the
README) reproduces them within 1e-4, while deliberately wrong variants (ALBERT groups assigned
round-robin; NEZHA scaled before adding the relative term, or unclipped) do not. It also writes
its own section of ``tests/fixtures/README.md`` (between the ``make_albert_nezha_fixtures``
markers).

Environment: the ``/work/venvs/tf`` venv described in ``tools/make_tf_fixtures.py``
(tensorflow-cpu 2.21.0, tf-keras, torch 2.13.0+cpu, transformers 4.57.6, safetensors, numpy,
h5py; CPU only). Run from the repository root::

    /work/venvs/tf/bin/python tools/make_albert_nezha_fixtures.py

The output is deterministic (fixed seeds); rerunning replaces the three folders with
byte-identical files.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from transformers import AlbertConfig, AlbertForPreTraining, load_tf_weights_in_albert  # noqa: E402
from transformers.models.deprecated.nezha.configuration_nezha import NezhaConfig  # noqa: E402
from transformers.models.deprecated.nezha.modeling_nezha import (  # noqa: E402
    NezhaForPreTraining,
    load_tf_weights_in_nezha,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
README_PATH = FIXTURES_DIR / "README.md"
README_KEY = "make_albert_nezha_fixtures"

MAX_FOLDER_BYTES = 400 * 1024
TOL = 1e-5
WEIGHT_STD = 0.2
GAMMA_STD = 0.1
INPUT_SEED = 2718
GLOBAL_STEP = 4242

CLS_ID = 2
SEP_ID = 3
FIRST_RANDOM_ID = 5
MAX_LEN = 13
# (length of segment A incl. CLS and its SEP, total real length) per row; row 2 has one segment.
ROW_LAYOUT = ((7, 13), (5, 9), (5, 5))

ALBERT_COMMON = dict(
    vocab_size=90,
    embedding_size=16,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=40,
    max_position_embeddings=40,
    type_vocab_size=2,
    hidden_act="gelu_new",
    layer_norm_eps=1e-12,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
    classifier_dropout_prob=0.1,
    initializer_range=0.02,
)
ALBERT_VARIANTS = {
    "albert_tiny": dict(num_hidden_layers=3, num_hidden_groups=1, inner_group_num=1, seed=101),
    "albert_groups": dict(num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2, seed=202),
}
NEZHA_KWARGS = dict(
    vocab_size=100,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=40,
    max_position_embeddings=64,
    max_relative_position=3,
    type_vocab_size=2,
    hidden_act="gelu",
    layer_norm_eps=1e-12,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    initializer_range=0.02,
)
NEZHA_SEED = 303

GOOGLE_ALBERT_KEYS = (
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
    "num_hidden_groups",
    "inner_group_num",
    "type_vocab_size",
    "vocab_size",
)
GOOGLE_NEZHA_KEYS = (
    "attention_probs_dropout_prob",
    "hidden_act",
    "hidden_dropout_prob",
    "hidden_size",
    "initializer_range",
    "intermediate_size",
    "max_position_embeddings",
    "max_relative_position",
    "num_attention_heads",
    "num_hidden_layers",
    "type_vocab_size",
    "vocab_size",
)

v1 = tf.compat.v1


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def fresh_dir(name: str) -> Path:
    path = FIXTURES_DIR / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter: LayerNorm gamma ~ 1 + 0.1 N(0, 1), everything else 0.2 N."""
    gammas = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # named_parameters() yields each shared tensor once, in a fixed order.
        for _, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if id(param) in gammas:
                param.copy_(1.0 + GAMMA_STD * noise)
            else:
                param.copy_(WEIGHT_STD * noise)
    model.tie_weights()
    model.eval()


def make_inputs(vocab_size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(INPUT_SEED)
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
    assert np.all(token_ids[attention_mask == 0] == 0)
    assert np.all(token_ids[attention_mask == 1] != 0)
    assert list(segment_ids.any(axis=1)) == [True, True, False]
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


def run_pretraining(model, base, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of an HF *ForPreTraining model (``base`` is its encoder submodule)."""
    kwargs = torch_inputs(inputs)
    with torch.no_grad():
        out = model(**kwargs, output_hidden_states=True)
        base_out = base(**kwargs)
    nsp = out.sop_logits if hasattr(out, "sop_logits") else out.seq_relationship_logits
    assert torch.equal(base_out.last_hidden_state, out.hidden_states[-1])
    result = {
        "sequence_output": base_out.last_hidden_state,
        "pooled_output": base_out.pooler_output,
        "mlm_logits": out.prediction_logits,
        "nsp_logits": nsp,
        "hidden_states": torch.stack(out.hidden_states),
    }
    return {k: v.numpy().astype(np.float32) for k, v in result.items()}


def max_diffs(got: dict[str, np.ndarray], want: dict[str, np.ndarray], lengths) -> dict:
    """Max abs diff per output; per-token outputs compared on real tokens only."""
    diffs = {}
    for name in ("sequence_output", "mlm_logits", "pooled_output", "nsp_logits"):
        if name in ("sequence_output", "mlm_logits"):
            diffs[name] = max(
                float(np.abs(got[name][r, :n] - want[name][r, :n]).max())
                for r, n in enumerate(lengths)
            )
        else:
            diffs[name] = float(np.abs(got[name] - want[name]).max())
    return diffs


def fmt_diffs(diffs: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2e}" for k, v in diffs.items())


def write_tf_checkpoint(prefix: Path, weights: dict[str, np.ndarray]) -> None:
    """Save ``weights`` (+ int64 ``global_step``) with a TF1 Saver; op names = checkpoint names."""
    with tf.Graph().as_default():
        var_list = {}
        for name in sorted(weights):
            var = v1.Variable(weights[name], dtype=tf.float32, name=name)
            assert var.op.name == name, (var.op.name, name)
            var_list[name] = var
        var_list["global_step"] = v1.Variable(
            np.int64(GLOBAL_STEP), dtype=tf.int64, name="global_step", trainable=False
        )
        saver = v1.train.Saver(var_list=var_list, save_relative_paths=True, max_to_keep=1)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            saved = saver.save(sess, str(prefix), write_meta_graph=False)
    assert saved == str(prefix), saved
    # Read back with TensorFlow: exactly these names, identical bits.
    listed = dict(tf.train.list_variables(str(prefix)))
    assert set(listed) == set(weights) | {"global_step"}, sorted(set(listed) ^ set(weights))
    for name, value in weights.items():
        got = tf.train.load_variable(str(prefix), name)
        assert got.dtype == np.float32 and np.array_equal(got, value), name
    assert tf.train.load_variable(str(prefix), "global_step") == GLOBAL_STEP
    print(f"  {prefix.name}: {len(listed)} variables written and read back bit-identically")


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def nan_fill(model: torch.nn.Module) -> None:
    """Poison every parameter so that a name the TF importer skips cannot go unnoticed."""
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(float("nan"))


def assert_params_equal(model: torch.nn.Module, reference: dict[str, torch.Tensor]) -> int:
    state = model.state_dict()
    for name, value in reference.items():
        assert torch.equal(state[name], value), name
    return len(reference)


def folder_files(folder: Path) -> list[tuple[str, int]]:
    return [(p.name, p.stat().st_size) for p in sorted(folder.iterdir())]


# --------------------------------------------------------------------------------------------
# Independent float64 NumPy forward pass from the Google-named weights (checks the name mapping,
# the layouts and the formulas stated in the README; variants show the fixtures discriminate)
# --------------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf)


def _gelu(x: np.ndarray, act: str) -> np.ndarray:
    if act == "erf":
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _layer_norm(x: np.ndarray, w: dict, scope: str, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w[f"{scope}/gamma"] + w[f"{scope}/beta"]


def _dense(x: np.ndarray, w: dict, scope: str) -> np.ndarray:
    return x @ w[f"{scope}/kernel"] + w[f"{scope}/bias"]


def _block(x, mask, w, scopes, cfg, table=None, scale_first=False):
    """One post-LN transformer block; ``scopes`` = Google scopes of (attention, FFN in, FFN out,
    LayerNorm after attention, LayerNorm after FFN); ``table`` adds NEZHA's relative terms."""
    attn, ffn_in, ffn_out, ln_attn, ln_ffn = scopes
    b, t, hidden = x.shape
    heads = cfg["num_attention_heads"]
    d = hidden // heads

    def split(y):
        return y.reshape(b, t, heads, d).transpose(0, 2, 1, 3)

    q, k, v = (split(_dense(x, w, f"{attn}/self/{n}")) for n in ("query", "key", "value"))
    scores = q @ k.transpose(0, 1, 3, 2)
    if scale_first:
        scores = scores / math.sqrt(d)
    if table is not None:
        kk = (len(table) - 1) // 2
        distance = np.arange(t)[None, :] - np.arange(t)[:, None]  # [i, j] = j - i
        rel = table[np.clip(distance, -kk, kk) + kk]  # (t_query, t_key, d)
        scores = scores + np.einsum("bhid,ijd->bhij", q, rel)
    if not scale_first:
        scores = scores / math.sqrt(d)
    scores = scores + (1.0 - mask[:, None, None, :]) * -1e9
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs = probs / probs.sum(-1, keepdims=True)
    ctx = probs @ v
    if table is not None:
        ctx = ctx + np.einsum("bhij,ijd->bhid", probs, rel)
    ctx = ctx.transpose(0, 2, 1, 3).reshape(b, t, hidden)
    eps = cfg["layer_norm_eps"]
    a = _layer_norm(x + _dense(ctx, w, f"{attn}/output/dense"), w, ln_attn, eps)
    f = _dense(_gelu(_dense(a, w, ffn_in), cfg["act"]), w, ffn_out)
    return _layer_norm(a + f, w, ln_ffn, eps)


def numpy_forward(w: dict, cfg: dict, inputs: dict, variant: str = "") -> dict[str, np.ndarray]:
    """``cfg["family"]`` is "albert" or "nezha"; ``variant`` deliberately breaks one detail."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    ids, seg = inputs["token_ids"], inputs["segment_ids"]
    mask = inputs["attention_mask"].astype(np.float64)
    eps = cfg["layer_norm_eps"]
    x = w["bert/embeddings/word_embeddings"][ids] + w["bert/embeddings/token_type_embeddings"][seg]
    if cfg["family"] == "albert":
        x = x + w["bert/embeddings/position_embeddings"][: ids.shape[1]]
    x = _layer_norm(x, w, "bert/embeddings/LayerNorm", eps)
    if cfg["family"] == "albert":
        x = _dense(x, w, "bert/encoder/embedding_hidden_mapping_in")
        layers, groups = cfg["num_hidden_layers"], cfg["num_hidden_groups"]
        for i in range(layers):
            # Google: int(layer_idx / num_hidden_layers * num_hidden_groups)
            g = i % groups if variant == "interleaved_groups" else int(i / layers * groups)
            for j in range(cfg["inner_group_num"]):
                s = f"bert/encoder/transformer/group_{g}/inner_group_{j}"
                scopes = (
                    f"{s}/attention_1",
                    f"{s}/ffn_1/intermediate/dense",
                    f"{s}/ffn_1/intermediate/output/dense",
                    f"{s}/LayerNorm",
                    f"{s}/LayerNorm_1",
                )
                x = _block(x, mask, w, scopes, cfg)
    else:
        kk = cfg["max_relative_position"]
        if variant == "no_clipping":
            kk = ids.shape[1]
        d = cfg["hidden_size"] // cfg["num_attention_heads"]
        table = nezha_reference_table(kk, d)
        for i in range(cfg["num_hidden_layers"]):
            s = f"bert/encoder/layer_{i}"
            scopes = (
                f"{s}/attention",
                f"{s}/intermediate/dense",
                f"{s}/output/dense",
                f"{s}/attention/output/LayerNorm",
                f"{s}/output/LayerNorm",
            )
            x = _block(
                x, mask, w, scopes, cfg, table=table, scale_first=variant == "scale_before_relative"
            )
    pooled = np.tanh(_dense(x[:, 0], w, "bert/pooler/dense"))
    h = _gelu(_dense(x, w, "cls/predictions/transform/dense"), cfg["act"])
    h = _layer_norm(h, w, "cls/predictions/transform/LayerNorm", eps)
    mlm = h @ w["bert/embeddings/word_embeddings"].T + w["cls/predictions/output_bias"]
    nsp = (
        pooled @ w["cls/seq_relationship/output_weights"].T + w["cls/seq_relationship/output_bias"]
    )
    return {"sequence_output": x, "mlm_logits": mlm, "pooled_output": pooled, "nsp_logits": nsp}


# --------------------------------------------------------------------------------------------
# ALBERT
# --------------------------------------------------------------------------------------------


def albert_to_google(state: dict[str, np.ndarray], config: AlbertConfig) -> dict[str, np.ndarray]:
    """HF AlbertForPreTraining state -> Google ALBERT checkpoint names and layouts."""
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        used.add(name)
        return np.ascontiguousarray(state[name], dtype=np.float32)

    def dense(google: str, hf: str) -> None:
        out[f"{google}/kernel"] = np.ascontiguousarray(take(f"{hf}.weight").T)
        out[f"{google}/bias"] = take(f"{hf}.bias")

    def layer_norm(google: str, hf: str) -> None:
        out[f"{google}/gamma"] = take(f"{hf}.weight")
        out[f"{google}/beta"] = take(f"{hf}.bias")

    for kind in ("word", "token_type", "position"):
        out[f"bert/embeddings/{kind}_embeddings"] = take(
            f"albert.embeddings.{kind}_embeddings.weight"
        )
    layer_norm("bert/embeddings/LayerNorm", "albert.embeddings.LayerNorm")
    dense("bert/encoder/embedding_hidden_mapping_in", "albert.encoder.embedding_hidden_mapping_in")
    for g in range(config.num_hidden_groups):
        for j in range(config.inner_group_num):
            go = f"bert/encoder/transformer/group_{g}/inner_group_{j}"
            hf = f"albert.encoder.albert_layer_groups.{g}.albert_layers.{j}"
            for proj in ("query", "key", "value"):
                dense(f"{go}/attention_1/self/{proj}", f"{hf}.attention.{proj}")
            dense(f"{go}/attention_1/output/dense", f"{hf}.attention.dense")
            layer_norm(f"{go}/LayerNorm", f"{hf}.attention.LayerNorm")
            dense(f"{go}/ffn_1/intermediate/dense", f"{hf}.ffn")
            dense(f"{go}/ffn_1/intermediate/output/dense", f"{hf}.ffn_output")
            layer_norm(f"{go}/LayerNorm_1", f"{hf}.full_layer_layer_norm")
    dense("bert/pooler/dense", "albert.pooler")
    dense("cls/predictions/transform/dense", "predictions.dense")
    layer_norm("cls/predictions/transform/LayerNorm", "predictions.LayerNorm")
    out["cls/predictions/output_bias"] = take("predictions.bias")
    # Stored (2, hidden), i.e. like a torch Linear weight (Google uses matmul(.., transpose_b)).
    out["cls/seq_relationship/output_weights"] = take("sop_classifier.classifier.weight")
    out["cls/seq_relationship/output_bias"] = take("sop_classifier.classifier.bias")

    tied = {"predictions.decoder.weight", "predictions.decoder.bias"}
    assert np.array_equal(
        state["predictions.decoder.weight"], out["bert/embeddings/word_embeddings"]
    )
    assert np.array_equal(state["predictions.decoder.bias"], out["cls/predictions/output_bias"])
    leftover = set(state) - used - tied
    assert not leftover, leftover
    return out


def build_albert(name: str) -> AlbertForPreTraining:
    spec = ALBERT_VARIANTS[name]
    config = AlbertConfig(
        num_hidden_layers=spec["num_hidden_layers"],
        num_hidden_groups=spec["num_hidden_groups"],
        inner_group_num=spec["inner_group_num"],
        **ALBERT_COMMON,
    )
    config._attn_implementation = "eager"
    torch.manual_seed(spec["seed"])
    model = AlbertForPreTraining(config)
    randomize(model, spec["seed"])
    head = model.predictions
    assert head.decoder.weight is model.albert.embeddings.word_embeddings.weight
    assert head.decoder.bias is head.bias
    return model


def make_albert(name: str, inputs: dict[str, np.ndarray]) -> dict:
    print(name)
    folder = fresh_dir(name)
    model = build_albert(name)
    config = model.config
    goldens = run_pretraining(model, model.albert, inputs)
    model.save_pretrained(str(folder), safe_serialization=True)
    np.savez(folder / "goldens.npz", **inputs, **goldens)

    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    google = albert_to_google(state, config)
    write_tf_checkpoint(folder / "albert_model.ckpt", google)
    google_config = {k: getattr(config, k) for k in GOOGLE_ALBERT_KEYS}
    google_config["hidden_act"] = "gelu"  # Google's "gelu" is the tanh form = HF "gelu_new"
    write_json(folder / "albert_config.json", google_config)

    # 1. from_pretrained reproduces the goldens.
    reloaded = AlbertForPreTraining.from_pretrained(str(folder), attn_implementation="eager")
    reloaded.eval()
    reload_diffs = max_diffs(
        run_pretraining(reloaded, reloaded.albert, inputs), goldens, inputs["lengths"]
    )
    print(f"  from_pretrained vs goldens: {fmt_diffs(reload_diffs)}")
    assert max(reload_diffs.values()) <= 1e-6, reload_diffs

    # 2. HF's own TF importer maps the Google names back onto every parameter.
    fresh = AlbertForPreTraining(config)
    nan_fill(fresh)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # the importer print()s every name
        load_tf_weights_in_albert(fresh, config, str(folder / "albert_model.ckpt"))
    fresh.eval()
    n = assert_params_equal(fresh, model.state_dict())
    initialized = [line for line in log.getvalue().splitlines() if line.startswith("Initialize")]
    print(
        f"  load_tf_weights_in_albert: {n} HF state tensors bit-identical "
        f"({len(initialized)} TF variables assigned)"
    )
    tf_diffs = max_diffs(run_pretraining(fresh, fresh.albert, inputs), goldens, inputs["lengths"])
    print(f"  load_tf_weights_in_albert vs goldens: {fmt_diffs(tf_diffs)}")
    assert max(tf_diffs.values()) <= TOL, tf_diffs

    # 3. Independent NumPy forward from the Google-named arrays (Google's group formula).
    cfg = {
        **google_config,
        "layer_norm_eps": config.layer_norm_eps,
        "family": "albert",
        "act": "tanh",
    }
    np_diffs = max_diffs(numpy_forward(google, cfg, inputs), goldens, inputs["lengths"])
    print(f"  float64 NumPy forward (TF names) vs goldens: {fmt_diffs(np_diffs)}")
    assert max(np_diffs.values()) <= 1e-4, np_diffs
    variants = {}
    if config.num_hidden_groups > 1:
        variants["interleaved_groups"] = max_diffs(
            numpy_forward(google, cfg, inputs, "interleaved_groups"), goldens, inputs["lengths"]
        )
        print(f"  (check) group = i % G instead: {fmt_diffs(variants['interleaved_groups'])}")
        assert min(variants["interleaved_groups"].values()) > 1e-2

    return {
        "folder": folder,
        "safetensors_keys": sorted(load_file(str(folder / "model.safetensors"))),
        "tf_names": sorted(google) + ["global_step"],
        "reload_diffs": reload_diffs,
        "tf_diffs": tf_diffs,
        "np_diffs": np_diffs,
        "variants": variants,
        "goldens": goldens,
    }


# --------------------------------------------------------------------------------------------
# NEZHA
# --------------------------------------------------------------------------------------------


def nezha_to_google(state: dict[str, np.ndarray], num_layers: int) -> dict[str, np.ndarray]:
    """HF NezhaForPreTraining state -> Google BERT names (no position embeddings)."""
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        used.add(name)
        return np.ascontiguousarray(state[name], dtype=np.float32)

    def dense(google: str, hf: str) -> None:
        out[f"{google}/kernel"] = np.ascontiguousarray(take(f"{hf}.weight").T)
        out[f"{google}/bias"] = take(f"{hf}.bias")

    def layer_norm(google: str, hf: str) -> None:
        out[f"{google}/gamma"] = take(f"{hf}.weight")
        out[f"{google}/beta"] = take(f"{hf}.bias")

    for kind in ("word", "token_type"):
        out[f"bert/embeddings/{kind}_embeddings"] = take(
            f"nezha.embeddings.{kind}_embeddings.weight"
        )
    layer_norm("bert/embeddings/LayerNorm", "nezha.embeddings.LayerNorm")
    for i in range(num_layers):
        g, h = f"bert/encoder/layer_{i}", f"nezha.encoder.layer.{i}"
        for proj in ("query", "key", "value"):
            dense(f"{g}/attention/self/{proj}", f"{h}.attention.self.{proj}")
        dense(f"{g}/attention/output/dense", f"{h}.attention.output.dense")
        layer_norm(f"{g}/attention/output/LayerNorm", f"{h}.attention.output.LayerNorm")
        dense(f"{g}/intermediate/dense", f"{h}.intermediate.dense")
        dense(f"{g}/output/dense", f"{h}.output.dense")
        layer_norm(f"{g}/output/LayerNorm", f"{h}.output.LayerNorm")
    dense("bert/pooler/dense", "nezha.pooler.dense")
    dense("cls/predictions/transform/dense", "cls.predictions.transform.dense")
    layer_norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm")
    out["cls/predictions/output_bias"] = take("cls.predictions.bias")
    out["cls/seq_relationship/output_weights"] = take("cls.seq_relationship.weight")
    out["cls/seq_relationship/output_bias"] = take("cls.seq_relationship.bias")

    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert np.array_equal(
        state["cls.predictions.decoder.weight"], out["bert/embeddings/word_embeddings"]
    )
    assert np.array_equal(state["cls.predictions.decoder.bias"], out["cls/predictions/output_bias"])
    leftover = set(state) - used - tied
    assert not leftover, leftover
    return out


class _GoogleScopes(torch.nn.Module):
    """Exposes a NezhaForPreTraining under the scopes of Google's names (``bert``, ``cls``).

    ``load_tf_weights_in_nezha`` walks the TF names attribute by attribute from the module it
    is given, but NezhaForPreTraining calls its encoder ``nezha``, not ``bert``.
    """

    def __init__(self, model: NezhaForPreTraining):
        super().__init__()
        self.bert = model.nezha
        self.cls = model.cls


def nezha_reference_table(max_relative_position: int, depth: int) -> np.ndarray:
    """Huawei's table in float64: row r (= clip(j - i, -K, K) + K) holds sin/cos(r * freq)."""
    rows = np.arange(2 * max_relative_position + 1, dtype=np.float64)[:, None]
    freq = 1.0 / np.power(10000.0, np.arange(0, depth, 2, dtype=np.float64) / depth)
    table = np.zeros((rows.shape[0], depth))
    table[:, 0::2] = np.sin(rows * freq)
    table[:, 1::2] = np.cos(rows * freq)
    return table


def build_nezha(hidden_act: str) -> NezhaForPreTraining:
    config = NezhaConfig(**{**NEZHA_KWARGS, "hidden_act": hidden_act})
    torch.manual_seed(NEZHA_SEED)
    return NezhaForPreTraining(config)


def make_nezha(inputs: dict[str, np.ndarray]) -> dict:
    print("nezha_tiny")
    folder = fresh_dir("nezha_tiny")
    model = build_nezha("gelu")
    randomize(model, NEZHA_SEED)
    head = model.cls.predictions
    assert head.decoder.weight is model.nezha.embeddings.word_embeddings.weight
    assert head.decoder.bias is head.bias
    config = model.config
    k = config.max_relative_position
    depth = config.hidden_size // config.num_attention_heads

    goldens = run_pretraining(model, model.nezha, inputs)
    # Same weights, tanh GELU (what Huawei's TF code computes for "gelu"). HF resolves the
    # activation when the modules are built, so a second model is needed (editing
    # config.hidden_act afterwards would change nothing).
    tanh_model = build_nezha("gelu_new")
    tanh_model.load_state_dict(model.state_dict())
    tanh_model.eval()
    tanh = run_pretraining(tanh_model, tanh_model.nezha, inputs)
    tanh_vs_erf = max_diffs(tanh, goldens, inputs["lengths"])
    print(f"  tanh-GELU vs erf-GELU goldens: {fmt_diffs(tanh_vs_erf)}")

    # Relative table of layer 0: positions_encoding[i, j] = table[clip(j - i, -K, K) + K], so
    # row i = K, columns 0..2K is the table itself.
    buffers = [
        layer.attention.self.relative_positions_encoding.positions_encoding
        for layer in model.nezha.encoder.layer
    ]
    pe = buffers[0].numpy()
    assert pe.shape == (config.max_position_embeddings, config.max_position_embeddings, depth)
    table = pe[k, : 2 * k + 1].copy()
    for b in buffers[1:]:
        assert torch.equal(b, buffers[0])
    idx = np.clip(np.arange(MAX_LEN)[None, :] - np.arange(MAX_LEN)[:, None], -k, k) + k
    assert np.array_equal(pe[:MAX_LEN, :MAX_LEN], table[idx])
    reference = nezha_reference_table(k, depth)
    table_vs_float64 = float(np.abs(table - reference).max())
    print(f"  relative table {table.shape} vs float64 formula: max abs diff {table_vs_float64:.2e}")
    assert table_vs_float64 < 1e-5

    model.save_pretrained(str(folder), safe_serialization=True)
    np.savez(
        folder / "goldens.npz",
        **inputs,
        **goldens,
        **{
            f"{name}_tanh": tanh[name]
            for name in ("sequence_output", "pooled_output", "mlm_logits", "nsp_logits")
        },
        relative_table=table.astype(np.float32),
    )

    state = {kk: v.detach().numpy() for kk, v in model.state_dict().items()}
    google = nezha_to_google(state, config.num_hidden_layers)
    write_tf_checkpoint(folder / "model.ckpt", google)
    google_config = {kk: getattr(config, kk) for kk in GOOGLE_NEZHA_KEYS}
    google_config["use_relative_position"] = True
    write_json(folder / "bert_config.json", google_config)

    # 1. from_pretrained (meta-device init) must rebuild the non-persistent buffers correctly.
    reloaded = NezhaForPreTraining.from_pretrained(str(folder)).eval()
    for layer in reloaded.nezha.encoder.layer:
        assert torch.equal(
            layer.attention.self.relative_positions_encoding.positions_encoding, buffers[0]
        )
    reload_diffs = max_diffs(
        run_pretraining(reloaded, reloaded.nezha, inputs), goldens, inputs["lengths"]
    )
    print(f"  from_pretrained vs goldens: {fmt_diffs(reload_diffs)}")
    assert max(reload_diffs.values()) <= 1e-6, reload_diffs

    # 2. HF's TF importer (through the bert/cls scopes) rebuilds every parameter.
    fresh = build_nezha("gelu")
    nan_fill(fresh)
    load_tf_weights_in_nezha(_GoogleScopes(fresh), config, str(folder / "model.ckpt"))
    fresh.eval()
    n = assert_params_equal(fresh, model.state_dict())
    print(f"  load_tf_weights_in_nezha: {n} HF state tensors bit-identical")
    tf_diffs = max_diffs(run_pretraining(fresh, fresh.nezha, inputs), goldens, inputs["lengths"])
    print(f"  load_tf_weights_in_nezha vs goldens: {fmt_diffs(tf_diffs)}")
    assert max(tf_diffs.values()) <= TOL, tf_diffs

    # 3. Independent NumPy forward from the Google-named arrays, erf and tanh GELU, plus
    # deliberately wrong variants to show the fixture tells them apart.
    cfg = {**google_config, "layer_norm_eps": config.layer_norm_eps, "family": "nezha"}
    np_diffs = max_diffs(
        numpy_forward(google, {**cfg, "act": "erf"}, inputs), goldens, inputs["lengths"]
    )
    print(f"  float64 NumPy forward (erf) vs goldens: {fmt_diffs(np_diffs)}")
    np_tanh_diffs = max_diffs(
        numpy_forward(google, {**cfg, "act": "tanh"}, inputs), tanh, inputs["lengths"]
    )
    print(f"  float64 NumPy forward (tanh) vs *_tanh goldens: {fmt_diffs(np_tanh_diffs)}")
    assert max(np_diffs.values()) <= 1e-4 and max(np_tanh_diffs.values()) <= 1e-4
    variants = {}
    for variant in ("scale_before_relative", "no_clipping"):
        variants[variant] = max_diffs(
            numpy_forward(google, {**cfg, "act": "erf"}, inputs, variant),
            goldens,
            inputs["lengths"],
        )
        print(f"  (check) variant {variant}: {fmt_diffs(variants[variant])}")
        assert variants[variant]["sequence_output"] > 1e-2, variant

    # Does the importer work on NezhaForPreTraining directly? (No: it has no `bert` attribute.)
    direct = build_nezha("gelu")
    try:
        load_tf_weights_in_nezha(direct, config, str(folder / "model.ckpt"))
        direct_note = "works"
    except Exception as exc:  # noqa: BLE001 - only reported
        direct_note = f"fails: {type(exc).__name__}: {exc}"
    print(f"  load_tf_weights_in_nezha(NezhaForPreTraining, ...) directly {direct_note}")

    return {
        "folder": folder,
        "safetensors_keys": sorted(load_file(str(folder / "model.safetensors"))),
        "tf_names": sorted(google) + ["global_step"],
        "reload_diffs": reload_diffs,
        "tf_diffs": tf_diffs,
        "tanh_vs_erf": tanh_vs_erf,
        "np_diffs": np_diffs,
        "np_tanh_diffs": np_tanh_diffs,
        "variants": variants,
        "table": table,
        "table_vs_float64": table_vs_float64,
        "state_keys": sorted(model.state_dict()),
        "direct_note": direct_note,
        "goldens": goldens,
    }


# --------------------------------------------------------------------------------------------
# README and main
# --------------------------------------------------------------------------------------------

README_SECTION = """\
## albert_tiny/, albert_groups/, nezha_tiny/

Generated by `tools/make_albert_nezha_fixtures.py` (venv and command in its docstring; written
with transformers {hf_version}, torch {torch_version}, tensorflow {tf_version}). Every parameter
(LayerNorm gamma = 1 + 0.1 N(0,1); everything else, incl. all biases and the heads, 0.2 N(0,1))
is random; the MLM decoder is tied to the word embeddings and its bias is the prediction bias.

Inputs (in every `goldens.npz`, int32): `token_ids`, `segment_ids`, `attention_mask` (3, 13),
`lengths` (3,) = 13, 9, 5; id 2 first (CLS), id 3 after segment A and at the end (SEP),
padding id 0, other ids uniform in [5, vocab); rows 0 and 1 have segment B (from positions 7
and 5), row 2 has one segment. Outputs (float32, eval mode, with the attention mask):
`sequence_output` (3, 13, 32), `pooled_output` (3, 32), `mlm_logits` (3, 13, vocab),
`nsp_logits` (3, 2) (the SOP logits for ALBERT) and, extra, `hidden_states`
(num_layers + 1, 3, 13, 32) as HF returns them with `output_hidden_states=True`. Values at
padded positions are whatever HF computed; ignore them. Diffs below are max abs over real
tokens (seq = sequence_output, mlm = mlm_logits, pooled, nsp).

### ALBERT

- `albert_tiny/`: `AlbertForPreTraining` (eager attention), vocab 90, embedding_size 16,
  hidden 32, 3 layers, 4 heads, intermediate 40, max positions 40, 2 token types,
  `num_hidden_groups=1`, `inner_group_num=1`, `hidden_act="gelu_new"` (tanh), eps 1e-12.
- `albert_groups/`: the same but 4 layers, `num_hidden_groups=2`, `inner_group_num=2`. HF
  picks the group of layer i as `int(i / (num_hidden_layers / num_hidden_groups))` (layers 0-1
  -> group 0, layers 2-3 -> group 1) and every layer runs all `inner_group_num` blocks of its
  group in order; `hidden_states` has one entry per layer (after both inner blocks), entry 0
  being the output of `embedding_hidden_mapping_in` (hidden size, not embedding size).
- Files: `config.json` + `model.safetensors` (HF), `goldens.npz`, and the same weights as a TF1
  Saver checkpoint `albert_model.ckpt.index` / `.data-00000-of-00001` + `checkpoint` under
  Google's names: `bert/embeddings/{{word,token_type,position}}_embeddings`,
  `bert/embeddings/LayerNorm/{{gamma,beta}}`, `bert/encoder/embedding_hidden_mapping_in/*`,
  `bert/encoder/transformer/group_G/inner_group_J/` + `attention_1/self/{{query,key,value}}/*`,
  `attention_1/output/dense/*`, `LayerNorm/*` (after attention), `ffn_1/intermediate/dense/*`,
  `ffn_1/intermediate/output/dense/*`, `LayerNorm_1/*` (after the FFN); `bert/pooler/dense/*`,
  `cls/predictions/transform/dense/*` (hidden -> embedding), `cls/predictions/transform/
  LayerNorm/*`, `cls/predictions/output_bias`, `cls/seq_relationship/output_weights`
  (2, hidden), `cls/seq_relationship/output_bias`, int64 `global_step` = {global_step}. Kernels
  are `(in, out)`. `albert_config.json` is Google's format (no `model_type`;
  `hidden_act: "gelu"`, which Google computes with tanh, = HF `gelu_new`).
- Checks (max abs diffs vs the goldens):
  - `transformers.load_tf_weights_in_albert` from the TF checkpoint rebuilds every HF tensor
    bit-exactly; outputs: albert_tiny {albert_tiny_tf};
    albert_groups {albert_groups_tf}.
  - independent float64 NumPy forward pass from the Google-named arrays (Google's group rule
    `int(i / num_hidden_layers * num_hidden_groups)`, tanh GELU):
    albert_tiny {albert_tiny_np};
    albert_groups {albert_groups_np}.
  - the same but with groups assigned as `i % G` (wrong):
    albert_groups {albert_groups_bad}.

### NEZHA

- `nezha_tiny/`: `NezhaForPreTraining` from `transformers.models.deprecated.nezha`, vocab 100,
  hidden 32, 2 layers, 4 heads (head size d = 8), intermediate 40, max positions 64,
  `max_relative_position` K = 3 (so the length-13 rows exercise the clipping), 2 token types,
  `hidden_act="gelu"` (HF: erf), eps 1e-12.
- Files: `config.json`, `model.safetensors`, `goldens.npz`, a TF1 Saver checkpoint
  `model.ckpt.*` + `checkpoint` with BERT's Google names
  (`bert/embeddings/{{word,token_type}}_embeddings`, `bert/embeddings/LayerNorm/*`,
  `bert/encoder/layer_N/...`, `bert/pooler/dense/*`, `cls/...`, `global_step`) but **no**
  `position_embeddings`, and `bert_config.json` (Google/Huawei format, no `model_type`,
  `"hidden_act": "gelu"`, `"max_relative_position": 3`, `"use_relative_position": true`).
- Huawei's TF code computes `gelu` with tanh, so `goldens.npz` also has
  `sequence_output_tanh`, `pooled_output_tanh`, `mlm_logits_tanh`, `nsp_logits_tanh`: same
  weights, HF `hidden_act="gelu_new"` (used in the FFN *and* the MLM transform).
  tanh vs erf goldens: {tanh_vs_erf}.
- Checks (max abs diffs vs the goldens):
  - `load_tf_weights_in_nezha`, given a wrapper that exposes `model.nezha` as `bert` and
    `model.cls` as `cls`, rebuilds every HF tensor bit-exactly; outputs:
    {nezha_tf}.
    (Called on `NezhaForPreTraining` itself it {direct_note_short}.)
  - independent float64 NumPy forward pass from the TF-named arrays and the formulas below:
    erf {nezha_np};
    tanh vs the `*_tanh` goldens {nezha_np_tanh}.
  - the same, deliberately wrong: scaling by 1/sqrt(d) before adding the relative key term
    {nezha_bad_scale};
    no clipping (K >= 13) {nezha_bad_clip}.
- The relative-position encoding is a non-persistent buffer
  `nezha.encoder.layer.N.attention.self.relative_positions_encoding.positions_encoding`
  (max_position_embeddings, max_position_embeddings, d), one identical copy per layer; it is
  **not** in `model.safetensors` nor in the TF checkpoint. HF's formula:
  `table[r, 2m] = sin(r * exp(-2m * ln(10000) / d))`, `table[r, 2m + 1] = cos(same)` for
  r = 0..2K (r is the *shifted* index, not the signed distance), and
  `positions_encoding[i, j] = table[clip(j - i, -K, K) + K]` (i = query, j = key position).
  `goldens.npz["relative_table"]` is this (2K+1, d) table (float32, from layer 0); it matches
  the float64 formula to {table_vs_float64:.1e}. Its rows:

  ```
{table_rows}
  ```

- Attention per head: `scores = (q k^T + q . table[rel(i, j)]) / sqrt(d) + mask` (the relative
  key term is added **before** the 1/sqrt(d) scaling), `p = softmax(scores)`,
  `context_i = sum_j p_ij v_j + sum_j p_ij table[rel(i, j)]` (the same sinusoid table serves as
  relative keys and values; nothing learned). Embeddings are word + token_type only, then
  LayerNorm.

Rerunning the generator rewrites byte-identical files.
"""


def short_diffs(diffs: dict[str, float]) -> str:
    short = {"sequence_output": "seq", "mlm_logits": "mlm", "pooled_output": "pooled"}
    return ", ".join(f"{short.get(k, k.split('_')[0])} {v:.1e}" for k, v in diffs.items())


def update_readme_section(key: str, body: str) -> None:
    begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = README_PATH.read_text(encoding="utf-8") if README_PATH.exists() else "# Test fixtures\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    README_PATH.write_text(text, encoding="utf-8")


def main() -> None:
    torch.set_num_threads(1)
    print(
        f"transformers {transformers.__version__}, torch {torch.__version__}, "
        f"tensorflow {tf.__version__}, numpy {np.__version__}"
    )
    albert_inputs = make_inputs(ALBERT_COMMON["vocab_size"])
    albert = {name: make_albert(name, albert_inputs) for name in ALBERT_VARIANTS}
    nezha = make_nezha(make_inputs(NEZHA_KWARGS["vocab_size"]))

    table = nezha["table"]
    table_rows = "\n".join(
        "  r={}: {}".format(r, " ".join(f"{x:9.6f}" for x in table[r])) for r in range(len(table))
    )
    direct = nezha["direct_note"]
    update_readme_section(
        README_KEY,
        README_SECTION.format(
            hf_version=transformers.__version__,
            torch_version=torch.__version__,
            tf_version=tf.__version__,
            global_step=GLOBAL_STEP,
            albert_tiny_tf=short_diffs(albert["albert_tiny"]["tf_diffs"]),
            albert_groups_tf=short_diffs(albert["albert_groups"]["tf_diffs"]),
            nezha_tf=short_diffs(nezha["tf_diffs"]),
            albert_tiny_np=short_diffs(albert["albert_tiny"]["np_diffs"]),
            albert_groups_np=short_diffs(albert["albert_groups"]["np_diffs"]),
            albert_groups_bad=short_diffs(
                albert["albert_groups"]["variants"]["interleaved_groups"]
            ),
            nezha_np=short_diffs(nezha["np_diffs"]),
            nezha_np_tanh=short_diffs(nezha["np_tanh_diffs"]),
            nezha_bad_scale=short_diffs(nezha["variants"]["scale_before_relative"]),
            nezha_bad_clip=short_diffs(nezha["variants"]["no_clipping"]),
            direct_note_short=(
                "works" if direct == "works" else "fails: it has no `bert` attribute"
            ),
            tanh_vs_erf=short_diffs(nezha["tanh_vs_erf"]),
            table_vs_float64=nezha["table_vs_float64"],
            table_rows=table_rows,
        ),
    )

    for name, info in [*albert.items(), ("nezha_tiny", nezha)]:
        print(f"\n{name}: safetensors keys ({len(info['safetensors_keys'])}):")
        for key in info["safetensors_keys"]:
            print(f"  {key}")
        print(f"{name}: TF checkpoint names ({len(info['tf_names'])}):")
        for key in info["tf_names"]:
            print(f"  {key}")
    print(
        "\nnezha_tiny state_dict keys not in safetensors:",
        sorted(set(nezha["state_keys"]) - set(nezha["safetensors_keys"])),
    )
    print(f"relative_table (K={NEZHA_KWARGS['max_relative_position']}):\n{table}")

    print("\nfiles:")
    too_big = []
    for name in (*ALBERT_VARIANTS, "nezha_tiny"):
        total = 0
        for fname, size in folder_files(FIXTURES_DIR / name):
            total += size
            print(f"  {name}/{fname}  {size}")
        print(f"  {name}/ total {total}")
        if total >= MAX_FOLDER_BYTES:
            too_big.append(name)
    if too_big:
        sys.exit(f"folders over {MAX_FOLDER_BYTES} bytes: {too_big}")


if __name__ == "__main__":
    main()
