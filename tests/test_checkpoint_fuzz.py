"""Seeded fuzz test of the checkpoint readers kerasbert needs no torch for.

Formats: a TF bundle (``tf_bert_tiny``: ``.index`` + ``.data`` + ``checkpoint`` state
file), HF ``model.safetensors`` (``bert_tiny_gelu``), HF ``tf_model.h5``
(``hf_tf_bert_tiny``), a Keras ``.weights.h5`` saved from the model, a safetensors shard
index (``model.safetensors.index.json`` over two shards), and the files ``kerasbert
convert`` writes, which carry kerasbert's checksums (safetensors: a ``kerasbert.crc32c``
metadata entry; ``.weights.h5``: a ``kerasbert_crc32c`` attribute per dataset). All hold the
same weights, so one model (built once) takes every file.

Every case copies one format's clean files into a folder of its own, damages them with a
mutation drawn from an RNG seeded by ``(SEED, format, case number)`` (so a case replays
alone: :func:`replay`), and loads the folder (or the file) the way
``build_transformer_model`` does: :func:`open_checkpoint`, :func:`resolve_model`, then the
builder's ``load_weights_from_checkpoint``. Byte-level mutations: flip a byte, overwrite a
run with random bytes / 0xFF / 0x00, truncate, duplicate or insert a run, delete a run (half
of them aimed at the metadata: headers, the HDF5 bytes outside raw data). Format-aware ones:
relabel a tensor's dtype keeping its bytes (safetensors header, TF entry code, HDF5
dataset type), edit header / JSON values (shapes, offsets, names, CRCs, shard names that
lead out of the folder), NaN / inf values, swapped or deleted HDF5 datasets, links and
external storage.

For every case:

- the outcome is a load or a :class:`KerasBertError`; anything else fails, naming the
  format, the case's seed, the mutation and the traceback;
- it finishes within :data:`CASE_SECONDS` (SIGALRM); a hang in C code, where no Python
  signal handler runs, is ended by faulthandler's watchdog, whose traceback names the
  case (the function running it is named after it);
- a load leaves only finite weights, and a mutation that relabelled a tensor the model
  takes (to integers, bools, or another float type with a changed shape) never loads;
- a load of a format whose every tensor is checked against a checksum (TF bundles: CRC-32C
  per tensor; kerasbert's checksummed files; the shard index, whose shards are intact)
  gives weights, hence outputs, identical to the clean file's (kerasbert's HDF5 checksums
  bind each dataset's name, so even swapped datasets are refused); formats without
  checksums (HF's safetensors and ``tf_model.h5``, Keras's own ``.weights.h5``) may load
  changed but finite values;
- a refusal leaves the model as it was (loading is all or nothing; not for ``.weights.h5``,
  which Keras itself assigns variable by variable);
- nothing outside the case's folder is read: a ``sys.addaudithook`` hook records every
  ``open`` made from Python (Python's and kerasbert's own files are allowed). HDF5 (h5py,
  Keras's ``load_weights``) and safetensors open files in C / Rust, which the hook does not
  see; so what mutations name outside the folder (shard names, state-file paths, HDF5
  external links and storage) are decoys whose every value is :data:`MARKER`, and no
  loaded weight may be all MARKER.
"""

import faulthandler
import json
import os
import shutil
import signal
import site
import struct
import sys
import traceback
import types
from collections import Counter
from dataclasses import dataclass, field

import h5py
import numpy as np
import pytest
from conftest import FIXTURES
from safetensors.numpy import load, load_file, save_file

import kerasbert
from kerasbert.checkpoints import ArrayCheckpoint, open_checkpoint, write_tf_checkpoint
from kerasbert.checkpoints import protobuf as pb
from kerasbert.checkpoints.crc32c import crc32c, mask
from kerasbert.checkpoints.integrity import H5_ATTRIBUTE, METADATA_KEY
from kerasbert.checkpoints.sstable import read_table, write_table
from kerasbert.config import load_config
from kerasbert.convert import convert
from kerasbert.errors import CheckpointError, KerasBertError, WeightLoadingError
from kerasbert.models import build_transformer_model, model_arrays
from kerasbert.models.factory import resolve_model

SEED = 20240611
CASES = {"tf_bundle": 300, "safetensors": 300, "hf_tf_h5": 200, "keras_h5": 200,
         "shard_index": 300, "safetensors_crc": 300, "keras_h5_crc": 200}  # fmt: skip
CASE_SECONDS = 5  # per case (SIGALRM): a hundred times a clean load
WATCHDOG_SECONDS = 60  # faulthandler: ends the process if a case is stuck in C code
HEADS = {"with_pool": True, "with_nsp": True, "with_mlm": True}
SOURCE = FIXTURES / "bert_tiny_gelu"
MARKER = 7.0  # every value of the decoys outside the case folders
TOKENS = np.array([[2, 17, 45, 99, 3, 8, 61, 3]], "int32")
SEGMENTS = np.array([[0, 0, 0, 0, 0, 1, 1, 1]], "int32")


class CaseTimeout(BaseException):
    """A case ran past CASE_SECONDS (a BaseException: no reader's ``except Exception``
    turns it into a CheckpointError)."""


# -- recording opens --------------------------------------------------------------------
_opened = None  # a list while a case runs, else None
_hook_installed = False


def _audit(event, args):
    if event == "open" and _opened is not None and isinstance(args[0], (str, bytes)):
        _opened.append(os.fsdecode(args[0]))


def _install_hook():
    global _hook_installed
    if not _hook_installed:  # audit hooks cannot be removed; this one is idle between cases
        sys.addaudithook(_audit)
        _hook_installed = True


def _python_roots():
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(kerasbert.__file__), os.path.dirname(os.__file__)}  # fmt: skip
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    return [os.path.realpath(r) for r in roots]


def _inside(path, root):
    return os.path.commonpath([path, root]) == root


# -- byte-level mutations ---------------------------------------------------------------
def pick(rng, options):
    """One of ``options`` (any objects; ``rng.choice`` would make an array of them)."""
    return options[int(rng.integers(len(options)))]


def _position(rng, size, hot):
    """A byte offset in [0, size): half the time among ``hot`` (metadata) offsets."""
    if hot is not None and len(hot) and rng.random() < 0.5:
        return int(hot[rng.integers(len(hot))])
    return int(rng.integers(size))


def mutate_bytes(rng, data, hot=None):
    """``(mutated bytes, description)``: one generic damage to ``data``."""
    data = bytearray(data)
    size = len(data)
    kind = str(pick(rng, ["flip", "random", "0xff", "0x00", "truncate", "duplicate",
                           "insert", "delete"]))  # fmt: skip
    where = _position(rng, size, hot)
    length = int(min(2 ** rng.uniform(0, 11), size - where))  # 1 .. 2048 bytes
    if kind == "flip":
        value = int(rng.integers(1, 256))
        data[where] ^= value
        return bytes(data), f"flip byte {where} ^ {value:#04x}"
    if kind in ("random", "0xff", "0x00"):
        fill = {"0xff": b"\xff" * length, "0x00": b"\x00" * length}.get(
            kind, rng.bytes(length)
        )
        data[where : where + length] = fill
        return bytes(data), f"overwrite {length} bytes at {where} with {kind}"
    if kind == "truncate":
        return bytes(data[:where]), f"truncate at {where} of {size}"
    if kind == "duplicate":
        at = _position(rng, size + 1, hot)
        data[at:at] = data[where : where + length]
        return bytes(data), f"duplicate {length} bytes from {where} at {at}"
    if kind == "insert":
        data[where:where] = rng.bytes(length)
        return bytes(data), f"insert {length} random bytes at {where}"
    del data[where : where + length]
    return bytes(data), f"delete {length} bytes at {where}"


# -- formats ----------------------------------------------------------------------------
@dataclass
class Mutation:
    description: str
    relabelled: bool = False  # a tensor the model takes got another dtype: must not load


@dataclass
class Format:
    name: str
    files: dict  # file name -> clean bytes
    load_file: str  # the file passed instead of the folder (half of the cases)
    strict: bool  # loads must equal the clean file's weights
    hot: dict  # file name -> offsets of metadata bytes (aimed at by half the mutations)
    mutate: object  # (rng, folder, fmt) -> Mutation; files are already written
    mapped: set = field(default_factory=set)  # stored names the model takes
    clean: list = field(default_factory=list)  # weights after loading the clean files
    outputs: list = field(default_factory=list)  # outputs after loading the clean files
    decoy: object = None  # a folder outside every case's folder (:func:`_write_decoys`)


def _byte_mutation(rng, folder, fmt, weights=None):
    names = sorted(fmt.files)
    name = names[rng.choice(len(names), p=weights)] if weights else str(pick(rng, names))
    data, what = mutate_bytes(rng, fmt.files[name], fmt.hot.get(name))
    (folder / name).write_bytes(data)
    return Mutation(f"{name}: {what}")


# safetensors ---------------------------------------------------------------------------
_ST_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip


def _st_split(data):
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def _st_join(header, body, text=None):
    text = json.dumps(header, separators=(",", ":")).encode() if text is None else text
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def _safetensors_mutation(rng, folder, fmt, file="model.safetensors"):
    header, body = _st_split(fmt.files[file])
    tensors = sorted(k for k in header if k != "__metadata__")
    name = str(pick(rng, tensors))
    info = header[name]
    kind = str(pick(rng, ["dtype", "shape", "offsets", "swap_offsets", "rename", "delete",
                           "metadata", "length", "text", "nonfinite", "checksum"]))  # fmt: skip
    relabelled = False
    if kind == "dtype":
        code = str(pick(rng, [c for c in _ST_SIZES if c != info["dtype"]] + ["C64", "", "f32"]))
        shape = list(info["shape"])
        old, new = _ST_SIZES[info["dtype"]], _ST_SIZES.get(code, 4)
        if shape and (shape[-1] * old) % new == 0:
            shape[-1] = shape[-1] * old // new  # the same bytes under the new type
        info["dtype"], info["shape"] = code, shape
        relabelled = name in fmt.mapped
        what = f"dtype of {name!r} -> {code!r}, shape {shape}"
    elif kind == "shape":
        shape = list(info["shape"])
        choice = int(rng.integers(5))
        if choice == 0 and len(shape) > 1:
            shape = shape[::-1]
        elif choice == 1:
            shape = shape + [1]
        elif choice == 2:
            shape = shape[1:]
        elif choice == 3 and shape:
            shape[int(rng.integers(len(shape)))] = int(pick(rng, [0, -1, 2**40, 2**64 + 1]))
        else:
            shape = pick(rng, [None, "32", [1.5], [[2]], {}])  # not a list of ints
        info["shape"] = shape
        what = f"shape of {name!r} -> {shape!r}"
    elif kind == "offsets":
        begin, end = info["data_offsets"]
        value = pick(rng, [[begin + 4, end + 4], [begin, end - 4], [end, begin], "0", None,
                           [begin, len(body) + 4], [-4, end], [begin, 2**70]])  # fmt: skip
        info["data_offsets"] = value
        what = f"data_offsets of {name!r} -> {info['data_offsets']!r}"
    elif kind == "swap_offsets":
        size = info["data_offsets"][1] - info["data_offsets"][0]
        same = [t for t in tensors if t != name and header[t]["data_offsets"][1]
                - header[t]["data_offsets"][0] == size]  # fmt: skip
        other = str(pick(rng, same)) if same else str(pick(rng, tensors))
        info["data_offsets"], header[other]["data_offsets"] = (
            header[other]["data_offsets"], info["data_offsets"])  # fmt: skip
        what = f"swap data_offsets of {name!r} and {other!r}"
    elif kind == "rename":
        new = str(pick(rng, [name + "x", name.replace("bert.", "albert."), "", "\u00e9" * 3,
                              str(pick(rng, tensors)), name.replace(".", "/")]))  # fmt: skip
        header[new] = header.pop(name)
        what = f"rename {name!r} -> {new!r}"
    elif kind == "delete":
        del header[name]
        what = f"delete {name!r}"
    elif kind == "metadata":
        value = pick(rng, [{"format": "tf"}, {"a": 1}, {"a": None}, [], "x", {"": ""}])
        header["__metadata__"] = value
        what = f"__metadata__ -> {value!r}"
    elif kind == "checksum":  # kerasbert's checksums (or, in HF's files, made-up ones)
        meta = header.get("__metadata__") or {}
        sums = json.loads(meta.get(METADATA_KEY, "{}"))
        choice = int(rng.integers(5))
        if choice == 0:
            sums[name] = (sums.get(name, 0) + 1) % 2**32
        elif choice == 1:
            sums.pop(name, None)
        elif choice == 2:
            sums[name] = pick(rng, ["x", -1, 2**32, 1.5, None, [1]])
        elif choice == 3:
            sums["bert.no.such.tensor"] = 1
        meta[METADATA_KEY] = pick(rng, ["{", "[]", "", "null", "1"]) if choice == 4 else (
            json.dumps(sums))  # fmt: skip
        header["__metadata__"] = meta
        what = f"checksums edit {choice} at {name!r}"
    elif kind == "length":
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        length = int(pick(rng, [0, 1, len(text) - 1, len(text) + 8, 2**63, 2**64 - 1]))
        data = struct.pack("<Q", length) + text + body
        (folder / file).write_bytes(data)
        return Mutation(f"{file}: header length -> {length}")
    elif kind == "text":
        text = json.dumps(header, separators=(",", ":")).encode()
        choice = int(rng.integers(5))
        if choice == 0:  # duplicate key, later value wins in JSON parsers that allow it
            text = text[:-1] + b',"' + name.encode() + b'":' + json.dumps(info).encode() + b"}"
        elif choice == 1:
            text = b"[" * 2000 + b"]" * 2000
        elif choice == 2:
            text = text.replace(b'"F32"', b'"F32\xff"', 1)
        elif choice == 3:
            text = text.replace(b"[", b"[NaN,", 1)
        else:
            text = text + b"\x00garbage"
        (folder / file).write_bytes(_st_join(None, body, text))
        return Mutation(f"{file}: header text edit {choice}")
    else:  # NaN / inf in a tensor's bytes
        begin, end = info["data_offsets"]
        body = bytearray(body)
        value = np.array([pick(rng, [np.nan, np.inf, -np.inf])], "<f4").tobytes()
        at = begin + 4 * int(rng.integers(max(1, (end - begin) // 4)))
        body[at : at + 4] = value
        (folder / file).write_bytes(_st_join(header, bytes(body)))
        return Mutation(f"{file}: non-finite value in {name!r} at byte {at}")
    (folder / file).write_bytes(_st_join(header, body))
    return Mutation(f"{file}: {what}", relabelled)


def _safetensors(rng, folder, fmt):
    if rng.random() < 0.6:
        return _byte_mutation(rng, folder, fmt)
    return _safetensors_mutation(rng, folder, fmt)


# TF bundle -----------------------------------------------------------------------------
_TF_FIXED32 = {6}  # BundleEntryProto.crc32c


def _encode(fields, fixed32=()):
    out = b""
    for number, values in sorted(fields.items()):
        for value in values:
            if isinstance(value, bytes):
                out += pb.field(number, pb.BYTES, value)
            elif number in fixed32:
                out += pb.field(number, pb.FIXED32, value & 0xFFFFFFFF)
            else:
                out += pb.field(number, pb.VARINT, value & (2**64 - 1))
    return out


def _tf_mutation(rng, folder, fmt):
    entries = read_table(fmt.files["bert_model.ckpt.index"])
    index = int(rng.integers(1, len(entries)))
    key, value = entries[index]
    name = key.decode()
    fields = pb.parse_message(value)
    kind = str(pick(rng, ["dtype", "shape", "offset", "size", "crc", "no_crc", "shard", "rename",
                           "delete", "sliced", "header", "state", "nonfinite"]))  # fmt: skip
    relabelled = False
    if kind == "dtype":  # int32 and uint32 keep float32's size: the CRC still matches
        code = int(pick(rng, [3, 22, 3, 22, 0, 2, 4, 5, 6, 7, 9, 10, 14, 17, 19, 23, 1000]))
        fields[1] = [code]
        relabelled = name in fmt.mapped
        what = f"dtype code of {name!r} -> {code}"
    elif kind == "shape":
        dims = [pb.parse_message(d).get(1, [0])[0] for d in
                pb.parse_message(fields[2][0]).get(2, [])] if 2 in fields else []  # fmt: skip
        choice = int(rng.integers(4))
        if choice == 0:
            dims = dims[::-1]
        elif choice == 1:
            dims = dims + [1]
        elif choice == 2:
            dims = dims[1:]
        else:
            dims = [int(pick(rng, [0, 2**63 - 1, 2**64 - 1, 7]))] + dims[1:]
        shape = b"".join(pb.field(2, pb.BYTES, _encode({1: [d]})) for d in dims)
        fields[2] = [shape]
        what = f"shape of {name!r} -> {dims}"
    elif kind in ("offset", "size"):
        number = 4 if kind == "offset" else 5
        old = fields.get(number, [0])[-1]
        new = int(pick(rng, [old + 4, max(old - 4, 0), 0, 2**62, 2**64 - 4]))
        fields[number] = [new]
        what = f"{kind} of {name!r}: {old} -> {new}"
    elif kind == "crc":
        fields[6] = [int(rng.integers(2**32))]
        what = f"crc of {name!r} -> {fields[6][0]:#x}"
    elif kind == "no_crc":
        fields.pop(6, None)
        what = f"crc of {name!r} removed"
    elif kind == "shard":
        fields[3] = [int(pick(rng, [1, 5, 2**40]))]
        what = f"shard of {name!r} -> {fields[3][0]}"
    elif kind == "rename":
        other = entries[int(rng.integers(1, len(entries)))][0].decode()
        new = str(pick(rng, [name + "x", name.replace("bert/", "albert/"), name[:-1], other]))
        entries[index] = (new.encode(), value)
        entries[1:] = sorted(entries[1:])
        (folder / "bert_model.ckpt.index").write_bytes(write_table(entries))
        return Mutation(f"index: rename {name!r} -> {new!r}")
    elif kind == "delete":
        del entries[index]
        (folder / "bert_model.ckpt.index").write_bytes(write_table(entries))
        return Mutation(f"index: delete {name!r}")
    elif kind == "sliced":
        fields[7] = [b""]
        what = f"{name!r} marked as sliced"
    elif kind == "header":
        header = pb.parse_message(entries[0][1])
        choice = int(rng.integers(3))
        if choice == 0:
            header[1] = [int(pick(rng, [0, 2, 2**20, 2**63]))]
        elif choice == 1:
            header[3] = [b"\x08\x07"]  # another producer version
        else:
            header[2] = [int(pick(rng, [2, 7, 2**40]))]  # not an endianness
        entries[0] = (b"", _encode(header))
        (folder / "bert_model.ckpt.index").write_bytes(write_table(entries))
        return Mutation(f"index: header -> {header}")
    elif kind == "nonfinite":  # NaN / inf in a float32 tensor, with its CRC updated
        name = str(pick(rng, sorted(fmt.mapped)))  # all float32
        fields = pb.parse_message(dict(entries)[name.encode()])
        data_file = "bert_model.ckpt.data-00000-of-00001"
        data = bytearray(fmt.files[data_file])
        offset, size = fields.get(4, [0])[-1], fields[5][-1]
        at = offset + 4 * int(rng.integers(size // 4))
        data[at : at + 4] = np.array([pick(rng, [np.nan, np.inf, -np.inf])], "<f4").tobytes()
        fields[6] = [mask(crc32c(bytes(data[offset : offset + size])))]
        (folder / data_file).write_bytes(bytes(data))
        index = [k for k, _ in entries].index(name.encode())
        entries[index] = (name.encode(), _encode(fields, _TF_FIXED32))
        (folder / "bert_model.ckpt.index").write_bytes(write_table(entries))
        return Mutation(f"non-finite value in {name!r} at byte {at}, CRC updated")
    else:  # the state file names another checkpoint
        target = str(pick(rng, ["../decoy/bert_model.ckpt", str(fmt.decoy / "bert_model.ckpt"),
                                 "/etc/passwd", "", "sub/../bert_model.ckpt", "..", "nope",
                                 "C:\\ckpt\\bert_model.ckpt", "bert_model.ckpt\x00x"]))  # fmt: skip
        text = f'model_checkpoint_path: "{target}"\n'.encode("utf-8", "surrogateescape")
        (folder / "checkpoint").write_bytes(text)
        return Mutation(f"checkpoint state file names {target!r}")
    entries[index] = (key, _encode(fields, _TF_FIXED32))
    (folder / "bert_model.ckpt.index").write_bytes(write_table(entries))
    return Mutation(f"index: {what}", relabelled)


def _tf_bundle(rng, folder, fmt):
    if rng.random() < 0.5:  # index, data, state file
        return _byte_mutation(rng, folder, fmt, weights=[0.45, 0.45, 0.1])
    return _tf_mutation(rng, folder, fmt)


# HDF5 ----------------------------------------------------------------------------------
def _h5_metadata_offsets(data):
    """Offsets of the bytes of an HDF5 file that are not raw data of a dataset."""
    import io

    is_data = np.zeros(len(data), bool)
    with h5py.File(io.BytesIO(data), "r") as f:

        def visit(_, obj):
            offset = obj.id.get_offset() if isinstance(obj, h5py.Dataset) else None
            if offset is not None:
                is_data[offset : offset + obj.id.get_storage_size()] = True

        f.visititems(visit)
    return np.flatnonzero(~is_data)


def _recreate(f, name, data, **kwargs):
    dataset = f[name]
    attrs = dict(dataset.attrs)
    del f[name]
    new = f.create_dataset(name, data=data, **kwargs)
    for key, value in attrs.items():
        new.attrs[key] = value


def _h5_mutation(rng, folder, fmt):
    file = fmt.load_file
    path = folder / file
    with h5py.File(path, "r+") as f:
        datasets = []
        f.visititems(lambda n, o: datasets.append(n) if isinstance(o, h5py.Dataset) else None)
        name = str(pick(rng, sorted(datasets)))
        data = f[name][()]
        kind = str(pick(rng, ["relabel", "nonfinite", "reshape", "swap", "delete", "extra",
                               "soft_link", "external_link", "external_storage", "attrs",
                               "storage", "float64", "checksum"]))  # fmt: skip
        relabelled = False
        if kind == "relabel":
            new, factor = [("int32", 1), ("uint32", 1), ("float16", 2), ("int8", 4),
                           ("bool", 4), ("uint64", 0.5)][int(rng.integers(6))]  # fmt: skip
            raw = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
            shape = list(data.shape) or [1]
            if shape[-1] * factor == int(shape[-1] * factor):
                shape[-1] = int(shape[-1] * factor)
                _recreate(f, name, raw.view(new).reshape(shape))
                relabelled = name in fmt.mapped
                what = f"relabel {name!r} as {new} {shape}"
            else:
                what = f"no relabel of {name!r} as {new} (odd last dimension)"
        elif kind == "nonfinite":
            flat = data.reshape(-1).copy()
            flat[int(rng.integers(flat.size))] = pick(rng, [np.nan, np.inf, -np.inf])
            f[name][...] = flat.reshape(data.shape)
            what = f"non-finite value in {name!r}"
        elif kind == "reshape":
            shape = data.shape[::-1] if data.ndim > 1 else (1,) + data.shape
            _recreate(f, name, data.reshape(shape))
            what = f"reshape {name!r} to {shape}"
        elif kind == "swap":
            same = [n for n in datasets if n != name and f[n].shape == data.shape]
            other = str(pick(rng, same)) if same else name
            f.move(name, name + ".tmp")
            f.move(other, name)
            f.move(name + ".tmp", other)
            what = f"swap {name!r} and {other!r}"
        elif kind == "delete":
            del f[name]
            what = f"delete {name!r}"
        elif kind == "extra":
            f.create_dataset(name.rsplit("/", 1)[0] + "/extra:0", data=data)
            what = f"extra dataset beside {name!r}"
        elif kind == "soft_link":
            f.move(name, name + ".real")
            f[name] = h5py.SoftLink("/" + name + ".real")
            what = f"{name!r} made a soft link"
        elif kind == "external_link":
            del f[name]
            f[name] = h5py.ExternalLink(str(fmt.decoy / file), "/" + name)
            what = f"{name!r} made an external link to the decoy"
        elif kind == "external_storage":
            _recreate(f, name, None, shape=data.shape, dtype=data.dtype,
                      external=[(str(fmt.decoy / "raw.bin"), 0, data.nbytes)])  # fmt: skip
            what = f"{name!r} stored in an external file"
        elif kind == "attrs":
            group = f[name].parent
            choice = int(rng.integers(3))
            if choice == 0 and "layer_names" in f.attrs:
                del f.attrs["layer_names"]
            elif choice == 1:
                f.attrs["layer_names"] = np.array([b"\xff\xfe", b""])
            else:
                group.attrs["name"] = np.int64(7)
            what = f"attribute edit {choice} near {name!r}"
        elif kind == "storage":  # same values, chunked and compressed: loads the same
            _recreate(f, name, data, chunks=True, compression="gzip", shuffle=True,
                      fletcher32=True)  # fmt: skip
            what = f"{name!r} re-stored chunked + gzip"
        elif kind == "float64":  # same values (a kerasbert checksum no longer matches)
            _recreate(f, name, data.astype("float64"))
            what = f"{name!r} re-stored as float64"
        else:  # kerasbert's checksum attribute (or, in other files, a made-up one)
            attrs = f[name].attrs
            value = pick(rng, [None, "x", -1, 1.5, 2**32, np.array([1, 2]),
                               int(attrs.get(H5_ATTRIBUTE, 0)) ^ 1])  # fmt: skip
            if value is None:
                attrs.pop(H5_ATTRIBUTE, None)
            else:
                attrs[H5_ATTRIBUTE] = value
            what = f"checksum attribute of {name!r} -> {value!r}"
    return Mutation(f"{file}: {what}", relabelled)


def _h5(rng, folder, fmt):
    if rng.random() < 0.5:
        return _byte_mutation(rng, folder, fmt)
    return _h5_mutation(rng, folder, fmt)


# shard index ---------------------------------------------------------------------------
INDEX = "model.safetensors.index.json"


def _index_mutation(rng, folder, fmt):
    index = json.loads(fmt.files[INDEX])
    weight_map = index["weight_map"]
    name = str(pick(rng, sorted(weight_map)))
    kind = int(rng.integers(8))
    if kind <= 2:
        shard = weight_map[name]
        other = shard.replace("00001-of", "0000X-of").replace("00002-of", "00001-of")
        other = other.replace("0000X-of", "00002-of")  # the shard that lacks the tensor
        value = pick(rng, ["../decoy/model.safetensors", str(fmt.decoy / "model.safetensors"),
                           "/etc/passwd", "", ".", "..", "sub/../" + shard, shard + "\x00",
                           "x" * 5000, INDEX, "~/x", "file:///x", other])  # fmt: skip
        value = value if rng.random() < 0.9 else [5, None, [], {}][int(rng.integers(4))]
        weight_map[name] = value
        what = f"shard of {name!r} -> {value!r}"
    elif kind == 3:
        del weight_map[name]
        what = f"{name!r} removed"
    elif kind == 4:
        new = str(pick(rng, [name + "x", "bert.encoder.layer.9.output.dense.weight", ""]))
        weight_map[new] = weight_map.pop(name)
        what = f"{name!r} renamed {new!r}"
    elif kind == 5:
        index["weight_map"] = pick(rng, [[], {}, None, "x", 3, [[name, weight_map[name]]]])
        what = f"weight_map -> {index['weight_map']!r}"
    elif kind == 6:
        index = pick(rng, [[], None, 3, "x", {"metadata": {}}])
        what = f"index -> {index!r}"
    else:
        index["metadata"] = {"total_size": pick(rng, [-1, "x", None, 2**70])}
        what = f"metadata -> {index['metadata']!r}"
    (folder / INDEX).write_text(json.dumps(index), encoding="utf-8")
    return Mutation(f"{INDEX}: {what}")


def _shard_index(rng, folder, fmt):
    if rng.random() < 0.4:
        return _byte_mutation(rng, folder, fmt, weights=[0.0, 0.0, 1.0])  # the index only
    return _index_mutation(rng, folder, fmt)


# -- the fixture ------------------------------------------------------------------------
@dataclass
class Harness:
    builder: object
    config: dict
    root: object
    formats: dict
    roots: list  # Python's and kerasbert's folders, which a case may open files in


def _weights(model):
    return [np.asarray(v.numpy()) for v in model.weights]


def _outputs(model):
    return [np.asarray(o) for o in model.predict_on_batch([TOKENS, SEGMENTS])]


def _read_folder(folder, names):
    return {n: (folder / n).read_bytes() for n in names}


def _write_shards(folder):
    tensors = load_file(SOURCE / "model.safetensors")
    names = sorted(tensors)
    halves = names[: len(names) // 2], names[len(names) // 2 :]
    weight_map = {}
    for i, part in enumerate(halves, 1):
        shard = f"model-0000{i}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, folder / shard)
        weight_map.update(dict.fromkeys(part, shard))
    total = sum(t.nbytes for t in tensors.values())
    (folder / INDEX).write_text(json.dumps({"metadata": {"total_size": total},
                                            "weight_map": weight_map}))  # fmt: skip


def _write_decoys(fmt, source):
    """Files a mutation may name outside the case's folder, in ``fmt.decoy``: the format's
    files with every value MARKER (a load that reads them shows it), and raw MARKER bytes
    for HDF5 external storage. HDF5 and safetensors open files in C / Rust, unseen by the
    audit hook: the marker values are how a read of these would show."""
    fmt.decoy.mkdir(parents=True)
    (fmt.decoy / "raw.bin").write_bytes(np.full(1 << 16, MARKER, "<f4").tobytes())
    for file, data in fmt.files.items():
        target = fmt.decoy / file
        if file.endswith(".safetensors"):
            save_file({n: np.full_like(a, MARKER) for n, a in load(data).items()}, target)
        elif file.endswith(".h5"):
            target.write_bytes(data)
            with h5py.File(target, "r+") as f:
                f.visititems(lambda _, o: o.__setitem__(Ellipsis, MARKER)
                             if isinstance(o, h5py.Dataset) else None)  # fmt: skip
        elif file.endswith(".ckpt.index"):
            manifest = json.loads((source / "manifest.json").read_text())
            arrays = {n: np.full(shape, MARKER, dtype)
                      for n, (dtype, shape) in manifest["variables"].items()}  # fmt: skip
            write_tf_checkpoint(fmt.decoy / file[: -len(".index")], arrays)
        elif not (target.exists() or file == "checkpoint" or ".data-" in file):
            target.write_bytes(data)
    if fmt.name == "shard_index":  # a whole model, for a shard name leading out of the folder
        tensors = load_file(SOURCE / "model.safetensors")
        save_file({n: np.full_like(a, MARKER) for n, a in tensors.items()},
                  fmt.decoy / "model.safetensors")  # fmt: skip


def make_harness(root):
    """Build the model and every format's clean files (and decoys) under ``root``."""
    builder = build_transformer_model(SOURCE, SOURCE, return_keras_model=False, **HEADS)
    keras_folder = root / "keras_source"
    keras_folder.mkdir()
    builder.model.save_weights(keras_folder / "model.weights.h5")
    shard_folder = root / "shard_source"
    shard_folder.mkdir()
    _write_shards(shard_folder)

    # kerasbert's own files, with its checksums
    convert(SOURCE, root / "crc_safetensors", to="safetensors")
    convert(SOURCE, root / "crc_keras", to="keras")

    tf_files = ["bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index", "checkpoint"]
    shard_files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", INDEX]
    specs = [
        ("tf_bundle", FIXTURES / "tf_bert_tiny", tf_files, "bert_model.ckpt.index", True,
         _tf_bundle),
        ("safetensors", SOURCE, ["model.safetensors"], "model.safetensors", False,
         _safetensors),
        ("hf_tf_h5", FIXTURES / "hf_tf_bert_tiny", ["tf_model.h5"], "tf_model.h5", False, _h5),
        ("keras_h5", keras_folder, ["model.weights.h5"], "model.weights.h5", False, _h5),
        ("shard_index", shard_folder, shard_files, INDEX, True, _shard_index),
        ("safetensors_crc", root / "crc_safetensors", ["model.safetensors"],
         "model.safetensors", True, _safetensors),
        ("keras_h5_crc", root / "crc_keras", ["model.weights.h5"], "model.weights.h5", True, _h5),
    ]  # fmt: skip
    formats = {}
    for name, folder, files, load_file_, strict, mutate in specs:
        fmt = Format(name, _read_folder(folder, files), load_file_, strict, {}, mutate)
        fmt.decoy = root / name / "decoy"
        _write_decoys(fmt, folder)
        for file, data in fmt.files.items():
            if file.endswith(".h5"):
                fmt.hot[file] = _h5_metadata_offsets(data)
            elif file.endswith(".safetensors"):
                fmt.hot[file] = np.arange(8 + struct.unpack("<Q", data[:8])[0])
        with open_checkpoint(folder / load_file_) as checkpoint:
            report = builder.load_weights_from_checkpoint(checkpoint)
            if checkpoint.names_are_canonical:
                fmt.mapped = {checkpoint.entry(n).source_name for _, n in report.loaded}
            else:
                fmt.mapped = set(checkpoint.names())
        fmt.clean, fmt.outputs = _weights(builder.model), _outputs(builder.model)
        formats[name] = fmt
    _install_hook()
    config = load_config(SOURCE)
    return Harness(builder, config, root, formats, _python_roots())


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    return make_harness(tmp_path_factory.mktemp("fuzz"))


# -- running a case ---------------------------------------------------------------------
def _load(harness, path):
    """What ``build_transformer_model(config, path)`` does with a checkpoint, on the
    built model: ``"loaded"``, or ``"model <name>"`` when another model would be built."""
    with open_checkpoint(path) as checkpoint:
        model = resolve_model(None if checkpoint.names_are_canonical else "bert",
                              harness.config, checkpoint)  # fmt: skip
        if model != "bert":
            return f"model {model}"
        harness.builder.load_weights_from_checkpoint(checkpoint)
    return "loaded"


def _on_alarm(signum, frame):
    raise CaseTimeout(f"case ran past {CASE_SECONDS} s")


def _case(harness, fmt, number, watchdog_fd):
    """Run one case; return ``(outcome, problem or None)``."""
    global _opened
    rng = np.random.default_rng((SEED, list(CASES).index(fmt.name), number))
    folder = harness.root / fmt.name / f"case{number}"
    folder.mkdir()
    for file, data in fmt.files.items():
        (folder / file).write_bytes(data)
    mutation = fmt.mutate(rng, folder, fmt)
    path = folder if rng.random() < 0.5 else folder / fmt.load_file
    model = harness.builder.model
    before = fmt.clean
    where = f"{fmt.name} case {number} (seed {(SEED, list(CASES).index(fmt.name), number)})"
    where += f": {mutation.description}; loading {os.path.relpath(path, harness.root)}"
    problem = None
    _opened = []
    # A hang in C code never returns to the interpreter (no signal handler runs there);
    # the watchdog then ends the process, and its traceback names this case: the function
    # running it is named after it.
    runner = types.FunctionType(
        _load.__code__.replace(co_name=f"fuzz_{fmt.name}_case_{number}"), _load.__globals__
    )
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=watchdog_fd)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        outcome = runner(harness, path)
    except KerasBertError as e:
        outcome = type(e).__name__
    except CaseTimeout:
        outcome, problem = "hang", f"{where}: ran past {CASE_SECONDS} s\n{traceback.format_exc()}"
    except Exception as e:
        outcome = f"foreign {type(e).__name__}"
        problem = f"{where}: raised {type(e).__name__}\n{traceback.format_exc()}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        opened, _opened = _opened, None
    inside = os.path.realpath(folder)
    outside = sorted({p for p in map(os.path.realpath, opened) if not _inside(p, inside)
                      and not any(_inside(p, r) for r in harness.roots)})  # fmt: skip
    if outside and problem is None:
        problem = f"{where}: opened files outside the case folder: {outside}"
    after = _weights(model)
    changed = not all(np.array_equal(a, b) for a, b in zip(after, before))
    if problem is None and outcome == "loaded":
        if any(np.all(a == MARKER) for a in after):
            problem = f"{where}: loaded values of a decoy outside the case folder"
        elif not all(np.isfinite(a).all() for a in after):
            problem = f"{where}: loaded non-finite weights"
        elif mutation.relabelled:
            problem = f"{where}: loaded although a tensor the model takes was relabelled"
        elif fmt.strict and changed:
            problem = f"{where}: loaded weights that differ from the clean file's"
        elif fmt.strict and not changed and not all(
            np.array_equal(a, b) for a, b in zip(_outputs(model), fmt.outputs)
        ):
            problem = f"{where}: outputs differ from the clean file's"
    elif problem is None and changed and not fmt.name.startswith("keras_h5"):
        problem = f"{where}: refused ({outcome}) but changed the model (not all or nothing)"
    if changed:
        model.set_weights(fmt.clean)
    shutil.rmtree(folder)
    return outcome, problem


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM (POSIX)")
@pytest.mark.parametrize("name", list(CASES))
def test_mutated_checkpoints_load_or_raise_kerasbert_errors(harness, name, capsys):
    fmt = harness.formats[name]
    with capsys.disabled():  # the watchdog writes where pytest's capture does not swallow it
        watchdog_fd = os.dup(sys.stderr.fileno())
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    harness.builder.model.set_weights(fmt.clean)
    outcomes, problems = Counter(), []
    try:
        for number in range(CASES[name]):
            outcome, problem = _case(harness, fmt, number, watchdog_fd)
            outcomes[outcome] += 1
            if problem:
                problems.append(problem)
    finally:
        signal.signal(signal.SIGALRM, previous)
        os.close(watchdog_fd)
    assert not problems, f"{len(problems)} of {CASES[name]} cases failed:\n\n" + "\n\n".join(
        problems[:5]
    )
    # The mutations reach both sides: some files still load, most are refused.
    assert outcomes["loaded"] > 0 and sum(outcomes.values()) - outcomes["loaded"] > 0, outcomes


def replay(name, number):
    """Run one case outside pytest: ``(outcome, problem)``. From ``tests/``:
    ``python -c "import test_checkpoint_fuzz as t; print(t.replay('safetensors', 17))"``."""
    import pathlib
    import tempfile

    harness = make_harness(pathlib.Path(tempfile.mkdtemp(prefix="fuzz")))
    signal.signal(signal.SIGALRM, _on_alarm)
    return _case(harness, harness.formats[name], number, sys.stderr.fileno())


# -- regressions the fuzzer found -------------------------------------------------------
@pytest.mark.parametrize("name", ["bert/embeddings/word_embeddings", "cls/predictions/output_bias"])
def test_a_scalar_where_a_vocabulary_variable_belongs_is_a_shape_mismatch(harness, name):
    """tf_bundle case 265 (an index entry marked as sliced, which reads as shape ()): the
    vocabulary rows (``keep_tokens``) were counted from ``shape[0]``, an IndexError."""
    model = harness.builder.model
    arrays = model_arrays(model)
    arrays[name] = np.float32(0.5)
    with pytest.raises(WeightLoadingError, match=f"shape mismatch: {name!r} is \\(\\)"):
        harness.builder.load_weights_from_checkpoint(ArrayCheckpoint(arrays))


@pytest.mark.parametrize(
    "first_object",
    [bytes(16), b"\x01\x00\x01\x00\x00\x00\x00\x00" + (2**64 - 16).to_bytes(8, "little")],
    ids=["free-space-of-size-0", "size-wrapping-around"],
)
def test_an_hdf5_global_heap_on_which_hdf5_would_loop_forever_is_refused(
    tmp_path, capsys, first_object
):
    """keras_h5 case 154 (105 zero bytes over the global heap that holds Keras's layer-name
    strings: a free-space object of size 0) and keras_h5_crc case 1476 of seed 4242 (105
    0xFF bytes: sizes whose 16 + aligned size wraps around to 0 in size_t): HDF5 2.0 looped
    forever reading the first name, in C."""
    path = tmp_path / "model.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_group("layers/dense/vars").attrs["name"] = "Dense"  # a variable-length string
        f["layers/dense/vars/0"] = np.zeros(3, "float32")
    data = bytearray(path.read_bytes())
    heap = data.find(b"GCOL")
    data[heap + 16 : heap + 32] = first_object  # index, references, reserved, size
    path.write_bytes(bytes(data))
    with capsys.disabled():
        watchdog_fd = os.dup(sys.stderr.fileno())
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=watchdog_fd)
    try:  # a regression would hang in C: the watchdog ends the run instead of blocking it
        with pytest.raises(CheckpointError, match="global heap at byte .*loops forever"):
            open_checkpoint(path)
    finally:
        faulthandler.cancel_dump_traceback_later()
        os.close(watchdog_fd)


def test_an_unreadable_layer_name_of_a_keras_container_is_a_checkpoint_error(tmp_path):
    """keras_h5_crc case 602 of seed 777 (4 zero bytes in the global heap): the name of a
    container layer (one whose ``vars`` group holds no dataset, read only when pairing
    datasets with variables) raised h5py's OSError out of ``load_into``."""
    import keras

    path = tmp_path / "model.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_group("layers/outer/vars").attrs["name"] = "outer"
        f.create_group("layers/outer/inner/vars").attrs["name"] = "inner"
        f["layers/outer/inner/vars/0"] = np.zeros((3, 2), "float32")
    data = bytearray(path.read_bytes())
    heap = data.find(b"GCOL")
    assert data[heap + 16 : heap + 18] == b"\x01\x00" and data[heap + 32 : heap + 37] == b"outer"
    data[heap + 24] = 4  # the heap object holding "outer" says it is 4 bytes
    path.write_bytes(bytes(data))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    with open_checkpoint(path) as checkpoint, pytest.raises(
        CheckpointError, match="unreadable layer names.*global heap object size"
    ):
        checkpoint.load_into(model)
