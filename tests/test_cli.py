"""The kerasbert command line, run in subprocesses on fixtures and the real MiniLM."""

import json
import subprocess
import sys

import numpy as np
from conftest import FIXTURES, goldens

from kerasbert.encoding import SentenceEncoder
from kerasbert.pretrained import build_pretrained


def _cli(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "kerasbert", *map(str, args)],
        capture_output=True, text=True, input=stdin,
    )  # fmt: skip


def test_encode_equals_the_python_api(tmp_path):
    g = goldens(FIXTURES / "minilm")
    sentences = [str(s) for s in g["sentences"]]
    out = _cli("encode", "--pretrained", "all-MiniLM-L6-v2", "--normalize", "--quiet",
               "--output", tmp_path / "v.npy", *sentences)  # fmt: skip
    assert out.returncode == 0, out.stderr
    vectors = np.load(tmp_path / "v.npy")
    model, tokenizer = build_pretrained("all-MiniLM-L6-v2")
    expected = SentenceEncoder(model, tokenizer, normalize=True).encode(sentences)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    np.testing.assert_allclose(vectors, g["sentence_embeddings"], atol=1e-5)  # the HF reference


def test_encode_from_stdin_to_jsonl_with_pairs_and_token_vectors():
    out = _cli("encode", "--pretrained", "all-MiniLM-L6-v2", "--pooling", "none", "--quiet",
               stdin="a short one\nHow old are you? ||| What is your age?\n")  # fmt: skip
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in records][0] == "a short one"
    assert np.array(records[0]["vector"]).shape == (5, 384)  # [CLS] a short one [SEP]
    assert np.array(records[1]["vector"]).shape[1] == 384


def test_encoder_buckets_bound_compiled_shapes():
    model, tokenizer = build_pretrained("all-MiniLM-L6-v2")
    encoder = SentenceEncoder(model, tokenizer, max_seq_len=64, batch_size=4)
    texts = [" ".join(["word"] * n) for n in range(1, 60)]
    encoder.encode(texts)
    assert len(encoder.compiled_shapes) <= len(encoder.buckets) * 2  # full and last batch


def test_inspect_and_demo():
    out = _cli("inspect", FIXTURES / "albert_groups" / "albert_model.ckpt")
    assert out.returncode == 0 and "family:     albert" in out.stdout
    demo = _cli("demo")
    # The demo's first two sentences are the golden's first two (same model, same pooling).
    expected = f"{float(goldens(FIXTURES / 'minilm')['cosine_01']):7.4f}"
    assert demo.returncode == 0 and f"{expected}  A man is eating a piece of bread." in demo.stdout


def test_bad_input_gives_one_line_and_status_2(tmp_path):
    for args in (
        ("inspect", tmp_path / "nothing"),
        ("encode", "--pretrained", "nope", "x"),
        ("encode", "--quiet", "x"),
    ):
        out = _cli(*args)
        assert out.returncode == 2, args
        assert out.stderr.startswith("kerasbert: error:") and out.stderr.count("\n") == 1
    assert _cli("--help").returncode == 0
    for command in ("list", "download", "inspect", "convert", "encode", "demo"):
        help_text = _cli(command, "--help")
        assert help_text.returncode == 0 and "usage: kerasbert" in help_text.stdout


def _model_with_every_head(folder):
    """BERT with pooler, NSP and MLM heads loaded from ``folder``; every weight must load."""
    from kerasbert import build_transformer_model

    builder = build_transformer_model(
        folder / "bert_config.json", folder, with_pool=True, with_nsp=True, with_mlm=True,
        return_keras_model=False,
    )  # fmt: skip
    model, report = builder.model, builder.load_report
    assert sorted(path for path, _ in report.loaded) == sorted(w.path for w in model.weights)
    assert not report.problems
    return model, report


def _assert_same_model_variables(source, converted):
    """``converted`` holds every variable of the model in ``source``, by name, and nothing
    else (optimizer slots and the step counter are not model variables), each with the same
    dtype, shape and bytes; the models loaded from both have bit-identical weights."""
    from kerasbert.checkpoints import open_checkpoint

    model, report = _model_with_every_head(source)
    expected = sorted(name for _, name in report.loaded)  # the model's variables' names
    original, again = open_checkpoint(source), open_checkpoint(converted)
    assert again.names() == expected
    for name in expected:
        a, b = original.read(name), again.read(name)
        assert (a.dtype, a.shape) == (b.dtype, b.shape) and a.tobytes() == b.tobytes(), name
    reloaded, _ = _model_with_every_head(converted)
    assert [w.path for w in reloaded.weights] == [w.path for w in model.weights]
    for w, v in zip(model.weights, reloaded.weights):
        assert np.asarray(w).tobytes() == np.asarray(v).tobytes(), w.path


def test_convert_command_round_trip(tmp_path):
    """TF -> safetensors -> TF through the command line gives back every variable of the
    model (all heads), bit for bit; a dropped or changed variable fails."""
    source = FIXTURES / "tf_bert_tiny"
    out = _cli("convert", source, tmp_path / "st", "--to", "safetensors")
    assert out.returncode == 0, out.stderr
    back = _cli("convert", tmp_path / "st", tmp_path / "tf", "--to", "tf")
    assert back.returncode == 0, back.stderr
    _assert_same_model_variables(source, tmp_path / "tf")
    refused = _cli("convert", source, source, "--to", "tf")
    assert refused.returncode == 2 and "kerasbert: error:" in refused.stderr
