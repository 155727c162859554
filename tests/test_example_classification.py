"""The classification examples in --tiny mode: sentiment (single text) and LCQMC-style pairs.

Each runs end to end in-process, then the test rebuilds the classifier, loads the best
weights the script saved, predicts the test set itself (its own encoding and padding, no
buckets) and checks that the reported accuracy is what those predictions give.
"""

import importlib
import pathlib
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def repredict(module, argv, encoded, labels):
    """Rebuild the script's model, load its saved weights, predict ``encoded`` afresh."""
    from kerasbert.snippets import sequence_padding

    args = module.parse_args(argv)
    model, _ = module.build_model(args)
    model.load_weights(args.output)
    token_ids = sequence_padding([ids for ids, _ in encoded])
    segment_ids = sequence_padding([segments for _, segments in encoded])
    probs = model.predict([token_ids, segment_ids], batch_size=len(labels), verbose=0)
    predicted = np.argmax(probs, axis=-1)
    return predicted, float(np.mean(predicted == np.asarray(labels)))


@pytest.mark.parametrize("options", [[], ["--model", "albert", "--pooling", "cls"]])
def test_sentiment_classification_tiny(tmp_path, options):
    module = load_example("task_sentiment_classification")
    weights = tmp_path / "best_sentiment.weights.h5"
    argv = ["--tiny", "--output", str(weights), "--verbose", "0", *options]
    results = module.main(argv)

    loss = results["train_loss"]
    assert len(loss) == 8
    assert loss[-1] < loss[0] - 0.1, loss  # it learned the training set, at least partly
    assert len(results["dev_accuracy"]) == 8
    assert results["best_dev_accuracy"] == max(results["dev_accuracy"])
    # The polarity words are shared across splits: even the tiny model beats chance.
    assert results["test_accuracy"] >= 0.65, results

    assert weights.is_file() and results["weights_path"] == str(weights)
    test = module.load_data(module.DATA / "sentiment" / "test.tsv")
    assert results["test_labels"] == [label for _, label in test]
    _, tokenizer = module.load_model_and_tokenizer(module.parse_args(argv))
    encoded = [tokenizer.encode(text, maxlen=64) for text, _ in test]
    predicted, test_accuracy = repredict(module, argv, encoded, results["test_labels"])
    assert predicted.tolist() == results["test_predictions"]
    assert test_accuracy == pytest.approx(results["test_accuracy"])

    # Bucketed lengths and one batch size: a compiled step per bucket, none per length.
    buckets = [16, 32, 64]  # make_buckets(64)
    shapes = results["train_batch_shapes"]
    assert shapes and all(rows == 16 and length in buckets for rows, length in shapes)
    assert results["compilations"]["train_step"] == len(shapes)
    assert 1 <= results["compilations"]["predict_step"] <= len(buckets)


def test_sentence_similarity_tiny(tmp_path):
    module = load_example("task_sentence_similarity")
    weights = tmp_path / "best_similarity.weights.h5"
    argv = ["--tiny", "--output", str(weights), "--verbose", "0"]

    # Pairs are encoded as [CLS] a [SEP] b [SEP] with segment ids 0 then 1.
    args = module.parse_args(argv)
    _, tokenizer = module.load_model_and_tokenizer(args)
    pairs = module.load_data(module.DATA / "lcqmc" / "test.txt")
    batches = module.PairBatches(pairs, tokenizer, args.maxlen, args.batch_size)
    (token_ids, segment_ids), labels = next(iter(batches))
    assert token_ids.shape == segment_ids.shape and token_ids.shape[1] in batches.buckets
    a, b, _ = pairs[0]
    ids = token_ids[0][token_ids[0] > 0].tolist()
    segments = segment_ids[0][: len(ids)].tolist()
    first = segments.index(1)
    assert ids[0] == tokenizer.token_to_id("[CLS]") and ids[first - 1] == ids[-1]
    assert ids[-1] == tokenizer.token_to_id("[SEP]")
    assert (tokenizer.decode(ids[:first]), tokenizer.decode(ids[first:])) == (a, b)
    assert segments == sorted(segments) and labels.tolist() == [y for _, _, y in pairs[:16]]

    results = module.main(argv)
    loss = results["train_loss"]
    assert len(loss) == 30
    # The tiny random model fits the training pairs (loss well below log 2)...
    assert loss[-1] < loss[0] - 0.2, loss
    # ...though it generalizes little; the accuracy is still that of real predictions.
    assert results["best_dev_accuracy"] == max(results["dev_accuracy"])
    assert 0.0 <= results["test_accuracy"] <= 1.0
    assert weights.is_file()
    encoded = [tokenizer.encode(a, b, maxlen=args.maxlen) for a, b, _ in pairs]
    predicted, test_accuracy = repredict(module, argv, encoded, results["test_labels"])
    assert results["test_labels"] == [y for _, _, y in pairs]
    assert predicted.tolist() == results["test_predictions"]
    assert test_accuracy == pytest.approx(results["test_accuracy"])
