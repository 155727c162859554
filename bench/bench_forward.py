"""Forward-inference benchmark: kerasbert vs keras-hub (JAX) and HF transformers (torch).

Times the encoder forward pass (random weights, BERT-base shape by default: 12 layers,
768 hidden, 12 heads, intermediate 3072, vocab 21128, batch 8 x 128 tokens) of each family
in ``--families`` (bert, albert, nezha, roformer, roformer_v2, electra) at each shape in
``--shapes``, and reports the
median seconds per batch and the achieved GFLOP/s as a fraction of the machine's dense
float32 matmul peak, measured with ``jax.jit`` in the same process.

Candidates, per family (bench/peers.py builds them):

* ``kerasbert`` -- ``kerasbert.build_transformer_model(config, model=family)`` on JAX ("not
  available" where this kerasbert has no such model).
* ``kerasbert[no rotary]`` (roformer, roformer_v2) -- the same model with the rotation of
  queries and keys disabled (bench/peers.py ``build_kerasbert_no_rotary``): the difference
  is what the rotary embedding costs (``--no-rotary-ablation`` skips it).
* ``kerasbert[gelu_tanh]`` -- the same with the tanh GELU that keras-hub uses (timed only
  when keras-hub is timed and kerasbert's activation is not already keras-hub's).
* ``keras-hub`` -- ``keras_hub.models.BertBackbone`` / ``AlbertBackbone`` /
  ``RoformerV2Backbone`` / ``ElectraBackbone`` on JAX (keras-hub has no NEZHA and no
  RoFormer v1).
* ``torch`` -- ``transformers.BertModel`` / ``AlbertModel`` / ``NezhaModel`` /
  ``RoFormerModel`` / ``ElectraModel`` (no pooler) on PyTorch, CPU, eval mode (HF has no
  RoFormer v2).
* ``xla matmuls only`` (float32) -- the encoder's matmuls and nothing else, compiled by XLA
  (bench/matmul_bound.py): the floor under any JAX model of the same math.

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
    /work/venvs/bench/bin/python bench/bench_forward.py --families bert,albert,nezha \\
        --shapes 8x128,2x512
    /work/venvs/bench/bin/python bench/bench_forward.py \\
        --families roformer,roformer_v2,electra --shapes 8x128,2x512   # issue 18's families
    /work/venvs/bench/bin/python bench/bench_forward.py --peers none --layers 2 \\
        --hidden 128 --heads 2 --intermediate 512 --repeats 5   # quick smoke
    /work/venvs/bench/bin/python bench/bench_forward.py --json results.json
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
from peers import parse_suite_args, run_suite, torch_autocast  # noqa: E402


def parse_args(argv=None):
    _, args = parse_suite_args(
        argv,
        "Forward-inference benchmark of kerasbert against keras-hub and HF torch.",
        repeats=20,
        warmup=3,
        forward=True,
    )
    return args


def jax_forward_runner(model, inputs, pick, info):
    """A blocking call of ``jax.jit(model.stateless_call)`` on device-resident inputs.

    The variables are arguments of the compiled function, not constants baked into it.
    """
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def forward(trainable, non_trainable, inputs):
        outputs, _ = model.stateless_call(trainable, non_trainable, inputs, training=False)
        sequence = pick(outputs) if pick is not None else outputs
        return sequence.astype("float32")  # a no-op in float32; bfloat16 under mixed

    inputs = jax.device_put(inputs)
    state = {}

    def run():
        state["out"] = forward(trainable, non_trainable, inputs).block_until_ready()

    def output():
        return np.asarray(state["out"])

    return run, output, {**info, "method": "jax.jit(stateless_call)"}


def torch_forward_runner(model, inputs, info):
    """Eager ``model(**inputs)`` in ``eval()`` mode under ``torch.inference_mode()``."""
    import torch

    model.eval()
    state = {}

    def run():
        with torch.inference_mode(), torch_autocast(info):
            state["out"] = model(**inputs).last_hidden_state

    def output():
        return state["out"].float().numpy()

    method = f"eager, inference_mode, {info['threads']} threads"
    return run, output, {**info, "method": method}


def main(argv=None):
    args = parse_args(argv)

    def check(out, batch, seq_len):
        expected = (batch, seq_len, args.hidden)
        if out.shape != expected:
            raise RuntimeError(f"output shape {out.shape}, expected {expected}")
        if not np.all(np.isfinite(out)):
            raise RuntimeError("output has non-finite values")

    run_suite(
        args,
        "forward inference",
        jax_forward_runner,
        torch_forward_runner,
        check,
        matmul_bound=True,
        rotary_ablation=args.rotary_ablation,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
