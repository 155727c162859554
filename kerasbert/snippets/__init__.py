"""bert4keras's ``snippets``: padding, text splitting, batching and decoding helpers.

Everything here is numpy and plain Python; Keras is imported only by the two helpers that
build Keras objects (:meth:`DataGenerator.to_pydataset`, :meth:`AutoRegressiveDecoder.last_token`),
so ``import kerasbert.snippets`` stays light.

The names and semantics follow ``bert4keras.snippets``: :func:`sequence_padding`,
:func:`truncate_sequences`, :func:`text_segmentate`, :class:`DataGenerator`,
:class:`ViterbiDecoder`, :func:`softmax`, :class:`AutoRegressiveDecoder`, its ``open``
(Python's, with indexed lines), ``uniout`` (a no-op), :func:`parallel_apply` and its small
helpers. ``open`` and ``uniout`` are left out of ``__all__``, so ``from kerasbert.snippets
import *`` never replaces the builtin ``open``; import them by name, as bert4keras scripts
do. Additions:

* length buckets (:func:`make_buckets`, :func:`bucket_length`, ``sequence_padding(...,
  buckets=...)``, ``DataGenerator(..., buckets=...)`` with :meth:`DataGenerator.pad`) so that
  JAX compiles one program per bucket rather than one per length, and a fixed batch size
  (``DataGenerator(..., remainder="drop" | "fill")`` for training, :func:`pad_batch` for
  prediction) so the last batch of an epoch adds no shape;
* counting what gets compiled: :class:`ShapeCounter` (the batch shapes a generator handed
  out, ``generator.shapes``) and :class:`CompilationCounter` (XLA compilations, from JAX's
  compile events), both logging each new one at INFO on the ``kerasbert.snippets`` logger;
* :meth:`DataGenerator.to_pydataset`, a ``keras.utils.PyDataset`` for ``model.fit``;
* decoder states that follow the beams (see :class:`AutoRegressiveDecoder`).

Where each name lives (all are importable from ``kerasbert.snippets``):

* :mod:`kerasbert.compilation` (core, outside this compatibility layer): ``make_buckets``,
  ``bucket_length``, ``batch_signature``, ``ShapeCounter``, ``CompilationCounter``;
* :mod:`kerasbert.errors`: ``SnippetError``;
* :mod:`kerasbert.snippets.padding`: ``sequence_padding``, ``pad_batch``;
* :mod:`kerasbert.snippets.generators`: ``DataGenerator`` (and its ``PyDataset`` adapter),
  ``REMAINDERS``;
* :mod:`kerasbert.snippets.decoders`: ``ViterbiDecoder``, ``AutoRegressiveDecoder``,
  ``softmax``;
* :mod:`kerasbert.snippets.text`: ``text_segmentate``, ``strQ2B``,
  ``lowercase_and_normalize``, ``convert_to_unicode``, ``convert_to_str``,
  ``string_matching``, ``longest_common_substring``, ``longest_common_subsequence``;
* :mod:`kerasbert.snippets.compat`: bert4keras's small helpers ``to_array``, ``is_string``,
  ``is_one_of``, ``insert_arguments``, ``delete_arguments``;
* :mod:`kerasbert.snippets.files`: ``open`` (Python's ``open``; ``indexable=True`` reads
  line ``i`` as ``f[i]``);
* :mod:`kerasbert.snippets.parallel`: ``parallel_apply``, ``parallel_apply_generator``
  (worker processes or threads, a bounded queue);
* :mod:`kerasbert.snippets.resize`: ``orthogonally_resize`` (a weight array to another
  shape, its norm kept);
* :mod:`kerasbert.snippets.uniout`: nothing (bert4keras's Python 2 printing hook);
* :mod:`kerasbert.tokenizers`: ``truncate_sequences``.
"""

from kerasbert.compilation import (
    CompilationCounter,
    ShapeCounter,
    batch_signature,
    bucket_length,
    make_buckets,
)
from kerasbert.compilation import logger as logger
from kerasbert.errors import KerasBertError as KerasBertError
from kerasbert.errors import SnippetError
from kerasbert.snippets import uniout as uniout
from kerasbert.snippets.compat import (
    delete_arguments,
    insert_arguments,
    is_one_of,
    is_string,
    to_array,
)
from kerasbert.snippets.decoders import AutoRegressiveDecoder, ViterbiDecoder, softmax
from kerasbert.snippets.decoders import _select_rows as _select_rows
from kerasbert.snippets.files import open as open
from kerasbert.snippets.generators import REMAINDERS as REMAINDERS
from kerasbert.snippets.generators import DataGenerator
from kerasbert.snippets.padding import pad_batch, sequence_padding
from kerasbert.snippets.parallel import parallel_apply, parallel_apply_generator
from kerasbert.snippets.resize import orthogonally_resize
from kerasbert.snippets.text import (
    convert_to_str,
    convert_to_unicode,
    longest_common_subsequence,
    longest_common_substring,
    lowercase_and_normalize,
    string_matching,
    strQ2B,
    text_segmentate,
)
from kerasbert.tokenizers.truncation import truncate_sequences

__all__ = [
    "AutoRegressiveDecoder",
    "CompilationCounter",
    "ShapeCounter",
    "batch_signature",
    "pad_batch",
    "convert_to_str",
    "convert_to_unicode",
    "delete_arguments",
    "insert_arguments",
    "is_one_of",
    "is_string",
    "lowercase_and_normalize",
    "orthogonally_resize",
    "parallel_apply",
    "parallel_apply_generator",
    "string_matching",
    "longest_common_subsequence",
    "longest_common_substring",
    "strQ2B",
    "to_array",
    "DataGenerator",
    "SnippetError",
    "ViterbiDecoder",
    "bucket_length",
    "make_buckets",
    "sequence_padding",
    "softmax",
    "text_segmentate",
    "truncate_sequences",
]
