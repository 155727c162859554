"""Shared pieces of the benchmark scripts: machine facts, quiet-machine detection, the
timing harness, the float32 matmul peak and table printing.

Imported by ``bench_forward.py``, ``bench_train.py``, ``bench_encode.py`` and ``run_all.py``
(each is run as a script from the repository root, so ``bench/`` is on ``sys.path``).
Nothing here imports JAX, Keras or torch at module level.

The method (interleaved rounds, /proc/stat, quiet medians, the matmul peak) is described
in bench/README.md.
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import resource
import statistics
import time
import traceback

# A timed call counts as "quiet" when other processes kept fewer cores than this busy during
# it (measured from /proc/stat, whose 10 ms ticks make calls under 50 ms too short to judge).
QUIET_LOAD = 0.1
QUIET_MIN_CALL_S = 0.05
VERSION_PACKAGES = (
    "kerasbert",
    "jax",
    "jaxlib",
    "keras",
    "keras-hub",
    "torch",
    "transformers",
    "sentence-transformers",
    "tokenizers",
    "bert4keras",
    "numpy",
)


class NotInstalled(Exception):
    """A peer's packages cannot be imported."""

    status = "not installed"


class NotAvailable(NotInstalled):
    """The installed packages lack the model asked for (e.g. kerasbert without a family)."""

    status = "not available"


# -- machine --------------------------------------------------------------------------------


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib():
    """Total RAM in GiB (from /proc/meminfo), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        pass
    return None


def load_average():
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def package_version(name):
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info():
    """Date, CPU, cores, RAM, Python and the versions of the packages that matter here."""
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "loadavg_start": load_average(),
        "versions": {name: package_version(name) for name in VERSION_PACKAGES},
    }
    return info


def print_machine(info):
    print("== machine")
    ram = info["memory_gib"]
    print(f"  date         {info['date']}")
    print(f"  processor    {info['processor']}")
    print(f"  cpus         {info['cpu_count']}" + (f", {ram:.1f} GiB RAM" if ram else ""))
    print(f"  platform     {info['platform']}, python {info['python']}")
    installed = {k: v for k, v in info["versions"].items() if v != "not installed"}
    print("  versions     " + ", ".join(f"{k} {v}" for k, v in installed.items()))
    load = info["loadavg_start"]
    if load is not None:
        print(f"  loadavg      {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)")
        if load[0] > 0.5:
            print("  WARNING: the machine is busy; timings (torch's above all) will be noisy")


# -- other processes' CPU use ----------------------------------------------------------------


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
    """CPU seconds other processes used between two :func:`cpu_seconds` readings."""
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


def announce_wait(max_wait):
    if max_wait > 0:
        print(f"== waiting up to {max_wait:.0f} s for a quiet machine ...", flush=True)
        print(f"  other processes use {wait_for_idle(max_wait):.2f} cores", flush=True)


class Watch:
    """Wall time of a block and the cores other processes kept busy meanwhile."""

    def __enter__(self):
        self._cpu = cpu_seconds()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        self.other_load = other_cpu(self._cpu, cpu_seconds()) / max(self.seconds, 1e-9)
        return False


# -- the matmul peak --------------------------------------------------------------------------


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


def _peak_rows(sizes, make_call):
    rows = []
    for n in sizes:
        call = make_call(n)
        flops = 2 * n**3
        # Enough calls for ~1 s of work at ~100 GFLOP/s, at least 3.
        repeats = max(3, min(50, int(1e11 / flops)))
        with Watch() as watch:
            times = time_calls(call, 2, repeats)
        best = min(times)
        rows.append(
            {"n": n, "best_s": best, "gflops": flops / best / 1e9, "other_load": watch.other_load}
        )
    return rows


def measure_matmul_peak(sizes, seed):
    """Time a jitted float32 ``n x n @ n x n`` matmul for each n in ``sizes``.

    Returns one row per size: the best time, its GFLOP/s, and the cores other processes used
    meanwhile.
    """
    import jax
    import jax.numpy as jnp

    matmul = jax.jit(jnp.matmul)
    key = jax.random.PRNGKey(seed)

    def make_call(n):
        ka, kb = jax.random.split(jax.random.fold_in(key, n))
        a = jax.random.normal(ka, (n, n), jnp.float32)
        b = jax.random.normal(kb, (n, n), jnp.float32)
        return lambda: matmul(a, b).block_until_ready()

    return _peak_rows(sizes, make_call)


def measure_torch_matmul(sizes, seed):
    """Like :func:`measure_matmul_peak` for ``torch.matmul`` (informational); None if absent."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    generator = torch.Generator().manual_seed(seed)

    def make_call(n):
        a = torch.randn(n, n, generator=generator)
        b = torch.randn(n, n, generator=generator)
        return lambda: torch.matmul(a, b)

    return _peak_rows(sizes, make_call)


def print_peak_rows(rows):
    for row in rows:
        print(
            f"  {row['n']:>5} x {row['n']:<5} {row['best_s'] * 1e3:9.2f} ms "
            f"{row['gflops']:8.1f} GFLOP/s   (other load {row['other_load']:.2f})"
        )


class MatmulPeak:
    """The machine's float32 matmul peak, measured before and again after the models.

    ``peak`` is the best GFLOP/s over both passes (after :meth:`after` has run).
    """

    def __init__(self, sizes_text, seed, with_torch=False):
        self.sizes = [int(v) for v in sizes_text.split(",") if v.strip()]
        self.seed = seed
        self.rows = []
        self.torch_rows = None
        self.with_torch = with_torch

    def _pass(self, label):
        rows = measure_matmul_peak(self.sizes, self.seed)
        print_peak_rows(rows)
        for row in rows:
            row["pass"] = label
        self.rows += rows

    def before(self):
        print("== dense float32 matmul peak (jax.jit, best time of each size), before", flush=True)
        self._pass("before")
        if self.with_torch:
            self.torch_rows = measure_torch_matmul(self.sizes, self.seed)
            if self.torch_rows:
                print("== torch float32 matmul, for comparison only (not used for % peak)")
                print_peak_rows(self.torch_rows)

    def after(self):
        print("== dense float32 matmul peak, again after the models", flush=True)
        self._pass("after")
        print(f"  measured peak (best of both passes): {self.peak:.1f} GFLOP/s")

    @property
    def peak(self):
        return max(row["gflops"] for row in self.rows)

    def to_json(self):
        return {
            "matmul_peak_gflops": self.peak,
            "matmul_peak": self.rows,
            "torch_matmul": self.torch_rows,
        }


# -- the timing harness ------------------------------------------------------------------------


def add_timing_args(parser, repeats, warmup):
    """The options every timed script shares."""
    parser.add_argument("--repeats", type=int, default=repeats, help="timed calls per candidate")
    parser.add_argument(
        "--warmup", type=int, default=warmup, help="untimed calls (the first compiles)"
    )
    parser.add_argument(
        "--schedule",
        choices=("interleaved", "sequential"),
        default="interleaved",
        help="interleaved: one call of each candidate per round; sequential: one after another",
    )
    parser.add_argument(
        "--matmul-sizes",
        default="1024,2048,4096",
        help="comma-separated n of the n x n @ n x n float32 matmuls timed for the peak",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before timing, wait up to this long until other processes use < 0.25 cores",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")


def check_timing_args(parser, args):
    if args.repeats < 1 or args.warmup < 1:
        parser.error("--repeats and --warmup must be at least 1 (the first warm-up call compiles)")


def prepare_candidate(name, build, warmup, check):
    """Build and warm up (the first call compiles); never raises.

    ``build()`` returns ``(run, output, info)``: ``run()`` does one blocking call,
    ``output()`` returns the last call's result, which ``check(result)`` validates: it
    raises on a wrong result, and may return a warning (kept as ``result["warning"]``).
    ``info`` is a dict merged into the result.
    """
    result = {"name": name, "status": "ok", "times_s": [], "other_cpu_s": []}
    try:
        start = time.perf_counter()
        run, output, info = build()
        result["build_s"] = time.perf_counter() - start
        start = time.perf_counter()
        run()  # the first call compiles (JAX) / allocates (torch)
        result["first_call_s"] = time.perf_counter() - start
        for _ in range(warmup - 1):
            run()
        warning = check(output())
        if warning:
            result["warning"] = warning
        result.update(info)
        result["_run"] = run
    except NotInstalled as exc:  # NotAvailable too: reported, not an error
        result["status"] = exc.status
        result["detail"] = str(exc)
    except Exception as exc:  # a peer breaking must not stop the run
        result["status"] = f"error: {type(exc).__name__}: {exc}"
        result["detail"] = traceback.format_exc()
    return result


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
    """Median, min, max, other processes' load and the quiet median of the timed calls."""
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


def measure(candidates, args, check):
    """Prepare every ``(name, build)`` candidate, then time them; returns their results.

    ``interleaved`` (default) times one call of each candidate per round, rotating the
    order every round, so that load from elsewhere on the machine and clock drift hit all
    candidates alike; ``sequential`` times all calls of one candidate, then the next.
    The candidates are released (and garbage collected) before this returns.
    """
    results = []
    for name, build in candidates:
        print(f"== {name}: build + warm-up ...", flush=True)
        r = prepare_candidate(name, build, args.warmup, check)
        if r["status"] == "ok":
            notes = "; ".join(str(r[k]) for k in ("method", "activation", "attention") if k in r)
            print(
                f"  build {r['build_s']:.2f} s, first call {r['first_call_s']:.2f} s [{notes}]",
                flush=True,
            )
        elif r["status"] in (NotInstalled.status, NotAvailable.status):
            print(f"  {r['status']}: {r['detail']}", flush=True)
        else:
            print(f"  {r['status']}", flush=True)
        if "warning" in r:
            print(f"  WARNING: {r['warning']}", flush=True)
        results.append(r)
    announce_wait(args.wait_idle)
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
    gc.collect()
    return results


# -- tables ----------------------------------------------------------------------------------

COLUMNS = (
    ("candidate", 22),
    ("median s/{unit}", 14),
    ("min s", 7),
    ("max s", 7),
    ("GFLOP/s", 7),
    ("% peak", 6),
    ("kb speedup", 10),
    ("other", 5),
    ("quiet median (n)", 16),
)


def format_table(results, flops, peak, unit="batch", base="kerasbert"):
    """The results table of one group of candidates timed together.

    Also stores ``gflops``, ``fraction_of_peak`` and ``kerasbert_speedup`` (peer median /
    median of the candidate named ``base``) in each result.
    """
    columns = [(title.format(unit=unit), width) for title, width in COLUMNS]
    header = " ".join(
        f"{title:<{width}}" if i == 0 else f"{title:>{width}}"
        for i, (title, width) in enumerate(columns)
    )
    lines = [header, "-" * len(header)]
    base_r = next((r for r in results if r["name"] == base and r["status"] == "ok"), None)
    for r in results:
        if r["status"] != "ok":
            lines.append(f"{r['name']:<22} {r['status']}")
            continue
        r["gflops"] = flops / r["median_s"] / 1e9
        r["fraction_of_peak"] = r["gflops"] / peak
        if base_r is None:
            speed = "-"
        elif r is base_r:
            speed = "base"
        else:
            r["kerasbert_speedup"] = r["median_s"] / base_r["median_s"]
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
    return "\n".join(lines)


def table_legend(peak):
    return "\n".join(
        [
            "GFLOP/s and % peak use the median; % peak is of the measured jax float32 matmul "
            f"peak ({peak:.1f} GFLOP/s)",
            "kb speedup = peer median / kerasbert median (>1: kerasbert is faster)",
            "other = cores that other processes kept busy during the candidate's timed calls",
            f"  ('-': calls under {QUIET_MIN_CALL_S * 1e3:.0f} ms are too short to judge)",
            f"quiet median = median of the calls during which other < {QUIET_LOAD} cores "
            "(n calls);",
            "  trust it over the median when 'other' is high",
        ]
    )


def write_json(path, payload):
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, default=str)
        print(f"wrote {path}")
