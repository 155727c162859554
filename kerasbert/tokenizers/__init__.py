"""Tokenizers compatible with bert4keras's ``tokenizers``; numpy and plain Python only.

``import kerasbert.tokenizers`` loads neither Keras nor JAX, so data pipelines and worker
processes can tokenize without them.

Where each name lives (all are importable from ``kerasbert.tokenizers``):

* :mod:`kerasbert.tokenizers.wordpiece`: ``Tokenizer``, the WordPiece tokenizer of BERT-family
  models (its docstring describes the behaviour, and where it follows bert4keras over HF);
* :mod:`kerasbert.tokenizers.bpe`: ``BPETokenizer`` (also ``GPT2Tokenizer``), GPT-2's
  byte-level BPE over ``vocab.json`` + ``merges.txt``;
* :mod:`kerasbert.tokenizers.sentencepiece_tokenizer`: ``SpTokenizer``, over a SentencePiece
  model (T5, mT5, ALBERT v2; needs the optional ``sentencepiece`` package);
* :mod:`kerasbert.tokenizers.base`: ``TokenizerBase``, what the two share (``tokenize``,
  ``encode``, ``encode_batch``);
* :mod:`kerasbert.tokenizers.vocab`: ``load_vocab``, ``save_vocab``;
* :mod:`kerasbert.tokenizers.truncation`: ``truncate_sequences`` (also in
  ``kerasbert.snippets``);
* :mod:`kerasbert.tokenizers.characters`: the character classes ``is_cjk_character``,
  ``is_punctuation``, ``is_removed``, ``CJK_RANGES``, and the regexes built from them.

This package shares its last name with HF's Rust ``tokenizers`` library, which the WordPiece
fast path imports; every import in it is absolute, so ``import tokenizers`` here always means
that library.
"""

from kerasbert.errors import KerasBertError as KerasBertError
from kerasbert.tokenizers.bpe import BPETokenizer, GPT2Tokenizer
from kerasbert.tokenizers.characters import (
    CJK_RANGES,
    is_cjk_character,
    is_punctuation,
    is_removed,
)
from kerasbert.tokenizers.sentencepiece_tokenizer import SpTokenizer
from kerasbert.tokenizers.truncation import truncate_sequences
from kerasbert.tokenizers.vocab import load_vocab, save_vocab
from kerasbert.tokenizers.wordpiece import Tokenizer

__all__ = [
    "BPETokenizer",
    "CJK_RANGES",
    "GPT2Tokenizer",
    "SpTokenizer",
    "Tokenizer",
    "is_cjk_character",
    "is_punctuation",
    "is_removed",
    "load_vocab",
    "save_vocab",
    "truncate_sequences",
]
