"""Truncating token lists to a length budget, shared by the tokenizers and ``snippets``.

:func:`truncate_sequences` is bert4keras's (``kerasbert.snippets`` re-exports it): it pops from
the longest sequence, the first on ties, which is how ``Tokenizer.encode`` shortens a pair.
"""

import numpy as np


def truncate_sequences(maxlen, indices, *sequences):
    """Pop items from the longest sequence (the first on ties) until they fit ``maxlen``.

    Args:
        maxlen: the total length allowed.
        indices: the position popped from each sequence (one int for all, or a list).
        *sequences: lists, modified in place; None / empty ones are ignored.

    Example:

    >>> a, b = [1, 2, 3, 4], [5, 6, 7]
    >>> truncate_sequences(5, -1, a, b)
    [[1, 2], [5, 6, 7]]
    """
    sequences = [s for s in sequences if s]
    if not isinstance(indices, (list, tuple)):
        indices = [indices] * len(sequences)
    while True:
        lengths = [len(s) for s in sequences]
        if sum(lengths) <= maxlen:
            return sequences
        i = int(np.argmax(lengths))
        sequences[i].pop(indices[i])
