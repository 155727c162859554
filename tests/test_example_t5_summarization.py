"""examples/task_seq2seq_t5_summarization.py --tiny: mT5 summarization end to end (the tiny
mT5 fixture's weights, a 101-piece SentencePiece model trained at run time)."""

import importlib
import pathlib
import sys

import numpy as np
import pytest

pytest.importorskip("sentencepiece")

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def tiny_tokenizer(example, folder):
    texts = [text for pair in example.read_pairs(example.DATA / "summarization" / "train.tsv")
             for text in pair]  # fmt: skip
    path = example.train_tiny_sentencepiece(texts, folder, 101)
    return example.SpTokenizer.for_t5(path, extra_ids=0)


def test_t5_summarization_tiny_trains_generates_and_caches_consistently(tmp_path):
    example = load_example("task_seq2seq_t5_summarization")
    results = example.main(["--tiny"])

    # The loss fell well below its start (ln(101) = 4.6 for uniform guesses).
    losses = results["losses"]
    assert losses[0] > 4.0 and losses[-1] < 0.8 * losses[0], losses
    assert results["vocab_size"] == 101

    # Four dev summaries: the start id, 6 to 24 ids, closed by </s> or cut at the limit,
    # no special id inside, the printed text the decoding of the ids (the run-time
    # SentencePiece model is the same when trained again: training is deterministic).
    tokenizer = tiny_tokenizer(example, tmp_path)
    samples = results["samples"]
    assert len(samples) == 4 and not results["invalid_summaries"]
    dev = example.read_pairs(example.DATA / "summarization" / "dev.tsv")
    for sample, (summary, source) in zip(samples, dev):
        assert (sample["summary"], sample["source"]) == (summary, source)
        assert sample["source_ids"] == tokenizer.encode(source, maxlen=128)[0]
        ids = sample["ids"]
        assert ids[0] == 0 and 6 <= len(ids) - 1 <= 24
        assert ids[-1] == 1 or len(ids) - 1 == 24
        body = ids[1:-1] if ids[-1] == 1 else ids[1:]
        assert all(3 <= i < 101 for i in body)
        assert sample["generated"] == tokenizer.decode(ids)
        assert 0.0 <= example.rouge_l(sample["generated"], summary) <= 1.0

    # The cached beam search gave exactly the ids of recomputing the decoder every step.
    assert results["num_checked"] == 4 and results["cache_mismatches"] == []
    # One source bucket (the sources have 87-107 ids: 128): the encoding once, and steps
    # for batch sizes 1 and 2 (beam 2) of width 1, never one per step or summary (4
    # summaries took 96 steps).
    assert 2 <= results["compilations"] <= 4
    assert 0.0 <= results["rouge_l"] <= 1.0 and results["lead_rouge_l"] > 0.2


def test_rouge_l_summary_checks_and_forbidden_end():
    example = load_example("task_seq2seq_t5_summarization")
    assert example.text_units("City opens new-line, 2 stops") == [
        "city", "opens", "new", "line", "2", "stops"
    ]  # fmt: skip
    assert example.text_units("本市地铁 line 3") == ["本", "市", "地", "铁", "line", "3"]
    assert example.rouge_l("the city opens", "The city opens") == 1.0
    assert example.rouge_l("", "city") == 0.0
    # LCS "city park" (2 words): precision 2/3, recall 2/4 -> F1 4/7.
    assert abs(example.rouge_l("city new park", "city opens a park") - 4 / 7) < 1e-12

    class Tokenizer:  # the parts summary_problems reads: ids 0-2 special, 1 ends
        vocab_size, _token_end_id = 10, 1

        @staticmethod
        def _is_special(i):
            return i < 3

    tokenizer = Tokenizer()
    assert example.summary_problems([0, 4, 5, 1], tokenizer, 1, 5) == []
    assert example.summary_problems([0, 4, 5, 4, 5, 4], tokenizer, 1, 5) == []  # cut
    assert "start id" in example.summary_problems([4, 5, 1], tokenizer, 1, 5)[0]
    assert "without </s>" in " ".join(example.summary_problems([0, 4, 5], tokenizer, 1, 5))
    assert "special ids" in " ".join(example.summary_problems([0, 4, 2, 1], tokenizer, 1, 5))
    assert "3 ids" in " ".join(example.summary_problems([0, 4, 5, 1], tokenizer, 4, 5))
    assert "outside" in " ".join(example.summary_problems([0, 12, 1], tokenizer, 1, 5))

    # </s> is impossible until minlen ids follow the start id, then left alone.
    probas = np.full((2, 4), 0.25)
    short, long = np.zeros((2, 2), int), np.zeros((2, 4), int)
    masked = example.forbid_end(probas, short, 1, 2, "probas")
    assert masked[:, 1].tolist() == [0.0, 0.0] and np.allclose(masked.sum(1), 1.0)
    assert example.forbid_end(np.log(probas), short, 1, 2, "logits")[0, 1] <= -1e9
    assert example.forbid_end(probas, long, 1, 2, "probas") is probas
