"""What every bert4keras-style tokenizer shares: start / end tokens, pairs, truncation.

A subclass says how a text becomes tokens (``_tokenize``) and how tokens map to ids
(``token_to_id`` / ``id_to_token``); :class:`TokenizerBase` adds bert4keras's ``tokenize``
(with ``token_start`` / ``token_end`` and ``token_translate``), ``encode`` of a text or a
pair with its truncation rules, and ``encode_batch`` into padded arrays. Subclasses set
``_token_start``, ``_token_end``, ``_token_translate`` (and ``_token_pad_id`` for padding)
in their ``__init__``.
"""

import numpy as np

from kerasbert.tokenizers.truncation import truncate_sequences


class TokenizerBase:
    """The shared half of :class:`kerasbert.tokenizers.Tokenizer` (WordPiece) and
    :class:`kerasbert.tokenizers.SpTokenizer` (SentencePiece); see the module docstring."""

    _token_start = None
    _token_end = None
    _token_translate = {}

    def token_to_id(self, token):
        raise NotImplementedError

    def id_to_token(self, i):
        raise NotImplementedError

    def _tokenize(self, text):
        """Tokens of ``text`` without start / end tokens."""
        raise NotImplementedError

    def _text_ids(self, text):
        """Ids of ``text`` with start / end ids (subclasses may do it faster)."""
        return self.tokens_to_ids(self.tokenize(text))

    def tokens_to_ids(self, tokens):
        return [self.token_to_id(token) for token in tokens]

    def ids_to_tokens(self, ids):
        return [self.id_to_token(i) for i in ids]

    def tokenize(self, text, maxlen=None):
        """Tokens of a text with ``token_start`` / ``token_end`` added.

        Args:
            text: the text.
            maxlen: keep at most this many tokens (the end token is kept).
        """
        tokens = [self._token_translate.get(t) or t for t in self._tokenize(text)]
        if self._token_start is not None:
            tokens.insert(0, self._token_start)
        if self._token_end is not None:
            tokens.append(self._token_end)
        if maxlen is not None:
            index = int(self._token_end is not None) + 1
            truncate_sequences(maxlen, -index, tokens)
        return tokens

    def encode(
        self, first_text, second_text=None, maxlen=None, pattern="S*E*E", truncate_from="right"
    ):
        """Token ids and segment ids of a text or a pair.

        Args:
            first_text: a text, or a list of tokens.
            second_text: an optional second text (segment 1), or a list of tokens.
            maxlen: the total length allowed; the longer text loses tokens first (the first
                text on ties), before its end token.
            pattern: ``"S*E*E"`` (``[CLS] a [SEP] b [SEP]``) or ``"S*ES*E"`` (the second
                text keeps its own start token).
            truncate_from: ``"right"``, ``"left"``, or the index of the token to drop.

        Returns:
            ``(token_ids, segment_ids)``, two lists.
        """
        first = self._text_ids(first_text) if isinstance(first_text, str) else list(first_text)
        first_is_ids = isinstance(first_text, str)
        second = None
        if second_text is not None:
            second = (
                self._text_ids(second_text) if isinstance(second_text, str) else list(second_text)
            )
        if maxlen is not None:
            if truncate_from == "right":
                index = -int(self._token_end is not None) - 1
            elif truncate_from == "left":
                index = int(self._token_start is not None)
            else:
                index = truncate_from
            if second_text is not None and pattern == "S*E*E":
                maxlen += 1
            truncate_sequences(maxlen, index, first, second)

        token_ids = first if first_is_ids else self.tokens_to_ids(first)
        segment_ids = [0] * len(token_ids)
        if second_text is not None:
            if pattern == "S*E*E":
                second = second[int(bool(self._token_start)) :]
            second_ids = second if isinstance(second_text, str) else self.tokens_to_ids(second)
            token_ids.extend(second_ids)
            segment_ids.extend([1] * len(second_ids))
        return token_ids, segment_ids

    def encode_batch(self, texts, maxlen=None, pattern="S*E*E", truncate_from="right"):
        """Encode many texts (or ``(text_a, text_b)`` pairs) into padded arrays.

        Args:
            texts: a list of strings and / or 2-tuples of strings.
            maxlen: per-example length limit (see :meth:`encode`).
            pattern, truncate_from: as in :meth:`encode`.

        Returns:
            ``(token_ids, segment_ids, lengths)``: int32 arrays of shape
            ``(batch, longest)``, ``(batch, longest)`` and ``(batch,)``, padded with the
            pad token's id (0 for BERT vocabularies).

        Example:

        >>> from kerasbert.tokenizers import Tokenizer
        >>> tok = Tokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "a": 4},
        ...                 fast=False)
        >>> ids, segments, lengths = tok.encode_batch(["a", ("a", "a a")])
        >>> ids.tolist(), lengths.tolist()
        ([[2, 4, 3, 0, 0, 0], [2, 4, 3, 4, 4, 3]], [3, 6])
        """
        encoded = []
        for item in texts:
            if isinstance(item, str):
                encoded.append(self.encode(item, None, maxlen, pattern, truncate_from))
            else:
                first, second = item
                encoded.append(self.encode(first, second, maxlen, pattern, truncate_from))
        lengths = np.array([len(ids) for ids, _ in encoded], np.int32)
        width = int(lengths.max()) if len(encoded) else 0
        pad = getattr(self, "_token_pad_id", 0) or 0
        token_ids = np.full((len(encoded), width), pad, np.int32)
        segment_ids = np.zeros((len(encoded), width), np.int32)
        for row, (ids, segments) in enumerate(encoded):
            token_ids[row, : len(ids)] = ids
            segment_ids[row, : len(segments)] = segments
        return token_ids, segment_ids, lengths

