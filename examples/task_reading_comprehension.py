"""Extractive reading comprehension (span extraction) on SQuAD-format Chinese data.

Task: given a question and a paragraph, point at the span of the paragraph that answers it,
as in CMRC 2018 or DuReader-robust (both distributed in SQuAD's JSON format). Scored with
exact match (EM) and character-level F1 as CMRC 2018's evaluation computes them (Chinese
characters count one by one, runs of Latin letters and digits as one unit, punctuation and
spaces are ignored, F1 from the longest common subsequence), each the best over the gold
answers and averaged over the questions, in percent.

Data format (``examples/data/squad/{train,dev}.json``)::

    {"data": [{"paragraphs": [{"context": "...",
        "qas": [{"id": "...", "question": "...",
                 "answers": [{"text": "...", "answer_start": 12}]}]}]}]}

``answer_start`` is the character offset of the answer in ``context``.

Model: encoder (BERT / ALBERT / NEZHA) over ``[CLS] question [SEP] context [SEP]`` ->
``Dense(2)`` start and end logits per token, masked so that only context tokens (and
``[CLS]``, the target of windows that do not hold the answer) can be chosen -> softmax
cross-entropy over positions for the start and the end.

Long contexts: the context is tokenized once and ``Tokenizer.rematch`` maps every token to
its characters; the tokens are cut into windows of ``maxlen - len(question) - 3`` tokens,
each starting ``--stride`` tokens after the previous one, so neighbouring windows overlap.
A training window whose tokens hold the whole answer is labelled with its token span, any
other with ``[CLS]``. At prediction time every window scores its spans
``start_logit + end_logit`` (start <= end, at most ``--max-answer-len`` tokens); the best
span over all windows of the question is mapped back to characters of the original context,
so every predicted answer is a substring of its context.

Run::

    # a real model (downloaded once into ~/.cache/kerasbert)
    python examples/task_reading_comprehension.py --pretrained hfl-chinese-roberta-wwm-ext
    # any checkpoint in any supported format
    python examples/task_reading_comprehension.py \\
        --config chinese_L-12_H-768_A-12/bert_config.json \\
        --checkpoint chinese_L-12_H-768_A-12/bert_model.ckpt \\
        --vocab chinese_L-12_H-768_A-12/vocab.txt
    # smoke test: a tiny random model, maxlen 64 (so contexts take several windows)
    python examples/task_reading_comprehension.py --tiny

Point ``--train`` / ``--dev`` at CMRC 2018 or DuReader-robust files for a real run.
``main(argv)`` returns a dict with the per-epoch training losses, EM / F1 on dev, the dev
predictions and how many windows each dev question used.
"""

import json
import time
import unicodedata

import numpy as np
from common import DATA, add_model_args, load_model_and_tokenizer, new_parser

# kerasbert's keras: importing kerasbert first selects the JAX backend when none is set.
from kerasbert.backend import K, keras
from kerasbert.optimizers import AdamW, PiecewiseLinearSchedule
from kerasbert.snippets import (
    DataGenerator,
    longest_common_subsequence,
    make_buckets,
    pad_batch,
    sequence_padding,
)

# -- data -----------------------------------------------------------------------------------------


def load_data(path):
    """Questions of a SQuAD-format file: a list of dicts ``id, question, context, answers``.

    ``answers`` is a list of ``(text, answer_start)``.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    examples = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [(a["text"], a["answer_start"]) for a in qa.get("answers", [])]
                examples.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "context": paragraph["context"],
                        "answers": answers,
                    }
                )
    return examples


def split_windows(num_tokens, window, stride):
    """``(start, end)`` token ranges covering ``range(num_tokens)`` with a sliding window.

    Each window holds at most ``window`` tokens and starts ``stride`` tokens after the
    previous one; the last one ends at ``num_tokens``.

    >>> split_windows(10, 4, 3)
    [(0, 4), (3, 7), (6, 10)]
    >>> split_windows(3, 4, 3)
    [(0, 3)]
    """
    stride = max(1, min(stride, window))
    windows, start = [], 0
    while True:
        end = min(start + window, num_tokens)
        windows.append((start, end))
        if end >= num_tokens:
            return windows
        start += stride


class Features:
    """The windows of one question: model inputs, labels and token -> character maps.

    Attributes (lists with one entry per window): ``token_ids``, ``segment_ids``,
    ``labels`` (``(start, end)`` token positions in the window, ``(0, 0)`` when the window
    does not hold the answer), ``mapping`` (per token of the window's input, the context
    characters it covers; ``[]`` for the question, special tokens and ``[UNK]``).
    """

    def __init__(self, tokenizer, example, maxlen, stride, max_question_len, context_cache):
        self.example = example
        context = example["context"]
        if context not in context_cache:
            tokens = tokenizer.tokenize(context)[1:-1]
            context_cache[context] = (tokens, tokenizer.rematch(context, tokens))
        context_tokens, context_mapping = context_cache[context]
        question_tokens = tokenizer.tokenize(example["question"])[1:-1][:max_question_len]
        self.context_tokens = len(context_tokens)
        self.window_tokens = maxlen - len(question_tokens) - 3
        if self.window_tokens < 1:
            raise SystemExit(f"--maxlen {maxlen} leaves no room for the context")

        answer_span = None
        if example["answers"]:
            text, start = example["answers"][0]
            if context[start : start + len(text)] != text and text in context:
                start = context.index(text)  # an answer_start that is off (it happens)
            answer_span = char_span_to_tokens(context_mapping, start, start + len(text) - 1)

        prefix = ["[CLS]", *question_tokens, "[SEP]"]
        offset = len(prefix)
        self.token_ids, self.segment_ids, self.labels, self.mapping = [], [], [], []
        for start, end in split_windows(len(context_tokens), self.window_tokens, stride):
            tokens = prefix + context_tokens[start:end] + ["[SEP]"]
            self.token_ids.append(tokenizer.tokens_to_ids(tokens))
            self.segment_ids.append([0] * offset + [1] * (end - start + 1))
            self.mapping.append([[]] * offset + context_mapping[start:end] + [[]])
            label = (0, 0)
            if answer_span is not None and start <= answer_span[0] <= answer_span[1] < end:
                label = (answer_span[0] - start + offset, answer_span[1] - start + offset)
            self.labels.append(label)

    def __len__(self):
        return len(self.token_ids)


def char_span_to_tokens(mapping, start, end):
    """The token span ``(first, last)`` covering characters ``start..end`` (inclusive).

    None when no token covers them (e.g. the answer is whitespace only).
    """
    covering = [i for i, chars in enumerate(mapping) if chars and chars[-1] >= start]
    covering = [i for i in covering if mapping[i][0] <= end]
    if not covering:
        return None
    return covering[0], covering[-1]


class WindowGenerator(DataGenerator):
    """Batches ``([token_ids, segment_ids], labels)`` of windows, padded to bucket lengths.

    Every batch has ``batch_size`` windows: an epoch's incomplete last batch is completed
    with windows from the start of the epoch (``remainder="fill"``), so training compiles
    one step per bucket and no extra one for a smaller batch.
    """

    def __init__(self, windows, batch_size, buckets):
        super().__init__(windows, batch_size, buckets=buckets, remainder="fill")

    def __iter__(self, random=False):
        batch = []
        for is_end, window in self.sample(random):
            batch.append(window)
            if len(batch) == self.batch_size or is_end:
                inputs = pad_inputs([w[0] for w in batch], [w[1] for w in batch], self.buckets)
                yield inputs, np.array([w[2] for w in batch], "int32")
                batch = []


def pad_inputs(token_ids, segment_ids, buckets):
    return [
        sequence_padding(token_ids, buckets=buckets),
        sequence_padding(segment_ids, buckets=buckets),
    ]


# -- model ----------------------------------------------------------------------------------------


class ContextSpanLogits(keras.layers.Layer):
    """Start / end logits ``(batch, 2, seq)``, pushed to -1e4 outside the context.

    Allowed positions are the context tokens (segment 1, neither ``[SEP]`` nor padding)
    and position 0 (``[CLS]``: "the answer is not in this window").

    Args:
        sep_id: the id of ``[SEP]``.
    """

    def __init__(self, sep_id, **kwargs):
        super().__init__(**kwargs)
        self.sep_id = sep_id
        self.supports_masking = True  # consumes the padding mask (the output carries none)

    def call(self, inputs, mask=None):
        logits, token_ids, segment_ids = inputs
        context = K.logical_and(
            K.equal(segment_ids, 1),
            K.logical_and(K.not_equal(token_ids, self.sep_id), K.not_equal(token_ids, 0)),
        )
        first = K.expand_dims(K.equal(K.arange(K.shape(token_ids)[1]), 0), 0)
        allowed = K.expand_dims(K.logical_or(context, first), -1)
        logits = K.where(allowed, logits, K.cast(-1e4, logits.dtype))
        return K.transpose(logits, (0, 2, 1))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shapes):
        batch, length, _ = input_shapes[0]
        return (batch, 2, length)

    def get_config(self):
        return {**super().get_config(), "sep_id": self.sep_id}


def build_model(args, encoder, tokenizer, total_steps):
    """The compiled model: encoder -> Dense(2) -> context-masked start/end logits."""
    logits = keras.layers.Dense(2, name="Span-Dense")(encoder.output)
    sep_id = tokenizer.token_to_id("[SEP]")
    output = ContextSpanLogits(sep_id, name="Span-Logits")([logits, *encoder.inputs])
    model = keras.Model(encoder.inputs, output, name="span_extraction")
    # Linear warmup over the first 10% of the steps, then linear decay to 0.
    warmup = max(1, total_steps // 10)
    schedule = PiecewiseLinearSchedule({warmup: 1.0, max(total_steps, warmup + 1): 0.0}, args.lr)
    model.compile(
        optimizer=AdamW(learning_rate=schedule, weight_decay=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def predict_answers(model, features, buckets, batch_size, max_answer_len):
    """The best answer of each question over all its windows.

    Returns:
        A list (one per question) of dicts ``text, start, score, window``: ``text`` is
        ``context[start:start + len(text)]``.
    """
    windows = [(k, f, w) for k, f in enumerate(features) for w in range(len(f))]
    logits = []
    for i in range(0, len(windows), batch_size):
        batch = windows[i : i + batch_size]
        inputs = pad_inputs(
            [f.token_ids[w] for _, f, w in batch], [f.segment_ids[w] for _, f, w in batch], buckets
        )
        # A last, smaller batch gets repeated rows (their logits are dropped): no new shape.
        outputs = model.predict_on_batch(pad_batch(inputs, batch_size))
        logits.extend(K.convert_to_numpy(outputs)[: len(batch)])

    best = {}
    for (k, feature, w), window_logits in zip(windows, logits):
        mapping = feature.mapping[w]
        # Candidate tokens: context tokens that map to characters.
        positions = np.array([i for i, chars in enumerate(mapping) if chars])
        if not len(positions):
            continue
        start_logits = window_logits[0, positions].astype("float64")
        end_logits = window_logits[1, positions].astype("float64")
        scores = start_logits[:, None] + end_logits[None, :]
        # start <= end and at most max_answer_len tokens long
        gap = positions[None, :] - positions[:, None]
        scores = np.where((gap >= 0) & (gap < max_answer_len), scores, -np.inf)
        i, j = np.unravel_index(np.argmax(scores), scores.shape)
        score = float(scores[i, j])
        if k not in best or score > best[k]["score"]:
            start = mapping[positions[i]][0]
            end = mapping[positions[j]][-1]
            context = feature.example["context"]
            best[k] = {
                "text": context[start : end + 1],
                "start": int(start),
                "score": score,
                "window": w,
            }
    empty = {"text": "", "start": 0, "score": -np.inf, "window": -1}
    return [best.get(k, empty) for k in range(len(features))]


# -- evaluation (CMRC 2018 style) -----------------------------------------------------------------


def _is_ignored(ch):
    return ch.isspace() or unicodedata.category(ch)[0] in "PS"


def segment(text):
    """CMRC's mixed segmentation: CJK characters one by one, Latin / digit runs whole.

    Punctuation, symbols and spaces are dropped; Latin letters are lower-cased.

    >>> segment("Keras 3版，共42层！")
    ['keras', '3', '版', '共', '42', '层']
    """
    units, run = [], ""
    for ch in text.lower():
        if ch.isascii() and ch.isalnum():
            run += ch
            continue
        if run:
            units.append(run)
            run = ""
        if not _is_ignored(ch):
            units.append(ch)
    if run:
        units.append(run)
    return units


def exact_match(prediction, answers):
    """1.0 when the prediction equals a gold answer once punctuation and spaces are removed."""
    pred = segment(prediction)
    return float(any(pred == segment(a) for a in answers))


def char_f1(prediction, answers):
    """The best F1 over the gold answers of the longest common subsequence of units."""
    pred = segment(prediction)
    best = 0.0
    for answer in answers:
        gold = segment(answer)
        common = longest_common_subsequence(pred, gold)[0] if pred and gold else 0
        if common:
            precision, recall = common / len(pred), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def squad_scores(predictions, examples):
    """EM and F1 in percent, averaged over the questions."""
    em = [exact_match(p, [a for a, _ in e["answers"]]) for p, e in zip(predictions, examples)]
    f1 = [char_f1(p, [a for a, _ in e["answers"]]) for p, e in zip(predictions, examples)]
    return {"em": 100 * float(np.mean(em)), "f1": 100 * float(np.mean(f1)), "n": len(em)}


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv):
    parser = new_parser(__doc__)
    add_model_args(parser, language="zh")
    parser.add_argument("--train", default=str(DATA / "squad" / "train.json"))
    parser.add_argument("--dev", default=str(DATA / "squad" / "dev.json"))
    parser.add_argument("--maxlen", type=int, default=None, help="tokens (default 512; tiny 64)")
    parser.add_argument("--stride", type=int, default=None, help="default 128; tiny 24")
    parser.add_argument("--max-question-len", type=int, default=64)
    parser.add_argument("--max-answer-len", type=int, default=None, help="default 30; tiny 16")
    parser.add_argument("--epochs", type=int, default=None, help="default 2; tiny 6")
    parser.add_argument("--batch-size", type=int, default=None, help="default 12; tiny 16")
    parser.add_argument("--lr", type=float, default=None, help="default 3e-5; tiny 2e-3")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.tiny:
        defaults = {"maxlen": 64, "stride": 24, "max_answer_len": 16, "epochs": 6}
        defaults.update({"batch_size": 16, "lr": 2e-3})
    else:
        defaults = {"maxlen": 512, "stride": 128, "max_answer_len": 30, "epochs": 2}
        defaults.update({"batch_size": 12, "lr": 3e-5})
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.max_question_len = min(args.max_question_len, args.maxlen // 2)
    return args


def main(argv=None):
    """Train, predict the dev answers and score them (see the module docstring)."""
    args = parse_args(argv)
    began = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    buckets = make_buckets(args.maxlen)
    encoder, tokenizer = load_model_and_tokenizer(args)

    cache = {}  # context -> (tokens, rematch mapping), shared by its questions
    options = (args.maxlen, args.stride, args.max_question_len, cache)
    train_examples, dev_examples = load_data(args.train), load_data(args.dev)
    train_features = [Features(tokenizer, e, *options) for e in train_examples]
    dev_features = [Features(tokenizer, e, *options) for e in dev_examples]
    train_windows = [
        (f.token_ids[w], f.segment_ids[w], f.labels[w])
        for f in train_features
        for w in range(len(f))
    ]
    generator = WindowGenerator(train_windows, args.batch_size, buckets)

    model = build_model(args, encoder, tokenizer, total_steps=args.epochs * len(generator))
    history = model.fit(generator.to_pydataset(), epochs=args.epochs, verbose=0)
    losses = [float(x) for x in history.history["loss"]]

    answers = predict_answers(model, dev_features, buckets, args.batch_size, args.max_answer_len)
    scores = squad_scores([a["text"] for a in answers], dev_examples)
    predictions = [
        {
            "id": e["id"],
            "question": e["question"],
            "context": e["context"],
            "answers": [text for text, _ in e["answers"]],
            "predicted": a["text"],
            "start": a["start"],
            "windows": len(f),
            "context_tokens": f.context_tokens,
            "window_tokens": f.window_tokens,
        }
        for e, f, a in zip(dev_examples, dev_features, answers)
    ]
    results = {
        "losses": losses,
        "dev": scores,
        "predictions": predictions,
        "train_windows": len(train_windows),
        "train_windows_with_answer": sum(label != (0, 0) for *_, label in train_windows),
        "train_questions": len(train_examples),
        "seconds": time.perf_counter() - began,
    }

    print(f"training loss per epoch: {' '.join(f'{x:.3f}' for x in losses)}")
    print(
        f"train: {len(train_examples)} questions -> {results['train_windows']} windows "
        f"({results['train_windows_with_answer']} hold the answer); dev windows per question: "
        f"max {max(p['windows'] for p in predictions)}"
    )
    print(f"dev: EM {scores['em']:.2f}  F1 {scores['f1']:.2f}  ({scores['n']} questions)")
    for p in predictions[:3]:
        print(f"  {p['question']}  gold {p['answers']}  predicted {p['predicted']!r}")
    print(f"done in {results['seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
