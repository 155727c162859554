"""Fetching files: resumable, checksummed HTTP downloads, safe archive extraction, file locks.

Standard library only. :func:`download` streams a URL into ``DESTINATION.part``, resumes it with
an HTTP ``Range`` request after a cut connection (or in a later call), checks its SHA-256 and
renames it into place. :func:`extract` unpacks zip and tar archives, refusing members that would
land outside the target folder. :func:`file_lock` keeps two processes from fetching the same
file at once. With ``KERASBERT_OFFLINE=1`` (:func:`is_offline`) nothing touches the network.

Where each name lives (all are importable from ``kerasbert.download``):

* :mod:`kerasbert.download.errors`: ``DownloadError``;
* :mod:`kerasbert.download.fetch`: ``download``, ``sha256_of``, ``is_offline``, ``OFFLINE_ENV``;
* :mod:`kerasbert.download.progress`: the progress bar ``download`` draws;
* :mod:`kerasbert.download.archives`: ``extract``;
* :mod:`kerasbert.download.locks`: ``file_lock``.
"""

from kerasbert.download.archives import extract
from kerasbert.download.errors import DownloadError
from kerasbert.download.fetch import OFFLINE_ENV as OFFLINE_ENV
from kerasbert.download.fetch import download, is_offline, sha256_of
from kerasbert.download.locks import file_lock
from kerasbert.errors import KerasBertError as KerasBertError

__all__ = ["DownloadError", "download", "extract", "file_lock", "is_offline", "sha256_of"]
