"""The server's parts without sockets or a real model: bert-as-service's text rules, the
wire format, and dynamic batching (with a stand-in engine that records its batches)."""

import json
import threading

import numpy as np
import pytest

from kerasbert.serving.batcher import Batcher, Job
from kerasbert.serving.engine import length_buckets, row_buckets
from kerasbert.serving.features import FeatureMaker
from kerasbert.serving.options import ServeOptions
from kerasbert.serving.protocol import (
    BadRequest,
    error_reply,
    parse_request,
    vectors_reply,
)
from kerasbert.tokenizers import Tokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d", "e", "hello", "world"]


@pytest.fixture()
def maker():
    tokenizer = Tokenizer({t: i for i, t in enumerate(VOCAB)}, do_lower_case=True)
    return FeatureMaker(tokenizer, max_seq_len=8, model_limit=16)


def test_pairs_truncation_and_pretokenized_rules(maker):
    (single, pair), limit = maker.request(["a b c", "a b ||| c d e"])
    assert limit == 8
    assert single.tokens == ["[CLS]", "a", "b", "c", "[SEP]"] and single.segments == [0] * 5
    assert pair.tokens == ["[CLS]", "a", "b", "[SEP]", "c", "d", "e", "[SEP]"]
    assert pair.segments == [0, 0, 0, 0, 1, 1, 1, 1]
    # 3 + 3 pieces in 8 - 3 = 5: the tie pops from the second text (bert-as-service).
    (tied,), _ = maker.request(["a b c ||| c d e"])
    assert tied.tokens == ["[CLS]", "a", "b", "c", "[SEP]", "c", "d", "[SEP]"]
    (cut,), _ = maker.request([" ".join("abcde" * 3)])
    assert cut.length == 8 and cut.tokens[-1] == "[SEP]"
    (given,), _ = maker.request([["Hello", "world", "|||", "a"]])
    assert given.tokens == ["[CLS]", "[UNK]", "world", "[SEP]", "a", "[SEP]"]


def test_no_max_seq_len_is_the_requests_longest_text(maker):
    maker.max_seq_len = None
    (a, b), limit = maker.request(["a b c", "a b"])
    assert limit == 5 and a.length == 5 and b.length == 4
    _, limit = maker.request(["a b c", "a ||| b"])  # a pair in the request: + 3, not + 2
    assert limit == 6
    _, limit = maker.request([" ".join(["a"] * 40)])
    assert limit == 16  # the model's limit


def test_requests_and_replies_on_the_wire():
    ok = parse_request([b"id-1", b'["a", "b"]', b"7", b"2"], max_texts=10)
    assert (ok.identity, ok.request_id, ok.texts) == (b"id-1", b"7", ["a", "b"])
    assert parse_request([b"x", b"SHOW_CONFIG", b"1", b"0"], 10).command == b"SHOW_CONFIG"
    with pytest.raises(BadRequest) as dropped:
        parse_request([b"x", b"y", b"z"], 10)
    assert dropped.value.request_id is None  # no id to answer: dropped
    with pytest.raises(BadRequest) as answered:
        parse_request([b"x", b"[1]", b"3", b"1"], 10)
    assert answered.value.request_id == b"3" and "not a string" in str(answered.value)
    frames = vectors_reply(b"x", b"3", np.ones((2, 3), "float32"), [["a"], ["b"]])
    header = json.loads(frames[1])
    assert header == {"dtype": "float32", "shape": [2, 3], "tokens": [["a"], ["b"]]}
    assert np.frombuffer(frames[2], "float32").reshape(2, 3).sum() == 6
    header = json.loads(error_reply(b"x", b"3", "text 0 is blank")[1])
    with pytest.raises(TypeError, match="kerasbert error: text 0 is blank"):
        np.frombuffer(b"", dtype=header["dtype"])


def test_option_checks_name_the_option():
    for options, flag in [({"max_seq_len": 3}, "-max_seq_len"), ({"port": 0}, "-port"),
                          ({"pooling_strategy": "MEAN"}, "-pooling_strategy"),
                          ({"max_batch_size": 0}, "-max_batch_size"),
                          ({"port": 7, "port_out": 7}, "different ports")]:  # fmt: skip
        with pytest.raises(Exception, match=flag):
            ServeOptions("m", **options).check()


class RecordingEngine:
    """An engine whose vector of a text is its first id and its length."""

    def __init__(self):
        self.lengths = length_buckets(32)
        self.rows = row_buckets(4)
        self.batches = []

    def shape_for(self, count, longest):
        return count, next(b for b in self.lengths if b >= longest)

    def run(self, features, device=None):
        self.batches.append([f.ids[0] for f in features])
        return np.array([[f.ids[0], f.length] for f in features], "float32")


def _feature(first_id, length):
    from kerasbert.serving.features import Features

    return Features(["t"] * length, [first_id] * length, [0] * length, False)


def _job(name, lengths, done):
    return Job(name, [_feature(100 * name + i, n) for i, n in enumerate(lengths)], None,
               lambda job: done.append(job))  # fmt: skip


@pytest.mark.parametrize("merge", [True, False])
def test_batches_merge_requests_by_length_bucket(merge):
    engine, done = RecordingEngine(), []
    batcher = Batcher(engine, max_batch_size=4, merge_requests=merge)
    jobs = [_job(1, [3, 12, 4], done), _job(2, [5, 6], done), _job(3, [20, 2], done)]
    jobs[2].cancelled = True  # its client went away: its rows never run
    for job in jobs:
        batcher.submit(job)
    batcher.stop()
    thread = threading.Thread(target=batcher.run)
    thread.start()
    thread.join(10)
    ran = [i for batch in engine.batches for i in batch]
    assert sorted(ran) == [100, 101, 102, 200, 201]
    if merge:  # one batch per length bucket (8: four rows of two requests; 16: one)
        assert engine.batches == [[100, 102, 200, 201], [101]]
    else:  # never two requests in one batch
        assert all(len({i // 100 for i in batch}) == 1 for batch in engine.batches)
    assert [job.key for job in done] in ([1, 2], [2, 1])
    for job in done:  # each reply in its own texts' order
        assert job.vectors()[:, 0].tolist() == [100 * job.key + i for i in range(len(job.results))]
