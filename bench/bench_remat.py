"""Training memory and step time with and without ``gradient_checkpointing``.

One training step of a BERT encoder with a sentence-classification head (the pooler and a
2-way linear head, i.e. ``with_nsp="linear"``), dropout 0.1 in training mode, softmax
cross-entropy on random labels, and AdamW (``keras.optimizers.AdamW``): forward, backward and
update in one ``jax.jit``-compiled function of the variables (``model.stateless_call`` +
``optimizer.stateless_apply``, state buffers donated). Default shape: BERT-base (12 layers,
hidden 768, 12 heads, intermediate 3072, vocab 21128), batch 8, at 128 and 512 tokens.

Variants:

* ``none`` -- ``build_transformer_model(config)``: every activation kept for the backward pass.
* ``block`` -- ``build_transformer_model(config, gradient_checkpointing=True)``: each
  transformer block recomputed in the backward pass.

Each (variant, length) runs in a fresh subprocess, so its peak RSS is its own. Reported:

* ``temp MB`` -- ``jax.jit(step).lower(...).compile().memory_analysis().temp_size_in_bytes``:
  XLA's buffer for everything that is neither an argument nor an output, i.e. the
  activations kept between forward and backward plus scratch. Exact and independent of
  machine load.
* ``args MB`` -- the arguments (weights, optimizer moments, inputs), the same for both.
* ``RSS after compile`` / ``peak RSS`` -- ``ru_maxrss`` after compiling and after the timed
  steps (the whole process: Python, JAX, the compiler, the weights, the buffers).
* ``step s`` -- median seconds per step (after ``--warmup`` steps), ``compile s``.

Run from the repository root with the project's venv::

    /work/venvs/dev/bin/python bench/bench_remat.py                 # BERT-base, 128 and 512
    /work/venvs/dev/bin/python bench/bench_remat.py --small         # smoke: seconds
    /work/venvs/dev/bin/python bench/bench_remat.py --compile-only  # memory only, no steps
    /work/venvs/dev/bin/python bench/bench_remat.py --lengths 512 --variants block \\
        --repeats 2 --warmup 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

VARIANTS = ("none", "block")
SMALL = {"layers": 2, "hidden": 64, "heads": 2, "intermediate": 128, "vocab": 1000,
         "batch": 2, "lengths": "64,128", "repeats": 2, "warmup": 1}  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--intermediate", type=int, default=3072)
    parser.add_argument("--vocab", type=int, default=21128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lengths", default="128,512", help="comma-separated token counts")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="none,block")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after compiling")
    parser.add_argument("--compile-only", action="store_true", help="memory analysis only")
    parser.add_argument("--small", action="store_true", help="tiny model defaults: a smoke run")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # "variant:length", internal
    args = parser.parse_args(argv)
    if args.small:  # small defaults; options given explicitly still win
        parser.set_defaults(**SMALL)
        args = parser.parse_args(argv)
    args.lengths = [int(x) for x in str(args.lengths).split(",") if x]
    args.variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    return args


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(args, variant, length):
    """One (variant, length) in this process; returns a dict of numbers."""
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np
    from peers import hf_config

    import kerasbert

    sizes = argparse.Namespace(**vars(args), max_position=max(512, length), dropout=0.1)
    config = hf_config(sizes, "bert", "gelu")
    keras.utils.set_random_seed(0)
    model = kerasbert.build_transformer_model(
        config, with_nsp="linear", gradient_checkpointing=variant == "block"
    )
    optimizer = keras.optimizers.AdamW(learning_rate=2e-5, weight_decay=0.01)
    optimizer.build(model.trainable_variables)

    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, args.vocab, (args.batch, length)).astype("int32")
    segment_ids = np.zeros_like(token_ids)
    segment_ids[:, length // 2 :] = 1
    labels = rng.integers(0, 2, (args.batch,)).astype("int32")
    inputs = jax.device_put([token_ids, segment_ids])
    labels = jax.device_put(labels)

    def step(trainable, non_trainable, optimizer_state, inputs, labels):
        def loss_fn(trainable):
            logits, non_trainable_out = model.stateless_call(
                trainable, non_trainable, inputs, training=True
            )
            log_p = jax.nn.log_softmax(logits.astype("float32"))
            loss = -jnp.mean(jnp.take_along_axis(log_p, labels[:, None], axis=1))
            return loss, non_trainable_out

        (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
        return loss, trainable, non_trainable, optimizer_state

    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
    )
    rss_built = max_rss_mb()
    started = time.perf_counter()
    jitted = jax.jit(step, donate_argnums=(0, 1, 2))
    compiled = jitted.lower(*state, inputs, labels).compile()
    compile_s = time.perf_counter() - started
    memory = compiled.memory_analysis()
    result = {
        "variant": variant,
        "length": length,
        "batch": args.batch,
        "params": int(model.count_params()),
        "temp_mb": memory.temp_size_in_bytes / 2**20,
        "args_mb": memory.argument_size_in_bytes / 2**20,
        "output_mb": memory.output_size_in_bytes / 2**20,
        "compile_s": compile_s,
        "rss_built_mb": rss_built,
        "rss_compiled_mb": max_rss_mb(),
    }
    if args.compile_only:
        return result

    # The step donates the state buffers: the model's own variables are not used again.
    times, losses = [], []
    for i in range(args.warmup + args.repeats):
        started = time.perf_counter()
        loss, *state = compiled(*state, inputs, labels)
        loss = float(loss)  # blocks until the step is done
        if i >= args.warmup:
            times.append(time.perf_counter() - started)
        losses.append(loss)
    if not all(np.isfinite(losses)):
        raise RuntimeError(f"non-finite loss: {losses}")
    result.update(
        step_s=statistics.median(times),
        steps=len(times),
        losses=losses,
        rss_peak_mb=max_rss_mb(),
    )
    return result


def run_child(args, variant, length):
    """``measure`` in a fresh Python process (honest RSS); its JSON result."""
    command = [sys.executable, os.path.abspath(__file__), "--child", f"{variant}:{length}"]
    for key in ("layers", "hidden", "heads", "intermediate", "vocab", "batch", "repeats",
                "warmup"):  # fmt: skip
        command += [f"--{key}", str(getattr(args, key))]
    if args.compile_only:
        command.append("--compile-only")
    proc = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return {"variant": variant, "length": length, "error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1][len("RESULT ") :])


def table(results, compile_only):
    header = ["variant", "tokens", "temp MB", "args MB", "RSS after compile MB", "compile s"]
    if not compile_only:
        header += ["peak RSS MB", "step s"]
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['variant']} | {r['length']} | failed: {r['error'][-200:]!r} |")
            continue
        cells = [r["variant"], r["length"], f"{r['temp_mb']:.1f}", f"{r['args_mb']:.1f}",
                 f"{r['rss_compiled_mb']:.0f}", f"{r['compile_s']:.1f}"]  # fmt: skip
        if not compile_only:
            cells += [f"{r['rss_peak_mb']:.0f}", f"{r['step_s']:.3f}"]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    by = {(r["variant"], r["length"]): r for r in results if "error" not in r}
    notes = []
    for length in sorted({r["length"] for r in results}):
        none, block = by.get(("none", length)), by.get(("block", length))
        if none and block:
            note = f"{length} tokens: temp x{block['temp_mb'] / none['temp_mb']:.2f} with remat"
            if not compile_only:
                note += f", step time x{block['step_s'] / none['step_s']:.2f}"
                note += f", peak RSS x{block['rss_peak_mb'] / none['rss_peak_mb']:.2f}"
                # Same seeds, same data: the variants must train identically.
                gap = max(abs(a - b) for a, b in zip(none["losses"], block["losses"]))
                note += f", largest loss difference {gap:.1e}"
            notes.append(note)
    return "\n".join(rows + [""] + notes)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        variant, length = args.child.split(":")
        print("RESULT " + json.dumps(measure(args, variant, int(length))), flush=True)
        return 0

    import jax

    shape = (
        f"{args.layers} layers, hidden {args.hidden}, {args.heads} heads, intermediate "
        f"{args.intermediate}, vocab {args.vocab}, batch {args.batch}"
    )
    print(f"# gradient checkpointing: one AdamW training step; {shape}")
    print(f"# jax {jax.__version__} on {jax.default_backend()}, {os.cpu_count()} CPUs, "
          f"{platform.python_version()}")  # fmt: skip
    results = []
    for length in args.lengths:
        for variant in args.variants:
            results.append(run_child(args, variant, length))
            r = results[-1]
            print(f"  {variant:5s} {length:4d}: " + (r.get("error") or json.dumps(r)), flush=True)
    print()
    print(table(results, args.compile_only))
    if args.json:
        meta = {"shape": shape, "jax": jax.__version__, "compile_only": args.compile_only,
                "date": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
