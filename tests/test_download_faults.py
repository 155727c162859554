"""kerasbert.download.download against misbehaving servers (a scripted one on 127.0.0.1,
tests/faulty_server.py) and concurrent callers: every fault ends in the right bytes or a
DownloadError, never a foreign exception, a hang, or a "verified" file that is not.

No test reads a clock: the slow servers are paced so that a broken client fails a content
or message assertion, and every wait (on the server, on child processes) has a bound.
"""

import gzip
import hashlib
import json
import multiprocessing
import os
import pathlib
import shutil
import subprocess

import pytest
from conftest import wait_for
from faulty_server import PROXY_VARS, Server, etag_of, serve_file

from kerasbert.download import DownloadError, download, sha256_of
from kerasbert.errors import KerasBertError

DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
ETAG = etag_of(DATA)


@pytest.fixture
def web(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)  # 127.0.0.1 directly, never a proxy
    monkeypatch.delenv("KERASBERT_OFFLINE", raising=False)
    server = Server()
    yield server
    server.close()


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0



def _leftovers(folder):
    return sorted(p.name for p in pathlib.Path(folder).iterdir())


# ------------------------------------------------------- 1. concurrent calls, one file


def _download_in_child(url, dest, sha, ready, go, result_path):
    """Run in a spawned process: wait for ``go``, download, report what happened."""
    ready.set()
    if not go.wait(120):
        outcome = {"ok": False, "type": "test", "message": "never told to go"}
    else:
        try:
            download(url, dest, sha256=sha, progress=False, chunk_size=4096)
            # Read at once: a file another process is still writing shows here.
            outcome = {"ok": True, "sha256": sha256_of(dest)}
        except BaseException as error:  # noqa: BLE001 (reported to the test)
            kind = f"{type(error).__module__}.{type(error).__qualname__}"
            outcome = {"ok": False, "type": kind, "message": str(error)}
    pathlib.Path(result_path).write_text(json.dumps(outcome))


@pytest.mark.parametrize("known", [True, False], ids=["sha256", "no-sha256"])
def test_two_processes_download_one_destination(web, tmp_path, known):
    """Process B starts downloading the same URL to the same file while process A is
    half-way through (the server is paced to make them overlap): both end with the right
    bytes on disk when their call returns (with a known sha256, B waits for A and finds
    the file done), and neither raises."""
    url = web.add("/model.bin", lambda h, n: serve_file(h, DATA, ETAG, piece=4096, delay=0.02))
    dest = tmp_path / "model.bin"
    context = multiprocessing.get_context("spawn")
    children = []
    for i in range(2):
        ready, go = context.Event(), context.Event()
        args = (url, str(dest), DIGEST if known else None, ready, go, str(tmp_path / f"r{i}"))
        child = context.Process(target=_download_in_child, args=args, daemon=True)
        child.start()
        children.append((child, ready, go))
    try:
        for _, ready, _ in children:
            assert ready.wait(120), "a child process never started"
        children[0][2].set()
        assert wait_for(lambda: _size(f"{dest}.part") > 0, 60, step=0.01), "A never started writing"
        assert not dest.exists()  # A is still mid-transfer
        children[1][2].set()
        for child, _, _ in children:
            child.join(120)
        assert not any(child.is_alive() for child, _, _ in children)
    finally:
        for child, _, _ in children:
            if child.is_alive():
                child.kill()
                child.join(5)
    outcomes = [json.loads((tmp_path / f"r{i}").read_text()) for i in range(2)]
    assert outcomes == [{"ok": True, "sha256": DIGEST}] * 2
    assert dest.read_bytes() == DATA
    assert _leftovers(tmp_path) == ["model.bin", "r0", "r1"]
    if known:
        assert len(web.requests) == 1  # B found A's verified file and did not fetch again


def test_checksum_is_of_the_file_on_disk(web, tmp_path):
    """Something else scribbles on the .part mid-transfer: the bytes received are right,
    the file on disk is not, and download() says so instead of "verified"."""
    dest = tmp_path / "model.bin"
    part = f"{dest}.part"

    def route(h, n):
        h.head(200, [("Content-Length", str(len(DATA))), ("ETag", ETAG)])
        h.body(DATA[:150_000])
        wait_for(lambda: _size(part) >= 100_000, 10, step=0.01)
        with open(part, "r+b") as f:
            f.write(b"\0" * 1000)
        h.body(DATA[150_000:])

    url = web.add("/model.bin", route)
    with pytest.raises(DownloadError, match="Checksum mismatch") as info:
        download(url, dest, sha256=DIGEST, progress=False, chunk_size=4096)
    assert DIGEST in str(info.value)
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------- 2. If-Range on resume


def test_resume_sends_if_range_and_restarts_when_the_file_changed(web, tmp_path):
    """No sha256 known: the first response is cut; before the resume the file (and its
    ETag) changes on the server. The resume carries If-Range with the first ETag, the
    server answers 200 with the new file, and the result is the new file, not a stitch."""
    new = os.urandom(300_000)

    def route(h, n):
        if n == 0:
            serve_file(h, DATA, etag=ETAG, cut=100_000)
        else:
            serve_file(h, new, etag=etag_of(new))

    url = web.add("/model.bin", route)
    dest = tmp_path / "model.bin"
    download(url, dest, progress=False, chunk_size=4096)
    assert dest.read_bytes() == new
    second = web.requests[1]
    assert second["range"] == "bytes=100000-" and second["if_range"] == ETAG
    assert _leftovers(tmp_path) == ["model.bin"]


def test_resume_with_if_range_when_unchanged(web, tmp_path):
    url = web.add("/model.bin", lambda h, n: serve_file(h, DATA, ETAG, cut=None if n else 100_000))
    dest = tmp_path / "model.bin"
    download(url, dest, progress=False, chunk_size=4096)
    assert dest.read_bytes() == DATA
    assert [(r["range"], r["if_range"]) for r in web.requests] == [
        (None, None),
        ("bytes=100000-", ETAG),
    ]


def test_full_206_to_a_plain_request_records_its_validator(web, tmp_path):
    """Some servers answer every request with 206; the validator is kept all the same."""

    def route(h, n):
        start = _range_start(h) if h.headers.get("If-Range") == ETAG else 0
        body = DATA[start:] if n else DATA[:100_000]
        h.head(
            206, [("ETag", ETAG), ("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")]
        )
        h.body(body)
        h.cut()

    url = web.add("/m.bin", route)
    download(url, tmp_path / "m.bin", progress=False, chunk_size=4096)
    assert (tmp_path / "m.bin").read_bytes() == DATA
    assert [(r["range"], r["if_range"]) for r in web.requests] == [
        (None, None),
        ("bytes=100000-", ETAG),
    ]


def test_if_range_last_modified_across_calls(web, tmp_path):
    """The validator is kept beside the .part, so a later call resumes with it too; here
    the server has only Last-Modified, and the file changed between the calls."""
    new = os.urandom(250_000)
    old_date, new_date = "Wed, 01 Jan 2025 00:00:00 GMT", "Thu, 02 Jan 2025 00:00:00 GMT"

    def route(h, n):
        if n == 0:
            serve_file(h, DATA, last_modified=old_date, cut=100_000)
        else:
            serve_file(h, new, last_modified=new_date)

    url = web.add("/model.bin", route)
    dest = tmp_path / "model.bin"
    with pytest.raises(DownloadError, match="tried 1 times"):
        download(url, dest, progress=False, retries=0, chunk_size=4096)
    assert _leftovers(tmp_path) == ["model.bin.part", "model.bin.part.json"]
    download(url, dest, progress=False, chunk_size=4096)
    assert dest.read_bytes() == new
    assert web.requests[1]["if_range"] == old_date
    assert _leftovers(tmp_path) == ["model.bin"]


@pytest.mark.parametrize("validator", ["none", "weak-etag"])
def test_no_usable_validator_and_no_checksum_restarts_from_zero(web, tmp_path, validator):
    """Without a strong validator and without a sha256 nothing could tell a changed file
    from the one the .part holds: the retry starts over instead of resuming."""
    etag = 'W/"weak"' if validator == "weak-etag" else None
    url = web.add("/m.bin", lambda h, n: serve_file(h, DATA, etag, cut=None if n else 100_000))
    dest = tmp_path / "m.bin"
    download(url, dest, progress=False, chunk_size=4096)
    assert dest.read_bytes() == DATA
    assert [r["range"] for r in web.requests] == [None, None]


# ------------------------------------------------------- 3. short and encoded bodies


def _range_start(h):
    wanted = h.headers.get("Range")
    return int(wanted.split("=")[1].split("-")[0]) if wanted else 0


@pytest.mark.parametrize(
    "kind", ["content-length", "plus-sign-length", "star-total-range", "short-206-length"]
)
def test_short_bodies_are_retried_then_refused(web, tmp_path, kind):
    """Every response is cut 10,000 bytes in; however its headers announce the size, the
    cut is noticed, resumed (retries) and finally refused, keeping the bytes for later."""

    def route(h, n):
        start = _range_start(h)
        body = DATA[start:]
        headers = [("ETag", ETAG)]
        if kind == "content-length":
            headers.append(("Content-Length", str(len(body))))
        elif kind == "plus-sign-length":
            headers.append(("Content-Length", f"+{len(body)}"))
        if start or kind in ("star-total-range", "short-206-length"):
            total = "*" if kind == "star-total-range" else str(len(DATA))
            headers.append(("Content-Range", f"bytes {start}-{len(DATA) - 1}/{total}"))
            if kind == "short-206-length":
                headers.append(("Content-Length", str(len(body) - 5)))
            h.head(206, headers)
        else:
            h.head(200, headers)
        h.body(body[:10_000])
        h.cut()

    url = web.add("/m.bin", route)
    dest = tmp_path / "m.bin"
    with pytest.raises(DownloadError) as info:
        download(url, dest, progress=False, retries=2, chunk_size=4096)
    assert url in str(info.value)
    assert not dest.exists()


@pytest.mark.parametrize("where", ["mid-chunk", "chunk-boundary"])
def test_chunked_body_cut_is_retried_then_refused(web, tmp_path, where):
    def route(h, n):
        h.head(200, [("Transfer-Encoding", "chunked"), ("ETag", ETAG)])
        for i in range(0, 40_000, 10_000):
            piece = DATA[i : i + 10_000]
            h.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        if where == "mid-chunk":
            h.wfile.write(b"2710\r\n" + DATA[40_000:45_000])
        h.cut()  # never the terminating 0-size chunk

    url = web.add("/m.bin", route)
    with pytest.raises(DownloadError, match="tried 2 times"):
        download(url, tmp_path / "m.bin", progress=False, retries=1, chunk_size=4096)
    assert not (tmp_path / "m.bin").exists() and len(web.requests) == 2


def test_close_delimited_cut_is_caught_only_by_a_checksum(web, tmp_path):
    """No Content-Length, no chunking: the end of the body is the end of the connection,
    so an early close looks like the end of the file. Only a sha256 catches it (the
    documented limit); without one the short file is what the server sent."""
    url = web.add("/m.bin", lambda h, n: (h.head(200, []), h.body(DATA[:100_000])))
    with pytest.raises(DownloadError, match="Checksum mismatch"):
        download(url, tmp_path / "a.bin", sha256=DIGEST, progress=False)
    assert not (tmp_path / "a.bin").exists()
    download(url, tmp_path / "b.bin", progress=False)
    assert (tmp_path / "b.bin").read_bytes() == DATA[:100_000]


@pytest.mark.parametrize(
    "header",
    [
        ("Content-Encoding", "gzip"),
        ("Content-Encoding", "x-gzip"),
        ("Content-Encoding", "br"),
        ("Transfer-Encoding", "gzip"),
    ],
)
def test_encoded_bodies_are_refused(web, tmp_path, header):
    """kerasbert asks for Accept-Encoding: identity and stores bytes as sent; a body
    encoded anyway is refused (not stored undecoded, not decoded)."""
    body = gzip.compress(DATA)
    route = lambda h, n: (  # noqa: E731
        h.head(200, [header, ("Content-Length", str(len(body)))]),
        h.body(body),
    )
    url = web.add("/m.bin", route)
    with pytest.raises(DownloadError, match=header[1]) as info:
        download(url, tmp_path / "m.bin", progress=False)
    assert header[0] in str(info.value)
    assert web.requests[0]["accept_encoding"] == "identity"
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------- 4. deadline and minimum rate


def test_trickling_body_fails_the_minimum_rate(web, tmp_path):
    """One byte every 0.05 s: each read returns long before the timeout, so only the
    minimum rate can stop it; the client hangs up while the server still trickles."""

    def route(h, n):
        h.head(200, [("Content-Length", str(len(DATA))), ("ETag", ETAG)])
        h.trickle(DATA, every=0.05)

    url = web.add("/m.bin", route)
    with pytest.raises(DownloadError, match="min_rate=1000") as info:
        download(
            url, tmp_path / "m.bin", progress=False, timeout=5, min_rate=1000,
            rate_window=0.5, retries=0,
        )  # fmt: skip
    assert "rate_window=0.5" in str(info.value) and url in str(info.value)
    assert web.wait_event() == ["client hung up"]
    assert not (tmp_path / "m.bin").exists()


def test_trickling_headers_fail_the_minimum_rate(web, tmp_path):
    def route(h, n):
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        h.trickle(b"X-Padding: " + b"a" * 10_000, every=0.05)

    url = web.add("/m.bin", route)
    with pytest.raises(DownloadError, match="min_rate=1000"):
        download(
            url, tmp_path / "m.bin", progress=False, timeout=5, min_rate=1000,
            rate_window=0.5, retries=0,
        )  # fmt: skip
    assert web.wait_event() == ["client hung up"]


def test_overall_deadline(web, tmp_path):
    """2,000 bytes every 0.05 s is well above the minimum rate, but the whole file would
    take 7.5 s: the 1 s deadline ends it, keeping the bytes received for a resume."""

    def route(h, n):
        h.head(200, [("Content-Length", str(len(DATA))), ("ETag", ETAG)])
        h.body(DATA, piece=2000, delay=0.05)
        h.note("client hung up" if h.hung_up(1.0) else "body sent")

    url = web.add("/m.bin", route)
    dest = tmp_path / "m.bin"
    with pytest.raises(DownloadError, match="deadline=1.0") as info:
        download(url, dest, progress=False, deadline=1.0, min_rate=1000, rate_window=0.5)
    assert "resume" in str(info.value)
    assert web.wait_event() == ["client hung up"]
    assert not dest.exists() and 0 < _size(f"{dest}.part") < len(DATA)


# ------------------------------------------------------- 8. nonsense from servers


def _nonsense(status, headers, body=b""):
    """A route answering a Range request with nonsense, and a plain one normally."""

    def route(h, n):
        if h.headers.get("Range"):
            h.head(status, headers)
            h.body(body)
        else:
            serve_file(h, DATA, ETAG)

    return route


REST = DATA[100_000:]
NONSENSE = {
    "negative-length": (200, [("Content-Length", "-5")], DATA),
    "garbage-length": (200, [("Content-Length", "abc")], DATA),
    "two-lengths": (200, [("Content-Length", "100"), ("Content-Length", "300000")], DATA),
    "range-end-before-start": (
        206, [("Content-Range", "bytes 100000-50/300000"), ("Content-Length", "200000")], REST
    ),
    "range-past-total": (
        206, [("Content-Range", "bytes 100000-299999/200000"), ("Content-Length", "200000")],
        REST,
    ),
    "range-garbage": (206, [("Content-Range", "pages 1-2"), ("Content-Length", "200000")], REST),
    "range-missing": (206, [("Content-Length", "200000")], REST),
    "range-length-mismatch": (
        206, [("Content-Range", "bytes 100000-299999/300000"), ("Content-Length", "1000")],
        REST[:1000],
    ),
    "range-longer-body": (206, [("Content-Range", "bytes 100000-199999/300000")], REST),
    "no-content": (204, [], b""),
    "created": (201, [("Content-Length", "5")], b"hello"),
    "redirect-ftp": (302, [("Location", "ftp://127.0.0.1/m.bin"), ("Content-Length", "0")], b""),
    "redirect-file": (302, [("Location", "file:///etc/passwd"), ("Content-Length", "0")], b""),
    "redirect-garbage": (302, [("Location", "http://[::1/x"), ("Content-Length", "0")], b""),
}  # fmt: skip


@pytest.mark.parametrize("case", list(NONSENSE))
def test_nonsense_answers_to_a_resume_are_download_errors(web, tmp_path, case):
    """A .part of the right first 100,000 bytes is resumed; the server answers the Range
    request with nonsense. The call ends in a DownloadError naming the URL (or, where
    the nonsense only shows that the server ignored the range, a clean restart), never a
    foreign exception, and never a file that is not the server's."""
    status, headers, body = NONSENSE[case]
    url = web.add("/m.bin", _nonsense(status, headers, body))
    dest = tmp_path / "m.bin"
    pathlib.Path(f"{dest}.part").write_bytes(DATA[:100_000])
    try:
        download(url, dest, sha256=DIGEST, progress=False, retries=1, chunk_size=4096)
    except DownloadError as error:
        assert "127.0.0.1" in str(error), error
        assert not dest.exists()
    else:
        assert dest.read_bytes() == DATA
        assert case in ("range-garbage", "range-missing")  # restarted from zero


@pytest.mark.parametrize("case", ["negative-length", "garbage-length", "two-lengths"])
def test_nonsense_lengths_are_refused_outright(web, tmp_path, case):
    status, headers, body = NONSENSE[case]
    url = web.add("/m.bin", lambda h, n: (h.head(status, headers), h.body(body)))
    with pytest.raises(DownloadError, match="Content-Length"):
        download(url, tmp_path / "m.bin", progress=False)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("case", ["redirect-ftp", "redirect-file", "redirect-garbage"])
def test_redirects_leave_http_only_with_an_error(web, tmp_path, case):
    status, headers, _ = NONSENSE[case]
    url = web.add("/m.bin", lambda h, n: h.head(status, headers))
    with pytest.raises(DownloadError, match="redirect") as info:
        download(url, tmp_path / "m.bin", progress=False)
    assert headers[0][1] in str(info.value)
    assert len(web.requests) == 1


def test_redirects_within_http_are_followed(web, tmp_path):
    web.add("/final.bin", lambda h, n: serve_file(h, DATA, ETAG))
    url = web.add("/m.bin", lambda h, n: h.head(302, [("Location", "/final.bin")]))
    download(url, tmp_path / "m.bin", sha256=DIGEST, progress=False)
    assert (tmp_path / "m.bin").read_bytes() == DATA


def test_https_to_http_redirect_is_refused():
    from kerasbert.download.fetch import _check_redirect

    _check_redirect("https://a.example/x", "https://cdn.example/y")
    _check_redirect("http://a.example/x", "https://cdn.example/y")
    with pytest.raises(DownloadError, match="https.*plain http"):
        _check_redirect("https://a.example/x", "http://cdn.example/y")


def test_206_with_another_total_than_recorded_restarts(web, tmp_path):
    """The ETag matches but the announced total differs from the first response's:
    the server is inconsistent, so the .part is not trusted and the file restarts."""

    def route(h, n):
        if n == 0:
            serve_file(h, DATA, ETAG, cut=100_000)
        elif n == 1:
            h.head(206, [("ETag", ETAG), ("Content-Range", "bytes 100000-399999/400000"),
                         ("Content-Length", "300000")])  # fmt: skip
            h.body(os.urandom(300_000))
        else:
            serve_file(h, DATA, ETAG)

    url = web.add("/m.bin", route)
    download(url, tmp_path / "m.bin", progress=False, chunk_size=4096)
    assert (tmp_path / "m.bin").read_bytes() == DATA
    assert [r["range"] for r in web.requests] == [None, "bytes=100000-", None]


def test_garbage_status_line_is_retried_then_refused(web, tmp_path):
    url = web.add("/m.bin", lambda h, n: h.wfile.write(b"ICY 200 OK\r\n\r\n" + DATA[:100]))
    with pytest.raises(DownloadError, match="tried 2 times"):
        download(url, tmp_path / "m.bin", progress=False, retries=1)


@pytest.mark.parametrize(
    "url, match",
    [
        ("http://127.0.0.1:99999/m.bin", "port"),
        ("http://127.0.0.1:abc/m.bin", "port"),
        ("http:///m.bin", "host"),
        ("http://127.0.0.1/m bin", "whitespace"),
        ("http://127.0.0.1/m\x00bin", "control"),
        ("http://[::1/m.bin", "not a valid URL"),
        (b"http://127.0.0.1/m.bin", "string"),
    ],
)
def test_bad_urls_fail_before_any_connection(web, tmp_path, url, match):
    with pytest.raises(DownloadError, match=match):
        download(url, tmp_path / "m.bin", progress=False, retries=0)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sha256": "not-hex"}, "sha256"),
        ({"sha256": 12}, "sha256"),
        ({"timeout": 0}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"deadline": -1}, "deadline"),
        ({"min_rate": -1}, "min_rate"),
        ({"rate_window": 0}, "rate_window"),
    ],
)
def test_bad_arguments(web, tmp_path, kwargs, match):
    url = web.add("/m.bin", lambda h, n: serve_file(h, DATA, ETAG))
    with pytest.raises(DownloadError, match=match):
        download(url, tmp_path / "m.bin", progress=False, **kwargs)
    assert web.requests == [] and _leftovers(tmp_path) == []


def test_bad_destinations(web, tmp_path):
    url = web.add("/m.bin", lambda h, n: serve_file(h, DATA, ETAG))
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(DownloadError, match="afile"):
        download(url, tmp_path / "afile" / "m.bin", progress=False)
    (tmp_path / "m.bin.part").mkdir()
    with pytest.raises(DownloadError, match=r"m\.bin\.part"):
        download(url, tmp_path / "m.bin", progress=False)
    assert (tmp_path / "afile").read_bytes() == b"x"


def test_local_paths_that_are_not_files(tmp_path):
    with pytest.raises(DownloadError, match="nope"):
        sha256_of(tmp_path / "nope")
    with pytest.raises(DownloadError, match="file path"):
        download((tmp_path / "x").as_uri(), None, progress=False)


def test_part_symlink_is_not_followed(web, tmp_path):
    """A .part that is a symlink is removed, not written through."""
    url = web.add("/m.bin", lambda h, n: serve_file(h, DATA, ETAG))
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "m.bin.part").symlink_to(outside)
    download(url, tmp_path / "dl" / "m.bin", sha256=DIGEST, progress=False)
    assert outside.read_bytes() == b"precious"
    assert (tmp_path / "dl" / "m.bin").read_bytes() == DATA


def test_errors_are_kerasbert_errors(web, tmp_path):
    url = web.add("/m.bin", lambda h, n: h.head(204, []))
    with pytest.raises(KerasBertError):
        download(url, tmp_path / "m.bin", progress=False)


# ------------------------------------------------------- https (a self-signed loopback server)


@pytest.fixture
def tls_web(tmp_path, monkeypatch):
    """An https server on 127.0.0.1 with a fresh self-signed certificate that this
    process trusts (SSL_CERT_FILE); skipped where no openssl command exists."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KERASBERT_OFFLINE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = Server(tls=(str(cert), str(key)))
    yield server
    server.close()


def test_https_download_resume_and_pacing(tls_web, tmp_path):
    """The paced reader works on TLS sockets: a cut https download resumes with If-Range,
    and a trickling https server fails the minimum rate."""
    url = tls_web.add("/m.bin", lambda h, n: serve_file(h, DATA, ETAG, cut=None if n else 100_000))
    download(url, tmp_path / "m.bin", sha256=DIGEST, progress=False, chunk_size=4096)
    assert (tmp_path / "m.bin").read_bytes() == DATA
    assert [r["if_range"] for r in tls_web.requests] == [None, ETAG]

    def trickle(h, n):
        h.head(200, [("Content-Length", str(len(DATA)))])
        h.trickle(DATA, every=0.05)

    slow = tls_web.add("/slow.bin", trickle)
    with pytest.raises(DownloadError, match="min_rate=1000"):
        download(
            slow, tmp_path / "slow.bin", progress=False, timeout=5, min_rate=1000,
            rate_window=0.5, retries=0,
        )  # fmt: skip


def test_https_redirect_to_plain_http_is_refused(tls_web, web, tmp_path):
    target = web.add("/m.bin", lambda h, n: serve_file(h, DATA, ETAG))
    url = tls_web.add("/m.bin", lambda h, n: h.head(302, [("Location", target)]))
    with pytest.raises(DownloadError, match="plain http") as info:
        download(url, tmp_path / "m.bin", progress=False)
    assert target in str(info.value) and web.requests == []
