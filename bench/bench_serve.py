"""``kerasbert serve`` throughput and latency on loopback, with the real all-MiniLM-L6-v2.

The real ``bert-serving-client`` 1.10: 1, 4 and 16 concurrent ``BertClient`` s (one thread
each, in this process) send blocking ``encode`` requests of 1, 8 and 256 mixed-length
sentences (bench_encode.py's sentence generator, 4-40 words) to:

- ``kerasbert serve`` (a subprocess: ``python -m kerasbert serve MODEL -pooling_layer -1
  -max_seq_len 64 -max_batch_size 256``), which merges the requests of all clients into
  length-bucketed batches;
- the same server with ``-no_batching``: each request runs alone, as bert-serving-server
  runs them (the naive design);

and, without a server, in this process on the same sentences: kerasbert's
``SentenceEncoder`` (``batch_size`` 256, the mean of the last layer: the server's pooling)
and sentence-transformers' ``encode`` (torch, ``batch_size`` 64), the throughput a user has
without a server. Each configuration sends about ``--sentences-per-run`` sentences in all
(at least 2 requests a client); sentences/s is their count over the wall time of the whole
run, latency the time of each ``encode`` call (p50, p99). The server's ``compiled_shapes``
(from ``server_status``) before and after each run: after its warm-up, none may be new.

Targets (issue 20): with 16 clients sending single sentences, >= 5x the no-batching
server's throughput; with 256-sentence batches, >= 0.9x the in-process SentenceEncoder;
zero new compilations after warm-up.

    /work/venvs/bench/bin/python bench/bench_serve.py --json build/bench/serve.json
    # smoke (seconds)
    /work/venvs/bench/bin/python bench/bench_serve.py --clients 1,2 --batches 1,8 \\
        --sentences-per-run 32 --skip-peers
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_encode import make_sentences, minilm_dir  # noqa: E402
from common import machine_info, print_machine, write_json  # noqa: E402

TARGET_VS_NAIVE = 5.0
TARGET_VS_ENCODER = 0.9


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="the model folder (default: the installed MiniLM)")
    p.add_argument("--clients", default="1,4,16")
    p.add_argument("--batches", default="1,8,256")
    p.add_argument("--sentences-per-run", type=int, default=1024)
    p.add_argument("--max-seq-len", type=int, default=64)
    p.add_argument("--max-batch-size", type=int, default=256)
    p.add_argument("--skip-peers", action="store_true", help="no in-process peers")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    args.client_counts = [int(x) for x in args.clients.split(",")]
    args.batch_sizes = [int(x) for x in args.batches.split(",")]
    return args


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Server:
    """``kerasbert serve`` in a subprocess, started and stopped around a block."""

    def __init__(self, model, args, batching):
        self.port, self.port_out = free_ports(2)
        command = [sys.executable, "-m", "kerasbert", "serve", model, "-port", str(self.port),
                   "-port_out", str(self.port_out), "-host", "127.0.0.1", "-pooling_layer",
                   "-1", "-max_seq_len", str(args.max_seq_len), "-max_batch_size",
                   str(args.max_batch_size)] + ([] if batching else ["-no_batching"])  # fmt: skip
        self.command = command
        self.log = []

    def __enter__(self):
        started = time.monotonic()
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)  # fmt: skip
        for line in self.process.stdout:
            self.log.append(line.rstrip())
            if "ready" in line:
                break
        else:
            raise RuntimeError("the server did not start:\n" + "\n".join(self.log))
        self.start_seconds = time.monotonic() - started
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self):
        for line in self.process.stdout:
            self.log.append(line.rstrip())

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(60)

    def client(self):
        from bert_serving.client import BertClient

        return BertClient(port=self.port, port_out=self.port_out, timeout=600000,
                          check_length=False)  # fmt: skip

    def compiled_shapes(self):
        bc = self.client()
        try:
            return bc.server_status["compiled_shapes"]
        finally:
            bc.close()


def run_clients(server, sentences, clients, batch, total):
    """``clients`` threads, each sending blocking requests of ``batch`` sentences."""
    per_client = max(2, math.ceil(total / (clients * batch)))
    latencies, errors = [], []
    barrier = threading.Barrier(clients + 1)
    bcs = [server.client() for _ in range(clients)]

    def work(index, bc):
        offset = index * per_client * batch
        barrier.wait()
        for r in range(per_client):
            start = offset + r * batch
            texts = [sentences[(start + i) % len(sentences)] for i in range(batch)]
            began = time.perf_counter()
            try:
                out = bc.encode(texts)
                assert out.shape[0] == batch
            except Exception as e:  # noqa: BLE001 (counted and reported)
                errors.append(repr(e))
                return
            latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=work, args=(i, bc)) for i, bc in enumerate(bcs)]
    for t in threads:
        t.start()
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    for bc in bcs:
        bc.close()
    count = clients * per_client * batch
    latencies.sort()
    return {
        "clients": clients, "batch": batch, "requests": clients * per_client,
        "sentences": count, "wall_s": wall, "sentences_per_s": count / wall,
        "p50_ms": 1e3 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1e3 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        if latencies else None,
        "errors": errors[:3],
    }  # fmt: skip


def serve_runs(model, args, sentences, batching):
    name = "kerasbert serve" if batching else "kerasbert serve -no_batching"
    print(f"== {name}: starting ...", flush=True)
    runs = []
    with Server(model, args, batching) as server:
        print(f"  ready in {server.start_seconds:.1f} s ({server.log[-1]})", flush=True)
        for clients in args.client_counts:
            for batch in args.batch_sizes:
                before = server.compiled_shapes()
                run = run_clients(server, sentences, clients, batch, args.sentences_per_run)
                run["new_compilations"] = server.compiled_shapes() - before
                runs.append(run)
                print(f"  {clients:>2} clients x {batch:>3} sentences: "
                      f"{run['sentences_per_s']:8.1f} sentences/s, p50 {run['p50_ms']:.1f} ms, "
                      f"p99 {run['p99_ms']:.1f} ms, new compilations "
                      f"{run['new_compilations']}{', ERRORS' if run['errors'] else ''}",
                      flush=True)  # fmt: skip
    return runs


def in_process_peers(model, args, sentences):
    out = {}
    from kerasbert.encoding import SentenceEncoder

    encoder = SentenceEncoder(model, pooling="mean", max_seq_len=args.max_seq_len,
                              batch_size=256, normalize=False)  # fmt: skip
    encoder.encode(sentences[:512])  # compiles the buckets it needs
    encoder.encode(sentences)
    began = time.perf_counter()
    encoder.encode(sentences)
    out["kerasbert SentenceEncoder"] = len(sentences) / (time.perf_counter() - began)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return out
    st = SentenceTransformer(model, device="cpu")
    st.max_seq_length = args.max_seq_len
    st.encode(sentences[:256], batch_size=64)
    began = time.perf_counter()
    st.encode(sentences, batch_size=64)
    out["sentence-transformers"] = len(sentences) / (time.perf_counter() - began)
    return out


def main(argv=None):
    args = parse_args(argv)
    info = machine_info()
    print_machine(info)
    model = args.model or str(minilm_dir())
    sentences = make_sentences(os.path.join(model, "vocab.txt"), 4096, 4, 40, seed=0)
    batched = serve_runs(model, args, sentences, batching=True)
    naive = serve_runs(model, args, sentences, batching=False)
    peers = {} if args.skip_peers else in_process_peers(model, args, sentences)
    for name, rate in peers.items():
        print(f"== in-process {name}: {rate:.1f} sentences/s")
    print("\n== kerasbert serve against the naive server (same clients, same sentences)")
    rows = []
    for b, n in zip(batched, naive):
        ratio = b["sentences_per_s"] / n["sentences_per_s"]
        vs_encoder = (b["sentences_per_s"] / peers["kerasbert SentenceEncoder"]
                      if "kerasbert SentenceEncoder" in peers else None)  # fmt: skip
        rows.append({"clients": b["clients"], "batch": b["batch"], "batched": b, "naive": n,
                     "vs_naive": ratio, "vs_encoder": vs_encoder})  # fmt: skip
        words = f", {vs_encoder:.2f}x the in-process encoder" if vs_encoder else ""
        print(f"  {b['clients']:>2} x {b['batch']:>3}: {b['sentences_per_s']:8.1f} vs "
              f"{n['sentences_per_s']:8.1f} sentences/s = {ratio:.2f}x{words}")  # fmt: skip
    if args.json:
        write_json(args.json, {"machine": info, "args": vars(args), "rows": rows,
                               "peers": peers})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
