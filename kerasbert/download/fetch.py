"""Resumable, checksummed HTTP (and ``file://``) downloads, and offline mode.

:func:`download` streams a URL into ``DESTINATION.part`` under a per-destination lock,
resumes it with an HTTP ``Range`` request (guarded by ``If-Range`` with the validator the
first response gave, kept in ``DESTINATION.part.json``) after a cut connection or in a later
call, checks the SHA-256 of the finished file on disk and renames it into place. Each
connection is watched at the socket: an overall deadline and a minimum transfer rate, besides
the per-read timeout. The network errors it meets become resumable failures (retried) or a
:class:`DownloadError` that says what to do. With ``KERASBERT_OFFLINE=1`` (:func:`is_offline`)
nothing touches the network. Standard library only.
"""

import contextlib
import functools
import hashlib
import http.client
import io
import json
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from kerasbert import __version__
from kerasbert.download.errors import DownloadError
from kerasbert.download.locks import file_lock
from kerasbert.download.progress import DownloadBar

OFFLINE_ENV = "KERASBERT_OFFLINE"
DEFAULT_DEADLINE = 24 * 3600.0  # seconds for one download() call's transfer, all attempts
DEFAULT_MIN_RATE = 1024  # bytes per second, averaged over DEFAULT_RATE_WINDOW
DEFAULT_RATE_WINDOW = 30.0  # seconds
_USER_AGENT = f"kerasbert/{__version__} (python-urllib)"
_TRANSIENT_STATUS = (500, 502, 503, 504)
_CONTENT_RANGE = re.compile(r"\s*bytes\s+([0-9]+)-([0-9]+)/([0-9]+|\*)\s*", re.I)
_UNSATISFIED_RANGE = re.compile(r"\s*bytes\s+\*/([0-9]+)\s*", re.I)
_LENGTH = re.compile(r"[ \t]*([0-9]+)[ \t]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e\x80-\xff]{1,1000}")  # what If-Range may carry


class _Cut(Exception):
    """Internal: the connection broke mid-transfer (a resumable failure)."""


class _Stalled(Exception):
    """Internal: a socket operation timed out."""


class _TooSlow(Exception):
    """Internal: the deadline passed (``"deadline"``) or the rate fell below the minimum
    (``"rate"``); raised from the socket reads of :class:`_PacedRaw`."""

    def __init__(self, reason, rate=None):
        super().__init__(reason)
        self.reason, self.rate = reason, rate


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

    Raises:
        DownloadError: the file cannot be read (missing, a folder, no permission).

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "empty")
    >>> open(path, "wb").close()
    >>> sha256_of(path)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(chunk_size), b""):
                digest.update(block)
    except OSError as error:
        raise DownloadError(
            f"Cannot compute the sha256 of {os.fspath(path)!r}: {error.strerror or error}."
        ) from error
    return digest.hexdigest()


def download(
    url,
    destination,
    sha256=None,
    timeout=30.0,
    progress=True,
    retries=3,
    chunk_size=1 << 20,
    deadline=DEFAULT_DEADLINE,
    min_rate=DEFAULT_MIN_RATE,
    rate_window=DEFAULT_RATE_WINDOW,
    lock_timeout=None,
):
    """Download ``url`` to the file ``destination``, resuming and verifying it.

    Data streams into ``destination + ".part"``; the finished file is checked and renamed to
    ``destination`` atomically (``os.replace``), so ``destination`` is never half-written.

    **One file, one writer.** The whole call holds an inter-process lock on
    ``destination + ".part.lock"`` (:func:`file_lock`, removed afterwards): a second call
    for the same destination, in any process, waits for the first. If it had to wait, a
    ``sha256`` is given and the first call left a matching ``destination``, it returns that
    file without a request; otherwise it downloads again.

    **Resume.** A ``.part`` left by a cut connection (retried up to ``retries`` times, as are
    HTTP 500/502/503/504) or by an earlier call is resumed with a ``Range`` request. The
    validator of the response the ``.part`` came from (a strong ``ETag``, else
    ``Last-Modified``) is kept in ``destination + ".part.json"`` and sent as ``If-Range``: a
    server whose file changed answers ``200`` with the whole new file, which restarts the
    ``.part`` from zero (so does any ``200``, a ``206`` for another start or total, or a
    garbled ``Content-Range``). Without a validator and without ``sha256`` nothing could tell
    a changed file from the one the ``.part`` holds, so the ``.part`` is started over.

    **Checks.** The request says ``Accept-Encoding: identity``; a response with another
    ``Content-Encoding`` (or a ``Transfer-Encoding`` besides ``chunked``) is refused, never
    stored undecoded nor decoded. A body shorter than its ``Content-Length`` (or its
    ``Content-Range``), or a chunked body without its final chunk, is a cut connection;
    more bytes than announced, a malformed or conflicting ``Content-Length``, a nonsensical
    ``Content-Range``, a status other than 200/206, and a redirect to anything but http(s)
    (or from https down to http) are errors. The SHA-256 is computed from the file on disk
    after the transfer, so it covers what ``destination`` will hold. **What cannot be
    detected:** a response without ``Content-Length`` and without chunking ends where the
    server closes the connection, so a server (or proxy) that closes early is
    indistinguishable from the end of the file; only ``sha256`` catches that, or a changed
    file on a server that sends no validator.

    **Limits.** ``timeout`` bounds each socket operation (a silent server); ``deadline``
    bounds the transfer as a whole, every attempt and retry included (not the wait for the
    lock); ``min_rate`` refuses a server that trickles: over every ``rate_window`` seconds
    of a connection (headers included) at least ``min_rate * rate_window`` bytes must
    arrive. Each of these keeps the ``.part`` for a resume and raises a
    :class:`DownloadError` naming the limit.

    Besides ``http(s)://``, ``file://`` URLs are accepted (local mirrors); they are copied even
    in offline mode, which only forbids the network.

    Args:
        url: the ``http://``, ``https://`` or ``file://`` URL.
        destination: the file to write (its folder is created).
        sha256: the expected SHA-256 hex digest, or None to skip the check. On a mismatch the
            downloaded data is deleted.
        timeout: seconds each socket operation (connect, each read) may wait.
        progress: True draws a progress bar (:func:`kerasbert.progress.progress_bar`) in a
            terminal or a notebook, ``"always"`` draws it anyway, False never.
        retries: how many times a cut connection is retried.
        chunk_size: the most bytes read from the connection at a time.
        deadline: seconds the transfer may take in all (default 24 hours), or None for no
            limit.
        min_rate: the slowest acceptable transfer, in bytes per second (default 1024);
            0 turns the check off.
        rate_window: the seconds over which ``min_rate`` is averaged (default 30).
        lock_timeout: seconds to wait for another call downloading the same destination;
            None waits as long as ``deadline`` (forever when that is None).

    Returns:
        ``destination``.

    Raises:
        DownloadError: offline mode, a bad URL or argument, an HTTP error (with its status),
            a timeout, the deadline or the minimum rate, a connection cut more than
            ``retries`` times, a response kerasbert refuses (see above), a checksum
            mismatch, a file that cannot be written, or a lock held too long.

    Example:

    >>> import os, pathlib, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> source = os.path.join(folder, "vocab.txt")
    >>> _ = pathlib.Path(source).write_text("[PAD]\\n[UNK]\\n")
    >>> path = download(pathlib.Path(source).as_uri(), os.path.join(folder, "copy", "vocab.txt"),
    ...                 sha256=sha256_of(source), progress=False)
    >>> pathlib.Path(path).read_text().split()
    ['[PAD]', '[UNK]']
    >>> download("ftp://example.com/x.bin", os.path.join(folder, "x.bin"))
    Traceback (most recent call last):
    ...
    kerasbert.download.errors.DownloadError: Cannot download 'ftp://example.com/x.bin': ...
    """
    url = _check_url(url)
    try:
        destination = os.fspath(destination)
    except TypeError:
        raise DownloadError(
            f"The download destination must be a file path, not {destination!r}."
        ) from None
    if isinstance(destination, bytes):
        destination = os.fsdecode(destination)
    expected = _check_sha256(sha256)
    _check_number("timeout", timeout, positive=True)
    _check_number("retries", retries, integer=True)
    _check_number("chunk_size", chunk_size, integer=True, positive=True)
    _check_number("deadline", deadline, positive=True, optional=True)
    _check_number("min_rate", min_rate)
    _check_number("rate_window", rate_window, positive=True)
    _check_number("lock_timeout", lock_timeout, optional=True)
    if _scheme(url) != "file" and is_offline():
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
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise DownloadError(
            f"Cannot create the folder {folder!r} for the download {destination!r}: "
            f"{error.strerror or error}. Pass a destination inside a writable folder."
        ) from error
    part = destination + ".part"
    if os.path.isdir(part) and not os.path.islink(part):
        raise DownloadError(
            f"{part!r}, where kerasbert keeps a partial download of {destination!r}, is a "
            "folder; delete or move it and call again."
        )
    waited = []
    if lock_timeout is None:
        lock_timeout = deadline
    with file_lock(part, timeout=lock_timeout, on_wait=waited.append, remove=True):
        if waited and expected and _matches(destination, expected):
            return destination  # the call we waited for left the verified file
        transfer = _Transfer(url, destination, expected, timeout, progress, retries,
                             chunk_size, deadline, min_rate, rate_window)  # fmt: skip
        transfer.run()
    return destination


def _matches(path, expected):
    try:
        return os.path.isfile(path) and not os.path.islink(path) and sha256_of(path) == expected
    except DownloadError:
        return False


# --------------------------------------------------------------------------- arguments


def _scheme(url):
    return urllib.parse.urlsplit(url).scheme.lower()


def _check_url(url):
    if isinstance(url, (bytes, bytearray)):
        raise DownloadError(f"The URL must be a string, not {type(url).__name__} ({url!r}).")
    url = str(url)
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise DownloadError(
            f"Cannot download {url!r}: the URL contains a control character; check it."
        )
    if any(c.isspace() for c in url):
        raise DownloadError(
            f"Cannot download {url!r}: the URL contains whitespace; percent-encode it "
            "(a space is %20)."
        )
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as error:
        raise DownloadError(f"Cannot download {url!r}: it is not a valid URL ({error}).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DownloadError(
            f"Cannot download {url!r}: only http://, https:// and file:// URLs are supported."
        )
    if scheme != "file":
        try:
            parts.port  # noqa: B018 (parses and range-checks the port)
        except ValueError as error:
            raise DownloadError(
                f"Cannot download {url!r}: its port is not valid ({error})."
            ) from None
        if not parts.hostname:
            raise DownloadError(f"Cannot download {url!r}: the URL has no host name.")
    return url


def _check_sha256(sha256):
    if sha256 is None or sha256 == "":
        return None
    if isinstance(sha256, str) and _SHA256.fullmatch(sha256.strip().lower()):
        return sha256.strip().lower()
    raise DownloadError(
        f"sha256={sha256!r} is not a SHA-256 digest: pass 64 hexadecimal digits (or None to "
        "skip the check)."
    )


def _check_number(name, value, positive=False, integer=False, optional=False):
    if value is None and optional:
        return
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        what = "an integer" if integer else "a number"
        bound = "positive" if positive else "at least 0"
        none = " (or None)" if optional else ""
        raise DownloadError(f"download({name}={value!r}): must be {what}, {bound}{none}.")


# --------------------------------------------------------------------------- pacing


class _Limits:
    """The per-read timeout, the overall deadline and the minimum rate of one call."""

    def __init__(self, timeout, deadline, min_rate, rate_window):
        self.timeout, self.deadline = timeout, deadline
        self.min_rate, self.rate_window = min_rate, rate_window
        self.deadline_at = None if deadline is None else time.monotonic() + deadline

    def left(self):
        return math.inf if self.deadline_at is None else self.deadline_at - time.monotonic()

    def expired(self):
        return self.left() <= 0

    def socket_timeout(self):
        left = self.left()
        if left <= 0:
            raise _TooSlow("deadline")
        return min(self.timeout, left)


class _Pace:
    """The bytes one connection has read and when: checks the deadline and the rate before
    each socket read, and shortens the socket timeout to what is left of the deadline."""

    def __init__(self, limits):
        self.limits = limits
        self.window_start, self.window_bytes, self.total = time.monotonic(), 0, 0

    def before_read(self, sock):
        limits = self.limits
        timeout = limits.socket_timeout()  # raises _TooSlow("deadline")
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)
        if not limits.min_rate:
            return
        now = time.monotonic()
        if now - self.window_start >= limits.rate_window:
            rate = (self.total - self.window_bytes) / (now - self.window_start)
            if rate < limits.min_rate:
                raise _TooSlow("rate", rate)
            self.window_start, self.window_bytes = now, self.total


class _PacedRaw(io.RawIOBase):
    """A socket's raw reader that asks :class:`_Pace` before every read."""

    def __init__(self, raw, sock, pace):
        super().__init__()
        self.raw, self.sock, self.pace = raw, sock, pace

    def readable(self):
        return True

    def readinto(self, buffer):
        self.pace.before_read(self.sock)
        count = self.raw.readinto(buffer)
        if count:
            self.pace.total += count
        return count

    def close(self):
        try:
            self.raw.close()
        finally:
            super().close()


class _PacedResponse(http.client.HTTPResponse):
    """An ``HTTPResponse`` whose socket reads (status line, headers, body) are paced."""

    def __init__(self, sock, *args, pace=None, **kwargs):
        super().__init__(sock, *args, **kwargs)
        raw = sock.makefile("rb", buffering=0)
        self.fp.close()  # the plain reader super() made; the socket stays open for ``raw``
        self.fp = io.BufferedReader(_PacedRaw(raw, sock, pace))


def _paced(connection_class, pace):
    def connect(host, **kwargs):
        connection = connection_class(host, **kwargs)
        connection.response_class = functools.partial(_PacedResponse, pace=pace)
        return connection

    return connect


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, pace):
        super().__init__()
        self.pace = pace

    def http_open(self, req):
        return self.do_open(_paced(http.client.HTTPConnection, self.pace), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, pace):
        super().__init__()
        self.pace = pace

    def https_open(self, req):
        options = {"context": self._context}
        if getattr(self, "_check_hostname", None) is not None:
            options["check_hostname"] = self._check_hostname
        return self.do_open(_paced(http.client.HTTPSConnection, self.pace), req, **options)


def _check_redirect(source, target):
    """Refuse a redirect from ``source`` to anything but http(s), or from https to http.

    Args:
        source: the URL that answered with the redirect.
        target: the absolute URL it points to.

    Raises:
        DownloadError: the redirect leaves http(s) or downgrades https to plain http.

    Example:

    >>> _check_redirect("https://huggingface.co/x", "https://cdn.example.com/x")
    >>> _check_redirect("https://huggingface.co/x", "file:///etc/passwd")
    Traceback (most recent call last):
    ...
    kerasbert.download.errors.DownloadError: The server of https://huggingface.co/x ...
    """
    new, old = _scheme(target), _scheme(source)
    if new not in ("http", "https"):
        raise DownloadError(
            f"The server of {source} answered with a redirect to {target!r}; kerasbert "
            "follows redirects to http(s) URLs only. The server is misconfigured or hostile: "
            "use another mirror."
        )
    if old == "https" and new == "http":
        raise DownloadError(
            f"The server of {source} answered with a redirect from https to plain http "
            f"({target!r}); kerasbert refuses the downgrade (anyone on the way could change "
            "the file). If you trust that server, download from the http URL directly."
        )


class _Redirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, but only to http(s), never https -> http, and no raw ValueError
    from a garbled ``Location``."""

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location is not None:
            try:
                target = urllib.parse.urljoin(req.full_url, location.strip())
                urllib.parse.urlsplit(target).port  # noqa: B018 (validates the port)
            except ValueError as error:
                raise DownloadError(
                    f"The server of {req.full_url} answered with a redirect to {location!r}, "
                    f"which is not a valid URL ({error}); the server is misbehaving: use "
                    "another mirror."
                ) from None
            _check_redirect(req.full_url, target)
        try:
            return super().http_error_302(req, fp, code, msg, headers)
        except ValueError as error:
            raise DownloadError(
                f"The server of {req.full_url} answered with a redirect to {location!r} that "
                f"cannot be followed ({error}); use another mirror."
            ) from None

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


# --------------------------------------------------------------------------- transfer


class _Transfer:
    """One download() call's attempts at filling ``destination.part``."""

    def __init__(self, url, destination, expected, timeout, progress, retries, chunk_size,
                 deadline, min_rate, rate_window):  # fmt: skip
        self.url, self.destination, self.expected = url, destination, expected
        self.part, self.state_path = destination + ".part", destination + ".part.json"
        self.retries, self.chunk_size = retries, chunk_size
        self.limits = _Limits(timeout, deadline, min_rate, rate_window)
        self.progress = progress
        self.total = None  # the file's size once an attempt has learnt it
        self.bar = None

    def run(self):
        self.bar = DownloadBar(os.path.basename(self.destination), self.progress)
        try:
            self._attempts()
        finally:
            self.bar.close()
        self._finish()

    def _attempts(self):
        failures = restarts = 0
        while True:
            if self.limits.expired():
                raise self._too_slow(_TooSlow("deadline"))
            try:
                if self._attempt():
                    return
                restarts += 1
                if restarts > self.retries + 2:
                    raise DownloadError(
                        f"Downloading {self.url} failed: the server kept answering with another "
                        f"file or range than asked ({restarts} restarts); it is misbehaving. "
                        "Try again later or use another mirror."
                    )
            except _Cut as cut:
                failures += 1
                if failures > self.retries:
                    raise DownloadError(
                        f"Downloading {self.url} failed: {cut} (tried {failures} times). "
                        + self._kept()
                        + " Call again, or pass a larger retries=."
                    ) from cut.__cause__
                time.sleep(max(0.0, min(0.1 * 2 ** (failures - 1), 2.0, self.limits.left())))
            except _Stalled as stall:
                if self.limits.expired():
                    raise self._too_slow(_TooSlow("deadline")) from None
                timeout = self.limits.timeout
                raise DownloadError(
                    f"Downloading {self.url} timed out: no data for {timeout} s "
                    f"(timeout={timeout}); the server stalled or the network is down. "
                    + self._kept()
                    + " Check your connection, or pass a larger timeout=."
                ) from stall.__cause__
            except _TooSlow as slow:
                raise self._too_slow(slow) from None

    def _too_slow(self, slow):
        limits = self.limits
        if slow.reason == "deadline":
            return DownloadError(
                f"Downloading {self.url} did not finish within its deadline of "
                f"{limits.deadline} s (deadline={limits.deadline}). "
                + self._kept()
                + " Call again, or pass a larger deadline= (None for no limit)."
            )
        return DownloadError(
            f"Downloading {self.url} is too slow: {slow.rate:.0f} bytes/s over the last "
            f"{limits.rate_window} s, below the minimum of {limits.min_rate} bytes/s "
            f"(min_rate={limits.min_rate}, rate_window={limits.rate_window}); the server "
            "trickles or the network is congested. "
            + self._kept()
            + " Try again later, or pass a lower min_rate= (0 turns the check off)."
        )

    def _kept(self):
        kept = _size(self.part)
        if not kept:
            return "Nothing was kept."
        if self.expected or self._validator(_read_state(self.state_path)):
            return f"The {kept} bytes received are kept in {self.part!r}; a later call resumes."
        return (
            f"The {kept} bytes received are kept in {self.part!r}, but the server sent no "
            "validator (ETag / Last-Modified) and no sha256= was given, so a later call starts "
            "over."
        )

    def _validator(self, state):
        if state is None or state["url"] != self.url:
            return None
        return state["etag"] or state["last_modified"]

    def _discard(self):
        for path in (self.part, self.state_path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        self.total = None

    def _attempt(self):
        """One request. True when the ``.part`` is complete; False to start over; raises
        _Cut, _Stalled, _TooSlow or DownloadError."""
        for path in (self.part, self.state_path):
            if os.path.islink(path):
                os.remove(path)  # never write (or read) through a link
        offset = _size(self.part)
        state = _read_state(self.state_path) if offset else None
        validator = self._validator(state)
        if offset and validator is None and not self.expected:
            self._discard()  # nothing could tell whether the server's file is the .part's
            offset, state = 0, None
        headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        pace = _Pace(self.limits)
        opener = urllib.request.build_opener(_HTTPHandler(pace), _HTTPSHandler(pace),
                                             _Redirects())  # fmt: skip
        request = urllib.request.Request(self.url, headers=headers)
        try:
            response = opener.open(request, timeout=self.limits.socket_timeout())
        except DownloadError:
            raise
        except urllib.error.HTTPError as error:
            with error:
                return self._http_error(error, offset, state)
        except urllib.error.URLError as error:
            _raise_network(error.reason, self.url)
            raise  # not reached
        except OSError as error:
            _raise_network(error, self.url)
            raise  # not reached
        except http.client.HTTPException as error:
            raise _Cut(f"the server sent a broken response ({error!r})") from error
        except ValueError as error:
            raise DownloadError(f"Cannot download {self.url}: {error}.") from None
        with response:
            return self._receive(response, offset, state)

    def _http_error(self, error, offset, state):
        headers = error.headers or {}
        if error.code == 416 and offset:
            match = _UNSATISFIED_RANGE.fullmatch(headers.get("Content-Range") or "")
            known = state["length"] if state else None
            if match and int(match.group(1)) == offset and known in (None, offset):
                self.total = offset
                self.bar.update(offset, offset)
                return True  # the .part already holds the whole file
            self._discard()  # a .part that does not fit the file: start over
            return False
        if error.code in _TRANSIENT_STATUS:
            raise _Cut(f"the server answered HTTP {error.code} ({error.reason})") from error
        raise DownloadError(_http_message(self.url, error.code, error.reason)) from None

    def _refuse(self, problem):
        return DownloadError(
            f"The server of {self.url} {problem}; it is misbehaving (or something between "
            "you and it is). Try again later or use another mirror."
        )

    def _receive(self, response, offset, state):
        status = response.status  # None for file:// responses
        headers = response.headers
        if status is not None and status not in (200, 206):
            raise self._refuse(f"answered HTTP {status} ({response.reason}), not the file")
        chunked = self._check_encodings(headers)
        length = None if chunked else self._content_length(headers)
        if status == 206:
            ranges = headers.get_all("Content-Range") or []
            match = _CONTENT_RANGE.fullmatch(ranges[0]) if len(ranges) == 1 else None
            if match is None:
                if not offset:
                    raise self._refuse(
                        f"answered a plain request with partial content (Content-Range {ranges!r})"
                    )
                self._discard()  # the bytes cannot be placed: start over
                return False
            start, end = int(match.group(1)), int(match.group(2))
            size = None if match.group(3) == "*" else int(match.group(3))
            if end < start or (size is not None and end >= size):
                raise self._refuse(f"sent the nonsensical Content-Range {ranges[0]!r}")
            if length is not None and length != end - start + 1:
                raise self._refuse(
                    f"sent Content-Range {ranges[0]!r} ({end - start + 1} bytes) with "
                    f"Content-Length {length}"
                )
            if start != offset:
                if not offset:
                    raise self._refuse(
                        f"answered a plain request with a partial content range ({ranges[0]!r})"
                    )
                self._discard()  # another range than asked: start over
                return False
            known = state["length"] if state else None
            if known is not None and size is not None and size != known:
                self._discard()  # the file's size changed: not the .part's file
                return False
            total, stop = size, end + 1
        else:
            offset = 0  # 200: the server ignored the Range or the If-Range failed: restart
            total = stop = length
        if not offset and status is not None:
            self._write_state(headers, total)  # the validator a later resume sends
        received = offset
        self.bar.update(received, total)
        with self._open_part(offset) as f:
            while True:
                block = self._read(response)
                if not block:
                    break
                if stop is not None and received + len(block) > stop:
                    raise self._refuse(
                        f"sent more than the {stop - offset} bytes it announced for "
                        f"{self.destination!r}"
                    )
                self._write(f, block)
                received += len(block)
                self.bar.update(received, total)
            self._write(f, None)
        if stop is not None and received < stop:
            raise _Cut(f"the connection closed after {received} of {stop} bytes")
        if total is not None and received < total:
            raise _Cut(f"the server sent bytes up to {received} of {total} only")
        self.total = total if total is not None else (stop if status == 206 else None)
        return True

    def _check_encodings(self, headers):
        """Refuse encoded bodies; whether the body is chunked."""
        chunked = False
        for field, allowed in (("Content-Encoding", ()), ("Transfer-Encoding", ("chunked",))):
            fields = headers.get_all(field) or []
            values = [v.strip().lower() for f in fields for v in f.split(",") if v.strip()]
            values = [v for v in values if v != "identity"]
            if field == "Transfer-Encoding" and values == ["chunked"] and len(fields) == 1:
                chunked = fields[0].strip().lower() == "chunked"  # what http.client decodes
                if chunked:
                    continue
            if values:
                raise DownloadError(
                    f"The server of {self.url} sent the file with {field}: "
                    f"{', '.join(fields)}, although kerasbert asked for Accept-Encoding: "
                    "identity. kerasbert stores downloads byte for byte and does not decode "
                    "them, so it refuses this answer. Try again later or use another mirror "
                    f"(allowed: {', '.join(('identity',) + allowed)})."
                )
        return chunked

    def _content_length(self, headers):
        fields = headers.get_all("Content-Length") or []
        lengths = set()
        for value in fields:
            for piece in value.split(","):
                match = _LENGTH.fullmatch(piece)
                if match is None:
                    raise self._refuse(f"sent an invalid Content-Length {value!r}")
                lengths.add(int(match.group(1)))
        if len(lengths) > 1:
            raise self._refuse(f"sent conflicting Content-Length values {fields}")
        return lengths.pop() if lengths else None

    def _write_state(self, headers, total):
        etag = (headers.get("ETag") or "").strip()
        modified = (headers.get("Last-Modified") or "").strip()
        state = {
            "url": self.url,
            "etag": etag if _HEADER_VALUE.fullmatch(etag) and not etag.startswith("W/") else None,
            "last_modified": modified if _HEADER_VALUE.fullmatch(modified) else None,
            "length": total,
        }
        temporary = self.state_path + ".tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as f:
                json.dump(state, f)
            os.replace(temporary, self.state_path)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise DownloadError(
                f"Cannot write {self.state_path!r}: {error.strerror or error}. Check that "
                "the download's folder is writable."
            ) from error

    def _open_part(self, offset):
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        flags |= os.O_APPEND if offset else os.O_TRUNC
        try:
            return os.fdopen(os.open(self.part, flags, 0o644), "ab" if offset else "wb")
        except OSError as error:
            raise DownloadError(
                f"Cannot write {self.part!r}: {error.strerror or error}. Check that the "
                "download's folder is writable."
            ) from error

    def _write(self, f, block):
        try:
            if block is None:
                f.flush()
                os.fsync(f.fileno())
            else:
                f.write(block)
        except OSError as error:
            raise DownloadError(
                f"Cannot write {self.part!r}: {error.strerror or error} (is the disk full?). "
                "What was written so far is kept for a resume."
            ) from error

    def _read(self, response):
        """The next block of the body; any network failure mid-body is resumable (_Cut)."""
        read = getattr(response, "read1", None) or response.read
        try:
            return read(self.chunk_size)
        except TimeoutError as error:
            raise _Stalled() from error
        except (OSError, http.client.HTTPException) as error:  # resets, TLS EOFs, cut chunks
            if "timed out" in str(error):
                raise _Stalled() from error
            raise _Cut(f"the connection broke mid-transfer ({error!r})") from error

    def _finish(self):
        """Check the finished ``.part`` on disk, then rename it into place."""
        size = _size(self.part)
        if self.total is not None and size != self.total:
            self._discard()
            raise DownloadError(
                f"The download of {self.url} holds {size} bytes on disk, but the server "
                f"announced {self.total}; something else wrote to {self.part!r}. The data "
                "was deleted; try again."
            )
        if self.expected:
            actual = sha256_of(self.part)
            if actual != self.expected:
                self._discard()
                raise DownloadError(
                    f"Checksum mismatch for {self.url}: expected sha256 {self.expected}, got "
                    f"{actual}. The downloaded data was deleted; the file on the server "
                    "changed or was corrupted in transit. Try again, or check the expected "
                    "digest."
                )
        try:
            os.replace(self.part, self.destination)
        except OSError as error:
            raise DownloadError(
                f"Cannot move {self.part!r} to {self.destination!r}: {error.strerror or error}."
            ) from error
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.state_path)


def _read_state(path):
    """The validators kept beside a ``.part`` (None when missing or unreadable)."""
    try:
        if os.path.islink(path):
            return None
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("url"), str):
        return None
    clean = {"url": state["url"]}
    for key in ("etag", "last_modified"):
        value = state.get(key)
        clean[key] = value if isinstance(value, str) and _HEADER_VALUE.fullmatch(value) else None
    length = state.get("length")
    ok = isinstance(length, int) and not isinstance(length, bool) and length >= 0
    clean["length"] = length if ok else None
    return clean


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
    elif 300 <= code < 400:
        hint = "its redirects loop or lead nowhere; try again later, or use another mirror."
    else:
        hint = "try again later, or use another mirror."
    return f"HTTP {code} ({reason}) while downloading {url}: {hint}"


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
