"""T5 generation, summarization-shaped: a 512-token source, 64 new tokens, beam 4 and greedy.

T5-base v1.1 sizes (12 + 12 blocks, d_model 768, 12 heads of 64, gated-GELU d_ff 2048, an
untied head over 32128 ids) with **random weights**: one set, drawn here with numpy at HF's
initialisation scales (norm scales 1 + N(0, 0.1)) under HF's parameter names, written once as
an HF folder (``config.json`` + ``model.safetensors``) that every library reads:

- ``kerasbert``: ``build_transformer_model(folder, folder, model="t5.1.1",
  return_keras_model=False)`` (softmax head, bert4keras's default). Beam search:
  ``T5Generator(t5, end_id=None, maxlen=64).beam_search([source], topk=4)`` (bert4keras's
  ``AutoRegressiveDecoder`` over the cached decoder: the source encoded once, its
  cross-attention keys / values computed once, one jitted step per new id). Greedy:
  ``T5IncrementalDecoder(t5, max_length=65).greedy(sources, 64, end_id=None)``;
- ``torch``: HF ``T5ForConditionalGeneration.from_pretrained(folder)``, ``eval()``, under
  ``torch.inference_mode()``, ``generate(input_ids, attention_mask, max_new_tokens=64,
  num_beams=4 | 1, do_sample=False, eos_token_id=None, early_stopping=False,
  length_penalty=1.0)``, its cache on (``use_cache=True``, the default);
- ``keras-hub``: ``T5Seq2SeqLM(T5Backbone(..., use_gated_activation=True,
  tie_embedding_weights=False), preprocessor=None)``, compiled with
  ``BeamSampler(num_beams=4)`` or ``"greedy"``, ``generate({...}, stop_token_ids=None)``: on
  JAX its whole generation (encoder, cache seeding, the sampler's ``while_loop``) is one
  jitted program. keras-hub has no HF converter for T5, so the weights are copied in layer by
  layer (its feed-forward takes the tanh GELU of T5 1.1 as a callable; its position buckets
  are fixed at T5's 32 / 128, the sizes here).

The end id is switched off in all three (``end_id=None`` / ``eos_token_id=None`` /
``stop_token_ids=None``), so every run generates exactly 64 ids, whatever random weights
favour: the work is the same, and so are the semantics. bert4keras's beam search (kerasbert)
and HF's differ only in how they end: bert4keras returns as soon as the best-scoring beam
ends with EOS and drops the other ended beams (the beam narrows), comparing raw sums of log
probabilities; HF keeps ``num_beams`` live beams (it scores ``2 * num_beams`` candidates so
that ended ones can be set aside), ranks ended hypotheses by ``score / length **
length_penalty`` and stops per ``early_stopping``. With no EOS both keep the 4 best
continuations by summed log-probability for 64 steps and return the best, so both (and
keras-hub's ``BeamSampler``) should return the same ids; the script reports whether they
do, and how far each library's logits are from HF's on a short input.

Tokens per second count the **output** ids: ``batch * 64`` for greedy, 64 per source for
beam search (the beams' other rows are not counted). Timed calls include encoding the
source. The harness is ``common.measure`` (interleaved rounds, medians, the load other
processes put on the machine, quiet medians; bench/README.md). XLA compilations are counted
with a ``jax.monitoring`` listener around every timed call of a JAX candidate: after warm-up
there must be none.

Then the per-token cost against the target length: greedy at batch 1 for ``--curve-tokens``
(256) new ids, each step's wall time recorded (kerasbert: around
``T5IncrementalDecoder.step``; HF: a ``StoppingCriteria`` called after every new token), as
medians over windows of steps (2-16, 17-32, 33-64, 65-128, 129-256); keras-hub runs its
loop inside XLA, so its figure is the marginal cost ``(t(256) - t(64)) / 192`` of two whole
generations. And for kerasbert at 1, 4 (the beams) and 8 rows (``--no-breakdown`` skips it),
where a step's time goes: the jitted step program alone on device arrays, the rest of
``step()`` (argument padding, the host transfer of the outputs), XLA running parts of the
step's math alone (every weight matmul; the cross-attention contractions over the source's
keys and values in the cache's layout and heads-first), the time the beam search takes to
reorder the cache with the beams, and its own work per step besides ``step()`` (numpy
softmax / log / top-k over 4 x 32128 scores, the reordering).

    /work/venvs/bench/bin/python bench/bench_generate_t5.py --json build/bench/generate-t5.json
    # smoke (seconds): tiny sizes
    /work/venvs/bench/bin/python bench/bench_generate_t5.py --layers 2 --hidden 64 --heads 2 \\
        --d-kv 32 --d-ff 128 --vocab 500 --source-len 64 --new-tokens 8 --curve-tokens 32 \\
        --repeats 2 --wait-idle 0
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import (  # noqa: E402
    QUIET_LOAD,
    NotInstalled,
    add_timing_args,
    check_timing_args,
    machine_info,
    measure,
    print_machine,
    write_json,
)

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
TARGET_VS_TORCH = 1.5
WINDOWS = ((2, 16), (17, 32), (33, 64), (65, 128), (129, 256), (257, 512))


# -- the shared weights ----------------------------------------------------------------------


def hf_config(args):
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "d_model": args.hidden,
        "d_kv": args.d_kv,
        "d_ff": args.d_ff,
        "num_layers": args.layers,
        "num_decoder_layers": args.layers,
        "num_heads": args.heads,
        "vocab_size": args.vocab,
        "feed_forward_proj": "gated-gelu",
        "tie_word_embeddings": False,
        "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128,
        "dropout_rate": 0.1,
        "layer_norm_epsilon": 1e-6,
        "initializer_factor": 1.0,
        "decoder_start_token_id": 0,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "is_encoder_decoder": True,
        "use_cache": True,
    }


def random_weights(args):
    """HF T5 v1.1 parameter names -> float32 arrays, at HF's initialisation scales."""
    import numpy as np

    rng = np.random.default_rng(args.seed)
    d, kv, ff, heads, vocab = args.hidden, args.d_kv, args.d_ff, args.heads, args.vocab
    inner = heads * kv

    def normal(shape, std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype("float32")

    def norm():
        return (1.0 + normal((d,), 0.1)).astype("float32")

    weights = {
        "shared.weight": normal((vocab, d), 1.0),
        "lm_head.weight": normal((vocab, d), d**-0.5),
    }
    for stack in ("encoder", "decoder"):
        attentions = ["SelfAttention"] + (["EncDecAttention"] if stack == "decoder" else [])
        for i in range(args.layers):
            block = f"{stack}.block.{i}.layer"
            for number, name in enumerate(attentions):
                scope = f"{block}.{number}.{name}"
                weights[f"{scope}.q.weight"] = normal((inner, d), (d * kv) ** -0.5)
                weights[f"{scope}.k.weight"] = normal((inner, d), d**-0.5)
                weights[f"{scope}.v.weight"] = normal((inner, d), d**-0.5)
                weights[f"{scope}.o.weight"] = normal((d, inner), inner**-0.5)
                weights[f"{block}.{number}.layer_norm.weight"] = norm()
                if i == 0 and name == "SelfAttention":
                    weights[f"{scope}.relative_attention_bias.weight"] = normal(
                        (32, heads), d**-0.5
                    )
            ffn = f"{block}.{len(attentions)}"
            weights[f"{ffn}.DenseReluDense.wi_0.weight"] = normal((ff, d), d**-0.5)
            weights[f"{ffn}.DenseReluDense.wi_1.weight"] = normal((ff, d), d**-0.5)
            weights[f"{ffn}.DenseReluDense.wo.weight"] = normal((d, ff), ff**-0.5)
            weights[f"{ffn}.layer_norm.weight"] = norm()
        weights[f"{stack}.final_layer_norm.weight"] = norm()
    return weights


def write_folder(folder, args, weights):
    from safetensors.numpy import save_file

    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as fh:
        json.dump(hf_config(args), fh, indent=1)
    save_file(weights, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})


def make_sources(args):
    """``(8 or more, source_len)`` random ids in [2, vocab): every row full length."""
    import numpy as np

    rng = np.random.default_rng(args.seed + 1)
    rows = max([1, *args.greedy_batches])
    return rng.integers(2, args.vocab, size=(rows, args.source_len)).astype("int32")


# -- compilations ----------------------------------------------------------------------------


class CompileCounter:
    """XLA backend compilations in this process (a ``jax.monitoring`` listener)."""

    def __init__(self):
        self.count = 0
        try:
            import jax.monitoring
        except ImportError:
            return

        def listener(event, duration, **kwargs):
            if event == BACKEND_COMPILE_EVENT:
                self.count += 1

        jax.monitoring.register_event_duration_secs_listener(listener)


def counting(run, counter, stats):
    """``run`` that adds the compilations of each call to ``stats["compilations"]``."""

    def call():
        before = counter.count
        out = run()
        stats["compilations"].append(counter.count - before)
        return out

    return call


# -- the candidates --------------------------------------------------------------------------


def build_kerasbert(folder):
    try:
        import kerasbert
        from kerasbert.families import model_names
        from kerasbert.models.t5_decoding import T5Generator, T5IncrementalDecoder
    except ImportError as exc:
        raise NotInstalled(f"kerasbert: {exc}") from None
    if "t5.1.1" not in model_names():
        raise NotInstalled("this kerasbert has no model='t5.1.1'")
    t5 = kerasbert.build_transformer_model(folder, folder, model="t5.1.1", return_keras_model=False)
    return t5, T5Generator, T5IncrementalDecoder


def kerasbert_candidate(state, workload, sources, args, counter, outputs):
    """``build()`` for kerasbert's beam search (batch 1) or greedy (a batch)."""
    kind, batch = workload

    def build():
        t5, generator_cls, decoder_cls = state["kerasbert"]
        stats = {"compilations": []}
        if kind == "beam":
            generator = generator_cls(
                t5, end_id=None, maxlen=args.new_tokens, max_source_length=args.source_len
            )
            decoder = generator.decoder

            def run():
                outputs["kerasbert"] = generator.beam_search([sources[0]], topk=args.beams)[None]
        else:
            decoder = decoder_cls(
                t5, max_length=args.new_tokens + 1, max_source_length=args.source_len
            )

            def run():
                outputs["kerasbert"] = decoder.greedy(sources[:batch], args.new_tokens, end_id=None)

        info = {"method": f"cache of {decoder.max_length} positions", "_stats": stats}
        return counting(run, counter, stats), lambda: outputs["kerasbert"], info

    return build


def hf_candidate(state, workload, sources, args, outputs):
    kind, batch = workload

    def build():
        torch, model = state["torch"]
        ids = torch.from_numpy(sources[: 1 if kind == "beam" else batch].astype("int64"))
        mask = torch.ones_like(ids)
        options = dict(
            max_new_tokens=args.new_tokens,
            min_new_tokens=0,
            num_beams=args.beams if kind == "beam" else 1,
            do_sample=False,
            eos_token_id=None,
            early_stopping=False,
            length_penalty=1.0,
            use_cache=True,
        )

        def run():
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=mask, **options)
            outputs["torch"] = out.numpy()

        return run, lambda: outputs["torch"], {"method": "generate, eager torch"}

    return build


def hub_candidate(state, workload, sources, args, counter, outputs):
    kind, batch = workload

    def build():
        import numpy as np

        keras_hub, lm = state["keras-hub"]
        if kind == "beam":
            lm.compile(sampler=keras_hub.samplers.BeamSampler(num_beams=args.beams))
        else:
            lm.compile(sampler="greedy")
        rows = 1 if kind == "beam" else batch
        decoder_ids = np.zeros((rows, args.new_tokens + 1), "int32")
        decoder_mask = np.zeros_like(decoder_ids)
        decoder_mask[:, 0] = 1
        inputs = {
            "encoder_token_ids": sources[:rows],
            "encoder_padding_mask": np.ones_like(sources[:rows]),
            "decoder_token_ids": decoder_ids,
            "decoder_padding_mask": decoder_mask,
        }
        stats = {"compilations": []}

        def run():
            out = lm.generate(inputs, stop_token_ids=None)
            outputs["keras-hub"] = np.asarray(out["decoder_token_ids"])

        info = {"method": "generate, one jitted program", "_stats": stats}
        return counting(run, counter, stats), lambda: outputs["keras-hub"], info

    return build


def load_torch(folder, args):
    try:
        import torch
        from transformers import T5ForConditionalGeneration
    except ImportError as exc:
        raise NotInstalled(f"torch / transformers: {exc}") from None
    torch.set_num_threads(os.cpu_count() or 1)
    model = T5ForConditionalGeneration.from_pretrained(folder, torch_dtype=torch.float32)
    return torch, model.eval()


def load_hub(weights, args):
    try:
        import keras
        import keras_hub
    except ImportError as exc:
        raise NotInstalled(f"keras-hub: {exc}") from None
    import numpy as np

    def gelu_tanh(x):  # T5 1.1's gelu_new
        return keras.activations.gelu(x, approximate=True)

    backbone = keras_hub.models.T5Backbone(
        vocabulary_size=args.vocab,
        num_layers=args.layers,
        num_heads=args.heads,
        hidden_dim=args.hidden,
        intermediate_dim=args.d_ff,
        key_value_dim=args.d_kv,
        dropout=0.1,
        activation=gelu_tanh,
        use_gated_activation=True,
        layer_norm_epsilon=1e-6,
        tie_embedding_weights=False,
    )
    backbone.token_embedding.embeddings.assign(weights["shared.weight"])
    backbone.token_embedding.reverse_embeddings.assign(weights["lm_head.weight"].T)
    for stack, layers, norm in (
        ("encoder", backbone.encoder_transformer_layers, backbone.encoder_layer_norm),
        ("decoder", backbone.decoder_transformer_layers, backbone.decoder_layer_norm),
    ):
        norm.weight.assign(weights[f"{stack}.final_layer_norm.weight"])
        for i, layer in enumerate(layers):
            block = f"{stack}.block.{i}.layer"
            parts = [("SelfAttention", layer.self_attention, layer.self_attention_layer_norm)]
            if stack == "decoder":
                parts.append(
                    ("EncDecAttention", layer.cross_attention, layer.cross_attention_layer_norm)
                )
            for number, (name, attention, attention_norm) in enumerate(parts):
                scope = f"{block}.{number}.{name}"
                for part, dense in (
                    ("q", attention.query_projector),
                    ("k", attention.key_projector),
                    ("v", attention.value_projector),
                    ("o", attention.output_projector),
                ):
                    dense.kernel.assign(weights[f"{scope}.{part}.weight"].T)
                attention_norm.weight.assign(weights[f"{block}.{number}.layer_norm.weight"])
                if attention.use_relative_attention_bias:
                    attention.relative_attention_bias.assign(
                        weights[f"{scope}.relative_attention_bias.weight"]
                    )
            ffn = f"{block}.{len(parts)}"
            layer.input_projector.kernel.assign(weights[f"{ffn}.DenseReluDense.wi_0.weight"].T)
            layer.gate_projector.kernel.assign(weights[f"{ffn}.DenseReluDense.wi_1.weight"].T)
            layer.output_projector.kernel.assign(weights[f"{ffn}.DenseReluDense.wo.weight"].T)
            layer.layer_norm.weight.assign(weights[f"{ffn}.layer_norm.weight"])
    assert not np.isnan(np.asarray(backbone.token_embedding.embeddings[:1])).any()
    return keras_hub, keras_hub.models.T5Seq2SeqLM(backbone=backbone, preprocessor=None)


# -- parity on a short input -----------------------------------------------------------------


def logits_parity(state, args):
    """Max |logits - HF's| of each Keras library on a 32-token source and 8 decoder ids."""
    import numpy as np

    rng = np.random.default_rng(args.seed + 2)
    source = rng.integers(2, args.vocab, size=(1, min(32, args.source_len))).astype("int32")
    target = np.concatenate([[[0]], rng.integers(2, args.vocab, size=(1, 7))], 1).astype("int32")
    found = {}
    if "torch" in state:
        torch, model = state["torch"]
        with torch.inference_mode():
            out = model(
                input_ids=torch.from_numpy(source.astype("int64")),
                decoder_input_ids=torch.from_numpy(target.astype("int64")),
            )
        found["torch"] = torch.log_softmax(out.logits, -1).numpy()
    if "kerasbert" in state:
        t5 = state["kerasbert"][0]
        probas = np.asarray(t5.model.predict_on_batch([source, target]))
        found["kerasbert"] = np.log(probas)
    if "keras-hub" in state:
        lm = state["keras-hub"][1]
        logits = lm.predict_on_batch(
            {
                "encoder_token_ids": source,
                "encoder_padding_mask": np.ones_like(source),
                "decoder_token_ids": target,
                "decoder_padding_mask": np.ones_like(target),
            }
        )
        logits = np.asarray(logits, "float64")
        found["keras-hub"] = (
            logits
            - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
            - logits.max(-1, keepdims=True)
        )
    reference = found.get("torch")
    if reference is None:
        return {}
    return {
        name: float(np.abs(v - reference).max()) for name, v in found.items() if name != "torch"
    }


# -- per-step timing -------------------------------------------------------------------------


def kerasbert_curve(state, sources, args):
    """A function running kerasbert's greedy decoding at batch 1 for ``--curve-tokens`` ids
    and returning ``(first step s, total s, later steps' s)``, and the decoder (compiled)."""
    t5, _, decoder_cls = state["kerasbert"]
    decoder = decoder_cls(t5, max_length=args.curve_tokens + 1, max_source_length=args.source_len)
    decoder.greedy(sources[:1], args.curve_tokens, end_id=None)  # compiles
    step = decoder.step

    def run():
        marks = []

        def timed_step(*a, **k):
            out = step(*a, **k)
            marks.append(time.perf_counter())
            return out

        decoder.step = timed_step
        start = time.perf_counter()
        decoder.greedy(sources[:1], args.curve_tokens, end_id=None)
        total = time.perf_counter() - start
        del decoder.step
        return marks[0] - start, total, [b - a for a, b in zip(marks, marks[1:])]

    return run, decoder


def torch_curve(state, sources, args):
    """The same for HF's greedy ``generate`` (a ``StoppingCriteria`` clocks every new id)."""
    torch, model = state["torch"]
    from transformers import StoppingCriteria, StoppingCriteriaList

    marks = []

    class Clock(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            marks.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    ids = torch.from_numpy(sources[:1].astype("int64"))
    options = dict(
        max_new_tokens=args.curve_tokens,
        num_beams=1,
        do_sample=False,
        eos_token_id=None,
        stopping_criteria=StoppingCriteriaList([Clock()]),
    )

    def run():
        marks.clear()
        with torch.inference_mode():
            start = time.perf_counter()
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **options)
            total = time.perf_counter() - start
        return marks[0] - start, total, [b - a for a, b in zip(marks, marks[1:])]

    run()  # warm-up
    return run


def step_curves(state, sources, args):
    """kerasbert's and HF's per-step times over ``--curve-runs`` runs each, the libraries
    alternating run by run; each window's figure is the median over all its steps of all
    runs (step 1 is the first step of each run, with the encoder)."""
    runners, decoder = {}, None
    if "kerasbert" in state:
        runners["kerasbert"], decoder = kerasbert_curve(state, sources, args)
    if "torch" in state:
        runners["torch"] = torch_curve(state, sources, args)
    compiled = decoder.num_compilations if decoder is not None else 0
    runs = {name: [] for name in runners}
    for _ in range(args.curve_runs):
        for name, run in runners.items():
            runs[name].append(run())
    out = {}
    for name, results in runs.items():
        firsts = [first for first, _, _ in results]
        windows = {}
        for lo, hi in WINDOWS:
            pooled = [t for _, _, steps in results for t in steps[lo - 2 : hi - 1]]
            if lo <= args.curve_tokens and pooled:
                windows[f"{lo}-{min(hi, args.curve_tokens)}"] = statistics.median(pooled)
        out[name] = {
            "runs": len(results),
            "first_s": statistics.median(firsts),
            "total_s": statistics.median(total for _, total, _ in results),
            "windows_s": windows,
            "steps_s": [steps for _, _, steps in results],
        }
    if decoder is not None:
        out["kerasbert"]["recompilations"] = decoder.num_compilations - compiled
    return out


def hub_curve(state, sources, args, counter):
    """keras-hub's greedy at batch 1 for 64 and ``--curve-tokens`` new ids: the marginal cost
    of the extra ids (its loop runs inside XLA, out of Python's sight)."""
    import numpy as np

    keras_hub, lm = state["keras-hub"]
    lm.compile(sampler="greedy")
    totals = {}
    for tokens in sorted({min(args.new_tokens, args.curve_tokens), args.curve_tokens}):
        ids = np.zeros((1, tokens + 1), "int32")
        mask = np.zeros_like(ids)
        mask[:, 0] = 1
        inputs = {
            "encoder_token_ids": sources[:1],
            "encoder_padding_mask": np.ones_like(sources[:1]),
            "decoder_token_ids": ids,
            "decoder_padding_mask": mask,
        }
        lm.generate(inputs, stop_token_ids=None)  # compiles
        before = counter.count
        start = time.perf_counter()
        lm.generate(inputs, stop_token_ids=None)
        totals[tokens] = time.perf_counter() - start
        if counter.count != before:
            totals[f"recompilations_{tokens}"] = counter.count - before
    lengths = sorted(k for k in totals if isinstance(k, int))
    out = {"totals_s": {str(k): totals[k] for k in lengths}}
    if len(lengths) == 2:
        a, b = lengths
        out["marginal_s"] = (totals[b] - totals[a]) / (b - a)
        out["average_s"] = {str(a): totals[a] / a, str(b): totals[b] / b}
    return out


# -- where kerasbert's step time goes (batch 1) ------------------------------------------------


def kerasbert_breakdown(state, sources, args, repeats=20):
    """Per-step seconds at 1, beam and largest-greedy-batch rows: ``step()``, the jitted
    program alone, parts of its math alone (:func:`matmul_floor`), the beam search's cache
    reordering (:func:`reorder_times`) and the beam search's own work besides ``step()``."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from kerasbert.snippets.decoders import _select_rows

    t5, generator_cls, decoder_cls = state["kerasbert"]
    out = {}
    beam_length = generator_cls(t5, end_id=None, maxlen=args.new_tokens).decoder.max_length
    for rows in sorted({1, args.beams, max(args.greedy_batches, default=1)}):
        # The cache size each workload uses: the beam search's, else greedy's. The beams
        # share one encoded source, as in T5Generator; greedy rows have one source each.
        length = beam_length if rows == args.beams else args.new_tokens + 1
        decoder = decoder_cls(t5, max_length=length, max_source_length=args.source_len)

        def started(decoder=decoder, rows=rows):  # after the start id; beams share a source
            if rows == args.beams:
                cache = _select_rows(decoder.start(sources[:1]), np.zeros(rows, int), 1)
            else:
                cache = decoder.start(np.repeat(sources[:1], rows, 0))
            return decoder.step(np.zeros((rows, 1), "int32"), cache)[1]

        ids = np.full((rows, 1), 5, "int32")
        cache = started()
        for _ in range(3):
            _, cache = decoder.step(ids, cache)  # warm (each step takes over the cache)
        # The jitted program alone (CompiledSteps' function and variables, on device arrays),
        # timed in turn with step() so that the two see the same machine; it writes at one
        # position over and over, and takes over its cache as step() does.
        other = started()
        source = other["source"].arrays
        program_cache = {k: other[k] for k in ("token_ids", "keys", "values")}
        jitted = decoder._step.function
        values = [v.value for v in decoder._step._variables]
        device_ids = jnp.asarray(ids)
        past, count = np.int32(1), np.int32(1)
        _, program_cache = jax.block_until_ready(
            jitted(values, program_cache, source, device_ids, past, count)
        )
        wall, program = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            _, cache = decoder.step(ids, cache)
            wall.append(time.perf_counter() - start)
            start = time.perf_counter()
            _, program_cache = jax.block_until_ready(
                jitted(values, program_cache, source, device_ids, past, count)
            )
            program.append(time.perf_counter() - start)
        out[f"rows_{rows}"] = {
            "step_call_s": statistics.median(wall),
            "program_s": statistics.median(program),
        }
        out[f"rows_{rows}"]["cache_positions"] = length
        out[f"rows_{rows}"].update(matmul_floor(args, rows, repeats))
        if rows == args.beams:
            out[f"rows_{rows}"].update(reorder_times(cache, rows, repeats))
    # The beam search's own work per step: the whole beam search minus its step() calls.
    generator = generator_cls(
        t5, end_id=None, maxlen=args.new_tokens, max_source_length=args.source_len
    )
    generator.beam_search([sources[0]], topk=args.beams)  # compiles
    inner, step = [], generator.decoder.step

    def timed_step(*a, **k):
        start = time.perf_counter()
        result = step(*a, **k)
        inner.append(time.perf_counter() - start)
        return result

    generator.decoder.step = timed_step
    start = time.perf_counter()
    generator.beam_search([sources[0]], topk=args.beams)
    total = time.perf_counter() - start
    del generator.decoder.step
    steps = len(inner)
    out["beam"] = {
        "total_s": total,
        "steps": steps,
        "in_step_s": sum(inner[1:]) / (steps - 1),
        "first_step_s": inner[0],
        "bookkeeping_s": (total - sum(inner)) / steps,
    }
    return out


def reorder_times(cache, rows, repeats):
    """Median seconds of reordering a ``rows``-row cache with the beams as the beam search
    does (``AutoRegressiveDecoder``'s ``_select_rows``): all of it (the beams share one
    encoded source, which stays as it is), and what it would add if every beam had its own
    copy of the source's cross-attention keys and values (as a batch of sources does)."""
    import jax
    import numpy as np

    from kerasbert.snippets.decoders import _select_rows

    order = np.roll(np.arange(rows), 1)
    source = cache["source"].arrays
    per_row = {k: [np.repeat(a, rows, 0) for a in source[k]] for k in ("keys", "values")}
    parts = {
        "reorder_all_s": {k: v for k, v in cache.items() if k != "length"},
        "reorder_cross_s": {k: [jax.device_put(a) for a in v] for k, v in per_row.items()},
    }
    out = {}
    for name, arrays in parts.items():
        jax.block_until_ready(_select_rows(arrays, order, rows))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(_select_rows(arrays, order, rows))
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
    return out


def matmul_floor(args, rows, repeats):
    """Median seconds of XLA running parts of one decoder step's math for ``rows`` rows,
    weights and caches as arguments:

    - ``dense_s``: every weight matmul of the step (per block the self-attention q, k, v, o,
      the cross-attention q and o, the gated feed-forward wi_0, wi_1, wo; then the head);
    - ``cross_bshd_s``: the cross-attention scores and context of every block over the
      source's keys and values stored ``(rows, source, heads, size)``, the layers' own
      layout (``T5IncrementalDecoder`` cached them so before issue 19's follow-up);
    - ``cross_bhsd_s``: the same contractions over keys and values stored heads-first,
      ``(rows, heads, source, size)``, the layout it caches them in.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    d, inner, ff, heads, kv = args.hidden, args.heads * args.d_kv, args.d_ff, args.heads, args.d_kv
    source, layers = args.source_len, args.layers
    rng = np.random.default_rng(0)

    def array(*shape):
        return jnp.asarray(rng.standard_normal(shape, dtype=np.float32) * 0.02)

    shapes = {
        "q": (d, inner),
        "k": (d, inner),
        "v": (d, inner),
        "o": (inner, d),
        "cq": (d, inner),
        "co": (inner, d),
        "wi0": (d, ff),
        "wi1": (d, ff),
        "wo": (ff, d),
    }
    blocks = [{k: array(*shape) for k, shape in shapes.items()} for _ in range(layers)]
    head = array(d, args.vocab)

    @jax.jit
    def dense(x, blocks, head):
        for w in blocks:
            h = (x @ w["q"] + x @ w["k"] + x @ w["v"]) @ w["o"]
            h = (h @ w["cq"]) @ w["co"]
            x = ((h @ w["wi0"]) * (h @ w["wi1"])) @ w["wo"]
        return x @ head

    def cross(scores_spec, context_spec):
        @jax.jit
        def run(q, keys, values):
            total = 0.0
            for k, v in zip(keys, values):
                scores = jnp.einsum(scores_spec, q, k)
                total = total + jnp.einsum(context_spec, scores, v).sum()
            return total

        return run

    def median_time(function, *arguments):
        jax.block_until_ready(function(*arguments))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(function(*arguments))
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    q = jnp.ones((rows, heads, kv), jnp.float32)
    out = {"dense_s": median_time(dense, jnp.ones((rows, d), jnp.float32), blocks, head)}
    keys = [array(rows, source, heads, kv) for _ in range(layers)]
    values = [array(rows, source, heads, kv) for _ in range(layers)]
    out["cross_bshd_s"] = median_time(cross("bhd,bshd->bhs", "bhs,bshd->bhd"), q, keys, values)
    keys = [jnp.transpose(k, (0, 2, 1, 3)) for k in keys]
    values = [jnp.transpose(v, (0, 2, 1, 3)) for v in values]
    out["cross_bhsd_s"] = median_time(cross("bhd,bhsd->bhs", "bhs,bhsd->bhd"), q, keys, values)
    return out


# -- the run ---------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=12, help="encoder and decoder blocks each")
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--d-kv", type=int, default=64)
    p.add_argument("--d-ff", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=32128)
    p.add_argument("--source-len", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--beams", type=int, default=4)
    p.add_argument("--greedy-batches", default="1,8")
    p.add_argument(
        "--curve-tokens", type=int, default=256, help="greedy ids of the per-step curve (0: skip)"
    )
    p.add_argument(
        "--curve-runs", type=int, default=3, help="runs of each library for the per-step curve"
    )
    p.add_argument("--no-breakdown", action="store_true", help="skip kerasbert's step breakdown")
    p.add_argument("--peers", choices=("all", "none", "torch", "keras-hub"), default="all")
    add_timing_args(p, repeats=3, warmup=2)
    args = p.parse_args(argv)
    check_timing_args(p, args)
    args.greedy_batches = [int(b) for b in args.greedy_batches.split(",") if b.strip()]
    return args


def workloads(args):
    return [("beam", 1)] + [("greedy", b) for b in args.greedy_batches]


def workload_name(workload, args):
    kind, batch = workload
    return f"beam {args.beams}, batch 1" if kind == "beam" else f"greedy, batch {batch}"


def output_tokens(workload, args):
    return (1 if workload[0] == "beam" else workload[1]) * args.new_tokens


def agreement(outputs, base="kerasbert"):
    """For each candidate, the leading generated ids (all rows) equal to ``base``'s."""
    import numpy as np

    reference = outputs.get(base)
    if reference is None:
        return {}
    result = {}
    for name, ids in outputs.items():
        if name == base or ids is None:
            continue
        ids = np.asarray(ids)[:, : reference.shape[1]]
        if ids.shape != reference.shape:
            result[name] = f"shape {ids.shape} vs {reference.shape}"
            continue
        same = (ids == reference).all(0)
        result[name] = int(same.argmin()) - 1 if not same.all() else int(reference.shape[1] - 1)
    return result


def main(argv=None):
    args = parse_args(argv)
    info = machine_info()
    print_machine(info)
    print(
        f"== T5 v1.1 sizes: {args.layers}+{args.layers} blocks, d_model {args.hidden}, "
        f"{args.heads} heads x {args.d_kv}, d_ff {args.d_ff}, vocab {args.vocab}; random "
        f"weights; source {args.source_len} ids, {args.new_tokens} new ids",
        flush=True,
    )
    counter = CompileCounter()
    sources = make_sources(args)
    state, load_errors = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        weights = random_weights(args)
        write_folder(folder, args, weights)
        loaders = [("kerasbert", lambda: build_kerasbert(folder))]
        if args.peers in ("all", "torch"):
            loaders.append(("torch", lambda: load_torch(folder, args)))
        if args.peers in ("all", "keras-hub"):
            loaders.append(("keras-hub", lambda: load_hub(weights, args)))
        for name, load in loaders:
            start = time.perf_counter()
            try:
                state[name] = load()
                print(f"== {name}: loaded in {time.perf_counter() - start:.1f} s", flush=True)
            except NotInstalled as exc:
                load_errors[name] = f"{exc.status}: {exc}"
                print(f"== {name}: {load_errors[name]}", flush=True)
        weights = None  # the arrays are in the models now
    parity = logits_parity(state, args)
    if parity:
        print(
            "== max |log-probabilities - HF's| on a 32-id source and 8 decoder ids: "
            + ", ".join(f"{k} {v:.2e}" for k, v in parity.items()),
            flush=True,
        )

    groups = []
    for workload in workloads(args):
        name = workload_name(workload, args)
        print(
            f"\n######## {name}: {args.source_len}-id source, {args.new_tokens} new ids", flush=True
        )
        outputs, candidates = {}, []
        for label in ("kerasbert", "torch", "keras-hub"):
            if label not in state:
                continue
            if label == "kerasbert":
                build = kerasbert_candidate(state, workload, sources, args, counter, outputs)
            elif label == "torch":
                build = hf_candidate(state, workload, sources, args, outputs)
            else:
                build = hub_candidate(state, workload, sources, args, counter, outputs)
            candidates.append((label, build))
        expected_rows = 1 if workload[0] == "beam" else workload[1]

        def check(ids, rows=expected_rows):
            if ids is None or ids.shape != (rows, args.new_tokens + 1):
                raise AssertionError(
                    f"generated ids of shape {getattr(ids, 'shape', None)}, "
                    f"expected {(rows, args.new_tokens + 1)}"
                )
            return None

        results = measure(candidates, args, check)
        for r in results:
            stats = r.pop("_stats", None)
            if stats is not None:
                # Calls after warm-up: the last `repeats` of them.
                r["compilations_after_warmup"] = sum(stats["compilations"][-args.repeats :])
                r["compilations_in_warmup"] = sum(stats["compilations"][: -args.repeats])
        group = {
            "workload": name,
            "kind": workload[0],
            "batch": workload[1],
            "output_tokens": output_tokens(workload, args),
            "results": results,
        }
        summarize_group(group, args)
        group["same_ids_as_kerasbert"] = agreement(outputs)
        print_group(group)
        groups.append(group)

    curve = {}
    if args.curve_tokens:
        print(f"\n######## per-step cost, greedy batch 1, {args.curve_tokens} new ids", flush=True)
        curve = step_curves(state, sources, args)
        if "keras-hub" in state:
            curve["keras-hub"] = hub_curve(state, sources, args, counter)
        print_curve(curve)
    breakdown = None
    if "kerasbert" in state and not args.no_breakdown:
        print("\n######## kerasbert: where a step's time goes", flush=True)
        breakdown = kerasbert_breakdown(state, sources, args)
        print_breakdown(breakdown, args)

    payload = {
        "what": "T5 generation (random T5 v1.1 weights)",
        "args": vars(args),
        "machine": info,
        "load_errors": load_errors,
        "logits_parity": parity,
        "groups": groups,
        "curve": curve,
        "breakdown": breakdown,
        "target_vs_torch": TARGET_VS_TORCH,
    }
    write_json(args.json, payload)
    return 0


def summarize_group(group, args):
    by_name = {r["name"]: r for r in group["results"] if r["status"] == "ok"}
    for r in by_name.values():
        r["tokens_per_s"] = group["output_tokens"] / r["median_s"]
        quiet = r.get("quiet_median_s")
        r["quiet_tokens_per_s"] = group["output_tokens"] / quiet if quiet else None
    torch_r, kb = by_name.get("torch"), by_name.get("kerasbert")
    summary = {}
    if kb and torch_r:
        summary["kb_over_torch"] = torch_r["median_s"] / kb["median_s"]
    if kb and "keras-hub" in by_name:
        summary["kb_over_hub"] = by_name["keras-hub"]["median_s"] / kb["median_s"]
    if "keras-hub" in by_name and torch_r:
        summary["hub_over_torch"] = torch_r["median_s"] / by_name["keras-hub"]["median_s"]
    group["summary"] = summary


def print_group(group):
    print(
        f"\n{'candidate':<12} {'median s':>9} {'min s':>8} {'tokens/s':>9} {'vs torch':>9} "
        f"{'other':>6} {'quiet median (n)':>17} {'compiles after warm-up':>23}"
    )
    torch_r = next(
        (r for r in group["results"] if r["name"] == "torch" and r["status"] == "ok"), None
    )
    for r in group["results"]:
        if r["status"] != "ok":
            print(f"{r['name']:<12} {r['status']}")
            continue
        ratio = f"{torch_r['median_s'] / r['median_s']:.2f}x" if torch_r else "-"
        quiet = r.get("quiet_median_s")
        quiet = f"{quiet:.3f} ({r['quiet_calls']})" if quiet else "-"
        compiles = r.get("compilations_after_warmup", "-")
        print(
            f"{r['name']:<12} {r['median_s']:9.3f} {r['min_s']:8.3f} {r['tokens_per_s']:9.1f} "
            f"{ratio:>9} {r['other_load']:6.2f} {quiet:>17} {compiles!s:>23}"
        )
    print(f"(other: cores other processes kept busy; quiet: calls while they used < {QUIET_LOAD})")


def print_curve(curve):
    for name in ("kerasbert", "torch"):
        c = curve.get(name)
        if not c:
            continue
        windows = ", ".join(f"{k}: {v * 1e3:.1f}" for k, v in c["windows_s"].items())
        print(
            f"  {name:<10} ({c['runs']} runs) ms/step by step number  {windows}  (first "
            f"step, with the encoder: {c['first_s'] * 1e3:.0f} ms; total {c['total_s']:.2f} s)"
        )
        if "recompilations" in c:
            print(f"  {'':<10} recompilations during the timed run: {c['recompilations']}")
    hub = curve.get("keras-hub")
    if hub:
        totals = ", ".join(f"{k} ids {v:.2f} s" for k, v in hub["totals_s"].items())
        line = f"  keras-hub  whole generations: {totals}"
        if "marginal_s" in hub:
            line += f"; marginal {hub['marginal_s'] * 1e3:.1f} ms per extra id"
        print(line)


def breakdown_rows(b):
    """``(rows, cache positions, step(), program, Python, dense, cross bshd, cross bhsd)``."""
    out = []
    for key, r in b.items():
        if key.startswith("rows_"):
            out.append(
                [
                    int(key[5:]),
                    r["cache_positions"],
                    r["step_call_s"],
                    r["program_s"],
                    r["step_call_s"] - r["program_s"],
                    r["dense_s"],
                    r["cross_bshd_s"],
                    r["cross_bhsd_s"],
                ]
            )
    return sorted(out)


def print_breakdown(b, args):
    for rows, positions, call, program, python, dense, bshd, bhsd in breakdown_rows(b):
        print(
            f"  {rows} row(s), cache of {positions}: step() {call * 1e3:.1f} ms = jitted "
            f"program {program * 1e3:.1f} ms + Python / transfer {python * 1e3:.1f} ms; XLA "
            f"alone: weight matmuls {dense * 1e3:.1f} ms, cross-attention over the source "
            f"{bshd * 1e3:.1f} ms in a (rows, source, heads, size) layout, "
            f"{bhsd * 1e3:.1f} ms heads-first (kerasbert's cache)"
        )
    r = b.get(f"rows_{args.beams}", {})
    if "reorder_all_s" in r:
        print(
            f"  reordering the {args.beams}-row cache with the beams: "
            f"{r['reorder_all_s'] * 1e3:.1f} ms (the beams share the source; a copy of its "
            f"cross-attention keys / values per beam would add "
            f"{r['reorder_cross_s'] * 1e3:.1f} ms)"
        )
    beam = b["beam"]
    print(
        f"  beam {args.beams}: {beam['total_s']:.2f} s for {beam['steps']} steps: step() "
        f"{beam['in_step_s'] * 1e3:.1f} ms a step (first, with the encoder, "
        f"{beam['first_step_s'] * 1e3:.0f} ms), beam-search bookkeeping "
        f"{beam['bookkeeping_s'] * 1e3:.1f} ms a step"
    )


# -- the report (run_all.py) ------------------------------------------------------------------


def _table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def _ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def target_rows(data):
    """Rows ``[target, case, measured, status]`` of run_all.py's Targets table."""

    def verdict(ok):
        return "met" if ok else "**not met**"

    rows = []
    target = data.get("target_vs_torch", TARGET_VS_TORCH)
    args = data["args"]
    sizes = (args["layers"], args["hidden"], args["heads"], args["d_ff"], args["vocab"])
    model = "T5-base v1.1" if sizes == (12, 768, 12, 2048, 32128) else "T5 (smaller sizes)"
    for g in data["groups"]:
        value = g["summary"].get("kb_over_torch")
        if value is not None:
            rows.append(
                [
                    f"T5 generation >= {target}x HF torch tokens/s (CPU, cache)",
                    f"{model}, {g['workload']}",
                    _ratio(value),
                    verdict(value >= target),
                ]
            )
    recompiles = [
        r.get("compilations_after_warmup")
        for g in data["groups"]
        for r in g["results"]
        if r["name"] == "kerasbert" and r["status"] == "ok"
    ]
    if recompiles:
        total = sum(c or 0 for c in recompiles)
        rows.append(
            [
                "T5 generation: no recompilation after warm-up",
                "kerasbert, every timed call",
                str(total),
                verdict(total == 0),
            ]
        )
    curve = (data.get("curve") or {}).get("kerasbert")
    if curve and len(curve["windows_s"]) >= 2:
        values = curve["windows_s"]
        slowest, fastest = max(values, key=values.get), min(values, key=values.get)
        ratio = values[slowest] / values[fastest]
        rows.append(
            [
                "T5 per-token cost flat in the target length (slowest / fastest <= 1.10)",
                f"kerasbert greedy batch 1, steps {slowest} / steps {fastest}",
                f"{ratio:.2f}",
                verdict(ratio <= 1.10),
            ]
        )
    return rows


def report_section(record):
    """BENCHMARKS.md lines for this benchmark's run_all record (``record["data"]`` its JSON)."""
    data, args = record["data"], record["data"]["args"]
    out = [
        "## T5 generation (summarization-shaped)",
        "",
        f"`{record['command']}` ({record['seconds'] / 60:.1f} min)",
        "",
    ]
    out += [
        f"T5 v1.1 sizes ({args['layers']} + {args['layers']} blocks, d_model {args['hidden']}, "
        f"{args['heads']} heads x {args['d_kv']}, gated-GELU d_ff {args['d_ff']}, vocabulary "
        f"{args['vocab']}, untied head) with random weights, the same in every library; a "
        f"{args['source_len']}-id source, {args['new_tokens']} new ids, the end id off "
        "(every run generates all of them). tokens/s counts output ids (batch x new ids; one "
        "sequence for beam search) over whole calls, the source's encoding included. "
        "How it is measured: `bench/bench_generate_t5.py`'s docstring.",
        "",
    ]
    parity = data.get("logits_parity") or {}
    if parity:
        out += [
            "Max |log-probability - HF's| on a short input: "
            + ", ".join(f"{k} {v:.1e}" for k, v in parity.items())
            + ".",
            "",
        ]
    rows = []
    for g in data["groups"]:
        same = g.get("same_ids_as_kerasbert", {})
        for r in g["results"]:
            if r["status"] != "ok":
                rows.append([g["workload"], r["name"], r["status"]] + ["-"] * 6)
                continue
            torch_r = next(
                (x for x in g["results"] if x["name"] == "torch" and x["status"] == "ok"), None
            )
            ratio = torch_r["median_s"] / r["median_s"] if torch_r else None
            quiet = r.get("quiet_median_s")
            ids = "base" if r["name"] == "kerasbert" else same.get(r["name"], "-")
            if isinstance(ids, int):
                ids = f"{ids} of {args['new_tokens']}"
            rows.append(
                [
                    g["workload"],
                    r["name"],
                    f"{r['median_s']:.3f}",
                    f"{r['tokens_per_s']:.1f}",
                    _ratio(ratio),
                    ids,
                    r.get("compilations_after_warmup", "-"),
                    f"{r['other_load']:.2f}",
                    f"{quiet:.3f} ({r['quiet_calls']})" if quiet else "-",
                ]
            )
    out += _table(
        [
            "workload",
            "candidate",
            "median s",
            "tokens/s",
            "vs HF torch",
            "same ids as kerasbert",
            "compilations after warm-up",
            "other",
            "quiet median s (n)",
        ],
        rows,
    )
    out.append("")
    curve = data.get("curve") or {}
    if curve:
        windows = []
        for name in ("kerasbert", "torch"):
            for key in (curve.get(name) or {}).get("windows_s", {}):
                if key not in windows:
                    windows.append(key)
        rows = []
        for name in ("kerasbert", "torch"):
            c = curve.get(name)
            if c:
                rows.append(
                    [name, f"{c['first_s'] * 1e3:.0f}"]
                    + [
                        f"{c['windows_s'][w] * 1e3:.1f}" if w in c["windows_s"] else "-"
                        for w in windows
                    ]
                )
        out += [
            f"Per-step cost, greedy at batch 1 for {args['curve_tokens']} new ids, "
            f"{args.get('curve_runs', 1)} runs of each library in turn (median ms per step over "
            "each range of step numbers, all runs pooled; the first step, with the source's "
            "encoding, median over the runs):",
            "",
        ]
        out += _table(
            ["candidate", "step 1 (with the encoder)"] + [f"steps {w}" for w in windows], rows
        )
        hub = curve.get("keras-hub")
        if hub and "marginal_s" in hub:
            totals = ", ".join(f"{k} ids {v:.2f} s" for k, v in hub["totals_s"].items())
            out += [
                "",
                f"keras-hub runs its loop inside XLA: whole generations {totals}, so "
                f"{hub['marginal_s'] * 1e3:.1f} ms per extra id.",
            ]
        out.append("")
    b = data.get("breakdown")
    if b:
        out += [
            "Where kerasbert's decoder step goes (median ms a step; the last three columns "
            "are XLA running parts of the step's math alone, weights and caches as "
            "arguments):",
            "",
        ]
        rows = [
            [rows, positions] + [f"{v * 1e3:.1f}" for v in values]
            for rows, positions, *values in breakdown_rows(b)
        ]
        out += _table(
            [
                "rows",
                "cache positions",
                "step()",
                "jitted program alone",
                "Python / transfer",
                "weight matmuls",
                "cross-attention, (rows, source, heads, size) layout",
                "cross-attention, heads-first (kerasbert's cache)",
            ],
            rows,
        )
        r = b.get(f"rows_{args['beams']}", {})
        if "reorder_all_s" in r:
            out += [
                "",
                f"Reordering the {args['beams']}-row cache with the beams, as the beam "
                f"search does every step: {r['reorder_all_s'] * 1e3:.1f} ms (the "
                f"self-attention cache and ids; the beams share one encoded source, whose "
                f"cross-attention keys and values, copied for each beam, would add "
                f"{r['reorder_cross_s'] * 1e3:.1f} ms).",
            ]
        beam = b["beam"]
        out += [
            "",
            f"Beam search ({args['beams']} beams, {beam['steps']} steps, "
            f"{beam['total_s']:.2f} s): step() {beam['in_step_s'] * 1e3:.1f} ms a step, the "
            f"beam search's own work (scores, top-k, reordering the cache) "
            f"{beam['bookkeeping_s'] * 1e3:.1f} ms a step.",
            "",
        ]
    return out


if __name__ == "__main__":
    sys.exit(main())
