"""Text helpers (bert4keras's): splitting, normalizing, matching and aligning text.

* :func:`text_segmentate`: cut a text into pieces of at most ``maxlen`` characters at
  separators, coarsest first;
* :func:`strQ2B`: full-width characters to half-width;
* :func:`lowercase_and_normalize`: lower case without accents (what an uncased BERT
  vocabulary expects);
* :func:`convert_to_unicode` and :func:`convert_to_str`: bytes to ``str`` (bert4keras's
  Python 2 / 3 shims; on Python 3 both decode bytes and leave anything else alone);
* :func:`string_matching`: whether any of several regular expressions occurs in a text;
* :func:`longest_common_substring` and :func:`longest_common_subsequence`: alignments of two
  sequences (strings or lists), e.g. to find an answer's span in a passage.

Plain Python.
"""

import re
import unicodedata

from kerasbert.errors import SnippetError


def text_segmentate(text, maxlen, seps="\n", strips=None):
    """Split ``text`` into pieces of at most ``maxlen`` characters at separators, recursively.

    The text is cut at ``seps[0]``; neighbouring parts are merged back while they fit in
    ``maxlen``; a piece still too long is cut again at ``seps[1]``, and so on. A piece
    that no separator can shorten is kept whole. Separators stay at the end of their piece;
    each piece is stripped of whitespace and then of ``strips``.

    Args:
        text: the text.
        maxlen: the longest piece wanted.
        seps: separators, coarsest first (a string of single characters or a list).
        strips: characters stripped from both ends of every piece (``str.strip`` argument).

    Example:

    >>> text_segmentate("one. two. three.", 6, seps=". ")
    ['one.', 'two.', 'three.']
    >>> text_segmentate("short", 10)
    ['short']
    """
    text = text.strip().strip(strips)
    if not seps or len(text) <= maxlen:
        return [text]
    sep, rest = seps[0], seps[1:]
    parts = text.split(sep)
    pieces, current = [], ""
    for i, part in enumerate(parts):
        if current and part and len(current) + len(part) > maxlen - 1:
            pieces.extend(text_segmentate(current, maxlen, rest, strips))
            current = ""
        current += part if i == len(parts) - 1 else part + sep
    if current:
        pieces.extend(text_segmentate(current, maxlen, rest, strips))
    return pieces


def strQ2B(text):  # noqa: N802 (bert4keras's name)
    """Full-width characters to half-width (ideographic space to space).

    Example:

    >>> strQ2B("ＡＢＣ１２３，")
    'ABC123,'
    """
    out = []
    for ch in text:
        code = ord(ch)
        if code == 0x3000:
            code = 0x20
        elif 0xFF01 <= code <= 0xFF5E:
            code -= 0xFEE0
        out.append(chr(code))
    return "".join(out)


def lowercase_and_normalize(text):
    """Lower-case ``text``, decompose it (NFD) and drop the combining marks (accents).

    This is what an uncased BERT vocabulary expects (bert4keras's ``lowercase_and_normalize``).

    Args:
        text: the text.

    Example:

    >>> lowercase_and_normalize("Café ÅNGSTRÖM")
    'cafe angstrom'
    """
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def convert_to_unicode(text, encoding="utf-8", errors="ignore"):
    """``bytes`` decoded to ``str``; anything else is returned unchanged.

    Args:
        text: ``bytes`` or ``str`` (or anything else, passed through).
        encoding: the encoding of ``bytes``.
        errors: what to do with undecodable bytes (``bytes.decode``'s ``errors``; by default
            they are dropped, as in bert4keras).

    Example:

    >>> convert_to_unicode("你好".encode("utf-8")), convert_to_unicode("ok")
    ('你好', 'ok')
    >>> convert_to_unicode(b"caf\\xe9")  # not UTF-8: the bad byte is dropped
    'caf'
    """
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode(encoding, errors=errors)
    return text


def convert_to_str(text, encoding="utf-8", errors="ignore"):
    """The native string type of ``text``: on Python 3, :func:`convert_to_unicode`.

    (On Python 2 bert4keras encoded ``unicode`` to ``str`` bytes here; Python 3's ``str`` is
    already the native type, so bytes are decoded and anything else is returned unchanged.)

    Args:
        text: ``bytes`` or ``str``.
        encoding: the encoding of ``bytes``.
        errors: what to do with undecodable bytes (dropped by default).

    Example:

    >>> convert_to_str(b"abc"), convert_to_str("abc")
    ('abc', 'abc')
    """
    return convert_to_unicode(text, encoding, errors)


def string_matching(s, keywords):
    """Whether at least one of ``keywords`` (regular expressions) occurs somewhere in ``s``.

    Args:
        s: the text searched.
        keywords: regular expressions (``re.search`` patterns); plain words match themselves,
            but ``.``, ``*``, ``(`` and the like are special (``re.escape`` them to match
            them literally).

    Raises:
        SnippetError: a keyword is not a valid regular expression.

    Example:

    >>> string_matching("bert/encoder/layer_0/LayerNorm/gamma", ["beta", "gamma"])
    True
    >>> string_matching("bert/pooler/dense/kernel", ["^cls/", "bias$"])
    False
    """
    for keyword in keywords:
        try:
            if re.search(keyword, s):
                return True
        except re.error as error:
            raise SnippetError(
                f"string_matching: the keyword {keyword!r} is not a valid regular expression "
                f"({error}); escape it with re.escape to match it literally."
            ) from None
    return False


def longest_common_substring(source, target):
    """Longest common contiguous run: ``(length, (source_start, source_end, target_start,
    target_end))`` with exclusive ends.

    Example:

    >>> longest_common_substring("abcde", "xbcdy")
    (3, (1, 4, 1, 4))
    """
    best, span = 0, (0, 0, 0, 0)
    previous = [0] * (len(target) + 1)
    for i in range(1, len(source) + 1):
        current = [0] * (len(target) + 1)
        for j in range(1, len(target) + 1):
            if source[i - 1] == target[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best, span = current[j], (i - current[j], i, j - current[j], j)
        previous = current
    return best, span


def longest_common_subsequence(source, target):
    """Longest common subsequence: ``(length, [(source_index, target_index), ...])``.

    Example:

    >>> longest_common_subsequence("abcde", "ace")
    (3, [(0, 0), (2, 1), (4, 2)])
    """
    n, m = len(source), len(target)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n):
        for j in range(m):
            if source[i] == target[j]:
                table[i + 1][j + 1] = table[i][j] + 1
            else:
                table[i + 1][j + 1] = max(table[i][j + 1], table[i + 1][j])
    pairs, i, j = [], n, m
    while i and j:
        if source[i - 1] == target[j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif table[i - 1][j] >= table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return table[n][m], pairs[::-1]
