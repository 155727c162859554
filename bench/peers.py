"""The encoders compared by ``bench_forward.py`` and ``bench_train.py``, built the same way
for both: sizes and shapes, random inputs, matmul FLOPs, and one builder per library.

Families and their peers:

===========  ========================================  ======================================
family       keras-hub (JAX)                           HF transformers (PyTorch)
===========  ========================================  ======================================
bert         ``keras_hub.models.BertBackbone``         ``transformers.BertModel``
albert       ``keras_hub.models.AlbertBackbone``       ``transformers.AlbertModel``
nezha        (none: keras-hub has no NEZHA)            ``transformers.NezhaModel`` (in
                                                       ``transformers.models.deprecated.nezha``)
roformer     (none: keras-hub has no RoFormer v1)      ``transformers.RoFormerModel``
roformer_v2  ``keras_hub.models.RoformerV2Backbone``   (none: HF has no RoFormer v2)
electra      ``keras_hub.models.ElectraBackbone``      ``transformers.ElectraModel``
===========  ========================================  ======================================

kerasbert's model is ``kerasbert.build_transformer_model(config, model=family)``; a family
this kerasbert does not register (``kerasbert.families.model_names()``) is reported as "not
available", as a peer that is not installed is reported "not installed", and its peers are
still timed. Every model gets the same sizes, dropout 0.1 on hidden states and attention
probabilities (active only when training), no pooler, and random weights.

Activations: kerasbert's is ``--hidden-act`` (the exact erf GELU by default, which HF's
``gelu`` means), keras-hub's BERT, ALBERT and ELECTRA use the tanh GELU (so those groups
also time ``kerasbert[gelu_tanh]``), and RoFormer v2 runs ReLU in every library (Zhuiyi's
released v2 configs and keras-hub's default).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics

import numpy as np
from common import (
    MatmulPeak,
    NotAvailable,
    NotInstalled,
    add_timing_args,
    announce_wait,
    check_timing_args,
    format_table,
    load_average,
    machine_info,
    measure,
    print_machine,
    table_legend,
    write_json,
)
from matmul_bound import forward_candidate

FAMILIES = ("bert", "albert", "nezha", "roformer", "roformer_v2", "electra")
PEER_CHOICES = ("all", "none", "keras-hub", "torch")
MATMULS_ONLY = "xla matmuls only"
NO_ROTARY = "kerasbert[no rotary]"
HUB_CLASSES = {
    "bert": "BertBackbone",
    "albert": "AlbertBackbone",
    "roformer_v2": "RoformerV2Backbone",
    "electra": "ElectraBackbone",
}
# The activation of each keras-hub backbone's feed-forward layers.
HUB_ACTIVATIONS = {
    "bert": "gelu_tanh",
    "albert": "gelu_tanh",
    "roformer_v2": "relu",
    "electra": "gelu_tanh",
}
TORCH_CLASSES = {
    "bert": "BertModel",
    "albert": "AlbertModel",
    "nezha": "NezhaModel",
    "roformer": "RoFormerModel",
    "electra": "ElectraModel",
}
TORCH_CONFIGS = {
    "bert": "BertConfig",
    "albert": "AlbertConfig",
    "nezha": "NezhaConfig",
    "roformer": "RoFormerConfig",
    "electra": "ElectraConfig",
}
# Families whose every library runs one activation, whatever --hidden-act says: RoFormer v2
# was released with ReLU (Zhuiyi's configs), and keras-hub's RoformerV2Backbone uses it.
FIXED_ACTIVATIONS = {"roformer_v2": "relu"}
# Families whose attention rotates queries and keys (RoPE): bench_forward.py also times
# kerasbert's model with the rotation disabled (NO_ROTARY) to measure what it costs.
ROTARY_FAMILIES = ("roformer", "roformer_v2")


# -- sizes and shapes -------------------------------------------------------------------------


def add_size_args(parser, batch, seq_len):
    """Model sizes (BERT-base by default), shapes, families and peers."""
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--seq-len", type=int, default=seq_len)
    parser.add_argument(
        "--shapes",
        help="comma-separated BATCHxTOKENS shapes to time one after another, e.g. "
        "8x128,2x512 (overrides --batch/--seq-len)",
    )
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--intermediate", type=int, default=3072)
    parser.add_argument("--vocab", type=int, default=21128)
    parser.add_argument("--max-position", type=int, default=512)
    parser.add_argument("--embedding-size", type=int, default=128, help="ALBERT's embeddings")
    parser.add_argument(
        "--electra-embedding-size",
        type=int,
        help="ELECTRA's embeddings (default: --hidden, as ELECTRA-base; another size adds "
        "the embedding projection)",
    )
    parser.add_argument(
        "--max-relative-position", type=int, default=64, help="NEZHA's clipping distance K"
    )
    parser.add_argument("--dropout", type=float, default=0.1, help="hidden and attention")
    parser.add_argument(
        "--hidden-act",
        default="gelu_erf",
        choices=("gelu_erf", "gelu_tanh"),
        help="kerasbert's feed-forward activation (HF 'gelu' is erf; keras-hub uses tanh); "
        "RoFormer v2 runs ReLU whatever this says",
    )
    parser.add_argument(
        "--families",
        default="bert",
        help="comma-separated families among " + ",".join(FAMILIES) + "; each is timed "
        "against its own peers",
    )
    parser.add_argument("--peers", choices=PEER_CHOICES, default="all")
    parser.add_argument(
        "--dtype-policy",
        default="float32",
        choices=("float32", "mixed_bfloat16"),
        help="Keras global dtype policy of both Keras candidates; torch runs under "
        "torch.autocast(bfloat16) with mixed_bfloat16",
    )


def parse_suite_args(argv, description, repeats, warmup, forward=False):
    """Sizes, shapes, families, peers and timing options of bench_forward / bench_train
    (``forward``: also the options only the forward benchmark has)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_size_args(parser, batch=8, seq_len=128)
    add_timing_args(parser, repeats=repeats, warmup=warmup)
    if forward:
        parser.add_argument(
            "--no-rotary-ablation",
            dest="rotary_ablation",
            action="store_false",
            help=f"do not time '{NO_ROTARY}' (kerasbert's RoFormer with the rotation "
            "disabled) beside the rotary families",
        )
    args = parser.parse_args(argv)
    check_size_args(parser, args)
    check_timing_args(parser, args)
    return parser, args


def check_size_args(parser, args):
    """Validate the size options; sets ``args.shape_list`` and ``args.family_list``."""
    if args.hidden % args.heads:
        parser.error(f"--hidden {args.hidden} is not divisible by --heads {args.heads}")
    try:
        if args.shapes:
            args.shape_list = [
                tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",")
            ]
        else:
            args.shape_list = [(args.batch, args.seq_len)]
        if any(len(s) != 2 or min(s) < 1 for s in args.shape_list):
            raise ValueError
    except ValueError:
        parser.error(f"--shapes {args.shapes!r}: expected e.g. 8x128,2x512")
    for _, seq_len in args.shape_list:
        if seq_len > args.max_position:
            parser.error(f"sequence length {seq_len} exceeds --max-position {args.max_position}")
    args.family_list = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(args.family_list) - set(FAMILIES))
    if unknown or not args.family_list:
        parser.error(f"--families {args.families!r}: choose among {', '.join(FAMILIES)}")
    if args.electra_embedding_size is None:
        args.electra_embedding_size = args.hidden


def describe_sizes(args):
    return (
        f"{args.layers} layers, hidden {args.hidden}, {args.heads} heads, intermediate "
        f"{args.intermediate}, vocab {args.vocab}, dropout {args.dropout}; ALBERT embedding "
        f"{args.embedding_size}, NEZHA K {args.max_relative_position}, ELECTRA embedding "
        f"{args.electra_embedding_size}"
    )


def projects_embeddings(family, embedding_size, hidden):
    """Whether ``family``'s encoder starts with an E -> H embedding projection: ALBERT's
    always, ELECTRA's when its embedding size differs from the hidden size."""
    return family == "albert" or (family == "electra" and embedding_size != hidden)


def model_flops(batch, seq_len, layers, hidden, intermediate, family="bert", embedding_size=128):
    """Analytical forward matmul FLOPs of the encoder (multiply-add = 2 FLOPs).

    Per layer: the q/k/v/output projections (4*H*H weights) and the two feed-forward
    matmuls (2*H*I weights) cost 2 FLOPs per weight per token; the attention scores
    ``Q K^T`` and the context ``P V`` cost 2*T*H per token each. NEZHA adds two matmuls of
    the same size per layer (queries against the relative-position keys, probabilities
    against the relative-position values); ALBERT adds the E -> H embedding projection once,
    and so does ELECTRA when E != H. RoFormer's rotary embedding (v1 and v2) is elementwise
    and adds no matmul. Embedding gathers, layer norms, softmax, GELU, rotations and biases
    are not counted.
    """
    tokens = batch * seq_len
    dense = 2 * tokens * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention = 2 * 2 * tokens * seq_len * hidden
    if family == "nezha":
        attention *= 2
    total = layers * (dense + attention)
    if projects_embeddings(family, embedding_size, hidden):
        total += 2 * tokens * embedding_size * hidden
    return total


def family_embedding_size(args, family):
    """The embedding size of ``family`` (ALBERT's, ELECTRA's, else the hidden size)."""
    if family == "albert":
        return args.embedding_size
    if family == "electra":
        return args.electra_embedding_size
    return args.hidden


def family_flops(args, family, batch, seq_len):
    return model_flops(
        batch,
        seq_len,
        args.layers,
        args.hidden,
        args.intermediate,
        family,
        family_embedding_size(args, family),
    )


def kerasbert_activation(args, family):
    """kerasbert's feed-forward activation in ``family``'s groups."""
    return FIXED_ACTIVATIONS.get(family, args.hidden_act)


def make_inputs(batch, seq_len, vocab, seed):
    """Token ids with trailing padding (id 0), segment ids and the validity mask.

    Row lengths are drawn from [seq_len/2, seq_len]; the first row is full length. Padding
    does not change the work done (masks are dense), only exercises the mask paths.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(1, seq_len // 2), seq_len + 1, size=batch)
    lengths[0] = seq_len
    positions = np.arange(seq_len)[None, :]
    valid = positions < lengths[:, None]
    token_ids = rng.integers(1, vocab, size=(batch, seq_len)).astype("int32")
    token_ids = np.where(valid, token_ids, 0).astype("int32")
    split = (lengths // 2)[:, None]
    segment_ids = ((positions >= split) & valid).astype("int32")
    return token_ids, segment_ids, valid


# -- builders ---------------------------------------------------------------------------------


def hf_config(args, family, hidden_act):
    """The model's sizes as an HF-style config dict (kerasbert reads the same keys)."""
    config = {
        "vocab_size": args.vocab,
        "hidden_size": args.hidden,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "intermediate_size": args.intermediate,
        "hidden_act": hidden_act,
        "max_position_embeddings": args.max_position,
        "type_vocab_size": 2,
        "hidden_dropout_prob": args.dropout,
        "attention_probs_dropout_prob": args.dropout,
    }
    if family == "albert":
        config["embedding_size"] = args.embedding_size
    if family == "electra":
        config["embedding_size"] = args.electra_embedding_size
    if family == "nezha":
        config["max_relative_position"] = args.max_relative_position
    return config


def kerasbert_has(family):
    """``None`` when this kerasbert builds ``model=family``, else why not (a sentence)."""
    import kerasbert

    try:
        from kerasbert.families import model_names
    except ImportError:
        return f"kerasbert {kerasbert.__version__} has no family registry"
    if family in model_names():
        return None
    return (
        f"kerasbert {kerasbert.__version__} has no model {family!r} "
        f"(it has {', '.join(model_names())})"
    )


def build_kerasbert(args, data, family, hidden_act):
    """``(model, inputs, pick, info)`` for kerasbert's encoder of ``family``."""
    try:
        import kerasbert
    except ImportError as exc:
        raise NotInstalled(str(exc)) from exc
    missing = kerasbert_has(family)
    if missing:
        raise NotAvailable(missing)
    token_ids, segment_ids, _ = data
    set_policy(args)
    model = kerasbert.build_transformer_model(hf_config(args, family, hidden_act), model=family)
    info = {"version": kerasbert.__version__, "activation": hidden_act, "family": family}
    info["hidden"] = args.hidden
    info["policy"] = args.dtype_policy
    return model, [token_ids, segment_ids], None, info


def build_kerasbert_no_rotary(args, data, family, hidden_act):
    """kerasbert's rotary model of ``family`` with the rotation disabled, all else equal.

    The model is built as :func:`build_kerasbert` builds it; then every attention layer
    that rotates (a ``kerasbert.layers.RotaryMultiHeadAttention``) gets a
    ``position_heads`` that returns its queries, keys and values as they come, so the
    compiled forward differs from the real one by the rotation alone: the sinusoid table,
    now used by nothing, is dropped by XLA, and the attention path (fused or not) is the
    same. The difference of the two medians is what the rotary embedding costs.
    """
    model, inputs, pick, info = build_kerasbert(args, data, family, hidden_act)
    from kerasbert.layers import RotaryMultiHeadAttention

    def unrotated(qw, kw, vw, positions):
        return qw, kw, vw, None

    layers = [layer for layer in _all_layers(model) if isinstance(layer, RotaryMultiHeadAttention)]
    if not layers:
        raise NotAvailable(f"kerasbert's {family!r} model has no RotaryMultiHeadAttention layer")
    for layer in layers:
        # An instance attribute, set past Keras's attribute tracking: the class is untouched.
        object.__setattr__(layer, "position_heads", unrotated)
    return model, inputs, pick, {**info, "rotary": f"disabled in {len(layers)} layers"}


def _all_layers(model):
    """Every layer of a functional model, nested models' layers included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def build_keras_hub(args, data, family):
    """``(model, inputs, pick, info)`` for keras-hub's backbone of ``family``."""
    try:
        import keras
        import keras_hub
    except ImportError as exc:
        raise NotInstalled(str(exc)) from exc
    if keras.backend.backend() != "jax":
        raise RuntimeError(f"keras-hub needs the JAX backend here, got {keras.backend.backend()}")
    token_ids, segment_ids, valid = data
    backbone = getattr(keras_hub.models, HUB_CLASSES[family], None)
    if backbone is None:
        raise NotAvailable(f"keras-hub {keras_hub.__version__} has no {HUB_CLASSES[family]}")
    sizes = {
        "vocabulary_size": args.vocab,
        "num_layers": args.layers,
        "num_heads": args.heads,
        "hidden_dim": args.hidden,
        "intermediate_dim": args.intermediate,
        "dropout": args.dropout,
        "max_sequence_length": args.max_position,
    }
    if family == "albert":
        sizes["embedding_dim"] = args.embedding_size
    if family == "electra":
        sizes["vocab_size"] = sizes.pop("vocabulary_size")  # ElectraBackbone's spelling
        sizes["embedding_dim"] = args.electra_embedding_size
    if family == "roformer_v2":
        # Rotary positions (no table), no biases: head_size instead of a length limit.
        del sizes["max_sequence_length"]
        sizes.update(head_size=args.hidden // args.heads, use_bias=False, activation="relu")
    set_policy(args)
    model = backbone(**sizes)
    # RoformerV2Backbone takes no padding_mask: it masks id-0 tokens itself, as kerasbert does.
    feeds = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": valid}
    inputs = {name: value for name, value in feeds.items() if name in model.input}
    activation = HUB_ACTIVATIONS[family]
    info = {"version": keras_hub.__version__, "activation": activation, "family": family}
    info["hidden"] = args.hidden
    info["policy"] = args.dtype_policy

    def pick(outputs):
        return outputs["sequence_output"] if isinstance(outputs, dict) else outputs

    return model, inputs, pick, info


def build_torch(args, data, family):
    """``(model, inputs, info)`` for HF transformers' torch model of ``family`` (no pooler)."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise NotInstalled(str(exc)) from exc
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(args.seed)
    import inspect

    token_ids, segment_ids, valid = data
    model_class = getattr(transformers, TORCH_CLASSES[family], None)
    config_class = getattr(transformers, TORCH_CONFIGS[family], None)
    if model_class is None or config_class is None:
        raise NotAvailable(
            f"transformers {transformers.__version__} has no {TORCH_CLASSES[family]}"
        )
    # HF's "gelu" is the exact (erf) GELU.
    sizes = hf_config(args, family, "gelu")
    # RoFormer's and ELECTRA's models have no pooler, so no add_pooling_layer either.
    options = {}
    if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
        options["add_pooling_layer"] = False
    attn = "sdpa"
    try:
        model = model_class(config_class(**sizes, attn_implementation=attn), **options)
    except ValueError:  # "... does not support ... scaled_dot_product_attention yet"
        attn = "eager"
        model = model_class(config_class(**sizes, attn_implementation=attn), **options)
    inputs = {
        "input_ids": torch.from_numpy(token_ids.astype("int64")),
        "attention_mask": torch.from_numpy(valid.astype("int64")),
        "token_type_ids": torch.from_numpy(segment_ids.astype("int64")),
    }
    info = {
        "version": f"torch {torch.__version__}, transformers {transformers.__version__}",
        "activation": "gelu_erf",
        "attention": getattr(model.config, "_attn_implementation", attn),
        "family": family,
        "hidden": args.hidden,
        "threads": torch.get_num_threads(),
        "policy": args.dtype_policy,
    }
    return model, inputs, info


def set_policy(args):
    """Set Keras's global dtype policy from ``--dtype-policy`` (before a model is built)."""
    import keras

    keras.mixed_precision.set_global_policy(args.dtype_policy)


def torch_autocast(info):
    """The autocast context matching ``info['policy']`` (bfloat16 on CPU, or a no-op)."""
    import contextlib

    import torch

    if info.get("policy") == "mixed_bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def group_candidates(
    args, data, family, keras_runner, torch_runner, matmul_bound=False, rotary_ablation=False
):
    """``[(name, build)]`` for one family: kerasbert, with ``rotary_ablation`` for a rotary
    family the same model with the rotation disabled (``kerasbert[no rotary]``), its twin
    with keras-hub's activation (when keras-hub is timed and kerasbert's activation
    differs), keras-hub and torch (where each has the family), and with ``matmul_bound`` in
    float32 the encoder's matmuls alone (bench/matmul_bound.py).

    ``keras_runner(model, inputs, pick, info)`` and ``torch_runner(model, inputs, info)``
    turn a built model into ``(run, output, info)``: both Keras candidates go through the
    same ``keras_runner``.
    """

    def keras(build):
        def make():
            model, inputs, pick, info = build()
            return keras_runner(model, inputs, pick, info)

        return make

    def torch_make():
        model, inputs, info = build_torch(args, data, family)
        return torch_runner(model, inputs, info)

    want_hub = args.peers in ("all", "keras-hub") and family in HUB_CLASSES
    want_torch = args.peers in ("all", "torch") and family in TORCH_CLASSES
    activation = kerasbert_activation(args, family)
    candidates = [("kerasbert", keras(lambda: build_kerasbert(args, data, family, activation)))]
    if rotary_ablation and family in ROTARY_FAMILIES:
        candidates.append(
            (NO_ROTARY, keras(lambda: build_kerasbert_no_rotary(args, data, family, activation)))
        )
    hub_present = importlib.util.find_spec("keras_hub") is not None
    hub_activation = HUB_ACTIVATIONS.get(family)
    if want_hub and hub_present and activation != hub_activation:
        candidates.append(
            (
                f"kerasbert[{hub_activation}]",
                keras(lambda: build_kerasbert(args, data, family, hub_activation)),
            )
        )
    if want_hub:
        candidates.append(("keras-hub", keras(lambda: build_keras_hub(args, data, family))))
    if want_torch:
        candidates.append(("torch", torch_make))
    if matmul_bound and args.dtype_policy == "float32":
        batch, seq_len = data[0].shape
        embedding_size = family_embedding_size(args, family)
        candidates.append(
            (MATMULS_ONLY, forward_candidate(args, family, batch, seq_len, embedding_size))
        )
    return candidates


# -- the driver shared by bench_forward.py and bench_train.py ----------------------------------


def group_summary(group):
    """Medians, ratios against kerasbert and kerasbert's share of the peak for one group.

    ``hub_over_kb`` is keras-hub's median / kerasbert's (> 1: kerasbert is faster);
    ``hub_over_kb_same_act`` uses kerasbert with keras-hub's activation (tanh GELU) where
    that twin was timed; ``hub_over_matmuls`` is keras-hub's median / the matmuls-only
    chain's: the largest speedup over keras-hub that any JAX float32 model of the same math
    could reach; ``kb_over_matmuls`` is kerasbert's median / the chain's (1.05: kerasbert
    spends 5 % more than its matmuls alone). ``rotary_cost`` is kerasbert's median / the
    median of the same model with the rotation disabled, minus 1 (0.03: the rotary
    embedding costs 3 % of the forward); ``rotary_cost_paired`` the same from the median of
    the per-round ratios (both are called once per round, so a slow round slows both).
    """
    by_name = {r["name"]: r for r in group["results"] if r["status"] == "ok"}
    medians = {name: r["median_s"] for name, r in by_name.items()}
    summary = {"medians_s": medians}
    kb = medians.get("kerasbert")
    if kb is not None:
        summary["kerasbert_fraction_of_peak"] = by_name["kerasbert"]["fraction_of_peak"]
        if "keras-hub" in medians:
            summary["hub_over_kb"] = medians["keras-hub"] / kb
            twin = medians.get(twin_name(group["family"]), kb)
            summary["hub_over_kb_same_act"] = medians["keras-hub"] / twin
            if twin_name(group["family"]) in medians:
                summary["same_act_twin"] = twin_name(group["family"])
        if "torch" in medians:
            summary["torch_over_kb"] = medians["torch"] / kb
        if MATMULS_ONLY in medians:
            summary["kb_over_matmuls"] = kb / medians[MATMULS_ONLY]
        if NO_ROTARY in medians:
            summary["rotary_cost"] = kb / medians[NO_ROTARY] - 1
            with_rotary, without = by_name["kerasbert"]["times_s"], by_name[NO_ROTARY]["times_s"]
            if len(with_rotary) == len(without):
                paired = statistics.median(a / b for a, b in zip(with_rotary, without))
                summary["rotary_cost_paired"] = paired - 1
    if MATMULS_ONLY in medians:
        summary["matmuls_fraction_of_peak"] = by_name[MATMULS_ONLY]["fraction_of_peak"]
        if "keras-hub" in medians:
            summary["hub_over_matmuls"] = medians["keras-hub"] / medians[MATMULS_ONLY]
    group["summary"] = summary
    return summary


def twin_name(family):
    """The name of kerasbert's candidate with keras-hub's activation in ``family``'s group."""
    return f"kerasbert[{HUB_ACTIVATIONS.get(family, 'gelu_tanh')}]"


def format_summary(groups):
    """One line per (family, shape): kerasbert's median and the peers' ratios."""

    def ratio(value):
        return f"{value:.2f}x" if value is not None else "-"

    def percent(value, width):
        return f"{100 * value:>{width - 1}.1f}%" if value is not None else f"{'-':>{width}}"

    header = (
        f"{'family':<11} {'shape':>8} {'kerasbert s':>11} {'% peak':>7} {'hub/kb':>7} "
        f"{'hub/kb[tanh]':>12} {'torch/kb':>8} {'mm % peak':>9} {'hub/mm':>7} {'kb/mm':>6}"
        f" {'rotary':>7}"
    )
    lines = [header, "-" * len(header)]
    for g in groups:
        s = g["summary"]
        kb = s["medians_s"].get("kerasbert")
        lines.append(
            f"{g['family']:<11} {g['batch']:>4}x{g['seq_len']:<3} "
            + (f"{kb:>11.4f}" if kb is not None else f"{'-':>11}")
            + " " + percent(s.get("kerasbert_fraction_of_peak"), 7)
            + f" {ratio(s.get('hub_over_kb')):>7} {ratio(s.get('hub_over_kb_same_act')):>12}"
            + f" {ratio(s.get('torch_over_kb')):>8}"
            + " " + percent(s.get("matmuls_fraction_of_peak"), 9)
            + f" {ratio(s.get('hub_over_matmuls')):>7} {ratio(s.get('kb_over_matmuls')):>6}"
            + (f" {100 * rc:>+6.1f}%" if (rc := s.get("rotary_cost")) is not None else f" {'-':>7}")
        )  # fmt: skip
    lines.append("ratios = peer median / kerasbert median: > 1 means kerasbert is faster")
    if any("matmuls_fraction_of_peak" in g["summary"] for g in groups):
        lines.append(
            f"mm = '{MATMULS_ONLY}': XLA running the encoder's matmuls and nothing else; "
            "hub/mm = keras-hub median / its median, the most any JAX float32 model of the "
            "same math could gain on keras-hub; kb/mm = kerasbert median / its median"
        )
    rotary = [g for g in groups if "rotary_cost" in g["summary"]]
    if rotary:
        lines.append(
            f"rotary = kerasbert median / '{NO_ROTARY}' median - 1: what the rotary embedding "
            "costs of the forward"
        )
        for g in rotary:
            s = g["summary"]
            paired = s.get("rotary_cost_paired")
            lines.append(
                f"  {g['family']} {g['batch']}x{g['seq_len']}: rotary "
                f"{100 * s['rotary_cost']:+.1f}% of the forward (medians "
                f"{s['medians_s']['kerasbert']:.4f} s with, "
                f"{s['medians_s'][NO_ROTARY]:.4f} s without"
                + (f"; median per-round ratio {100 * paired:+.1f}%" if paired is not None else "")
                + ")"
            )  # fmt: skip
    return "\n".join(lines)


def run_suite(
    args,
    what,
    keras_runner,
    torch_runner,
    check,
    flops_multiplier=1,
    unit="batch",
    matmul_bound=False,
    rotary_ablation=False,
):
    """Time every (shape, family) group of candidates; print tables; write ``--json``.

    ``check(output, batch, seq_len)`` validates a candidate's last result after warm-up.
    FLOPs per call are ``flops_multiplier`` times the forward matmul FLOPs. With
    ``matmul_bound`` (forward only) each group also times the encoder's matmuls alone, and
    with ``rotary_ablation`` (forward only) a rotary family's group also times kerasbert's
    model with the rotation disabled.
    """
    info = machine_info()
    print_machine(info)
    print(f"== workload: {what}")
    print(f"  {describe_sizes(args)}")
    print(f"  shapes {args.shape_list}, families {args.family_list}, peers {args.peers}")
    print(f"  warmup {args.warmup}, repeats {args.repeats}, {args.schedule}")
    peak = MatmulPeak(args.matmul_sizes, args.seed, with_torch=args.peers in ("all", "torch"))
    announce_wait(args.wait_idle)
    peak.before()
    groups = []
    for batch, seq_len in args.shape_list:
        data = make_inputs(batch, seq_len, args.vocab, args.seed)
        for family in args.family_list:
            flops = flops_multiplier * family_flops(args, family, batch, seq_len)
            print(
                f"==== {family}, {batch} x {seq_len} tokens: {flops / 1e9:.2f} GFLOP per {unit}",
                flush=True,
            )
            candidates = group_candidates(
                args, data, family, keras_runner, torch_runner, matmul_bound, rotary_ablation
            )
            results = measure(candidates, args, lambda out, b=batch, t=seq_len: check(out, b, t))
            for r in results:
                if r["status"] == "ok":
                    print(f"  {r['name']:<22} median {r['median_s']:.4f} s/{unit}")
            groups.append(
                {
                    "family": family,
                    "batch": batch,
                    "seq_len": seq_len,
                    "flops": flops,
                    "results": results,
                }
            )
    peak.after()
    info["loadavg_end"] = load_average()
    print("== results")
    for g in groups:
        print(f"-- {g['family']}, {g['batch']} x {g['seq_len']} tokens")
        print(format_table(g["results"], g["flops"], peak.peak, unit=unit))
        group_summary(g)
    print()
    print(table_legend(peak.peak))
    print("== summary")
    print(format_summary(groups))
    load = info["loadavg_end"]
    if load is not None:
        print(f"loadavg at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)")
    payload = {
        "what": what,
        "unit": unit,
        "flops_multiplier": flops_multiplier,
        "machine": info,
        "args": {k: v for k, v in vars(args).items()},
        "groups": groups,
        **peak.to_json(),
    }
    write_json(args.json, payload)
    return payload
