"""get_pretrained against interrupted fetches and hostile indexes: staging folders left by
a killed process are cleaned at the next start (only under the model's lock, only this
model's), an index passed as a dict is validated like the packaged one, and nothing an index
or an archive says can move, delete or expose a file outside the model's cache folder."""

import io
import os
import pathlib
import signal
import subprocess
import sys
import tarfile
import threading
import zipfile

import pytest
import yaml
from conftest import FIXTURES, wait_for
from faulty_server import PROXY_VARS, Server, etag_of, serve_file

from kerasbert.download import DownloadError, file_lock
from kerasbert.errors import KerasBertError
from kerasbert.index_schema import WeightsIndexError, validate_entry
from kerasbert.pretrained import get_pretrained

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY_FILES = [
    "bert_config.json",
    "bert_model.ckpt.index",
    "bert_model.ckpt.data-00000-of-00001",
    "vocab.txt",
]
VOCAB = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(116)]) + "\n"


def _tiny_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in TINY_FILES[:3]:
            archive.write(FIXTURES / "tf_bert_tiny" / name, f"tiny_bert/{name}")
        archive.writestr("tiny_bert/vocab.txt", VOCAB)
    return buffer.getvalue()


ZIP = _tiny_zip()


def _entry(url, **changes):
    entry = {
        "family": "bert", "language": "en", "cased": False, "layers": 2, "hidden": 32,
        "heads": 4, "parameters": 21956, "license": "Apache-2.0", "format": "tensorflow",
        "urls": [url], "archive_root": "tiny_bert", "files": list(TINY_FILES),
        "config": "bert_config.json", "checkpoint": "bert_model.ckpt", "vocab": "vocab.txt",
        "sha256": {}, "do_lower_case": True,
    }  # fmt: skip
    entry.update(changes)
    return entry


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KERASBERT_OFFLINE", raising=False)
    monkeypatch.delenv("KERASBERT_INDEX", raising=False)
    monkeypatch.setenv("KERASBERT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def web():
    server = Server()
    yield server
    server.close()


def _write_index(path, entries):
    path.write_text(yaml.safe_dump({"models": entries}))
    return path


def _staging(models):
    return (
        sorted(p.name for p in models.iterdir() if p.name.startswith("."))
        if models.exists()
        else []
    )



# ----------------------------------------------------------------- 5. stale staging


def test_staging_left_by_a_killed_fetch_is_cleaned_at_the_next_start(home, web, tmp_path):
    """A child process fetching a model is SIGKILLed mid-download; its staging folder is
    left behind. The next get_pretrained takes the model's lock, removes it, resumes the
    download and installs the model."""

    def route(h, n):
        if n == 0:
            serve_file(h, ZIP, etag_of(ZIP), piece=4096, delay=0.05)  # ~3 s: killed long before
        else:
            serve_file(h, ZIP, etag_of(ZIP))

    url = web.add("/tiny_bert.zip", route)
    index = _write_index(tmp_path / "index.yaml", {"tiny-bert": _entry(url)})
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env.update(
        KERASBERT_INDEX=str(index),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )
    script = "from kerasbert.pretrained import get_pretrained\nget_pretrained('tiny-bert')"
    models, downloads = home / "models", home / "downloads"

    def receiving():
        parts = downloads.rglob("*.part") if downloads.exists() else []
        return any(p.stat().st_size for p in parts)

    child = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        started = wait_for(lambda: _staging(models) and receiving(), 60)
        assert started, "the child never started downloading"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
        child.stderr.close()
    left = _staging(models)
    assert len(left) == 1 and left[0].startswith(".tiny-bert-"), left  # what SIGKILL leaves
    files = get_pretrained("tiny-bert", index=str(index), progress=False)
    assert files.source == "download" and (files.folder / "vocab.txt").read_text() == VOCAB
    assert _staging(models) == []
    assert [r["range"] for r in web.requests][1].startswith("bytes=")  # resumed, not restarted


def test_stale_staging_is_removed_only_under_the_lock_and_only_this_models(home, web, tmp_path):
    """Leftover staging folders of tiny-bert (this version's and an older one's naming)
    survive while another process holds tiny-bert's lock (they may be its own), and go
    once the lock is free; those of the model 'tiny-bert-2', whose names start the same,
    are never touched."""
    url = web.add("/tiny_bert.zip", lambda h, n: serve_file(h, ZIP, etag_of(ZIP)))
    index = _write_index(tmp_path / "index.yaml", {"tiny-bert": _entry(url)})
    models = home / "models"
    ours = [".tiny-bert-staging-" + "ab" * 16, ".tiny-bert-x1y2z3_q"]
    theirs = [".tiny-bert-2-staging-" + "cd" * 16, ".tiny-bert-2-abcdefgh", ".tiny-bert-2-x1y2z3_q"]
    for name in ours + theirs:
        (models / name / "model").mkdir(parents=True)
        (models / name / "model" / "vocab.txt").write_text("partial")
    outcome = []

    def fetch():
        try:
            outcome.append(get_pretrained("tiny-bert", index=str(index), progress=False))
        except BaseException as error:  # noqa: BLE001 (reported below)
            outcome.append(error)

    with file_lock(str(models / "tiny-bert")):
        thread = threading.Thread(target=fetch, daemon=True)
        thread.start()
        thread.join(1.0)  # time enough to clean, had it not waited for the lock
        assert thread.is_alive() and _staging(models) == sorted(ours + theirs)
    thread.join(60)
    assert not thread.is_alive() and len(outcome) == 1
    assert not isinstance(outcome[0], BaseException), outcome
    assert _staging(models) == sorted(theirs)


# ----------------------------------------------------------------- 7. index checks


def test_an_index_dict_is_validated(home, web):
    url = web.add("/tiny_bert.zip", lambda h, n: serve_file(h, ZIP, etag_of(ZIP)))
    with pytest.raises(WeightsIndexError, match="'urls'"):
        get_pretrained("tiny-bert", index={"models": {"tiny-bert": _entry("ftp://x/t.zip")}})
    with pytest.raises(WeightsIndexError, match="missing"):
        get_pretrained("tiny-bert", index={"models": {"tiny-bert": {"urls": [url]}}})
    with pytest.raises(WeightsIndexError, match="single key 'models'"):
        get_pretrained("tiny-bert", index={"tiny-bert": _entry(url)})
    assert web.requests == []
    assert get_pretrained("tiny-bert", index={"models": {"tiny-bert": _entry(url)}},
                          progress=False).source == "download"  # fmt: skip


@pytest.mark.parametrize("as_dict", [True, False], ids=["dict", "yaml"])
@pytest.mark.parametrize("root", ["../../../outside", "tiny_bert/../../..", "/abs", "C:x"])
def test_archive_root_outside_the_archive_is_refused(home, web, tmp_path, as_dict, root):
    """An archive_root reaching out of the extracted archive is refused before any
    download; the file it would have moved (and then deleted) is untouched."""
    outside = home / "outside"
    outside.mkdir(parents=True)
    (outside / "precious.txt").write_text("keep me")
    url = web.add("/tiny_bert.zip", lambda h, n: serve_file(h, ZIP, etag_of(ZIP)))
    entries = {"tiny-bert": _entry(url, archive_root=root)}
    index = entries if as_dict else _write_index(tmp_path / "index.yaml", entries)
    with pytest.raises(WeightsIndexError, match="archive_root"):
        get_pretrained("tiny-bert", index={"models": index} if as_dict else str(index))
    assert (outside / "precious.txt").read_text() == "keep me"
    assert web.requests == []


def test_archive_root_is_checked_at_use_with_realpath(tmp_path):
    """The schema allows only plain relative names; a link inside the extracted folder
    (which extract() would refuse if it pointed out) is caught again when used."""
    from kerasbert.pretrained import _archive_root

    extracted = tmp_path / "extract"
    (extracted / "tiny_bert").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (extracted / "link").symlink_to(tmp_path / "outside")
    assert _archive_root(extracted, "tiny_bert") == (extracted / "tiny_bert").resolve()
    with pytest.raises(DownloadError, match="outside"):
        _archive_root(extracted, "link")
    with pytest.raises(DownloadError, match="no folder 'missing'.*tiny_bert"):
        _archive_root(extracted, "missing")


def test_archive_links_leaving_the_model_folder_are_refused(home, web, tmp_path):
    """Inside the archive, tiny_bert/vocab.txt links to ../other/vocab.txt (inside the
    archive, so extract() accepts it). Once tiny_bert/ is the model folder, that link would
    point at the cache folder of a model named 'other': refused, nothing installed."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tf:
        for name in TINY_FILES[:3]:
            tf.add(FIXTURES / "tf_bert_tiny" / name, f"tiny_bert/{name}")
        info = tarfile.TarInfo("other/vocab.txt")
        info.size = len(VOCAB)
        tf.addfile(info, io.BytesIO(VOCAB.encode()))
        link = tarfile.TarInfo("tiny_bert/vocab.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "../other/vocab.txt"
        tf.addfile(link)
    blob = data.getvalue()
    url = web.add("/tiny_bert.tar.gz", lambda h, n: serve_file(h, blob, etag_of(blob)))
    (home / "models" / "other").mkdir(parents=True)
    (home / "models" / "other" / "vocab.txt").write_text("another model's file")
    entry = _entry(url, format="tensorflow-tar")
    with pytest.raises(DownloadError, match="vocab.txt.*outside the model folder"):
        get_pretrained("tiny-bert", index={"models": {"tiny-bert": entry}}, progress=False)
    assert not (home / "models" / "tiny-bert").exists()
    assert _staging(home / "models") == []


@pytest.mark.parametrize(
    "urls",
    [
        ["https://example.com/a/..", "https://example.com/b/tiny_bert.zip"],
        ["https://example.com/tiny_bert.zip", "https://example.com/"],
        ["https://example.com/a/tiny_bert.zip", "https://example.com/b/tiny_bert.zip"],
    ],
    ids=["dot-dot", "empty", "twice"],
)
def test_url_file_names_must_be_usable(urls):
    """Each download is stored under its URL's file name: '..', '' or the same name twice
    would escape its folder, name a folder, or overwrite another download."""
    with pytest.raises(WeightsIndexError, match="urls"):
        validate_entry("tiny-bert", _entry(urls[0], urls=urls))


@pytest.mark.parametrize("field, value", [("archive_root", "tiny\x00bert"), ("files", "a\nb")])
def test_paths_with_control_characters_are_refused(field, value):
    entry = _entry("https://example.com/tiny_bert.zip")
    entry[field] = [*TINY_FILES, value] if field == "files" else value
    with pytest.raises(WeightsIndexError, match=field):
        validate_entry("tiny-bert", entry)


def test_index_errors_are_kerasbert_errors():
    with pytest.raises(KerasBertError):
        get_pretrained("x", index={"models": {"x": {}}})


def test_bad_names_indexes_and_cache_folders(home, tmp_path, monkeypatch):
    with pytest.raises(KerasBertError, match="string"):
        get_pretrained(123)
    with pytest.raises(KerasBertError, match="index="):
        get_pretrained("tiny-bert", index=["tiny-bert"])
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("KERASBERT_HOME", str(tmp_path / "afile"))
    entry = _entry("http://127.0.0.1:9/tiny_bert.zip")
    with pytest.raises(DownloadError, match="KERASBERT_HOME"):
        get_pretrained("tiny-bert", index={"models": {"tiny-bert": entry}})
    assert (tmp_path / "afile").read_text() == "x"
