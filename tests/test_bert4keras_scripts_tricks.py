"""bert4keras-style scripts for the training tricks, GPLinker and MLM pre-training.

Each test runs one script of tests/bert4keras_scripts/ on the tiny random checkpoints with
short sequences and a few steps, then checks that it trained (a falling loss, the saved
weights) and that its task-level output is well formed. A tiny random model learns none
of these tasks in a few steps, so nothing here checks an accuracy beyond its being one.

- adversarial training, gradient penalty, VAT: ``kerasbert.tricks`` replaced the model's
  train step (``model.kerasbert_trick``); VAT's model also trained once per labeled batch.
- GPLinker: the triples the script extracts (and writes to dev_pred.json) are (subject,
  predicate, object) with the predicate in the schema and both ends substrings of the
  text; the saved weights are the EMA average, not the trained weights.
- MLM pre-training: the masking is RoBERTa's (15%, 80/10/10, drawn anew on every pass),
  the logged masked-LM accuracy is in [0, 1], and gradient accumulation updated the
  weights on every ``grad_accum_steps``-th batch only.

Sizes: sequences of 14 to 64 tokens, batches sized so that ``fit`` compiles one or two
train steps; each test runs in about 10-25 s on 2 cores. run_script seeds every run, and
the sentiment scripts train on a label-biased copy of the sample (see _biased_sentiment).
"""

import csv
import functools
import json
import shutil

import keras
import numpy as np
from bert4keras_harness import DATA, assert_trains, run_script

# Installed before run_script (or test_mlm_pretraining) wraps keras.Model.fit: installed
# during a script's run, the keras.Model patch would be undone with that wrapper.
import kerasbert.backend  # noqa: F401


def _biased_sentiment(folder):
    """The sentiment sample with all positive and a third of the negative training texts.

    A tiny random BERT's [CLS] vector barely depends on its input before training, so on
    balanced labels the loss of a few short epochs stays at ln 2 up to noise; with a label
    prior to learn, it falls."""
    folder.mkdir()
    lines = (DATA / "sentiment" / "train.tsv").read_text(encoding="utf-8").splitlines()
    negatives = [line for line in lines if line.endswith("\t0")][:25]
    train = [line for line in lines if line.endswith("\t1") or line in negatives]
    (folder / "train.tsv").write_text("\n".join(train) + "\n", encoding="utf-8")
    for name in ("dev.tsv", "test.tsv"):
        shutil.copyfile(DATA / "sentiment" / name, folder / name)
    return folder


def test_iflytek_adversarial_training(bert4keras_models, monkeypatch, tmp_path):
    namespace, losses = run_script(
        "task_iflytek_adversarial_training.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=_biased_sentiment(tmp_path / "data"),
        EPOCHS=3, BATCH_SIZE=10, LEARNING_RATE=2e-3, MAXLEN=14,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    assert namespace["model"].kerasbert_trick == "adversarial_training"
    assert 0.0 <= namespace["evaluate"](namespace["valid_generator"]) <= 1.0


def test_iflytek_gradient_penalty(bert4keras_models, monkeypatch, tmp_path):
    namespace, losses = run_script(
        "task_iflytek_gradient_penalty.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=_biased_sentiment(tmp_path / "data"),
        EPOCHS=3, BATCH_SIZE=10, LEARNING_RATE=2e-3, MAXLEN=14,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    assert namespace["model"].kerasbert_trick == "gradient_penalty"
    assert 0.0 <= namespace["evaluate"](namespace["valid_generator"]) <= 1.0


def test_sentiment_virtual_adversarial_training(bert4keras_models, monkeypatch, tmp_path):
    epochs, steps = 3, 7
    namespace, losses = run_script(
        "task_sentiment_virtual_adversarial_training.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=_biased_sentiment(tmp_path / "data"),
        EPOCHS=epochs, BATCH_SIZE=10, STEPS_PER_EPOCH=steps, LEARNING_RATE=2e-3, MAXLEN=14,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    model, model_vat = namespace["model"], namespace["model_vat"]
    assert model_vat.kerasbert_trick == "virtual_adversarial_training"
    assert not hasattr(model, "kerasbert_trick")  # the labeled model trains plainly
    # model_vat took one unlabeled step after each labeled one
    assert int(model.optimizer.iterations) == int(model_vat.optimizer.iterations) == epochs * steps
    for generator in (namespace["valid_generator"], namespace["test_generator"]):
        assert 0.0 <= namespace["evaluate"](generator) <= 1.0


def _json_objects(text):
    """The JSON objects written one after another (indented) in ``text``."""
    decoder, index, objects = json.JSONDecoder(), 0, []
    while text[index:].strip():
        index += len(text[index:]) - len(text[index:].lstrip())
        value, index = decoder.raw_decode(text, index)
        objects.append(value)
    return objects


def test_relation_extraction_gplinker(bert4keras_models, monkeypatch, tmp_path):
    # Three dev texts of two token lengths (predict compiles once per length): the
    # evaluator scores the averaged weights, which after a few steps are nearly the random
    # initial ones and find hundreds of triples in each text.
    data = tmp_path / "relation"
    data.mkdir()
    for name in ("train_data.json", "all_50_schemas"):
        shutil.copyfile(DATA / "relation" / name, data / name)
    dev = (DATA / "relation" / "dev_data.json").read_text(encoding="utf-8").splitlines()
    dev = [dev[i] for i in (0, 3, 4)]  # 16, 21 and 21 tokens; numbers are single tokens
    (data / "dev_data.json").write_text("\n".join(dev) + "\n", encoding="utf-8")
    namespace, losses = run_script(
        "task_relation_extraction_gplinker.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=data, EPOCHS=2, BATCH_SIZE=64,
        LEARNING_RATE=1e-3, MAXLEN=32,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    predicates = set(namespace["predicate2id"])
    assert predicates == {"出生地", "作者", "导演", "创始人", "毕业院校", "首都"}

    def assert_well_formed(spo, text):
        subject, predicate, obj = spo
        assert predicate in predicates, spo
        assert subject and obj and subject in text and obj in text, (spo, text)

    results = _json_objects((tmp_path / "dev_pred.json").read_text(encoding="utf-8"))
    assert [r["text"] for r in results] == [d["text"] for d in namespace["valid_data"]]
    for result in results:
        for spo in result["spo_list_pred"]:
            assert_well_formed(spo, result["text"])
    # With the lowest threshold every span is a subject and an object, linked by every
    # predicate: the gold triple is among them, its ends mapped back to the text's characters.
    text = namespace["valid_data"][0]["text"]
    assert text == "林晓川在2003年创办了远帆物流。"
    spoes = namespace["extract_spoes"](text, threshold=-1e9)
    assert {p for _, p, _ in spoes} == predicates
    for spo in spoes:
        assert_well_formed(spo, text)
    assert ("远帆物流", "创始人", "林晓川") in spoes and ("2003", "首都", "年") in spoes
    assert all(isinstance(s, tuple) and len(s) == 3 for s in namespace["extract_spoes"](text))
    # The saved weights are the EMA average; the model was given its trained ones back.
    model = namespace["model"]
    trained = [np.array(w) for w in model.get_weights()]
    model.load_weights("best_model.weights")
    averaged = model.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(trained, averaged))


class WeightTrace(keras.callbacks.Callback):
    """The trainable weights of ``model.fit``'s model before and after every batch."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def _record(self):
        variables = self.model.trainable_variables  # self.model syncs the JAX state
        self.weights.append([np.array(v) for v in variables])

    def on_train_begin(self, logs=None):
        self._record()

    def on_train_batch_end(self, batch, logs=None):
        self._record()


def test_mlm_pretraining(bert4keras_models, monkeypatch, tmp_path):
    accum, steps_per_epoch, num_train_steps = 2, 4, 6
    trace = WeightTrace()
    fit = keras.Model.fit

    @functools.wraps(fit)
    def traced_fit(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=[*(callbacks or []), trace], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", traced_fit)
    namespace, losses = run_script(
        "task_mlm_pretraining.py", monkeypatch, tmp_path, MODEL_DIR=bert4keras_models["bert"],
        DATA_DIR=DATA / "pretraining", SEQUENCE_LENGTH=64, BATCH_SIZE=8,
        GRAD_ACCUM_STEPS=accum, STEPS_PER_EPOCH=steps_per_epoch,
        NUM_TRAIN_STEPS=num_train_steps, NUM_WARMUP_STEPS=1, LEARNING_RATE=0.05,
    )  # fmt: skip
    assert namespace["epochs"] == num_train_steps * accum // steps_per_epoch == 3
    assert_trains(losses)
    assert (tmp_path / "bert_model.ckpt.weights.h5").is_file()
    # the masked-LM accuracy, logged per epoch by the script's CSVLogger
    with open(tmp_path / "training.log", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert all(0.0 <= float(row["mlm_acc_loss"]) <= 1.0 for row in rows), rows
    # gradient accumulation: 12 batches, 6 updates, each on the second batch of a pair
    batches = num_train_steps * accum
    assert int(namespace["train_model"].optimizer.iterations) == num_train_steps
    assert len(trace.weights) == batches + 1
    changed = [
        any(not np.array_equal(a, b) for a, b in zip(before, after))
        for before, after in zip(trace.weights, trace.weights[1:])
    ]
    assert changed == [(batch + 1) % accum == 0 for batch in range(batches)], changed
    # RoBERTa's dynamic masking, drawn anew on every pass over the corpus
    tokenizer, generator = namespace["tokenizer"], namespace["data_generator"]
    special = [tokenizer._token_pad_id, tokenizer._token_start_id, tokenizer._token_end_id]
    passes = [list(generator(namespace["instances"], 4)) for _ in range(6)]
    x = {k: np.concatenate([x[k] for p in passes for x, _ in p]) for k in passes[0][0][0]}
    real = ~np.isin(x["token_ids"], special)
    chosen = x["is_masked"] == 1
    assert not (chosen & ~real).any()
    assert 0.12 < chosen.sum() / real.sum() < 0.18
    unchanged = x["Input-Token"] == x["token_ids"]
    assert (unchanged | chosen).all()
    as_mask = (x["Input-Token"] == tokenizer._token_mask_id)[chosen].mean()
    assert 0.7 < as_mask < 0.9, as_mask
    assert 0.05 < unchanged[chosen].mean() < 0.2
    assert not np.array_equal(passes[0][0][0]["is_masked"], passes[1][0][0]["is_masked"])
    assert (x["Input-Segment"] == 0).all()
