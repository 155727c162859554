"""bert-as-service's rules from a request's texts to model inputs (bert-serving-server 1.10).

They differ from :meth:`kerasbert.tokenizers.Tokenizer.encode` in small ways that clients
of the original server can see, so the server follows the original here
(docs/bert_as_service_protocol.md, section 4.1):

* a text is a pair when it contains `` ||| `` (spaces on both sides), split at the
  **last** one; pre-tokenized input splits at the first token equal to ``|||``;
* pre-tokenized tokens are used as given (no lower-casing, no word pieces), an unknown
  token becomes the tokenizer's unknown token;
* a pair longer than the limit loses tokens from the end of its longer side, from the
  second text on a tie;
* with ``max_seq_len=None`` (``NONE``) a request's texts are cut only at the model's
  position limit.
"""

import re
from dataclasses import dataclass

from kerasbert.errors import ServingError

_PAIR = re.compile(r"^(.*) \|\|\| (.*)$", re.DOTALL)  # greedy: the last " ||| "
TOKENIZED_SEPARATOR = "|||"


@dataclass
class Features:
    """One text as the model sees it: ``tokens`` (special tokens included), their
    ``ids`` and ``segments``, and whether it was a pair."""

    tokens: list
    ids: list
    segments: list
    is_pair: bool

    @property
    def length(self):
        return len(self.ids)


def split_text(text):
    """``(a, b)`` of a plain text: ``b`` is None unless the text is ``"a ||| b"``.

    Example:

    >>> split_text("a ||| b ||| c"), split_text("a|||b")
    (('a ||| b', 'c'), ('a|||b', None))
    """
    match = _PAIR.match(text)
    return (match.group(1), match.group(2)) if match else (text, None)


def split_tokens(tokens):
    """``(a, b)`` of pre-tokenized input, split at the first ``"|||"`` token.

    Example:

    >>> split_tokens(["x", "|||", "y", "|||"])
    (['x'], ['y', '|||'])
    """
    if TOKENIZED_SEPARATOR in tokens:
        cut = tokens.index(TOKENIZED_SEPARATOR)
        return list(tokens[:cut]), list(tokens[cut + 1 :])
    return list(tokens), None


def truncate_pair(a, b, limit):
    """Drop tokens from the end of the longer of ``a`` and ``b`` (``b`` on a tie) until
    ``len(a) + len(b) <= limit``; in place.

    Example:

    >>> a, b = [1, 2, 3], [4, 5, 6]
    >>> truncate_pair(a, b, 4); a, b
    ([1, 2], [4, 5])
    """
    while len(a) + len(b) > limit:
        (a if len(a) > len(b) else b).pop()


class FeatureMaker:
    """Texts of a request -> :class:`Features`, with bert-as-service's rules.

    Args:
        tokenizer: a kerasbert tokenizer (its start / end tokens frame every text; the
            pieces of a text come from its ``_tokenize``).
        max_seq_len: tokens per text, special tokens included, or None for the model's
            limit.
        model_limit: the model's position limit (None: no limit).
    """

    def __init__(self, tokenizer, max_seq_len, model_limit):
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        self.model_limit = model_limit
        self.start = tokenizer._token_start
        self.end = tokenizer._token_end
        self.unknown = getattr(tokenizer, "_token_unk", None)
        self.vocabulary = getattr(tokenizer, "token_dict", None) or {}

    def _specials(self, is_pair):
        count = int(self.start is not None) + int(self.end is not None)
        return count + (int(self.end is not None) if is_pair else 0)

    def pieces(self, item):
        """``(a, b)`` token lists of a text or a pre-tokenized list (``b`` None unless a
        pair), before truncation."""
        if isinstance(item, str):
            a, b = split_text(item.strip())
            return self.tokenizer._tokenize(a), None if b is None else self.tokenizer._tokenize(b)
        a, b = split_tokens(item)
        known = self.vocabulary
        a = [t if t in known else self.unknown for t in a]
        return a, None if b is None else [t if t in known else self.unknown for t in b]

    def request_limit(self, pieces):
        """The token limit of one request's texts: ``max_seq_len``, or with ``None`` the
        longest text plus its special tokens, at most the model's limit."""
        if self.max_seq_len is not None:
            return self.max_seq_len
        longest = max(len(a) + len(b or ()) for a, b in pieces)
        any_pair = any(b is not None for _, b in pieces)
        limit = longest + self._specials(any_pair)
        return limit if self.model_limit is None else min(limit, self.model_limit)

    def features(self, a, b, limit):
        """:class:`Features` of one text's pieces cut to ``limit`` tokens in all."""
        a = list(a)
        if b is None:
            del a[max(limit - self._specials(False), 0) :]
        else:
            b = list(b)
            truncate_pair(a, b, max(limit - self._specials(True), 0))
        head = [self.start] if self.start is not None else []
        tail = [self.end] if self.end is not None else []
        tokens = head + a + tail
        segments = [0] * len(tokens)
        if b is not None:
            tokens += b + tail
            segments += [1] * (len(b) + len(tail))
        ids = self.tokenizer.tokens_to_ids(tokens)
        return Features(tokens, ids, segments, b is not None)

    def request(self, items):
        """:class:`Features` of every text of a request, and the request's token limit."""
        pieces = [self.pieces(item) for item in items]
        limit = self.request_limit(pieces)
        made = [self.features(a, b, limit) for a, b in pieces]
        for index, f in enumerate(made):
            if f.length == 0:
                raise ServingError(f"text {index} gives no tokens at all")
        return made, limit
