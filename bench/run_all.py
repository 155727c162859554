"""Run every benchmark in sequence and write BENCHMARKS.md at the repository root.

Order: forward inference, training step, sentence encoding, tokenizer, checkpoint loading,
cached generation.
Each runs as its own process with this interpreter (so: the bench venv), its output shown
as it comes and kept, with its JSON, in ``--results`` (default ``build/bench``, ignored by
git). BENCHMARKS.md then holds the machine (CPU model, cores, RAM), package versions, the
date, each benchmark's tables, and the ratios the performance targets are about:

* forward inference and training step at least 1.1x keras-hub (same run, same shapes);
* BERT-base inference at 128 tokens at least 85 % of the measured float32 matmul peak;
* sentence encoding at least 1.5x sentence-transformers;
* no XLA recompilation after warm-up;
* RoFormer, RoFormer v2 and ELECTRA (issue 18): float32 forward within 5 % of XLA's
  matmuls alone, forward and training step never slower than keras-hub (RoFormer v2,
  ELECTRA), the rotary embedding under 3 % of the forward at 512 tokens (RoFormer v1, v2);
* GPT-2-small cached greedy generation (issue 19) at least 1.5x HF torch's tokens/s, no
  recompilation after warm-up, per-token cost flat in the prefix length.

A full run should take about 45 minutes on the project's 2-core machine, plus the bf16
variants (bench/README.md has the breakdown). Run it on a quiet machine: every script waits
for one and records how busy the machine was, and BENCHMARKS.md warns when it was not quiet.

    /work/venvs/bench/bin/python bench/run_all.py
    /work/venvs/bench/bin/python bench/run_all.py --only forward,encode
    /work/venvs/bench/bin/python bench/run_all.py --only forward,train \
        --families roformer,roformer_v2,electra --results build/bench/issue18 \
        --out build/bench/issue18/BENCHMARKS.md   # only issue 18's families
    /work/venvs/bench/bin/python bench/run_all.py --smoke   # ~6 min, report in build/bench/
    /work/venvs/bench/bin/python bench/run_all.py --report-only   # rewrite from build/bench/
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from common import QUIET_LOAD, QUIET_MIN_CALL_S, machine_info  # noqa: E402

FAMILIES = "bert,albert,nezha,roformer,roformer_v2,electra"
SHAPES = "8x128,2x512"
BF16 = ["--dtype-policy", "mixed_bfloat16"]
# The rotary target is a float32 one: the bf16 forward skips kerasbert[no rotary].
NO_ABLATION = "--no-rotary-ablation"
TINY = shlex.split(
    "--layers 2 --hidden 64 --heads 2 --intermediate 128 --vocab 500 "
    "--shapes 2x16,1x32 --matmul-sizes 128,256 --wait-idle 0"
)
# name -> (script, full-run arguments, smoke arguments, writes --json)
BENCHMARKS = {
    "forward": (
        "bench_forward.py",
        ["--families", FAMILIES, "--shapes", SHAPES, "--repeats", "12", "--warmup", "3"],
        ["--families", FAMILIES, *TINY, "--repeats", "2", "--warmup", "2"],
        True,
    ),
    "train": (
        "bench_train.py",
        ["--families", FAMILIES, "--shapes", SHAPES, "--repeats", "5", "--warmup", "2"],
        ["--families", FAMILIES, *TINY, "--repeats", "2", "--warmup", "2"],
        True,
    ),
    # The same under Keras's mixed_bfloat16 policy (torch: autocast to bfloat16), where
    # kerasbert's float32-accumulating bfloat16 matmuls use the CPU's bf16 units.
    "forward-bf16": (
        "bench_forward.py",
        [
            "--families",
            FAMILIES,
            "--shapes",
            SHAPES,
            "--repeats",
            "12",
            "--warmup",
            "3",
            *BF16,
            NO_ABLATION,
        ],
        ["--families", FAMILIES, *TINY, "--repeats", "2", "--warmup", "2", *BF16, NO_ABLATION],
        True,
    ),
    "train-bf16": (
        "bench_train.py",
        ["--families", "bert,albert", "--shapes", SHAPES, "--repeats", "5", "--warmup", "2", *BF16],
        ["--families", "bert,albert", *TINY, "--repeats", "2", "--warmup", "2", *BF16],
        True,
    ),
    "encode": (
        "bench_encode.py",
        ["--sentences", "10000", "--warm-passes", "1"],
        ["--sentences", "200", "--max-words", "30", "--wait-idle", "0"],
        True,
    ),
    "tokenizer": (
        "bench_tokenizer.py",
        ["--vocab", "tests/data/zh_vocab.txt"],
        ["--vocab", "tests/data/zh_vocab.txt", "--chars", "20000", "--repeats", "1"],
        False,
    ),
    "load": ("bench_load.py", ["--no-crc"], [], True),
    "generate": (
        "bench_generate.py",
        [],
        shlex.split(
            "--layers 2 --hidden 64 --heads 2 --intermediate 128 --vocab 500 --positions 128 "
            "--prompt-len 8 --new-tokens 8 --prefixes 8,32 --batches 1,2 --wait-idle 0 "
            "--repeats 2 --step-repeats 3"
        ),
        True,
    ),
    # Issue 19: T5-base v1.1 summarization-shaped generation (bench_generate_t5.py).
    "generate-t5": (
        "bench_generate_t5.py",
        ["--repeats", "5"],
        shlex.split(
            "--layers 2 --hidden 64 --heads 2 --d-kv 32 --d-ff 128 --vocab 500 --source-len 64 "
            "--new-tokens 8 --curve-tokens 32 --repeats 2 --wait-idle 0"
        ),
        True,
    ),
}
TARGET_SPEEDUP = 1.1
TARGET_PEAK = 0.85
TARGET_ENCODE = 1.5
# Issue 18's targets for its families: float32 forward within 5 % of XLA's matmuls alone;
# never slower than keras-hub (where keras-hub has the family); rotary < 3 % at 512 tokens.
NEW_FAMILIES = ("roformer", "roformer_v2", "electra")
TARGET_FLOOR = 1.05
TARGET_NOT_SLOWER = 1.0
TARGET_ROTARY = 0.03
ROTARY_TOKENS = 512
# Issue 19: cached GPT-2 generation at least 1.5x HF torch's tokens/s; the per-token cost
# flat in the prefix length, read as: the slowest step over the prefixes at most 10 % slower
# than the fastest.
TARGET_GENERATE = 1.5
TARGET_FLAT = 1.10


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the scripts run")
    p.add_argument(
        "--families",
        help="comma-separated families for the forward and training benchmarks (all four "
        f"variants), instead of their defaults ({FAMILIES}; bert,albert for train-bf16)",
    )
    p.add_argument(
        "--out",
        help="the report (default: BENCHMARKS.md at the repository root; with --smoke, "
        "BENCHMARKS.md in --results, so that a smoke report is never committed by mistake)",
    )
    p.add_argument("--results", default=os.path.join(ROOT, "build", "bench"))
    p.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rewrite --out from the logs and JSON of the last run in --results",
    )
    args = p.parse_args(argv)
    args.out_given = args.out is not None
    if args.out is None:
        args.out = os.path.join(args.results if args.smoke else ROOT, "BENCHMARKS.md")
    args.names = [n.strip() for n in (args.only or ",".join(BENCHMARKS)).split(",") if n.strip()]
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; choose among {list(BENCHMARKS)}")
    return args


def run_one(name, args):
    """Run one benchmark script; returns its record (command, seconds, exit code, log)."""
    script, full, smoke, writes_json = BENCHMARKS[name]
    arguments = list(smoke if args.smoke else full)
    if args.families and "--families" in arguments:
        arguments[arguments.index("--families") + 1] = args.families
    command = [sys.executable, os.path.join("bench", script), *arguments]
    json_path = os.path.join(args.results, f"{name}.json")
    if writes_json:
        command += ["--json", json_path]
        if os.path.exists(json_path):
            os.remove(json_path)
    log_path = os.path.join(args.results, f"{name}.log")
    shown = " ".join(
        "python" if c == sys.executable else os.path.relpath(c, ROOT) if c == json_path else c
        for c in command
    )
    print(f"\n######## {name}: {shown}", flush=True)
    start = time.perf_counter()
    lines = []
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    seconds = time.perf_counter() - start
    with open(log_path, "w", encoding="utf-8") as fh:
        fh.writelines(lines)
    record = {"command": shown, "seconds": seconds, "returncode": proc.returncode, "log": lines}
    if writes_json and proc.returncode == 0 and os.path.exists(json_path):
        with open(json_path, encoding="utf-8") as fh:
            record["data"] = json.load(fh)
    print(f"######## {name}: exit {proc.returncode}, {seconds / 60:.1f} min", flush=True)
    return record


# -- markdown ---------------------------------------------------------------------------------


def md_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def verdict(ok):
    return "met" if ok else "**not met**"


def machine_section(info, records, started, smoke):
    ram = info["memory_gib"]
    total = sum(r["seconds"] for r in records.values())
    out = [
        "# Benchmarks",
        "",
        f"Generated by `python bench/run_all.py{' --smoke' if smoke else ''}` on "
        f"{started} in {total / 60:.1f} min. How each number is measured: "
        "[bench/README.md](bench/README.md).",
        "",
    ]
    if smoke:
        out += ["**SMOKE RUN: tiny models, numbers meaningless.**", ""]
    out += [
        "## Machine",
        "",
        md_table(
            ["CPU", "logical cores", "RAM", "platform", "Python"],
            [
                [
                    info["processor"],
                    info["cpu_count"],
                    f"{ram:.1f} GiB" if ram else "?",
                    info["platform"],
                    info["python"],
                ]
            ],
        ),
        "",
        md_table(["package", "version"], sorted(info["versions"].items())),
        "",
    ]
    return out


def other_cell(r):
    """Other processes' load during a candidate's calls ('-' where calls are too short)."""
    return f"{r['other_load']:.2f}" if r["median_s"] >= QUIET_MIN_CALL_S else "-"


def busiest(groups):
    loads = [
        r["other_load"]
        for g in groups
        for r in g["results"]
        if r["status"] == "ok" and r["median_s"] >= QUIET_MIN_CALL_S
    ]
    return max(loads, default=0.0)


ACTIVATION_WORDS = {"gelu_erf": "erf GELU", "gelu_tanh": "tanh GELU", "relu": "ReLU"}


def activation_words(group, name):
    """The activation of candidate ``name`` in ``group``, in words ("erf GELU")."""
    for r in group["results"]:
        if r["name"] == name and "activation" in r:
            return ACTIVATION_WORDS.get(r["activation"], r["activation"])
    return "?"


def has_twin(summary):
    """Whether the group timed kerasbert with keras-hub's activation (older JSON: by name)."""
    return "same_act_twin" in summary or "kerasbert[gelu_tanh]" in summary["medians_s"]


def suite_targets(data, label):
    """Target rows for the forward / training ratios against keras-hub."""
    rows = []
    for g in data["groups"]:
        s = g["summary"]
        shape = f"{g['family']} {g['batch']}x{g['seq_len']}"
        if "hub_over_kb" in s:
            cases = [("hub_over_kb", f"kerasbert default ({activation_words(g, 'kerasbert')})")]
            if has_twin(s):
                hub = activation_words(g, "keras-hub")
                cases.append(("hub_over_kb_same_act", f"kerasbert with keras-hub's {hub}"))
            for key, act in cases:
                value = s[key]
                rows.append(
                    [f"{label} >= {TARGET_SPEEDUP}x keras-hub", f"{shape}, {act}",
                     fmt_ratio(value), verdict(value >= TARGET_SPEEDUP)]
                )  # fmt: skip
        if "hub_over_matmuls" in s:
            rows.append(
                ["(bound) keras-hub / XLA's matmuls alone", f"{shape}, the most any JAX "
                 "float32 model could reach", fmt_ratio(s["hub_over_matmuls"]), "-"]
            )  # fmt: skip
    return rows


def new_family_targets(data, label, forward):
    """Issue 18's target rows for RoFormer, RoFormer v2 and ELECTRA: never slower than
    keras-hub; with ``forward`` (float32) also within 5 % of the matmul floor and the rotary
    embedding's share of the forward (the target is at 512 tokens; other shapes are shown)."""
    rows = []
    for g in data["groups"]:
        if g["family"] not in NEW_FAMILIES:
            continue
        s = g["summary"]
        shape = f"{g['family']} {g['batch']}x{g['seq_len']}"
        kb = next(r for r in g["results"] if r["name"] == "kerasbert")
        if kb["status"] != "ok":
            rows.append(
                [f"{label}: kerasbert builds model={g['family']!r}", shape, kb["status"],
                 "**not met**"]
            )  # fmt: skip
            continue
        if "hub_over_kb" in s:
            value, same = s["hub_over_kb"], s["hub_over_kb_same_act"]
            measured = fmt_ratio(value)
            if has_twin(s):
                hub = activation_words(g, "keras-hub")
                measured += f" ({fmt_ratio(same)} with keras-hub's {hub})"
            rows.append(
                [f"{label} never slower than keras-hub",
                 f"{shape}, kerasbert default ({activation_words(g, 'kerasbert')})", measured,
                 verdict(value >= TARGET_NOT_SLOWER)]
            )  # fmt: skip
        if forward and "kb_over_matmuls" in s:
            value = s["kb_over_matmuls"]
            rows.append(
                [f"float32 forward within {TARGET_FLOOR - 1:.0%} of XLA's matmuls alone",
                 f"{shape}, kerasbert / xla matmuls only", fmt_ratio(value),
                 verdict(value <= TARGET_FLOOR)]
            )  # fmt: skip
        if forward and "rotary_cost" in s:
            value, paired = s["rotary_cost"], s.get("rotary_cost_paired")
            measured = f"{value:+.1%}"
            if paired is not None:
                measured += f" (per round {paired:+.1%})"
            at_target = g["seq_len"] == ROTARY_TOKENS
            rows.append(
                [f"rotary embedding < {TARGET_ROTARY:.0%} of the forward at {ROTARY_TOKENS} "
                 "tokens", f"{shape}, kerasbert / kerasbert[no rotary] - 1", measured,
                 verdict(value < TARGET_ROTARY) if at_target else "-"]
            )  # fmt: skip
    return rows


def targets_section(records):
    rows = []
    forward = records.get("forward", {}).get("data")
    train = records.get("train", {}).get("data")
    encode = records.get("encode", {}).get("data")
    if forward:
        rows += new_family_targets(forward, "forward", forward=True)
    if train:
        rows += new_family_targets(train, "training step", forward=False)
    if forward:
        rows += suite_targets(forward, "forward")
        for g in forward["groups"]:
            share = g["summary"].get("kerasbert_fraction_of_peak")
            if g["family"] == "bert" and g["seq_len"] == 128 and share is not None:
                rows.append(
                    [f"BERT-base inference >= {TARGET_PEAK:.0%} of matmul peak",
                     f"bert {g['batch']}x128, kerasbert default",
                     f"{share:.1%} of {forward['matmul_peak_gflops']:.0f} GFLOP/s",
                     verdict(share >= TARGET_PEAK)]
                )  # fmt: skip
                bound = g["summary"].get("matmuls_fraction_of_peak")
                if bound is not None:
                    rows.append(
                        ["(bound) XLA running BERT-base's matmuls alone", f"bert {g['batch']}x128",
                         f"{bound:.1%} of the same peak", "-"]
                    )  # fmt: skip
    if train:
        rows += suite_targets(train, "training step")
    for name, label in (("forward-bf16", "forward, bf16"), ("train-bf16", "training, bf16")):
        data = records.get(name, {}).get("data")
        if data:
            rows += suite_targets(data, label)
    if encode:
        kb = encode["results"]["kerasbert"]
        if "speedup_warm" in kb:
            rows.append(
                [f"encoding >= {TARGET_ENCODE}x sentence-transformers",
                 f"{encode['sentences']} sentences, warm pass", fmt_ratio(kb["speedup_warm"]),
                 verdict(kb["speedup_warm"] >= TARGET_ENCODE)]
            )  # fmt: skip
            rows.append(
                ["(same, first pass incl. compilation)", "cold pass",
                 fmt_ratio(kb["speedup_cold"]), "-"]
            )  # fmt: skip
            bound = encode.get("matmul_bound") or {}
            if "st_over_bound" in bound:
                rows.append(
                    ["(bound) sentence-transformers / XLA's matmuls alone",
                     "least-padded schedule, the most any JAX float32 encoder could reach",
                     fmt_ratio(bound["st_over_bound"]), "-"]
                )  # fmt: skip
        recompiles = kb["recompilations_after_warmup"]
        rows.append(
            ["recompilations after warm-up = 0", "SentenceEncoder, warm passes",
             str(recompiles), verdict(recompiles == 0)]
        )  # fmt: skip
        cosine = encode.get("cosine")
        if cosine:
            rows.append(
                [f"cosine agreement > {cosine['target']}", "kerasbert vs sentence-transformers",
                 f"min {cosine['min']:.6f}", verdict(cosine["below_target"] == 0)]
            )  # fmt: skip
    generate = records.get("generate", {}).get("data")
    if generate:
        rows += generate_targets(generate)
    t5_generate = records.get("generate-t5", {}).get("data")
    if t5_generate:
        rows += t5_generate_report().target_rows(t5_generate)
    if not rows:
        return []
    out = ["## Targets", "", md_table(["target", "case", "measured", "status"], rows), ""]
    out += [
        "Ratios are peer median time / kerasbert median time, measured in the same process "
        "and run (> 1: kerasbert is faster).",
        "",
    ]
    return out


def generate_targets(data):
    """Issue 19's rows: tokens/s against HF torch, recompilations, the flat step curve."""
    rows = []
    shape = f"{data['args']['prompt_len']} + {data['args']['new_tokens']} tokens"
    for g in data["generation"]:
        s = g["summary"]
        busy = max((r["other_load"] for r in g["results"] if r["status"] == "ok"), default=0)
        # HF torch's threads collapse when other processes hold cores: say so, and show
        # the one-thread ratio, which that load does not distort.
        note = f" (busy machine: others used {busy:.2f} cores)" if busy > QUIET_LOAD else ""
        if "kb_over_torch" in s:
            rows.append(
                [f"GPT-2 greedy generation >= {TARGET_GENERATE}x HF torch tokens/s",
                 f"batch {g['batch']}, {shape}", fmt_ratio(s["kb_over_torch"]),
                 verdict(s["kb_over_torch"] >= TARGET_GENERATE) + note]
            )  # fmt: skip
        if "kb_over_torch[1 thread]" in s:
            rows.append(
                ["(reference) the same against HF torch at 1 thread", f"batch {g['batch']}",
                 fmt_ratio(s["kb_over_torch[1 thread]"]), "-"]
            )  # fmt: skip
        kb = next(r for r in g["results"] if r["name"] == "kerasbert")
        if "recompilations_after_warmup" in kb:
            value = kb["recompilations_after_warmup"]
            rows.append(
                ["generation: recompilations after warm-up = 0", f"batch {g['batch']}",
                 str(value), verdict(value == 0)]
            )  # fmt: skip
    for batch, flat in data["flatness"].items():
        value = flat.get("kerasbert")
        if value is not None:
            prefixes = ", ".join(str(p) for p in data["args"]["prefix_lengths"])
            rows.append(
                [f"per-token cost flat in the prefix (slowest / fastest <= {TARGET_FLAT})",
                 f"batch {batch}, prefixes {prefixes}", f"{value:.2f}",
                 verdict(value <= TARGET_FLAT)]
            )  # fmt: skip
    return rows


def generate_section(record):
    data = record["data"]
    args = data["args"]
    out = ["## Cached generation (GPT-2 small, greedy)", ""]
    out += [f"`{record['command']}` ({record['seconds'] / 60:.1f} min)", ""]
    out += [f"Workload: {data['what']}. Random weights, shared by kerasbert and torch.", ""]
    rows = []
    for g in data["generation"]:
        for r in g["results"]:
            if r["status"] != "ok":
                rows.append([g["batch"], r["name"], r["status"], *["-"] * 5])
                continue
            ratio = g["summary"]["tokens_per_s"].get("kerasbert", 0) / r["tokens_per_s"]
            rows.append(
                [g["batch"], r["name"], f"{r['median_s']:.3f}", f"{r['min_s']:.3f}",
                 f"{r['tokens_per_s']:.1f}", "base" if r["name"] == "kerasbert" else
                 f"{ratio:.2f}x", f"{r['other_load']:.2f}",
                 r.get("recompilations_after_warmup", "-")]
            )  # fmt: skip
    headers = ["batch", "candidate", "median s", "min s", "tokens/s", "kb speedup", "other",
               "recompilations after warm-up"]  # fmt: skip
    out += [md_table(headers, rows), ""]
    for g in data["generation"]:
        same = g.get("kerasbert_vs_torch_ids")
        if "torch" in g["summary"]["tokens_per_s"]:
            words = "identical" if same is None else f"first differ at (row, step) {same}"
            out += [f"Batch {g['batch']}: kerasbert's ids vs torch's: {words}.", ""]
    names = ["kerasbert", "torch", "xla matmuls only"]
    rows = []
    for c in data["steps"]:
        ok = {r["name"]: r for r in c["results"] if r["status"] == "ok"}
        cells = [f"{ok[n]['median_s'] * 1e3:.2f}" if n in ok else "-" for n in names]
        load = max((r["other_load"] for r in ok.values()), default=0.0)
        rows.append([c["batch"], c["prefix"], *cells, f"{load:.2f}"])
    out += [
        f"One decoding step (ms, median) after a cached prefix; kerasbert's cache has "
        f"{args['positions']} positions:",
        "",
        md_table(["batch", "prefix", *[f"{n} ms" for n in names], "other"], rows),
        "",
    ]
    return out


def t5_generate_report():
    """bench_generate_t5.py, whose report functions import nothing heavy."""
    import bench_generate_t5

    return bench_generate_t5


def suite_section(title, record):
    data = record["data"]
    out = [f"## {title}", "", f"`{record['command']}` ({record['seconds'] / 60:.1f} min)", ""]
    out += [
        f"Workload: {data['what']}. Matmul peak (jax float32, best of before/after): "
        f"{data['matmul_peak_gflops']:.1f} GFLOP/s.",
        "",
    ]
    load = busiest(data["groups"])
    if load > QUIET_LOAD:
        out += [
            f"**Warning: other processes used up to {load:.2f} cores during some timed calls; "
            "compare quiet medians.**",
            "",
        ]
    unit = data["unit"]
    summary = []
    for g in data["groups"]:
        s = g["summary"]
        kb = s["medians_s"].get("kerasbert")
        share = s.get("kerasbert_fraction_of_peak")
        summary.append(
            [
                g["family"],
                f"{g['batch']}x{g['seq_len']}",
                f"{kb:.4f}" if kb is not None else "-",
                f"{share:.1%}" if share is not None else "-",
                fmt_ratio(s.get("hub_over_kb")),
                fmt_ratio(s.get("hub_over_kb_same_act")),
                fmt_ratio(s.get("torch_over_kb")),
            ]
        )
        if "matmuls_fraction_of_peak" in s:
            summary[-1] += [
                f"{s['matmuls_fraction_of_peak']:.1%}",
                fmt_ratio(s.get("hub_over_matmuls")),
                fmt_ratio(s.get("kb_over_matmuls")),
            ]
    headers = [
        "family",
        "shape",
        f"kerasbert s/{unit}",
        "% peak",
        "keras-hub / kb",
        "keras-hub / kb[gelu_tanh]",
        "torch / kb",
    ]
    if any("matmuls_fraction_of_peak" in g["summary"] for g in data["groups"]):
        headers += ["matmuls only, % peak", "keras-hub / matmuls only", "kb / matmuls only"]
        summary = [row + ["-"] * 3 if len(row) < len(headers) else row for row in summary]
    if any("rotary_cost" in g["summary"] for g in data["groups"]):
        headers.append("rotary cost (kb / kb[no rotary] - 1)")
        for row, g in zip(summary, data["groups"]):
            cost = g["summary"].get("rotary_cost")
            row.append(f"{cost:+.1%}" if cost is not None else "-")
    out += [md_table(headers, summary), ""]
    for g in data["groups"]:
        out += [
            f"### {g['family']}, {g['batch']} x {g['seq_len']} tokens "
            f"({g['flops'] / 1e9:.1f} GFLOP per {unit})",
            "",
        ]
        rows = []
        for r in g["results"]:
            if r["status"] != "ok":
                rows.append([r["name"], r["status"], *["-"] * 6])
                continue
            quiet = r.get("quiet_median_s")
            rows.append(
                [
                    r["name"] + (f" (warning: {r['warning']})" if "warning" in r else ""),
                    f"{r['median_s']:.4f}",
                    f"{r['min_s']:.4f}",
                    f"{r['gflops']:.1f}",
                    f"{r['fraction_of_peak']:.1%}",
                    fmt_ratio(r.get("kerasbert_speedup")) if r["name"] != "kerasbert" else "base",
                    other_cell(r),
                    f"{quiet:.4f} ({r['quiet_calls']})" if quiet is not None else "-",
                ]
            )
        out += [
            md_table(
                [
                    "candidate",
                    f"median s/{unit}",
                    "min s",
                    "GFLOP/s",
                    "% peak",
                    "kb speedup",
                    "other",
                    "quiet median (n)",
                ],
                rows,
            ),
            "",
        ]
    return out


def encode_section(record):
    data = record["data"]
    out = ["## Sentence encoding (all-MiniLM-L6-v2)", ""]
    out += [f"`{record['command']}` ({record['seconds'] / 60:.1f} min)", ""]
    out += [
        f"{data['sentences']} sentences, {data['words']} words, {data['tokens']} tokens; "
        f"batch {data['args']['batch_size']}, max_seq_len {data['args']['max_seq_len']}, "
        "mean pooling, normalised. Times are whole `encode` calls, tokenization included.",
        "",
    ]
    rows = []
    for name, r in data["results"].items():
        cold, warm = r["cold"], r["warm_best"]
        rows.append(
            [
                name,
                f"{cold['seconds']:.2f}",
                f"{cold['sentences_per_s']:.1f}",
                f"{warm['seconds']:.2f}",
                f"{warm['sentences_per_s']:.1f}",
                cold["xla_compilations"],
                r["recompilations_after_warmup"],
                f"{r['tokenize_s']:.2f}",
                f"{max(cold['other_load'], warm['other_load']):.2f}",
            ]
        )
    out += [
        md_table(
            [
                "candidate",
                "cold s",
                "cold sentences/s",
                "warm s",
                "warm sentences/s",
                "XLA compilations (cold)",
                "after warm-up",
                "tokenization alone s",
                "other",
            ],
            rows,
        ),
        "",
        f"Padded shapes compiled by kerasbert: {data['padded_shapes']}.",
        "",
    ]
    cosine = data.get("cosine")
    if cosine:
        out += [
            f"Cosine similarity of the two libraries' vectors: min {cosine['min']:.7f}, mean "
            f"{cosine['mean']:.7f}; {cosine['below_target']} sentences at or below "
            f"{cosine['target']}.",
            "",
        ]
    return out


def log_section(title, record, keep):
    """A benchmark reported by its own printed table (the lines ``keep`` selects)."""
    lines = [line.rstrip("\n") for line in record["log"] if keep(line)]
    out = [f"## {title}", "", f"`{record['command']}` ({record['seconds'] / 60:.1f} min)", ""]
    return out + ["```", *lines, "```", ""]


def failed_section(name, record):
    tail = [line.rstrip("\n") for line in record["log"][-20:]]
    return [
        f"## {name}: FAILED (exit {record['returncode']})",
        "",
        "```",
        *tail,
        "```",
        "",
    ]


def not_noise(line):
    noise = ("WARNING: All log", "cuda", "E0000", "W0000", "I0000", "UserWarning")
    return line.strip() and not any(n in line for n in noise)


def write_report(args, info, records, started):
    out = machine_section(info, records, started, args.smoke)
    out += targets_section(records)
    sections = {
        "forward": lambda r: suite_section("Forward inference", r),
        "train": lambda r: suite_section("Fine-tuning step", r),
        "forward-bf16": lambda r: suite_section("Forward inference, mixed_bfloat16", r),
        "train-bf16": lambda r: suite_section("Fine-tuning step, mixed_bfloat16", r),
        "encode": encode_section,
        "tokenizer": lambda r: log_section("Tokenizer throughput", r, not_noise),
        "load": lambda r: log_section("Checkpoint loading (BERT-base, TF format)", r, not_noise),
        "generate-t5": lambda r: t5_generate_report().report_section(r),
        "generate": generate_section,
    }
    for name, record in records.items():
        wants_data = BENCHMARKS[name][3]
        if record["returncode"] != 0 or (wants_data and "data" not in record):
            out += failed_section(name, record)
        else:
            out += sections[name](record)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out).rstrip() + "\n")
    print(f"\nwrote {args.out}")


def save_run(args, info, records, started):
    """What the report needs besides the logs and JSON files, in ``--results``."""
    meta = {
        "started": started,
        "smoke": args.smoke,
        "machine": info,
        "records": {
            name: {k: v for k, v in r.items() if k not in ("log", "data")}
            for name, r in records.items()
        },
    }
    with open(os.path.join(args.results, "run_all.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1)


def load_run(args):
    """The records of the last run in ``--results`` (logs and JSON read back)."""
    with open(os.path.join(args.results, "run_all.json"), encoding="utf-8") as fh:
        meta = json.load(fh)
    records = meta["records"]
    for name, record in records.items():
        with open(os.path.join(args.results, f"{name}.log"), encoding="utf-8") as fh:
            record["log"] = fh.readlines()
        json_path = os.path.join(args.results, f"{name}.json")
        if BENCHMARKS[name][3] and record["returncode"] == 0 and os.path.exists(json_path):
            with open(json_path, encoding="utf-8") as fh:
                record["data"] = json.load(fh)
    args.smoke = meta["smoke"]
    if args.smoke and not args.out_given:  # a smoke run's report stays beside its results
        args.out = os.path.join(args.results, "BENCHMARKS.md")
    return meta["machine"], records, meta["started"]


def main(argv=None):
    args = parse_args(argv)
    if args.report_only:
        info, records, started = load_run(args)
        write_report(args, info, records, started)
        return 0
    os.makedirs(args.results, exist_ok=True)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    info = machine_info()
    records = {}
    for name in args.names:
        records[name] = run_one(name, args)
        save_run(args, info, records, started)
    write_report(args, info, records, started)
    failed = [name for name, r in records.items() if r["returncode"] != 0]
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
