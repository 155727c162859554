"""Vocabulary files: reading a ``vocab.txt`` into ``{token: id}`` (optionally simplified for
character-level Chinese models) and writing one back."""

import os

from kerasbert.errors import KerasBertError
from kerasbert.tokenizers.characters import is_cjk_character, is_punctuation


def load_vocab(dict_path, encoding="utf-8", simplified=False, startswith=None):
    """Read a ``vocab.txt`` (one token per line) into ``{token: id}``.

    Args:
        dict_path: path of the vocabulary file.
        encoding: its text encoding.
        simplified: drop multi-character tokens that contain CJK characters or
            punctuation (useless for character-level Chinese models) and return
            ``(token_dict, keep_tokens)``; pass ``keep_tokens`` to
            ``build_transformer_model`` to shrink the embeddings to match.
        startswith: tokens placed first in the simplified vocabulary, in this order.

    Example:

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(p, "w").write("[PAD]\\n[UNK]\\n中国\\n##s\\nhello\\n")
    >>> load_vocab(p)["hello"]
    4
    >>> load_vocab(p, simplified=True, startswith=["[PAD]", "[UNK]"])
    ({'[PAD]': 0, '[UNK]': 1, '##s': 2, 'hello': 3}, [0, 1, 3, 4])
    """
    dict_path = os.fspath(dict_path)
    if os.path.isdir(dict_path):
        raise KerasBertError(
            f"{dict_path!r} is a folder, not a vocabulary file; pass its vocab.txt (or pass "
            "the folder to Tokenizer, which finds vocab.txt and the folder's settings)."
        )
    if not os.path.isfile(dict_path):
        raise KerasBertError(f"Vocabulary file {dict_path!r} does not exist; check the path.")
    token_dict = {}
    try:
        with open(dict_path, encoding=encoding) as reader:
            for line in reader:
                token = line.split()
                token = token[0] if token else line.strip()
                token_dict[token] = len(token_dict)
    except UnicodeDecodeError as e:
        raise KerasBertError(
            f"Vocabulary {dict_path!r} is not {encoding} text ({e}); pass encoding=..."
        ) from None
    if not simplified:
        return token_dict

    new_token_dict, keep_tokens = {}, []
    for token in startswith or []:
        if token not in token_dict:
            raise KerasBertError(f"startswith token {token!r} is not in {dict_path!r}.")
        new_token_dict[token] = len(new_token_dict)
        keep_tokens.append(token_dict[token])
    for token, index in sorted(token_dict.items(), key=lambda item: item[1]):
        if token in new_token_dict:
            continue
        stem = token[2:] if token.startswith("##") else token
        if len(token) > 1 and any(is_cjk_character(c) or is_punctuation(c) for c in stem):
            continue
        new_token_dict[token] = len(new_token_dict)
        keep_tokens.append(index)
    return new_token_dict, keep_tokens


def save_vocab(dict_path, token_dict, encoding="utf-8"):
    """Write ``{token: id}`` as a ``vocab.txt``, in id order.

    Example:

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> save_vocab(p, {"b": 1, "a": 0})
    >>> open(p).read()
    'a\\nb\\n'
    """
    with open(dict_path, "w", encoding=encoding) as writer:
        for token, _ in sorted(token_dict.items(), key=lambda item: item[1]):
            writer.write(token + "\n")
