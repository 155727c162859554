"""Resumable, checksummed HTTP (and ``file://``) downloads, and offline mode.

:func:`download` streams a URL into ``DESTINATION.part``, resumes it with an HTTP ``Range``
request after a cut connection (or in a later call), checks its SHA-256 (:class:`_PartDigest`
keeps a running digest across resumes) and renames it into place. The network errors it meets
become resumable failures (retried) or a :class:`DownloadError` that says what to do. With
``KERASBERT_OFFLINE=1`` (:func:`is_offline`) nothing touches the network. Standard library only.
"""

import contextlib
import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from kerasbert import __version__
from kerasbert.download.errors import DownloadError
from kerasbert.download.progress import DownloadBar

OFFLINE_ENV = "KERASBERT_OFFLINE"
_USER_AGENT = f"kerasbert/{__version__} (python-urllib)"
_TRANSIENT_STATUS = (500, 502, 503, 504)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.I)
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)", re.I)


class _Cut(Exception):
    """Internal: the connection broke mid-transfer (a resumable failure)."""


class _Stalled(Exception):
    """Internal: a socket operation timed out."""


def is_offline():
    """Whether offline mode is on: ``KERASBERT_OFFLINE`` is ``1``, ``true`` or ``yes``.

    Case-insensitive; any other value (or none) means online.

    Example:

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"KERASBERT_OFFLINE": "Yes"}):
    ...     is_offline()
    True
    >>> with mock.patch.dict(os.environ, {"KERASBERT_OFFLINE": "0"}):
    ...     is_offline()
    False
    """
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def sha256_of(path, chunk_size=1 << 20):
    """The SHA-256 hex digest of a file, read in chunks.

    Args:
        path: the file.
        chunk_size: bytes read at a time.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "empty")
    >>> open(path, "wb").close()
    >>> sha256_of(path)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    url, destination, sha256=None, timeout=30.0, progress=True, retries=3, chunk_size=1 << 20
):
    """Download ``url`` to the file ``destination``, resuming and verifying it.

    Data streams into ``destination + ".part"``. A ``.part`` left by an earlier attempt is
    resumed with an HTTP ``Range`` request; a server that answers ``200`` instead of ``206``
    restarts the file from zero. A connection cut mid-transfer (and an HTTP 500/502/503/504) is
    retried up to ``retries`` times, resuming each time. The finished file is checked against
    ``sha256`` (when given) and renamed to ``destination`` atomically (``os.replace``).

    Besides ``http(s)://``, ``file://`` URLs are accepted (local mirrors); they are copied even
    in offline mode, which only forbids the network.

    Args:
        url: the ``http://``, ``https://`` or ``file://`` URL.
        destination: the file to write (its folder is created).
        sha256: the expected SHA-256 hex digest, or None to skip the check. On a mismatch the
            downloaded data is deleted.
        timeout: seconds each socket operation (connect, each read) may wait; a stalled server
            raises :class:`DownloadError` instead of hanging. The ``.part`` is kept for a resume.
        progress: True draws a progress bar (:func:`kerasbert.progress.progress_bar`) in a
            terminal or a notebook, ``"always"`` draws it anyway, False never.
        retries: how many times a cut connection is retried.
        chunk_size: bytes read from the connection at a time.

    Returns:
        ``destination``.

    Raises:
        DownloadError: offline mode, an HTTP error (with its status), a timeout, a connection
            cut more than ``retries`` times, or a checksum mismatch.

    Example:

    >>> import os, pathlib, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> source = os.path.join(folder, "vocab.txt")
    >>> _ = pathlib.Path(source).write_text("[PAD]\\n[UNK]\\n")
    >>> path = download(pathlib.Path(source).as_uri(), os.path.join(folder, "copy", "vocab.txt"),
    ...                 sha256=sha256_of(source), progress=False)
    >>> pathlib.Path(path).read_text().split()
    ['[PAD]', '[UNK]']
    """
    url = str(url)
    destination = os.fspath(destination)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DownloadError(
            f"Cannot download {url!r}: only http://, https:// and file:// URLs are supported."
        )
    if scheme != "file" and is_offline():
        raise DownloadError(
            f"Offline mode is on ({OFFLINE_ENV}={os.environ.get(OFFLINE_ENV)!r}), so kerasbert "
            f"will not download {url}; the file {destination!r} is missing. Put the file there "
            f"(e.g. copy it from a machine with network access) or unset {OFFLINE_ENV}."
        )
    if os.path.isdir(destination):
        raise DownloadError(
            f"Download destination {destination!r} is a folder; pass the path of the file to "
            "write, e.g. os.path.join(folder, name)."
        )
    folder = os.path.dirname(os.path.abspath(destination))
    os.makedirs(folder, exist_ok=True)
    part = destination + ".part"
    expected = sha256.strip().lower() if sha256 else None
    bar = DownloadBar(os.path.basename(destination), progress)
    digest = _PartDigest(part) if expected else None
    failures = 0
    try:
        while True:
            try:
                if _attempt(url, part, timeout, chunk_size, bar, digest):
                    break
            except _Cut as cut:
                failures += 1
                if failures > retries:
                    raise DownloadError(
                        f"Downloading {url} failed: {cut} (tried {failures} times). The "
                        f"{_size(part)} bytes received are kept in {part!r}; call again to "
                        "resume, or pass a larger retries=."
                    ) from cut.__cause__
                time.sleep(min(0.1 * 2 ** (failures - 1), 2.0))
            except _Stalled as stall:
                kept = _size(part)
                raise DownloadError(
                    f"Downloading {url} timed out: no data for {timeout} s (timeout={timeout}); "
                    "the server stalled or the network is down. "
                    + (
                        f"The {kept} bytes received are kept in {part!r} for a resume. "
                        if kept
                        else ""
                    )
                    + "Check your connection, or pass a larger timeout=."
                ) from stall.__cause__
    finally:
        bar.close()
    if expected:
        actual = digest.hexdigest()
        if actual != expected:
            with contextlib.suppress(FileNotFoundError):
                os.remove(part)
            raise DownloadError(
                f"Checksum mismatch for {url}: expected sha256 {expected}, got {actual}. The "
                "downloaded data was deleted; the file on the server changed or was corrupted "
                "in transit. Try again, or check the expected digest."
            )
    os.replace(part, destination)
    return destination


def _attempt(url, part, timeout, chunk_size, bar, digest):
    """One request. True when ``part`` is complete; False to start over; raises _Cut/_Stalled."""
    offset = _size(part)
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.build_opener().open(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        with error:
            if error.code == 416 and offset:
                match = _UNSATISFIED_RANGE.search(error.headers.get("Content-Range", ""))
                if match and int(match.group(1)) == offset:
                    bar.update(offset, offset)
                    return True  # the .part already holds the whole file
                os.remove(part)  # a .part that does not fit the file: start over
                return False
            if error.code in _TRANSIENT_STATUS:
                raise _Cut(f"the server answered HTTP {error.code} ({error.reason})") from error
            raise DownloadError(_http_message(url, error.code, error.reason)) from None
    except urllib.error.URLError as error:
        _raise_network(error.reason, url)
        raise  # not reached
    except OSError as error:
        _raise_network(error, url)
        raise  # not reached
    except http.client.HTTPException as error:
        raise _Cut(f"the server sent a broken response ({error!r})") from error
    with response:
        status = response.status or 200  # file:// responses have no status
        total = None
        if status == 206:
            match = _CONTENT_RANGE.search(response.headers.get("Content-Range", ""))
            start = int(match.group(1)) if match else -1
            if start != offset:
                if not offset:
                    raise DownloadError(
                        f"The server of {url} answered a plain request with a partial "
                        f"content range ({response.headers.get('Content-Range')!r}); it is "
                        "misbehaving, try again later or another mirror."
                    )
                os.remove(part)  # it sent another range than asked: start over
                return False
            if match.group(3) != "*":
                total = int(match.group(3))
        else:
            offset = 0  # 200: the server ignored (or never got) the Range; restart from zero
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
        if digest is not None:
            digest.seek(offset)
        received = offset
        bar.update(received, total)
        with open(part, "ab" if offset else "wb") as f:
            while True:
                block = _read(response, chunk_size)
                if not block:
                    break
                f.write(block)
                if digest is not None:
                    digest.update(block)
                received += len(block)
                bar.update(received, total)
            f.flush()
            if total is not None and received < total:
                raise _Cut(f"the connection closed after {received} of {total} bytes")
            os.fsync(f.fileno())
    return True


def _read(response, size):
    """The next block of the body; any network failure mid-body is resumable (_Cut)."""
    try:
        return response.read(size)
    except TimeoutError as error:
        raise _Stalled() from error
    except (OSError, http.client.HTTPException) as error:  # resets, TLS EOFs, IncompleteRead
        if "timed out" in str(error):
            raise _Stalled() from error
        raise _Cut(f"the connection broke mid-transfer ({error!r})") from error


def _raise_network(error, url):
    """Turn a socket-level error into _Stalled, _Cut or DownloadError."""
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        raise _Stalled() from (error if isinstance(error, BaseException) else None)
    if isinstance(error, ConnectionRefusedError):
        raise DownloadError(
            f"Cannot connect to the server of {url}: connection refused. Check the URL, your "
            "network and proxy settings (http_proxy / https_proxy)."
        ) from error
    if isinstance(error, (ConnectionError, http.client.HTTPException)):
        raise _Cut(f"the connection broke ({error})") from error
    if isinstance(error, BaseException) and not isinstance(error, OSError):
        raise error
    raise DownloadError(
        f"Cannot download {url}: {error}. Check the URL, your network and proxy settings."
    ) from (error if isinstance(error, BaseException) else None)


def _http_message(url, code, reason):
    if code == 404:
        hint = "the file is not there; check the URL (it may have moved)."
    elif code in (401, 403):
        hint = "the server refused access; the file may be private or need credentials."
    elif code == 429:
        hint = "the server is rate-limiting downloads; wait a while and try again."
    else:
        hint = "try again later, or use another mirror."
    return f"HTTP {code} ({reason}) while downloading {url}: {hint}"


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class _PartDigest:
    """A running SHA-256 of the ``.part`` file's first bytes, rebuilt from disk when needed."""

    def __init__(self, path):
        self.path = path
        self.digest = None
        self.count = 0

    def seek(self, offset):
        """Make the digest cover exactly the first ``offset`` bytes of the file."""
        if self.digest is not None and self.count == offset:
            return
        self.digest, self.count = hashlib.sha256(), 0
        if offset:
            with open(self.path, "rb") as f:
                while self.count < offset:
                    block = f.read(min(1 << 20, offset - self.count))
                    if not block:
                        break
                    self.update(block)

    def update(self, block):
        self.digest.update(block)
        self.count += len(block)

    def hexdigest(self):
        self.seek(_size(self.path))
        return self.digest.hexdigest()
