"""get_pretrained / build_pretrained: cache, installed package, download from a local server,
offline mode; the CLI's download and list commands."""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import yaml
from conftest import FIXTURES

import kerasbert
from kerasbert.errors import KerasBertError
from kerasbert.pretrained import build_pretrained, get_pretrained

TINY_FILES = [
    "bert_config.json",
    "bert_model.ckpt.index",
    "bert_model.ckpt.data-00000-of-00001",
    "vocab.txt",
]


@pytest.fixture
def tiny_index(local_site, tmp_path, monkeypatch):
    """An index with the tiny TF BERT as a zip on the local server; an empty cache."""
    www, url, requests = local_site
    with zipfile.ZipFile(www / "tiny_bert.zip", "w") as archive:
        for name in TINY_FILES[:3]:
            archive.write(FIXTURES / "tf_bert_tiny" / name, f"tiny_bert/{name}")
        vocab = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(116)])
        archive.writestr("tiny_bert/vocab.txt", vocab + "\n")
    entry = {
        "family": "bert", "language": "en", "cased": False, "layers": 2, "hidden": 32,
        "heads": 4, "parameters": 21956, "license": "Apache-2.0", "format": "tensorflow",
        "urls": [f"{url}/tiny_bert.zip"], "archive_root": "tiny_bert", "files": TINY_FILES,
        "config": "bert_config.json", "checkpoint": "bert_model.ckpt", "vocab": "vocab.txt",
        "sha256": {}, "do_lower_case": True,
    }  # fmt: skip
    index = tmp_path / "index.yaml"
    index.write_text(yaml.safe_dump({"models": {"tiny-bert": entry}}))
    monkeypatch.setenv("KERASBERT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERASBERT_INDEX", str(index))
    monkeypatch.delenv("KERASBERT_OFFLINE", raising=False)
    return index, requests


def test_download_extract_and_cache(tiny_index, tmp_path):
    _, requests = tiny_index
    files = get_pretrained("tiny-bert", progress=False)
    assert files.source == "download" and len(requests) == 1
    assert files.folder == tmp_path / "home" / "models" / "tiny-bert"
    for name in TINY_FILES:
        assert (files.folder / name).is_file()
    again = get_pretrained("tiny-bert", progress=False)
    assert again.source == "cache" and len(requests) == 1  # no second request

    model, tokenizer = build_pretrained("tiny-bert", with_mlm="linear")
    direct = kerasbert.build_transformer_model(
        FIXTURES / "tf_bert_tiny" / "bert_config.json", FIXTURES / "tf_bert_tiny",
        with_mlm="linear",
    )  # fmt: skip
    ids = np.array([[2, 5, 6, 3]], "int32")
    np.testing.assert_array_equal(
        model.predict([ids, 0 * ids], verbose=0), direct.predict([ids, 0 * ids], verbose=0)
    )
    assert tokenizer.token_to_id("w3") == 7


def test_offline_mode(tiny_index, monkeypatch):
    _, requests = tiny_index
    monkeypatch.setenv("KERASBERT_OFFLINE", "1")
    with pytest.raises(KerasBertError, match="Offline mode.*bert_model.ckpt.index"):
        get_pretrained("tiny-bert")
    assert requests == []
    monkeypatch.delenv("KERASBERT_OFFLINE")
    get_pretrained("tiny-bert", progress=False)
    monkeypatch.setenv("KERASBERT_OFFLINE", "1")
    assert get_pretrained("tiny-bert").source == "cache"  # the cache works offline


def test_archive_missing_files_leaves_no_cache(tiny_index, tmp_path):
    index, _ = tiny_index
    data = yaml.safe_load(index.read_text())
    data["models"]["tiny-bert"]["files"].append("not_in_archive.txt")
    index.write_text(yaml.safe_dump(data))
    with pytest.raises(KerasBertError, match="lacks.*not_in_archive.txt"):
        get_pretrained("tiny-bert", progress=False)
    assert not (tmp_path / "home" / "models" / "tiny-bert").exists()


def test_unknown_name_suggests():
    with pytest.raises(KerasBertError, match="Did you mean.*all-MiniLM-L6-v2"):
        get_pretrained("all-MiniLM-L6")


def test_installed_package_is_used_in_place(minilm_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("KERASBERT_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("KERASBERT_OFFLINE", "1")
    files = get_pretrained("all-MiniLM-L6-v2")
    assert files.source == "package" and files.folder == minilm_dir


def test_cli_download_and_list(tiny_index, tmp_path):
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-m", "kerasbert", "download", "tiny-bert", "--quiet"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "tiny-bert" in out.stdout and "download" in out.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "kerasbert", "list"], capture_output=True, text=True, env=env
    )
    assert "tiny-bert" in listed.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "kerasbert", "download", "no-such-model"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.startswith("kerasbert: error:") and missing.stderr.count("\n") == 1


def test_archive_with_one_folder_and_no_declared_root(tiny_index):
    index, requests = tiny_index
    data = yaml.safe_load(index.read_text())
    data["models"]["tiny-bert"]["archive_root"] = None
    index.write_text(yaml.safe_dump(data))
    files = get_pretrained("tiny-bert", progress=False)
    assert (files.folder / "bert_model.ckpt.index").is_file()


def test_manual_download_entries_say_where_files_go(tiny_index):
    index, requests = tiny_index
    data = yaml.safe_load(index.read_text())
    data["models"]["tiny-bert"]["manual_download"] = True
    index.write_text(yaml.safe_dump(data))
    with pytest.raises(KerasBertError, match="cannot be downloaded automatically.*put"):
        get_pretrained("tiny-bert")
    assert requests == []


def test_packaged_index_is_the_top_level_file():
    import importlib.resources
    import pathlib

    packaged = importlib.resources.files("kerasbert").joinpath("weights_index.yaml")
    top = pathlib.Path(__file__).resolve().parents[1] / "weights_index.yaml"
    assert packaged.read_text(encoding="utf-8") == top.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "family, files, tokenizer",
    [
        ("gpt2", ["gpt2_tiny/hf/config.json", "gpt2_tiny/hf/model.safetensors",
                  "gpt2_tiny/vocab.json", "gpt2_tiny/merges.txt"], "BPETokenizer"),
        ("t5", ["t5_tiny/t5.1.1/config.json", "t5_tiny/t5.1.1/model.safetensors",
                "sentencepiece/t5.model"], "SpTokenizer"),
    ],
)  # fmt: skip
def test_folders_of_generative_models_find_their_vocabulary(family, files, tokenizer, tmp_path):
    """GPT-2's vocab.json + merges.txt and T5's SentencePiece model configure the
    tokenizer of a model folder, as vocab.txt does for BERT."""
    import shutil

    for name in files:
        shutil.copy(FIXTURES / name, tmp_path)
    model, found = build_pretrained(str(tmp_path))
    assert type(found).__name__ == tokenizer
    assert len(found.tokenize("hello world")) > 0
    os.remove(tmp_path / os.path.basename(files[-1]))
    with pytest.raises(KerasBertError, match="has no vocabulary"):
        build_pretrained(str(tmp_path))
