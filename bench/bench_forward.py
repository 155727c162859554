"""Forward-inference benchmark: kerasbert vs keras-hub's BertBackbone (JAX) and HF BertModel.

Times a BERT encoder forward pass (random weights, BERT-base shape by default: 12 layers,
768 hidden, 12 heads, intermediate 3072, vocab 21128, batch 8 x 128 tokens) and reports the
median seconds per batch and the achieved GFLOP/s as a fraction of the machine's dense
float32 matmul peak, measured with ``jax.jit`` in the same process.

Candidates:

* ``kerasbert`` -- ``kerasbert.build_transformer_model`` on the JAX backend.
* ``kerasbert[gelu_tanh]`` -- the same with the tanh GELU that keras-hub uses (timed only
  when keras-hub is timed and ``--hidden-act`` is not already ``gelu_tanh``).
* ``keras-hub`` -- ``keras_hub.models.BertBackbone`` on the JAX backend.
* ``torch`` -- ``transformers.BertModel`` (no pooler) on PyTorch, CPU, eval mode.

Both Keras models are timed the same way: one ``jax.jit``-compiled function around
``model.stateless_call(trainable, non_trainable, inputs, training=False)`` with the
variables passed as arguments (not baked in as constants), inputs already on the device,
and ``.block_until_ready()`` on the sequence output. Peers that are not installed are
reported as "not installed".

The candidates are timed in interleaved rounds, and each timed call records how much CPU
other processes took meanwhile (from /proc/stat), so that a busy machine shows in the table
("other") and a "quiet median" over the undisturbed calls can be read beside the median.
bench/README.md explains the method and holds measured results.

Setup (a venv of its own, so the peers never enter the project's environment)::

    python3 -m venv /work/venvs/bench
    /work/venvs/bench/bin/pip install torch==2.13.0        # CPU build; first, on its own
    /work/venvs/bench/bin/pip install keras jax jaxlib numpy h5py safetensors pyyaml \\
        transformers==4.57.6
    /work/venvs/bench/bin/pip install --no-deps keras-hub  # skips tensorflow(-text)
    /work/venvs/bench/bin/pip install --no-deps -e .       # kerasbert itself

Run (from the repository root)::

    /work/venvs/bench/bin/python bench/bench_forward.py
    /work/venvs/bench/bin/python bench/bench_forward.py --peers none --layers 2 \\
        --hidden 128 --heads 2 --intermediate 512 --repeats 5   # quick smoke
    /work/venvs/bench/bin/python bench/bench_forward.py --json results.json
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import statistics
import sys
import time
import traceback

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

PEER_CHOICES = ("all", "none", "keras-hub", "torch")
# A timed call counts as "quiet" when other processes kept fewer cores than this busy during
# it (measured from /proc/stat, whose 10 ms ticks make calls under 50 ms too short to judge).
QUIET_LOAD = 0.1
QUIET_MIN_CALL_S = 0.05


class NotInstalled(Exception):
    """A peer's packages cannot be imported."""


# -- arguments ------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Forward-inference benchmark of kerasbert against keras-hub and HF torch.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--intermediate", type=int, default=3072)
    p.add_argument("--vocab", type=int, default=21128)
    p.add_argument("--max-position", type=int, default=512)
    p.add_argument(
        "--hidden-act",
        default="gelu_erf",
        choices=("gelu_erf", "gelu_tanh"),
        help="kerasbert's feed-forward activation (HF 'gelu' is erf; keras-hub uses tanh)",
    )
    p.add_argument("--repeats", type=int, default=20, help="timed calls per candidate")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls (the first compiles)")
    p.add_argument("--peers", choices=PEER_CHOICES, default="all")
    p.add_argument(
        "--families",
        default="bert",
        help="kerasbert families to time with the same sizes, e.g. bert,albert,nezha "
        "(ALBERT uses embedding_size 128)",
    )
    p.add_argument(
        "--schedule",
        choices=("interleaved", "sequential"),
        default="interleaved",
        help="interleaved: one call of each candidate per round; sequential: one after another",
    )
    p.add_argument(
        "--matmul-sizes",
        default="1024,2048,4096",
        help="comma-separated n of the n x n @ n x n float32 matmuls timed for the peak",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before timing, wait up to this long until other processes use < 0.25 cores",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = p.parse_args(argv)
    if args.hidden % args.heads:
        p.error(f"--hidden {args.hidden} is not divisible by --heads {args.heads}")
    if args.seq_len > args.max_position:
        p.error(f"--seq-len {args.seq_len} exceeds --max-position {args.max_position}")
    if args.repeats < 1 or args.warmup < 1:
        p.error("--repeats and --warmup must be at least 1 (the first warm-up call compiles)")
    return args


# -- FLOPs, timing, inputs --------------------------------------------------------------------


def model_flops(batch, seq_len, layers, hidden, intermediate):
    """Analytical forward FLOPs of the encoder (multiply-add = 2 FLOPs).

    Per layer: the q/k/v/output projections (4*H*H weights) and the two feed-forward
    matmuls (2*H*I weights) cost 2 FLOPs per weight per token; the attention scores
    ``Q K^T`` and the context ``P V`` cost 2*T*H per token each. Embedding gathers, layer
    norms, softmax, GELU and biases are not counted (they are not matmuls).
    """
    tokens = batch * seq_len
    dense = 2 * tokens * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention = 2 * 2 * tokens * seq_len * hidden
    return layers * (dense + attention)


def time_calls(fn, warmup, repeats):
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; return the durations.

    ``fn`` must block until its result is computed.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def make_inputs(args):
    """Token ids with trailing padding (id 0) and segment ids, as int32 numpy arrays.

    Row lengths are drawn from [seq_len/2, seq_len]; the first row is full length. Padding
    does not change the work done (masks are dense), only exercises the mask paths.
    """
    rng = np.random.default_rng(args.seed)
    b, t = args.batch, args.seq_len
    lengths = rng.integers(max(1, t // 2), t + 1, size=b)
    lengths[0] = t
    positions = np.arange(t)[None, :]
    valid = positions < lengths[:, None]
    token_ids = rng.integers(1, args.vocab, size=(b, t)).astype("int32")
    token_ids = np.where(valid, token_ids, 0).astype("int32")
    split = (lengths // 2)[:, None]
    segment_ids = ((positions >= split) & valid).astype("int32")
    return token_ids, segment_ids, valid


# -- the matmul peak --------------------------------------------------------------------------


def measure_matmul_peak(sizes, seed):
    """Time a jitted float32 ``n x n @ n x n`` matmul for each n in ``sizes``.

    Returns one row per size: the best time, its GFLOP/s, and the cores other processes used
    meanwhile.
    """
    import jax
    import jax.numpy as jnp

    rows = []
    matmul = jax.jit(jnp.matmul)
    key = jax.random.PRNGKey(seed)
    for n in sizes:
        ka, kb = jax.random.split(jax.random.fold_in(key, n))
        a = jax.random.normal(ka, (n, n), jnp.float32)
        b = jax.random.normal(kb, (n, n), jnp.float32)
        flops = 2 * n**3
        # Enough calls for ~1 s of work at ~100 GFLOP/s, at least 3.
        repeats = max(3, min(50, int(1e11 / flops)))
        before = cpu_seconds()
        start = time.perf_counter()
        times = time_calls(lambda a=a, b=b: matmul(a, b).block_until_ready(), 2, repeats)
        elapsed = time.perf_counter() - start
        other = other_cpu(before, cpu_seconds()) / elapsed
        best = min(times)
        rows.append({"n": n, "best_s": best, "gflops": flops / best / 1e9, "other_load": other})
    return rows


def measure_torch_matmul(sizes, seed):
    """Like :func:`measure_matmul_peak` for ``torch.matmul`` (informational); None if absent."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for n in sizes:
        a = torch.randn(n, n, generator=generator)
        b = torch.randn(n, n, generator=generator)
        flops = 2 * n**3
        repeats = max(3, min(50, int(1e11 / flops)))
        before = cpu_seconds()
        start = time.perf_counter()
        times = time_calls(lambda a=a, b=b: torch.matmul(a, b), 2, repeats)
        other = other_cpu(before, cpu_seconds()) / (time.perf_counter() - start)
        best = min(times)
        rows.append({"n": n, "best_s": best, "gflops": flops / best / 1e9, "other_load": other})
    return rows


def print_peak_rows(rows):
    for row in rows:
        print(
            f"  {row['n']:>5} x {row['n']:<5} {row['best_s'] * 1e3:9.2f} ms "
            f"{row['gflops']:8.1f} GFLOP/s   (other load {row['other_load']:.2f})"
        )


# -- candidates -------------------------------------------------------------------------------


def jax_stateless_runner(model, inputs, pick=None):
    """A blocking call of ``jax.jit(model.stateless_call)`` on device-resident inputs."""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def forward(trainable, non_trainable, inputs):
        outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
        return pick(outputs) if pick is not None else outputs

    inputs = jax.device_put(inputs)
    state = {}

    def run():
        state["out"] = forward(trainable, non_trainable, inputs).block_until_ready()

    def output():
        return np.asarray(state["out"])

    return run, output


def build_kerasbert(args, data, hidden_act, family="bert"):
    try:
        import kerasbert
    except ImportError as exc:
        raise NotInstalled(str(exc)) from exc
    token_ids, segment_ids, _ = data
    config = {
        "vocab_size": args.vocab,
        "hidden_size": args.hidden,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "intermediate_size": args.intermediate,
        "hidden_act": hidden_act,
        "max_position_embeddings": args.max_position,
        "type_vocab_size": 2,
    }
    if family == "albert":
        config["embedding_size"] = 128  # ALBERT-base
    model = kerasbert.build_transformer_model(config, model=family)
    run, output = jax_stateless_runner(model, [token_ids, segment_ids])
    info = {"version": kerasbert.__version__, "method": "jax.jit(stateless_call)"}
    info["activation"] = hidden_act
    info["family"] = family
    return run, output, info


def build_keras_hub(args, data):
    try:
        import keras
        import keras_hub
    except ImportError as exc:
        raise NotInstalled(str(exc)) from exc
    if keras.backend.backend() != "jax":
        raise RuntimeError(f"keras-hub needs the JAX backend here, got {keras.backend.backend()}")
    token_ids, segment_ids, valid = data
    model = keras_hub.models.BertBackbone(
        vocabulary_size=args.vocab,
        num_layers=args.layers,
        num_heads=args.heads,
        hidden_dim=args.hidden,
        intermediate_dim=args.intermediate,
        dropout=0.1,
        max_sequence_length=args.max_position,
    )
    inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": valid}
    run, output = jax_stateless_runner(model, inputs, pick=lambda o: o["sequence_output"])
    info = {
        "version": keras_hub.__version__,
        "method": "jax.jit(stateless_call)",
        "activation": "gelu_tanh",
    }
    return run, output, info


def build_torch(args, data):
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise NotInstalled(str(exc)) from exc
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(args.seed)
    token_ids, segment_ids, valid = data
    config = transformers.BertConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=args.intermediate,
        hidden_act="gelu",
        max_position_embeddings=args.max_position,
        type_vocab_size=2,
    )
    attn = "sdpa"
    try:
        model = transformers.BertModel(config, add_pooling_layer=False, attn_implementation=attn)
    except (TypeError, ValueError):
        attn = "default"
        model = transformers.BertModel(config, add_pooling_layer=False)
    model.eval()
    ids = torch.from_numpy(token_ids.astype("int64"))
    seg = torch.from_numpy(segment_ids.astype("int64"))
    mask = torch.from_numpy(valid.astype("int64"))
    state = {}

    def run():
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=mask, token_type_ids=seg)
        state["out"] = out.last_hidden_state

    def output():
        return state["out"].numpy()

    info = {
        "version": f"torch {torch.__version__}, transformers {transformers.__version__}",
        "method": f"eager, inference_mode, {torch.get_num_threads()} threads",
        "activation": "gelu_erf",
        "attention": getattr(model.config, "_attn_implementation", attn),
    }
    return run, output, info


# -- driver -----------------------------------------------------------------------------------


def machine_info():
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load_average(),
    }
    for name in ("jax", "jaxlib", "keras", "keras_hub", "torch", "transformers", "numpy"):
        info[name] = package_version(name)
    try:
        import jax

        info["jax_devices"] = [str(d) for d in jax.devices()]
    except Exception as exc:  # pragma: no cover - informational only
        info["jax_devices"] = f"unavailable: {exc}"
    return info


def load_average():
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name):
    from importlib import metadata

    dist = {"keras_hub": "keras-hub"}.get(name, name)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def prepare_candidate(name, build, args):
    """Build and warm up (the first call compiles); never raises."""
    result = {"name": name, "status": "ok", "times_s": [], "other_cpu_s": []}
    try:
        start = time.perf_counter()
        run, output, info = build()
        result["build_s"] = time.perf_counter() - start
        start = time.perf_counter()
        run()  # the first call compiles (JAX) / allocates (torch)
        result["first_call_s"] = time.perf_counter() - start
        for _ in range(args.warmup - 1):
            run()
        out = output()
        expected = (args.batch, args.seq_len, args.hidden)
        if out.shape != expected:
            raise RuntimeError(f"output shape {out.shape}, expected {expected}")
        if not np.all(np.isfinite(out)):
            raise RuntimeError("output has non-finite values")
        result.update(info)
        result["_run"] = run
    except NotInstalled as exc:
        result["status"] = "not installed"
        result["detail"] = str(exc)
    except Exception as exc:  # a peer breaking must not stop the run
        result["status"] = f"error: {type(exc).__name__}: {exc}"
        result["detail"] = traceback.format_exc()
    return result


def cpu_seconds():
    """``(busy CPU seconds of the whole machine, CPU seconds of this process)`` or None.

    Busy time is everything in /proc/stat but idle and iowait (steal included: another VM
    took the core). The difference of the two over an interval is the CPU time that other
    processes (or the hypervisor) took while this one was being timed.
    """
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    busy = sum(fields) - fields[3] - fields[4]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return busy / os.sysconf("SC_CLK_TCK"), usage.ru_utime + usage.ru_stime


def other_cpu(before, after):
    if before is None or after is None:
        return 0.0
    return max(0.0, (after[0] - before[0]) - (after[1] - before[1]))


def wait_for_idle(max_wait, threshold=0.25):
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` cores."""
    deadline = time.monotonic() + max_wait
    while True:
        before = cpu_seconds()
        time.sleep(1.0)
        load = other_cpu(before, cpu_seconds())
        if load < threshold or time.monotonic() >= deadline:
            return load


def timed_call(result):
    """Time one call of a prepared candidate; an error marks it and stops its timing."""
    if result["status"] != "ok":
        return
    try:
        before = cpu_seconds()
        start = time.perf_counter()
        result["_run"]()
        result["times_s"].append(time.perf_counter() - start)
        result["other_cpu_s"].append(other_cpu(before, cpu_seconds()))
    except Exception as exc:
        result["status"] = f"error: {type(exc).__name__}: {exc}"
        result["detail"] = traceback.format_exc()


def summarize(result):
    result.pop("_run", None)
    times = result["times_s"]
    if result["status"] == "ok" and times:
        result["median_s"] = statistics.median(times)
        result["min_s"] = min(times)
        result["max_s"] = max(times)
        result["other_load"] = sum(result["other_cpu_s"]) / sum(times)
        quiet = [
            t
            for t, other in zip(times, result["other_cpu_s"])
            if other / t < QUIET_LOAD and t >= QUIET_MIN_CALL_S
        ]
        result["quiet_calls"] = len(quiet)
        result["quiet_median_s"] = statistics.median(quiet) if quiet else None


def measure(candidates, args):
    """Prepare every candidate, then time them.

    ``interleaved`` (default) times one call of each candidate per round, rotating the
    order every round, so that load from elsewhere on the machine and clock drift hit all
    candidates alike; ``sequential`` times all calls of one candidate, then the next.
    """
    results = []
    for name, build in candidates:
        print(f"== {name}: build + warm-up ...", flush=True)
        r = prepare_candidate(name, build, args)
        if r["status"] == "ok":
            print(
                f"  build {r['build_s']:.2f} s, first call {r['first_call_s']:.2f} s "
                f"[{r['method']}; {r['activation']}"
                + (f"; attention {r['attention']}" if "attention" in r else "")
                + "]"
            )
        else:
            print(f"  {r['status']}")
        results.append(r)
    if args.wait_idle > 0:
        print(f"== waiting up to {args.wait_idle:.0f} s for a quiet machine ...", flush=True)
        load = wait_for_idle(args.wait_idle)
        print(f"  other processes use {load:.2f} cores")
    print(f"== timing: {args.repeats} calls each, {args.schedule}", flush=True)
    if args.schedule == "sequential":
        for r in results:
            for _ in range(args.repeats):
                timed_call(r)
    else:
        for i in range(args.repeats):
            k = i % len(results)
            for r in results[k:] + results[:k]:
                timed_call(r)
    for r in results:
        summarize(r)
    return results


def format_table(results, flops, peak):
    """The results table (also stores gflops / fraction_of_peak / speedup in ``results``)."""
    columns = (
        ("candidate", 22),
        ("median s/batch", 14),
        ("min s", 7),
        ("max s", 7),
        ("GFLOP/s", 7),
        ("% peak", 6),
        ("kb speedup", 10),
        ("other", 5),
        ("quiet median (n)", 16),
    )
    header = " ".join(
        f"{title:<{width}}" if i == 0 else f"{title:>{width}}"
        for i, (title, width) in enumerate(columns)
    )
    lines = [header, "-" * len(header)]
    base = next((r for r in results if r["name"] == "kerasbert" and r["status"] == "ok"), None)
    for r in results:
        if r["status"] != "ok":
            lines.append(f"{r['name']:<22} {r['status']}")
            continue
        r["gflops"] = flops / r["median_s"] / 1e9
        r["fraction_of_peak"] = r["gflops"] / peak
        if base is None:
            speed = "-"
        elif r is base:
            speed = "base"
        else:
            r["kerasbert_speedup"] = r["median_s"] / base["median_s"]
            speed = f"{r['kerasbert_speedup']:.2f}x"
        quiet = "-"
        if r["quiet_median_s"] is not None:
            quiet = f"{r['quiet_median_s']:.4f} ({r['quiet_calls']})"
        cells = (
            f"{r['median_s']:.4f}",
            f"{r['min_s']:.4f}",
            f"{r['max_s']:.4f}",
            f"{r['gflops']:.1f}",
            f"{100 * r['fraction_of_peak']:.1f}%",
            speed,
            f"{r['other_load']:.2f}" if r["median_s"] >= QUIET_MIN_CALL_S else "-",
            quiet,
        )
        row = [f"{r['name']:<22}"]
        row += [f"{cell:>{width}}" for cell, (_, width) in zip(cells, columns[1:])]
        lines.append(" ".join(row))
    lines += [
        "",
        "GFLOP/s and % peak use the median; % peak is of the measured jax float32 matmul peak "
        f"({peak:.1f} GFLOP/s)",
        "kb speedup = peer median / kerasbert median (>1: kerasbert is faster)",
        "other = cores that other processes kept busy during the candidate's timed calls",
        f"  ('-': calls under {QUIET_MIN_CALL_S * 1e3:.0f} ms are too short to judge)",
        f"quiet median = median of the calls during which other < {QUIET_LOAD} cores (n calls);",
        "  trust it over the median when 'other' is high",
    ]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    import jax
    import keras

    info = machine_info()
    print("== machine")
    for key in ("date", "processor", "cpu_count", "platform", "python", "jax_devices"):
        print(f"  {key:<12} {info[key]}")
    load = info["loadavg_start"]
    if load is not None:
        print(f"  loadavg      {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)")
        if load[0] > 0.5:
            print("  WARNING: the machine is busy; timings (torch's above all) will be noisy")
    versions = ", ".join(
        f"{k} {info[k]}"
        for k in ("jax", "jaxlib", "keras", "keras_hub", "torch", "transformers", "numpy")
    )
    print(f"  versions     {versions}")
    print(f"  backend      keras {keras.backend.backend()}, jax {jax.default_backend()}")

    flops = model_flops(args.batch, args.seq_len, args.layers, args.hidden, args.intermediate)
    print("== workload")
    print(
        f"  batch {args.batch} x {args.seq_len} tokens, {args.layers} layers, hidden "
        f"{args.hidden}, {args.heads} heads, intermediate {args.intermediate}, vocab "
        f"{args.vocab}; warmup {args.warmup}, repeats {args.repeats}"
    )
    print(f"  analytical forward FLOPs: {flops / 1e9:.2f} GFLOP per batch")

    sizes = [int(v) for v in args.matmul_sizes.split(",") if v.strip()]
    if args.wait_idle > 0:
        print(f"== waiting up to {args.wait_idle:.0f} s for a quiet machine ...", flush=True)
        print(f"  other processes use {wait_for_idle(args.wait_idle):.2f} cores")
    print("== dense float32 matmul peak (jax.jit, best time of each size), before", flush=True)
    peak_rows = measure_matmul_peak(sizes, args.seed)
    print_peak_rows(peak_rows)
    for row in peak_rows:
        row["pass"] = "before"
    want_hub = args.peers in ("all", "keras-hub")
    want_torch = args.peers in ("all", "torch")
    torch_rows = None
    if want_torch:
        torch_rows = measure_torch_matmul(sizes, args.seed)
        if torch_rows:
            print("== torch float32 matmul, for comparison only (not used for % peak)")
            print_peak_rows(torch_rows)

    data = make_inputs(args)
    candidates = [("kerasbert", lambda: build_kerasbert(args, data, args.hidden_act))]
    for family in [f for f in args.families.split(",") if f and f != "bert"]:
        candidates.append(
            (
                f"kerasbert-{family}",
                lambda family=family: build_kerasbert(args, data, args.hidden_act, family),
            )
        )
    hub_present = importlib.util.find_spec("keras_hub") is not None
    if want_hub and hub_present and args.hidden_act != "gelu_tanh":
        candidates.append(
            ("kerasbert[gelu_tanh]", lambda: build_kerasbert(args, data, "gelu_tanh"))
        )
    if want_hub:
        candidates.append(("keras-hub", lambda: build_keras_hub(args, data)))
    if want_torch:
        candidates.append(("torch", lambda: build_torch(args, data)))

    results = measure(candidates, args)

    print("== dense float32 matmul peak, again after the models", flush=True)
    after_rows = measure_matmul_peak(sizes, args.seed)
    print_peak_rows(after_rows)
    for row in after_rows:
        row["pass"] = "after"
    peak_rows += after_rows
    peak = max(row["gflops"] for row in peak_rows)
    print(f"  measured peak (best of both passes): {peak:.1f} GFLOP/s")
    info["loadavg_end"] = load_average()

    print("== results")
    print(format_table(results, flops, peak))
    load = info["loadavg_end"]
    if load is not None:
        print(f"loadavg at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)")

    if args.json:
        payload = {
            "machine": info,
            "args": vars(args),
            "flops_per_batch": flops,
            "matmul_peak_gflops": peak,
            "matmul_peak": peak_rows,
            "torch_matmul": torch_rows,
            "results": results,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
