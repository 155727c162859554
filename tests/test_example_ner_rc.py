"""The NER (CRF) and reading-comprehension examples run end to end in --tiny mode.

Each script is run in-process through its ``main``; the checks recompute the scores from the
returned predictions and check that every predicted entity / answer is a real span of its
input text.
"""

import importlib
import json
import os
import pathlib
import sys

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
DATA = EXAMPLES / "data"


@pytest.fixture(scope="module")
def examples_path():
    sys.path.insert(0, str(EXAMPLES))
    yield
    sys.path.remove(str(EXAMPLES))


def load_script(name):
    return importlib.import_module(name)


# -- NER ------------------------------------------------------------------------------------------


def read_bio(path):
    """``(text, {(start, end, type)})`` per sentence, parsed independently of the script."""
    sentences = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        pairs = [line.split(" ") for line in block.splitlines()]
        text = "".join(char for char, _ in pairs)
        spans, start = set(), None
        for i, (_, tag) in enumerate(pairs + [("", "O")]):
            if start is not None and not tag.startswith("I-"):
                spans.add((start, i - 1, pairs[start][1][2:]))
                start = None
            if tag.startswith("B-"):
                start = i
        sentences.append((text, spans))
    return sentences


def test_ner_tags_to_spans(examples_path):
    ner = load_script("task_sequence_labeling_ner_crf")
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "I-ORG", "O", "I-PER"]
    assert ner.tags_to_spans(tags) == [
        (0, 1, "PER"),
        (3, 3, "LOC"),
        (4, 5, "LOC"),
        (6, 6, "ORG"),
        (8, 8, "PER"),
    ]


def test_ner_crf_tiny(examples_path):
    ner = load_script("task_sequence_labeling_ner_crf")
    results = ner.main(["--tiny"])

    losses = results["losses"]
    assert losses[-1] < 0.5 * losses[0], losses

    gold = read_bio(DATA / "ner" / "test.txt")
    predictions = results["predictions"]
    assert len(predictions) == len(gold) == 32
    correct = n_pred = n_gold = 0
    for prediction, (text, gold_spans) in zip(predictions, gold):
        assert prediction["text"] == text
        assert set(prediction["gold"]) == gold_spans
        for start, end, kind, entity_text in prediction["predicted"]:
            assert kind in ("PER", "LOC", "ORG")
            assert 0 <= start <= end < len(text)
            assert entity_text == text[start : end + 1]  # mapped back with rematch
        predicted = {tuple(e[:3]) for e in prediction["predicted"]}
        correct += len(predicted & gold_spans)
        n_pred += len(predicted)
        n_gold += len(gold_spans)

    scores = results["test"]
    assert (scores["correct"], scores["predicted"], scores["gold"]) == (correct, n_pred, n_gold)
    assert scores["precision"] == pytest.approx(correct / n_pred)
    assert scores["recall"] == pytest.approx(correct / n_gold)
    assert scores["f1"] == pytest.approx(2 * correct / (n_pred + n_gold))
    # The tiny model learns the frequent names and places of the training data.
    assert scores["f1"] > 0.2, scores
    assert results["dev"]["f1"] > 0.2, results["dev"]


# -- reading comprehension ------------------------------------------------------------------------


def lcs_length(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1]


def normalize(text):
    # The sample data is all Chinese (numbers in Chinese numerals), so CMRC's mixed
    # segmentation reduces to single characters without punctuation.
    return [ch for ch in text.lower() if ch.isalnum()]


def test_rc_sliding_windows(examples_path):
    rc = load_script("task_reading_comprehension")
    assert rc.split_windows(5, 8, 4) == [(0, 5)]
    for n, window, stride in [(100, 30, 10), (31, 30, 29), (60, 20, 20), (7, 3, 5)]:
        windows = rc.split_windows(n, window, stride)
        assert windows[0][0] == 0 and windows[-1][1] == n
        assert all(0 < end - start <= window for start, end in windows)
        assert all(b[0] - a[0] == min(stride, window) for a, b in zip(windows, windows[1:]))
        assert len(windows) > 1

    # Every training answer lies whole inside at least one window, and its labelled tokens
    # map back (through rematch) to exactly the answer's characters.
    from kerasbert.tokenizers import Tokenizer

    common = load_script("common")
    tokenizer = Tokenizer(str(common.ZH_VOCAB), do_lower_case=True)
    cache = {}
    for example in rc.load_data(DATA / "squad" / "train.json"):
        features = rc.Features(tokenizer, example, 64, 24, 32, cache)
        text, start = example["answers"][0]
        assert example["context"][start : start + len(text)] == text
        labelled = [(w, label) for w, label in enumerate(features.labels) if label != (0, 0)]
        assert labelled, example["id"]
        for w, (first, last) in labelled:
            mapping = features.mapping[w]
            assert features.segment_ids[w][first] == 1
            span = example["context"][mapping[first][0] : mapping[last][-1] + 1]
            assert span == text, (example["id"], span, text)


def test_reading_comprehension_tiny(examples_path):
    rc = load_script("task_reading_comprehension")
    results = rc.main(["--tiny"])

    losses = results["losses"]
    assert losses[-1] < 0.8 * losses[0], losses

    with open(DATA / "squad" / "dev.json", encoding="utf-8") as f:
        dev = json.load(f)
    gold = {
        qa["id"]: (paragraph["context"], [a["text"] for a in qa["answers"]])
        for article in dev["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }
    predictions = results["predictions"]
    assert sorted(p["id"] for p in predictions) == sorted(gold)

    em, f1 = [], []
    for p in predictions:
        context, answers = gold[p["id"]]
        predicted = p["predicted"]
        # A real span of the context, found where the script says it starts.
        assert predicted and context[p["start"] : p["start"] + len(predicted)] == predicted
        pred = normalize(predicted)
        em.append(max(float(pred == normalize(a)) for a in answers))
        scores = [0.0]
        for answer in answers:
            common = lcs_length(pred, normalize(answer))
            if common:
                precision, recall = common / len(pred), common / len(normalize(answer))
                scores.append(2 * precision * recall / (precision + recall))
        f1.append(max(scores))
    assert results["dev"]["em"] == pytest.approx(100 * sum(em) / len(em))
    assert results["dev"]["f1"] == pytest.approx(100 * sum(f1) / len(f1))
    assert results["dev"]["f1"] > 0  # some predicted characters overlap the answers

    # Contexts longer than a window were split into several windows, the others not.
    long_contexts = [p for p in predictions if p["context_tokens"] > p["window_tokens"]]
    assert len(long_contexts) >= 10
    for p in predictions:
        expected = len(rc.split_windows(p["context_tokens"], p["window_tokens"], 24))
        assert p["windows"] == expected
        assert (p["windows"] > 1) == (p["context_tokens"] > p["window_tokens"])
    assert results["train_windows"] > results["train_questions"]
