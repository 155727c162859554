"""Which tokenizer a model's vocabulary file needs: WordPiece for ``vocab.txt``,
SentencePiece for a ``*.model`` file, GPT-2's byte-level BPE for a ``*.json`` vocabulary
(with ``merges.txt`` beside it)."""

import os

from kerasbert.errors import KerasBertError


def tokenizer_for(vocab, do_lower_case=True, family=None):
    """The tokenizer of a model, from its vocabulary file (and family, for SentencePiece).

    Args:
        vocab: the ``vocab.txt`` (WordPiece), ``*.model`` (SentencePiece) or ``vocab.json``
            (byte-level BPE, ``merges.txt`` beside it) file.
        do_lower_case: the release's setting (a model folder's, see :mod:`kerasbert.folders`).
        family: the model family; a SentencePiece vocabulary of ALBERT (the only family
            kerasbert builds that ships one) gets ALBERT's preprocessing.

    Example:

    >>> import pathlib
    >>> model = pathlib.Path(__file__).parents[2] / "tests/fixtures/sentencepiece/albert.model"
    >>> tokenizer_for(model).tokenize("Hello")[0]
    '[CLS]'
    """
    from kerasbert.tokenizers import BPETokenizer, SpTokenizer, Tokenizer

    if os.fspath(vocab).endswith(".json"):  # byte-level BPE: vocab.json + merges.txt
        return BPETokenizer(vocab)
    if os.fspath(vocab).endswith(".model"):
        if family not in (None, "albert"):
            raise KerasBertError(
                f"{os.fspath(vocab)!r} is a SentencePiece model, which kerasbert knows how to "
                f"use for ALBERT only, not for {family!r}: build kerasbert.tokenizers."
                "SpTokenizer(...) with the options the release needs."
            )
        return SpTokenizer.for_albert(vocab, do_lower_case=bool(do_lower_case))
    return Tokenizer(vocab, do_lower_case=do_lower_case)
