"""The WordPiece tokenizer, compatible with bert4keras's ``Tokenizer``.

Behaviour (bert4keras's, which these docs call "the reference" below):

- with ``do_lower_case``: the whole text is lower-cased, NFD-normalized and stripped of
  combining marks (accents);
- NUL, U+FFFD and control / format characters (Unicode Cc, Cf: zero-width spaces, BOM,
  soft hyphens, ...) are removed; tab / newline / CR and Unicode Zs / Zl / Zp are spaces;
- every CJK ideograph and every punctuation character (ASCII symbols and Unicode P*) is a
  token of its own; the rest splits on spaces into words;
- words are split greedily into the longest vocabulary pieces (``##`` continues a word); a
  word that cannot be split, or is longer than ``word_maxlen``, stays whole as a token and
  maps to ``[UNK]``'s id.

Splitting runs on precompiled regular expressions and word pieces are cached, so the pure
Python path avoids per-character Python loops; it is the default because it measured
faster than the Rust path (bench/bench_tokenizer.py). With ``fast=True`` (or ``fast=None``
when the optional Rust ``tokenizers`` package is installed, ``pip install kerasbert[fast]``)
the same class uses Rust for ``tokenize`` / ``encode`` / ``encode_batch`` and returns
identical results; texts whose characters the two implementations treat differently go
through the Python path. (``import tokenizers`` in this package is that Rust library, not
``kerasbert.tokenizers``: the package only imports absolutely.)

Where bert4keras and HF's ``BertTokenizer`` disagree, kerasbert follows bert4keras:

- literal ``[MASK]`` / ``[CLS]`` text is split like any text (HF matches special tokens);
- words of 101-200 characters are split into pieces (HF gives ``[UNK]`` above 100, the
  reference above ``word_maxlen=200``);
- lower-casing is applied to the whole string (Greek final sigma becomes ``ς``; HF's Rust
  tokenizer lower-cases per character, giving ``σ``);
- private-use (Co) characters are kept as word characters (HF removes them);
- U+2B820-U+2B91F are CJK ideographs (HF's table skips that block);
- a pair truncated to an odd budget shortens the longer text first, the first text on ties
  (HF's ``longest_first`` shortens the second text on ties);
- ``encode(a, "")`` appends an empty second segment: ``[CLS] a [SEP]`` and no extra token
  (HF appends ``[SEP]`` again).

One deliberate difference from bert4keras: ``rematch`` maps tokens to positions in the
original text even when lower-casing changes a character's length (``"İ"``), where the
reference shifts every later position; and it never raises (a token it cannot place maps to
``[]``).
"""

import os
import re
import unicodedata

from kerasbert.errors import KerasBertError
from kerasbert.tokenizers.base import TokenizerBase
from kerasbert.tokenizers.characters import (
    _NO_SPACE_AFTER,
    _patterns,
    is_cjk_character,
    is_punctuation,
    is_removed,
)
from kerasbert.tokenizers.vocab import load_vocab


def _canonical_order(pairs):
    """``(character, source)`` pairs with each run of combining marks (non-zero canonical
    combining class) stably sorted by class, as Unicode's canonical ordering does."""
    ordered, run = [], []
    for pair in pairs:
        if unicodedata.combining(pair[0]):
            run.append(pair)
            continue
        ordered.extend(sorted(run, key=lambda p: unicodedata.combining(p[0])))
        run = []
        ordered.append(pair)
    ordered.extend(sorted(run, key=lambda p: unicodedata.combining(p[0])))
    return ordered


class Tokenizer(TokenizerBase):
    """bert4keras-compatible WordPiece tokenizer (see the module docstring for behaviour).

    Args:
        token_dict: a ``{token: id}`` dict, the path of a ``vocab.txt``, or a model folder
            holding one (whose settings then give ``do_lower_case``: see
            :mod:`kerasbert.folders`).
        do_lower_case: lower-case and strip accents (uncased and Chinese models). None
            (the default): what a model folder says, else False (bert4keras's default).
        pre_tokenize: optional function splitting text into words first (e.g. jieba);
            words found in the vocabulary are kept whole, the rest tokenized as usual.
        token_start: token put first by ``tokenize`` / ``encode`` (None for none).
        token_end: token closing each segment (None for none).
        token_translate: ``{token: replacement}`` applied after tokenizing.
        word_maxlen: longer words are not split (they map to ``[UNK]``'s id).
        fast: False (default) for the pure-Python path, True to require the Rust
            ``tokenizers`` path, None to use Rust when it is installed. On one core the
            Python path is the faster one, on mixed Chinese / English and on English text
            (bench/bench_tokenizer.py; numbers in BENCHMARKS.md and bench/README.md).
        cache_size: how many distinct words to remember the pieces of.

    Example:

    >>> tok = Tokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4,
    ...                  "world": 5, "##s": 6, "!": 7}, do_lower_case=True, fast=False)
    >>> tok.tokenize("Hello worlds!")
    ['[CLS]', 'hello', 'world', '##s', '!', '[SEP]']
    >>> tok.encode("hello", "world")
    ([2, 4, 3, 5, 3], [0, 0, 0, 1, 1])
    >>> tok.rematch("Hello worlds!", tok.tokenize("Hello worlds!"))
    [[], [0, 1, 2, 3, 4], [6, 7, 8, 9, 10], [11], [12], []]
    """

    def __init__(
        self,
        token_dict,
        do_lower_case=None,
        pre_tokenize=None,
        token_start="[CLS]",
        token_end="[SEP]",
        token_translate=None,
        word_maxlen=200,
        fast=False,
        cache_size=200_000,
    ):
        if isinstance(token_dict, (str, os.PathLike)) and os.path.isdir(token_dict):
            from kerasbert.folders import VOCAB_NAMES, choose, find_file, read_settings

            vocab = find_file(token_dict, VOCAB_NAMES)
            if vocab is None:
                raise KerasBertError(
                    f"Model folder {os.fspath(token_dict)!r} has no vocab.txt; pass the "
                    "vocabulary file's path."
                )
            do_lower_case = choose("do_lower_case", do_lower_case, read_settings(token_dict), False)
            token_dict = vocab
        do_lower_case = bool(do_lower_case)
        if isinstance(token_dict, (str, os.PathLike)):
            token_dict = load_vocab(token_dict)
        if not isinstance(token_dict, dict) or not token_dict:
            raise KerasBertError("token_dict must be a non-empty {token: id} dict or a path.")
        self._token_dict = token_dict
        self._token_dict_inv = {v: k for k, v in token_dict.items()}
        self._vocab_size = len(token_dict)
        self._do_lower_case = do_lower_case
        self._pre_tokenize = pre_tokenize
        self._word_maxlen = word_maxlen
        self._token_pad = "[PAD]"
        self._token_unk = "[UNK]"
        self._token_mask = "[MASK]"
        self._token_start = token_start
        self._token_end = token_end
        self._token_translate = dict(token_translate or {})
        self._token_translate_inv = {v: k for k, v in self._token_translate.items()}
        for kind in ("pad", "unk", "mask", "start", "end"):
            token = getattr(self, f"_token_{kind}")
            if token in token_dict:
                setattr(self, f"_token_{kind}_id", token_dict[token])
        self._cache = {}
        self._cache_size = cache_size
        self._patterns = _patterns()
        self._bmp_patterns = _patterns(bmp_only=True)
        self._rust = None
        if fast or fast is None:
            self._rust = self._build_rust(required=bool(fast))

    # -- vocabulary ---------------------------------------------------------------------------
    @property
    def vocab_size(self):
        return self._vocab_size

    @property
    def token_dict(self):
        return self._token_dict

    @property
    def uses_fast_path(self):
        """Whether the Rust ``tokenizers`` backend is in use."""
        return self._rust is not None

    def token_to_id(self, token):
        return self._token_dict.get(token, getattr(self, "_token_unk_id", None))

    def id_to_token(self, i):
        return self._token_dict_inv[i]

    # -- normalization and splitting -------------------------------------------------------------
    def _pick(self, text):
        """The BMP-only regexes when ``text`` has no astral characters (much faster)."""
        if not text or text.isascii() or max(text) < "\U00010000":
            return self._bmp_patterns
        return self._patterns

    def _normalize(self, text):
        patterns = self._pick(text)
        if not self._do_lower_case:
            return patterns["removed"].sub("", text)
        text = text.lower()
        if text.isascii():
            return patterns["removed"].sub("", text)
        if not unicodedata.is_normalized("NFD", text):
            text = unicodedata.normalize("NFD", text)
        return patterns["marks_or_removed"].sub("", text)

    def _word_pieces(self, word):
        """``(pieces, ids)`` of one word, cached."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        pieces = self._split_word(word)
        cached = (pieces, [self.token_to_id(piece) for piece in pieces])
        if len(self._cache) < self._cache_size:
            self._cache[word] = cached
        return cached

    def _split_word(self, word):
        if len(word) > self._word_maxlen:
            return [word]
        vocab, pieces, start = self._token_dict, [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            if end == start:
                return [word]
            pieces.append(piece)
            start = end
        return pieces

    def _split(self, normalized, ids=False):
        """Tokens (or their ids) of normalized text."""
        which = 1 if ids else 0
        out = []
        for word in self._pick(normalized)["words"].findall(normalized):
            out.extend(self._word_pieces(word)[which])
        return out

    def _tokenize(self, text):
        """Tokens of ``text`` without start / end tokens (bert4keras's ``_tokenize``)."""
        if self._pre_tokenize is not None:
            if self._do_lower_case:
                text = self._normalize_case(text)
            tokens = []
            for word in self._pre_tokenize(text):
                if word in self._token_dict:
                    tokens.append(word)
                else:
                    tokens.extend(self._split(self._patterns["removed"].sub("", word)))
            return tokens
        if self._rust_handles(text):
            return self._rust_tokens(text)
        return self._split(self._normalize(text))

    def _text_ids(self, text):
        """Ids of ``text`` with start / end ids: ``tokens_to_ids(tokenize(text))``, faster."""
        if self._pre_tokenize is not None or self._token_translate:
            return self.tokens_to_ids(self.tokenize(text))
        if self._rust_handles(text):
            ids = self._rust.encode(text, add_special_tokens=False).ids
        else:
            ids = self._split(self._normalize(text), ids=True)
        if self._token_start is not None:
            ids.insert(0, self.token_to_id(self._token_start))
        if self._token_end is not None:
            ids.append(self.token_to_id(self._token_end))
        return ids

    def _rust_handles(self, text):
        return self._rust is not None and not self._patterns["rust_differs"].search(text)

    def _normalize_case(self, text):
        text = text.lower()
        return self._patterns["marks"].sub("", unicodedata.normalize("NFD", text))

    # -- decoding and alignment -------------------------------------------------------------------
    @staticmethod
    def _is_special(token):
        return bool(token) and token[0] == "[" and token[-1] == "]"

    def decode(self, ids, tokens=None):
        """Readable text from ids (special tokens dropped, ``##`` pieces joined).

        Example:

        >>> tok = Tokenizer({"[CLS]": 0, "[SEP]": 1, "hello": 2, "##s": 3, ",": 4, "我": 5},
        ...                 fast=False)
        >>> tok.decode([0, 2, 3, 4, 5, 1])
        'hellos, 我'
        """
        tokens = tokens or self.ids_to_tokens(ids)
        tokens = [self._token_translate_inv.get(t) or t for t in tokens]
        tokens = [t for t in tokens if not self._is_special(t)]
        text = ""
        for i, token in enumerate(tokens):
            if token[:2] == "##":
                text += token[2:]
            elif len(token) == 1 and is_cjk_character(token):
                text += token
            elif len(token) == 1 and is_punctuation(token):
                text += token + " "
            elif i > 0 and text and is_cjk_character(text[-1]):
                text += token
            else:
                text += " " + token
        text = re.sub(" +", " ", text)
        text = re.sub(r"' (re|m|s|t|ve|d|ll) ", r"'\1 ", text)
        text = _NO_SPACE_AFTER.sub(r"\1", text)
        text = re.sub(r"(\d\.) (\d)", r"\1\2", text)
        return text.strip()

    def _normalized_with_mapping(self, text):
        """The normalized text and, for each of its characters, the original index."""
        if text.isascii() and not self._patterns["removed"].search(text):
            return (text.lower() if self._do_lower_case else text), list(range(len(text)))
        lowered = text.lower() if self._do_lower_case else text
        per_char = [ch.lower() for ch in text] if self._do_lower_case else list(text)
        aligned = sum(len(c) for c in per_char) == len(lowered)
        pairs, position = [], 0  # (normalized character, index in text)
        for i, ch in enumerate(per_char):
            if aligned:  # whole-string lowering (final sigma) with per-character positions
                ch, position = lowered[position : position + len(ch)], position + len(ch)
            if self._do_lower_case:
                pairs.extend((c, i) for c in unicodedata.normalize("NFD", ch))
            else:
                pairs.extend((c, i) for c in ch)
        if self._do_lower_case:
            # NFD of the whole text is each character's decomposition in canonical order:
            # runs of combining marks sorted (stably) by combining class, which may move a
            # mark across the characters it came from. Do the same to the pairs.
            pairs = _canonical_order(pairs)
            pairs = [(c, i) for c, i in pairs if unicodedata.category(c) != "Mn"]
        pairs = [(c, i) for c, i in pairs if not is_removed(c)]
        return "".join(c for c, _ in pairs), [i for _, i in pairs]

    def rematch(self, text, tokens):
        """For each token, the indices of the characters of ``text`` it came from.

        Special tokens (``[CLS]``, ``[UNK]``, ...) map to ``[]``.

        Args:
            text: the original text.
            tokens: its tokens, as returned by :meth:`tokenize`.
        """
        normalized, mapping = self._normalized_with_mapping(text)
        token_mapping, offset = [], 0
        for token in tokens:
            if self._is_special(token):
                token_mapping.append([])
                continue
            token = token[2:] if token[:2] == "##" else token
            start = normalized.find(token, offset)
            if start < 0 or not token:
                token_mapping.append([])
                continue
            end = start + len(token)
            token_mapping.append(mapping[start:end])
            offset = end
        return token_mapping

    # -- the Rust fast path ----------------------------------------------------------------------
    def _build_rust(self, required):
        try:
            from tokenizers import Tokenizer as RustTokenizer
            from tokenizers import models, normalizers, pre_tokenizers
        except ImportError:
            if required:
                raise KerasBertError(
                    "fast=True needs the Rust tokenizers package: pip install kerasbert[fast]"
                ) from None
            return None
        if self._token_unk not in self._token_dict:
            if required:
                raise KerasBertError("fast=True needs an [UNK] token in the vocabulary.")
            return None
        model = models.WordPiece(
            vocab=self._token_dict,
            unk_token=self._token_unk,
            max_input_chars_per_word=self._word_maxlen,
        )
        rust = RustTokenizer(model)
        steps = []
        if self._do_lower_case:
            steps += [normalizers.Lowercase(), normalizers.NFD(), normalizers.StripAccents()]
        steps.append(
            normalizers.BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
            )
        )
        rust.normalizer = normalizers.Sequence(steps)
        rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return rust

    def _rust_tokens(self, text):
        encoding = self._rust.encode(text, add_special_tokens=False)
        tokens = encoding.tokens
        if self._token_unk in tokens:
            # The reference keeps an unsplittable word whole (its id is still [UNK]'s).
            tokens = list(tokens)
            for i, token in enumerate(tokens):
                if token == self._token_unk:
                    start, end = encoding.offsets[i]
                    tokens[i] = self._normalize(text[start:end])
        return tokens
