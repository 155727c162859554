"""kerasbert.download.extract against hostile and broken archives: size and member-count
limits (checked against the declared sizes before writing, and while writing), a file and a
folder of one name, encrypted or oddly compressed zip members, and corrupt or truncated
archives of every kind, all of which must end in a DownloadError and leave nothing behind."""

import io
import os
import pathlib
import random
import struct
import tarfile
import zipfile

import pytest

from kerasbert.download import DownloadError, extract
from kerasbert.download.archives import DEFAULT_MAX_MEMBERS, DEFAULT_MAX_TOTAL_SIZE

FILES = {"model/vocab.txt": b"[PAD]\n[UNK]\n", "model/weights/w.bin": os.urandom(5000)}


def _zip(path, members, method=zipfile.ZIP_DEFLATED):
    """``members``: name -> bytes (a file) or None (a folder entry)."""
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            if data is None:
                zf.writestr(zipfile.ZipInfo(name.rstrip("/") + "/"), b"")
            else:
                zf.writestr(name, data)
    return path


def _tar(path, members, mode="w:gz"):
    """``members``: name -> bytes (a file) or None (a folder)."""
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _tree(folder):
    folder = pathlib.Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


MAKERS = {"zip": _zip, "tar.gz": _tar}


def test_defaults_are_generous():
    assert DEFAULT_MAX_TOTAL_SIZE == 20 * 2**30 and DEFAULT_MAX_MEMBERS == 100_000


@pytest.mark.parametrize("kind", list(MAKERS))
def test_declared_total_size_over_the_limit_is_refused_before_writing(tmp_path, kind):
    members = {"model/a.bin": bytes(600_000), "model/b.bin": bytes(600_000)}
    archive = MAKERS[kind](tmp_path / f"m.{kind}", members)
    assert archive.stat().st_size < 100_000  # zeros compress: small archive, large content
    with pytest.raises(DownloadError, match="max_total_size=1000000") as info:
        extract(archive, tmp_path / "out", max_total_size=1_000_000)
    assert "1200000" in str(info.value) and str(archive) in str(info.value)
    assert _tree(tmp_path / "out") == []
    extract(archive, tmp_path / "ok", max_total_size=1_200_000)  # exactly at the limit
    assert (tmp_path / "ok/model/b.bin").stat().st_size == 600_000


@pytest.mark.parametrize("kind", list(MAKERS))
def test_member_count_over_the_limit_is_refused_before_writing(tmp_path, kind):
    members = {f"model/f{i}.txt": b"x" for i in range(20)}
    archive = MAKERS[kind](tmp_path / f"m.{kind}", members)
    with pytest.raises(DownloadError, match="max_members=10") as info:
        extract(archive, tmp_path / "out", max_members=10)
    assert str(archive) in str(info.value)
    assert _tree(tmp_path / "out") == []
    assert len(extract(archive, tmp_path / "ok", max_members=20)) == 20


def _patch_zip_sizes(path, file_size):
    """Make every member of a one-member zip declare ``file_size`` uncompressed bytes."""
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, file_size)
    struct.pack_into("<I", data, central + 24, file_size)
    path.write_bytes(bytes(data))


def test_zip_member_larger_than_its_header_is_stopped_and_removed(tmp_path):
    """The header says 1,000 bytes; the data inflates to 5 MB. Extraction never writes
    more than the header declared, refuses the archive and removes what it wrote."""
    archive = _zip(tmp_path / "m.zip", {"model/big.bin": bytes(5_000_000)})
    _patch_zip_sizes(archive, 1000)
    with pytest.raises(DownloadError) as info:
        extract(archive, tmp_path / "out")
    assert "model/big.bin" in str(info.value)
    assert _tree(tmp_path / "out") == []


def test_writing_is_checked_against_the_declared_size_and_the_budget():
    """The copy loop itself (what extract uses for zip members) stops at the declared size
    and at the total budget, whatever the decompressor produces."""
    from kerasbert.download.archives import _Budget, _copy

    budget = _Budget("a.zip", max_total_size=10_000)
    with pytest.raises(DownloadError, match="more than the 1000 bytes"):
        _copy(io.BytesIO(bytes(5000)), io.BytesIO(), 1000, "m/x", budget, chunk=512)
    budget = _Budget("a.zip", max_total_size=3000)
    _copy(io.BytesIO(bytes(2000)), io.BytesIO(), 2000, "m/x", budget)
    with pytest.raises(DownloadError, match="max_total_size=3000"):
        _copy(io.BytesIO(bytes(2000)), io.BytesIO(), 2000, "m/y", budget)


CONFLICTS = {
    "file-then-folder": {"model/x": b"file", "model/x/": None},
    "folder-then-file": {"model/x/": None, "model/x": b"file"},
    "file-then-child": {"model/x": b"file", "model/x/y.txt": b"child"},
    "child-then-file": {"model/x/y.txt": b"child", "model/x": b"file"},
}


@pytest.mark.parametrize("kind", list(MAKERS))
@pytest.mark.parametrize("case", list(CONFLICTS))
def test_a_file_and_a_folder_of_one_name_are_refused(tmp_path, kind, case):
    members = CONFLICTS[case]
    archive = MAKERS[kind](tmp_path / f"m.{kind}", members)
    with pytest.raises(DownloadError, match="both a file and a folder") as info:
        extract(archive, tmp_path / "out")
    message = str(info.value)
    for name in members:
        assert repr(name.rstrip("/")) in message or repr(name) in message, message
    assert _tree(tmp_path / "out") == []


def test_duplicate_files_are_fine(tmp_path):
    """Appended tars repeat names; the last copy wins, as with tar itself."""
    archive = tmp_path / "m.tar"
    _tar(archive, {"model/a.txt": b"old"}, "w")
    with tarfile.open(archive, "a") as tf:
        info = tarfile.TarInfo("model/a.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"new"))
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out/model/a.txt").read_bytes() == b"new"


def _patch_zip_header(path, flag=None, method=None):
    data = bytearray(path.read_bytes())
    local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
    if flag is not None:
        for at in (local + 6, central + 8):
            struct.pack_into("<H", data, at, struct.unpack_from("<H", data, at)[0] | flag)
    if method is not None:
        struct.pack_into("<H", data, local + 8, method)
        struct.pack_into("<H", data, central + 10, method)
    path.write_bytes(bytes(data))


def test_encrypted_zip_member_is_refused(tmp_path):
    archive = _zip(tmp_path / "m.zip", {"model/vocab.txt": b"[PAD]\n"})
    _patch_zip_header(archive, flag=0x1)
    with pytest.raises(DownloadError, match="encrypted") as info:
        extract(archive, tmp_path / "out")
    assert "model/vocab.txt" in str(info.value)
    assert _tree(tmp_path / "out") == []


def test_unknown_zip_compression_is_refused(tmp_path):
    archive = _zip(tmp_path / "m.zip", {"model/vocab.txt": b"[PAD]\n"})
    _patch_zip_header(archive, method=99)
    with pytest.raises(DownloadError, match="compression method 99"):
        extract(archive, tmp_path / "out")
    assert _tree(tmp_path / "out") == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_total_size": -1}, "max_total_size"),
        ({"max_members": 0}, "max_members"),
        ({"max_members": 1.5}, "max_members"),
    ],
)
def test_bad_limits(tmp_path, kwargs, match):
    archive = _zip(tmp_path / "m.zip", FILES)
    with pytest.raises(DownloadError, match=match):
        extract(archive, tmp_path / "out", **kwargs)


def test_input_archive_is_not_modified(tmp_path):
    archive = _zip(tmp_path / "m.zip", FILES)
    before = archive.read_bytes()
    extract(archive, tmp_path / "out")
    with pytest.raises(DownloadError):
        extract(archive, tmp_path / "out2", max_members=1)
    assert archive.read_bytes() == before


# ----------------------------------------------------------------- corrupt archives

KINDS = {
    "zip-deflated": lambda p, m: _zip(p, m),
    "zip-stored": lambda p, m: _zip(p, m, zipfile.ZIP_STORED),
    "zip-bzip2": lambda p, m: _zip(p, m, zipfile.ZIP_BZIP2),
    "zip-lzma": lambda p, m: _zip(p, m, zipfile.ZIP_LZMA),
    "tar": lambda p, m: _tar(p, m, "w"),
    "tar.gz": lambda p, m: _tar(p, m, "w:gz"),
    "tar.bz2": lambda p, m: _tar(p, m, "w:bz2"),
    "tar.xz": lambda p, m: _tar(p, m, "w:xz"),
}


def _broken(data, rng, count=80):
    """Truncations at spread-out points, then random bit flips (1 to 4 per copy)."""
    points = {3, 10, 100, 512, 513, len(data) - 1} | {len(data) * k // 12 for k in range(1, 12)}
    yield from (data[:n] for n in sorted(points) if 0 < n < len(data))
    for _ in range(count):
        copy = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            copy[rng.randrange(len(copy))] ^= 1 << rng.randrange(8)
        yield bytes(copy)


@pytest.mark.parametrize("kind", list(KINDS))
def test_corrupt_archives_give_download_errors(tmp_path, kind):
    """Every truncated or bit-flipped copy either extracts (the damage hit no checked
    byte) or raises DownloadError; no other exception, and nothing lands outside its
    target folder."""
    members = {"model/": None, **FILES, "model/config.json": b'{"hidden_size": 32}'}
    good = KINDS[kind](tmp_path / "good", members).read_bytes()
    rng = random.Random(kind)
    outcomes = {"extracted": 0, "refused": 0}
    for i, data in enumerate(_broken(good, rng)):
        case = tmp_path / f"case{i}"
        case.mkdir()
        archive = case / "archive"
        archive.write_bytes(data)
        try:
            extract(archive, case / "out")
            outcomes["extracted"] += 1
        except DownloadError:
            outcomes["refused"] += 1
        assert sorted(p.name for p in case.iterdir()) in (["archive"], ["archive", "out"])
        assert archive.read_bytes() == data
    assert outcomes["refused"] > 0
