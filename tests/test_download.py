"""kerasbert.download against a local HTTP server on 127.0.0.1: resume, retries, timeouts,
checksums, HTTP errors, offline mode, locks between threads and processes, safe extraction."""

import hashlib
import io
import os
import pathlib
import select
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import wait_for

from kerasbert.download import (
    DownloadError,
    download,
    extract,
    file_lock,
    is_offline,
    sha256_of,
)
from kerasbert.errors import KerasBertError

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
PROXY_VARS = ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
STALL_S = 5  # how long a stalling handler stays silent at most (10x the tests' client timeout)


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; ``server.modes[path]`` changes how (see ``Server.add``)."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        server = self.server
        with server.lock:
            server.requests.append(
                {
                    "path": self.path,
                    "range": self.headers.get("Range"),
                    "if_range": self.headers.get("If-Range"),
                }
            )
            mode = server.modes.get(self.path, "normal")
            if mode in ("cut_once", "reset_once", "503_once"):
                server.modes[self.path] = "normal"  # misbehave once, then serve normally
        self._serve(mode)

    def _serve(self, mode):
        data = self.server.files.get(self.path)
        if data is None or mode == "404":
            self.send_error(404, "Not Found")
            return
        if mode == "503_once":
            self.send_error(503, "Service Unavailable")
            return
        if mode == "stall_headers":
            self._stall()
            return
        # A strong ETag, honoured in If-Range, as static file servers do.
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        start, wanted = 0, self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and mode != "ignore_range" and if_range in (None, etag):
            start = int(wanted.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "stall":
            self.wfile.write(body[:1000])
            self.wfile.flush()
            self._stall()
            return
        if mode in ("cut_once", "cut_always", "reset_once"):
            self.wfile.write(body[: self.server.cut_after])
            self.wfile.flush()
            if mode == "reset_once":  # an RST instead of a clean close
                time.sleep(0.05)
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        piece = 16_384 if mode == "slow" else len(body)
        for i in range(0, len(body), piece):
            self.wfile.write(body[i : i + piece])
            if mode == "slow":
                time.sleep(0.005)

    def _stall(self):
        """Send nothing for up to STALL_S seconds; record in ``server.stalls`` whether the
        client hung up within them ("client hung up") or not ("stall ended")."""
        hung_up = False
        for _ in range(int(STALL_S / 0.05)):
            if self.server.stop.is_set():
                break
            # The request was read whole, so the socket turns readable only when the
            # client closes it (end of file) or resets it.
            if select.select([self.connection], [], [], 0.05)[0]:
                try:
                    hung_up = self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    hung_up = True
                break
        with self.server.lock:
            self.server.stalls.append("client hung up" if hung_up else "stall ended")
        self.server.stall_over.set()


class Server:
    def __init__(self, httpd):
        self.httpd = httpd
        self.base = f"http://127.0.0.1:{httpd.server_address[1]}"

    def add(self, path, data=DATA, mode="normal"):
        """Serve ``data`` at ``path``. Modes: normal, cut_once / reset_once (cut after
        ``cut_after`` bytes once), cut_always, stall (headers, 1000 bytes, then silence),
        stall_headers, 404, 503_once, ignore_range (always 200), slow."""
        self.httpd.files[path] = data
        self.httpd.modes[path] = mode
        return self.base + path

    @property
    def requests(self):
        with self.httpd.lock:
            return list(self.httpd.requests)


@pytest.fixture
def server(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)  # talk to 127.0.0.1 directly, never a proxy
    monkeypatch.delenv("KERASBERT_OFFLINE", raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.files, httpd.modes, httpd.requests, httpd.stalls = {}, {}, [], []
    httpd.stall_over = threading.Event()
    httpd.lock, httpd.stop, httpd.cut_after = threading.Lock(), threading.Event(), 100_000
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield Server(httpd)
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_success_with_checksum(server, tmp_path):
    url = server.add("/model.bin")
    dest = tmp_path / "sub" / "model.bin"
    assert download(url, str(dest), sha256=DIGEST.upper(), progress=False) == str(dest)
    assert dest.read_bytes() == DATA and not os.path.exists(f"{dest}.part")
    assert sha256_of(dest) == DIGEST
    assert [r["range"] for r in server.requests] == [None]


def test_progress_bar(server, tmp_path, capsys):
    url = server.add("/model.bin")
    download(url, tmp_path / "model.bin", progress="always", chunk_size=65536)
    err = capsys.readouterr().err
    assert "model.bin" in err and "100%" in err and err.endswith("\n")
    download(url, tmp_path / "again.bin", progress=True)  # stderr is not a TTY here
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("mode", ["cut_once", "reset_once"])
def test_resume_after_cut_connection(server, tmp_path, mode):
    url = server.add("/model.bin", mode=mode)
    dest = tmp_path / "model.bin"
    download(url, dest, sha256=DIGEST, progress=False, chunk_size=4096)
    assert dest.read_bytes() == DATA
    ranges = [r["range"] for r in server.requests]
    assert len(ranges) == 2 and ranges[0] is None
    if mode == "cut_once":  # a clean close delivers every byte sent before it
        assert ranges[1] == "bytes=100000-"


def test_retries_exhausted_keeps_part(server, tmp_path):
    url = server.add("/model.bin", mode="cut_always")
    server.httpd.cut_after = 10_000
    dest = tmp_path / "model.bin"
    with pytest.raises(DownloadError, match="tried 3 times") as info:
        download(url, dest, progress=False, retries=2, chunk_size=4096)
    assert "resume" in str(info.value) and not dest.exists()
    assert len(server.requests) == 3
    assert (tmp_path / "model.bin.part").read_bytes() == DATA[:30_000]
    server.add("/model.bin")  # a later call resumes where the last one stopped
    download(url, dest, sha256=DIGEST, progress=False)
    assert dest.read_bytes() == DATA and server.requests[-1]["range"] == "bytes=30000-"


def test_resume_from_existing_part(server, tmp_path):
    url = server.add("/model.bin")
    dest = tmp_path / "model.bin"
    (tmp_path / "model.bin.part").write_bytes(DATA[:123_456])
    download(url, dest, sha256=DIGEST, progress=False)
    assert dest.read_bytes() == DATA
    assert [r["range"] for r in server.requests] == ["bytes=123456-"]


def test_complete_part_answered_416(server, tmp_path):
    url = server.add("/model.bin")
    dest = tmp_path / "model.bin"
    (tmp_path / "model.bin.part").write_bytes(DATA)
    download(url, dest, sha256=DIGEST, progress=False)
    assert dest.read_bytes() == DATA and len(server.requests) == 1


def test_server_ignoring_range_restarts(server, tmp_path):
    url = server.add("/model.bin", mode="ignore_range")
    dest = tmp_path / "model.bin"
    (tmp_path / "model.bin.part").write_bytes(b"garbage" * 1000)  # must not survive
    download(url, dest, sha256=DIGEST, progress=False)
    assert dest.read_bytes() == DATA
    assert [r["range"] for r in server.requests] == ["bytes=7000-"]


def test_checksum_mismatch_deletes(server, tmp_path):
    url = server.add("/model.bin")
    dest = tmp_path / "model.bin"
    with pytest.raises(DownloadError) as info:
        download(url, dest, sha256="ab" * 32, progress=False)
    assert "ab" * 32 in str(info.value) and DIGEST in str(info.value)
    assert not dest.exists() and not (tmp_path / "model.bin.part").exists()


def test_http_404(server, tmp_path):
    url = server.add("/missing.bin", mode="404")
    with pytest.raises(DownloadError, match="404") as info:
        download(url, tmp_path / "missing.bin", progress=False)
    assert url in str(info.value)
    assert isinstance(info.value, OSError) and isinstance(info.value, KerasBertError)
    assert os.listdir(tmp_path) == [] and len(server.requests) == 1


def test_transient_503_is_retried(server, tmp_path):
    url = server.add("/model.bin", mode="503_once")
    download(url, tmp_path / "model.bin", sha256=DIGEST, progress=False)
    assert len(server.requests) == 2


@pytest.mark.parametrize("mode", ["stall", "stall_headers"])
def test_stall_times_out(server, tmp_path, mode):
    """A server that goes silent (before the headers, or mid-body) makes download() give up
    with a DownloadError naming the timeout, and hang up while the server is still silent.

    The server stays silent for at most STALL_S = 10 x the timeout, then ends the response:
    a download that ignored its timeout would see a cut connection then (retries=0: one
    attempt), fail with another message, and the server would record "stall ended".
    """
    url = server.add("/model.bin", mode=mode)
    with pytest.raises(DownloadError, match="timed out") as info:
        download(
            url, tmp_path / "model.bin", timeout=0.5, progress=False, chunk_size=4096, retries=0
        )
    message = str(info.value)
    assert "no data for 0.5 s (timeout=0.5)" in message and url in message
    assert not (tmp_path / "model.bin").exists() and len(server.requests) == 1
    assert server.httpd.stall_over.wait(STALL_S + 5)
    assert server.httpd.stalls == ["client hung up"]  # the client left, the server did not


def test_bad_urls_and_destinations(server, tmp_path):
    with socket.socket() as probe:  # a port on 127.0.0.1 that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError, match="connection refused"):
        download(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin", progress=False)
    with pytest.raises(DownloadError, match="only http"):
        download("ftp://127.0.0.1/x.bin", tmp_path / "x.bin", progress=False)
    with pytest.raises(DownloadError, match="is a folder"):
        download(server.add("/x.bin"), tmp_path, progress=False)
    missing = (tmp_path / "nope.bin").as_uri()
    with pytest.raises(DownloadError, match="Cannot download"):
        download(missing, tmp_path / "y.bin", progress=False)
    assert server.requests == [] and os.listdir(tmp_path) == []


def test_offline_mode_never_connects(server, tmp_path, monkeypatch):
    url = server.add("/model.bin")
    for value in ("1", "TRUE", "yes"):
        monkeypatch.setenv("KERASBERT_OFFLINE", value)
        assert is_offline()
        with pytest.raises(DownloadError, match="Offline mode is on") as info:
            download(url, tmp_path / "model.bin", progress=False)
        assert url in str(info.value) and "model.bin" in str(info.value)
    monkeypatch.setenv("KERASBERT_OFFLINE", "0")
    assert not is_offline()
    assert server.requests == [] and os.listdir(tmp_path) == []


def test_file_url_allowed_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASBERT_OFFLINE", "1")
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)
    (tmp_path / "copy.bin.part").write_bytes(b"stale")  # file:// ignores Range: restarts
    download(source.as_uri(), tmp_path / "copy.bin", sha256=DIGEST, progress=False)
    assert (tmp_path / "copy.bin").read_bytes() == DATA


# The lock tests: the first holder stays inside its critical section until the other one
# has started to ask for the lock, then GRACE_S more seconds, time enough for a lock that
# failed to exclude to let the other one in (in microseconds). The order of the events
# written inside and around the critical sections then shows whether it waited. No test
# reads a clock; every wait has a bound, so a broken lock fails instead of hanging.
GRACE_S = 1.0
IN_ORDER = ["first in", "second asks", "first out", "second in", "second out"]


def test_lock_makes_a_second_thread_wait(server, tmp_path):
    url = server.add("/model.bin", mode="slow")
    dest = str(tmp_path / "model.bin")
    events, errors = [], []
    first_inside, second_asks, second_inside = (threading.Event() for _ in range(3))

    def first():
        with file_lock(dest, timeout=20):
            events.append("first in")
            download(url, dest, sha256=DIGEST, progress=False, chunk_size=16_384)
            first_inside.set()
            assert second_asks.wait(20)
            second_inside.wait(GRACE_S)  # set only if the lock let the second one in
            events.append("first out")

    def second():
        assert first_inside.wait(20)
        events.append("second asks")
        second_asks.set()
        with file_lock(dest, timeout=20):
            events.append("second in")
            second_inside.set()
            download(url, dest, sha256=DIGEST, progress=False, chunk_size=16_384)
            events.append("second out")

    def run(target):
        try:
            target()
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f,), daemon=True) for f in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), errors
    assert events == IN_ORDER, errors  # the second entered only after the first had left
    assert errors == []
    assert pathlib.Path(dest).read_bytes() == DATA and not os.path.exists(dest + ".part")
    assert len(server.requests) == 2


CHILD = """
import sys
from kerasbert.download import download, file_lock
url, dest, digest, log = sys.argv[1:]

def note(event):
    with open(log, "a") as f:
        f.write(event + "\\n")

note("second asks")
with file_lock(dest, timeout=20):
    note("second in")
    download(url, dest, sha256=digest, progress=False, chunk_size=16384)
    note("second out")
"""



def test_lock_makes_a_second_process_wait(server, tmp_path):
    """This process holds the lock and downloads, then starts a child process that asks for
    the same lock and downloads: the child's events come only after this process has left."""
    url = server.add("/model.bin", mode="slow")
    dest, log = str(tmp_path / "model.bin"), tmp_path / "events.log"
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])

    def events():
        return log.read_text().splitlines() if log.exists() else []

    def note(event):
        with open(log, "a") as f:
            f.write(event + "\n")

    child = None
    try:
        with file_lock(dest, timeout=20):
            note("first in")
            download(url, dest, sha256=DIGEST, progress=False, chunk_size=16_384)
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, url, dest, DIGEST, str(log)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert wait_for(lambda: "second asks" in events(), 60), "the child never started"
            wait_for(lambda: "second in" in events(), GRACE_S)  # only if the lock failed
            note("first out")
        _, err = child.communicate(timeout=60)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
    assert events() == IN_ORDER, err  # the child entered only after this process had left
    assert child.returncode == 0, err
    assert pathlib.Path(dest).read_bytes() == DATA and not os.path.exists(dest + ".part")
    assert len(server.requests) == 2


def test_file_lock_timeout(tmp_path):
    """While the lock is held, file_lock(timeout=0.2) gives up with a DownloadError naming
    the lock file and the wait (rather than waiting for the holder); free, it is taken."""
    target = str(tmp_path / "model.bin")
    outcome = []

    def contend():
        try:
            with file_lock(target, timeout=0.2):
                outcome.append("acquired")
        except DownloadError as error:
            outcome.append(error)

    with file_lock(target):
        contender = threading.Thread(target=contend, daemon=True)
        contender.start()
        contender.join(20)  # a file_lock ignoring its timeout would still be waiting here
        assert not contender.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], DownloadError), outcome
    message = str(outcome[0])
    assert "Another process holds the lock" in message and "(waited 0.2 s)" in message
    assert repr(target + ".lock") in message
    with file_lock(target, timeout=0.2) as lock:  # free again
        assert lock == target + ".lock"


# ----------------------------------------------------------------------------- archives

FILES = {"model/vocab.txt": b"[PAD]\n[UNK]\n", "model/weights/w.bin": os.urandom(5000)}


def _zip(path, files):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _tar(path, files, mode="w:gz", links=()):
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, kind, target in links:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return path


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in pathlib.Path(folder).rglob("*"))


@pytest.mark.parametrize(
    "name, make",
    [
        ("m.zip", _zip),
        ("m.tar", lambda p, f: _tar(p, f, "w")),
        ("m.tar.gz", _tar),
        ("m.tar.bz2", lambda p, f: _tar(p, f, "w:bz2")),
        ("misnamed.zip", _tar),  # the format comes from the content
    ],
)
def test_extract(tmp_path, name, make):
    archive = make(tmp_path / name, FILES)
    target = tmp_path / "out"
    paths = extract(archive, target)
    assert sorted(paths) == sorted(str(target / n) for n in FILES)
    for member, data in FILES.items():
        assert (target / member).read_bytes() == data


def test_extract_keeps_inside_links(tmp_path):
    links = [("model/latest.bin", tarfile.SYMTYPE, "weights/w.bin")]
    links.append(("model/copy.bin", tarfile.LNKTYPE, "model/weights/w.bin"))
    archive = _tar(tmp_path / "m.tgz", FILES, links=links)
    extract(archive, tmp_path / "out")
    data = FILES["model/weights/w.bin"]
    assert (tmp_path / "out/model/latest.bin").read_bytes() == data
    assert (tmp_path / "out/model/copy.bin").read_bytes() == data


@pytest.mark.parametrize("make", [_zip, _tar], ids=["zip", "tar.gz"])
@pytest.mark.parametrize("evil", ["../evil", "model/../../evil", "ABSOLUTE"])
def test_extract_refuses_escaping_members(tmp_path, make, evil):
    if evil == "ABSOLUTE":
        evil = str(tmp_path / "evil")
    archive = make(tmp_path / "bad.archive", {**FILES, evil: b"pwned"})
    target = tmp_path / "sandbox" / "out"
    with pytest.raises(DownloadError, match="unsafe"):
        extract(archive, target)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "sandbox" / "evil").exists()
    assert _tree(target) == []  # refused before anything was written


@pytest.mark.parametrize(
    "links",
    [
        [("model/up", tarfile.SYMTYPE, "../../outside")],
        [("model/abs", tarfile.SYMTYPE, "/etc")],
        [("model/hard", tarfile.LNKTYPE, "../outside/secret")],
        # Each link alone stays inside; together `trick` points at target's parent.
        [("trick", tarfile.SYMTYPE, "loop/.."), ("loop", tarfile.SYMTYPE, ".")],
    ],
    ids=["symlink-up", "symlink-absolute", "hardlink-up", "symlink-chain"],
)
def test_extract_refuses_escaping_links(tmp_path, links):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"secret")
    archive = _tar(tmp_path / "bad.tgz", FILES, links=links)
    target = tmp_path / "out"
    with pytest.raises(DownloadError, match="unsafe"):
        extract(archive, target)
    assert _tree(tmp_path / "outside") == ["secret"]
    assert not any(p.is_symlink() for p in pathlib.Path(target).rglob("*"))


def test_extract_refuses_write_through_link(tmp_path):
    links = [("trick", tarfile.SYMTYPE, "loop/.."), ("loop", tarfile.SYMTYPE, ".")]
    archive = tmp_path / "bad.tar"
    _tar(archive, {}, "w", links=links)
    with tarfile.open(archive, "a") as tf:  # then a file written through the escaping link
        info = tarfile.TarInfo("trick/evil")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"pwned"))
    with pytest.raises(DownloadError, match="unsafe"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_extract_refuses_zip_symlink_outside(tmp_path):
    info = zipfile.ZipInfo("model/link")
    info.external_attr = (0o120777 << 16) | 0x20
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr(info, "../../etc/passwd")
    with pytest.raises(DownloadError, match="unsafe"):
        extract(tmp_path / "bad.zip", tmp_path / "out")


def test_extract_rejects_non_archives(tmp_path):
    page = tmp_path / "model.zip"
    page.write_text("<html>Rate limit exceeded</html>")
    with pytest.raises(DownloadError, match="neither a zip nor a tar"):
        extract(page, tmp_path / "out")
    with pytest.raises(DownloadError, match="does not exist"):
        extract(tmp_path / "nope.zip", tmp_path / "out")
