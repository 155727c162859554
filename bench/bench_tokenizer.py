"""Tokenizer throughput on ~1 MB of mixed Chinese / English text, one process, one thread.

Candidates, measured in the same run on the same lines:

- ``kerasbert (pure)``: ``Tokenizer(..., fast=False).encode`` per line;
- ``bert4keras``: ``bert4keras.tokenizers.Tokenizer.encode`` per line, when installed;
- ``kerasbert (fast)``: ``Tokenizer(..., fast=True).encode`` per line (Rust backend);
- ``tokenizers (direct)``: HF's Rust ``BertWordPieceTokenizer.encode`` per line;
- and the batch APIs: ``Tokenizer.encode_batch`` vs ``BertWordPieceTokenizer.encode_batch``.

The text is synthetic: runs of Chinese characters and English words drawn from the
vocabulary (half of them with extra word pieces appended, so they must be split, as
inflected words are), numbers of up to 12 digits and punctuation. The word-piece cache is
warm, as in any long-running process (each candidate runs once before it is timed).

Run (the bench venv needs kerasbert, tokenizers, and optionally bert4keras)::

    pip install --no-deps bert4keras==0.11.5 && pip install six tokenizers
    RAYON_NUM_THREADS=1 python bench/bench_tokenizer.py --vocab tests/data/zh_vocab.txt

bert4keras's ``snippets`` module imports its Keras backend; its tokenizer does not use it,
so this script registers an inert stand-in for ``bert4keras.backend`` before importing it.
"""

import argparse
import os
import random
import sys
import time
import types

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one thread for the Rust tokenizer too


def make_corpus(vocab, target_chars, seed=0):
    rng = random.Random(seed)
    chinese = [t for t in vocab if len(t) == 1 and "\u4e00" <= t <= "\u9fff"]
    english = [t for t in vocab if t.isascii() and t.isalpha() and len(t) > 2]
    suffixes = [t[2:] for t in vocab if t.startswith("##") and t[2:].isascii() and t[2:].isalpha()]
    punct = list("，。！？、；：,.!?;:") + ["(", ")", "“", "”"]
    lines, size = [], 0
    while size < target_chars:
        parts = []
        for _ in range(rng.randint(5, 25)):
            kind = rng.random()
            if kind < 0.55:
                parts.append("".join(rng.choices(chinese, k=rng.randint(1, 6))))
            elif kind < 0.85:
                # Half the words need splitting into pieces, as inflected words do.
                word = rng.choice(english)
                if rng.random() < 0.5:
                    word += "".join(rng.choices(suffixes, k=rng.randint(1, 2)))
                parts.append(" " + (word.capitalize() if rng.random() < 0.2 else word) + " ")
            elif kind < 0.93:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 12))))
            else:
                parts.append(rng.choice(punct))
        line = "".join(parts).strip()
        lines.append(line)
        size += len(line)
    return lines


def bert4keras_tokenizer(vocab_path):
    class Inert:
        def __getattr__(self, name):
            raise RuntimeError("bert4keras backend is not used by its tokenizer")

    backend = types.ModuleType("bert4keras.backend")
    backend.K = backend.keras = backend.tf = Inert()
    backend.is_tf_keras = False
    sys.modules.setdefault("bert4keras.backend", backend)
    try:
        from bert4keras.tokenizers import Tokenizer as Bert4kerasTokenizer
    except ImportError:
        return None
    return Bert4kerasTokenizer(vocab_path, do_lower_case=True)


def timed(function, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", default="tests/data/zh_vocab.txt")
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from kerasbert.tokenizers import Tokenizer, load_vocab

    vocab = load_vocab(args.vocab)
    lines = make_corpus(vocab, args.chars)
    total = sum(len(line) for line in lines)
    print(f"{len(lines)} lines, {total} characters; python {sys.version.split()[0]}")

    pure = Tokenizer(vocab, do_lower_case=True, fast=False)
    candidates = [("kerasbert (pure)", lambda: [pure.encode(t) for t in lines])]
    reference = bert4keras_tokenizer(args.vocab)
    if reference is not None:
        candidates.append(("bert4keras", lambda: [reference.encode(t) for t in lines]))
    try:
        from tokenizers import BertWordPieceTokenizer

        fast = Tokenizer(vocab, do_lower_case=True, fast=True)
        direct = BertWordPieceTokenizer(args.vocab, lowercase=True)
        candidates += [
            ("kerasbert (fast)", lambda: [fast.encode(t) for t in lines]),
            ("tokenizers (direct)", lambda: [direct.encode(t).ids for t in lines]),
            ("kerasbert encode_batch (fast)", lambda: fast.encode_batch(lines)),
            ("tokenizers encode_batch", lambda: [e.ids for e in direct.encode_batch(lines)]),
        ]
    except ImportError:
        print("tokenizers not installed: fast path not measured")

    results = {}
    print(f"{'candidate':<32}{'seconds':>9}{'chars/s':>14}")
    for name, function in candidates:
        function()  # warm caches, as a long-running process would be
        seconds = timed(function, args.repeats)
        results[name] = total / seconds
        print(f"{name:<32}{seconds:>9.3f}{results[name]:>14,.0f}")
    if "bert4keras" in results:
        print(f"pure / bert4keras: {results['kerasbert (pure)'] / results['bert4keras']:.2f}x")
    if "tokenizers (direct)" in results:
        ratio = results["kerasbert (fast)"] / results["tokenizers (direct)"]
        print(f"fast / tokenizers direct (per line): {ratio:.2f}x")
        batch = results["kerasbert encode_batch (fast)"] / results["tokenizers encode_batch"]
        print(f"fast / tokenizers direct (batch): {batch:.2f}x")


if __name__ == "__main__":
    main()
