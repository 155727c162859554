"""Which tokenizer a model's vocabulary file needs: WordPiece for ``vocab.txt``,
SentencePiece for a ``*.model`` file, with the preset its family's record names, GPT-2's
byte-level BPE for a ``*.json`` vocabulary (with ``merges.txt`` beside it)."""

import os

from kerasbert.errors import KerasBertError


def family_of(model):
    """The family (record) of a model kerasbert built, or None."""
    from kerasbert import families

    return families.detect_from_layers(families.model_layer_names(model))


def tokenizer_for(vocab, do_lower_case=True, family=None):
    """The tokenizer of a model, from its vocabulary file (and family, for SentencePiece).

    Args:
        vocab: the ``vocab.txt`` (WordPiece), ``*.model`` (SentencePiece) or ``vocab.json``
            (byte-level BPE, ``merges.txt`` beside it) file.
        do_lower_case: the release's setting (a model folder's, see :mod:`kerasbert.folders`).
        family: the model family (name or record): a SentencePiece vocabulary gets the
            :class:`kerasbert.tokenizers.SpTokenizer` preset of the family's record
            (``sentencepiece``, e.g. ALBERT's preprocessing).

    Example:

    >>> import pathlib
    >>> model = pathlib.Path(__file__).parents[2] / "tests/fixtures/sentencepiece/albert.model"
    >>> tokenizer_for(model, family="albert").tokenize("Hello")[0]
    '[CLS]'
    """
    from kerasbert import families
    from kerasbert.tokenizers import BPETokenizer, SpTokenizer, Tokenizer

    if os.fspath(vocab).endswith(".json"):  # byte-level BPE: vocab.json + merges.txt
        return BPETokenizer(vocab)
    if not os.fspath(vocab).endswith(".model"):
        return Tokenizer(vocab, do_lower_case=do_lower_case)
    preset = families.get(family).sentencepiece if family is not None else ""
    if not preset:
        raise KerasBertError(
            f"{os.fspath(vocab)!r} is a SentencePiece model, and kerasbert does not know the "
            f"tokenizer settings of {family or 'this model'!r}'s releases: build "
            "kerasbert.tokenizers.SpTokenizer(...) with the options the release needs."
        )
    return getattr(SpTokenizer, f"for_{preset}")(vocab, do_lower_case=bool(do_lower_case))
