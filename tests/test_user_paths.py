"""The everyday paths a new user takes: model folders that configure themselves, the
sentence-transformers-style encoder, the command line's checks and messages, progress, and
the backend warning. Each test reproduces something that went wrong without a word."""

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES, TINY_CONFIG, goldens

import kerasbert
from kerasbert.encoding import SentenceEncoder
from kerasbert.folders import read_settings
from kerasbert.pretrained import resolve_model_files
from kerasbert.tokenizers import Tokenizer

SENTENCE = "A Man Is Eating Food."


def _cli(*args, stdin=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "kerasbert", *map(str, args)],
        capture_output=True, text=True, input=stdin, cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def minilm_encoder(minilm_dir):
    return SentenceEncoder.from_pretrained(minilm_dir)


def test_a_sentence_transformers_folder_configures_the_encoder(minilm_dir, minilm_encoder):
    settings = read_settings(minilm_dir)
    assert (settings.do_lower_case, settings.max_seq_len, settings.pooling, settings.normalize) \
        == (True, 256, "mean", True)  # fmt: skip
    assert settings.source["pooling"] == "1_Pooling/config.json"
    encoder = minilm_encoder
    assert (encoder.pooling, encoder.normalize, encoder.max_seq_len) == ("mean", True, 256)
    g = goldens(FIXTURES / "minilm")
    # sentence-transformers' vectors (mean pooling, normalized) for the golden sentences.
    got = encoder.encode([str(s) for s in g["sentences"]])
    np.testing.assert_allclose(got, g["sentence_embeddings"], atol=1e-5)
    # By index name, the same.
    named = SentenceEncoder("all-MiniLM-L6-v2")
    np.testing.assert_allclose(named.encode(str(g["sentences"][0])), got[0], atol=1e-6)


def test_explicit_paths_read_the_folders_case_handling(minilm_dir):
    """Explicit config / checkpoint / vocab paths used to encode without lower-casing
    (cosine -0.05 to the same sentence by name): the folder's tokenizer_config says
    do_lower_case."""
    config, checkpoint, vocab, lower = resolve_model_files(
        None, minilm_dir / "config.json", minilm_dir, minilm_dir / "vocab.txt"
    )
    assert lower is True
    by_name = resolve_model_files("all-MiniLM-L6-v2")
    assert by_name[3] is True
    assert Tokenizer(minilm_dir).tokenize(SENTENCE) == Tokenizer(
        minilm_dir / "vocab.txt", do_lower_case=True
    ).tokenize(SENTENCE)
    with pytest.warns(UserWarning, match="do_lower_case=False was asked for, but"):
        assert resolve_model_files("all-MiniLM-L6-v2", lower=False)[3] is False


def test_a_string_gives_one_vector_and_encode_takes_sentence_transformers_options(
    minilm_encoder,
):
    encoder = minilm_encoder
    one = encoder.encode(SENTENCE)
    assert one.shape == (384,)
    many = encoder.encode([SENTENCE, "A man is riding a horse."], batch_size=1,
                          convert_to_numpy=False, normalize_embeddings=False)  # fmt: skip
    assert isinstance(many, list) and many[0].shape == (384,)
    np.testing.assert_allclose(many[0] / np.linalg.norm(many[0]), one, atol=1e-6)
    # Order is the input order, whatever the length buckets.
    texts = ["short", "a much longer sentence about many different things indeed", "mid one"]
    vectors = encoder.encode(texts)
    for text, vector in zip(texts, vectors):
        np.testing.assert_allclose(encoder.encode(text), vector, atol=1e-6)
    with pytest.raises(kerasbert.KerasBertError, match="takes strings"):
        encoder.encode(["fine", 3])


def test_an_explicit_option_that_contradicts_the_folder_warns(minilm_dir):
    with pytest.warns(UserWarning, match="pooling='cls' was asked for, but 1_Pooling"):
        encoder = SentenceEncoder.from_pretrained(minilm_dir, pooling="cls")
    assert encoder.pooling == "cls"


def test_max_seq_len_beyond_the_positions_is_refused():
    model = kerasbert.build_transformer_model(dict(TINY_CONFIG, max_position_embeddings=32))
    tokenizer = Tokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3})
    with pytest.raises(kerasbert.KerasBertError, match="exceeds the 32 positions"):
        SentenceEncoder(model, tokenizer, max_seq_len=64)
    assert SentenceEncoder(model, tokenizer).max_seq_len == 32


def test_a_model_with_random_weights_says_so(tmp_path, caplog):
    folder = tmp_path / "model"
    shutil.copytree(FIXTURES / "tf_bert_tiny", folder)
    with caplog.at_level(logging.WARNING, logger="kerasbert"):
        kerasbert.build_transformer_model(folder)
    message = caplog.records[-1].getMessage()
    assert "random weights" in message and "the folder holds a checkpoint" in message
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kerasbert"):
        kerasbert.build_transformer_model(folder, folder)
    summary = [r.getMessage() for r in caplog.records if r.name == "kerasbert"]
    assert summary and "loaded bert (tensorflow)" in summary[-1] and "parameters" in summary[-1]


def test_convert_to_keras_loads_back_by_folder(tmp_path):
    source = FIXTURES / "tf_bert_tiny"
    out = _cli("convert", source, tmp_path / "k", "--to", "keras")
    assert out.returncode == 0, out.stderr
    again = _cli("convert", source, tmp_path / "k", "--to", "keras")
    assert again.returncode == 2 and "--overwrite" in again.stderr, again.stderr
    assert _cli("convert", source, tmp_path / "k", "--to", "keras", "--overwrite").returncode == 0
    folder = tmp_path / "k"
    model = kerasbert.build_transformer_model(folder, folder)  # heads from kerasbert.json
    reference = kerasbert.build_transformer_model(
        source / "bert_config.json", source, with_pool=True, with_nsp=True, with_mlm=True
    )
    ids = np.array([[2, 5, 9, 3]])
    for got, want in zip(model.predict([ids, 0 * ids], verbose=0),
                         reference.predict([ids, 0 * ids], verbose=0)):  # fmt: skip
        np.testing.assert_array_equal(got, want)


def test_inspect_refuses_a_truncated_data_file(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(FIXTURES / "tf_bert_tiny", folder)
    data = folder / "bert_model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    out = _cli("inspect", folder)
    assert out.returncode == 2 and "truncated" in out.stderr and out.stderr.count("\n") == 1


def test_encode_checks_its_arguments_before_loading(tmp_path, minilm_dir):
    cases = [
        (("--max-seq-len", "1000", "x"), "--max-seq-len 1000 exceeds the model's 512"),
        (("--output", "/nonexistent/x.npy", "x"), "does not exist"),
        (("--pooling", "none", "--output", tmp_path / "x.npy", "x"), "use --output x.jsonl"),
        (("--output", tmp_path / "x.csv", "x"), "write .npy or .jsonl"),
    ]
    for args, message in cases:
        out = _cli("encode", minilm_dir, "--quiet", *args)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    out = _cli("encode", "all-MiniLM-L6v2", "x")
    assert out.returncode == 2 and "Did you mean ['all-MiniLM-L6-v2']" in out.stderr


def test_encode_keeps_blank_lines_as_rows(tmp_path, minilm_dir, minilm_encoder):
    (tmp_path / "in.txt").write_text("first line\n\nthird line\n", encoding="utf-8")
    out = _cli("encode", minilm_dir, "--input", tmp_path / "in.txt", "--output",
               tmp_path / "v.npy", "--quiet")  # fmt: skip
    assert out.returncode == 0, out.stderr
    vectors = np.load(tmp_path / "v.npy")
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(vectors[1], minilm_encoder.encode(""), atol=1e-6)
    np.testing.assert_allclose(vectors[2], minilm_encoder.encode("third line"), atol=1e-6)


def test_command_line_manners(tmp_path):
    version = _cli("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"kerasbert {kerasbert.__version__}"
    help_text = _cli("encode", "--help").stdout
    assert "(default: 32)" in help_text and "--no-normalize" in help_text
    listing = _cli("list").stdout.splitlines()
    assert {"params", "local", "tokenizer", "download"} <= set(listing[0].split())
    minilm = next(line for line in listing if line.startswith("all-MiniLM-L6-v2"))
    assert "package" in minilm and "wordpiece" in minilm
    # A closed pipe: no BrokenPipeError traceback.
    piped = subprocess.run(f"{sys.executable} -m kerasbert list | head -n 1", shell=True,
                           capture_output=True, text=True)  # fmt: skip
    assert piped.stdout.startswith("name") and piped.stderr == ""


def test_importing_kerasbert_after_keras_on_another_backend_warns():
    code = "import keras; import kerasbert"
    env = {"KERAS_BACKEND": "numpy", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                         text=True, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "runs on the 'numpy' backend" in out.stderr


def test_progress_draws_in_notebooks_and_without_tqdm(monkeypatch, capsys):
    from kerasbert import progress

    monkeypatch.setattr(progress, "in_notebook", lambda: True)  # stderr is no terminal here
    with progress.progress_bar(total=4, desc="work", enabled="auto") as bar:
        bar.update(4)
    assert "work" in capsys.readouterr().err
    for module in ("tqdm", "tqdm.auto", "tqdm.std"):  # tqdm not installed
        monkeypatch.setitem(sys.modules, module, None)
    with progress.progress_bar(total=2, desc="plain", enabled=True) as bar:
        bar.update(2)
    err = capsys.readouterr().err
    assert isinstance(bar, progress.TextBar) and "plain: 100%" in err and err.endswith("\n")
    with progress.progress_bar(total=2, desc="quiet", enabled=False) as bar:
        bar.update(2)
    assert capsys.readouterr().err == "" and bar.n == 2


def test_hf_endpoint_mirrors_hub_downloads(monkeypatch):
    from kerasbert.pretrained import mirrored

    url = "https://huggingface.co/hfl/rbt3/resolve/main/config.json"
    assert mirrored(url) == url
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.example/")
    assert mirrored(url) == "https://hf-mirror.example/hfl/rbt3/resolve/main/config.json"
    assert mirrored("https://storage.googleapis.com/x.zip") == "https://storage.googleapis.com/x.zip"


def test_a_pooling_folder_kerasbert_cannot_follow_is_an_error(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
         {"idx": 1, "name": "1", "path": "1_Pooling",
          "type": "sentence_transformers.models.Pooling"}]))  # fmt: skip
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_mean_sqrt_len_tokens": True})
    )
    with pytest.raises(kerasbert.ConfigError, match="mean_sqrt_len"):
        read_settings(tmp_path)
