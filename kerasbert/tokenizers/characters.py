"""Character classes of the WordPiece tokenizer, built once from this Python's Unicode database.

The predicates (:func:`is_cjk_character`, :func:`is_punctuation`, :func:`is_removed`) say how
the reference (bert4keras) treats one character; :func:`_patterns` compiles the same classes
into regular expressions so that normalizing and splitting a text run without a Python loop
over its characters. ``_NO_SPACE_AFTER`` is what ``Tokenizer.decode`` uses to join CJK
punctuation to the next token. Standard library only.
"""

import functools
import re
import sys
import unicodedata


def _ranges_to_class(codepoints):
    """A regex character class body for a sorted list of code points."""
    parts, start, previous = [], None, None
    for cp in codepoints:
        if start is None:
            start = previous = cp
        elif cp == previous + 1:
            previous = cp
        else:
            parts.append((start, previous))
            start = previous = cp
    if start is not None:
        parts.append((start, previous))

    def escape(cp):
        return re.escape(chr(cp)) if cp > 0x20 else f"\\x{cp:02x}"

    return "".join(escape(a) if a == b else f"{escape(a)}-{escape(b)}" for a, b in parts)


CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_cjk_character(ch):
    """Whether a character is a CJK ideograph (the ranges BERT's tokenizer uses)."""
    code = ord(ch)
    return any(a <= code <= b for a, b in CJK_RANGES)


def is_punctuation(ch):
    """ASCII symbols and every Unicode P* character."""
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_removed(ch):
    """NUL, U+FFFD and control / format characters (after spaces are recognised)."""
    return ord(ch) == 0 or ord(ch) == 0xFFFD or unicodedata.category(ch) in ("Cc", "Cf")


@functools.lru_cache(maxsize=1)
def _character_sets():
    """Code points of each character class, from this Python's Unicode database."""
    sets = {"removed": [], "marks": [], "punctuation": [], "spaces": [], "odd": []}
    category = unicodedata.category
    for cp in range(sys.maxunicode + 1):
        cat = category(chr(cp))
        if cat in ("Cn", "Co", "Cs", "Me", "Mc"):  # Cn: most code points, skip the rest
            sets["odd"].append(cp)
        elif cat in ("Zs", "Zl", "Zp") or cp in (9, 10, 13):
            sets["spaces"].append(cp)
        elif cat == "Cc" or cat == "Cf" or cp == 0xFFFD:
            sets["removed"].append(cp)
        elif (
            cat[0] == "P" or 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
        ):
            sets["punctuation"].append(cp)
        elif cat == "Mn":
            sets["marks"].append(cp)
    sets["odd"].extend(range(0x2B820, 0x2B920))  # CJK to the reference, not to HF's Rust code
    return sets


@functools.lru_cache(maxsize=2)
def _patterns(bmp_only=False):
    """Compiled regexes for removal, combining marks, and word splitting.

    ``re`` tests a character against a class's astral ranges one by one, so text without
    astral characters (``max(text) < "\U00010000"``, most text) uses classes limited to the
    Basic Multilingual Plane, which ``re`` tests with a bitmap.
    """
    sets = _character_sets()

    def char_class(name, extra=()):
        points = sorted(set(sets[name]).union(extra) if extra else sets[name])
        return _ranges_to_class([cp for cp in points if cp < 0x10000] if bmp_only else points)

    cjk = "".join(
        f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in CJK_RANGES
        if not bmp_only or b < 0x10000
    )
    punct, space = char_class("punctuation"), char_class("spaces")
    return {
        "removed": re.compile(f"[{char_class('removed')}]+"),
        "marks": re.compile(f"[{char_class('marks')}]+"),
        "marks_or_removed": re.compile(f"[{char_class('marks', sets['removed'])}]+"),
        "words": re.compile(f"[{cjk}]|[{punct}]|[^{cjk}{punct}{space}]+"),
        # Characters the Rust tokenizer treats differently: it removes private-use and
        # unassigned ones and strips enclosing / spacing marks with the accents. Texts with
        # astral characters always take the Python path.
        "rust_differs": re.compile(
            f"[{_ranges_to_class([cp for cp in sets['odd'] if cp < 0x10000])}"
            "\u03a3\U00010000-\U0010ffff]"
        ),
    }


# -- decoding ------------------------------------------------------------------------------------

_CJK_PUNCTUATION = (
    "\uff02\uff03\uff04\uff05\uff06\uff07\uff08\uff09\uff0a\uff0b\uff0c\uff0d\uff0f\uff1a"
    "\uff1b\uff1c\uff1d\uff1e\uff20\uff3b\uff3c\uff3d\uff3e\uff3f\uff40\uff5b\uff5c\uff5d"
    "\uff5e\uff5f\uff60\uff62\uff63\uff64\u3000\u3001\u3003\u3008\u3009\u300a\u300b\u300c"
    "\u300d\u300e\u300f\u3010\u3011\u3014\u3015\u3016\u3017\u3018\u3019\u301a\u301b\u301c"
    "\u301d\u301e\u301f\u3030\u303e\u303f\u2013\u2014\u2018\u2019\u201b\u201c\u201d\u201e"
    "\u201f\u2026\u2027\ufe4f\ufe51\ufe54\u00b7\uff01\uff1f\uff61\u3002"
)
# Characters after which ``decode`` removes the space: CJK punctuation and opening symbols.
_NO_SPACE_AFTER = re.compile(
    "({}) ".format("|".join(re.escape(p) for p in _CJK_PUNCTUATION + "+-/={(<["))
)
