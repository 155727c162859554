"""WordPiece tokenization compatible with bert4keras's ``Tokenizer`` (basic version).

Normalization: optional lower-casing with NFD accent stripping, removal of control and
zero-width characters, whitespace and punctuation splitting, CJK characters as single
tokens, then greedy longest-match WordPiece with ``##`` continuations.
"""

import os
import unicodedata

from kerasbert.errors import KerasBertError


def load_vocab(dict_path, encoding="utf-8"):
    """Read a ``vocab.txt`` (one token per line) into ``{token: id}``.

    Args:
        dict_path: path of the vocabulary file.
        encoding: its text encoding.

    Example:

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(p, "w").write("[PAD]\\n[UNK]\\nhello\\n")
    >>> load_vocab(p)["hello"]
    2
    """
    if not os.path.isfile(dict_path):
        raise KerasBertError(f"Vocabulary file {dict_path!r} does not exist; check the path.")
    token_dict = {}
    try:
        with open(dict_path, encoding=encoding) as f:
            for line in f:
                token = line.rstrip("\r\n")
                token = token.strip() or token
                if token not in token_dict:
                    token_dict[token] = len(token_dict)
    except UnicodeDecodeError as e:
        raise KerasBertError(
            f"Vocabulary {dict_path!r} is not {encoding} text ({e}); pass encoding=..."
        ) from None
    return token_dict


def _is_punctuation(ch):
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(ch):
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def _is_removed(ch):
    """Control, format (zero-width) and unassigned characters, and the replacement char."""
    if ch in "\t\n\r":
        return False
    return ch == "\ufffd" or ord(ch) == 0 or unicodedata.category(ch) in ("Cc", "Cf", "Cn")


class Tokenizer:
    """bert4keras-style WordPiece tokenizer.

    Args:
        token_dict: a ``{token: id}`` dict or the path of a ``vocab.txt``.
        do_lower_case: lower-case and strip accents (uncased models).
        token_start: token put first by ``encode`` (None for none).
        token_end: token closing each segment.
        word_maxlen: words longer than this become ``[UNK]``.

    Example:

    >>> tok = Tokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4,
    ...                  "world": 5, "##s": 6}, do_lower_case=True)
    >>> tok.tokenize("Hello worlds!")
    ['[CLS]', 'hello', 'world', '##s', '[UNK]', '[SEP]']
    >>> tok.encode("hello", "world")
    ([2, 4, 3, 5, 3], [0, 0, 0, 1, 1])
    """

    def __init__(
        self,
        token_dict,
        do_lower_case=False,
        token_start="[CLS]",
        token_end="[SEP]",
        token_unk="[UNK]",
        token_pad="[PAD]",
        token_mask="[MASK]",
        word_maxlen=200,
    ):
        if isinstance(token_dict, (str, os.PathLike)):
            token_dict = load_vocab(os.fspath(token_dict))
        self._token_dict = dict(token_dict)
        self._token_dict_inv = {i: t for t, i in self._token_dict.items()}
        self._vocab_size = len(self._token_dict)
        self._do_lower_case = do_lower_case
        self._word_maxlen = word_maxlen
        for kind, token in (
            ("start", token_start),
            ("end", token_end),
            ("unk", token_unk),
            ("pad", token_pad),
            ("mask", token_mask),
        ):
            setattr(self, f"_token_{kind}", token)
            setattr(self, f"_token_{kind}_id", self._token_dict.get(token))

    @property
    def vocab_size(self):
        return self._vocab_size

    def token_to_id(self, token):
        return self._token_dict.get(token, self._token_unk_id)

    def id_to_token(self, i):
        return self._token_dict_inv[i]

    def tokens_to_ids(self, tokens):
        return [self.token_to_id(t) for t in tokens]

    def ids_to_tokens(self, ids):
        return [self.id_to_token(i) for i in ids]

    # -- splitting ---------------------------------------------------------------------------
    def _normalize(self, text):
        if self._do_lower_case:
            text = unicodedata.normalize("NFD", text.lower())
            text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
        return "".join(" " if ch.isspace() else ch for ch in text if not _is_removed(ch))

    def _split_words(self, text):
        words, current = [], []
        for ch in text:
            if ch == " " or _is_punctuation(ch) or _is_cjk(ch):
                if current:
                    words.append("".join(current))
                    current = []
                if ch != " ":
                    words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
        return words

    def _word_piece(self, word):
        if word in self._token_dict:
            return [word]
        if len(word) > self._word_maxlen:
            return [self._token_unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self._token_dict:
                    break
                end -= 1
            if end == start:
                return [self._token_unk]
            pieces.append(piece)
            start = end
        return pieces

    def _tokenize(self, text):
        tokens = []
        for word in self._split_words(self._normalize(text)):
            tokens.extend(self._word_piece(word))
        return tokens

    def tokenize(self, text, maxlen=None):
        """Split text into tokens, with ``token_start`` / ``token_end`` added."""
        tokens = self._tokenize(text)
        if self._token_start is not None:
            tokens.insert(0, self._token_start)
        if self._token_end is not None:
            tokens.append(self._token_end)
        if maxlen is not None and len(tokens) > maxlen:
            keep_end = 1 if self._token_end is not None else 0
            tokens = tokens[: maxlen - keep_end] + tokens[len(tokens) - keep_end :]
        return tokens

    def encode(self, first_text, second_text=None, maxlen=None):
        """Token ids and segment ids of one text or a pair.

        Args:
            first_text: the first text.
            second_text: an optional second text (segment 1).
            maxlen: truncate the longer text first so the total fits.
        """
        first = self.tokenize(first_text)
        second = None
        if second_text is not None:
            second = self.tokenize(second_text)
            if self._token_start is not None:
                second = second[1:]
        if maxlen is not None:
            while len(first) + len(second or []) > maxlen:
                longer = first if second is None or len(first) >= len(second) else second
                del longer[-2]
        first_ids = self.tokens_to_ids(first)
        segment_ids = [0] * len(first_ids)
        if second is not None:
            second_ids = self.tokens_to_ids(second)
            first_ids += second_ids
            segment_ids += [1] * len(second_ids)
        return first_ids, segment_ids

    def decode(self, ids):
        """Join token ids back into text (special tokens dropped, ``##`` pieces merged)."""
        specials = {self._token_start, self._token_end, self._token_pad}
        text = ""
        for token in self.ids_to_tokens(ids):
            if token in specials:
                continue
            if token.startswith("##"):
                text += token[2:]
            elif len(token) == 1 and (_is_cjk(token) or _is_punctuation(token)):
                text += token
            else:
                text += (" " if text else "") + token
        return text.strip()
