"""``kerasbert serve`` against the real bert-serving-client 1.10 and the real all-MiniLM-L6-v2.

Every server here is started and stopped by its test, on loopback ports the OS picked, and
every client is closed (an unclosed BertClient can hang the process when it is collected).
Vectors are compared with kerasbert's own SentenceEncoder over the same layers and pooling,
and the default pooling (mean of the second-to-last block) with HF transformers' golden.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import zmq
from bert_serving.client import BertClient, ConcurrentBertClient
from conftest import FIXTURES

from kerasbert.encoding import SentenceEncoder
from kerasbert.serving import ServeOptions
from kerasbert.serving.server import BertServer, load_model

TEXTS = ["First do it", "then do it right", "then do it better",
         "a much longer sentence with many more words in it than the others have"]  # fmt: skip
POOLING_NAMES = {"REDUCE_MEAN": "mean", "REDUCE_MAX": "max", "FIRST_TOKEN": "cls",
                 "LAST_TOKEN": "last", "NONE": "none"}  # fmt: skip


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@contextlib.contextmanager
def running_server(model, http=False, **options):
    port, port_out, http_port = free_ports(3)
    options.setdefault("max_batch_size", 8)
    options.setdefault("warm_up", False)
    server = BertServer(ServeOptions(str(model), port=port, port_out=port_out, host="127.0.0.1",
                                     http_port=http_port if http else None, **options))  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def client_of(server, **options):
    options.setdefault("timeout", 60000)
    bc = BertClient(port=server.options.port, port_out=server.options.port_out, **options)
    try:
        yield bc
    finally:
        bc.close()


@pytest.fixture(scope="module")
def reference(minilm_dir):
    """A builder and tokenizer of its own, for kerasbert's SentenceEncoder."""
    builder, tokenizer, _, _ = load_model(ServeOptions(str(minilm_dir)))
    return builder, tokenizer


def expected(reference, texts, strategy, layers, max_seq_len=25):
    """kerasbert's SentenceEncoder over the same blocks (concatenated) and pooling."""
    import keras

    builder, tokenizer = reference
    outputs = [builder.block_outputs[i] for i in layers]
    output = outputs[0] if len(outputs) == 1 else keras.layers.Concatenate()(outputs)
    model = keras.Model(builder.model.inputs, output)

    def encode(pooling):
        encoder = SentenceEncoder(model, tokenizer, pooling=pooling, max_seq_len=max_seq_len,
                                  batch_size=4, normalize=False)  # fmt: skip
        return encoder.encode(texts)

    if strategy == "REDUCE_MEAN_MAX":
        return np.concatenate([encode("mean"), encode("max")], axis=1)
    return encode(POOLING_NAMES[strategy])


@pytest.fixture(scope="module")
def server(minilm_dir):
    """The default pooling, tokens shown, HTTP on: most tests share it."""
    with running_server(minilm_dir, http=True, show_tokens_to_client=True,
                        max_request_texts=100, warm_up=True) as running:  # fmt: skip
        yield running


# -- vectors ----------------------------------------------------------------------------


def test_default_pooling_equals_hf_hidden_states_minus_2(server):
    """bert-as-service's default (mean of hidden_states[-2]) against HF transformers."""
    golden = np.load(FIXTURES / "serving" / "minilm_layer-2_mean.npz")
    with client_of(server) as bc:
        vectors = bc.encode([str(s) for s in golden["sentences"]])
    assert vectors.dtype == np.float32 and vectors.shape == golden["vectors"].shape
    np.testing.assert_allclose(vectors, golden["vectors"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "strategy, layers",
    [("REDUCE_MEAN", [-1]), ("REDUCE_MAX", [-2]), ("REDUCE_MEAN_MAX", [-1, -2]),
     ("FIRST_TOKEN", [-1, -2]), ("LAST_TOKEN", [-2]), ("NONE", [-1])],
)  # fmt: skip
def test_every_pooling_equals_the_sentence_encoder(minilm_dir, reference, strategy, layers):
    max_seq_len = None if strategy == "NONE" else 25
    with running_server(minilm_dir, pooling_strategy=strategy, pooling_layer=layers,
                        max_seq_len=max_seq_len) as running, client_of(running) as bc:  # fmt: skip
        vectors = bc.encode(TEXTS)
        config = bc.server_config
    assert config["pooling_layer"] == layers and config["max_seq_len"] == max_seq_len
    want = expected(reference, TEXTS, strategy, layers, max_seq_len or 512)
    if strategy == "NONE":
        lengths = [len(v) for v in want]
        # max_seq_len NONE: each request's columns are its longest text's tokens.
        assert vectors.shape == (len(TEXTS), max(lengths), 384)
        for row, length, w in zip(vectors, lengths, want):
            np.testing.assert_allclose(row[:length], w, atol=1e-5, rtol=1e-5)
            assert not row[length:].any()
        return
    assert vectors.shape == want.shape
    np.testing.assert_allclose(vectors, want, atol=1e-5, rtol=1e-5)


def test_pairs_tokens_and_pretokenized_input(server, reference):
    builder, tokenizer = reference
    with client_of(server) as bc:
        vectors, tokens = bc.encode(["how old are you ||| what is your age"], show_tokens=True)
        assert tokens == [["[CLS]", "how", "old", "are", "you", "[SEP]", "what", "is", "your",
                           "age", "[SEP]"]]  # fmt: skip
        pair = expected(reference, ["how old are you ||| what is your age"], "REDUCE_MEAN",
                        [-2])  # fmt: skip
        np.testing.assert_allclose(vectors, pair, atol=1e-5, rtol=1e-5)
        # bert-as-service splits at the last " ||| " (spaces needed); "a|||b" is one text.
        _, tokens = bc.encode(["a ||| b ||| c", "a|||b"], show_tokens=True)
        assert tokens[0][-2:] == ["c", "[SEP]"] and tokens[0].count("[SEP]") == 2
        assert tokens[1].count("[SEP]") == 1
        # Pre-tokenized: tokens used as given; unknown ones (cased here) become [UNK].
        given = [["hello", "world", "!"], ["Hello", "world"], ["a", "|||", "b"]]
        vectors, tokens = bc.encode(given, is_tokenized=True, show_tokens=True)
        assert tokens[0] == ["[CLS]", "hello", "world", "!", "[SEP]"]
        assert tokens[1][1] == "[UNK]"
        assert tokens[2] == ["[CLS]", "a", "[SEP]", "b", "[SEP]"]
        np.testing.assert_allclose(vectors[0], bc.encode(["hello world!"])[0], atol=1e-5)


def test_long_texts_are_truncated_to_max_seq_len(server):
    long_text = " ".join(["word"] * 40)
    with client_of(server) as bc, pytest.warns(UserWarning, match="more tokens than"):
        vectors, tokens = bc.encode([long_text, "short"], show_tokens=True)
    assert len(tokens[0]) == 25 and tokens[0][-1] == "[SEP]"
    assert vectors.shape == (2, 384)


def test_async_fetch_all_and_concurrent_clients(server):
    with client_of(server) as bc:
        reference = bc.encode(TEXTS)
        batches = [TEXTS[i % 4 :] + TEXTS[: i % 4] for i in range(6)]
        fetched = list(bc.encode_async(iter(batches), max_num_batch=6))
        for _ in range(200):  # its fetch may end while the sending thread is still going
            if len(fetched) == 6:
                break
            time.sleep(0.05)
            bc.receiver.setsockopt(zmq.RCVTIMEO, 60000)
            fetched += list(bc.fetch())
        assert len(fetched) == 6
        first = min(r.id for r in fetched)
        for response in fetched:  # each batch's own rows, in its own order
            i = response.id - first
            want = np.concatenate([reference[i % 4 :], reference[: i % 4]])
            np.testing.assert_allclose(response.embedding, want, atol=1e-5)
        for _ in range(3):
            bc.encode(TEXTS, blocking=False)
        bc.receiver.setsockopt(zmq.RCVTIMEO, 60000)
        together = bc.fetch_all(sort=True, concat=True)
        np.testing.assert_allclose(together, np.concatenate([reference] * 3), atol=1e-5)
    pool = ConcurrentBertClient(max_concurrency=8, port=server.options.port,
                                port_out=server.options.port_out, timeout=60000)  # fmt: skip
    results, errors = {}, []

    def work(index):
        try:
            results[index] = pool.encode([TEXTS[index % 4]] * (1 + index % 3))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        pool.close()
    assert not errors and len(results) == 8
    for index, vectors in results.items():
        want = np.repeat(reference[index % 4 : index % 4 + 1], 1 + index % 3, axis=0)
        np.testing.assert_allclose(vectors, want, atol=1e-5)


def test_config_status_and_no_compilation_after_warm_up(server):
    with client_of(server) as bc:
        config = bc.server_config
        assert config["server_version"] == "1.10.0" and config["kerasbert_version"]
        assert config["pooling_strategy"] == 2 and config["pooling_layer"] == [-2]
        before = server.engine.compilations.count
        for size in (1, 3, 8, 20):
            bc.encode((TEXTS * 5)[:size])
        assert server.engine.compilations.count == before  # warmed up: nothing new
        status = bc.server_status
    assert status["statistic"]["num_data_request"] >= 4
    assert status["statistic"]["num_total_seq"] >= 32


# -- HTTP ---------------------------------------------------------------------------------


def _http(server, path, body=None):
    url = f"http://127.0.0.1:{server.options.http_port}{path}"
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_http_encode_and_status(server):
    status, body = _http(server, "/encode", {"id": 7, "texts": TEXTS[:2]})
    assert status == 200 and body["id"] == 7 and body["status"] == 200
    with client_of(server) as bc:
        np.testing.assert_allclose(np.array(body["result"]), bc.encode(TEXTS[:2]), atol=1e-5)
    status, body = _http(server, "/encode", {"id": 8, "texts": [["hello", "world"]],
                                             "is_tokenized": True})  # fmt: skip
    assert status == 200 and len(body["result"]) == 1
    assert _http(server, "/encode", {"texts": ["a"]})[1]["type"] == "KeyError"
    assert _http(server, "/encode", {"id": 1, "texts": "a"})[1]["type"] == "TypeError"
    status, body = _http(server, "/encode", {"id": 1, "texts": []})
    assert status == 400 and body["type"] == "ValueError"
    assert _http(server, "/encode", b"not json") == (400, {"description": "Not a JSON.",
                                                          "status": 400})  # fmt: skip
    status, body = _http(server, "/status/server")
    assert status == 200 and body["server_version"] == "1.10.0" and "statistic" in body


# -- bad input, vanished and slow clients ---------------------------------------------------


@pytest.mark.parametrize(
    "payload, count, message",
    [([1, "a"], 2, "not a string"), ([], 0, "empty list"), (["a", ["b"]], 2, "not a string"),
     (None, 1, "not UTF-8 JSON"), (["a", "b"], 3, "says '3' texts"),
     (["a"] * 101, 101, "at most 100"), (["  "], 1, "blank"), ([[]], 1, "empty token list")],
)  # fmt: skip
def test_bad_requests_get_an_error_and_the_client_goes_on(server, payload, count, message):
    with client_of(server) as bc:
        raw = b"\xff not json" if payload is None else json.dumps(payload).encode()
        request_id = bc._send(raw, count)
        with pytest.raises(TypeError, match=f"kerasbert error: .*{message}"):
            bc._recv_ndarray(request_id)
        assert bc.encode(["still fine"]).shape == (1, 384)


def test_malformed_frames_are_dropped_and_others_served(server):
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(f"tcp://127.0.0.1:{server.options.port}")
    push.send_multipart([b"only", b"three", b"frames-x"])
    push.send_multipart([b"\xff\xfe", b'["a"]', b"not-a-number", b"1"])
    push.close()
    context.term()
    with client_of(server) as bc:
        assert bc.encode(["served"]).shape == (1, 384)


def test_a_slow_reader_does_not_block_others(server):
    """A client that sends many requests and never reads its replies: the XPUB drops what
    its queue cannot hold, and everyone else is served."""
    context = zmq.Context()
    push, sub = context.socket(zmq.PUSH), context.socket(zmq.SUB)
    for s in (push, sub):
        s.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 1)
    sub.setsockopt(zmq.SUBSCRIBE, b"slow-reader")
    sub.connect(f"tcp://127.0.0.1:{server.options.port_out}")
    push.connect(f"tcp://127.0.0.1:{server.options.port}")
    for i in range(40):
        push.send_multipart([b"slow-reader", json.dumps(TEXTS).encode(), b"%d" % i, b"4"])
    try:
        with client_of(server) as bc:
            assert bc.encode(["others are served"]).shape == (1, 384)
    finally:
        push.close()
        sub.close()
        context.term()


CLIENT_SCRIPT = """
import sys
from bert_serving.client import BertClient
bc = BertClient(port=int(sys.argv[1]), port_out=int(sys.argv[2]), check_length=False)
bc.encode(["x " * 200] * 2000, blocking=False)
print("sent", flush=True)
import time; time.sleep(60)
"""


def test_a_client_killed_mid_request_loses_only_its_own_work(minilm_dir):
    with running_server(minilm_dir, max_batch_size=4, max_seq_len=None) as running:
        process = subprocess.Popen(
            [sys.executable, "-c", CLIENT_SCRIPT, str(running.options.port),
             str(running.options.port_out)], stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert process.stdout.readline().strip() == "sent"
            deadline = time.monotonic() + 60
            while running.in_flight == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert running.in_flight == 1  # its 2,000 texts are queued or running
        finally:
            process.kill()
            process.wait()
        deadline = time.monotonic() + 30
        while running.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running.in_flight == 0  # UNSUB: its work was dropped
        assert running.batcher.rows_run < 2000  # not all of it ran
        with client_of(running) as bc:
            assert bc.encode(TEXTS).shape == (4, 384)


# -- the command line ---------------------------------------------------------------------


def test_the_command_starts_serves_and_drains_on_sigterm(minilm_dir):
    port, port_out = free_ports(2)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "kerasbert", "serve", str(minilm_dir), "-port", str(port),
         "-port_out", str(port_out), "-host", "127.0.0.1", "-max_batch_size", "4",
         "-pooling_layer", "-1", "-no_warm_up", "-xla"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "kerasbert serve: ready" in line:
                break
        banner = "".join(lines)
        assert "REDUCE_MEAN of layer -1" in banner and f"requests on {port}" in banner
        assert "ignored (no meaning here): -xla" in banner and "device" in banner
        bc = BertClient(port=port, port_out=port_out, timeout=60000)
        try:
            bc.encode(TEXTS * 4, blocking=False)
            time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            # fetch() has no timeout of its own (encode resets it): a lost reply must fail
            # the test, not hang it.
            bc.receiver.setsockopt(zmq.RCVTIMEO, 60000)
            (response,) = list(bc.fetch())  # the work in flight still comes back
            assert response.embedding.shape == (16, 384)
        finally:
            bc.close()
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "stopped" in process.stdout.read()


@pytest.mark.parametrize(
    "argv, message",
    [(["-pooling_strategy", "AVERAGE"], "-pooling_strategy"),
     (["-max_seq_len", "2"], "-max_seq_len"),
     (["-port", "5555", "-port_out", "5555"], "different ports"),
     (["-pooling_layer", "9"], "-pooling_layer 9")],
)  # fmt: skip
def test_bad_options_are_one_line_naming_the_flag(minilm_dir, argv, message):
    result = subprocess.run([sys.executable, "-m", "kerasbert", "serve", str(minilm_dir),
                             "-no_warm_up", *argv], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("kerasbert: error: ") and message in errors[0]
