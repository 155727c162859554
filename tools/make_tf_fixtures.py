"""Write real TensorFlow checkpoints (and an HF ``tf_model.h5``) for the kerasbert tests.

kerasbert reads TensorFlow checkpoints without TensorFlow; this script uses TensorFlow itself
to produce the files the reader is tested against. Everything is written under
``tests/fixtures/``:

- ``tf_bert_tiny/``     TF1 ``tf.compat.v1.train.Saver`` (V2 format) checkpoint, prefix
                        ``bert_model.ckpt``, holding the weights of ``bert_tiny_gelu/`` under
                        Google's original BERT variable names (kernels in TF ``(in, out)``
                        layout, ``cls/seq_relationship/output_weights`` as ``(2, hidden)``),
                        plus Adam slots ``<name>/adam_m`` / ``<name>/adam_v`` for every weight
                        and an int64 ``global_step``, like a Google pre-training checkpoint.
                        Also ``bert_config.json`` in Google's format (no ``model_type``).
- ``tf_dtypes/``        prefix ``model.ckpt``, sharded into two data files (variables pinned to
                        two CPU devices, ``Saver(sharded=True)``): float32, float16, bfloat16,
                        int32, int64 and bool tensors, scalars, 0-size tensors, a rank-3 tensor
                        and a non-ASCII name. ``expected.npz`` holds the values (bfloat16 stored
                        as float32) and ``expected_dtypes.json`` maps name -> TF dtype + shape.
- ``tf_many/``          prefix ``model.ckpt``; enough long-named scalars that the ``.index``
                        SSTable has two data blocks (TF uses 256 KiB table blocks).
                        ``expected.npz`` holds ``names`` (unicode) and ``values`` (float32);
                        its manifest summarises the variables instead of listing them.
- ``tf_partitioned/``   prefix ``model.ckpt``; one variable split in two slices by
                        ``fixed_size_partitioner(2)`` plus one plain variable; ``expected.npz``
                        holds the full values.
- ``hf_tf_bert_tiny/``  ``tf_model.h5`` + ``config.json`` from
                        ``TFBertForPreTraining.from_pretrained(bert_tiny_gelu, from_pt=True)``.

Every folder also gets ``manifest.json``: ``{"tensorflow", "transformers", "variables":
{name: [dtype, shape]}}`` (from ``tf.train.list_variables``; for the h5 file, every dataset
path with its dtype and shape). The checkpoint manifests also carry ``"index"``: facts parsed
from the ``.index`` SSTable by this script (number of data blocks, block compression type, and
per variable the shard / offset / size of its bytes in the data files, cross-checked against
the values TensorFlow returns).

Verification run by the script: ``tf.train.load_variable`` of every name equals the intended
array; ``transformers.load_tf_weights_in_bert`` into a ``BertForPreTraining`` (bert_tiny_gelu
config, erf GELU) reproduces every bert_tiny_gelu parameter bit-exactly and its goldens
(``mlm_logits``, ``nsp_logits``, ``sequence_output`` on real tokens) within 1e-5; the
``tf_model.h5`` reloaded with ``TFBertForPreTraining`` reproduces the goldens within 1e-5.

Environment (CPU only; what was used, Python 3.11)::

    python3 -m venv /work/venvs/tf
    /work/venvs/tf/bin/pip install --upgrade pip
    # torch first, the CPU wheel from local disk, so pip never pulls a CUDA build
    /work/venvs/tf/bin/pip install torch==2.13.0
    /work/venvs/tf/bin/pip install tensorflow-cpu tf-keras transformers==4.57.6 \\
        safetensors numpy h5py
    # -> tensorflow(-cpu) 2.21.0, tf-keras 2.21.0, keras 3.15.1, transformers 4.57.6,
    #    torch 2.13.0+cpu, numpy 2.4.6, h5py 3.14.0, safetensors 0.8.0

Run from the repository root::

    /work/venvs/tf/bin/python tools/make_tf_fixtures.py

Rerunning replaces the folders and yields byte-identical files (fixed seeds; the Saver's
``checkpoint`` state file holds relative paths and no timestamps).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # HF's TF models need Keras 2 (tf-keras)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
README_PATH = FIXTURES_DIR / "README.md"
SRC_DIR = FIXTURES_DIR / "bert_tiny_gelu"

MAX_FOLDER_BYTES = 400 * 1024
TOL = 1e-5
SLOT_SEED = 2024
GLOBAL_STEP = 12345
MANY_COUNT = 1450
MANY_NAME_LEN = 200

v1 = tf.compat.v1


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def fresh_dir(name: str) -> Path:
    path = FIXTURES_DIR / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def save_with_saver(
    prefix: Path,
    build,
    *,
    sharded: bool = False,
    n_cpus: int = 1,
) -> None:
    """Build variables in a fresh TF1 graph via ``build()`` and save them with a Saver.

    ``build`` returns either a dict {checkpoint name: variable} (names may be any string) or
    ``None`` to save all global variables under their op names.
    """
    with tf.Graph().as_default():
        var_list = build()
        saver = v1.train.Saver(
            var_list=var_list, sharded=sharded, save_relative_paths=True, max_to_keep=1
        )
        config = v1.ConfigProto(device_count={"CPU": n_cpus})
        with v1.Session(config=config) as sess:
            sess.run(v1.global_variables_initializer())
            saved = saver.save(sess, str(prefix), write_meta_graph=False)
    assert saved == str(prefix), saved


def np_of_tf(value: np.ndarray) -> np.ndarray:
    """bfloat16 arrays (ml_dtypes) -> float32, for npz storage and comparisons."""
    if value.dtype == tf.bfloat16.as_numpy_dtype:
        return value.astype(np.float32)
    return value


def assert_same(name: str, got: np.ndarray, want: np.ndarray, want_dtype: tf.DType) -> None:
    got = np.asarray(got)
    assert tf.as_dtype(got.dtype) == want_dtype, (name, got.dtype, want_dtype)
    assert got.shape == tuple(want.shape), (name, got.shape, want.shape)
    g, w = np_of_tf(got), np_of_tf(np.asarray(want))
    if g.dtype.kind == "f":
        assert np.array_equal(g.view(f"u{g.itemsize}"), w.astype(g.dtype).view(f"u{g.itemsize}")), (
            name
        )
    else:
        assert np.array_equal(g, w), name


def verify_checkpoint(prefix: Path, expected: dict[str, tuple[np.ndarray, tf.DType]]) -> None:
    """Every expected name is in the checkpoint (and nothing else), with identical bits."""
    listed = dict(tf.train.list_variables(str(prefix)))
    assert set(listed) == set(expected), sorted(set(listed) ^ set(expected))
    reader = tf.train.load_checkpoint(str(prefix))
    dtypes = reader.get_variable_to_dtype_map()
    for name, (value, dtype) in expected.items():
        assert dtypes[name] == dtype, (name, dtypes[name], dtype)
        assert list(listed[name]) == list(value.shape), (name, listed[name], value.shape)
        assert_same(name, tf.train.load_variable(str(prefix), name), value, dtype)
    print(f"  load_variable check: {len(expected)} variables bit-identical in {prefix.name}")


# --------------------------------------------------------------------------------------------
# A tiny reader of the .index SSTable (only for the manifests and the report; it is
# cross-checked against TensorFlow's own values below)
# --------------------------------------------------------------------------------------------

TABLE_MAGIC = 0xDB4775248B80FB57


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _block_entries(block: bytes):
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * n_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + vlen]
        pos += vlen


def _proto_fields(buf: bytes):
    """(field number, wire type, value) of a serialized protobuf message (no nesting)."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, wire, value


def read_index(prefix: Path) -> dict:
    data = Path(f"{prefix}.index").read_bytes()
    footer = data[-48:]
    (magic,) = struct.unpack("<Q", footer[-8:])
    assert magic == TABLE_MAGIC, hex(magic)
    _, pos = _varint(footer, 0)  # metaindex offset
    _, pos = _varint(footer, pos)  # metaindex size
    idx_off, pos = _varint(footer, pos)
    idx_size, pos = _varint(footer, pos)
    index_block = data[idx_off : idx_off + idx_size]
    index_type = data[idx_off + idx_size]
    block_types, entries = [], {}
    for _, handle in _block_entries(index_block):
        off, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        block_type = data[off + size]
        block_types.append(block_type)
        if block_type != 0:
            continue  # compressed blocks are not decoded here
        for key, value in _block_entries(data[off : off + size]):
            entries[key] = value
    header = {f: v for f, _, v in _proto_fields(entries.pop(b""))} if b"" in entries else {}
    variables = {}
    for key, value in entries.items():
        info = {"shard": 0, "offset": 0, "size": 0, "slices": 0}
        for field, _, val in _proto_fields(value):
            if field == 1:
                info["dtype_enum"] = val
            elif field == 3:
                info["shard"] = val
            elif field == 4:
                info["offset"] = val
            elif field == 5:
                info["size"] = val
            elif field == 7:
                info["slices"] += 1
        # Keys of the hidden per-slice entries of a partitioned variable are binary
        # (OrderedCode, starting with a NUL byte); show them as hex.
        name = f"<slice:{key.hex()}>" if key.startswith(b"\x00") else key.decode("utf-8")
        variables[name] = info
    return {
        "index_block_compression": index_type,
        "data_blocks": len(block_types),
        "data_block_compression": sorted(set(block_types)),
        "num_shards": header.get(1, 1),
        "entries": variables,
    }


def index_summary(prefix: Path, check_bytes: bool = True) -> dict:
    """Parse the index and cross-check each entry's bytes against TensorFlow's value."""
    info = read_index(prefix)
    if check_bytes:
        n = info["num_shards"]
        shards = [Path(f"{prefix}.data-{i:05d}-of-{n:05d}").read_bytes() for i in range(n)]
        reader = tf.train.load_checkpoint(str(prefix))
        for name, entry in info["entries"].items():
            if entry["slices"] or name.startswith("<slice:"):
                continue  # sliced variables: full-shape entry without bytes + hidden entries
            raw = shards[entry["shard"]][entry["offset"] : entry["offset"] + entry["size"]]
            value = np.ascontiguousarray(reader.get_tensor(name))
            assert raw == value.tobytes(), name
    return {
        "data_blocks": info["data_blocks"],
        "block_compression": {
            "index_block": info["index_block_compression"],
            "data_blocks": info["data_block_compression"],
        },
        "num_shards": info["num_shards"],
        "entries": {
            name: {k: e[k] for k in ("shard", "offset", "size", "slices")}
            for name, e in sorted(info["entries"].items())
        },
    }


def write_manifest(folder: Path, variables: dict | None, extra: dict | None = None) -> None:
    """manifest.json with one variable per line (variables=None: key omitted)."""
    manifest = {"tensorflow": tf.__version__, "transformers": transformers.__version__}
    manifest.update(extra or {})
    lines = ["{"]
    items = [
        f" {json.dumps(k)}: {json.dumps(v, sort_keys=True, ensure_ascii=False)}"
        for k, v in sorted(manifest.items())
    ]
    if variables is not None:
        rows = [
            f"  {json.dumps(name, ensure_ascii=False)}: {json.dumps(spec)}"
            for name, spec in sorted(variables.items())
        ]
        items.append(' "variables": {\n' + ",\n".join(rows) + "\n }")
    lines.append(",\n".join(items))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)
    (folder / "manifest.json").write_text(text, encoding="utf-8")


def checkpoint_variables(prefix: Path) -> dict[str, list]:
    reader = tf.train.load_checkpoint(str(prefix))
    dtypes = reader.get_variable_to_dtype_map()
    return {
        name: [dtypes[name].name, list(shape)]
        for name, shape in tf.train.list_variables(str(prefix))
    }


def checkpoint_manifest(folder: Path, prefix: Path, index: dict | None = None) -> None:
    write_manifest(
        folder, checkpoint_variables(prefix), {"index": index} if index is not None else None
    )


# --------------------------------------------------------------------------------------------
# 1. tf_bert_tiny: Google-named TF1 checkpoint of bert_tiny_gelu
# --------------------------------------------------------------------------------------------


def hf_to_google(hf: dict[str, np.ndarray], num_layers: int) -> dict[str, np.ndarray]:
    """HF BertForPreTraining state -> Google BERT checkpoint names and layouts."""
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def take(hf_name: str) -> np.ndarray:
        used.add(hf_name)
        return np.ascontiguousarray(hf[hf_name], dtype=np.float32)

    def dense(google: str, hf_prefix: str) -> None:
        out[f"{google}/kernel"] = np.ascontiguousarray(take(f"{hf_prefix}.weight").T)
        out[f"{google}/bias"] = take(f"{hf_prefix}.bias")

    def layer_norm(google: str, hf_prefix: str) -> None:
        out[f"{google}/gamma"] = take(f"{hf_prefix}.weight")
        out[f"{google}/beta"] = take(f"{hf_prefix}.bias")

    for kind in ("word", "position", "token_type"):
        out[f"bert/embeddings/{kind}_embeddings"] = take(
            f"bert.embeddings.{kind}_embeddings.weight"
        )
    layer_norm("bert/embeddings/LayerNorm", "bert.embeddings.LayerNorm")
    for i in range(num_layers):
        g, h = f"bert/encoder/layer_{i}", f"bert.encoder.layer.{i}"
        for proj in ("query", "key", "value"):
            dense(f"{g}/attention/self/{proj}", f"{h}.attention.self.{proj}")
        dense(f"{g}/attention/output/dense", f"{h}.attention.output.dense")
        layer_norm(f"{g}/attention/output/LayerNorm", f"{h}.attention.output.LayerNorm")
        dense(f"{g}/intermediate/dense", f"{h}.intermediate.dense")
        dense(f"{g}/output/dense", f"{h}.output.dense")
        layer_norm(f"{g}/output/LayerNorm", f"{h}.output.LayerNorm")
    dense("bert/pooler/dense", "bert.pooler.dense")
    dense("cls/predictions/transform/dense", "cls.predictions.transform.dense")
    layer_norm("cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm")
    out["cls/predictions/output_bias"] = take("cls.predictions.bias")
    # Google stores the NSP weight as (2, hidden), i.e. like a torch Linear weight.
    out["cls/seq_relationship/output_weights"] = take("cls.seq_relationship.weight")
    out["cls/seq_relationship/output_bias"] = take("cls.seq_relationship.bias")
    leftover = set(hf) - used
    assert not leftover, leftover
    return out


def google_bert_config(hf_config: dict) -> dict:
    keys = (
        "attention_probs_dropout_prob",
        "hidden_act",
        "hidden_dropout_prob",
        "hidden_size",
        "initializer_range",
        "intermediate_size",
        "max_position_embeddings",
        "num_attention_heads",
        "num_hidden_layers",
        "type_vocab_size",
        "vocab_size",
    )
    return {k: hf_config[k] for k in keys}


def real_token_diffs(goldens, mlm, nsp, seq) -> dict[str, float]:
    diffs = {"mlm_logits": 0.0, "sequence_output": 0.0}
    for row, length in enumerate(goldens["lengths"]):
        diffs["mlm_logits"] = max(
            diffs["mlm_logits"],
            float(np.abs(mlm[row, :length] - goldens["mlm_logits"][row, :length]).max()),
        )
        diffs["sequence_output"] = max(
            diffs["sequence_output"],
            float(np.abs(seq[row, :length] - goldens["sequence_output"][row, :length]).max()),
        )
    diffs["nsp_logits"] = float(np.abs(nsp - goldens["nsp_logits"]).max())
    return diffs


def make_tf_bert_tiny() -> dict:
    folder = fresh_dir("tf_bert_tiny")
    prefix = folder / "bert_model.ckpt"
    hf_config = json.loads((SRC_DIR / "config.json").read_text())
    hf_weights = load_file(str(SRC_DIR / "model.safetensors"))
    weights = hf_to_google(hf_weights, hf_config["num_hidden_layers"])

    rng = np.random.default_rng(SLOT_SEED)
    expected: dict[str, tuple[np.ndarray, tf.DType]] = {}
    for name in sorted(weights):
        value = weights[name]
        expected[name] = (value, tf.float32)
        m = (rng.standard_normal(value.shape) * 1e-3).astype(np.float32)
        v = (np.abs(rng.standard_normal(value.shape)) * 1e-6).astype(np.float32)
        expected[f"{name}/adam_m"] = (m, tf.float32)
        expected[f"{name}/adam_v"] = (v, tf.float32)
    expected["global_step"] = (np.array(GLOBAL_STEP, dtype=np.int64), tf.int64)

    def build():
        var_list = {}
        for name, (value, dtype) in expected.items():
            # Op names equal the checkpoint names, as in Google's own checkpoints.
            var_list[name] = v1.Variable(value, dtype=dtype, name=name, trainable=(value.ndim > 0))
            assert var_list[name].op.name == name, (var_list[name].op.name, name)
        return var_list

    save_with_saver(prefix, build)
    (folder / "bert_config.json").write_text(
        json.dumps(google_bert_config(hf_config), indent=2, sort_keys=True) + "\n"
    )
    verify_checkpoint(prefix, expected)

    # HF's own TF-checkpoint importer must rebuild bert_tiny_gelu exactly.
    from transformers import BertConfig, BertForPreTraining, load_tf_weights_in_bert

    config = BertConfig.from_pretrained(str(SRC_DIR))  # hidden_act "gelu" = erf in HF
    torch.manual_seed(0)
    model = BertForPreTraining(config)
    with torch.no_grad():  # make sure nothing stale survives if a name were skipped
        for param in model.parameters():
            param.fill_(float("nan"))
    load_tf_weights_in_bert(model, config, str(prefix))
    model.eval()
    state = model.state_dict()
    for hf_name, value in hf_weights.items():
        assert np.array_equal(state[hf_name].numpy(), value), hf_name
    assert np.array_equal(
        state["cls.predictions.decoder.weight"].numpy(),
        hf_weights["bert.embeddings.word_embeddings.weight"],
    )
    print(f"  load_tf_weights_in_bert: all {len(hf_weights)} HF parameters bit-identical")

    goldens = np.load(SRC_DIR / "goldens.npz")
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(goldens["token_ids"].astype(np.int64)),
            token_type_ids=torch.from_numpy(goldens["segment_ids"].astype(np.int64)),
            attention_mask=torch.from_numpy(goldens["attention_mask"].astype(np.int64)),
            output_hidden_states=True,
        )
    diffs = real_token_diffs(
        goldens,
        out.prediction_logits.numpy(),
        out.seq_relationship_logits.numpy(),
        out.hidden_states[-1].numpy(),
    )
    print(f"  tf_bert_tiny via load_tf_weights_in_bert vs goldens (max abs diff): {diffs}")
    assert max(diffs.values()) <= TOL, diffs

    index = index_summary(prefix)
    checkpoint_manifest(folder, prefix, {k: v for k, v in index.items() if k != "entries"})
    return {"diffs": diffs, "index": index}


# --------------------------------------------------------------------------------------------
# 2. tf_dtypes (sharded) and tf_many (multi-block index)
# --------------------------------------------------------------------------------------------


def dtype_variables() -> list[tuple[str, np.ndarray, tf.DType, int]]:
    """(checkpoint name, value, TF dtype, CPU device) of every tf_dtypes variable."""
    bf16 = tf.bfloat16.as_numpy_dtype
    rank3 = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 11.5) / 4
    return [
        (
            "dtypes/float32",
            np.array([[0.0, -1.5, 3.25], [1e-30, -0.0, 6.5e7]], np.float32),
            tf.float32,
            0,
        ),
        ("dtypes/float16", np.array([0.5, -2.0, 65504.0, 6e-8, -0.0], np.float16), tf.float16, 1),
        (
            "dtypes/bfloat16",
            np.array([[1.0, -2.5, 3.0e20], [0.0078125, -0.0, 96.0]], bf16),
            tf.bfloat16,
            0,
        ),
        ("dtypes/int32", np.array([0, -1, 2**31 - 1, -(2**31)], np.int32), tf.int32, 1),
        ("dtypes/int64", np.array([1, -(2**63), 2**62 + 3], np.int64), tf.int64, 0),
        ("dtypes/bool", np.array([[True, False, True], [False, False, True]]), tf.bool, 1),
        ("shapes/scalar_float32", np.array(-7.125, np.float32), tf.float32, 0),
        ("shapes/scalar_int64", np.array(987654321012, np.int64), tf.int64, 1),
        ("shapes/empty_1d", np.zeros((0,), np.float32), tf.float32, 1),
        ("shapes/empty_2d", np.zeros((3, 0), np.int32), tf.int32, 0),
        ("shapes/rank3", rank3, tf.float32, 1),
        ("unicode/ünïcødé/名前", np.array([1.25, -4.0], np.float32), tf.float32, 0),
    ]


def make_tf_dtypes() -> dict:
    folder = fresh_dir("tf_dtypes")
    prefix = folder / "model.ckpt"
    variables = dtype_variables()

    def build():
        var_list = {}
        for i, (name, value, dtype, device) in enumerate(variables):
            with tf.device(f"/cpu:{device}"):
                # Op names must be ASCII; the checkpoint key is the dict key.
                var_list[name] = v1.Variable(tf.constant(value, dtype=dtype), name=f"var_{i}")
        return var_list

    save_with_saver(prefix, build, sharded=True, n_cpus=2)
    expected = {name: (value, dtype) for name, value, dtype, _ in variables}
    verify_checkpoint(prefix, expected)
    shards = sorted(p.name for p in folder.glob("model.ckpt.data-*"))
    assert shards == ["model.ckpt.data-00000-of-00002", "model.ckpt.data-00001-of-00002"], shards

    np.savez(folder / "expected.npz", **{name: np_of_tf(value) for name, value, _, _ in variables})
    (folder / "expected_dtypes.json").write_text(
        json.dumps(
            {
                name: {"dtype": dtype.name, "shape": list(value.shape)}
                for name, value, dtype, _ in variables
            },
            indent=1,
            sort_keys=True,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    with np.load(folder / "expected.npz") as npz:
        assert sorted(npz.files) == sorted(expected), npz.files
        for name, (value, _) in expected.items():
            assert np.array_equal(npz[name], np_of_tf(value)), name

    index = index_summary(prefix)
    checkpoint_manifest(folder, prefix, index)
    return index


def many_names() -> list[str]:
    names = []
    for i in range(MANY_COUNT):
        head = f"many/group_{i // 100:02d}/variable_{i:04d}/"
        tail = "".join(f"segment{j}_" for j in range(40))
        names.append((head + tail)[:MANY_NAME_LEN])
    return names


def make_tf_many() -> dict:
    folder = fresh_dir("tf_many")
    prefix = folder / "model.ckpt"
    names = many_names()
    values = (np.arange(MANY_COUNT, dtype=np.float32) * 0.5 - 100.0).astype(np.float32)

    def build():
        with tf.device("/cpu:0"):
            return {
                name: v1.Variable(np.float32(values[i]), name=f"var_{i}")
                for i, name in enumerate(names)
            }

    save_with_saver(prefix, build)
    verify_checkpoint(prefix, {n: (np.array(values[i]), tf.float32) for i, n in enumerate(names)})
    # Names in checkpoint (= tf.train.list_variables, i.e. sorted) order.
    listed = checkpoint_variables(prefix)
    ordered = list(listed)
    by_name = dict(zip(names, values))
    assert ordered == sorted(names)
    np.savez_compressed(
        folder / "expected.npz",
        names=np.array(ordered),
        values=np.array([by_name[n] for n in ordered], dtype=np.float32),
    )
    index = index_summary(prefix)
    assert index["data_blocks"] >= 2, index["data_blocks"]
    # Listing all ~290 KB of names again would break the folder size budget: the manifest
    # summarises them instead (every one is float32 scalar; names in expected.npz).
    assert all(spec == ["float32", []] for spec in listed.values())
    summary = {
        "variable_count": len(listed),
        "variable_spec": ["float32", []],
        "variable_names": "expected.npz['names']",
        "index": {k: v for k, v in index.items() if k != "entries"},
    }
    write_manifest(folder, None, summary)
    return index


# --------------------------------------------------------------------------------------------
# 3. tf_partitioned
# --------------------------------------------------------------------------------------------


def make_tf_partitioned() -> dict:
    folder = fresh_dir("tf_partitioned")
    prefix = folder / "model.ckpt"
    kernel = (np.arange(24, dtype=np.float32).reshape(6, 4) - 10.0) / 8.0
    bias = np.array([0.5, -0.25, 1.0, 2.0], np.float32)

    def slice_initializer(shape, dtype=None, partition_info=None):
        start = partition_info.var_offset if partition_info is not None else [0, 0]
        part = kernel[start[0] : start[0] + shape[0], start[1] : start[1] + shape[1]]
        return tf.constant(part, dtype=dtype)

    def build():
        v1.get_variable(
            "partitioned/kernel",
            shape=kernel.shape,
            dtype=tf.float32,
            initializer=slice_initializer,
            partitioner=v1.fixed_size_partitioner(2),
        )
        v1.get_variable("plain/bias", initializer=tf.constant(bias))
        return None

    save_with_saver(prefix, build)
    expected = {"partitioned/kernel": (kernel, tf.float32), "plain/bias": (bias, tf.float32)}
    verify_checkpoint(prefix, expected)
    np.savez(folder / "expected.npz", **{name: value for name, (value, _) in expected.items()})
    index = index_summary(prefix)
    assert index["entries"]["partitioned/kernel"]["slices"] == 2, index["entries"]
    checkpoint_manifest(folder, prefix, index)
    return index


# --------------------------------------------------------------------------------------------
# 4. hf_tf_bert_tiny: HF tf_model.h5
# --------------------------------------------------------------------------------------------


def h5_datasets(path: Path) -> dict[str, list]:
    found: dict[str, list] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found[name] = [str(obj.dtype), list(obj.shape)]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def make_hf_tf_bert_tiny() -> dict:
    from transformers import TFBertForPreTraining

    folder = fresh_dir("hf_tf_bert_tiny")
    tmp = folder / "_save"
    model = TFBertForPreTraining.from_pretrained(str(SRC_DIR), from_pt=True)
    model.save_pretrained(str(tmp))
    for name in ("tf_model.h5", "config.json"):
        shutil.move(str(tmp / name), str(folder / name))
    shutil.rmtree(tmp)
    del model

    reloaded = TFBertForPreTraining.from_pretrained(str(folder))
    goldens = np.load(SRC_DIR / "goldens.npz")
    out = reloaded(
        input_ids=goldens["token_ids"],
        token_type_ids=goldens["segment_ids"],
        attention_mask=goldens["attention_mask"],
        output_hidden_states=True,
        training=False,
    )
    diffs = real_token_diffs(
        goldens,
        out.prediction_logits.numpy(),
        out.seq_relationship_logits.numpy(),
        out.hidden_states[-1].numpy(),
    )
    print(f"  tf_model.h5 (TFBertForPreTraining) vs goldens (max abs diff): {diffs}")
    assert max(diffs.values()) <= TOL, diffs

    datasets = h5_datasets(folder / "tf_model.h5")
    write_manifest(folder, datasets, {"h5py": h5py.__version__, "tf_keras": _tf_keras_version()})
    return {"diffs": diffs, "datasets": datasets}


def _tf_keras_version() -> str:
    import tf_keras

    return tf_keras.__version__


# --------------------------------------------------------------------------------------------
# README and main
# --------------------------------------------------------------------------------------------

README_SECTION = """\
## tf_bert_tiny/, tf_dtypes/, tf_many/, tf_partitioned/, hf_tf_bert_tiny/

Generated by `tools/make_tf_fixtures.py` with real TensorFlow (see its docstring for the venv
and command; written with tensorflow {tf_version}, transformers {hf_version}). Every folder has a
`manifest.json`: `{{"tensorflow", "transformers", "variables": {{name: [dtype, shape]}}}}` from
`tf.train.list_variables` (for the h5 folder: every h5 dataset path with dtype and shape). The
checkpoint manifests also have `"index"`: number of `.index` data blocks, block compression
types (0 = none; TF writes uncompressed tables) and, for tf_dtypes / tf_partitioned, each
entry's `shard` / `offset` / `size` / `slices`, parsed by the generator and cross-checked
against TensorFlow's values.

- `tf_bert_tiny/`: TF1 `tf.compat.v1.train.Saver` (V2) checkpoint `bert_model.ckpt.index`,
  `bert_model.ckpt.data-00000-of-00001`, `checkpoint` (state file, relative path) and a
  Google-format `bert_config.json` (no `model_type`; `hidden_act: "gelu"`, which Google's code
  computes with the tanh approximation, while the HF goldens use erf). The weights are exactly
  those of `bert_tiny_gelu/` under Google's names (`bert/embeddings/word_embeddings`,
  `bert/encoder/layer_N/attention/self/query/kernel`, ..., `cls/predictions/output_bias`,
  `cls/seq_relationship/output_weights` (2, hidden), `cls/seq_relationship/output_bias`);
  kernels are `(in, out)` = transposed HF torch weights, LayerNorm is `gamma`/`beta`. As in a
  real pre-training checkpoint every weight `V` also has float32 Adam slots `V/adam_m` and
  `V/adam_v` (random, seed {slot_seed}), and there is an int64 scalar `global_step` =
  {global_step}: {n_bert} variables in all. `transformers.load_tf_weights_in_bert` rebuilds
  every bert_tiny_gelu parameter bit-exactly; goldens max abs diffs on real tokens:
  {bert_diffs}.
- `tf_dtypes/`: `model.ckpt` sharded into `.data-00000-of-00002` and `.data-00001-of-00002`
  (`Saver(sharded=True)`, variables pinned to `/cpu:0` and `/cpu:1`). `expected.npz` has one
  array per checkpoint name (bfloat16 stored as float32), `expected_dtypes.json` maps
  name -> {{"dtype": TF dtype name, "shape"}}. Variables (dtype, shape, shard):
{dtype_table}
- `tf_many/`: `model.ckpt` with {many_count} float32 scalars named
  `many/group_GG/variable_IIII/segment0_segment1_...` ({many_len} chars), so that the `.index`
  SSTable has {many_blocks} data blocks (TF's table block size is 256 KiB).
  `expected.npz`: `names` (unicode, sorted = checkpoint order) and `values` (float32);
  the value of `variable_IIII` is 0.5 * IIII - 100. Its `manifest.json` has no `variables`
  map (the names alone are ~290 KB): instead `variable_count`, `variable_spec`
  (`["float32", []]` for all) and `variable_names` pointing to `expected.npz`.
- `tf_partitioned/`: `model.ckpt` with `partitioned/kernel` (6, 4) float32 saved as 2 slices
  by `fixed_size_partitioner(2)` (the index holds the full-shape entry with 2 `slices` and
  hidden per-slice entries), plus a plain `plain/bias` (4,). `expected.npz` holds the full
  values (as `tf.train.load_variable` returns them).
- `hf_tf_bert_tiny/`: `tf_model.h5` and `config.json` from
  `TFBertForPreTraining.from_pretrained("bert_tiny_gelu", from_pt=True).save_pretrained(...)`
  (tf-keras {tf_keras_version}). Reloaded with `TFBertForPreTraining`, goldens max abs diffs
  on real tokens: {h5_diffs}. Datasets are named like
  `bert/tf_bert_for_pre_training/bert/encoder/layer_._0/attention/self/query/kernel:0`
  (kernels `(in, out)`); the full list is in its `manifest.json`.

Rerunning the generator rewrites byte-identical files.
"""


def update_readme_section(key: str, body: str) -> None:
    begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = README_PATH.read_text(encoding="utf-8") if README_PATH.exists() else "# Test fixtures\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail.lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    README_PATH.write_text(text, encoding="utf-8")


def fmt_diffs(diffs: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2e}" for k, v in sorted(diffs.items()))


def main() -> None:
    print(
        f"tensorflow {tf.__version__}, transformers {transformers.__version__}, "
        f"torch {torch.__version__}"
    )
    print("tf_bert_tiny")
    bert = make_tf_bert_tiny()
    print("tf_dtypes")
    dtypes_index = make_tf_dtypes()
    print("tf_many")
    many_index = make_tf_many()
    print("tf_partitioned")
    part_index = make_tf_partitioned()
    print("hf_tf_bert_tiny")
    h5 = make_hf_tf_bert_tiny()

    dtype_rows = []
    for name, value, dtype, _ in dtype_variables():
        shard = dtypes_index["entries"][name]["shard"]
        dtype_rows.append(f"  - `{name}`: {dtype.name} {list(value.shape)}, shard {shard}")
    n_bert = len(tf.train.list_variables(str(FIXTURES_DIR / "tf_bert_tiny" / "bert_model.ckpt")))
    update_readme_section(
        "make_tf_fixtures",
        README_SECTION.format(
            tf_version=tf.__version__,
            hf_version=transformers.__version__,
            slot_seed=SLOT_SEED,
            global_step=GLOBAL_STEP,
            n_bert=n_bert,
            bert_diffs=fmt_diffs(bert["diffs"]),
            dtype_table="\n".join(dtype_rows),
            many_count=MANY_COUNT,
            many_len=MANY_NAME_LEN,
            many_blocks=many_index["data_blocks"],
            tf_keras_version=_tf_keras_version(),
            h5_diffs=fmt_diffs(h5["diffs"]),
        ),
    )

    print("\nindex facts:")
    for label, idx in (
        ("tf_bert_tiny", bert["index"]),
        ("tf_dtypes", dtypes_index),
        ("tf_many", many_index),
        ("tf_partitioned", part_index),
    ):
        print(
            f"  {label}: data_blocks={idx['data_blocks']} compression={idx['block_compression']} "
            f"shards={idx['num_shards']}"
        )
    print("\ntf_dtypes entries (name: dtype shape shard offset size):")
    reader = tf.train.load_checkpoint(str(FIXTURES_DIR / "tf_dtypes" / "model.ckpt"))
    dtype_map = reader.get_variable_to_dtype_map()
    shape_map = reader.get_variable_to_shape_map()
    for name, e in dtypes_index["entries"].items():
        print(
            f"  {name}: {dtype_map[name].name} {shape_map[name]} shard={e['shard']} "
            f"offset={e['offset']} size={e['size']}"
        )
    print("\ntf_partitioned entries:", json.dumps(part_index["entries"], ensure_ascii=False))
    print("\ntf_model.h5 datasets:")
    for path, (dtype, shape) in h5["datasets"].items():
        print(f"  {path}  {dtype} {shape}")

    print("\nfiles:")
    too_big = []
    for name in ("tf_bert_tiny", "tf_dtypes", "tf_many", "tf_partitioned", "hf_tf_bert_tiny"):
        folder = FIXTURES_DIR / name
        total = 0
        for path in sorted(folder.iterdir()):
            total += path.stat().st_size
            print(f"  {name}/{path.name}  {path.stat().st_size}")
        print(f"  {name}/ total {total}")
        if total >= MAX_FOLDER_BYTES:
            too_big.append(name)
    if too_big:
        sys.exit(f"folders over {MAX_FOLDER_BYTES} bytes: {too_big}")


if __name__ == "__main__":
    main()
