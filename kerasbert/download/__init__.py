"""Fetching files: resumable, checksummed HTTP downloads, safe archive extraction, file locks.

Standard library only. :func:`download` streams a URL into ``DESTINATION.part`` under a
per-destination inter-process lock, resumes it with an HTTP ``Range`` request guarded by
``If-Range`` after a cut connection (or in a later call), refuses encoded bodies and headers
that do not add up, enforces a per-read timeout, an overall deadline and a minimum rate,
checks the SHA-256 of the file on disk and renames it into place. :func:`extract` unpacks zip
and tar archives, refusing members that would land outside the target folder, archives over a
size or member-count limit, and names that are both a file and a folder. :func:`file_lock`
keeps two processes from fetching the same file at once. Every failure is a
:class:`DownloadError` saying what is wrong and what to do. With ``KERASBERT_OFFLINE=1``
(:func:`is_offline`) nothing touches the network.

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
