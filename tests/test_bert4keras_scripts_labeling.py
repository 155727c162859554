"""bert4keras-style scripts for sentence pairs, sequence labelling and BERT-of-Theseus.

Each test runs one script of tests/bert4keras_scripts/ on the tiny random checkpoints, with
a short sequence length (so that a run compiles a handful of shapes, not one per batch)
and a few epochs, then checks that it trained (a falling loss, the saved best weights)
and that its task-level output is well formed; a tiny random model does not learn the
tasks in a few epochs, so accuracies are only checked to be accuracies.
"""

import shutil

import numpy as np
from bert4keras_harness import DATA, assert_trains, run_script

# Installed before run_script wraps keras.Model.fit: installed during a script's run, the
# keras.Model patch would be undone with run_script's own wrapper when the test ends.
import kerasbert.backend  # noqa: F401
from kerasbert.checkpoints import open_checkpoint


def _sentences(path, count):
    """The first ``count`` blank-line-separated sentences of a ``char TAG`` file."""
    blocks = path.read_text(encoding="utf-8").strip().split("\n\n")
    return "\n\n".join(blocks[:count]) + "\n"


def attention_layers(model, prefix):
    """The names of ``model``'s self-attention layers whose names start with ``prefix``."""
    names = [layer.name for layer in model.layers if layer.name.startswith(prefix)]
    return [name for name in names if name.endswith("-MultiHeadSelfAttention")]


def test_sentence_similarity_lcqmc(bert4keras_models, monkeypatch, tmp_path):
    # A tiny random BERT's [CLS] vector barely depends on its input before training, so on
    # balanced pairs the loss stays at ln 2 for many epochs. Training on the similar pairs
    # and a third of the others gives it a label prior to learn: the loss falls.
    data = tmp_path / "lcqmc"
    data.mkdir()
    lines = (DATA / "lcqmc" / "train.txt").read_text(encoding="utf-8").splitlines()
    negatives = [line for line in lines if line.endswith("\t0")][:25]
    train = [line for line in lines if line.endswith("\t1") or line in negatives]
    (data / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    for name in ("dev.txt", "test.txt"):
        shutil.copyfile(DATA / "lcqmc" / name, data / name)
    namespace, losses = run_script(
        "task_sentence_similarity_lcqmc.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=data, EPOCHS=3, BATCH_SIZE=10,
        LEARNING_RATE=1e-3, MAXLEN=16,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    for generator in (namespace["valid_generator"], namespace["test_generator"]):
        assert 0.0 <= namespace["evaluate"](generator) <= 1.0
    assert namespace["model"].output.shape == (None, 2)  # the pooled [CLS] -> two classes


def test_sequence_labeling_ner_crf(bert4keras_models, monkeypatch, tmp_path):
    data = tmp_path / "ner"
    data.mkdir()
    # Six whole batches (one shape to compile) and a few dev/test sentences (the recognizer
    # predicts one sentence at a time: one compilation per sentence length).
    train = _sentences(DATA / "ner" / "train.txt", 96)
    (data / "train.txt").write_text(train, encoding="utf-8")
    for name in ("dev.txt", "test.txt"):
        (data / name).write_text(_sentences(DATA / "ner" / name, 4), encoding="utf-8")
    namespace, losses = run_script(
        "task_sequence_labeling_ner_crf.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=data, EPOCHS=2, BATCH_SIZE=16,
        LEARNING_RATE=1e-3, BERT_LAYERS=2, CRF_LR_MULTIPLIER=10, MAXLEN=16,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    assert namespace["categories"] == ["LOC", "ORG", "PER"]
    crf, recognizer = namespace["CRF"], namespace["NER"]
    trans = namespace["K"].eval(crf.trans)
    assert trans.shape == (7, 7)  # O, then B and I of each category
    np.testing.assert_allclose(recognizer.trans, trans, rtol=1e-6)  # refreshed per epoch
    np.testing.assert_allclose(crf.get_weights()[0] * 10, trans, rtol=1e-6)  # lr_multiplier
    for sentence in namespace["valid_data"]:
        text = sentence[0]
        for start, end, category in recognizer.recognize(text):
            assert 0 <= start <= end < len(text) and category in namespace["categories"]
    f1, precision, recall = namespace["evaluate"](namespace["valid_data"])
    assert all(0.0 <= score <= 1.0 for score in (f1, precision, recall))


def test_sequence_labeling_cws_crf(bert4keras_models, monkeypatch, tmp_path):
    namespace, losses = run_script(
        "task_sequence_labeling_cws_crf.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=DATA / "cws", EPOCHS=3, BATCH_SIZE=16,
        LEARNING_RATE=1e-3, BERT_LAYERS=2, CRF_LR_MULTIPLIER=10, MAXLEN=12,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    assert len(namespace["train_data"]) == 80 and len(namespace["valid_data"]) == 20
    segmenter = namespace["segmenter"]
    for words in namespace["valid_data"]:
        text = "".join(words)
        predicted = segmenter.tokenize(text)
        assert "".join(predicted) == text and all(predicted)
    assert 0.0 <= namespace["simple_evaluate"](namespace["valid_data"]) <= 1.0
    (x, segments), labels = next(iter(namespace["data_generator"](namespace["train_data"][:4])))
    assert labels.shape == x.shape and set(np.unique(labels)) <= {0, 1, 2, 3}


def test_bert_of_theseus(bert4keras_models, monkeypatch, tmp_path):
    namespace, losses = run_script(
        "task_iflytek_bert_of_theseus.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=DATA / "sentiment", BATCH_SIZE=25,
        LEARNING_RATE=1e-2, MAXLEN=16, PREDECESSOR_EPOCHS=2, THESEUS_EPOCHS=2,
        SUCCESSOR_EPOCHS=2,
    )  # fmt: skip
    assert len(losses) == 6  # two epochs of each stage
    assert_trains(losses[:2])  # the predecessor
    assert_trains(losses)  # the successor ends below where the predecessor started
    for stage in ("predecessor", "theseus", "successor"):
        assert (tmp_path / f"best_{stage}.weights.h5").is_file()

    assert len(attention_layers(namespace["successor_model"], "Successor-")) == 1
    assert len(attention_layers(namespace["predecessor_model"], "Predecessor-")) == 2
    theseus = namespace["theseus_model"]
    assert len(attention_layers(theseus, "Successor-")) == 1
    assert len(attention_layers(theseus, "Predecessor-")) == 2
    for name in ("predecessor_model", "theseus_model", "successor_model"):
        accuracy = namespace["evaluate"](namespace["valid_generator"], namespace[name])
        assert 0.0 <= accuracy <= 1.0
    # Outside training every BinaryRandomChoice passes the successor's module on, so the
    # theseus model is the successor model (they share its layers and the classifier).
    x, _ = next(iter(namespace["valid_generator"]))
    np.testing.assert_allclose(
        theseus.predict(x, verbose=0), namespace["successor_model"].predict(x, verbose=0),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    # Stage 1 trained the predecessor although bert_of_theseus froze it after its compile
    # (Keras 2's rule, which kerasbert.backend keeps): its last block left the checkpoint.
    checkpoint = open_checkpoint(bert4keras_models["bert"] / "bert_model.ckpt")
    pretrained = checkpoint.read("bert/encoder/layer_1/output/dense/kernel")
    predecessor = namespace["predecessor"].model
    weights = predecessor.get_layer("Predecessor-Transformer-1-FeedForward").get_weights()
    [trained] = [w for w in weights if w.shape == pretrained.shape]  # (intermediate, hidden)
    assert not np.allclose(trained, pretrained)
    assert not predecessor.get_layer("Predecessor-Transformer-1-FeedForward").trainable
