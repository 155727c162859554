"""The generative bert4keras-style scripts (UniLM seq2seq, MLM reading comprehension,
conditional and plain language models) run end to end on tiny checkpoints.

Each run must train (a finite loss that falls over its epochs) and save its best weights;
then the script's own generator is called: every generated id is an id of the script's
(simplified) vocabulary and not [PAD], [UNK] or [CLS], the decoding is a string, and a
decoder built on ``last_token`` compiled a handful of programs for all its steps (the
bucketed path), not one per step.

The tiny random models learn nothing useful in a few steps except that [SEP], the one token
every target has, is the likeliest; most outputs then end at once. So each test also
generates with [SEP]'s output bias lowered (:func:`end_made_unlikely`), which makes the
decoders run their full length (or, in the extractive readers, until the passage's n-grams
allow nothing else) over real tokens. The tests check that outputs are well formed, not
what they say.

Sizes: 2-layer, 16-wide models; sequences truncated to fixed lengths (the sample data are
longer), so that ``fit`` compiles one train step; each test runs in 10-25 s on 2 cores.
"""

import contextlib
import re

import numpy as np
from bert4keras_harness import DATA, assert_trains, run_script

from kerasbert.compilation import CompilationCounter

# Programs the bucketed last_token path may compile for all of a script's decoding (its
# Evaluator's samples after every epoch and the test's, up to hundreds of steps): one per
# padded row count (1, 2, 4, 8: the beams or samples, fewer as they end) and bucket length
# reached, never one per step.
MAX_COMPILATIONS = 6


def assert_real_tokens(tokenizer, ids):
    """``ids`` are ids of ``tokenizer``'s vocabulary, none of them [PAD], [UNK] or [CLS]."""
    ids = [int(i) for i in np.asarray(ids).reshape(-1)]
    special = {tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]")}
    assert all(0 <= i < tokenizer._vocab_size for i in ids), ids
    assert not special & set(ids), ids
    assert isinstance(tokenizer.decode(ids), str)


def body(tokenizer, ids):
    """The ids before the first [SEP]."""
    ids = [int(i) for i in ids]
    end = tokenizer._token_end_id
    return ids[: ids.index(end)] if end in ids else ids


def assert_few_compilations(decoder, model):
    compilations = decoder.last_token(model).num_compilations
    assert 1 <= compilations <= MAX_COMPILATIONS, compilations


@contextlib.contextmanager
def end_made_unlikely(model, tokenizer):
    """[SEP]'s MLM output bias lowered by 20 (restored afterwards)."""
    bias = model.get_layer("MLM-Bias").weights[0]
    saved = np.array(bias.numpy())
    lowered = saved.copy()
    lowered[tokenizer._token_end_id] -= 20.0
    bias.assign(lowered)
    try:
        yield
    finally:
        bias.assign(saved)


def is_span(ids, sequences):
    """``ids`` is a contiguous piece of one of ``sequences``."""
    n = len(ids)
    return any(list(s[i : i + n]) == list(ids) for s in sequences for i in range(len(s) - n + 1))


def test_seq2seq_autotitle(bert4keras_models, monkeypatch, tmp_path):
    maxlen, title_maxlen = 48, 8
    namespace, losses = run_script(
        "task_seq2seq_autotitle.py", monkeypatch, tmp_path, MODEL_DIR=bert4keras_models["bert"],
        DATA_DIR=DATA / "autotitle", EPOCHS=3, BATCH_SIZE=8, STEPS_PER_EPOCH=6,
        LEARNING_RATE=5e-3, MAXLEN=maxlen, TITLE_MAXLEN=title_maxlen,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    autotitle, tokenizer, model = (namespace[k] for k in ("autotitle", "tokenizer", "model"))
    contents = [content for _, content in namespace["valid_data"][:3]]
    for content in contents:
        assert isinstance(autotitle.generate(content, topk=2), str)
    with end_made_unlikely(model, tokenizer):
        for content in contents:
            token_ids, segment_ids = tokenizer.encode(content, maxlen=maxlen - title_maxlen)
            ids = autotitle.beam_search([token_ids, segment_ids], topk=2)
            assert len(ids) == title_maxlen
            assert_real_tokens(tokenizer, ids)
            samples = autotitle.random_sample([token_ids, segment_ids], 2, topk=5)
            assert [len(s) for s in samples] == [title_maxlen] * 2
            for ids in samples:
                assert_real_tokens(tokenizer, ids)
    # the Evaluator's titles after each epoch included: the programs are per bucket length
    # and padded row count, whatever the weights
    assert_few_compilations(autotitle, model)


def reader_inputs(tokenizer, question, passages, max_p_len, max_q_len):
    """What ``ReadingComprehension.answer`` encodes, and the passages' token ids."""
    token_ids, passage_ids = [], []
    for passage in passages:
        passage = re.sub(" |、|；|，", ",", passage)
        p_token_ids = tokenizer.encode(passage, maxlen=max_p_len)[0]
        q_token_ids = tokenizer.encode(question, maxlen=max_q_len + 1)[0]
        token_ids.append(p_token_ids + q_token_ids[1:])
        passage_ids.append(p_token_ids[1:-1])
    return token_ids, passage_ids


def test_reading_comprehension_by_seq2seq(bert4keras_models, monkeypatch, tmp_path):
    max_p_len, max_q_len, max_a_len = 48, 6, 4
    namespace, losses = run_script(
        "task_reading_comprehension_by_seq2seq.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=DATA / "squad", EPOCHS=3, BATCH_SIZE=11,
        LEARNING_RATE=2e-3, MAX_P_LEN=max_p_len, MAX_Q_LEN=max_q_len, MAX_A_LEN=max_a_len,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    reader, tokenizer, model = (namespace[k] for k in ("reader", "tokenizer", "model"))
    first, second = namespace["valid_data"][:2]
    questions = [
        (first["question"], [first["passages"][0]["passage"]], 2),
        # two passages at once (the second holds no answer), one beam each
        (first["question"], [first["passages"][0]["passage"], second["passages"][0]["passage"]], 1),
    ]  # fmt: skip
    # The script's decoder calls model.predict on the whole padded prefix at every step, as
    # bert4keras's does: each new prefix length compiles a predict program.
    with CompilationCounter("predict_step") as counter:
        for question, passages, topk in questions:
            assert isinstance(reader.answer(question, passages, topk), str)
        with end_made_unlikely(model, tokenizer):
            for question, passages, topk in questions:
                token_ids, passage_ids = reader_inputs(
                    tokenizer, question, passages, max_p_len, max_q_len
                )
                ids = reader.beam_search(token_ids, topk=topk, states=0)
                assert_real_tokens(tokenizer, ids)
                answer = body(tokenizer, ids)
                # extractive: the answer is a piece of a passage
                assert 1 <= len(answer) <= max_a_len and is_span(answer, passage_ids), ids
    assert counter.count <= 2 * max_a_len + 2, counter.names


def test_reading_comprehension_by_mlm(bert4keras_models, monkeypatch, tmp_path):
    max_p_len, max_q_len, max_a_len = 48, 5, 6
    namespace, losses = run_script(
        "task_reading_comprehension_by_mlm.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=DATA / "squad", EPOCHS=3, BATCH_SIZE=11,
        LEARNING_RATE=5e-3, MAX_P_LEN=max_p_len, MAX_Q_LEN=max_q_len, MAX_A_LEN=max_a_len,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    gen_answer, tokenizer, model = (namespace[k] for k in ("gen_answer", "tokenizer", "model"))
    questions = [
        (d["question"], [p["passage"] for p in d["passages"]])
        for d in namespace["valid_data"][:3]
    ]  # fmt: skip
    first, second = namespace["valid_data"][:2]
    questions.append((first["question"], [first["passages"][0]["passage"],
                                          second["passages"][0]["passage"]]))  # fmt: skip
    for question, passages in questions:
        answers = gen_answer(question, passages)
        assert all(isinstance(a, str) and a for a in answers), answers
    with end_made_unlikely(model, tokenizer):
        for question, passages in questions:
            answers = gen_answer(question, passages)
            assert answers and all(np.isfinite(s) for s in answers.values()), answers
            best = namespace["max_in_dict"](answers)
            assert best in answers
            passage_ids = [
                tokenizer.encode(re.sub(" |、|；|，", ",", p), maxlen=max_p_len + 1)[0][1:-1]
                for p in passages
            ]  # fmt: skip
            for answer in answers:
                ids = tokenizer.encode(answer)[0][1:-1]
                assert_real_tokens(tokenizer, ids)
                assert 1 <= len(ids) <= max_a_len and is_span(ids, passage_ids), answer


def assert_sampled(tokenizer, ids, start_id, length):
    """A sample that starts with the decoder's ``start_id`` and ran ``length`` steps."""
    assert int(ids[0]) == start_id and len(ids) == 1 + length, ids
    assert_real_tokens(tokenizer, ids[1:])


def test_conditional_language_model(bert4keras_models, monkeypatch, tmp_path):
    # 268 sentences of at most 20 tokens, 16% of them 20 long: 4 batches of 67, each
    # (almost surely) padded to 20; samples of [CLS] and 15 ids fit one bucket length (16)
    gen_maxlen = 15
    namespace, losses = run_script(
        "task_conditional_language_model.py", monkeypatch, tmp_path,
        MODEL_DIR=bert4keras_models["bert"], DATA_DIR=DATA / "sentiment", EPOCHS=3,
        BATCH_SIZE=67, LEARNING_RATE=5e-3, MAXLEN=20, GEN_MAXLEN=gen_maxlen,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    decoder, tokenizer, model = (namespace[k] for k in ("random_sentiment", "tokenizer", "model"))
    for label in (0, 1):
        texts = decoder.generate(label, 2)
        assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    with end_made_unlikely(model, tokenizer):
        for label in (0, 1):
            samples = decoder.random_sample([[label]], 3, topk=5)
            assert len(samples) == 3
            for ids in samples:
                assert_sampled(tokenizer, ids, tokenizer._token_start_id, gen_maxlen)
    assert_few_compilations(decoder, model)


def test_language_model(bert4keras_models, monkeypatch, tmp_path):
    # the corpus packs into fewer than 64 passages: one batch, one shape, per step; the
    # openings (the script's and this one) have 17 to 20 tokens, which with 5 more fit one
    # bucket length (24)
    gen_maxlen = 5
    namespace, losses = run_script(
        "task_language_model.py", monkeypatch, tmp_path, MODEL_DIR=bert4keras_models["bert"],
        DATA_DIR=DATA / "lm", EPOCHS=3, BATCH_SIZE=64, STEPS_PER_EPOCH=3, LEARNING_RATE=5e-3,
        MAXLEN=40, GEN_MAXLEN=gen_maxlen,
    )  # fmt: skip
    assert_trains(losses)
    assert (tmp_path / "best_model.weights.h5").is_file()
    assert len(namespace["data"]) < 64
    decoder, tokenizer, model = (namespace[k] for k in ("story_completion", "tokenizer", "model"))
    opening = "傍晚的集市上人来人往，热闹非凡。"
    texts = decoder.generate(opening, n=2)
    assert len(texts) == 2 and all(t.startswith(opening) for t in texts), texts
    with end_made_unlikely(model, tokenizer):
        token_ids = tokenizer.encode(opening)[0][:-1]
        samples = decoder.random_sample([token_ids], 2, topk=5)
        assert [len(ids) for ids in samples] == [gen_maxlen] * 2
        for ids in samples:
            assert_real_tokens(tokenizer, ids)
    assert_few_compilations(decoder, model)
