"""Title generation with UniLM: a BERT-family model writes a title for a short news text.

The model is an ordinary BERT / ALBERT / NEZHA checkpoint built with UniLM attention
(``application="unilm"``): the content (segment 0) is read bidirectionally, the title
(segment 1) left to right, and the tied MLM head predicts each title token from the ones
before it. Training minimises the next-token cross-entropy over the title positions only
(a ``kerasbert.layers.Loss`` layer); generation is beam search with a key/value cache
(``kerasbert.models.IncrementalModel``), so each step runs only the newest token through
the network, as one jitted function over a fixed-size cache: decoding compiles a handful
of programs (one per batch size and chunk width, printed at the end), not one per step.
Generated titles are scored against the references by character-level ROUGE-L.
This is the workflow of bert4keras's ``task_seq2seq_autotitle.py``.

Data: UTF-8 text, one example per line, ``title<TAB>content`` (the layout of the CSL
abstract-to-title and THUCNews-style title generation sets). The bundled
``examples/data/autotitle/{train,dev}.tsv`` are 120 / 20 short Chinese news items written
for this example; point ``--train`` / ``--dev`` at a real corpus in the same format.

Commands (from the repository root):

    # a real Chinese checkpoint, downloaded and cached on first use
    python examples/task_seq2seq_autotitle.py --pretrained hfl-chinese-roberta-wwm-ext

    # any BERT / ALBERT / NEZHA checkpoint on disk, a corpus of your own
    python examples/task_seq2seq_autotitle.py \\
        --config chinese_L-12_H-768_A-12/bert_config.json \\
        --checkpoint chinese_L-12_H-768_A-12/bert_model.ckpt \\
        --vocab chinese_L-12_H-768_A-12/vocab.txt \\
        --train train.tsv --dev dev.tsv --epochs 10 --batch-size 16

    # smoke test: a tiny random model, a few epochs, seconds on a CPU
    python examples/task_seq2seq_autotitle.py --tiny

``--tiny`` checks that the training loss fell, that every generated title is valid (the
decoding of the generated ids, non-empty, ``--title-minlen`` to ``--title-maxlen`` ids,
ending with ``[SEP]`` unless cut at that limit, no other special token inside), and that the
cached decoder produces exactly the ids of a decoder recomputing the whole sequence at every
step. A tiny model trained for seconds learns little (its favourite first token is
``[SEP]``), so ``--tiny`` makes titles at least 6 ids long, which also makes the cache check
span several steps; its titles are mostly frequent characters, and the ROUGE-L it prints
tests the metric's plumbing, not the model.
"""

import time

import numpy as np
from common import DATA, add_model_args, load_model_and_tokenizer, new_parser, tiny_vocab

from kerasbert.backend import K, keras
from kerasbert.layers import Loss
from kerasbert.models import IncrementalModel
from kerasbert.optimizers import AdamW, PiecewiseLinearSchedule
from kerasbert.snippets import (
    AutoRegressiveDecoder,
    DataGenerator,
    bucket_length,
    longest_common_subsequence,
    make_buckets,
    sequence_padding,
)
from kerasbert.tokenizers import Tokenizer, load_vocab

TINY_DEFAULTS = {
    "maxlen": 44,
    "title_maxlen": 12,
    "epochs": 4,
    "batch_size": 8,
    "learning_rate": 5e-3,
    "topk": 2,
    "num_dev": 4,
    "num_check": 4,
    "title_minlen": 6,
}
FULL_DEFAULTS = {
    "maxlen": 256,
    "title_maxlen": 32,
    "epochs": 10,
    "batch_size": 16,
    "learning_rate": 2e-5,
    "topk": 3,
    "num_dev": None,
    "num_check": 1,
    "title_minlen": 1,
}


def read_pairs(path):
    """``[(title, content), ...]`` from a ``title<TAB>content`` file (blank lines skipped)."""
    pairs = []
    with open(path, encoding="utf-8") as reader:
        for number, line in enumerate(reader, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise SystemExit(
                    f"{path}:{number}: expected 'title<TAB>content', got {len(fields)} fields"
                )
            pairs.append((fields[0].strip(), fields[1].strip()))
    return pairs


def encode_pair(tokenizer, content, title, maxlen, title_maxlen):
    """``(token_ids, segment_ids)`` of ``[CLS] content [SEP] title [SEP]``, title in segment 1.

    The content keeps at most ``maxlen - title_maxlen`` tokens and the title (with its
    ``[SEP]``) at most ``title_maxlen``: the budgets the decoder works with, so the title
    starts at the same position in training as in generation. (bert4keras's example
    truncates the pair jointly to ``maxlen`` instead, so a long content is cut shorter
    when generating than when training and every title position shifts.)
    """
    content_ids, _ = tokenizer.encode(content, maxlen=maxlen - title_maxlen)
    title_ids = tokenizer.encode(title, maxlen=title_maxlen + 1)[0][1:]  # without [CLS]
    return content_ids + title_ids, [0] * len(content_ids) + [1] * len(title_ids)


class TitleBatches(DataGenerator):
    """Batches of ``[token_ids, segment_ids]`` (no targets: the loss layer reads the inputs).

    Each example is :func:`encode_pair`'s ``[CLS] content [SEP] title [SEP]``. Examples of
    similar length are batched together (a pool of batches is sorted by length, then the
    batches are shuffled), every batch is padded to a length from ``buckets``, and an epoch's
    incomplete last batch is completed with examples from the start of the epoch
    (``remainder="fill"``), so JAX compiles one train step per bucket.
    """

    def __init__(self, pairs, tokenizer, maxlen, title_maxlen, buckets, batch_size):
        super().__init__(pairs, batch_size, buckets=buckets, remainder="fill")
        self.tokenizer = tokenizer
        self.maxlen = maxlen
        self.title_maxlen = title_maxlen
        self.pool_size = batch_size * 16  # a multiple of batch_size: every batch is full

    def _batches(self, pool, random):
        pool = sorted(pool, key=lambda item: len(item[0]))
        batches = [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if random:
            np.random.shuffle(batches)
        for batch in batches:
            token_ids = self.pad([ids for ids, _ in batch])
            segment_ids = self.pad([seg for _, seg in batch])
            yield [token_ids, segment_ids], None

    def __iter__(self, random=False):
        pool = []
        for is_end, (title, content) in self.sample(random):
            pool.append(encode_pair(self.tokenizer, content, title, self.maxlen, self.title_maxlen))
            if len(pool) == self.pool_size or is_end:
                yield from self._batches(pool, random)
                pool = []


class TitleCrossEntropy(Loss):
    """Next-token cross-entropy of the MLM probabilities, over the title positions only.

    Inputs ``[token_ids, segment_ids, probas]``: position ``t`` predicts token ``t + 1``,
    which counts when it lies in segment 1 (the title and its closing ``[SEP]``). Padding
    has segment 0, so it never counts.
    """

    def compute_loss(self, inputs, mask=None):
        token_ids, segment_ids, probas = inputs
        y_true = token_ids[:, 1:]
        y_mask = K.cast(segment_ids[:, 1:], "float32")
        y_pred = K.cast(probas[:, :-1], "float32")
        loss = K.sparse_categorical_crossentropy(y_true, y_pred)
        return K.sum(loss * y_mask) / K.maximum(K.sum(y_mask), 1.0)


class AutoTitle(AutoRegressiveDecoder):
    """Beam-search title generator for a UniLM model.

    With ``cached=True`` the first step runs the content through an
    :class:`~kerasbert.models.IncrementalModel` and every later step only the newest title
    token, the keys and values of earlier tokens coming from the cache (the decoder's
    states, which follow the beams). With ``cached=False`` every step recomputes the whole
    ``content + title so far`` with the Keras model (padded to a length from ``buckets``;
    padding comes after the last real token and is masked, so it changes nothing): slower,
    and the reference the cached decoder must agree with.

    Until ``title_minlen`` ids have been generated, ``[SEP]`` gets probability 0.
    """

    def __init__(
        self, builder, tokenizer, maxlen, title_maxlen, title_minlen=1, cached=True, buckets=None
    ):
        super().__init__(start_id=None, end_id=tokenizer._token_end_id, maxlen=title_maxlen)
        self.title_minlen = title_minlen
        self.model = builder.model
        self.tokenizer = tokenizer
        self.content_maxlen = maxlen - title_maxlen
        self.buckets = buckets or make_buckets(maxlen)
        # The cache holds maxlen positions: the content and the title fit in them.
        self.step = IncrementalModel(builder, max_length=maxlen) if cached else None

    @AutoRegressiveDecoder.wraps(default_rtype="probas", use_states=True)
    def predict(self, inputs, output_ids, states):
        token_ids, segment_ids = inputs
        if self.step is not None and states is not None:
            # Only the newest title token; the keys and values of the rest are cached.
            token_ids = output_ids[:, -1:]
            probas, cache = self.step(token_ids, np.ones_like(token_ids), states)
            probas = probas[:, -1]
        else:  # the content and the whole title so far
            token_ids = np.concatenate([token_ids, output_ids], 1)
            segment_ids = np.concatenate([segment_ids, np.ones_like(output_ids)], 1)
            if self.step is not None:
                probas, cache = self.step(token_ids, segment_ids, states)
                probas = probas[:, -1]
            else:
                length = token_ids.shape[1]
                padded = bucket_length(length, self.buckets)
                token_ids = sequence_padding(token_ids, length=padded)
                segment_ids = sequence_padding(segment_ids, length=padded)
                probas = self.model.predict_on_batch([token_ids, segment_ids])
                probas, cache = np.asarray(probas)[:, length - 1], None
        if output_ids.shape[1] < self.title_minlen:  # too short to end
            probas = probas.copy()
            probas[:, self.end_id] = 0.0
        return probas, cache

    def generate_ids(self, content, topk):
        token_ids, segment_ids = self.tokenizer.encode(content, maxlen=self.content_maxlen)
        return self.beam_search([token_ids, segment_ids], topk=topk)

    def generate(self, content, topk):
        """``(title, ids)``: the decoded title and the generated ids."""
        ids = self.generate_ids(content, topk)
        return self.tokenizer.decode(ids), ids


def rouge_l(candidate, reference):
    """Character-level ROUGE-L F1 (spaces ignored), from the longest common subsequence."""
    candidate, reference = "".join(candidate.split()), "".join(reference.split())
    if not candidate or not reference:
        return 0.0
    common, _ = longest_common_subsequence(candidate, reference)
    if common == 0:
        return 0.0
    precision, recall = common / len(candidate), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def title_problems(ids, title, tokenizer, title_minlen, title_maxlen):
    """Why generated ``ids`` / ``title`` are not a valid title (an empty list if they are)."""
    problems = []
    ids = [int(i) for i in ids]
    if not max(title_minlen, 1) <= len(ids) <= title_maxlen:
        problems.append(f"{len(ids)} ids (allowed {max(title_minlen, 1)}..{title_maxlen})")
    if any(not 0 <= i < tokenizer.vocab_size for i in ids):
        problems.append("an id outside the vocabulary")
        return problems
    end_id = tokenizer._token_end_id
    body = ids[:-1] if ids and ids[-1] == end_id else ids
    if len(body) == len(ids) and len(ids) < title_maxlen:
        problems.append("stopped before the length limit without [SEP]")
    specials = [t for t in tokenizer.ids_to_tokens(body) if t.startswith("[") and t.endswith("]")]
    if specials:
        problems.append(f"special tokens inside the title: {specials}")
    if not title.strip():
        problems.append("empty title")
    if title != tokenizer.decode(ids):
        problems.append("title is not the decoding of its ids")
    return problems


def vocab_path(args):
    """The ``vocab.txt`` that ``load_model_and_tokenizer`` will use for these options."""
    if args.tiny:
        return tiny_vocab(args.tiny_language)
    if args.pretrained:
        from kerasbert.pretrained import get_pretrained

        return get_pretrained(args.pretrained).vocab
    if not args.vocab:
        raise SystemExit("give --tiny, --pretrained NAME, or --config, --checkpoint and --vocab")
    return args.vocab


def load_simplified(args, **build_kwargs):
    """``(builder, tokenizer)`` over a simplified vocabulary, as bert4keras's example does.

    Multi-character Chinese tokens (``中国``, ``##们``, ...) never occur in a character-level
    Chinese tokenization, so ``load_vocab(simplified=True)`` drops them (21128 -> 13584
    tokens for BERT's Chinese vocabulary) and ``keep_tokens`` shrinks the embedding and the
    MLM output to the rest: a smaller softmax, over the tokens that can actually occur.
    """
    token_dict, keep_tokens = load_vocab(
        vocab_path(args), simplified=True, startswith=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    )
    builder, tokenizer = load_model_and_tokenizer(args, keep_tokens=keep_tokens, **build_kwargs)
    return builder, Tokenizer(token_dict, do_lower_case=tokenizer._do_lower_case)


def build_parser():
    parser = new_parser(__doc__)
    add_model_args(parser, language="zh")
    parser.add_argument("--train", default=str(DATA / "autotitle" / "train.tsv"))
    parser.add_argument("--dev", default=str(DATA / "autotitle" / "dev.tsv"))
    parser.add_argument("--maxlen", type=int, help="content + title tokens (default 256; tiny 44)")
    parser.add_argument(
        "--title-maxlen", type=int, help="the most generated title ids (default 32; tiny 12)"
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument(
        "--title-minlen",
        type=int,
        help="title ids needed before [SEP] may end it (default 1; tiny 6)",
    )
    parser.add_argument("--topk", type=int, help="beam size (default 3; tiny 2)")
    parser.add_argument("--num-dev", type=int, help="dev examples to generate for (default all)")
    parser.add_argument(
        "--num-check",
        type=int,
        help="dev titles regenerated without the cache to compare (default 1; tiny 4)",
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
    builder, tokenizer = load_simplified(
        args, application="unilm", with_mlm=True, return_keras_model=False
    )
    model = builder.model

    # The training model: the loss layer reads the inputs and the MLM probabilities.
    loss = TitleCrossEntropy(output_axis=2, name="Title-CrossEntropy")
    train_model = keras.Model(model.inputs, loss(model.inputs + model.outputs))
    buckets = make_buckets(args.maxlen, step=16 if args.maxlen <= 128 else None)
    print(f"padded lengths (buckets): {buckets}")
    batches = TitleBatches(
        train_pairs, tokenizer, args.maxlen, args.title_maxlen, buckets, args.batch_size
    )
    total_steps = len(batches) * args.epochs
    schedule = PiecewiseLinearSchedule(
        {max(1, total_steps // 10): 1.0, total_steps: 0.1}, args.learning_rate
    )
    train_model.compile(optimizer=AdamW(learning_rate=schedule, weight_decay=args.weight_decay))
    history = train_model.fit(batches.to_pydataset(), epochs=args.epochs, verbose=2)
    losses = [float(x) for x in history.history["loss"]]
    trained = time.perf_counter()
    print(f"vocabulary: {tokenizer.vocab_size} tokens; training took {trained - started:.1f} s")

    # Generation on the dev set with the key/value cache.
    lengths = (args.maxlen, args.title_maxlen, args.title_minlen)
    decoder = AutoTitle(builder, tokenizer, *lengths, cached=True)
    samples, scores, lead_scores, invalid = [], [], [], []
    for title, content in dev_pairs[: args.num_dev]:
        generated, ids = decoder.generate(content, args.topk)
        problems = title_problems(ids, generated, tokenizer, args.title_minlen, args.title_maxlen)
        if problems:
            invalid.append((generated, problems))
        scores.append(rouge_l(generated, title))
        # A simple baseline: the content's first len(title) characters.
        lead_scores.append(rouge_l(content[: len(title)], title))
        samples.append({"content": content, "title": title, "generated": generated,
                        "ids": [int(i) for i in ids]})  # fmt: skip
        print(f"reference: {title}\ngenerated: {generated}\n")

    generated_at = time.perf_counter()
    print(f"cached decoding compiled {decoder.step.num_compilations} step programs for "
          f"{len(samples)} titles")  # fmt: skip

    # The cached decoder must reproduce the recomputing decoder's beam search exactly.
    uncached = AutoTitle(builder, tokenizer, *lengths, cached=False, buckets=buckets)
    mismatches = []
    for sample in samples[: args.num_check]:
        uncached_ids = [int(i) for i in uncached.generate_ids(sample["content"], args.topk)]
        if uncached_ids != sample["ids"]:
            mismatches.append({"cached": sample["ids"], "uncached": uncached_ids})
    num_checked = len(samples[: args.num_check])

    results = {
        "losses": losses,
        "rouge_l": float(np.mean(scores)),
        "lead_rouge_l": float(np.mean(lead_scores)),
        "samples": samples,
        "invalid_titles": invalid,
        "num_checked": num_checked,
        "cache_mismatches": mismatches,
        "step_compilations": decoder.step.num_compilations,
        "train_seconds": trained - started,
        "generate_seconds": generated_at - trained,
        "seconds": time.perf_counter() - started,
    }
    print(
        f"epoch losses: {' '.join(f'{x:.3f}' for x in losses)}\n"
        f"dev ROUGE-L (chars, {len(samples)} titles, beam {args.topk}): "
        f"{results['rouge_l']:.4f} (lead baseline {results['lead_rouge_l']:.4f})\n"
        f"cached decoding equals recomputing decoding: {num_checked - len(mismatches)} of "
        f"{num_checked} titles\n"
        f"time: {results['seconds']:.1f} s ({results['train_seconds']:.1f} s to build and train, "
        f"{results['generate_seconds']:.1f} s to generate, the rest for the cache check)"
    )
    if args.tiny:
        if not losses[-1] < losses[0]:
            raise AssertionError(f"the training loss did not fall: {losses}")
        if invalid:
            raise AssertionError(f"invalid generated titles: {invalid}")
        if mismatches:
            raise AssertionError(f"cached and recomputing decoding differ: {mismatches}")
    return results


if __name__ == "__main__":
    main()
