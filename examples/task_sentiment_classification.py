"""Chinese sentiment classification: fine-tune BERT or ALBERT on review sentences.

Task: label a review positive (1) or negative (0). The encoder's pooled output (the
``Pooler`` tanh layer over [CLS], ``--pooling pool``) or the raw [CLS] vector
(``--pooling cls``) goes through Dropout and a 2-way softmax Dense layer. Training uses
kerasbert's AdamW (no decay on LayerNorm weights and biases) with a warmup-then-decay
``PiecewiseLinearSchedule``. Batches are padded to a few bucket lengths and every batch has
the same number of rows (training drops each epoch's incomplete last batch; prediction pads
it with repeated rows and drops their outputs), so JAX compiles one train step and one
predict step per bucket: the script prints the batch shapes and the XLA compilations of the
Keras step functions. After every epoch a callback measures dev accuracy and saves the weights
whenever it is the best so far; at the end the best weights are reloaded and scored on test.

Data (``--data-dir``, default ``examples/data/sentiment``): ``train.tsv``, ``dev.tsv``,
``test.tsv``, one example a line, ``text<TAB>label`` with label 0 (negative) or 1 (positive),
the layout of the ChnSentiCorp files bert4keras's example reads. The bundled files are small
hand-written samples (150 / 40 / 40 lines); point ``--data-dir`` at a real corpus for real
numbers.

Commands:

    # a pretrained checkpoint from the index (`kerasbert list`)
    python examples/task_sentiment_classification.py --pretrained google-bert-base-chinese
    python examples/task_sentiment_classification.py --pretrained albert-zh-base

    # any BERT / ALBERT / NEZHA checkpoint in a supported format
    python examples/task_sentiment_classification.py \\
        --config chinese_L-12_H-768_A-12/bert_config.json \\
        --checkpoint chinese_L-12_H-768_A-12/bert_model.ckpt \\
        --vocab chinese_L-12_H-768_A-12/vocab.txt --output best_sentiment.weights.h5

    # smoke test: a tiny random BERT (or ALBERT), a few epochs, seconds on a CPU
    python examples/task_sentiment_classification.py --tiny
    python examples/task_sentiment_classification.py --tiny --model albert

``main(argv)`` returns a dict: per-epoch training loss and dev accuracy, the best epoch,
test accuracy, the test predictions and labels, the path of the saved best weights, and
the training batch shapes and the compilations of ``train_step`` / ``predict_step``.
"""

import json
import pathlib
import time

import numpy as np
from common import DATA, add_model_args, load_model_and_tokenizer, new_parser

from kerasbert.backend import keras
from kerasbert.layers import TokenSlice
from kerasbert.optimizers import AdamW, PiecewiseLinearSchedule
from kerasbert.snippets import CompilationCounter, DataGenerator, make_buckets, pad_batch

NUM_CLASSES = 2

# Settings for a real checkpoint, and the smaller ones --tiny uses instead.
DEFAULTS = {"maxlen": 256, "batch_size": 32, "epochs": 5, "lr": 2e-5}
TINY_DEFAULTS = {"maxlen": 64, "batch_size": 16, "epochs": 8, "lr": 1e-3}


def load_data(path):
    """``[(text, label), ...]`` from a ``text<TAB>label`` file (blank lines skipped)."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            text, sep, label = line.rpartition("\t")
            if not sep or label.strip() not in ("0", "1"):
                raise SystemExit(f"{path}:{number}: expected 'text<TAB>0|1', got {line!r}")
            examples.append((text, int(label)))
    return examples


class SentimentBatches(DataGenerator):
    """Batches ``([token_ids, segment_ids], labels)`` padded to bucket lengths.

    Args:
        data: ``[(text, label), ...]``.
        tokenizer: a kerasbert ``Tokenizer``.
        maxlen: the longest encoded length (longer texts are truncated).
        batch_size: examples per batch.
        drop_remainder: drop the last incomplete batch of each epoch (for training: every
            step then has the same batch size, so fewer shapes to compile; the data are
            reshuffled each epoch, so no example is left out for good).
    """

    def __init__(self, data, tokenizer, maxlen, batch_size, drop_remainder=False):
        drop = drop_remainder and len(data) >= batch_size
        remainder = "drop" if drop else "keep"
        super().__init__(data, batch_size, buckets=make_buckets(maxlen), remainder=remainder)
        self.tokenizer = tokenizer
        self.maxlen = maxlen

    def __iter__(self, random=False):
        token_ids, segment_ids, labels = [], [], []
        for is_end, (text, label) in self.sample(random):
            ids, segments = self.tokenizer.encode(text, maxlen=self.maxlen)
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
    return keras.Model(encoder.inputs, probs, name="sentiment_classifier"), tokenizer


def predict_labels(model, batches):
    """``(predicted, gold)`` label arrays over every batch of ``batches`` (in order).

    A last, smaller batch is padded to ``batches.batch_size`` rows (copies of its first
    row, whose predictions are dropped), so prediction compiles no extra batch size.
    """
    predicted, gold = [], []
    for inputs, labels in batches:
        probs = model.predict_on_batch(pad_batch(inputs, batches.batch_size))[: len(labels)]
        predicted.append(np.argmax(probs, axis=-1))
        gold.append(labels)
    return np.concatenate(predicted), np.concatenate(gold)


def accuracy(model, batches):
    predicted, gold = predict_labels(model, batches)
    return float(np.mean(predicted == gold))


class Evaluator(keras.callbacks.Callback):
    """After each epoch: dev accuracy; saves the weights when it is the best so far."""

    def __init__(self, dev_batches, output):
        super().__init__()
        self.dev_batches = dev_batches
        self.output = output
        self.best_accuracy = -1.0
        self.best_epoch = None
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        dev_accuracy = accuracy(self.model, self.dev_batches)
        self.history.append(dev_accuracy)
        # ">=": on a tie the later (longer-trained) weights win, as in bert4keras's examples.
        if dev_accuracy >= self.best_accuracy:
            self.best_accuracy = dev_accuracy
            self.best_epoch = epoch + 1
            self.model.save_weights(self.output)
        if logs is not None:
            logs["dev_accuracy"] = dev_accuracy
        print(
            f"epoch {epoch + 1}: dev accuracy {dev_accuracy:.4f}, "
            f"best {self.best_accuracy:.4f} (epoch {self.best_epoch})",
            flush=True,
        )


def make_parser():
    parser = new_parser(__doc__)
    add_model_args(parser, "zh")
    parser.add_argument("--data-dir", default=str(DATA / "sentiment"))
    parser.add_argument("--maxlen", type=int, help="max tokens (default 256; 64 with --tiny)")
    parser.add_argument("--batch-size", type=int, help="default 32; 16 with --tiny")
    parser.add_argument("--epochs", type=int, help="default 5; 8 with --tiny")
    parser.add_argument("--lr", type=float, help="peak learning rate (2e-5; 1e-3 with --tiny)")
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
        "--output", default="best_sentiment.weights.h5", help="where the best weights go"
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
    train_data = load_data(data_dir / "train.tsv")
    dev_data = load_data(data_dir / "dev.tsv")
    test_data = load_data(data_dir / "test.tsv")

    model, tokenizer = build_model(args)
    train_batches = SentimentBatches(
        train_data, tokenizer, args.maxlen, args.batch_size, drop_remainder=True
    )
    dev_batches = SentimentBatches(dev_data, tokenizer, args.maxlen, args.batch_size)
    test_batches = SentimentBatches(test_data, tokenizer, args.maxlen, args.batch_size)

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
    # Count the XLA compilations of Keras's train_step and predict_step functions.
    compilations = CompilationCounter("_step")
    with compilations:
        history = model.fit(
            train_batches.to_pydataset(random=True),
            epochs=args.epochs,
            callbacks=[evaluator],
            verbose=args.verbose,
        )

        # Back to the best epoch's weights, then score the held-out test set with them.
        model.load_weights(str(output))
        test_predicted, test_gold = predict_labels(model, test_batches)
    # Signatures are ((token_ids shape, segment_ids shape), labels shape).
    train_shapes = sorted({signature[0][0] for signature in train_batches.shapes.counts})
    compiled = {name: compilations.names.count(f"jit({name})") for name in
                ("train_step", "predict_step")}  # fmt: skip
    print(
        f"training batch shapes (token ids): {train_shapes}; XLA compilations: "
        f"{compiled['train_step']} train_step, {compiled['predict_step']} predict_step "
        f"(buckets {train_batches.buckets})"
    )
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
        "train_batch_shapes": train_shapes,
        "compilations": compiled,
        "seconds": round(time.perf_counter() - start, 1),
    }
    summary = {k: v for k, v in results.items() if k not in ("test_predictions", "test_labels")}
    print(json.dumps(summary, indent=1))
    return results


if __name__ == "__main__":
    main()
