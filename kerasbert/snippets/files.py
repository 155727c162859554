"""bert4keras's ``open``: Python's ``open``, plus random access to the lines of a large file.

``from kerasbert.snippets import open`` (as 15 bert4keras scripts import it) replaces the
builtin in that script only; kerasbert never calls it. :class:`open` opens the file with
Python's own ``open`` and behaves as that file object does (text or binary, iteration,
``read``/``readline``/``readlines``/``write``, ``seek``/``tell``, ``with``, closing when
released), and with ``indexable`` it records where each line starts so that ``f[i]`` reads
line ``i`` without reading the lines before it, and ``len(f)`` counts the lines.
"""

import builtins
import codecs
import json
import os

from kerasbert.compilation import logger
from kerasbert.errors import SnippetError

# Codecs whose decoder carries state from line to line, or whose "\n" is not the byte "\n".
_STATEFUL_CODECS = ("utf-16", "utf-32", "utf-7", "iso2022", "hz")


def _byte_offsets_work(encoding):
    """Whether a line's byte offset is a valid text-mode seek position for ``encoding``:
    the encoding writes ``\n`` as the single byte ``\n`` (past any BOM), no multi-byte
    character contains that byte, and its decoder starts afresh at each line."""
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        return False
    if codec.name.startswith(_STATEFUL_CODECS):
        return False
    encoder = codec.incrementalencoder()
    encoder.encode("x")  # past a BOM, if the encoding writes one
    return encoder.encode("\n") == b"\n"


class _NotIndexedError(SnippetError, TypeError):
    """``len(f)`` or ``f[i]`` on a file opened without ``indexable``: a TypeError as for
    Python's file objects (so that ``list(f)``, which asks ``len`` for a hint, works)."""


class open:  # noqa: N801 (bert4keras's name)
    """A file opened with Python's ``open``; with ``indexable``, ``f[i]`` reads line ``i``.

    Without ``indexable`` this is Python's file object under a thin wrapper: every method
    and attribute of the file (``read``, ``readline``, ``readlines``, ``write``,
    ``writelines``, ``seek``, ``tell``, ``flush``, ``close``, ``closed``, ``name``,
    ``mode``, ``encoding``, ...) behaves as it does there, including ``encoding=None``
    meaning Python's default encoding, and the file is closed (and flushed) when the
    object is released, so ``json.dump(obj, open(path, "w"))`` writes as with the builtin.

    With ``indexable=True`` the file (opened for reading) is read once to record the
    position where each line starts; then ``f[i]`` (also negative ``i`` and slices) seeks
    there and reads line ``i``, and ``len(f)`` is the number of lines. ``indexable`` may
    instead be the path of a JSON file caching these positions: read from it when it
    exists, else written to it (the format is bert4keras's, so a cache bert4keras wrote for
    a UTF-8 file works). Lines are ended by ``\\n`` (``\\r\\n`` reads as ``\\n`` in text
    mode). ``f[i]`` moves the file position to the end of line ``i``, as bert4keras's does.

    Args:
        name: the path of the file.
        mode: as Python's ``open`` (``"r"``, ``"w"``, ``"a"``, ``"rb"``, ...).
        encoding: as Python's ``open`` (None: Python's default).
        errors: as Python's ``open`` (None: ``"strict"``).
        indexable: False; True to index the lines; or a path to cache the index at.
        **kwargs: further arguments of Python's ``open`` (``newline``, ``buffering``, ...).

    Raises:
        SnippetError: ``indexable`` with a mode that cannot read, or a cache that does not
            fit the file; ``f[i]`` or ``len(f)`` without ``indexable`` (also a TypeError).

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "lines.txt")
    >>> with open(path, "w", encoding="utf-8") as f:
    ...     _ = f.write("第一行\\nsecond\\n第三行\\n")
    >>> f = open(path, encoding="utf-8", indexable=True)
    >>> len(f), f[2], f[0], f[-2]
    (3, '第三行\\n', '第一行\\n', 'second\\n')
    >>> f.close()
    >>> [line.strip() for line in open(path, encoding="utf-8")]
    ['第一行', 'second', '第三行']
    """

    def __init__(self, name, mode="r", encoding=None, errors=None, indexable=False, **kwargs):
        self.file = builtins.open(  # noqa: SIM115 (the wrapper owns the file)
            name, mode, encoding=encoding, errors=errors, **kwargs
        )
        self.name = name
        self.offsets = None
        if not indexable:
            return
        try:
            self._index(indexable)
        except BaseException:
            self.file.close()
            raise

    def _index(self, indexable):
        if not self.file.readable():
            raise SnippetError(
                f"open({self.name!r}, {self.file.mode!r}, indexable=...): indexing the lines "
                "needs a file opened for reading; open it with mode 'r' or 'rb'."
            )
        cache = indexable if isinstance(indexable, (str, os.PathLike)) else None
        if cache is not None and os.path.exists(cache):
            with builtins.open(cache, encoding="utf-8") as f:
                self.offsets = self._checked(json.load(f), cache)
            return
        logger.info("open(%r): indexing the lines", self.name)
        binary = "b" in self.file.mode
        if binary or _byte_offsets_work(self.file.encoding):
            self.offsets = self._byte_offsets()
        else:
            self.offsets = self._text_offsets()
        logger.info("open(%r): %d lines indexed", self.name, len(self.offsets))
        if cache is not None:
            with builtins.open(cache, "w", encoding="utf-8") as f:
                json.dump(self.offsets, f)

    def _byte_offsets(self):
        offsets, offset = [], 0
        with builtins.open(self.name, "rb") as raw:
            for line in raw:
                offsets.append(offset)
                offset += len(line)
        return offsets

    def _text_offsets(self):
        # Encodings such as UTF-16 need text-mode positions (opaque numbers from tell()).
        offsets = []
        position = self.file.tell()
        while self.file.readline():
            offsets.append(position)
            position = self.file.tell()
        self.file.seek(0)
        return offsets

    def _checked(self, offsets, cache):
        size = os.path.getsize(self.name)
        fits = isinstance(offsets, list) and all(isinstance(o, int) for o in offsets)
        fits = fits and all(a < b for a, b in zip(offsets, offsets[1:]))
        if fits and offsets and _byte_offsets_work(getattr(self.file, "encoding", "ascii")):
            fits = offsets[0] >= 0 and offsets[-1] < size
        if not fits:
            raise SnippetError(
                f"The line index cached at {os.fspath(cache)!r} does not fit "
                f"{os.fspath(self.name)!r} ({size} bytes): it was written for another file "
                "or an older version of it. Delete the cache to index the file again."
            )
        return offsets

    def __getitem__(self, key):
        if self.offsets is None:
            raise _NotIndexedError(
                f"open({self.name!r}) was opened without indexable=True, so its lines cannot "
                "be read by number; open it with indexable=True (or a cache path)."
            )
        if isinstance(key, slice):
            return [self[i] for i in range(*key.indices(len(self.offsets)))]
        self.file.seek(self.offsets[key])
        return self.file.readline()

    def __len__(self):
        if self.offsets is None:
            raise _NotIndexedError(
                f"len(open({self.name!r})) needs the line index; open it with indexable=True."
            )
        return len(self.offsets)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.file)

    def next(self):
        """The next line (bert4keras's Python 2 spelling of ``next(f)``).

        Example:

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "two.txt")
        >>> with open(path, "w") as f:
        ...     _ = f.write("a\\nb\\n")
        >>> with open(path) as f:
        ...     f.next()
        'a\\n'
        """
        return next(self.file)

    def __enter__(self):
        self.file.__enter__()
        return self

    def __exit__(self, *exc_info):
        self.file.close()

    def __getattr__(self, attribute):
        # Everything else is the file's own: read, readline, write, seek, tell, closed, ...
        if attribute == "file":  # not set yet: the builtin open raised in __init__
            raise AttributeError(attribute)
        return getattr(self.file, attribute)

    def __repr__(self):
        return f"<kerasbert.snippets.open wrapping {self.file!r}>"
