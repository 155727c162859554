"""kerasbert.snippets: padding, buckets, text splitting, data generators and decoders."""

import itertools

import keras
import numpy as np
import pytest

from kerasbert import snippets, tokenizers
from kerasbert.errors import KerasBertError
from kerasbert.layers.crf import ConditionalRandomField
from kerasbert.snippets import (
    AutoRegressiveDecoder,
    DataGenerator,
    SnippetError,
    ViterbiDecoder,
    bucket_length,
    make_buckets,
    sequence_padding,
    softmax,
    text_segmentate,
)

# -- sequence_padding -----------------------------------------------------------------------------


def test_sequence_padding_post_pre_length_value():
    seqs = [[1, 2, 3], [4], []]
    np.testing.assert_array_equal(sequence_padding(seqs), [[1, 2, 3], [4, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(
        sequence_padding(seqs, mode="pre", value=9), [[1, 2, 3], [9, 9, 4], [9, 9, 9]]
    )
    # Longer sequences keep their head, in both modes (bert4keras).
    np.testing.assert_array_equal(sequence_padding(seqs, length=2), [[1, 2], [4, 0], [0, 0]])
    np.testing.assert_array_equal(
        sequence_padding(seqs, length=2, mode="pre"), [[1, 2], [0, 4], [0, 0]]
    )
    np.testing.assert_array_equal(sequence_padding(seqs, length=[4])[1], [4, 0, 0, 0])
    # Trailing axes ride along: a list of (len, 2) arrays.
    out = sequence_padding([np.ones((2, 2)), np.ones((1, 2))], value=-1.0)
    assert out.shape == (2, 2, 2) and out.dtype == np.float64
    np.testing.assert_array_equal(out[1, 1], [-1, -1])


def test_sequence_padding_two_sequence_axes():
    a = np.arange(4).reshape(2, 2)
    b = np.arange(9).reshape(3, 3)
    out = sequence_padding([a, b], seq_dims=2, value=-1)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[0], [[0, 1, -1], [2, 3, -1], [-1, -1, -1]])
    np.testing.assert_array_equal(out[1], b)
    out = sequence_padding([a, b], length=[2, 4], seq_dims=2, mode="pre")
    assert out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out[0], [[0, 0, 0, 1], [0, 0, 2, 3]])
    np.testing.assert_array_equal(out[1], [[0, 0, 1, 2], [0, 3, 4, 5]])
    assert sequence_padding([a, b], length=4, seq_dims=2).shape == (2, 4, 4)


def test_sequence_padding_errors():
    with pytest.raises(SnippetError, match="mode"):
        sequence_padding([[1]], mode="middle")
    with pytest.raises(SnippetError, match="empty"):
        sequence_padding([])
    with pytest.raises(SnippetError, match="one per padded axis"):
        sequence_padding([np.zeros((2, 2))], length=[1, 2, 3], seq_dims=2)
    with pytest.raises(SnippetError, match="differ beyond"):
        sequence_padding([np.zeros((2, 2)), np.zeros((2, 3))])
    assert issubclass(SnippetError, KerasBertError) and issubclass(SnippetError, ValueError)


def test_truncate_sequences_is_the_tokenizers_one():
    assert snippets.truncate_sequences is tokenizers.truncate_sequences


# -- length buckets -------------------------------------------------------------------------------


def test_make_buckets_and_bucket_length():
    assert make_buckets(512) == [16, 32, 64, 128, 256, 512]
    assert make_buckets(100, start=8) == [8, 16, 32, 64, 100]
    assert make_buckets(128, step=32) == [32, 64, 96, 128]
    assert make_buckets(10, step=32) == [10]
    assert [bucket_length(n, [8, 16, 32]) for n in (0, 8, 9, 16, 17, 32, 33)] == [
        8,
        8,
        16,
        16,
        32,
        32,
        32,
    ]
    with pytest.raises(SnippetError, match="maxlen"):
        make_buckets(0)
    with pytest.raises(SnippetError, match="empty"):
        bucket_length(3, [])


def test_buckets_bound_the_number_of_batch_shapes():
    rng = np.random.default_rng(0)
    buckets = make_buckets(128, step=32)
    shapes = set()
    lengths = set()
    for _ in range(300):
        batch = [rng.integers(1, 100, size=rng.integers(1, 200)) for _ in range(4)]
        lengths.add(max(len(x) for x in batch))
        padded = sequence_padding(batch, buckets=buckets)
        shapes.add(padded.shape)
        longest = max(len(x) for x in batch)
        assert padded.shape[1] == min(bucket_length(longest, buckets), 128)
        assert padded.shape[1] >= min(longest, 128)
    assert len(lengths) > 50
    assert len(shapes) <= len(buckets)
    # Two sequence axes: each is bucketed.
    out = sequence_padding([np.zeros((5, 20)), np.zeros((9, 3))], seq_dims=2, buckets=[8, 16, 32])
    assert out.shape == (2, 16, 32)


# -- text_segmentate ------------------------------------------------------------------------------


def test_text_segmentate():
    text = "今天天气很好。我们去公园吧！公园里有很多人，他们在放风筝。"
    assert text_segmentate(text, 100) == [text]
    assert text_segmentate(text, 14, seps="。！") == [
        "今天天气很好。",
        "我们去公园吧！",
        "公园里有很多人，他们在放风筝。",
    ]
    # The third sentence is still too long for 12: it is cut again at the comma.
    assert text_segmentate(text, 12, seps="。！，") == [
        "今天天气很好。",
        "我们去公园吧！",
        "公园里有很多人，",
        "他们在放风筝。",
    ]
    assert text_segmentate(text, 12, seps="。！，", strips="。！，") == [
        "今天天气很好",
        "我们去公园吧",
        "公园里有很多人",
        "他们在放风筝",
    ]
    # Short neighbours are merged back while they fit.
    assert text_segmentate("a\nb\nc\ndddddd", 6) == ["a\nb\nc", "dddddd"]
    # A piece no separator can shorten stays whole.
    assert text_segmentate("x" * 20, 5, seps="\n") == ["x" * 20]
    assert text_segmentate("  padded  ", 3, seps="") == ["padded"]


# -- DataGenerator --------------------------------------------------------------------------------


class PairBatches(DataGenerator):
    """Batches of (padded ids, label) from data of (ids, label) pairs."""

    def __iter__(self, random=False):
        ids, labels = [], []
        for is_end, (x, y) in self.sample(random):
            ids.append(x)
            labels.append(y)
            if len(ids) == self.batch_size or is_end:
                yield sequence_padding(ids), np.array(labels, "float32")
                ids, labels = [], []


def toy_data(n, rng):
    # label: whether the sequence holds token 1
    data = []
    for _ in range(n):
        x = rng.integers(1, 4, size=rng.integers(2, 6))
        data.append((x, float((x == 1).any())))
    return data


def test_data_generator_len_sample_and_iteration():
    gen = PairBatches(toy_data(10, np.random.default_rng(0)), batch_size=4)
    assert len(gen) == 3
    flags = [is_end for is_end, _ in gen.sample()]
    assert flags == [False] * 9 + [True]
    assert [len(y) for _, y in gen] == [4, 4, 2]
    np.random.seed(0)
    shuffled = [item[0].tolist() for _, item in gen.sample(random=True)]
    ordered = [item[0].tolist() for _, item in gen.sample()]
    assert shuffled != ordered and sorted(shuffled) == sorted(ordered)
    # forfit cycles epoch after epoch; fortest yields the inputs only.
    assert [len(y) for _, y in itertools.islice(gen.forfit(), 7)] == [4, 4, 2, 4, 4, 2, 4]
    x = next(gen.fortest())
    assert isinstance(x, np.ndarray) and x.shape[0] == 4
    with pytest.raises(NotImplementedError):
        iter(DataGenerator([1, 2]))


def test_data_generator_over_an_iterable_without_len():
    gen = PairBatches(iter(toy_data(10, np.random.default_rng(0))), batch_size=4, buffer_size=3)
    assert gen.steps is None
    with pytest.raises(TypeError, match="steps_per_epoch"):
        len(gen)
    data = list(range(50))
    gen = DataGenerator((i for i in data), batch_size=5, buffer_size=8)
    np.random.seed(1)
    items = [item for _, item in gen.sample(random=True)]
    assert sorted(items) == data and items != data
    assert list(DataGenerator([], batch_size=2).sample()) == []
    with pytest.raises(SnippetError, match="no batch"):
        next(PairBatches([], batch_size=2).forfit())
    with pytest.raises(SnippetError, match="batch_size"):
        DataGenerator([1], batch_size=0)


def test_to_pydataset_trains_a_model():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    gen = PairBatches(toy_data(96, rng), batch_size=16)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(4, 8)(inputs)
    x = keras.layers.GlobalMaxPooling1D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    dataset = gen.to_pydataset()
    assert isinstance(dataset, keras.utils.PyDataset) and dataset.num_batches == len(gen) == 6
    history = model.fit(dataset, epochs=15, verbose=0)
    assert len(history.history["loss"]) == 15
    assert history.history["accuracy"][-1] > 0.95
    valid = PairBatches(toy_data(32, rng), batch_size=16).to_pydataset(random=False, workers=2)
    assert model.evaluate(valid, verbose=0)[1] > 0.9


class BucketedBatches(DataGenerator):
    """PairBatches padded through DataGenerator.pad (the generator's buckets)."""

    def __iter__(self, random=False):
        ids, labels = [], []
        for is_end, (x, y) in self.sample(random):
            ids.append(x)
            labels.append(y)
            if len(ids) == self.batch_size or is_end:
                yield self.pad(ids), np.array(labels, "float32")
                ids, labels = [], []


@pytest.mark.parametrize("sized", [True, False])
@pytest.mark.parametrize("random", [False, True])
def test_remainder_keep_drop_fill(sized, random):
    data = list(range(10))
    for remainder, sizes in [("keep", [4, 4, 2]), ("drop", [4, 4]), ("fill", [4, 4, 4])]:
        source = data if sized else (i for i in data)
        gen = DataGenerator(source, batch_size=4, buffer_size=3, remainder=remainder)
        if sized:
            assert len(gen) == len(sizes)
        np.random.seed(3)
        sampled = list(gen.sample(random))
        items = [item for _, item in sampled]
        assert [is_end for is_end, _ in sampled] == [False] * (len(items) - 1) + [True]
        assert len(items) == sum(sizes)
        if remainder == "keep":
            assert sorted(items) == data
        elif remainder == "drop":  # 8 distinct items, 2 left out (random ones when shuffled)
            assert len(set(items)) == 8 and set(items) <= set(data)
        else:  # all 10, then the epoch's first 2 again
            assert sorted(items[:10]) == data and items[10:] == items[:2]
        if not random:
            assert items[:8] == data[:8]
    # Fewer items than a batch: "fill" cycles them, "drop" has no batch to give.
    assert [x for _, x in DataGenerator([7, 8, 9], 8, remainder="fill").sample()] == [
        7, 8, 9, 7, 8, 9, 7, 8,
    ]  # fmt: skip
    with pytest.raises(SnippetError, match="remainder='fill'"):
        DataGenerator([7, 8, 9], 8, remainder="drop")
    with pytest.raises(SnippetError, match="remainder='drop'"):
        next(PairBatches(iter(toy_data(3, np.random.default_rng(0))), 8, remainder="drop").forfit())
    with pytest.raises(SnippetError, match="remainder must be one of"):
        DataGenerator(data, 4, remainder="pad")


def test_generator_pad_uses_its_buckets_and_shapes_are_counted(caplog):
    data = [(np.arange(1, n + 1), 1.0) for n in range(1, 41)]  # lengths 1..40
    gen = BucketedBatches(data, batch_size=4, buckets=[8, 32, 16], remainder="fill")
    assert gen.buckets == [8, 16, 32]
    widths = [x.shape[1] for x, _ in gen]
    assert widths == [8, 8, 16, 16, 32, 32, 32, 32, 32, 32]  # 37..40 truncated to 32
    assert len(gen.shapes) == 0  # plain iteration is not recorded; forfit is
    with caplog.at_level("INFO", logger="kerasbert.snippets"):
        batches = list(itertools.islice(gen.forfit(random=False), 3 * len(gen)))
    assert len(batches) == 30
    assert set(gen.shapes.counts) == {((4, 8), (4,)), ((4, 16), (4,)), ((4, 32), (4,))}
    assert sum(gen.shapes.counts.values()) == 30
    logged = [r.getMessage() for r in caplog.records if "new batch shape" in r.getMessage()]
    assert len(logged) == 3 and all("BucketedBatches" in m for m in logged)
    unbucketed = BucketedBatches(data, batch_size=4)
    assert len({x.shape for x, _ in unbucketed}) == 10  # one shape per batch


def _tiny_classifier():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(50, 8)(inputs)
    x = keras.layers.GlobalMaxPooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
    return model


def test_buckets_and_remainder_bound_the_train_step_compilations():
    rng = np.random.default_rng(0)
    lengths = [3, 9, 2, 13, 5, 6, 7, 1, 40, 12, 11, 35, 8, 4, 10, 45, 2, 3, 50, 20]
    data = [(rng.integers(1, 50, n), float(n % 2)) for n in lengths]
    batches = [lengths[i : i + 8] for i in (0, 8, 16)]  # in order: 8 + 8 + 4 items
    expected = {
        # padded to buckets, the last batch filled to 8 rows
        "bounded": {(8, bucket_length(max(b), [16, 64])) for b in batches},
        # padded to the longest, the last batch smaller
        "unbounded": {(len(b), max(b)) for b in batches},
    }
    assert len(expected["bounded"]) == 2 and len(expected["unbounded"]) == 3
    for name, kwargs in [("bounded", {"buckets": [16, 64], "remainder": "fill"}),
                         ("unbounded", {})]:  # fmt: skip
        gen = BucketedBatches(data, batch_size=8, **kwargs)
        model = _tiny_classifier()
        with snippets.CompilationCounter("train_step") as counter:
            model.fit(gen.to_pydataset(random=False), epochs=2, verbose=0)
        assert {x for x, _ in gen.shapes.counts} == expected[name]
        assert sum(gen.shapes.counts.values()) >= 6  # 3 batches, 2 epochs (Keras reads ahead)
        assert counter.count == len(expected[name])  # one compilation per shape, no more


def test_pad_batch_repeats_the_first_row_and_outputs_can_be_dropped():
    inputs = [np.array([[1, 2, 0], [3, 0, 0]]), np.array([[0, 0, 0], [0, 1, 1]])]
    padded = snippets.pad_batch(inputs, 4)
    assert [x.shape for x in padded] == [(4, 3), (4, 3)]
    np.testing.assert_array_equal(padded[0][2:], [[1, 2, 0], [1, 2, 0]])
    np.testing.assert_array_equal(padded[1][:2], inputs[1])
    assert snippets.pad_batch({"a": np.ones((4, 2)), "b": None}, 3)["a"].shape == (4, 2)
    with pytest.raises(SnippetError, match="at least one row"):
        snippets.pad_batch(np.zeros((0, 3)), 4)
    model = _tiny_classifier()
    full = model.predict_on_batch(snippets.pad_batch(inputs[0], 8))
    np.testing.assert_allclose(full[:2], model.predict_on_batch(inputs[0]), atol=1e-6)


def test_compilation_counter_counts_compilations_not_calls(caplog):
    import jax

    def scaled_sum(x):
        return 3 * x.sum()

    function = jax.jit(scaled_sum)
    counter = snippets.CompilationCounter("scaled_sum", log=True)
    with caplog.at_level("INFO", logger="kerasbert.snippets"), counter:
        for n in (3, 4, 3, 4, 5):
            function(np.ones(n))
        with counter:  # re-entered: still one listener
            function(np.ones(6))
    assert counter.count == 4 and counter.names == ["jit(scaled_sum)"] * 4
    assert sum("jit(scaled_sum)" in r.getMessage() for r in caplog.records) == 4
    function(np.ones(7))  # outside the context: not counted
    assert counter.count == 4


# -- ViterbiDecoder -------------------------------------------------------------------------------


def brute_force_path(nodes, trans, starts=None, ends=None):
    best, best_score = None, -np.inf
    for path in itertools.product(range(len(trans)), repeat=len(nodes)):
        if (starts is not None and path[0] not in starts) or (
            ends is not None and path[-1] not in ends
        ):
            continue
        score = sum(nodes[t, y] for t, y in enumerate(path))
        score += sum(trans[a, b] for a, b in zip(path[:-1], path[1:]))
        if score > best_score:
            best, best_score = list(path), score
    return best


def test_viterbi_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(60):
        num_labels, length = rng.integers(1, 5), rng.integers(1, 6)
        trans = rng.normal(size=(num_labels, num_labels))
        nodes = rng.normal(size=(length, num_labels))
        starts = ends = None
        if rng.random() < 0.5:
            starts = rng.choice(num_labels, size=rng.integers(1, num_labels + 1), replace=False)
            ends = rng.choice(num_labels, size=rng.integers(1, num_labels + 1), replace=False)
            starts, ends = starts.tolist(), ends.tolist()
        best = brute_force_path(nodes, trans, starts, ends)
        if best is None:  # no label both starts and ends a one-position path
            continue
        before = nodes.copy()
        path = ViterbiDecoder(trans, starts, ends).decode(nodes)
        np.testing.assert_array_equal(nodes, before)  # left unmodified
        assert path.tolist() == best
    assert ViterbiDecoder(np.zeros((2, 2))).decode(np.zeros((0, 2))).tolist() == []
    with pytest.raises(SnippetError, match="square"):
        ViterbiDecoder(np.zeros((2, 3)))
    with pytest.raises(SnippetError, match="nodes"):
        ViterbiDecoder(np.zeros((2, 2))).decode(np.zeros((3, 3)))


def test_viterbi_path_is_the_crf_layers_most_likely_path():
    rng = np.random.default_rng(1)
    crf = ConditionalRandomField()
    crf.build((None, None, 3))
    crf.set_weights([rng.normal(size=(3, 3)) * 2])
    nodes = rng.normal(size=(5, 3)).astype("float32")
    paths = np.array(list(itertools.product(range(3), repeat=5)))
    # The CRF's NLL of every path: the most likely one has the smallest.
    losses = keras.ops.convert_to_numpy(
        crf.sparse_loss(paths, np.repeat(nodes[None], len(paths), 0))
    )
    decoded = ViterbiDecoder(keras.ops.convert_to_numpy(crf.trans)).decode(nodes)
    np.testing.assert_array_equal(decoded, paths[losses.argmin()])


# -- AutoRegressiveDecoder ------------------------------------------------------------------------

END = 2
# A Markov chain over ids {0, 1, END}, starting from nothing (start_id=None).
FIRST = np.array([0.6, 0.4, 0.0])
NEXT = np.array(
    [
        [0.34, 0.33, 0.33],  # after 0: spread out
        [0.05, 0.05, 0.90],  # after 1: almost surely the end
        [1 / 3, 1 / 3, 1 / 3],
    ]
)


class MarkovDecoder(AutoRegressiveDecoder):
    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        assert len(inputs[0]) == len(output_ids)
        if output_ids.shape[1] == 0:
            return np.repeat(FIRST[None], len(output_ids), 0)
        return NEXT[output_ids[:, -1]]


def sequence_log_prob(ids):
    probas = [FIRST[ids[0]]] + [NEXT[a, b] for a, b in zip(ids[:-1], ids[1:])]
    return float(np.sum(np.log(np.array(probas) + 1e-12)))


def best_by_brute_force(maxlen):
    """The most likely output: ended at its first END, or unended at maxlen."""
    candidates = []
    for length in range(1, maxlen + 1):
        for ids in itertools.product(range(3), repeat=length):
            ended = ids[-1] == END and END not in ids[:-1]
            if ended or (length == maxlen and END not in ids):
                candidates.append(list(ids))
    return max(candidates, key=sequence_log_prob)


def test_beam_search_finds_the_best_sequence_greedy_misses():
    decoder = MarkovDecoder(start_id=None, end_id=END, maxlen=4)
    best = best_by_brute_force(4)
    assert best == [1, END]
    greedy = decoder.beam_search([np.zeros(2)], topk=1).tolist()
    assert greedy[0] == 0 and greedy != best
    assert decoder.beam_search([np.zeros(2)], topk=2).tolist() == best
    assert decoder.beam_search([np.zeros(2)], topk=5).tolist() == best
    # random_sample with topk=1 is greedy decoding.
    samples = decoder.random_sample([np.zeros(2)], 3, topk=1, rng=np.random.default_rng(0))
    assert [s.tolist() for s in samples] == [greedy] * 3


def test_beam_search_min_ends_minlen_and_start_id():
    decoder = MarkovDecoder(start_id=None, end_id=END, maxlen=6)
    out = decoder.beam_search([np.zeros(1)], topk=3, min_ends=2)
    assert (out == END).sum() == 2 and out[-1] == END
    decoder = MarkovDecoder(start_id=None, end_id=END, maxlen=6, minlen=3)
    assert len(decoder.beam_search([np.zeros(1)], topk=3)) >= 3
    # maxlen reached without an end: the best unended candidate.
    decoder = MarkovDecoder(start_id=None, end_id=END, maxlen=1)
    assert decoder.beam_search([np.zeros(1)], topk=2).tolist() == [0]


def test_random_sample_topk_topp_and_temperature():
    decoder = MarkovDecoder(start_id=None, end_id=END, maxlen=1)
    rng = np.random.default_rng(0)

    def first_ids(**kwargs):
        samples = decoder.random_sample([np.zeros(1)], 4000, rng=rng, **kwargs)
        assert len(samples) == 4000
        return np.bincount([s[0] for s in samples], minlength=3) / 4000

    freq = first_ids()
    np.testing.assert_allclose(freq, FIRST, atol=0.03)
    # topp: the most likely id alone reaches 0.5.
    np.testing.assert_array_equal(first_ids(topp=0.5), [1, 0, 0])
    np.testing.assert_allclose(first_ids(topk=2), [0.6, 0.4, 0], atol=0.03)
    # A low temperature sharpens: p ** (1 / 0.5) renormalized.
    sharp = FIRST**2 / (FIRST**2).sum()
    np.testing.assert_allclose(first_ids(temperature=0.5), sharp, atol=0.03)

    decoder = MarkovDecoder(start_id=None, end_id=END, maxlen=3)
    # After 0, topp=0.6 keeps the two most likely of (0.34, 0.33, 0.33): 0 and one other.
    samples = decoder.random_sample([np.zeros(1)], 300, topk=1, topp=0.6, rng=rng)
    assert all(s.tolist() == [0, 0, 0] for s in samples)
    samples = decoder.random_sample([np.zeros(1)], 300, rng=rng)
    # Ended samples come first and every sample stops at its first END.
    ended = [END in s for s in samples]
    assert ended == sorted(ended, reverse=True)
    assert all(END not in s[:-1] for s in samples)


def test_wraps_converts_logits_and_checks_rtype():
    class LogitDecoder(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="logits")
        def predict(self, inputs, output_ids, states):
            return np.log(np.array([[0.2, 0.8]]))

    decoder = LogitDecoder(start_id=0, end_id=1, maxlen=3)
    probas, states = decoder.predict([], decoder.first_output_ids, None, rtype="probas")
    np.testing.assert_allclose(probas, [[0.2, 0.8]])
    assert states is None
    # rtype defaults to default_rtype: log-probabilities here.
    logits, _ = decoder.predict([], decoder.first_output_ids, None)
    np.testing.assert_allclose(logits, np.log([[0.2, 0.8]]), atol=1e-9)
    hot, _ = decoder.predict([], decoder.first_output_ids, None, 2.0, "probas")
    np.testing.assert_allclose(hot, softmax(np.log([[0.2, 0.8]]) / 2))
    with pytest.raises(SnippetError, match="rtype"):
        decoder.predict([], decoder.first_output_ids, None, 1, "scores")
    with pytest.raises(SnippetError, match="default_rtype"):
        AutoRegressiveDecoder.wraps(default_rtype="scores")
    with pytest.raises(SnippetError, match="list of arrays"):
        decoder.beam_search(np.zeros(3), topk=2)
    assert decoder.beam_search([], topk=2).tolist() == [0, 1]


# A toy recurrent language model: the context vector sets the initial state, each id updates
# it; the uncached decoder reruns the whole prefix every step, the cached one only the new id.
RNG = np.random.default_rng(42)
VOCAB, HIDDEN, RNN_END = 7, 8, 6
W = RNG.normal(size=(HIDDEN, HIDDEN)) * 0.8
EMBED = RNG.normal(size=(VOCAB, HIDDEN))
OUT = RNG.normal(size=(HIDDEN, VOCAB))
BIAS = np.array([0, 0, 0, 0, 0, 0, -2.0])  # ends are rare: beams live long and reorder


def rnn_step(h, ids):
    return np.tanh(np.einsum("rh,hk->rk", h, W) + EMBED[ids])


def rnn_logits(h):
    return np.einsum("rh,hv->rv", h, OUT) + BIAS


class Uncached(AutoRegressiveDecoder):
    @AutoRegressiveDecoder.wraps(default_rtype="logits")
    def predict(self, inputs, output_ids, states):
        h = np.tanh(inputs[0])
        for t in range(output_ids.shape[1]):
            h = rnn_step(h, output_ids[:, t])
        return rnn_logits(h)


class Cached(AutoRegressiveDecoder):
    tokens_processed = 0

    @AutoRegressiveDecoder.wraps(default_rtype="logits", use_states=True)
    def predict(self, inputs, output_ids, states):
        if states is None:  # first step: the whole (start) prefix
            h = np.tanh(inputs[0])
            for t in range(output_ids.shape[1]):
                h = rnn_step(h, output_ids[:, t])
                self.tokens_processed += len(h)
        else:  # afterwards: only the newest id, from the state kept for this row
            assert len(states["h"]) == len(output_ids)
            h = rnn_step(states["h"], output_ids[:, -1])
            self.tokens_processed += len(h)
        return rnn_logits(h), {"h": h, "not_per_row": "kept as is"}


def test_cached_decoding_equals_uncached():
    maxlen = 10
    for seed in range(4):
        context = [np.random.default_rng(seed).normal(size=HIDDEN)]
        uncached = Uncached(start_id=0, end_id=RNN_END, maxlen=maxlen)
        cached = Cached(start_id=0, end_id=RNN_END, maxlen=maxlen)
        for topk in (1, 4):
            a = uncached.beam_search(context, topk=topk)
            b = cached.beam_search(context, topk=topk)
            np.testing.assert_array_equal(a, b)
        for kwargs in ({}, {"topk": 3}, {"topp": 0.8}, {"temperature": 1.5, "min_ends": 2}):
            a = uncached.random_sample(context, 6, rng=np.random.default_rng(seed), **kwargs)
            b = cached.random_sample(context, 6, rng=np.random.default_rng(seed), **kwargs)
            assert [x.tolist() for x in a] == [x.tolist() for x in b]
    # Each step fed the cached model one id per candidate, not the prefix.
    cached = Cached(start_id=0, end_id=RNN_END, maxlen=maxlen)
    out = cached.beam_search(context, topk=1)
    assert cached.tokens_processed == len(out) - 1


def test_states_follow_rows():
    rows = np.array([2, 0, 0])
    states = {"a": np.arange(3), "b": (np.arange(6).reshape(3, 2), 5), "c": np.zeros(4)}
    out = snippets._select_rows(states, rows, 3)
    np.testing.assert_array_equal(out["a"], [2, 0, 0])
    np.testing.assert_array_equal(out["b"][0], [[4, 5], [0, 1], [0, 1]])
    assert out["b"][1] == 5 and out["c"].shape == (4,)
    assert snippets._select_rows(None, rows, 3) is None


def test_last_token_model():
    inputs = keras.Input((None,), dtype="int32")
    outputs = keras.layers.Embedding(5, 3)(inputs)
    model = keras.Model(inputs, outputs)
    decoder = AutoRegressiveDecoder(start_id=0, end_id=1, maxlen=2)
    last = decoder.last_token(model)
    assert decoder.last_token(model) is last
    ids = np.array([[1, 2, 4]])
    np.testing.assert_allclose(last.predict(ids, verbose=0), model.predict(ids, verbose=0)[:, -1])
