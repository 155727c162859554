"""The pure-Python TensorFlow checkpoint reader and writer (no TensorFlow needed).

Files written by real TensorFlow are tested in test_tf_checkpoints.py; here the reader and
writer are checked against each other, against the format's building blocks, and under
corruption.
"""

import os
import pathlib
import shutil

import ml_dtypes
import numpy as np
import pytest
from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerasbert.checkpoints import TFCheckpoint, open_checkpoint, write_tf_checkpoint
from kerasbert.checkpoints.crc32c import _update_python, crc32c
from kerasbert.checkpoints.sstable import read_table, write_table
from kerasbert.checkpoints.tf_bundle import resolve_prefix
from kerasbert.errors import CheckpointError, KerasBertError

rng = np.random.default_rng(3)

ARRAYS = {
    "bert/embeddings/word_embeddings": rng.normal(size=(50, 8)).astype("float32"),
    "f16": rng.normal(size=(3, 4)).astype("float16"),
    "f64": rng.normal(size=(2,)),
    "i32": rng.integers(-5, 5, size=(7,)).astype("int32"),
    "i64": np.array(123456789012, "int64"),
    "flags": np.array([True, False, True]),
    "empty": np.zeros((0, 3), "float32"),
    "cube": rng.normal(size=(2, 3, 4)).astype("float32"),
    "名字/ünïcode": np.arange(4, dtype="float32"),
}


@pytest.fixture
def written(tmp_path):
    prefix = tmp_path / "model.ckpt"
    write_tf_checkpoint(prefix, ARRAYS)
    return prefix


def test_round_trip_is_bit_exact(written):
    ckpt = TFCheckpoint(written)
    assert ckpt.names() == sorted(ARRAYS)
    for name, array in ARRAYS.items():
        got = ckpt.read(name)
        assert got.dtype == array.dtype and got.shape == array.shape
        np.testing.assert_array_equal(got, array)


def test_bfloat16_is_read_as_float32(tmp_path):
    values = np.array([1.5, -2.0, 3.25], ml_dtypes.bfloat16)
    write_tf_checkpoint(tmp_path / "m.ckpt", {"b": values})
    ckpt = TFCheckpoint(tmp_path / "m.ckpt")
    assert ckpt.stored_dtype("b") == "bfloat16"
    np.testing.assert_array_equal(ckpt.read("b"), values.astype("float32"))


def test_many_entries_span_several_blocks(tmp_path):
    arrays = {
        f"scope_{i:04d}/a_rather_long_variable_name": np.full(2, i, "int32") for i in range(600)
    }
    write_tf_checkpoint(tmp_path / "m.ckpt", arrays)
    assert os.path.getsize(tmp_path / "m.ckpt.index") > 3 * 4096
    ckpt = TFCheckpoint(tmp_path / "m.ckpt")
    assert len(ckpt) == 600
    np.testing.assert_array_equal(ckpt.read("scope_0599/a_rather_long_variable_name"), [599, 599])


def test_path_forms(written, tmp_path):
    index = str(written) + ".index"
    data = str(written) + ".data-00000-of-00001"
    for path in (written, index, data, tmp_path):
        assert resolve_prefix(path) == str(written)
        assert open_checkpoint(path).format == "tensorflow"


def test_state_file_picks_the_checkpoint(tmp_path):
    write_tf_checkpoint(tmp_path / "model.ckpt-100", {"a": np.zeros(1, "float32")})
    write_tf_checkpoint(tmp_path / "model.ckpt-200", {"a": np.ones(1, "float32")})
    # The state file written last names model.ckpt-200.
    np.testing.assert_array_equal(open_checkpoint(tmp_path).read("a"), [1.0])
    os.remove(tmp_path / "checkpoint")
    with pytest.raises(CheckpointError, match="several TensorFlow checkpoints"):
        open_checkpoint(tmp_path)


def test_moved_checkpoint_with_absolute_state_path(tmp_path):
    write_tf_checkpoint(tmp_path / "a" / "bert_model.ckpt", {"x": np.ones(2, "float32")})
    (tmp_path / "a" / "checkpoint").write_text(
        'model_checkpoint_path: "/gone/elsewhere/bert_model.ckpt"\n'
    )
    np.testing.assert_array_equal(open_checkpoint(tmp_path / "a").read("x"), [1.0, 1.0])


def test_missing_shard(written):
    os.remove(str(written) + ".data-00000-of-00001")
    ckpt = TFCheckpoint(written)
    with pytest.raises(CheckpointError, match="shard.*missing"):
        ckpt.read("i32")


def test_data_checksum_mismatch(written):
    data = str(written) + ".data-00000-of-00001"
    raw = bytearray(pathlib.Path(data).read_bytes())
    raw[5] ^= 0xFF  # inside the first tensor (bert/embeddings/word_embeddings)
    pathlib.Path(data).write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="Checksum mismatch.*word_embeddings"):
        TFCheckpoint(written).read("bert/embeddings/word_embeddings")


def test_truncated_data_file(written):
    data = str(written) + ".data-00000-of-00001"
    size = os.path.getsize(data)
    with open(data, "r+b") as f:
        f.truncate(size - 10)
    ckpt = TFCheckpoint(written)
    with pytest.raises(CheckpointError, match="truncated"):
        for name in ckpt.names():
            ckpt.read(name)


def test_crc32c_known_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283
    data = rng.integers(0, 256, size=200_003).astype(np.uint8)
    expected = _update_python(0xFFFFFFFF, data.tobytes()) ^ 0xFFFFFFFF
    assert crc32c(data, use_c=False) == expected
    assert crc32c(data.tobytes()) == expected


def test_sstable_prefix_compression_round_trip():
    entries = [(f"key/{i:05d}".encode(), bytes([i % 256]) * (i % 7)) for i in range(1000)]
    assert read_table(write_table(entries)) == entries


def _read_everything(prefix):
    ckpt = open_checkpoint(prefix)
    return {name: ckpt.read(name) for name in ckpt.names()}


def _same(a, b):
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a
    )


def _corrupt_and_read(source_prefix, tmp_dir, which, position, value, truncate):
    target = os.path.join(tmp_dir, "fuzz")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    folder, base = os.path.split(str(source_prefix))
    for file in os.listdir(folder):
        if file.startswith(base + "."):
            shutil.copy(
                os.path.join(folder, file), os.path.join(target, "model.ckpt" + file[len(base) :])
            )
    path = os.path.join(target, "model.ckpt" + which)
    raw = bytearray(pathlib.Path(path).read_bytes())
    if truncate:
        raw = raw[: position % (len(raw) + 1)]
    elif raw:
        raw[position % len(raw)] ^= value
    pathlib.Path(path).write_bytes(bytes(raw))
    try:
        return _read_everything(os.path.join(target, "model.ckpt"))
    except KerasBertError:
        return None


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    which=st.sampled_from([".index", ".data-00000-of-00001"]),
    position=st.integers(0, 10**6),
    value=st.integers(1, 255),
    truncate=st.booleans(),
)
def test_fuzzed_files_raise_kerasbert_errors_or_read_correctly(
    written, tmp_path, which, position, value, truncate
):
    """A flipped byte or a truncation is reported as a kerasbert error; if it is not (a
    flip in footer padding, say), every array read must still be the original."""
    original = _read_everything(written)
    result = _corrupt_and_read(written, tmp_path, which, position, value, truncate)
    assert result is None or _same(result, original)


TF_WRITTEN = FIXTURES / "tf_dtypes" / "model.ckpt"  # written by TensorFlow, two shards


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    which=st.sampled_from([".index", ".data-00000-of-00002", ".data-00001-of-00002"]),
    position=st.integers(0, 10**6),
    value=st.integers(1, 255),
    truncate=st.booleans(),
)
def test_fuzzed_tensorflow_files(tmp_path, which, position, value, truncate):
    original = _read_everything(TF_WRITTEN)
    result = _corrupt_and_read(TF_WRITTEN, tmp_path, which, position, value, truncate)
    assert result is None or _same(result, original)


def test_unsupported_dtype_is_named(tmp_path):
    """A string tensor (TF DataType 7), hand-built: listed, but reading it says why not."""
    from kerasbert.checkpoints import protobuf as pb

    shape = pb.field(2, pb.BYTES, pb.field(1, pb.VARINT, 2))
    entry = pb.field(1, pb.VARINT, 7) + pb.field(2, pb.BYTES, shape) + pb.field(5, pb.VARINT, 4)
    header = pb.field(1, pb.VARINT, 1)
    (tmp_path / "m.ckpt.index").write_bytes(write_table([(b"", header), (b"vocab/strings", entry)]))
    (tmp_path / "m.ckpt.data-00000-of-00001").write_bytes(b"abcd")
    ckpt = TFCheckpoint(tmp_path / "m.ckpt")
    assert ckpt.dtype("vocab/strings") == "string"
    with pytest.raises(CheckpointError, match="dtype string.*cannot read"):
        ckpt.read("vocab/strings")


def test_index_that_is_not_an_index(tmp_path):
    (tmp_path / "m.ckpt.index").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="bad magic"):
        TFCheckpoint(tmp_path / "m.ckpt")
    (tmp_path / "m.ckpt.index").write_bytes(b"short")
    with pytest.raises(CheckpointError, match="too short"):
        TFCheckpoint(tmp_path / "m.ckpt")
