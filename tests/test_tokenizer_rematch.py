"""rematch finds every token when normalization reorders combining marks.

Lower-casing normalizes the whole text to NFD, whose canonical ordering sorts runs of
combining marks by class, across the characters they came from; rematch used to normalize
character by character, miss that order and map every token of such a text to [].
"""

import random
import unicodedata

import pytest

from kerasbert.tokenizers import Tokenizer

MARKS = [chr(c) for c in range(0x300, 0x370)] + [
    "\u302e", "\u302f", "\u0903", "\u20dd", "\U0001d165", "\U0001d16d", "\u05b0", "\u0591",
    "\u0e38", "\u0e48", "\u0f71", "\u0f72", "\u0f80", "\u1dc4", "\u0345", "\U00016ff0",
]  # fmt: skip
BASES = list("abcXYZéÉİßﬁ中文,.! \u00c5\u212b")


@pytest.mark.parametrize("lower", [True, False])
def test_every_token_of_texts_with_reordered_marks_is_found(minilm_dir, lower):
    tokenizer = Tokenizer(minilm_dir / "vocab.txt", do_lower_case=lower)
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(BASES) if rng.random() < 0.6 else rng.choice(MARKS)
                       for _ in range(rng.randint(1, 10)))  # fmt: skip
        tokens = tokenizer.tokenize(text)
        mapping = tokenizer.rematch(text, tokens)
        normalized, _ = tokenizer._normalized_with_mapping(text)
        assert normalized == tokenizer._normalize(text), repr(text)
        for token, span in zip(tokens, mapping):
            if token not in ("[CLS]", "[SEP]", "[UNK]"):
                assert span, (repr(text), token)


def test_a_known_reordering_case_maps_to_the_characters_it_came_from(minilm_dir):
    tokenizer = Tokenizer(minilm_dir / "vocab.txt", do_lower_case=True)
    text = "\U0001d16d\u302f\u00c5\u0354"  # marks of classes 226 then 224: NFD swaps them
    assert unicodedata.normalize("NFD", text.lower()) != "".join(
        unicodedata.normalize("NFD", ch) for ch in text.lower()
    )
    tokens = tokenizer.tokenize(text)
    spans = tokenizer.rematch(text, tokens)
    assert [t for t, s in zip(tokens, spans) if t not in ("[CLS]", "[SEP]") and not s] == []
