"""Fine-tuning step benchmark: kerasbert vs keras-hub (JAX) and HF transformers (torch).

Times one training step -- forward with dropout active, backward, AdamW update -- of each
family in ``--families`` (bert, albert, nezha, roformer, roformer_v2, electra) at each shape
in ``--shapes``, with the same candidates (less the matmul floor and ``kerasbert[no
rotary]``, which are forward-only), sizes, inputs, interleaved timing and matmul peak as
``bench_forward.py`` (the models are built by bench/peers.py; the harness is
bench/common.py).

The loss is the mean squared error between the sequence output and a fixed random target
of the same shape (the same numbers for every candidate): a stand-in for a task head that
costs nothing beside the encoder and gives every weight of the encoder a real gradient (the
mean square of the output alone would not: after the final layer norm it is ~1 whatever the
weights).

* Keras candidates (kerasbert, kerasbert[gelu_tanh], keras-hub), all through the same
  :func:`jax_train_runner`: one ``jax.jit``-compiled step (buffers donated) that calls
  ``model.stateless_call(trainable, non_trainable, inputs, training=True)`` under
  ``jax.value_and_grad`` and applies ``keras.optimizers.AdamW`` with
  ``optimizer.stateless_apply``; the new variables (dropout seed state included) and
  optimizer state are fed to the next step.
* torch: ``model.train()``, eager forward, ``loss.backward()``,
  ``torch.optim.AdamW.step()`` (PyTorch's default implementation on CPU),
  ``zero_grad(set_to_none=True)``.

Both optimizers: learning rate 1e-5, weight decay 0.01 on every weight.

FLOPs per step are counted as 3 x the forward matmul FLOPs (backward = gradients with
respect to activations and to weights, each about one forward's matmuls); the optimizer's
elementwise work and embedding-gradient scatters are not counted.

Run (from the repository root, bench venv; see bench/README.md)::

    /work/venvs/bench/bin/python bench/bench_train.py --families bert,albert,nezha \\
        --shapes 8x128,2x512
    /work/venvs/bench/bin/python bench/bench_train.py --layers 2 --hidden 128 --heads 2 \\
        --intermediate 256 --vocab 1000 --repeats 2 --matmul-sizes 256   # quick smoke
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
from peers import parse_suite_args, run_suite, torch_autocast  # noqa: E402

LEARNING_RATE = 1e-5
WEIGHT_DECAY = 0.01


def parse_args(argv=None):
    parser, args = parse_suite_args(
        argv,
        "Training-step benchmark of kerasbert against keras-hub and HF torch.",
        repeats=5,
        warmup=2,
    )
    if args.dropout <= 0:
        parser.error("--dropout must be positive: a training step runs with dropout on")
    return args


def regression_target(batch, seq_len, hidden):
    """The fixed random ``(batch, seq_len, hidden)`` float32 target of the loss."""
    rng = np.random.default_rng(12345)
    return rng.standard_normal((batch, seq_len, hidden), dtype=np.float32)


def jax_train_runner(model, inputs, pick, info):
    """One blocking, jitted AdamW training step of a Keras model (dropout on)."""
    import functools

    import jax
    import jax.numpy as jnp
    import keras

    optimizer = keras.optimizers.AdamW(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    optimizer.build(model.trainable_variables)

    def loss_fn(trainable, non_trainable, inputs, target):
        outputs, non_trainable = model.stateless_call(
            trainable, non_trainable, inputs, training=True
        )
        sequence = pick(outputs) if pick is not None else outputs
        return jnp.mean(jnp.square(sequence.astype("float32") - target)), non_trainable

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(trainable, non_trainable, optimizer_state, inputs, target):
        (loss, non_trainable), grads = grad_fn(trainable, non_trainable, inputs, target)
        trainable, optimizer_state = optimizer.stateless_apply(optimizer_state, grads, trainable)
        return loss, trainable, non_trainable, optimizer_state

    state = {
        "trainable": [v.value for v in model.trainable_variables],
        "non_trainable": [v.value for v in model.non_trainable_variables],
        "optimizer": [v.value for v in optimizer.variables],
        "losses": [],
    }
    token_ids = inputs[0] if isinstance(inputs, list) else inputs["token_ids"]
    target = jax.device_put(regression_target(*token_ids.shape, info["hidden"]))
    inputs = jax.device_put(inputs)

    def run():
        loss, state["trainable"], state["non_trainable"], state["optimizer"] = step(
            state["trainable"], state["non_trainable"], state["optimizer"], inputs, target
        )
        state["losses"].append(float(loss))  # blocks until the step is done

    def output():
        return np.asarray(state["losses"])

    method = "jax.jit(value_and_grad(stateless_call) + AdamW.stateless_apply)"
    return run, output, {**info, "method": method}


def torch_train_runner(model, inputs, info):
    """One eager training step of a torch model: forward (dropout on), backward, AdamW."""
    import torch

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    target = torch.from_numpy(regression_target(*inputs["input_ids"].shape, info["hidden"]))
    losses = []

    def run():
        optimizer.zero_grad(set_to_none=True)
        with torch_autocast(info):
            sequence = model(**inputs).last_hidden_state
        loss = (sequence.float() - target).square().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().item())

    def output():
        return np.asarray(losses)

    method = f"eager train(), AdamW, {info['threads']} threads"
    return run, output, {**info, "method": method}


def check(losses, batch, seq_len):
    """The warm-up steps gave finite losses (an error otherwise); a warning when they are
    all equal, which updated weights and fresh dropout masks should not give."""
    if not np.all(np.isfinite(losses)):
        raise RuntimeError(f"non-finite training loss: {losses}")
    if len(losses) > 1 and np.all(losses == losses[0]):
        return f"the loss did not change over the warm-up steps: {losses.tolist()}"
    return None


def main(argv=None):
    args = parse_args(argv)
    run_suite(
        args,
        "training step (forward + backward + AdamW, dropout on); FLOPs = 3 x forward matmuls",
        jax_train_runner,
        torch_train_runner,
        check,
        flops_multiplier=3,
        unit="step",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
