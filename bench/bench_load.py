"""Checkpoint loading benchmark: a BERT-base-sized TensorFlow checkpoint into a built model.

Measures, each in a fresh subprocess so peak RSS is its own:

- ``read-once``: reading every byte of the checkpoint files through one reused buffer (the
  disk / page-cache floor);
- ``read-once (fresh memory)``: the same into newly allocated arrays (``np.fromfile``): the
  floor of any loader whose result is new memory; on VMs where page faults are expensive
  this dominates;
- ``kerasbert``: ``build_transformer_model(config)`` then loading the TF checkpoint (pure
  Python reader, memory-mapped, CRC-32C checked), wall time of the load alone;
- ``tf.train.load_variable``: TensorFlow reading each variable by name (bert4keras's way),
  when TensorFlow is importable in this venv.

Cold numbers drop the page cache first (needs root: ``/proc/sys/vm/drop_caches``); warm
numbers read the files once before timing. Peak RSS is reported above the baseline of the
same process after building the empty model.

Run (any venv with kerasbert; TensorFlow optional)::

    python bench/bench_load.py            # writes a random checkpoint to /tmp/kb_bench_ckpt
    python bench/bench_load.py --no-crc   # also time without checksum verification
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CONFIG = {
    "vocab_size": 21128,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "hidden_act": "gelu",
}


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_checkpoint(folder):
    """Write a random BERT-base TF checkpoint (with pooler and MLM/NSP heads)."""
    import kerasbert
    from kerasbert.models import save_tf_checkpoint

    prefix = os.path.join(folder, "bert_model.ckpt")
    if os.path.exists(prefix + ".index"):
        return prefix
    os.makedirs(folder, exist_ok=True)
    model = kerasbert.build_transformer_model(CONFIG, with_nsp=True, with_mlm=True)
    save_tf_checkpoint(model, prefix)
    with open(os.path.join(folder, "bert_config.json"), "w") as f:
        json.dump(CONFIG, f)
    return prefix


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def files_of(prefix):
    folder, base = os.path.split(prefix)
    return [os.path.join(folder, f) for f in os.listdir(folder) if f.startswith(base + ".")]


# -- the measurements, each run in its own subprocess -----------------------------------------
def measure_read_fresh(prefix, **_):
    """Read every file into newly allocated memory (``np.fromfile``): the floor of any
    loader that ends with the weights in new memory, page-fault costs included."""
    import numpy as np

    start = time.perf_counter()
    arrays = [np.fromfile(path, np.uint8) for path in files_of(prefix)]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": sum(a.size for a in arrays), "rss_above_mb": 0.0}


def measure_read_once(prefix, **_):
    start = time.perf_counter()
    total = 0
    for path in files_of(prefix):
        with open(path, "rb", buffering=0) as f:
            while chunk := f.read(1 << 24):
                total += len(chunk)
    return {"seconds": time.perf_counter() - start, "bytes": total, "rss_above_mb": 0.0}


def measure_kerasbert(prefix, verify=True, **_):
    import kerasbert
    from kerasbert.checkpoints import TFCheckpoint

    builder = kerasbert.build_transformer_model(
        CONFIG, with_nsp=True, with_mlm=True, return_keras_model=False
    )
    baseline = current_rss_mb()
    start = time.perf_counter()
    builder.load_weights_from_checkpoint(TFCheckpoint(prefix, verify_checksums=verify))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_above_mb": rss_mb() - baseline}


def measure_tensorflow(prefix, **_):
    import numpy as np
    import tensorflow as tf

    import kerasbert

    builder = kerasbert.build_transformer_model(
        CONFIG, with_nsp=True, with_mlm=True, return_keras_model=False
    )
    baseline = current_rss_mb()
    start = time.perf_counter()
    layers = {layer.name: layer for layer in builder.model.layers}
    for layer_name, sources in builder.variable_mapping().items():
        if layer_name not in layers:
            continue
        variables = {v.path.split("/", 1)[1]: v for v in layers[layer_name].weights}
        for var_name, source in sources.items():
            name, transform = source if isinstance(source, tuple) else (source, None)
            value = tf.train.load_variable(prefix, name)
            variables[var_name].assign(np.transpose(value) if transform == "T" else value)
    return {"seconds": time.perf_counter() - start, "rss_above_mb": rss_mb() - baseline}


MEASURES = {
    "read-once": measure_read_once,
    "read-once (fresh memory)": measure_read_fresh,
    "kerasbert": measure_kerasbert,
    "tf.train.load_variable": measure_tensorflow,
}


def run_child(name, prefix, cold, verify):
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import bench_load as b; "
        f"print('RESULT', json.dumps(b.MEASURES[{name!r}]({prefix!r}, verify={verify})))"
    )
    if cold:
        drop_caches()
    else:
        measure_read_once(prefix)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="/tmp/kb_bench_ckpt")
    parser.add_argument("--no-crc", action="store_true", help="also time without CRC checks")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()

    prefix = make_checkpoint(args.folder)
    size_mb = sum(os.path.getsize(p) for p in files_of(prefix)) / 2**20
    can_drop = drop_caches()
    try:
        import tensorflow  # noqa: F401

        have_tf = True
    except ImportError:
        have_tf = False
    from kerasbert.checkpoints import crc32c

    print(f"checkpoint: {prefix} ({size_mb:.0f} MiB), cpus: {os.cpu_count()}")
    print(f"CRC-32C: {'C library' if crc32c._C_CRC32C else 'numpy'}; cold cache: {can_drop}")
    candidates = [("read-once", True), ("read-once (fresh memory)", True), ("kerasbert", True)]
    if args.no_crc:
        candidates.append(("kerasbert", False))
    if have_tf:
        candidates.append(("tf.train.load_variable", True))
    results = []
    print(f"{'candidate':<34}{'cache':<7}{'seconds':>9}{'x read':>8}{'peak RSS+ MiB':>15}")
    for cache in ("cold", "warm") if can_drop else ("warm",):
        floor = None
        for name, verify in candidates:
            r = run_child(name, prefix, cache == "cold", verify)
            label = name + ("" if verify or name != "kerasbert" else " (no CRC)")
            r.update(candidate=label, cache=cache)
            results.append(r)
            if "error" in r:
                print(f"{label:<34}{cache:<7} error: {r['error']}")
                continue
            floor = floor or r["seconds"]
            print(
                f"{label:<34}{cache:<7}{r['seconds']:>9.3f}{r['seconds'] / floor:>8.2f}"
                f"{r['rss_above_mb']:>15.0f}"
            )
    print(f"checkpoint size: {size_mb:.0f} MiB (RSS target: <= {1.5 * size_mb:.0f} MiB above)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size_mb": size_mb, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
