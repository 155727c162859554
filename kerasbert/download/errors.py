"""The error every part of :mod:`kerasbert.download` raises, in a module of its own so that the
fetching, extracting and locking modules share it without importing one another."""

from kerasbert.errors import KerasBertError


class DownloadError(KerasBertError, OSError):
    """A download, an archive or a file lock failed; the message says why and what to do."""
