"""Basic: fill in masked tokens with BERT's masked-language-model head.

Task: some tokens of a sentence are replaced by ``[MASK]``; the model (built with
``with_mlm=True``, whose last output is a softmax over the vocabulary at every position)
proposes the top-k tokens for each masked position. The sentence is tokenized as usual and
the chosen token ids are then overwritten with the ``[MASK]`` id, as in BERT's pre-training.

Data: sentences from ``--text`` (repeatable) or a built-in Chinese set; the span to mask is
written in square brackets, e.g. ``"北京是[中国]的首都。"``: every token that overlaps a
bracketed span is masked (found with ``Tokenizer.rematch``), so one bracket masks one or
more tokens and a sentence can hold several brackets. Sentences are padded to bucket
lengths (``sequence_padding(..., buckets=make_buckets(maxlen))``).

Commands::

    # a real Chinese BERT with its MLM head
    python examples/basic_masked_language_model.py --pretrained google-bert-base-chinese

    # any checkpoint holding the MLM head (e.g. Google's TF release)
    python examples/basic_masked_language_model.py \\
        --config chinese_L-12_H-768_A-12/bert_config.json \\
        --checkpoint chinese_L-12_H-768_A-12/bert_model.ckpt \\
        --vocab chinese_L-12_H-768_A-12/vocab.txt --topk 5

    # English
    python examples/basic_masked_language_model.py --pretrained google-bert-base-uncased \\
        --text "The capital of France is [Paris]." --text "I drink [coffee] every morning."

    # smoke test: a tiny random BERT (candidates are arbitrary; the shapes are what count)
    python examples/basic_masked_language_model.py --tiny

A checkpoint without MLM weights (e.g. a sentence-embedding model) cannot fill masks: the
build then fails and names the missing ``cls/predictions/...`` variables.
"""

import re

import numpy as np
from common import add_model_args, load_model_and_tokenizer, new_parser

# isort: split
# (``common`` imports kerasbert first, which selects the JAX backend before keras loads.)
from kerasbert.snippets import make_buckets, sequence_padding

SENTENCES = [
    "科学技术是推动社会[进步]的重要力量。",
    "北京是[中国]的首都。",
    "我每天早上都要喝一[杯]咖啡，然后去[上班]。",
]

BRACKETS = re.compile(r"\[([^\[\]]+)\]")


def parse_args(argv=None):
    parser = new_parser(__doc__)
    add_model_args(parser, language="zh")
    parser.add_argument("--text", action="append", help="a sentence with [bracketed] spans")
    parser.add_argument("--topk", type=int, default=5, help="candidates per masked token")
    parser.add_argument("--maxlen", type=int, default=64, help="tokens per sentence at most")
    return parser.parse_args(argv)


def strip_brackets(text):
    """``"a[bc]d"`` -> ``("abcd", [(1, 3)])``: the plain text and the bracketed char spans."""
    plain, spans, last = "", [], 0
    for match in BRACKETS.finditer(text):
        plain += text[last : match.start()]
        spans.append((len(plain), len(plain) + len(match.group(1))))
        plain += match.group(1)
        last = match.end()
    return plain + text[last:], spans


def mask_text(tokenizer, text, maxlen):
    """Token ids with the bracketed spans masked, the masked positions and original ids."""
    plain, spans = strip_brackets(text)
    if not spans:
        raise SystemExit(f"no [bracketed] span to mask in {text!r}")
    tokens = tokenizer.tokenize(plain, maxlen=maxlen)
    mapping = tokenizer.rematch(plain, tokens)
    token_ids = tokenizer.tokens_to_ids(tokens)
    positions = [
        i
        for i, chars in enumerate(mapping)
        if any(start <= c < end for c in chars for start, end in spans)
    ]
    if not positions:
        raise SystemExit(f"the bracketed spans of {text!r} fall outside the first {maxlen} tokens")
    original = [token_ids[i] for i in positions]
    mask_id = tokenizer.token_to_id("[MASK]")
    for i in positions:
        token_ids[i] = mask_id
    return plain, token_ids, positions, original


def main(argv=None):
    args = parse_args(argv)
    texts = args.text or SENTENCES
    model, tokenizer = load_model_and_tokenizer(args, with_mlm=True)

    masked = [mask_text(tokenizer, text, args.maxlen) for text in texts]
    buckets = make_buckets(args.maxlen)
    token_ids = sequence_padding([ids for _, ids, _, _ in masked], buckets=buckets)
    segment_ids = np.zeros_like(token_ids)
    probas = np.asarray(model.predict([token_ids, segment_ids], verbose=0))
    print(f"input {token_ids.shape} -> MLM probabilities {probas.shape}")

    sentences = []
    for row, (plain, ids, positions, original) in enumerate(masked):
        print(f"\n{plain}\n  masked: {' '.join(tokenizer.ids_to_tokens(ids))}")
        candidates = []
        for position, truth in zip(positions, original):
            p = probas[row, position]
            top = np.argsort(-p, kind="stable")[: args.topk]
            candidates.append([(tokenizer.id_to_token(int(i)), int(i), float(p[i])) for i in top])
            shown = "  ".join(f"{token} {prob:.3g}" for token, _, prob in candidates[-1])
            print(f"  position {position} (was {tokenizer.id_to_token(truth)}): {shown}")
        filled = list(ids)
        for position, options in zip(positions, candidates):
            filled[position] = options[0][1]
        print(f"  filled: {tokenizer.decode(filled)}")
        hits = sum(options[0][1] == truth for options, truth in zip(candidates, original))
        sentences.append(
            {
                "text": plain,
                "token_ids": ids,
                "positions": positions,
                "original_ids": original,
                "candidates": candidates,
                "filled": tokenizer.decode(filled),
                "top1_correct": hits,
            }
        )

    n_masked = sum(len(s["positions"]) for s in sentences)
    n_correct = sum(s["top1_correct"] for s in sentences)
    print(f"\nmasked tokens: {n_masked}; top-1 equals the original token: {n_correct}")
    return {
        "sentences": sentences,
        "masked_tokens": n_masked,
        "top1_accuracy": n_correct / n_masked,
        "vocab_size": tokenizer.vocab_size,
    }


if __name__ == "__main__":
    main()
