"""A scripted HTTP server on 127.0.0.1 for the fault-injection tests of kerasbert.download.

Each path is served by a *route*: a function ``route(handler, n)`` called with the request
handler and the number of earlier requests for that path (0 for the first), which writes the
whole response itself (status line, headers, body) through the helpers of :class:`Handler`,
so a test can send exactly the nonsense it wants: a lying ``Content-Length``, a ``Content-Range``
that does not match, a gzip body, a body that trickles, a connection cut mid-body.

Every wait in here is bounded (``MAX_HOLD_S``) and ends early when the client hangs up or the
server stops, so a broken client fails its test instead of hanging it. Nothing here touches
the network beyond the loopback interface.
"""

import hashlib
import select
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_HOLD_S = 10.0  # the longest any route keeps a connection open doing (almost) nothing
PROXY_VARS = ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]


def etag_of(data):
    """A strong ETag for ``data``, as a static file server would send it."""
    return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


class Handler(BaseHTTPRequestHandler):
    """Records each request in ``server.requests`` and hands it to its route."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        server = self.server
        with server.lock:
            n = server.counts.get(self.path, 0)
            server.counts[self.path] = n + 1
            server.requests.append(
                {
                    "path": self.path,
                    "range": self.headers.get("Range"),
                    "if_range": self.headers.get("If-Range"),
                    "accept_encoding": self.headers.get("Accept-Encoding"),
                }
            )
            route = server.routes.get(self.path)
        self.close_connection = True
        try:
            if route is None:
                self.head(404, [("Content-Length", "0")])
            else:
                route(self, n)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up: fine, it is allowed to

    # ----------------------------------------------------------------- writing helpers

    def head(self, status, headers, reason="X"):
        """Write a status line and ``headers`` (a list of pairs, repeats allowed)."""
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
        lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.wfile.flush()

    def body(self, data, piece=None, delay=0.0):
        """Write ``data``, in pieces of ``piece`` bytes with ``delay`` seconds between them.

        Stops early (without error) when the client hangs up or the server stops.
        """
        piece = piece or max(len(data), 1)
        for i in range(0, len(data), piece):
            if self.server.stop.is_set() or self.hung_up(0):
                return
            self.wfile.write(data[i : i + piece])
            self.wfile.flush()
            if delay:
                time.sleep(delay)

    def cut(self):
        """Close the connection now (a clean FIN, no more bytes)."""
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def hung_up(self, wait):
        """Whether the client has closed its end, waiting up to ``wait`` seconds to see."""
        if not select.select([self.connection], [], [], wait)[0]:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):  # ValueError: TLS sockets cannot peek; clients send
            return True  # nothing after their request, so readable means hung up

    def hold(self, seconds=MAX_HOLD_S):
        """Stay silent until the client hangs up (recorded as "client hung up") or until
        ``seconds`` pass ("hold ended"); returns whether the client hung up."""
        hung = False
        for _ in range(int(seconds / 0.05)):
            if self.server.stop.is_set():
                break
            if self.hung_up(0.05):
                hung = True
                break
        self.note("client hung up" if hung else "hold ended")
        return hung

    def trickle(self, data, every, seconds=MAX_HOLD_S):
        """Send ``data`` one byte every ``every`` seconds, for at most ``seconds``; records
        "client hung up" or "trickle ended" like :meth:`hold`."""
        hung = False
        for i in range(min(len(data), int(seconds / every))):
            if self.server.stop.is_set():
                break
            if self.hung_up(every):
                hung = True
                break
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:
                hung = True
                break
        self.note("client hung up" if hung else "trickle ended")
        return hung

    def note(self, event):
        with self.server.lock:
            self.server.events.append(event)
        self.server.noted.set()


def serve_file(
    h,
    data,
    etag=None,
    last_modified=None,
    cut=None,
    piece=None,
    delay=0.0,
    extra=(),
    honor_range=True,
):
    """Answer like a static file server: ``Range`` gives 206 (416 past the end), unless an
    ``If-Range`` does not match ``etag``/``last_modified`` (then 200 with the whole file).

    Args:
        h: the handler.
        data: the file's bytes.
        etag, last_modified: validators sent with the response (None: not sent).
        cut: close the connection after this many body bytes (None: send it all).
        piece, delay: pacing, as :meth:`Handler.body`.
        extra: more header pairs.
        honor_range: False answers every request with 200 and the whole file.
    """
    start = 0
    wanted = h.headers.get("Range")
    if wanted and honor_range:
        if_range = h.headers.get("If-Range")
        if if_range is None or if_range in (etag, last_modified):
            start = int(wanted.split("=")[1].split("-")[0])
    validators = [("ETag", etag)] if etag else []
    validators += [("Last-Modified", last_modified)] if last_modified else []
    if start and start >= len(data):
        h.head(416, [("Content-Range", f"bytes */{len(data)}"), ("Content-Length", "0")])
        return
    body = data[start:]
    headers = [("Content-Length", str(len(body)))] + validators + list(extra)
    if start:
        headers.append(("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"))
        h.head(206, headers)
    else:
        h.head(200, headers)
    h.body(body if cut is None else body[:cut], piece, delay)
    if cut is not None:
        h.cut()


class Server:
    """A running scripted server: ``add(path, route)`` returns the URL.

    Args:
        tls: ``(certfile, keyfile)`` to serve https instead of http.
    """

    def __init__(self, tls=None):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        httpd = self.httpd
        httpd.routes, httpd.counts, httpd.requests, httpd.events = {}, {}, [], []
        httpd.lock, httpd.stop, httpd.noted = threading.Lock(), threading.Event(), threading.Event()
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
            scheme = "https"
        self.base = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def add(self, path, route):
        with self.httpd.lock:
            self.httpd.routes[path] = route
        return self.base + path

    @property
    def requests(self):
        with self.httpd.lock:
            return list(self.httpd.requests)

    @property
    def events(self):
        with self.httpd.lock:
            return list(self.httpd.events)

    def wait_event(self, timeout=MAX_HOLD_S + 5):
        """Wait (bounded) until a route has noted an event; the events so far."""
        self.httpd.noted.wait(timeout)
        return self.events

    def close(self):
        self.httpd.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
