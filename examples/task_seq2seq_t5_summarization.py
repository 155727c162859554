"""Summarization with T5 / mT5: fine-tune an encoder-decoder, then write summaries by beam search.

The model is a T5 1.0 / 1.1 or mT5 checkpoint (``model="t5.1.0"``, ``"t5.1.1"``,
``"mt5.1.1"``; detected from the checkpoint by default) built with bert4keras's API,
``build_transformer_model(..., return_keras_model=False)``: ``t5.encoder`` reads the source,
``t5.decoder`` writes the summary, ``t5.model`` joins them for training. Training is teacher
forcing: the decoder reads ``0, y_1, ..., y_n`` (0 is T5's start id) and predicts
``y_1, ..., y_n, </s>``; the loss is the cross-entropy of those predictions (from the head's
logits, ``with_lm="linear"``) averaged over the real summary positions, the padding masked.
Generation is bert4keras's beam search over T5's cached decoder
(``kerasbert.models.t5_decoding.T5Generator``): the source is encoded once, each layer's
cross-attention keys and values computed once, and every step runs only the newest id
through the decoder against a fixed-size cache, so decoding compiles a handful of programs
(one per beam width and source bucket, printed at the end), not one per step. Generated
summaries are scored against the references by ROUGE-L (the F1 of their longest common
subsequence of words; a Chinese character counts as a word, as bert4keras's CSL example
scores its titles character by character). This is the workflow of bert4keras's
``task_seq2seq_autotitle_csl_mt5.py``.

Data: UTF-8 text, one example per line, ``summary<TAB>source`` (the layout of the CSL
abstract-to-title set that bert4keras's example reads). The bundled
``examples/data/summarization/{train,dev}.tsv`` are 64 / 12 short English news items written
for this example (a headline-like summary of two sentences); point ``--train`` / ``--dev``
at a real corpus in the same format.

The model: ``--pretrained`` takes a model folder (its config, checkpoint and SentencePiece
model: HF's ``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, ``spiece.model``)
or a name from ``kerasbert list`` (``google-mt5-small``, ``google-t5-v1_1-base``, ...);
``--config / --checkpoint / --spm`` name the files one by one (a mesh-TF checkpoint works
too). ``--keep-tokens`` is bert4keras's vocabulary reduction for mT5: a JSON list of the
ids of mT5's 250k-piece vocabulary to keep, in the order of the (smaller) SentencePiece
model given by ``--spm`` (bert4keras's ``sentencepiece_cn.model`` and
``sentencepiece_cn_keep_tokens.json``), which shrinks the embedding and the head to them.

Commands (from the repository root):

    # a real model, downloaded and cached on first use
    python examples/task_seq2seq_t5_summarization.py --pretrained google-mt5-small

    # any T5 / mT5 folder on disk, a corpus of your own
    python examples/task_seq2seq_t5_summarization.py --pretrained path/to/mt5-base \\
        --train train.tsv --dev dev.tsv --epochs 10 --batch-size 16 --topk 4

    # smoke test: the tiny mT5 test fixture, a few epochs, seconds on a CPU
    python examples/task_seq2seq_t5_summarization.py --tiny

``--tiny`` loads the weights of ``tests/fixtures/t5_tiny/mt5.1.1`` (an mT5 of 2 + 2 blocks,
width 16, random weights, a vocabulary of 101 ids). No SentencePiece model comes with the
fixture, and the committed test model (``tests/fixtures/sentencepiece/t5.model``) has 800
pieces, more than the fixture's 101 rows; so ``--tiny`` trains a 101-piece SentencePiece
model on the training set's text at run time (a fraction of a second; T5's layout:
``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2) and tokenizes with it through the same
``SpTokenizer.for_t5`` a real model uses: every id it produces has a row in the model, and
the path from text to ids to text is the real one. ``--tiny`` checks that the training loss
fell, that every generated summary is valid (the start id, then ``--summary-minlen`` to
``--summary-maxlen`` ids, ending with ``</s>`` unless cut at that limit, no other special
id inside), and that the cached beam search produces exactly the ids of bert4keras's way of
decoding, which recomputes the decoder over the whole summary so far at every step
(``t5.decoder`` over the encoder's states). A model this small, trained for seconds, learns
little more than which pieces are frequent: its favourite is ``▁`` (a word start, which
decodes to nothing), so its summaries are mostly that piece repeated and print as empty
lines. ``--tiny`` makes them at least 6 ids long (which makes the cache check span several
steps), and the ROUGE-L it prints tests the metric's plumbing, not the model.
"""

import json
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DATA, ROOT, new_parser
from task_seq2seq_autotitle import read_pairs

import kerasbert
from kerasbert.backend import keras
from kerasbert.layers import Loss
from kerasbert.models.t5_decoding import T5Generator
from kerasbert.optimizers import AdamW, PiecewiseLinearSchedule
from kerasbert.snippets import (
    AutoRegressiveDecoder,
    DataGenerator,
    bucket_length,
    longest_common_subsequence,
    make_buckets,
    sequence_padding,
)
from kerasbert.tokenizers import SpTokenizer

TINY_MODEL = ROOT / "tests" / "fixtures" / "t5_tiny" / "mt5.1.1"
START_ID = 0  # T5's decoder start id (also its padding id)
TINY_DEFAULTS = {
    "source_maxlen": 128,
    "summary_maxlen": 24,
    "epochs": 6,
    "batch_size": 8,
    "learning_rate": 1e-2,
    "topk": 2,
    "num_dev": 4,
    "num_check": 4,
    "summary_minlen": 6,
}
FULL_DEFAULTS = {  # bert4keras's CSL example: 256 source and 32 summary ids
    "source_maxlen": 256,
    "summary_maxlen": 32,
    "epochs": 10,
    "batch_size": 16,
    "learning_rate": 2e-4,
    "topk": 4,
    "num_dev": None,
    "num_check": 1,
    "summary_minlen": 1,
}


# -- the tokenizer and the model ---------------------------------------------------------------
def train_tiny_sentencepiece(texts, folder, vocab_size):
    """Train a ``vocab_size``-piece SentencePiece model on ``texts`` with T5's special ids
    (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, no ``<s>``); returns the ``.model`` path."""
    import sentencepiece

    prefix = Path(folder) / "spiece"
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(prefix),
        model_type="unigram",
        vocab_size=vocab_size,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        character_coverage=1.0,
        num_threads=1,  # with the input's order kept, training is deterministic
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def model_files(args):
    """``(config, checkpoint, spm, model)`` for the options (``model`` None: detected)."""
    if args.pretrained:
        from kerasbert.pretrained import open_model

        local = open_model(args.pretrained)
        if local.checkpoint is None:
            raise SystemExit(f"{args.pretrained}: no checkpoint found in {local.folder}")
        spm = args.spm or local.vocab
        if spm is None or not str(spm).endswith(".model"):
            raise SystemExit(
                f"{args.pretrained}: no SentencePiece model (spiece.model) found; pass --spm"
            )
        return local.config, local.checkpoint, spm, args.model or local.settings.model
    if not (args.config and args.checkpoint and args.spm):
        raise SystemExit("give --tiny, --pretrained NAME_OR_FOLDER, or --config, --checkpoint "
                         "and --spm")  # fmt: skip
    return args.config, args.checkpoint, args.spm, args.model


def load_t5_and_tokenizer(args, workdir):
    """``(t5 builder, tokenizer)``: the model's head outputs logits (``with_lm="linear"``)."""
    keep_tokens = None
    if args.tiny:
        config = checkpoint = TINY_MODEL
        vocab_size = json.loads((TINY_MODEL / "config.json").read_text())["vocab_size"]
        texts = [text for pair in read_pairs(args.train) for text in pair]
        spm = train_tiny_sentencepiece(texts, workdir, vocab_size)
        model = "mt5.1.1"
    else:
        config, checkpoint, spm, model = model_files(args)
        if args.keep_tokens:
            keep_tokens = json.loads(Path(args.keep_tokens).read_text(encoding="utf-8"))
    # Summaries need no sentinels (<extra_id_N>, appended after the pieces), so none are
    # added: the ids of ordinary text are the same either way.
    tokenizer = SpTokenizer.for_t5(spm, extra_ids=0)
    t5 = kerasbert.build_transformer_model(
        config, checkpoint, model=model, keep_tokens=keep_tokens, with_lm="linear",
        return_keras_model=False,
    )  # fmt: skip
    if tokenizer.vocab_size > t5.vocab_size:
        raise SystemExit(
            f"the SentencePiece model has {tokenizer.vocab_size} pieces but the model only "
            f"{t5.vocab_size} rows: pass the model's own spiece.model (or --keep-tokens with "
            "the reduced one)"
        )
    return t5, tokenizer


# -- training --------------------------------------------------------------------------------
class SummaryBatches(DataGenerator):
    """Batches of ``[source_ids, target_ids]`` (no targets: the loss layer reads the inputs).

    ``source_ids`` is the source's ids and ``</s>``, at most ``source_maxlen``;
    ``target_ids`` the start id 0, the summary's ids and ``</s>``, at most ``1 +
    summary_maxlen``. Each is padded with 0 to a length from its own bucket list, and an
    epoch's incomplete last batch is completed with examples from its start
    (``remainder="fill"``), so JAX compiles one train step per pair of buckets.
    """

    def __init__(self, pairs, tokenizer, source_maxlen, summary_maxlen, batch_size):
        super().__init__(pairs, batch_size, remainder="fill")
        self.tokenizer = tokenizer
        self.source_maxlen, self.summary_maxlen = source_maxlen, summary_maxlen
        self.source_buckets = make_buckets(source_maxlen, start=32)
        self.target_buckets = make_buckets(summary_maxlen + 1, start=16)

    def __iter__(self, random=False):
        sources, targets = [], []
        for is_end, (summary, source) in self.sample(random):
            sources.append(self.tokenizer.encode(source, maxlen=self.source_maxlen)[0])
            summary_ids = self.tokenizer.encode(summary, maxlen=self.summary_maxlen)[0]
            targets.append([START_ID] + summary_ids)
            if len(sources) == self.batch_size or is_end:
                yield [self._pad(sources, self.source_buckets),
                       self._pad(targets, self.target_buckets)], None  # fmt: skip
                sources, targets = [], []

    @staticmethod
    def _pad(rows, buckets):
        length = bucket_length(max(len(r) for r in rows), buckets)
        return sequence_padding(rows, length=length)


class SummaryCrossEntropy(Loss):
    """Next-id cross-entropy of the decoder's logits, over the summary's real positions.

    Inputs ``[target_ids, logits]``: position ``t`` predicts ``target_ids[t + 1]``, which
    counts unless it is padding (0; the start id 0 is only ever at position 0, which is
    never predicted).
    """

    def compute_loss(self, inputs, mask=None):
        target_ids, logits = inputs
        y_true = target_ids[:, 1:]
        y_mask = keras.ops.cast(keras.ops.not_equal(y_true, 0), "float32")
        loss = keras.losses.sparse_categorical_crossentropy(
            y_true, logits[:, :-1], from_logits=True
        )
        return keras.ops.sum(loss * y_mask) / keras.ops.maximum(keras.ops.sum(y_mask), 1.0)


# -- generation ------------------------------------------------------------------------------
def forbid_end(scores, output_ids, end_id, minlen, rtype):
    """``scores`` with ``end_id`` made impossible while fewer than ``minlen`` ids follow the
    start id (log-probability -1e9 for ``rtype="logits"``, probability 0 otherwise)."""
    if output_ids.shape[1] - 1 >= minlen:
        return scores
    scores = np.array(scores)
    if rtype == "logits":
        scores[:, end_id] = -1e9
    else:
        scores[:, end_id] = 0.0
        scores /= scores.sum(axis=1, keepdims=True)
    return scores


class Summarizer(T5Generator):
    """Beam search over T5's cached decoder, summaries at least ``summary_minlen`` ids long.

    ``generate_ids(source_ids, topk)`` returns the best summary's ids (start id first).
    """

    def __init__(self, t5, tokenizer, summary_maxlen, summary_minlen=1, max_source_length=512):
        super().__init__(
            t5, start_id=START_ID, end_id=tokenizer._token_end_id, maxlen=summary_maxlen,
            max_source_length=max_source_length,
        )  # fmt: skip
        self.summary_minlen = summary_minlen

    def predict(self, inputs, output_ids, states=None, temperature=1, rtype="probas"):
        scores, states = super().predict(inputs, output_ids, states, temperature, rtype)
        return forbid_end(scores, output_ids, self.end_id, self.summary_minlen, rtype), states

    def generate_ids(self, source_ids, topk):
        return self.beam_search([np.asarray(source_ids)], topk=topk)

    @property
    def num_compilations(self):
        return self.decoder.num_compilations


class RecomputingSummarizer(AutoRegressiveDecoder):
    """bert4keras's way (its example's ``AutoTitle``): the source encoded by ``t5.encoder``,
    then at every step ``t5.decoder`` over the encoder's states and the whole summary so
    far, the next id's scores read at its last position. Slower; the reference the cached
    :class:`Summarizer` must agree with.

    To compile a few programs rather than one per step, the summary so far is padded with
    0 to ``1 + summary_maxlen`` ids (the causal decoder's padding after the last position
    changes nothing before it) and the encoder's states with zero rows to a bucket length
    (zero rows are the source's padding, masked in cross-attention); the candidates' rows
    are padded to a power of two by repeating the first.
    """

    def __init__(self, t5, tokenizer, summary_maxlen, summary_minlen=1, max_source_length=512):
        super().__init__(start_id=START_ID, end_id=tokenizer._token_end_id, maxlen=summary_maxlen)
        self.t5 = t5
        self.summary_minlen = summary_minlen
        self.source_buckets = make_buckets(max_source_length)

    @AutoRegressiveDecoder.wraps(default_rtype="logits")
    def _scores(self, inputs, output_ids, states):
        rows, length = output_ids.shape
        padded_rows = 1 << (rows - 1).bit_length()
        encoded = np.concatenate([inputs[0], np.repeat(inputs[0][:1], padded_rows - rows, 0)])
        ids = np.concatenate([output_ids, np.repeat(output_ids[:1], padded_rows - rows, 0)])
        ids = sequence_padding(ids, length=self.maxlen + 1)
        logits = self.t5.decoder.predict_on_batch([encoded, ids])
        return np.asarray(logits)[:rows, length - 1]

    def predict(self, inputs, output_ids, states=None, temperature=1, rtype="probas"):
        scores, states = self._scores(inputs, output_ids, states, temperature, rtype)
        return forbid_end(scores, output_ids, self.end_id, self.summary_minlen, rtype), states

    def generate_ids(self, source_ids, topk):
        length = bucket_length(len(source_ids), self.source_buckets)
        source = sequence_padding([source_ids], length=length)
        encoded = self.t5.encoder.predict_on_batch(source)[0]
        return self.beam_search([np.asarray(encoded)], topk=topk)


# -- the metric ------------------------------------------------------------------------------
_UNITS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+")


def text_units(text):
    """The units ROUGE-L counts: lower-cased words, each CJK character on its own."""
    return _UNITS.findall(text.lower())


def rouge_l(candidate, reference):
    """ROUGE-L F1 of two texts over :func:`text_units` (0 when either has none)."""
    candidate, reference = text_units(candidate), text_units(reference)
    if not candidate or not reference:
        return 0.0
    common, _ = longest_common_subsequence(candidate, reference)
    if common == 0:
        return 0.0
    precision, recall = common / len(candidate), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def summary_problems(ids, tokenizer, minlen, maxlen):
    """Why generated ``ids`` (start id first) are not a valid summary (an empty list if they
    are).

    The text they decode to may be empty: a model that has learnt little writes the most
    frequent piece over and over, which for SentencePiece is often ``▁`` alone (a word
    start), and that decodes to nothing.
    """
    ids = [int(i) for i in ids]
    if not ids or ids[0] != START_ID:
        return ["the ids do not start with the start id 0"]
    ids = ids[1:]
    problems = []
    if not max(minlen, 1) <= len(ids) <= maxlen:
        problems.append(f"{len(ids)} ids (allowed {max(minlen, 1)}..{maxlen})")
    if any(not 0 <= i < tokenizer.vocab_size for i in ids):
        return problems + ["an id outside the vocabulary"]
    end_id = tokenizer._token_end_id
    body = ids[:-1] if ids and ids[-1] == end_id else ids
    if len(body) == len(ids) and len(ids) < maxlen:
        problems.append("stopped before the length limit without </s>")
    specials = [i for i in body if tokenizer._is_special(i)]
    if specials:
        problems.append(f"special ids inside the summary: {specials}")
    return problems


# -- the script ------------------------------------------------------------------------------
def build_parser():
    parser = new_parser(__doc__)
    group = parser.add_argument_group("model")
    group.add_argument("--pretrained", help="a T5 / mT5 folder, or a name from `kerasbert list`")
    group.add_argument("--config", help="config.json (HF) or the mesh-TF operative config")
    group.add_argument("--checkpoint", help="checkpoint path (any supported format)")
    group.add_argument("--spm", help="SentencePiece model (spiece.model)")
    group.add_argument("--keep-tokens", help="JSON list of the model's ids to keep (bert4keras)")
    group.add_argument("--model", help="t5.1.0 / t5.1.1 / mt5.1.1 (default: detected)")
    group.add_argument(
        "--tiny", action="store_true", help="the tiny mT5 test fixture (smoke test, seconds)"
    )
    parser.add_argument("--train", default=str(DATA / "summarization" / "train.tsv"))
    parser.add_argument("--dev", default=str(DATA / "summarization" / "dev.tsv"))
    parser.add_argument("--source-maxlen", type=int, help="source ids (default 256; tiny 128)")
    parser.add_argument(
        "--summary-maxlen", type=int, help="the most summary ids, </s> included (32; tiny 24)"
    )
    parser.add_argument(
        "--summary-minlen", type=int, help="ids needed before </s> may end one (1; tiny 6)"
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--topk", type=int, help="beam size (default 4; tiny 2)")
    parser.add_argument("--num-dev", type=int, help="dev examples to summarize (default all)")
    parser.add_argument(
        "--num-check",
        type=int,
        help="dev summaries regenerated without the cache to compare (default 1; tiny 4)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    defaults = TINY_DEFAULTS if args.tiny else FULL_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    started = time.perf_counter()
    keras.utils.set_random_seed(args.seed)

    train_pairs, dev_pairs = read_pairs(args.train), read_pairs(args.dev)
    with tempfile.TemporaryDirectory() as workdir:
        t5, tokenizer = load_t5_and_tokenizer(args, workdir)

    # The training model: the loss layer reads the decoder's ids and its logits.
    model = t5.model
    loss = SummaryCrossEntropy(output_axis=1, name="Summary-CrossEntropy")
    train_model = keras.Model(model.inputs, loss([model.inputs[1], model.outputs[0]]))
    batches = SummaryBatches(
        train_pairs, tokenizer, args.source_maxlen, args.summary_maxlen, args.batch_size
    )
    total_steps = len(batches) * args.epochs
    schedule = PiecewiseLinearSchedule(
        {max(1, total_steps // 10): 1.0, total_steps: 0.1}, args.learning_rate
    )
    train_model.compile(optimizer=AdamW(learning_rate=schedule, weight_decay=args.weight_decay))
    history = train_model.fit(batches.to_pydataset(), epochs=args.epochs, verbose=2)
    losses = [float(x) for x in history.history["loss"]]
    trained = time.perf_counter()
    print(f"vocabulary: {tokenizer.vocab_size} pieces; training took {trained - started:.1f} s")

    # Summaries of the dev set by beam search over the cached decoder.
    lengths = (args.summary_maxlen, args.summary_minlen)
    summarizer = Summarizer(t5, tokenizer, *lengths, max_source_length=args.source_maxlen)
    samples, scores, lead_scores, invalid = [], [], [], []
    for summary, source in dev_pairs[: args.num_dev]:
        source_ids = tokenizer.encode(source, maxlen=args.source_maxlen)[0]
        ids = [int(i) for i in summarizer.generate_ids(source_ids, args.topk)]
        generated = tokenizer.decode(ids)
        problems = summary_problems(ids, tokenizer, *reversed(lengths))
        if problems:
            invalid.append({"generated": generated, "ids": ids, "problems": problems})
        scores.append(rouge_l(generated, summary))
        # A simple baseline: the source's first words, as many as the reference has.
        lead = " ".join(source.split()[: len(summary.split())])
        lead_scores.append(rouge_l(lead, summary))
        samples.append({"source": source, "summary": summary, "generated": generated,
                        "source_ids": source_ids, "ids": ids})  # fmt: skip
        print(f"reference: {summary}\ngenerated: {generated}\n")
    generated_at = time.perf_counter()
    print(f"cached decoding compiled {summarizer.num_compilations} programs (source encoding "
          f"and steps) for {len(samples)} summaries")  # fmt: skip

    # The cached decoder must reproduce bert4keras's recomputing beam search exactly.
    recomputing = RecomputingSummarizer(
        t5, tokenizer, *lengths, max_source_length=args.source_maxlen
    )
    mismatches = []
    for sample in samples[: args.num_check]:
        expected = [int(i) for i in recomputing.generate_ids(sample["source_ids"], args.topk)]
        if expected != sample["ids"]:
            mismatches.append({"cached": sample["ids"], "recomputed": expected})
    num_checked = len(samples[: args.num_check])

    results = {
        "losses": losses,
        "rouge_l": float(np.mean(scores)) if scores else 0.0,
        "lead_rouge_l": float(np.mean(lead_scores)) if lead_scores else 0.0,
        "samples": samples,
        "invalid_summaries": invalid,
        "num_checked": num_checked,
        "cache_mismatches": mismatches,
        "compilations": summarizer.num_compilations,
        "vocab_size": tokenizer.vocab_size,
        "train_seconds": trained - started,
        "generate_seconds": generated_at - trained,
        "seconds": time.perf_counter() - started,
    }
    print(
        f"epoch losses: {' '.join(f'{x:.3f}' for x in losses)}\n"
        f"dev ROUGE-L ({len(samples)} summaries, beam {args.topk}): {results['rouge_l']:.4f} "
        f"(lead baseline {results['lead_rouge_l']:.4f})\n"
        f"cached decoding equals recomputing decoding: {num_checked - len(mismatches)} of "
        f"{num_checked} summaries\n"
        f"time: {results['seconds']:.1f} s ({results['train_seconds']:.1f} s to build and "
        f"train, {results['generate_seconds']:.1f} s to generate, the rest for the check)"
    )
    if args.tiny:
        if not losses[-1] < losses[0]:
            raise AssertionError(f"the training loss did not fall: {losses}")
        if invalid:
            raise AssertionError(f"invalid generated summaries: {invalid}")
        if mismatches:
            raise AssertionError(f"cached and recomputing decoding differ: {mismatches}")
    return results


if __name__ == "__main__":
    main()
