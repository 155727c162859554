"""Chinese named-entity recognition: BERT-family encoder + Dense + CRF, decoded with Viterbi.

Task: tag people (PER), places (LOC) and organisations (ORG) in Chinese sentences, as in the
People's Daily / MSRA NER corpora, and score entity-level precision, recall and F1.

Data format (``examples/data/ner/{train,dev,test}.txt``): one character and its BIO tag per
line, separated by a space; a blank line between sentences::

    王 B-PER
    建 I-PER
    国 I-PER
    在 O
    上 B-LOC
    海 I-LOC

Model: encoder (BERT / ALBERT / NEZHA) -> ``Dense(num_labels)`` emission scores ->
``kerasbert.layers.ConditionalRandomField`` (its transitions learn ``--crf-lr-multiplier``
times faster, as in bert4keras), trained with ``crf.sparse_loss``. Prediction decodes the
emissions of the real tokens (``[CLS]`` and ``[SEP]`` stripped) with
``kerasbert.snippets.ViterbiDecoder`` and the CRF's transitions; entities are read off the
BIO token labels and mapped back to character offsets of the original sentence with
``Tokenizer.rematch``, so each is reported as ``(start, end, type, text)`` with
``text == sentence[start:end + 1]``. A word-piece token that spans several characters (a
number, a Latin word) takes the tag of its first character. Sentences longer than
``--maxlen`` tokens are truncated (their entities past the cut count as missed).

Run::

    # a real model (downloaded once into ~/.cache/kerasbert)
    python examples/task_sequence_labeling_ner_crf.py --pretrained google-bert-base-chinese
    # any checkpoint in any supported format
    python examples/task_sequence_labeling_ner_crf.py \\
        --config chinese_L-12_H-768_A-12/bert_config.json \\
        --checkpoint chinese_L-12_H-768_A-12/bert_model.ckpt \\
        --vocab chinese_L-12_H-768_A-12/vocab.txt
    # smoke test: a tiny random model, a few epochs, seconds on a CPU
    python examples/task_sequence_labeling_ner_crf.py --tiny

Point ``--data`` at a folder holding the real corpus in the same format for a real run.
``main(argv)`` returns a dict with the per-epoch training losses, P/R/F1 on dev and test and
the test predictions.
"""

import time

import numpy as np
from common import DATA, add_model_args, load_model_and_tokenizer, new_parser

# kerasbert's keras: importing kerasbert first selects the JAX backend when none is set.
from kerasbert.backend import K, keras
from kerasbert.layers import ConditionalRandomField
from kerasbert.optimizers import AdamW
from kerasbert.snippets import (
    DataGenerator,
    ViterbiDecoder,
    make_buckets,
    pad_batch,
    sequence_padding,
)

ENTITY_TYPES = ("PER", "LOC", "ORG")
# Label ids: 0 = O, then B-X, I-X for each type (B-PER = 1, I-PER = 2, B-LOC = 3, ...).
LABELS = ["O"] + [f"{prefix}-{kind}" for kind in ENTITY_TYPES for prefix in ("B", "I")]
LABEL_IDS = {label: i for i, label in enumerate(LABELS)}


# -- data -----------------------------------------------------------------------------------------


def load_data(path):
    """Sentences of a BIO file: a list of ``(text, entities)``.

    ``entities`` is a list of ``(start, end, type)`` character spans (``end`` inclusive).
    """
    sentences, chars, tags = [], [], []

    def flush():
        if chars:
            sentences.append(("".join(chars), tags_to_spans(tags)))
            chars.clear()
            tags.clear()

    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                flush()
                continue
            char, tag = line.rsplit(" ", 1)
            chars.append(char or " ")
            tags.append(tag)
    flush()
    return sentences


def tags_to_spans(tags):
    """``(start, end, type)`` spans (``end`` inclusive) of a BIO tag sequence.

    An ``I-X`` that does not continue an ``X`` entity starts a new one (the usual lenient
    reading of BIO).
    """
    spans, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, tag_kind = tag.partition("-")
        if kind is not None and not (prefix == "I" and tag_kind == kind):
            spans.append((start, i - 1, kind))
            start, kind = None, None
        if prefix in ("B", "I") and kind is None:
            start, kind = i, tag_kind
    return spans


class NERExample:
    """One sentence, tokenized: token ids, token labels and the token -> characters map."""

    def __init__(self, tokenizer, text, entities, maxlen):
        self.text = text
        self.entities = entities
        tokens = tokenizer.tokenize(text, maxlen=maxlen)
        self.mapping = tokenizer.rematch(text, tokens)
        self.token_ids = tokenizer.tokens_to_ids(tokens)
        # Character tags, then each token takes the tag of its first character.
        char_tags = ["O"] * len(text)
        for start, end, kind in entities:
            char_tags[start] = f"B-{kind}"
            for i in range(start + 1, end + 1):
                char_tags[i] = f"I-{kind}"
        self.labels = [LABEL_IDS[char_tags[m[0]]] if m else 0 for m in self.mapping]


class NERGenerator(DataGenerator):
    """Batches ``([token_ids, segment_ids], labels)`` padded to bucket lengths.

    Every batch has ``batch_size`` sentences: an epoch's incomplete last batch is completed
    with sentences from the start of the epoch (``remainder="fill"``), so training compiles
    one step per bucket and no extra one for a smaller batch.
    """

    def __init__(self, data, batch_size, buckets):
        super().__init__(data, batch_size, buckets=buckets, remainder="fill")

    def __iter__(self, random=False):
        batch = []
        for is_end, example in self.sample(random):
            batch.append(example)
            if len(batch) == self.batch_size or is_end:
                yield batch_arrays(batch, self.buckets)
                batch = []


def batch_arrays(examples, buckets):
    token_ids = sequence_padding([e.token_ids for e in examples], buckets=buckets)
    # Padding labels are -1: the CRF ignores them (it also sees the encoder's padding mask).
    labels = sequence_padding([e.labels for e in examples], buckets=buckets, value=-1)
    return [token_ids, np.zeros_like(token_ids)], labels


# -- model ----------------------------------------------------------------------------------------


def build_model(args):
    """``(model, crf, tokenizer)``: encoder -> Dense(num_labels) -> CRF, compiled."""
    encoder, tokenizer = load_model_and_tokenizer(args)
    emissions = keras.layers.Dense(len(LABELS), name="NER-Emissions")(encoder.output)
    crf = ConditionalRandomField(lr_multiplier=args.crf_lr_multiplier, name="CRF")
    output = crf(emissions)
    model = keras.Model(encoder.inputs, output, name="ner_crf")
    model.compile(
        optimizer=AdamW(learning_rate=args.lr, weight_decay=0.01),
        loss=crf.sparse_loss,
        metrics=[crf.sparse_accuracy],
    )
    return model, crf, tokenizer


class NamedEntityRecognizer(ViterbiDecoder):
    """Viterbi decoding of the CRF's emissions into character-level entities."""

    def __init__(self, model, crf, buckets, batch_size):
        trans = K.convert_to_numpy(crf.trans)
        # A path may not start with an I- label.
        starts = [i for i, label in enumerate(LABELS) if not label.startswith("I-")]
        super().__init__(trans, starts=starts)
        self.model = model
        self.buckets = buckets
        self.batch_size = batch_size

    def recognize(self, examples):
        """Entities ``[(start, end, type, text), ...]`` of each example, in order."""
        results = []
        for i in range(0, len(examples), self.batch_size):
            batch = examples[i : i + self.batch_size]
            inputs, _ = batch_arrays(batch, self.buckets)
            # A last, smaller batch gets repeated rows (dropped below): no new shape.
            emissions = self.model.predict_on_batch(pad_batch(inputs, self.batch_size))
            emissions = K.convert_to_numpy(emissions)[: len(batch)]
            for example, nodes in zip(batch, emissions):
                length = len(example.token_ids)
                # Decode the real tokens only: no [CLS], no [SEP], no padding.
                labels = self.decode(nodes[1 : length - 1])
                results.append(
                    labels_to_entities(labels, example.mapping[1 : length - 1], example.text)
                )
        return results


def labels_to_entities(labels, mapping, text):
    """Token label ids -> ``(start, end, type, text)`` character entities of ``text``."""
    tags = [LABELS[label] for label in labels]
    entities = []
    for first, last, kind in tags_to_spans(tags):
        chars = [c for token in mapping[first : last + 1] for c in token]
        if not chars:  # only tokens rematch could not place (e.g. [UNK])
            continue
        start, end = chars[0], chars[-1]
        entities.append((start, end, kind, text[start : end + 1]))
    return entities


# -- evaluation -----------------------------------------------------------------------------------


def entity_scores(gold, predicted):
    """Entity-level precision, recall and F1 (exact span and type) over sentences.

    Args:
        gold: per sentence, ``(start, end, type)`` spans.
        predicted: per sentence, ``(start, end, type, ...)`` entities.
    """
    correct = n_pred = n_gold = 0
    for gold_spans, predicted_entities in zip(gold, predicted):
        gold_set = {tuple(e[:3]) for e in gold_spans}
        pred_set = {tuple(e[:3]) for e in predicted_entities}
        correct += len(gold_set & pred_set)
        n_pred += len(pred_set)
        n_gold += len(gold_set)
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * correct / (n_pred + n_gold) if n_pred + n_gold else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "correct": correct,
        "predicted": n_pred,
        "gold": n_gold,
    }


def evaluate(recognizer, examples):
    predicted = recognizer.recognize(examples)
    return entity_scores([e.entities for e in examples], predicted), predicted


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv):
    parser = new_parser(__doc__)
    add_model_args(parser, language="zh")
    parser.add_argument("--data", default=str(DATA / "ner"), help="folder of train/dev/test.txt")
    parser.add_argument("--maxlen", type=int, default=None, help="tokens (default 256; tiny 64)")
    parser.add_argument("--epochs", type=int, default=None, help="default 10; tiny 8")
    parser.add_argument("--batch-size", type=int, default=None, help="default 16; tiny 8")
    parser.add_argument("--lr", type=float, default=None, help="default 2e-5; tiny 2e-3")
    parser.add_argument(
        "--crf-lr-multiplier", type=float, default=None, help="default 100; tiny 10"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    defaults = (
        {"maxlen": 64, "epochs": 8, "batch_size": 8, "lr": 2e-3, "crf_lr_multiplier": 10}
        if args.tiny
        else {"maxlen": 256, "epochs": 10, "batch_size": 16, "lr": 2e-5, "crf_lr_multiplier": 100}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv=None):
    """Train, evaluate on dev and test, and return the results (see the module docstring)."""
    args = parse_args(argv)
    began = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    model, crf, tokenizer = build_model(args)
    buckets = make_buckets(args.maxlen)

    splits = {}
    for name in ("train", "dev", "test"):
        sentences = load_data(f"{args.data}/{name}.txt")
        splits[name] = [NERExample(tokenizer, t, e, args.maxlen) for t, e in sentences]

    train = NERGenerator(splits["train"], args.batch_size, buckets)
    history = model.fit(train.to_pydataset(), epochs=args.epochs, verbose=0)
    losses = [float(x) for x in history.history["loss"]]

    recognizer = NamedEntityRecognizer(model, crf, buckets, args.batch_size)
    dev_scores, _ = evaluate(recognizer, splits["dev"])
    test_scores, test_predicted = evaluate(recognizer, splits["test"])
    predictions = [
        {"text": e.text, "gold": e.entities, "predicted": p}
        for e, p in zip(splits["test"], test_predicted)
    ]
    results = {
        "losses": losses,
        "train_accuracy": float(history.history["sparse_accuracy"][-1]),
        "dev": dev_scores,
        "test": test_scores,
        "predictions": predictions,
        "seconds": time.perf_counter() - began,
    }

    print(f"training loss per epoch: {' '.join(f'{x:.3f}' for x in losses)}")
    for split in ("dev", "test"):
        s = results[split]
        print(
            f"{split}: precision {s['precision']:.4f}  recall {s['recall']:.4f}  "
            f"f1 {s['f1']:.4f}  ({s['correct']} correct, {s['predicted']} predicted, "
            f"{s['gold']} gold)"
        )
    for p in predictions[:3]:
        print(f"  {p['text']}\n    predicted: {p['predicted']}")
    print(f"done in {results['seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
