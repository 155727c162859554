"""Chinese sentence-pair similarity (LCQMC-style): do two questions ask the same thing?

Task: classify a question pair as paraphrases (1) or not (0). Both questions go into one
sequence, ``[CLS] text_a [SEP] text_b [SEP]``, with segment ids 0 for the first and 1 for the
second (``tokenizer.encode(text_a, text_b, maxlen=...)``); the encoder's pooled output
(``--pooling pool``, the ``Pooler`` over [CLS]) or the raw [CLS] vector (``--pooling cls``)
feeds Dropout and a 2-way softmax Dense layer. Training uses kerasbert's AdamW with a
warmup-then-decay ``PiecewiseLinearSchedule``; batches are padded to a few bucket lengths
and have one number of rows (training drops each epoch's incomplete last batch, prediction
pads it), so JAX compiles one step per bucket. A callback measures dev accuracy after every
epoch and saves the best weights, which are reloaded at the end and scored on test.

Data (``--data-dir``, default ``examples/data/lcqmc``): ``train.txt``, ``dev.txt``,
``test.txt``, one pair a line, ``text_a<TAB>text_b<TAB>label`` with label 1 (same meaning) or
0 (different), the layout of LCQMC's files. The bundled files are small hand-written samples
(150 / 40 / 40 pairs, half paraphrases and half unrelated questions); point ``--data-dir`` at
the real LCQMC for real numbers.

Commands:

    # a pretrained checkpoint from the index (`kerasbert list`)
    python examples/task_sentence_similarity.py --pretrained hfl-chinese-roberta-wwm-ext
    python examples/task_sentence_similarity.py --pretrained albert-zh-base

    # any BERT / ALBERT / NEZHA checkpoint in a supported format
    python examples/task_sentence_similarity.py \\
        --config chinese_L-12_H-768_A-12/bert_config.json \\
        --checkpoint chinese_L-12_H-768_A-12/bert_model.ckpt \\
        --vocab chinese_L-12_H-768_A-12/vocab.txt --output best_similarity.weights.h5

    # smoke test: a tiny random BERT (or ALBERT), a few epochs, seconds on a CPU
    python examples/task_sentence_similarity.py --tiny
    python examples/task_sentence_similarity.py --tiny --model albert

A tiny random model learns the training pairs but, with no pretraining and 150 examples,
has little to generalize from: expect dev/test accuracy not far above chance in ``--tiny``
mode. ``main(argv)`` returns a dict: per-epoch training loss and dev accuracy, the best
epoch, test accuracy, the test predictions and labels, and the path of the best weights.
"""

import json
import pathlib
import time

import numpy as np
from common import DATA, add_model_args, load_model_and_tokenizer, new_parser

from kerasbert.backend import keras
from kerasbert.layers import TokenSlice
from kerasbert.optimizers import AdamW, PiecewiseLinearSchedule
from kerasbert.snippets import DataGenerator, make_buckets

NUM_CLASSES = 2

# Settings for a real checkpoint, and the smaller ones --tiny uses instead.
DEFAULTS = {"maxlen": 128, "batch_size": 32, "epochs": 5, "lr": 2e-5}
TINY_DEFAULTS = {"maxlen": 64, "batch_size": 16, "epochs": 30, "lr": 2e-3}


# Training-loop pieces shared with the sentiment example (same model head and evaluation).
from task_sentiment_classification import Evaluator, predict_labels  # noqa: E402


def load_data(path):
    """``[(text_a, text_b, label), ...]`` from a ``text_a<TAB>text_b<TAB>label`` file."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 3 or fields[2].strip() not in ("0", "1"):
                raise SystemExit(
                    f"{path}:{number}: expected 'text_a<TAB>text_b<TAB>0|1', got {line!r}"
                )
            examples.append((fields[0], fields[1], int(fields[2])))
    return examples


class PairBatches(DataGenerator):
    """Batches ``([token_ids, segment_ids], labels)`` of sentence pairs, bucket-padded.

    Args:
        data: ``[(text_a, text_b, label), ...]``.
        tokenizer: a kerasbert ``Tokenizer``.
        maxlen: the longest encoded pair; the longer question loses tokens first.
        batch_size: pairs per batch.
        drop_remainder: drop the last incomplete batch of each epoch (for training: one
            batch size means fewer shapes to compile; the data are reshuffled each epoch,
            so no pair is left out for good).
    """

    def __init__(self, data, tokenizer, maxlen, batch_size, drop_remainder=False):
        drop = drop_remainder and len(data) >= batch_size
        remainder = "drop" if drop else "keep"
        super().__init__(data, batch_size, buckets=make_buckets(maxlen), remainder=remainder)
        self.tokenizer = tokenizer
        self.maxlen = maxlen

    def __iter__(self, random=False):
        token_ids, segment_ids, labels = [], [], []
        for is_end, (text_a, text_b, label) in self.sample(random):
            # [CLS] a [SEP] b [SEP], segment ids 0 ... 0 1 ... 1
            ids, segments = self.tokenizer.encode(text_a, text_b, maxlen=self.maxlen)
            token_ids.append(ids)
            segment_ids.append(segments)
            labels.append(label)
            if len(token_ids) == self.batch_size or is_end:
                yield [self.pad(token_ids), self.pad(segment_ids)], np.array(labels, "int32")
                token_ids, segment_ids, labels = [], [], []


def build_model(args):
    """``(classifier, tokenizer)``: the encoder with a Dropout + softmax head on top."""
    with_pool = args.pooling == "pool"
    encoder, tokenizer = load_model_and_tokenizer(args, with_pool=with_pool)
    if with_pool:
        features = encoder.output  # the Pooler: tanh(Dense([CLS]))
    else:
        features = TokenSlice(0, name="CLS-Token")(encoder.output)
    features = keras.layers.Dropout(args.dropout, name="Classifier-Dropout")(features)
    probs = keras.layers.Dense(
        NUM_CLASSES,
        activation="softmax",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        name="Classifier-Proba",
    )(features)
    return keras.Model(encoder.inputs, probs, name="pair_classifier"), tokenizer


def make_parser():
    parser = new_parser(__doc__)
    add_model_args(parser, "zh")
    parser.add_argument("--data-dir", default=str(DATA / "lcqmc"))
    parser.add_argument("--maxlen", type=int, help="max tokens of a pair (128; 64 with --tiny)")
    parser.add_argument("--batch-size", type=int, help="default 32; 16 with --tiny")
    parser.add_argument("--epochs", type=int, help="default 5; 30 with --tiny")
    parser.add_argument("--lr", type=float, help="peak learning rate (2e-5; 2e-3 with --tiny)")
    parser.add_argument("--warmup", type=float, default=0.1, help="warmup fraction of steps")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout before the head")
    parser.add_argument(
        "--pooling",
        choices=("pool", "cls"),
        default="pool",
        help="pool: the Pooler output (with_pool=True); cls: the raw [CLS] vector",
    )
    parser.add_argument(
        "--output", default="best_similarity.weights.h5", help="where the best weights go"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--verbose", type=int, default=2, help="model.fit verbosity")
    return parser


def parse_args(argv=None):
    args = make_parser().parse_args(argv)
    for key, value in (TINY_DEFAULTS if args.tiny else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not args.output.endswith(".weights.h5"):
        raise SystemExit(f"--output must end in .weights.h5 (Keras 3), got {args.output!r}")
    return args


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()

    data_dir = pathlib.Path(args.data_dir)
    train_data = load_data(data_dir / "train.txt")
    dev_data = load_data(data_dir / "dev.txt")
    test_data = load_data(data_dir / "test.txt")

    model, tokenizer = build_model(args)
    train_batches = PairBatches(
        train_data, tokenizer, args.maxlen, args.batch_size, drop_remainder=True
    )
    dev_batches = PairBatches(dev_data, tokenizer, args.maxlen, args.batch_size)
    test_batches = PairBatches(test_data, tokenizer, args.maxlen, args.batch_size)

    total_steps = len(train_batches) * args.epochs
    warmup_steps = max(1, int(args.warmup * total_steps))
    schedule = PiecewiseLinearSchedule(
        {warmup_steps: 1.0, max(total_steps, warmup_steps + 1): 0.1}, args.lr
    )
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=AdamW(learning_rate=schedule, weight_decay=args.weight_decay),
        metrics=["sparse_categorical_accuracy"],
    )

    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    evaluator = Evaluator(dev_batches, str(output))
    history = model.fit(
        train_batches.to_pydataset(random=True),
        epochs=args.epochs,
        callbacks=[evaluator],
        verbose=args.verbose,
    )

    # Back to the best epoch's weights, then score the held-out test set with them.
    model.load_weights(str(output))
    test_predicted, test_gold = predict_labels(model, test_batches)
    results = {
        "train_loss": [float(x) for x in history.history["loss"]],
        "train_accuracy": [float(x) for x in history.history["sparse_categorical_accuracy"]],
        "dev_accuracy": evaluator.history,
        "best_dev_accuracy": evaluator.best_accuracy,
        "best_epoch": evaluator.best_epoch,
        "test_accuracy": float(np.mean(test_predicted == test_gold)),
        "test_predictions": test_predicted.tolist(),
        "test_labels": test_gold.tolist(),
        "weights_path": str(output),
        "seconds": round(time.perf_counter() - start, 1),
    }
    summary = {k: v for k, v in results.items() if k not in ("test_predictions", "test_labels")}
    print(json.dumps(summary, indent=1))
    return results


if __name__ == "__main__":
    main()
