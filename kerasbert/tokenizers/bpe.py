"""GPT-2's byte-level BPE tokenizer (``vocab.json`` + ``merges.txt``), plain Python.

The same tokens as OpenAI's ``encoder.py`` and HF's ``GPT2Tokenizer``: the text is split
into words by GPT-2's pattern (contractions, letters, digits, other symbols, each with at
most one leading space; runs of whitespace), each word's UTF-8 bytes are spelled with
GPT-2's printable stand-ins (``bytes_to_unicode``: the space is ``Ġ``, the newline
``Ċ``), and merged pair by pair in ``merges.txt``'s order. Special tokens (those passed,
by default ``<|endoftext|>`` when the vocabulary has it) are split off first and kept
whole, as HF does. There is no unknown token: every byte has one.

GPT-2's pattern is written for the ``regex`` package (``\\p{L}``, ``\\p{N}``), which
kerasbert does not depend on. This module spells it for the standard ``re`` module:
``\\p{L}`` and ``\\p{N}`` as character classes built from :mod:`unicodedata` (categories
``L*`` and ``N*``, at first use), and ``\\s`` as the Unicode ``White_Space`` characters
(``regex``'s ``\\s``; ``re``'s would add U+001C..U+001F). tools/make_gpt2_fixtures.py
compares the two on every code point in five contexts: under Python 3.11 (Unicode 14.0)
they agree on all 282,230 code points it assigns, and differ only on code points assigned
since (which the newer ``regex`` knows as letters, numbers or marks). The tokens thus equal
HF's slow tokenizer's except for characters newer than the Python's Unicode database.
With ``fast=True`` (or None, when installed) HF's Rust ``tokenizers`` does the work
(``pip install kerasbert[fast]``).

Example:

>>> vocab = {c: i for i, c in enumerate(sorted(_byte_alphabet().values()))}
>>> vocab.update({"Ġw": 256, "Ġwo": 257, "<|endoftext|>": 258})
>>> tok = BPETokenizer(vocab, ["Ġ w", "Ġw o"], fast=False)
>>> tok.tokenize("hi wo<|endoftext|>")
['h', 'i', 'Ġwo', '<|endoftext|>']
>>> tok.decode(tok.encode("hi wo<|endoftext|>"))
'hi wo<|endoftext|>'
"""

import functools
import json
import os
import re
import sys
import unicodedata

from kerasbert.errors import KerasBertError

# Unicode's White_Space property (what the regex package's \s matches).
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@functools.lru_cache(maxsize=1)
def _byte_alphabet():
    """``{byte: its printable stand-in}``: printable Latin-1 bytes stand for themselves, the
    others (control bytes, space, ...) for the characters from U+0100 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    alphabet, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            alphabet[byte] = chr(byte)
        else:
            alphabet[byte] = chr(256 + extra)
            extra += 1
    return alphabet


def _ranges(predicate):
    """A regex character class body of the code points for which ``predicate`` holds."""
    parts, start = [], None
    for code in range(sys.maxunicode + 2):
        inside = code <= sys.maxunicode and predicate(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            end = code - 1
            last = "" if end == start else "-" + re.escape(chr(end))
            parts.append(re.escape(chr(start)) + last)
            start = None
    return "".join(parts)


@functools.lru_cache(maxsize=1)
def gpt2_pattern():
    """GPT-2's pre-tokenizer pattern for the ``re`` module (see the module docstring).

    Example:

    >>> gpt2_pattern().findall("I'm 42  ok!")
    ['I', "'m", ' 42', ' ', ' ok', '!']
    """
    letters = _ranges(lambda c: unicodedata.category(c)[0] == "L")
    numbers = _ranges(lambda c: unicodedata.category(c)[0] == "N")
    s = WHITE_SPACE
    return re.compile(
        rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+| ?[^{s}{letters}{numbers}]+"
        rf"|[{s}]+(?![^{s}])|[{s}]+"
    )


def read_merges(path):
    """The merge rules of a ``merges.txt``: ``[(left, right), ...]`` in rank order (the
    ``#version`` line and empty lines skipped)."""
    merges = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f.read().split("\n")):
            if not line or (number == 0 and line.startswith("#version")):
                continue
            pair = line.split()
            if len(pair) != 2:
                raise KerasBertError(
                    f"{os.fspath(path)!r} line {number + 1} is not a merge rule 'left right': "
                    f"{line!r}."
                )
            merges.append(tuple(pair))
    return merges


class BPETokenizer:
    """GPT-2's byte-level BPE tokenizer (see the module docstring for the behaviour).

    Args:
        vocab: a ``{token: id}`` dict, the path of a ``vocab.json``, or a folder holding
            ``vocab.json`` and ``merges.txt``.
        merges: the merge rules: a list of ``"left right"`` strings or pairs, the path of a
            ``merges.txt``; default: ``merges.txt`` beside ``vocab.json``.
        special_tokens: tokens split off whole before BPE; None: ``<|endoftext|>`` if the
            vocabulary has it.
        fast: False for the pure-Python path, True to require HF's Rust ``tokenizers``,
            None (default) to use it when installed.
        cache_size: how many distinct words to remember the tokens of.

    ``encode`` returns a list of ids (GPT-2 has no segments and adds no special tokens);
    ``decode`` turns ids back into the text (``decode(encode(text)) == text``).
    """

    def __init__(self, vocab, merges=None, special_tokens=None, fast=None, cache_size=100_000):
        folder = None
        if isinstance(vocab, (str, os.PathLike)):
            path = os.fspath(vocab)
            if os.path.isdir(path):
                folder, path = path, os.path.join(path, "vocab.json")
            else:
                folder = os.path.dirname(path)
            try:
                with open(path, encoding="utf-8") as f:
                    vocab = json.load(f)
            except (OSError, ValueError) as e:
                raise KerasBertError(f"Cannot read the vocabulary {path!r} ({e}).") from None
        if not isinstance(vocab, dict) or not vocab:
            raise KerasBertError("vocab must be a non-empty {token: id} dict or a vocab.json.")
        if merges is None:
            if folder is None or not os.path.isfile(os.path.join(folder, "merges.txt")):
                raise KerasBertError(
                    "No merges given and no merges.txt beside the vocabulary; pass merges=."
                )
            merges = os.path.join(folder, "merges.txt")
        if isinstance(merges, (str, os.PathLike)):
            merges = read_merges(merges)
        merges = [tuple(m.split()) if isinstance(m, str) else tuple(m) for m in merges]
        self._token_dict = dict(vocab)
        self._token_dict_inv = {i: t for t, i in vocab.items()}
        self._ranks = {pair: rank for rank, pair in enumerate(merges)}
        self._merges = merges
        if special_tokens is None:
            special_tokens = [t for t in ("<|endoftext|>",) if t in vocab]
        self._special = list(special_tokens)
        missing = [t for t in self._special if t not in vocab]
        if missing:
            raise KerasBertError(f"Special tokens {missing} are not in the vocabulary.")
        self._special_split = None
        if self._special:
            longest_first = sorted(self._special, key=len, reverse=True)
            self._special_split = re.compile("(" + "|".join(map(re.escape, longest_first)) + ")")
        self._byte_encoder = _byte_alphabet()
        self._byte_decoder = {c: b for b, c in self._byte_encoder.items()}
        self._cache = {}
        self._cache_size = cache_size
        self._rust = None
        if fast or fast is None:
            self._rust = self._build_rust(required=bool(fast))

    # -- vocabulary ---------------------------------------------------------------------------
    @property
    def vocab_size(self):
        return len(self._token_dict)

    @property
    def token_dict(self):
        return self._token_dict

    @property
    def uses_fast_path(self):
        """Whether HF's Rust ``tokenizers`` does the work."""
        return self._rust is not None

    def token_to_id(self, token):
        """The id of a token (in its byte-level spelling, ``"Ġhello"``), or None."""
        return self._token_dict.get(token)

    def tokens_to_ids(self, tokens):
        return [self.token_to_id(token) for token in tokens]

    def id_to_token(self, i):
        return self._token_dict_inv[i]

    def ids_to_tokens(self, ids):
        return [self.id_to_token(i) for i in ids]

    # -- tokenizing ----------------------------------------------------------------------------
    def _bpe(self, word):
        tokens = self._cache.get(word)
        if tokens is not None:
            return tokens
        parts = list(word)
        ranks = self._ranks
        while len(parts) > 1:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                rank = ranks.get((parts[i], parts[i + 1]))
                if rank is not None and (best_rank is None or rank < best_rank):
                    best, best_rank = i, rank
            if best is None:
                break
            pair = (parts[best], parts[best + 1])
            merged, i = [], 0
            while i < len(parts):  # merge every occurrence of the pair, left to right
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == pair:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[word] = parts
        return parts

    def _pieces(self, text):
        """``[(piece, is_special)]``: the text split around the special tokens."""
        if self._special_split is None:
            return [(text, False)] if text else []
        return [(p, p in self._special) for p in self._special_split.split(text) if p]

    def tokenize(self, text):
        """The byte-level BPE tokens of a text (``"Ġworld"`` for ``" world"``)."""
        if self._rust is not None:
            return self._rust.encode(text, add_special_tokens=False).tokens
        tokens = []
        encoder = self._byte_encoder
        for piece, special in self._pieces(text):
            if special:
                tokens.append(piece)
                continue
            for word in gpt2_pattern().findall(piece):
                tokens += self._bpe("".join(encoder[b] for b in word.encode("utf-8")))
        return tokens

    def encode(self, text, maxlen=None):
        """The token ids of a text (no special tokens added).

        Args:
            text: the text.
            maxlen: keep the first ``maxlen`` ids only.
        """
        if self._rust is not None:
            ids = self._rust.encode(text, add_special_tokens=False).ids
        else:
            ids = [self._token_dict[t] for t in self.tokenize(text)]
        return ids[:maxlen] if maxlen is not None else ids

    def decode(self, ids, errors="replace"):
        """The text of token ids (bytes that do not form UTF-8 become U+FFFD, as HF's)."""
        out, pending = [], bytearray()
        for i in ids:
            token = self._token_dict_inv[int(i)]
            if token in self._special:
                out.append(pending.decode("utf-8", errors=errors))
                pending.clear()
                out.append(token)
                continue
            pending += bytes(self._byte_decoder[c] for c in token)
        out.append(pending.decode("utf-8", errors=errors))
        return "".join(out)

    # -- the Rust fast path ----------------------------------------------------------------------
    def _build_rust(self, required):
        try:
            from tokenizers import Tokenizer as RustTokenizer
            from tokenizers import decoders, models, pre_tokenizers
        except ImportError:
            if required:
                raise KerasBertError(
                    "fast=True needs the Rust tokenizers package: pip install kerasbert[fast]"
                ) from None
            return None
        rust = RustTokenizer(models.BPE(vocab=self._token_dict, merges=self._merges))
        rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        rust.decoder = decoders.ByteLevel()
        if self._special:
            rust.add_special_tokens(self._special)
        return rust


GPT2Tokenizer = BPETokenizer  # HF's name for it
