"""``kerasbert serve``: a bert-as-service 1.10 server on a kerasbert model.

The unmodified ``bert-serving-client`` talks to it: its PUSH socket sends to the server's
PULL (``-port``), its SUB socket reads from the server's XPUB (``-port_out``). One thread
(the caller's, :meth:`BertServer.serve_forever`) owns the sockets: it parses requests,
tokenizes them and answers config and status requests; worker threads (one per model
replica, :class:`~kerasbert.serving.batcher.Batcher`) run the merged batches and hand each
finished reply back through an in-process socket. XPUB (rather than the original's PUB)
shows every client's subscription: a reply waits until its client has subscribed (the
first reply of a new client is otherwise lost on a fast machine), and when a client goes
away (``UNSUB``, also when its process is killed) its queued work is dropped. The HTTP
interface (``-http_port``) is the standard library's threading HTTP server: two routes do
not need more. Where kerasbert differs from the original, and why: docs/serving.md.
"""

import json
import logging
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kerasbert.errors import KerasBertError, ServingError
from kerasbert.serving.batcher import Batcher, Job
from kerasbert.serving.features import FeatureMaker
from kerasbert.serving.protocol import (
    POOLING_CODES,
    PROTOCOL_VERSION,
    BadRequest,
    check_texts,
    config_reply,
    error_reply,
    parse_request,
    vectors_reply,
)

logger = logging.getLogger("kerasbert.serving")

HOLD_SECONDS = 10.0  # how long a reply waits for its client's subscription
HOLD_LIMIT = 10000  # replies held for clients that have not subscribed, at most
ACTIVE_SECONDS = 180  # a client is active when its last data request is this recent


def load_model(options):
    """``(builder, tokenizer, model_limit)`` of the model folder or index name."""
    import keras

    from kerasbert.folders import choose
    from kerasbert.models import build_transformer_model
    from kerasbert.pretrained import open_model
    from kerasbert.tokenizers.choice import family_of, tokenizer_for

    local = open_model(options.model)
    if local.checkpoint is None or local.vocab is None:
        raise ServingError(f"{str(local.folder)!r} has no "
                           f"{'checkpoint' if local.checkpoint is None else 'vocabulary'}; "
                           "kerasbert serve needs a trained model and its vocabulary")  # fmt: skip
    previous = keras.config.dtype_policy()
    if options.fp16:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        builder = build_transformer_model(
            local.config, local.checkpoint, model=local.settings.model, return_keras_model=False
        )
    finally:
        keras.config.set_dtype_policy(previous)
    lower = None if options.cased_tokenization is None else not options.cased_tokenization
    lower = choose("do_lower_case", lower, local.settings, True)
    tokenizer = tokenizer_for(local.vocab, do_lower_case=lower, family=family_of(builder.model))
    limit = None
    for layer in builder.model.layers:
        if layer.name.endswith("Embedding-Position"):
            limit = int(layer.input_dim)
    return builder, tokenizer, limit, lower


class Statistics:
    """bert-as-service's ``statistic`` of SHOW_STATUS (the counters clients may show)."""

    def __init__(self):
        self.data_requests = 0
        self.system_requests = 0
        self.sequences = 0
        self.clients = {}  # identity -> time of its last data request
        self.sizes = []

    def data(self, identity, size):
        self.data_requests += 1
        self.sequences += size
        self.clients[identity] = time.monotonic()
        self.sizes.append(size)
        del self.sizes[:-10000]

    def as_dict(self):
        now = time.monotonic()
        out = {
            "num_data_request": self.data_requests,
            "num_total_seq": self.sequences,
            "num_sys_request": self.system_requests,
            "num_total_request": self.data_requests + self.system_requests,
            "num_total_client": len(self.clients),
            "num_active_client": sum(now - t < ACTIVE_SECONDS for t in self.clients.values()),
        }
        if self.sizes:
            out.update(avg_size_per_request=sum(self.sizes) / len(self.sizes),
                       min_size_per_request=min(self.sizes),
                       max_size_per_request=max(self.sizes))  # fmt: skip
        return out


class BertServer:
    """A bert-as-service compatible server (see the module docstring).

    Args:
        options: a :class:`~kerasbert.serving.options.ServeOptions`.

    Example (not run here: it binds ports and loads a model)::

        from kerasbert.serving import BertServer, ServeOptions
        server = BertServer(ServeOptions("all-MiniLM-L6-v2", pooling_layer=[-1]))
        server.start()          # in a background thread; server.serve_forever() blocks
        ...                     # BertClient().encode([...]) from anywhere
        server.close()
    """

    def __init__(self, options):
        import jax

        from kerasbert import __version__
        from kerasbert.serving.engine import Engine

        self.options = options.check()
        self.version = __version__
        started = time.time()
        self.builder, self.tokenizer, self.model_limit, self.lower = load_model(options)
        longest = options.max_seq_len or self.model_limit or 512
        if self.model_limit is not None and longest > self.model_limit:
            raise ServingError(f"-max_seq_len {longest} exceeds the model's {self.model_limit} "
                               "positions")  # fmt: skip
        self.features = FeatureMaker(self.tokenizer, options.max_seq_len, self.model_limit)
        specials = [t for t in (self.tokenizer._token_start, self.tokenizer._token_end) if t]
        devices = jax.devices()
        if options.num_worker > len(devices):
            logger.warning("-num_worker %d: there are %d devices (%s); running %d replica(s)",
                           options.num_worker, len(devices), devices[0].platform,
                           len(devices))  # fmt: skip
        self.devices = devices[: options.num_worker]
        engine = Engine(self.builder, options.pooling_strategy, options.pooling_layer,
                        options.max_batch_size, longest, options.mask_cls_sep, specials,
                        "float16" if options.fp16 else "float32")  # fmt: skip
        self.engine = engine
        self.batcher = Batcher(engine, options.max_batch_size, options.merge_requests)
        self.statistics = Statistics()
        self._jobs = {}  # identity -> the set of its unfinished jobs
        self._unanswered = 0  # ZeroMQ jobs submitted whose replies are not sent yet
        self._jobs_lock = threading.Lock()
        self._subscribed = set()
        self._held = {}  # identity -> [(time, frames)]
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._threads = []
        self._replies_address = f"inproc://kerasbert-replies-{uuid.uuid4().hex}"
        self._local = threading.local()
        self._context = None
        self._http = None
        self.start_time = str(time.strftime("%Y-%m-%d %H:%M:%S"))
        self.load_seconds = time.time() - started

    # -- config ---------------------------------------------------------------------------
    def config(self, identity=b""):
        """The SHOW_CONFIG object: bert-as-service's keys where they mean something, the
        protocol version its client checks for, and kerasbert's own version."""
        import jax
        import zmq

        o = self.options
        return {
            "client": identity.decode("utf-8", "replace"),
            "num_process": 1,
            "num_worker": len(self.devices),
            "device_map": [str(d) for d in self.devices],
            "model_dir": o.model,
            "max_seq_len": o.max_seq_len,
            "do_lower_case": bool(self.lower),
            "pooling_layer": list(o.pooling_layer),
            "pooling_strategy": POOLING_CODES[o.pooling_strategy],
            "pooling_strategy_name": o.pooling_strategy,
            "mask_cls_sep": o.mask_cls_sep,
            "show_tokens_to_client": o.show_tokens_to_client,
            "port": o.port,
            "port_out": o.port_out,
            "http_port": o.http_port,
            "max_batch_size": o.max_batch_size,
            "fp16": o.fp16,
            "cpu": jax.default_backend() == "cpu",
            "python_version": sys.version,
            "server_version": PROTOCOL_VERSION,
            "kerasbert_version": self.version,
            "jax_version": jax.__version__,
            "pyzmq_version": zmq.pyzmq_version(),
            "zmq_version": zmq.zmq_version(),
            "server_start_time": self.start_time,
            "server_current_time": str(time.strftime("%Y-%m-%d %H:%M:%S")),
            "compiled_shapes": self.engine.compilations.count,
        }

    def status(self, identity=b""):
        return dict(self.config(identity), statistic=self.statistics.as_dict())

    # -- jobs -----------------------------------------------------------------------------
    def make_job(self, key, texts, on_done):
        """Tokenize ``texts`` (checked) into a Job for the batcher; ServingError if bad."""
        check_texts(texts, self.options.max_request_texts)
        features, limit = self.features.request(texts)
        columns = limit if self.options.pooling_strategy == "NONE" else None
        return Job(key, features, columns, on_done)

    def _reply_socket(self):
        socket = getattr(self._local, "socket", None)
        if socket is None:
            import zmq

            socket = self._local.socket = self._context.socket(zmq.PUSH)
            socket.connect(self._replies_address)
        return socket

    def _finished(self, job):
        """Worker thread: a ZeroMQ job is done (or failed); send its reply to the loop."""
        identity, request_id = job.key
        if job.error is not None:
            frames = error_reply(identity, request_id, job.error)
        else:
            tokens = job.tokens if self.options.show_tokens_to_client else None
            frames = vectors_reply(identity, request_id, job.vectors(), tokens)
        self._reply_socket().send_multipart(frames, copy=False)

    def _handle(self, frames, publish):
        try:
            request = parse_request(frames, self.options.max_request_texts)
        except BadRequest as e:
            if e.request_id is None:
                logger.warning("dropped a request: %s", e)
                return
            publish(error_reply(e.identity, e.request_id, str(e)))
            return
        identity = request.identity
        if request.command is not None:
            self.statistics.system_requests += 1
            config = self.status(identity) if request.command == b"SHOW_STATUS" else self.config(
                identity)  # fmt: skip
            publish(config_reply(identity, request.request_id, config))
            return
        self.statistics.data(identity, len(request.texts))
        try:
            job = self.make_job((identity, request.request_id), request.texts, self._done_job)
        except ServingError as e:
            publish(error_reply(identity, request.request_id, str(e)))
            return
        with self._jobs_lock:
            self._jobs.setdefault(identity, set()).add(job)
        self._unanswered += 1
        self.batcher.submit(job)

    def _done_job(self, job):
        with self._jobs_lock:
            jobs = self._jobs.get(job.key[0], set())
            if job not in jobs:  # cancelled meanwhile: _cancel counted it, no reply
                return
            jobs.discard(job)
            if not jobs:
                del self._jobs[job.key[0]]
        self._finished(job)

    def _cancel(self, identity):
        with self._jobs_lock:
            jobs = self._jobs.pop(identity, set())
        for job in jobs:
            job.cancelled = True
        self._unanswered -= len(jobs)
        if jobs:
            logger.info("client %s went away: dropped %d unfinished request(s)",
                        identity.decode("utf-8", "replace"), len(jobs))  # fmt: skip

    @property
    def in_flight(self):
        """ZeroMQ requests taken whose replies have not gone out (nor been dropped)."""
        return self._unanswered

    # -- the loop -------------------------------------------------------------------------
    def _bind(self):
        import zmq

        self._context = zmq.Context()
        host = self.options.host
        frontend = self._context.socket(zmq.PULL)
        backend = self._context.socket(zmq.XPUB)
        replies = self._context.socket(zmq.PULL)
        for socket in (frontend, backend, replies):
            socket.setsockopt(zmq.LINGER, 0)
        try:
            frontend.bind(f"tcp://{host}:{self.options.port}")
            backend.bind(f"tcp://{host}:{self.options.port_out}")
        except zmq.ZMQError as e:
            for socket in (frontend, backend, replies):
                socket.close()
            raise ServingError(f"cannot listen on -port {self.options.port} / -port_out "
                               f"{self.options.port_out}: {e}") from None  # fmt: skip
        replies.bind(self._replies_address)
        return frontend, backend, replies

    def warm_up(self):
        """Compile every batch shape (logged), so that serving compiles nothing new."""
        started = time.time()
        count = self.engine.warm_up(self._worker_devices())
        logger.info("warmed up %d batch shapes in %.1f s", count, time.time() - started)

    def _worker_devices(self):
        """Each worker's device: None (where the weights are) for one worker."""
        return [None] if len(self.devices) == 1 else list(self.devices)

    def serve_forever(self):
        """Bind, warm up, serve until :meth:`close` or SIGINT / SIGTERM (in the main
        thread), then drain the work in flight and return."""
        import zmq

        frontend, backend, replies = self._bind()
        self._announce()
        if self.options.warm_up:
            self.warm_up()
        for device in self._worker_devices():
            thread = threading.Thread(target=self.batcher.run, args=(device,),
                                      name="kerasbert-worker", daemon=True)  # fmt: skip
            thread.start()
            self._threads.append(thread)
        if self.options.http_port is not None:
            self._start_http()
        poller = zmq.Poller()
        for socket in (frontend, backend, replies):
            poller.register(socket, zmq.POLLIN)

        def publish(frames):
            identity = frames[0]
            if identity in self._subscribed:
                backend.send_multipart(frames, copy=False)
            elif sum(len(v) for v in self._held.values()) < HOLD_LIMIT:
                self._held.setdefault(identity, []).append((time.monotonic(), frames))

        print(f"kerasbert serve: ready ({self.engine.num_programs} batch shapes compiled)",
              flush=True)  # fmt: skip
        self._ready.set()
        draining_since = None
        while True:
            if self._stop.is_set() and draining_since is None:
                draining_since = time.monotonic()
                poller.unregister(frontend)
                logger.info("stopping: finishing %d request(s) in flight", self.in_flight)
            drained = draining_since is not None and (
                self.in_flight <= 0 or time.monotonic() - draining_since > 30
            )
            if drained:
                break
            events = dict(poller.poll(100))
            if frontend in events:
                for _ in range(64):  # a burst, without starving the replies
                    try:
                        frames = frontend.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    try:
                        self._handle(frames, publish)
                    except Exception:  # noqa: BLE001 (one bad message must not stop serving)
                        logger.exception("a request could not be handled")
            if backend in events:
                while True:
                    try:
                        event = backend.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._subscription(event, backend)
            if replies in events:
                while True:
                    try:
                        publish(replies.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                    self._unanswered -= 1
            self._expire_held()
        self.batcher.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        backend.setsockopt(zmq.LINGER, 2000)  # the drained replies still go out
        for socket in (frontend, backend, replies):
            socket.close()
        self._context.term()
        print("kerasbert serve: stopped", flush=True)

    def _subscription(self, event, backend):
        if not event:
            return
        identity = bytes(event[1:])
        if event[0] == 1:
            self._subscribed.add(identity)
            for _, frames in self._held.pop(identity, []):
                backend.send_multipart(frames, copy=False)
        elif event[0] == 0:
            self._subscribed.discard(identity)
            self._held.pop(identity, None)
            self._cancel(identity)

    def _expire_held(self):
        if not self._held:
            return
        cutoff = time.monotonic() - HOLD_SECONDS
        for identity in list(self._held):
            kept = [(t, f) for t, f in self._held[identity] if t > cutoff]
            if kept:
                self._held[identity] = kept
            else:
                del self._held[identity]

    def _announce(self):
        o = self.options
        device = ", ".join(str(d) for d in self.devices)
        layers = " + ".join(str(i) for i in o.pooling_layer)
        http = f", HTTP on {o.http_port}" if o.http_port is not None else ""
        print(f"kerasbert serve {self.version} (bert-as-service protocol {PROTOCOL_VERSION}): "
              f"{o.model} ({type(self.builder).__name__}, loaded in {self.load_seconds:.1f} s), "
              f"{o.pooling_strategy} of layer {layers}, max_seq_len {o.max_seq_len}, "
              f"max_batch_size {o.max_batch_size}; requests on {o.port}, replies on "
              f"{o.port_out}{http}; device {device}", flush=True)  # fmt: skip
        if o.ignored:
            print(f"kerasbert serve: ignored (no meaning here): {' '.join(o.ignored)}",
                  flush=True)  # fmt: skip

    # -- control --------------------------------------------------------------------------
    def start(self, timeout=600):
        """Serve in a background thread; returns once ready (warmed up)."""
        thread = threading.Thread(target=self.serve_forever, name="kerasbert-serve",
                                  daemon=True)  # fmt: skip
        thread.start()
        self._loop_thread = thread
        while not self._ready.wait(0.1):
            if not thread.is_alive():
                raise ServingError("the server stopped while starting (see the log)")
            timeout -= 0.1
            if timeout <= 0:
                raise ServingError("the server did not get ready in time")
        return self

    def close(self, timeout=60):
        """Stop accepting requests, finish those in flight, close everything."""
        self._stop.set()
        thread = getattr(self, "_loop_thread", None)
        if thread is not None:
            thread.join(timeout)

    def install_signal_handlers(self):
        """SIGINT / SIGTERM drain and stop the server (call from the main thread)."""

        def stop(signum, frame):
            print(f"kerasbert serve: {signal.Signals(signum).name}, draining", flush=True)
            self._stop.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    # -- HTTP -----------------------------------------------------------------------------
    def encode_http(self, body):
        """bert-as-service's ``POST /encode``: ``(status, JSON object)``."""
        try:
            request_id = body["id"]
            texts = body["texts"]
            if not isinstance(texts, list):
                raise TypeError(f'"texts" must be a list, got {type(texts).__name__}')
            done = threading.Event()
            job = self.make_job(("http", None), texts, lambda job: done.set())
            self.statistics.data(b"http", len(texts))
            self.batcher.submit(job)
            if not done.wait(600):
                job.cancelled = True
                raise ServingError("the request timed out")
            if job.error is not None:
                raise ServingError(job.error)
            return 200, {"id": request_id, "result": job.vectors().tolist(), "status": 200}
        except (KeyError, TypeError, ValueError, KerasBertError) as e:
            kind = "ValueError" if isinstance(e, ServingError) else type(e).__name__
            return 400, {"description": str(e), "type": kind, "status": 400}

    def _start_http(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status, body):
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 (http.server's name)
                if self.path.rstrip("/") != "/encode":
                    return self._send(404, {"description": "POST /encode", "status": 404})
                length = int(self.headers.get("Content-Length") or 0)
                if length > 64 << 20:
                    return self._send(413, {"description": "the body is over 64 MiB",
                                            "status": 413})  # fmt: skip
                try:
                    body = json.loads(self.rfile.read(length).decode("utf-8"))
                    if not isinstance(body, dict):
                        raise ValueError
                except (UnicodeDecodeError, ValueError):
                    return self._send(400, {"description": "Not a JSON.", "status": 400})
                self._send(*server.encode_http(body))

            def do_GET(self):  # noqa: N802
                if self.path.rstrip("/") == "/status/server":
                    return self._send(200, dict(server.status(b"http"), status=200))
                self._send(404, {"description": "GET /status/server", "status": 404})

            def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
                logger.debug("http: " + format, *args)

        host = "" if self.options.host == "*" else self.options.host
        try:
            self._http = ThreadingHTTPServer((host, self.options.http_port), Handler)
        except OSError as e:
            port = self.options.http_port
            raise ServingError(f"cannot listen on -http_port {port}: {e}") from None
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, name="kerasbert-http",
                         daemon=True).start()  # fmt: skip
