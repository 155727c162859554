"""Cached greedy generation: kerasbert's ``generate`` vs HF transformers (torch) and keras-hub.

Workload (issue 19): GPT-2 small sizes (12 layers, 768 hidden, 12 heads, intermediate 3072,
vocabulary 50257, 1024 positions, tanh GELU, no dropout), **random weights** (no download:
the speed of a step does not depend on the values), greedy continuation of a
``--prompt-len`` (32) token prompt by ``--new-tokens`` (128) tokens at each batch size of
``--batches`` (1 and 8). Prompts are random ids in ``[1, vocab)``, all rows of equal length.

Candidates, each timed as whole calls producing every new token:

* ``kerasbert`` -- ``kerasbert.generation.generate(builder, prompts, 128)``: the prompt as
  one chunk, then one jitted step per token over a fixed-size key/value cache
  (``IncrementalModel``; 256 positions here, the power of two holding 32 + 128), argmax in
  numpy between steps. Its weights are the torch model's (written as HF safetensors and
  loaded by kerasbert), so the two generate the same ids unless float32 rounding flips a
  near-tie; the run says whether they did and where they first differ.
* ``torch`` -- ``GPT2LMHeadModel.generate(input_ids, attention_mask, max_new_tokens=128,
  min_new_tokens=128, do_sample=False, num_beams=1, use_cache=True)``, eager, ``sdpa``
  attention, ``torch.inference_mode()``, ``torch.set_num_threads(os.cpu_count())``.
* ``torch[1 thread]`` -- the same with ``torch.set_num_threads(1)`` during the call, for
  reference: PyTorch's OpenMP threads slow down badly when another process holds a core
  (bench/README.md), one thread does not; the target compares with ``torch``.
* ``keras-hub`` -- ``GPT2CausalLM(GPT2Backbone(...), preprocessor=None)`` compiled with the
  ``"greedy"`` sampler, ``generate({"token_ids", "padding_mask"}, stop_token_ids=None)`` on
  JAX: one jitted program holding the whole loop (its own fixed cache of 160 positions);
  its own random weights (its ids are not compared).

tokens/s = batch x new tokens / median seconds per call. XLA compilations (all of them, from
``jax.monitoring``) are counted during the timed calls: after warm-up there must be none.

The per-token cost against the prefix length: for each prefix in ``--prefixes`` (32, 128,
256, 512) and batch size, the time of one decoding step (one new token for every row)
after a cached prefix of that length:

* ``kerasbert`` -- one ``IncrementalModel`` with a 1024-position cache (every prefix fits),
  so every prefix runs the same compiled step: its cost is flat by construction, and that
  of the full 1024 positions (``generate`` picks the smallest power of two that holds the
  decoding, 256 for the workload above). Its keys and values are stored heads-first and
  each step takes over the cache's buffers (updated in place). An ablation of that layout
  from before it was ``IncrementalModel``'s is in BENCHMARKS.md ("GPT-2 cached generation
  (issue 19)"): the layers' ``(batch, positions, heads, size)`` layout without donation
  cost 3.5x at batch 8;
* ``torch`` -- ``model(next_ids, past_key_values=cache)`` after a prefill; HF's cache grows,
  and is cropped back to the prefix after each timed step;
* ``xla matmuls only`` -- the step's matrix products alone in one jitted function (per layer
  the q/k/v, output and feed-forward products of ``batch`` tokens and the attention of one
  query over ``prefix`` cached keys; then the tied output projection): a floor under any
  JAX implementation of the step, and the yardstick for kerasbert's per-step overhead.

The timing harness is bench/common.py's (interleaved rounds, other processes' CPU use from
/proc/stat, quiet medians; bench/README.md).

Run (from the repository root, bench venv; bench/README.md has the setup)::

    /work/venvs/bench/bin/python bench/bench_generate.py
    /work/venvs/bench/bin/python bench/bench_generate.py --layers 2 --hidden 64 --heads 2 \\
        --intermediate 128 --vocab 500 --positions 128 --prompt-len 8 --new-tokens 8 \\
        --prefixes 8,32 --batches 1,2 --wait-idle 0   # quick smoke
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from common import (  # noqa: E402
    QUIET_MIN_CALL_S,
    NotInstalled,
    add_timing_args,
    check_timing_args,
    machine_info,
    measure,
    print_machine,
    write_json,
)

PEER_CHOICES = ("all", "none", "torch", "keras-hub")
STEP_CACHE = "kerasbert"
MATMULS_ONLY = "xla matmuls only"
TORCH_1 = "torch[1 thread]"
TARGET_SPEEDUP = 1.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--intermediate", type=int, default=3072)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--positions", type=int, default=1024)
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--prefixes", default="32,128,256,512", help="prefix lengths of the step curve")
    p.add_argument("--step-repeats", type=int, default=15, help="timed steps per candidate")
    p.add_argument("--peers", choices=PEER_CHOICES, default="all")
    add_timing_args(p, repeats=3, warmup=2)
    args = p.parse_args(argv)
    check_timing_args(p, args)
    args.batch_sizes = [int(v) for v in args.batches.split(",") if v.strip()]
    args.prefix_lengths = [int(v) for v in args.prefixes.split(",") if v.strip()]
    if args.prompt_len + args.new_tokens > args.positions or max(args.prefix_lengths) >= (
        args.positions
    ):
        p.error("--prompt-len + --new-tokens and every prefix must fit in --positions")
    return args


class CompileCounter:
    """Every XLA compilation in this process (``jax.monitoring`` backend-compile events)."""

    def __init__(self):
        import jax

        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1


# -- the models ---------------------------------------------------------------------------------


def hf_config(args):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=args.vocab, n_positions=args.positions, n_embd=args.hidden,
        n_layer=args.layers, n_head=args.heads, n_inner=args.intermediate,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )  # fmt: skip


def build_models(args, folder):
    """``(torch model or None, kerasbert builder)``: the same random weights in both (torch
    writes them; kerasbert reads the safetensors). Without transformers, kerasbert gets
    random weights of its own."""
    import kerasbert

    try:
        import torch
        from transformers import GPT2LMHeadModel
    except ImportError:
        torch = None
    model = None
    if torch is not None:
        torch.manual_seed(args.seed)
        torch.set_num_threads(os.cpu_count() or 1)
        model = GPT2LMHeadModel(hf_config(args)).eval()
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0
        model.save_pretrained(folder, safe_serialization=True)
        builder = kerasbert.build_transformer_model(
            folder, folder, final_activation="linear", return_keras_model=False
        )
    else:
        config = {"vocab_size": args.vocab, "hidden_size": args.hidden,
                  "num_hidden_layers": args.layers, "num_attention_heads": args.heads,
                  "intermediate_size": args.intermediate, "max_position_embeddings":
                  args.positions, "hidden_act": "gelu_tanh"}  # fmt: skip
        builder = kerasbert.build_transformer_model(
            config, model="gpt2", final_activation="linear", return_keras_model=False
        )
    return model, builder


def prompts_for(args, batch):
    rng = np.random.default_rng(args.seed + batch)
    return rng.integers(1, args.vocab, size=(batch, args.prompt_len)).astype("int32")


# -- whole generations ------------------------------------------------------------------------


def kerasbert_generation(builder, prompts, args, counter, state):
    from kerasbert.generation import generate, num_compilations

    def build():
        def run():
            before = counter.count
            state["kerasbert"] = np.stack(generate(builder, prompts, args.new_tokens))
            state.setdefault("kerasbert_compiles", []).append(counter.count - before)

        info = {"method": "kerasbert.generation.generate, greedy, cached (IncrementalModel)",
                "step_compilations": lambda: num_compilations(builder)}  # fmt: skip
        return run, lambda: state["kerasbert"], info

    return build


def torch_generation(model, prompts, args, state, name="torch", threads=None):
    """HF's generate; ``threads``: torch's threads during the call (None: all cores)."""

    def build():
        if model is None:
            raise NotInstalled("transformers / torch")
        import torch

        ids = torch.from_numpy(prompts.astype("int64"))
        mask = torch.ones_like(ids)
        count = threads or os.cpu_count() or 1

        def run():
            torch.set_num_threads(count)
            try:
                with torch.inference_mode():
                    out = model.generate(
                        input_ids=ids, attention_mask=mask, max_new_tokens=args.new_tokens,
                        min_new_tokens=args.new_tokens, do_sample=False, num_beams=1,
                        use_cache=True,
                    )  # fmt: skip
            finally:
                torch.set_num_threads(os.cpu_count() or 1)
            state[name] = out[:, ids.shape[1] :].numpy()

        attention = model.config._attn_implementation
        info = {"method": f"GPT2LMHeadModel.generate, greedy, use_cache, {attention}, eager, "
                f"{count} thread{'s' if count > 1 else ''}"}  # fmt: skip
        return run, lambda: state[name], info

    return build


def keras_hub_generation(args, prompts, counter, state):
    def build():
        try:
            import keras
            import keras_hub
        except ImportError as exc:
            raise NotInstalled(f"keras-hub ({exc})") from None
        keras.utils.set_random_seed(args.seed)
        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=args.vocab, num_layers=args.layers, num_heads=args.heads,
            hidden_dim=args.hidden, intermediate_dim=args.intermediate, dropout=0.0,
            max_sequence_length=args.positions,
        )  # fmt: skip
        lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
        lm.compile(sampler="greedy")
        length = args.prompt_len + args.new_tokens
        token_ids = np.zeros((len(prompts), length), "int32")
        token_ids[:, : args.prompt_len] = prompts
        inputs = {"token_ids": token_ids, "padding_mask": token_ids != 0}

        def run():
            before = counter.count
            out = lm.generate(inputs, stop_token_ids=None)
            state["keras-hub"] = np.asarray(out["token_ids"])[:, args.prompt_len :]
            state.setdefault("keras-hub_compiles", []).append(counter.count - before)

        info = {"method": "GPT2CausalLM.generate (jitted loop), greedy sampler, own weights"}
        return run, lambda: state["keras-hub"], info

    return build


def first_difference(a, b):
    """``None`` when the id arrays are equal, else ``(row, step)`` of the first difference."""
    if a.shape != b.shape:
        return "shapes differ"
    rows, steps = np.nonzero(a != b)
    if len(rows) == 0:
        return None
    first = int(np.argmin(steps))
    return [int(rows[first]), int(steps[first])]


def run_generation(args, model, builder, counter):
    groups = []
    for batch in args.batch_sizes:
        prompts = prompts_for(args, batch)
        state = {}
        candidates = [("kerasbert", kerasbert_generation(builder, prompts, args, counter, state))]
        if args.peers in ("all", "torch"):
            candidates.append(("torch", torch_generation(model, prompts, args, state)))
            if (os.cpu_count() or 1) > 1:  # robust to a busy machine; not the target's peer
                one = torch_generation(model, prompts, args, state, TORCH_1, threads=1)
                candidates.append((TORCH_1, one))
        if args.peers in ("all", "keras-hub"):
            candidates.append(("keras-hub", keras_hub_generation(args, prompts, counter, state)))

        def check(out, batch=batch):
            if out.shape != (batch, args.new_tokens):
                raise RuntimeError(f"generated {out.shape}, expected {(batch, args.new_tokens)}")

        print(f"\n#### greedy generation: batch {batch}, {args.prompt_len}-token prompts, "
              f"{args.new_tokens} new tokens", flush=True)  # fmt: skip
        results = measure(candidates, args, check)
        for r in results:
            step_compilations = r.pop("step_compilations", None)
            if step_compilations is not None:
                r["step_compilations_total"] = step_compilations()
            compiles = state.get(f"{r['name']}_compiles")
            if compiles is not None:  # per call: warm-up calls first
                r["compilations_per_call"] = compiles
                r["recompilations_after_warmup"] = sum(compiles[args.warmup :])
            if r["status"] == "ok":
                r["tokens_per_s"] = batch * args.new_tokens / r["median_s"]
        same = None
        if "kerasbert" in state and "torch" in state:
            same = first_difference(state["kerasbert"], state["torch"])
        groups.append({"batch": batch, "results": results, "kerasbert_vs_torch_ids": same,
                       "summary": summarize_group(results)})  # fmt: skip
        print_generation(groups[-1], args)
    return groups


def summarize_group(results):
    ok = {r["name"]: r for r in results if r["status"] == "ok"}
    summary = {"tokens_per_s": {name: r["tokens_per_s"] for name, r in ok.items()}}
    if "kerasbert" in ok:
        for peer in ("torch", TORCH_1, "keras-hub"):
            if peer in ok:
                summary[f"kb_over_{peer}"] = (
                    ok["kerasbert"]["tokens_per_s"] / (ok[peer]["tokens_per_s"])
                )
    return summary


def print_generation(group, args):
    print(f"\n{'candidate':<16} {'median s':>9} {'min s':>8} {'tokens/s':>9} {'kb speedup':>10} "
          f"{'other':>6} {'recompiles':>10}")  # fmt: skip
    base = group["summary"]["tokens_per_s"].get("kerasbert")
    for r in group["results"]:
        if r["status"] != "ok":
            print(f"{r['name']:<16} {r['status']}")
            continue
        speed = (
            "base"
            if r["name"] == "kerasbert" or base is None
            else (f"{base / r['tokens_per_s']:.2f}x")
        )
        recompiles = r.get("recompilations_after_warmup", "-")
        print(f"{r['name']:<16} {r['median_s']:9.3f} {r['min_s']:8.3f} {r['tokens_per_s']:9.1f} "
              f"{speed:>10} {r['other_load']:6.2f} {recompiles!s:>10}")  # fmt: skip
    same = group["kerasbert_vs_torch_ids"]
    if "torch" in group["summary"]["tokens_per_s"]:
        words = "identical" if same is None else f"first differ at (row, step) {same}"
        print(f"kerasbert's ids vs torch's (same weights): {words}")
    print(
        "kb speedup = kerasbert tokens/s / the candidate's; other = cores other processes "
        "used meanwhile"
    )


# -- the step against the prefix length -----------------------------------------------------------


def kerasbert_step(builder, batch, prefix, args, state):
    from kerasbert.models import IncrementalModel

    def build():
        step = state.get("step")
        if step is None:  # one cache size for every prefix: one compiled step per batch
            step = state["step"] = IncrementalModel(builder, max_length=args.positions)
        ids = np.random.default_rng(prefix).integers(1, args.vocab, size=(batch, prefix + 1))
        _, cache = step(ids[:, :prefix])
        new = ids[:, prefix:].astype("int32")
        out = {"cache": cache}

        def run():  # a step takes over its cache: each continues from the last one's
            out["logits"], cache = step(new, None, out["cache"])
            cache["length"] = prefix  # the same position again: the same prefix each time
            out["cache"] = cache

        info = {"method": f"IncrementalModel step, {args.positions}-position cache"}
        return run, lambda: out["logits"], info

    return build


def torch_step(model, batch, prefix, args):
    def build():
        if model is None:
            raise NotInstalled("transformers / torch")
        import torch

        ids = torch.from_numpy(
            np.random.default_rng(prefix).integers(1, args.vocab, size=(batch, prefix + 1))
        )
        with torch.inference_mode():
            cache = model(input_ids=ids[:, :prefix], use_cache=True).past_key_values
        new = ids[:, prefix:]
        positions = torch.full((batch, 1), prefix)
        out = {}

        def run():
            with torch.inference_mode():
                logits = model(
                    input_ids=new, past_key_values=cache, position_ids=positions, use_cache=True
                ).logits
            cache.crop(prefix)
            out["logits"] = logits

        info = {"method": "GPT2LMHeadModel(next ids, past_key_values), cache cropped back"}
        return run, lambda: out["logits"].numpy(), info

    return build


def matmuls_step(batch, prefix, args):
    """The step's matrix products alone, jitted (see the module docstring)."""

    def build():
        import jax
        import jax.numpy as jnp

        rng = np.random.default_rng(args.seed)
        size = args.hidden // args.heads

        def weight(*shape):
            w = rng.standard_normal(shape).astype("float32") / np.sqrt(shape[0])
            return jnp.asarray(w)

        layers = [
            {"qkv": weight(args.hidden, 3 * args.hidden), "o": weight(args.hidden, args.hidden),
             "up": weight(args.hidden, args.intermediate),
             "down": weight(args.intermediate, args.hidden),
             "k": jnp.asarray(rng.standard_normal((batch, args.heads, prefix, size)), "float32"),
             "v": jnp.asarray(rng.standard_normal((batch, args.heads, prefix, size)), "float32")}
            for _ in range(args.layers)
        ]  # fmt: skip
        table = weight(args.vocab, args.hidden)
        x = jnp.asarray(rng.standard_normal((batch, args.hidden)), "float32")

        @jax.jit
        def step(x, layers, table):
            for w in layers:
                q = (x @ w["qkv"])[:, : args.hidden].reshape(batch, args.heads, 1, size)
                scores = q @ w["k"].transpose(0, 1, 3, 2)
                context = (scores @ w["v"]).reshape(batch, args.hidden)
                x = context @ w["o"]
                x = (x @ w["up"]) @ w["down"]
            return x @ table.T

        out = {}

        def run():
            out["logits"] = step(x, layers, table).block_until_ready()

        return run, lambda: np.asarray(out["logits"]), {"method": "jax.jit of the matmuls"}

    return build


def run_steps(args, model, builder):
    curves = []
    for batch in args.batch_sizes:
        state = {}
        for prefix in args.prefix_lengths:
            candidates = [(STEP_CACHE, kerasbert_step(builder, batch, prefix, args, state))]
            if args.peers in ("all", "torch"):
                candidates.append(("torch", torch_step(model, batch, prefix, args)))
            candidates.append((MATMULS_ONLY, matmuls_step(batch, prefix, args)))

            def check(out, batch=batch):
                out = np.asarray(out).reshape(batch, -1)
                if out.shape[1] != args.vocab or not np.isfinite(out).all():
                    raise RuntimeError(f"step output {out.shape}, not finite or not the vocab")

            print(f"\n#### one decoding step: batch {batch}, after a {prefix}-token prefix",
                  flush=True)  # fmt: skip
            step_args = argparse.Namespace(**{**vars(args), "repeats": args.step_repeats,
                                              "warmup": max(args.warmup, 3)})  # fmt: skip
            results = measure(candidates, step_args, check)
            curves.append({"batch": batch, "prefix": prefix, "results": results})
        if "step" in state:
            print(f"kerasbert step compilations at batch {batch}: "
                  f"{state['step'].num_compilations} (the prefill widths and width 1)")  # fmt: skip
    print_steps(curves, args)
    return curves


def print_steps(curves, args):
    names = [STEP_CACHE, "torch", MATMULS_ONLY]
    print("\n== per-step milliseconds (median) against the prefix length")
    for batch in args.batch_sizes:
        print(f"batch {batch}: " + "  ".join(f"{n:>28}" for n in names) + "   other")
        for c in (c for c in curves if c["batch"] == batch):
            ok = {r["name"]: r for r in c["results"] if r["status"] == "ok"}
            cells = [f"{ok[n]['median_s'] * 1e3:28.2f}" if n in ok else f"{'-':>28}"
                     for n in names]  # fmt: skip
            load = max((r["other_load"] for r in ok.values()), default=0.0)
            print(f"  prefix {c['prefix']:>4} " + "  ".join(cells) + f"   {load:.2f}")


def flatness(curves, name, batch):
    """Slowest / fastest median step time over the prefixes (1.0: perfectly flat)."""
    times = [r["median_s"] for c in curves if c["batch"] == batch for r in c["results"]
             if r["name"] == name and r["status"] == "ok"]  # fmt: skip
    return max(times) / min(times) if len(times) > 1 else None


def main(argv=None):
    args = parse_args(argv)
    info = machine_info()
    print_machine(info)
    counter = CompileCounter()
    print(f"== workload: GPT-2 {args.layers} layers, {args.hidden} hidden, {args.heads} heads, "
          f"intermediate {args.intermediate}, vocab {args.vocab}, {args.positions} positions, "
          "random weights", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        model, builder = build_models(args, folder)
    generation = run_generation(args, model, builder, counter)
    curves = run_steps(args, model, builder)
    flat = {}
    for batch in args.batch_sizes:
        names = (STEP_CACHE, "torch", MATMULS_ONLY)
        flat[batch] = {n: flatness(curves, n, batch) for n in names}
        words = ", ".join(f"{n} {v:.2f}" for n, v in flat[batch].items() if v is not None)
        print(f"step time slowest/fastest over the prefixes, batch {batch}: {words}")
    for group in generation:
        s = group["summary"]
        if "kb_over_torch" in s:
            verdict = "met" if s["kb_over_torch"] >= TARGET_SPEEDUP else "NOT met"
            print(f"batch {group['batch']}: kerasbert / torch tokens/s = {s['kb_over_torch']:.2f}x "
                  f"(target {TARGET_SPEEDUP}x: {verdict})")  # fmt: skip
    write_json(
        args.json,
        {
            "what": f"GPT-2 ({args.layers} layers, {args.hidden} hidden, vocab {args.vocab}), "
            f"random weights: greedy, {args.prompt_len}-token prompts, {args.new_tokens} new "
            "tokens",
            "args": {k: v for k, v in vars(args).items() if k != "json"},
            "machine": info,
            "generation": generation,
            "steps": curves,
            "flatness": {str(k): v for k, v in flat.items()},
            "quiet_min_call_s": QUIET_MIN_CALL_S,
            "target_speedup": TARGET_SPEEDUP,
            "median_other_load": statistics.median(
                [r["other_load"] for g in generation for r in g["results"] if "other_load" in r]
                or [0.0]
            ),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
