"""Basic: extract token and sentence vectors with a BERT encoder, and round-trip the model.

Task: feed a few sentences through a BERT-family encoder (no task head) and read its
hidden states: one vector per token (``(batch, length, hidden)``) and one per sentence (the
``[CLS]`` vector, and the mean of the token vectors over the real tokens). Then save the
model in Keras' ``.keras`` format, load it back with ``keras.models.load_model`` and check
that the reloaded model gives exactly the same vectors.

Data: plain sentences, from ``--text`` (repeatable) or a built-in set of Chinese sentences.
The sentences are padded together to one of a few bucket lengths
(``sequence_padding(..., buckets=make_buckets(maxlen))``), so any mix of lengths compiles a
bounded set of shapes. The script also checks that padding does not change a sentence's
vectors (each sentence run alone vs. inside the padded batch).

Commands::

    # a real Chinese BERT (downloaded once into ~/.cache/kerasbert)
    python examples/basic_extract_features.py --pretrained google-bert-base-chinese

    # any checkpoint on disk (TF checkpoint, safetensors, ...)
    python examples/basic_extract_features.py --config chinese_L-12_H-768_A-12/bert_config.json \\
        --checkpoint chinese_L-12_H-768_A-12/bert_model.ckpt \\
        --vocab chinese_L-12_H-768_A-12/vocab.txt

    # smoke test: a tiny random BERT over the bert-base-chinese vocabulary (seconds on CPU)
    python examples/basic_extract_features.py --tiny

    # English text with an English model
    python examples/basic_extract_features.py --pretrained all-MiniLM-L6-v2 \\
        --text "Language models read text." --text "The weather is nice today."

``--save-dir DIR`` keeps the saved ``model.keras`` there (default: a temporary folder that
is removed afterwards).
"""

import pathlib
import tempfile

import numpy as np
from common import add_model_args, load_model_and_tokenizer, new_parser

# isort: split
# (``common`` imports kerasbert first, which selects the JAX backend before keras loads.)
import keras

from kerasbert.snippets import make_buckets, sequence_padding

SENTENCES = [
    "语言模型",
    "今天的天气很适合去公园散步。",
    "他把刚写完的论文发给了导师。",
]


def parse_args(argv=None):
    parser = new_parser(__doc__)
    add_model_args(parser, language="zh")
    parser.add_argument("--text", action="append", help="a sentence (repeatable)")
    parser.add_argument("--maxlen", type=int, default=64, help="tokens per sentence at most")
    parser.add_argument("--save-dir", help="where to write model.keras (default: a temp dir)")
    return parser.parse_args(argv)


def encode_batch(tokenizer, texts, maxlen):
    """Padded ``(token_ids, segment_ids)`` arrays and each sentence's length in tokens."""
    token_ids, segment_ids = [], []
    for text in texts:
        ids, segments = tokenizer.encode(text, maxlen=maxlen)
        token_ids.append(ids)
        segment_ids.append(segments)
    buckets = make_buckets(maxlen)
    lengths = np.array([len(ids) for ids in token_ids])
    return (
        sequence_padding(token_ids, buckets=buckets),
        sequence_padding(segment_ids, buckets=buckets),
        lengths,
    )


def sentence_vectors(token_vectors, lengths):
    """The ``[CLS]`` vectors and the mean of each sentence's real token vectors."""
    mask = (np.arange(token_vectors.shape[1])[None, :] < lengths[:, None])[..., None]
    mean = (token_vectors * mask).sum(axis=1) / lengths[:, None]
    return token_vectors[:, 0], mean


def main(argv=None):
    args = parse_args(argv)
    texts = args.text or SENTENCES
    model, tokenizer = load_model_and_tokenizer(args)

    token_ids, segment_ids, lengths = encode_batch(tokenizer, texts, args.maxlen)
    token_vectors = np.asarray(model.predict([token_ids, segment_ids], verbose=0))
    cls_vectors, mean_vectors = sentence_vectors(token_vectors, lengths)

    print(f"input shape {token_ids.shape} (batch, padded length); lengths {lengths.tolist()}")
    print(f"token vectors    {token_vectors.shape}")
    print(f"[CLS] vectors    {cls_vectors.shape}")
    print(f"mean vectors     {mean_vectors.shape}")
    for text, ids, vector in zip(texts, token_ids, token_vectors):
        tokens = tokenizer.ids_to_tokens([int(i) for i in ids if i])
        print(f"\n{text}\n  tokens: {' '.join(tokens)}")
        for token, row in list(zip(tokens, vector))[:3]:
            print(f"  {token:>8} {np.array2string(row[:4], precision=4)} ...")

    # Padding must not leak into the real tokens: each sentence alone gives the same vectors.
    padding_diff = 0.0
    for i, text in enumerate(texts):
        ids, segments, n = encode_batch(tokenizer, [text], args.maxlen)
        alone = np.asarray(model.predict([ids, segments], verbose=0))[0, : n[0]]
        padding_diff = max(padding_diff, float(np.abs(alone - token_vectors[i, : n[0]]).max()))
    print(f"\nmax |alone - in padded batch| over real tokens: {padding_diff:.2e}")

    # Save / load round trip in the .keras format.
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.save_dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "model.keras"
        model.save(path)
        reloaded = keras.models.load_model(path)
        again = np.asarray(reloaded.predict([token_ids, segment_ids], verbose=0))
        size_mb = path.stat().st_size / 2**20
    round_trip_diff = float(np.abs(again - token_vectors).max())
    print(f"saved {path.name} ({size_mb:.1f} MB); reloaded max diff: {round_trip_diff}")

    return {
        "texts": texts,
        "token_ids": token_ids,
        "lengths": lengths,
        "token_vectors": token_vectors,
        "cls_vectors": cls_vectors,
        "mean_vectors": mean_vectors,
        "padding_max_diff": padding_diff,
        "round_trip_max_diff": round_trip_diff,
    }


if __name__ == "__main__":
    main()
