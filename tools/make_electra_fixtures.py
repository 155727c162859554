"""Write tiny random ELECTRA reference fixtures (HF safetensors + Google-named TF checkpoints).

Three HF models (the independent reference), every parameter random, are written under
``tests/fixtures/electra_tiny/``:

- ``discriminator/``  ``transformers.ElectraForPreTraining``: vocab 40, hidden 16 =
  ``embedding_size`` (no projection), 2 layers, 2 heads, intermediate 24, 24 positions;
- ``mapped/``         ``ElectraForPreTraining`` with ``embedding_size=8`` (HF's and Google's
  ``embeddings_project``, bert4keras's ``Embedding-Mapping``);
- ``generator/``      ``ElectraForMaskedLM``: hidden 12, 2 layers, 2 heads, intermediate 20,
  ``embedding_size=8``, sharing ``mapped``'s embeddings (word, position, token type and their
  LayerNorm), as the generator and the discriminator of Google's pre-training do; its output
  layer is the word embedding matrix (tied), its bias the generator's output bias.

Each folder holds the HF ``config.json`` + ``model.safetensors`` (``save_pretrained``) and
``goldens.npz`` (the HF model in eval mode on a padded batch with both segment ids);
``tf_h5/discriminator/`` and ``tf_h5/generator/`` hold ``tf_model.h5`` + ``config.json`` of
HF's TF classes with ``mapped``'s and ``generator``'s weights (as HFL's hub repos ship them).
``discriminator/`` also holds a TF1 ``tf.compat.v1.train.Saver`` checkpoint
``electra_model.ckpt.*`` + ``checkpoint`` of the same weights under the names of Google's
``model/modeling.py`` / ``run_pretraining.py`` (``electra/...``, ``discriminator_predictions/
dense`` and ``dense_1``) and a ``bert_config.json`` in the format of ``modeling.BertConfig``
(no ``model_type``; ``"gelu"``, which Google's ELECTRA code computes with erf). ``joint/`` holds
what Google's (and HFL's) released ELECTRA checkpoints are: one pre-training checkpoint
``electra_tiny.*`` + ``checkpoint`` with the discriminator (``mapped``) under ``electra/`` and
``discriminator_predictions/``, the generator's body under ``generator/`` (its own
``embeddings_project`` and encoder; the embeddings are the shared ``electra/embeddings``), its
head under ``generator_predictions/`` and a ``global_step``, plus HFL-style
``discriminator.json`` / ``generator.json`` (HF configs).

Checks done by the script (it stops on failure):

- ``from_pretrained`` of each folder reproduces its goldens; each TF checkpoint holds exactly
  the intended arrays (``tf.train.load_variable``);
- ``transformers.load_tf_weights_in_electra`` (HF's own reading of Google's names) rebuilds
  every parameter of a NaN-filled ``ElectraForPreTraining`` from ``discriminator/``'s TF
  checkpoint and from ``joint/`` (``discriminator_or_generator="discriminator"``: ``mapped``),
  and of an ``ElectraForMaskedLM`` from ``joint/`` (``"generator"``), bit for bit.

kerasbert's converted safetensors are loaded by transformers in
``tools/verify_hf_loads_converted.py`` (``tests/fixtures/converted/hf_loads.json``). The script
also writes its section of ``tests/fixtures/README.md`` (between the ``make_electra_fixtures``
markers).

Environment: the ``/tmp/ref`` venv (torch 2.13.0+cpu, transformers 4.57.6, tensorflow-cpu
2.21.0, safetensors, numpy; CPU only). Run from the repository root::

    /tmp/ref/bin/python tools/make_electra_fixtures.py

The output is deterministic (fixed seeds); rerunning rewrites the same files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF classes need tf_keras
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    load_tf_weights_in_electra,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
ROOT_DIR = FIXTURES_DIR / "electra_tiny"
README_PATH = FIXTURES_DIR / "README.md"
README_KEY = "make_electra_fixtures"

MAX_FOLDER_BYTES = 400 * 1024
TOL = 1e-6
WEIGHT_STD = 0.2
GAMMA_STD = 0.1
INPUT_SEED = 1818

CLS_ID, SEP_ID, FIRST_RANDOM_ID = 2, 3, 5
MAX_LEN = 11
# (length of segment A incl. CLS and its SEP, total real length) per row; row 2 has one segment.
ROW_LAYOUT = ((6, 11), (4, 8), (5, 5))

COMMON = dict(
    vocab_size=40,
    max_position_embeddings=24,
    type_vocab_size=2,
    hidden_act="gelu",  # HF: erf, as Google's ELECTRA code
    layer_norm_eps=1e-12,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    initializer_range=0.02,
    pad_token_id=0,
)
VARIANTS = {
    "discriminator": dict(
        cls=ElectraForPreTraining, hidden_size=16, embedding_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=24, seed=1001,
    ),
    "mapped": dict(
        cls=ElectraForPreTraining, hidden_size=16, embedding_size=8, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=24, seed=1002,
    ),
    "generator": dict(
        cls=ElectraForMaskedLM, hidden_size=12, embedding_size=8, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=20, seed=1003,
    ),
}  # fmt: skip
SHARED = "electra.embeddings."  # what the generator takes from the discriminator (mapped)
# modeling.BertConfig's keys (Google's ELECTRA reads these; embedding_size is a run option).
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
GLOBAL_STEP = 1000

v1 = tf.compat.v1


# --------------------------------------------------------------------------------------------
# HF models, inputs, goldens
# --------------------------------------------------------------------------------------------


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def build(name: str):
    spec = dict(VARIANTS[name])
    cls, seed = spec.pop("cls"), spec.pop("seed")
    torch.manual_seed(seed)
    return cls(ElectraConfig(**COMMON, **spec))


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Every parameter random: LayerNorm gamma ~ 1 + 0.1 N(0, 1), the rest 0.2 N(0, 1)."""
    gammas = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            param.copy_(1.0 + GAMMA_STD * noise if id(param) in gammas else WEIGHT_STD * noise)
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


def run_hf(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    kwargs = torch_inputs(inputs)
    with torch.no_grad():
        out = model(**kwargs, output_hidden_states=True)
        bare = model.electra(**kwargs).last_hidden_state
    assert torch.equal(bare, out.hidden_states[-1])
    result = {"sequence_output": bare.numpy().astype(np.float32)}
    if isinstance(model, ElectraForPreTraining):
        logits = out.logits.numpy().astype(np.float32)  # (batch, length)
        result["discriminator_logits"] = logits
        result["discriminator_probs"] = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(
            np.float32
        )
    else:
        result["mlm_logits"] = out.logits.numpy().astype(np.float32)
    return result


def max_diffs(got: dict, want: dict, lengths) -> dict[str, float]:
    """Max abs diff per output over real tokens."""
    return {
        name: max(
            float(np.abs(np.asarray(got[name])[r, :n] - np.asarray(want[name])[r, :n]).max())
            for r, n in enumerate(lengths)
        )
        for name in want
        if name in got
    }


def fmt(diffs: dict[str, float]) -> str:
    short = {"sequence_output": "seq", "mlm_logits": "mlm", "discriminator_logits": "logits",
             "discriminator_probs": "probs"}  # fmt: skip
    return ", ".join(f"{short.get(k, k)} {v:.1e}" for k, v in diffs.items())


# --------------------------------------------------------------------------------------------
# Google's names and the TF checkpoints
# --------------------------------------------------------------------------------------------


def to_google(state: dict[str, np.ndarray], config: ElectraConfig, scope: str) -> dict:
    """HF ElectraForPreTraining / ElectraForMaskedLM state -> Google ELECTRA's names, the
    encoder under ``scope`` (``electra``; ``generator`` in a joint checkpoint, whose
    embeddings stay the shared ``electra/embeddings``)."""
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

    for kind in ("word", "position", "token_type"):
        out[f"electra/embeddings/{kind}_embeddings"] = take(
            f"electra.embeddings.{kind}_embeddings.weight"
        )
    layer_norm("electra/embeddings/LayerNorm", "electra.embeddings.LayerNorm")
    if config.embedding_size != config.hidden_size:
        dense(f"{scope}/embeddings_project", "electra.embeddings_project")
    for i in range(config.num_hidden_layers):
        t, h = f"{scope}/encoder/layer_{i}", f"electra.encoder.layer.{i}"
        for proj in ("query", "key", "value"):
            dense(f"{t}/attention/self/{proj}", f"{h}.attention.self.{proj}")
        dense(f"{t}/attention/output/dense", f"{h}.attention.output.dense")
        layer_norm(f"{t}/attention/output/LayerNorm", f"{h}.attention.output.LayerNorm")
        dense(f"{t}/intermediate/dense", f"{h}.intermediate.dense")
        dense(f"{t}/output/dense", f"{h}.output.dense")
        layer_norm(f"{t}/output/LayerNorm", f"{h}.output.LayerNorm")
    tied = set()
    if "generator_lm_head.bias" in state:
        dense("generator_predictions/dense", "generator_predictions.dense")
        layer_norm("generator_predictions/LayerNorm", "generator_predictions.LayerNorm")
        out["generator_predictions/output_bias"] = take("generator_lm_head.bias")
        assert np.array_equal(
            state["generator_lm_head.weight"], out["electra/embeddings/word_embeddings"]
        )
        tied = {"generator_lm_head.weight"}
    else:
        dense("discriminator_predictions/dense", "discriminator_predictions.dense")
        dense("discriminator_predictions/dense_1", "discriminator_predictions.dense_prediction")
    leftover = set(state) - used - tied
    assert not leftover, leftover
    return out


def write_tf_checkpoint(prefix: Path, weights: dict[str, np.ndarray]) -> None:
    """Save ``weights`` with a TF1 Saver (op names = checkpoint names), and read them back."""
    with tf.Graph().as_default():
        var_list = {}
        for name in sorted(weights):
            value = weights[name]
            dtype = tf.int64 if value.dtype == np.int64 else tf.float32
            var = v1.Variable(value, dtype=dtype, name=name)
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
        assert got.dtype == value.dtype and np.array_equal(got, value), name
    print(f"  {prefix.name}: {len(listed)} variables written and read back bit-identically")


def write_hf_tf(name: str, folder: Path, inputs: dict, goldens: dict) -> dict[str, float]:
    """``save_pretrained`` of HF's TF class (``tf_model.h5`` + ``config.json``, as HFL's hub
    repos hold them) with the weights of ``name``'s torch folder; its diffs from the goldens."""
    cls = transformers.TFElectraForPreTraining
    if VARIANTS[name]["cls"] is ElectraForMaskedLM:
        cls = transformers.TFElectraForMaskedLM
    model = cls.from_pretrained(str(ROOT_DIR / name), from_pt=True)
    model.save_pretrained(str(folder))
    reloaded = cls.from_pretrained(str(folder))
    kwargs = {k: v.numpy() for k, v in torch_inputs(inputs).items()}
    out = reloaded(**kwargs, output_hidden_states=True, training=False)
    got = {"sequence_output": out.hidden_states[-1].numpy()}
    if cls is transformers.TFElectraForMaskedLM:
        got["mlm_logits"] = out.logits.numpy()
    else:
        got["discriminator_logits"] = out.logits.numpy()
    diffs = max_diffs(got, goldens, inputs["lengths"])
    print(f"  {folder.relative_to(ROOT_DIR)}: {cls.__name__} from tf_model.h5 vs goldens: "
          f"{fmt(diffs)}")  # fmt: skip
    assert max(diffs.values()) <= 1e-5, diffs
    return diffs


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def hf_import(cls, config, prefix: Path, which: str) -> dict[str, torch.Tensor]:
    """``load_tf_weights_in_electra`` into a NaN-filled ``cls``: its state dict."""
    torch.manual_seed(0)
    model = cls(config)
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(float("nan"))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints every name it reads or skips
        load_tf_weights_in_electra(model, config, str(prefix), discriminator_or_generator=which)
    model.tie_weights()
    return model.state_dict()


def assert_same_state(got: dict, want: dict, what: str) -> None:
    nan = sorted(k for k, v in got.items() if v.is_floating_point() and torch.isnan(v).any())
    assert not nan, (what, nan)
    differ = sorted(k for k, v in got.items() if not torch.equal(v, want[k]))
    assert not differ, (what, differ)
    print(f"  load_tf_weights_in_electra ({what}): every parameter bit-identical")


# --------------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------------

README_SECTION = """\
## electra_tiny/

Generated by `tools/make_electra_fixtures.py` (venv and command in its docstring; written with
transformers {hf_version}, torch {torch_version}, tensorflow {tf_version}). Random HF ELECTRA
models (every parameter random: LayerNorm gamma = 1 + 0.1 N(0,1), everything else incl. all
biases 0.2 N(0,1)), vocab 40, 24 positions, 2 token types, `hidden_act="gelu"` (erf, as Google's
ELECTRA code), eps 1e-12:

- `discriminator/`: `ElectraForPreTraining`, hidden 16 = `embedding_size`, 2 layers, 2 heads,
  intermediate 24.
- `mapped/`: `ElectraForPreTraining`, hidden 16, `embedding_size=8` (`embeddings_project`).
- `generator/`: `ElectraForMaskedLM`, hidden 12, `embedding_size=8`, 2 layers, 2 heads,
  intermediate 20, with `mapped/`'s embeddings (word, position, token type, their LayerNorm);
  its output layer is the tied word embedding matrix, its bias `generator_lm_head.bias`.

Files:

- each folder: `config.json` + `model.safetensors` from `save_pretrained`, and `goldens.npz`:
  int32 `token_ids`, `segment_ids`, `attention_mask` (3, 11) and `lengths` (11, 8, 5; id 2
  first, id 3 after segment A and at the end, padding 0; rows 0 and 1 have segment B); float32
  `sequence_output` (the body's last hidden state), and `discriminator_logits` (3, 11) and
  `discriminator_probs` (their sigmoid) or `mlm_logits` (3, 11, 40), from the HF model in eval
  mode. Values at padded positions are whatever HF computed; ignore them.
- `discriminator/electra_model.ckpt.*` + `checkpoint`: a TF1 Saver checkpoint of the same weights
  under Google's names (`electra/embeddings/...`, `electra/encoder/layer_N/...`,
  `discriminator_predictions/dense` and `dense_1`; kernels `(in, out)`), and
  `bert_config.json`: `modeling.BertConfig`'s keys (no `model_type`; `"gelu"`, Google's ELECTRA
  code's erf GELU).
- `joint/electra_tiny.*` + `checkpoint`: a pre-training checkpoint as Google's and HFL's
  releases are: `mapped/` under `electra/` (`embeddings_project` included) and
  `discriminator_predictions/`, `generator/`'s body under `generator/` (`embeddings_project`,
  `encoder/layer_N/...`; no embeddings of its own: it reads `electra/embeddings`), its head
  under `generator_predictions/{{dense,LayerNorm,output_bias}}`, and an int64 `global_step`;
  `discriminator.json` / `generator.json`: the HF configs, as HFL's zips name them.
- `tf_h5/discriminator/` and `tf_h5/generator/`: `tf_model.h5` + `config.json` from
  `save_pretrained` of `TFElectraForPreTraining` / `TFElectraForMaskedLM` holding `mapped/`'s
  and `generator/`'s weights (the files HFL's hub repos ship besides `pytorch_model.bin`); their
  goldens are `mapped/`'s and `generator/`'s.

Checks (max abs diffs over real tokens):

- `from_pretrained` vs goldens: discriminator {discriminator_reload}; mapped {mapped_reload};
  generator {generator_reload}; the TF classes from `tf_h5/`: discriminator
  {discriminator_tf_h5}; generator {generator_tf_h5}.
- `transformers.load_tf_weights_in_electra` (HF's reading of Google's names) into NaN-filled
  models: `ElectraForPreTraining` from `discriminator/electra_model.ckpt` and from `joint/`
  (`discriminator_or_generator="discriminator"`), `ElectraForMaskedLM` from `joint/`
  (`"generator"`): every parameter bit-identical to `discriminator/`, `mapped/`, `generator/`.
- kerasbert's safetensors output in transformers: `tools/verify_hf_loads_converted.py`
  (`converted/hf_loads.json`).
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


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def main() -> None:
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"tensorflow {tf.__version__}, numpy {np.__version__}")  # fmt: skip
    inputs = make_inputs(COMMON["vocab_size"])
    ROOT_DIR.mkdir(parents=True, exist_ok=True)

    models = {}
    for name, spec in VARIANTS.items():
        model = build(name)
        randomize(model, spec["seed"])
        models[name] = model
    # The generator reads the discriminator's embeddings (Google's tied pre-training).
    with torch.no_grad():
        gen_state = models["generator"].state_dict()
        for key, value in models["mapped"].state_dict().items():
            if key.startswith(SHARED):
                gen_state[key].copy_(value)
    models["generator"].tie_weights()
    head = models["generator"].generator_lm_head
    assert head.weight is models["generator"].electra.embeddings.word_embeddings.weight

    values = {"hf_version": transformers.__version__, "torch_version": torch.__version__,
              "tf_version": tf.__version__}  # fmt: skip
    states, google = {}, {}
    for name, model in models.items():
        print(name)
        folder = fresh_dir(ROOT_DIR / name)
        goldens = run_hf(model, inputs)
        model.save_pretrained(str(folder), safe_serialization=True)
        np.savez(folder / "goldens.npz", **inputs, **goldens)
        reloaded = type(model).from_pretrained(str(folder))
        reloaded.eval()
        diffs = max_diffs(run_hf(reloaded, inputs), goldens, inputs["lengths"])
        print(f"  from_pretrained vs goldens: {fmt(diffs)}")
        assert max(diffs.values()) <= TOL, diffs
        values[f"{name}_reload"] = fmt(diffs)
        states[name] = model.state_dict()
        np_state = {k: v.detach().numpy() for k, v in states[name].items()}
        scope = "generator" if name == "generator" else "electra"
        google[name] = to_google(np_state, model.config, scope)

    # discriminator/: a fine-tuning-style TF checkpoint of one model, Google's config format.
    folder = ROOT_DIR / "discriminator"
    write_tf_checkpoint(folder / "electra_model.ckpt", google["discriminator"])
    config = models["discriminator"].config
    write_json(folder / "bert_config.json", {key: getattr(config, key) for key in GOOGLE_KEYS})
    imported = hf_import(ElectraForPreTraining, config, folder / "electra_model.ckpt",
                         "discriminator")  # fmt: skip
    assert_same_state(imported, states["discriminator"], "discriminator/")

    # joint/: the pre-training checkpoint (shared embeddings written once).
    folder = fresh_dir(ROOT_DIR / "joint")
    joint = dict(google["mapped"])
    for key, value in google["generator"].items():
        if key in joint:
            assert key.startswith("electra/embeddings/") and np.array_equal(joint[key], value)
        joint[key] = value
    joint["global_step"] = np.array(GLOBAL_STEP, dtype=np.int64)
    write_tf_checkpoint(folder / "electra_tiny", joint)
    for name, file in (("mapped", "discriminator.json"), ("generator", "generator.json")):
        write_json(folder / file, models[name].config.to_diff_dict() | {"model_type": "electra"})
    assert_same_state(
        hf_import(ElectraForPreTraining, models["mapped"].config, folder / "electra_tiny",
                  "discriminator"), states["mapped"], "joint/ as the discriminator",
    )  # fmt: skip
    assert_same_state(
        hf_import(ElectraForMaskedLM, models["generator"].config, folder / "electra_tiny",
                  "generator"), states["generator"], "joint/ as the generator",
    )  # fmt: skip
    # tf_h5/: HF's TF classes' files, as HFL's hub repos ship them besides pytorch_model.bin.
    fresh_dir(ROOT_DIR / "tf_h5")
    for name, target in (("mapped", "discriminator"), ("generator", "generator")):
        diffs = write_hf_tf(name, ROOT_DIR / "tf_h5" / target, inputs, run_hf(models[name], inputs))
        values[f"{target}_tf_h5"] = fmt(diffs)
    update_readme_section(README_KEY, README_SECTION.format(**values))

    total = 0
    for path in sorted(ROOT_DIR.rglob("*")):
        if path.is_file():
            total += path.stat().st_size
            print(f"  {path.relative_to(FIXTURES_DIR)}  {path.stat().st_size}")
    print(f"  electra_tiny/ total {total}")
    if total >= MAX_FOLDER_BYTES:
        sys.exit(f"electra_tiny/ is over {MAX_FOLDER_BYTES} bytes")


if __name__ == "__main__":
    main()
