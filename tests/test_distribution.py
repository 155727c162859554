"""kerasbert.distribution: layout maps for ModelParallel, and DataParallel as is.

The sharded runs need several devices, and this pytest process has already started JAX
with one; so one subprocess with 8 virtual CPU devices runs every model and prints its
findings as JSON, and the assertions are made here.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import keras
import pytest

import kerasbert
from kerasbert.distribution import DistributionError, check_layout_map, get_layout_map

TINY = {
    "vocab_size": 64,
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "intermediate_size": 32,
    "max_position_embeddings": 32,
}

# (case name, model, options of build_transformer_model, get_layout_map options, train?)
# Training steps cost most of the time, so one per family; the other cases check naming
# variants (ALBERT groups / inner blocks, unshared ALBERT) and the map's options.
CASES = [
    ("bert", "bert", {"with_pool": True, "with_nsp": True, "with_mlm": True}, {}, True),
    ("albert", "albert", {"embedding_size": 8, "with_pool": True, "with_mlm": True}, {}, True),
    ("nezha", "nezha", {"with_pool": True, "with_mlm": True}, {}, True),
    ("albert_groups", "albert",
     {"embedding_size": 8, "num_hidden_layers": 2, "num_hidden_groups": 2,
      "inner_group_num": 2, "with_mlm": True}, {}, False),
    ("albert_unshared", "albert_unshared",
     {"embedding_size": 8, "num_hidden_layers": 2, "inner_group_num": 2}, {}, False),
    ("bert_fsdp_hidden", "bert", {"with_mlm": True},
     {"data_axis": "batch", "embedding_axis": "hidden"}, False),
]  # fmt: skip

SCRIPT = textwrap.dedent(
    """
    import json, re, sys
    import numpy as np
    import kerasbert
    import kerasbert.distribution
    import keras

    TINY, CASES = json.loads(sys.argv[1])
    devices = keras.distribution.list_devices()
    mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"), devices=devices)
    rng = np.random.default_rng(0)
    batch, length = 8, 6
    tokens = rng.integers(1, TINY["vocab_size"], size=(batch, length)).astype("int32")
    tokens[:, -2:] = 0  # padding
    segments = np.zeros_like(tokens)
    segments[:, 3:] = 1
    x = [tokens, segments]

    def targets(arrays):
        # token ids for an MLM output (batch, length, vocab), random values otherwise
        return [
            rng.integers(0, a.shape[-1], size=a.shape[:2]) if a.ndim == 3
            else rng.random(a.shape).astype("float32")
            for a in arrays
        ]

    def losses(model):
        return [
            "sparse_categorical_crossentropy" if len(o.shape) == 3 else "mse"
            for o in model.outputs
        ]

    def build(name, options):
        return kerasbert.build_transformer_model(dict(TINY), model=name, **options)

    def outputs(model):
        out = model.predict_on_batch(x)
        return [np.asarray(o) for o in (out if isinstance(out, list) else [out])]

    def max_diff(a, b):
        return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))

    def train(model, ys):
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=losses(model))
        loss = model.train_on_batch(x, ys)
        loss = float(np.ravel(loss)[0])
        return loss, [np.asarray(w) for w in model.get_weights()]

    def spec(variable):
        axes = list(variable.value.sharding.spec)
        return axes + [None] * (len(variable.shape) - len(axes))

    results = {"devices": len(devices), "cases": {}}
    for case, name, options, map_options, with_training in CASES:
        reference = build(name, options)
        weights = reference.get_weights()
        expected = outputs(reference)
        result = results["cases"][case] = {
            "forward_scale": max(float(np.max(np.abs(e))) for e in expected),
        }

        layout_map = kerasbert.distribution.get_layout_map(mesh, **map_options)
        distribution = keras.distribution.ModelParallel(
            layout_map=layout_map, batch_dim_name="batch"
        )
        with distribution.scope():
            sharded = build(name, options)
            sharded.set_weights(weights)
            result["forward_diff"] = max_diff(expected, outputs(sharded))
            result["variables"] = {
                v.path: {
                    "shape": list(v.shape),
                    "keys": [k for k in layout_map if re.fullmatch(k, v.path)],
                    "spec": spec(v),
                    "replicated": bool(v.value.sharding.is_fully_replicated),
                    "shard_shape": list(v.value.addressable_shards[0].data.shape),
                }
                for v in sharded.variables
            }
            try:
                kerasbert.distribution.check_layout_map(layout_map, sharded)
                result["check_error"] = None
            except kerasbert.KerasBertError as error:
                result["check_error"] = str(error)
            if with_training:
                ys = targets(expected)
                result["loss"], after = train(sharded, ys)
                result["specs_after_step"] = {v.path: spec(v) for v in sharded.variables}
        if not with_training:
            continue

        with keras.distribution.DataParallel(devices=devices).scope():
            replicated = build(name, options)
            replicated.set_weights(weights)
            result["dp_forward_diff"] = max_diff(expected, outputs(replicated))
            result["dp_loss"], dp_after = train(replicated, ys)
            result["dp_replicated"] = all(
                v.value.sharding.is_fully_replicated for v in replicated.variables
            )
        result["weights_moved"] = max_diff(weights, dp_after)
        result["step_diff"] = max_diff(dp_after, after)
    print("RESULTS" + json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def sharded_runs():
    env = dict(os.environ)
    # 8 virtual CPU devices; LLVM optimization off roughly halves the compile time that
    # dominates this tiny-model run; the comparisons below are within 1e-5 either way.
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0"
    env["KERAS_BACKEND"] = "jax"
    env["JAX_PLATFORMS"] = "cpu"
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps([TINY, CASES])],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    line = [s for s in process.stdout.splitlines() if s.startswith("RESULTS")][-1]
    return json.loads(line[len("RESULTS") :])


CASE_NAMES = [case[0] for case in CASES]
TRAINED = [case[0] for case in CASES if case[4]]


def expected_spec(path, case):
    """The sharding this test expects, written independently of the module's regexes."""
    options = next(c[3] for c in CASES if c[0] == case)
    d = options.get("data_axis")
    by_hidden = options.get("embedding_axis") == "hidden"
    if path == "Embedding-Token/embeddings":
        return [d, "model"] if by_hidden else ["model", d]
    if path == "MLM-Bias/bias":
        return [None] if by_hidden else ["model"]
    block = re.fullmatch(
        r"Transformer(-\d+|-Group\d+)?(-Inner\d+)?-(MultiHeadSelfAttention|FeedForward)"
        r"/(\w+)/(kernel|bias)",
        path,
    )
    if block:
        sublayer, variable = block.group(4), block.group(5)
        column = sublayer in ("query", "key", "value", "intermediate")
        if variable == "kernel":
            return [d, "model"] if column else ["model", d]
        return ["model"] if column else [None]
    return [None] * (2 if path.endswith(("kernel", "embeddings")) else 1)


def test_subprocess_has_eight_devices(sharded_runs):
    assert sharded_runs["devices"] == 8


@pytest.mark.parametrize("case", CASE_NAMES)
def test_model_parallel_forward_matches_unsharded(sharded_runs, case):
    result = sharded_runs["cases"][case]
    assert result["forward_scale"] > 0
    assert result["forward_diff"] < 1e-5, result["forward_diff"]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_every_kernel_matches_exactly_one_rule(sharded_runs, case):
    result = sharded_runs["cases"][case]
    kernels = {p: v for p, v in result["variables"].items() if len(v["shape"]) >= 2}
    assert "Embedding-Token/embeddings" in kernels
    bad = {p: v["keys"] for p, v in kernels.items() if len(v["keys"]) != 1}
    assert not bad, bad
    assert result["check_error"] is None


@pytest.mark.parametrize("case", CASE_NAMES)
def test_variables_are_sharded_as_designed(sharded_runs, case):
    variables = sharded_runs["cases"][case]["variables"]
    sizes = {"model": 4, "batch": 2, None: 1}
    sharded = 0
    for path, v in variables.items():
        expected = expected_spec(path, case)
        assert v["spec"] == expected, (path, v["spec"], expected)
        # each device holds only its slice (or everything, for replicated variables)
        assert v["shard_shape"] == [s // sizes[a] for s, a in zip(v["shape"], expected)], path
        assert v["replicated"] == all(a is None for a in expected), path
        sharded += not v["replicated"]
    blocks = sum(p.endswith("FeedForward/output/kernel") for p in variables)
    assert blocks >= 1
    # the token table and, per block, 6 kernels and 4 biases
    assert sharded >= 1 + 10 * blocks


@pytest.mark.parametrize("case", TRAINED)
def test_training_step_under_model_and_data_parallel(sharded_runs, case):
    result = sharded_runs["cases"][case]
    assert result["weights_moved"] > 1e-3  # the step did something
    # ModelParallel's step is DataParallel's step (the unsharded arithmetic)
    assert abs(result["loss"] - result["dp_loss"]) < 1e-5 * max(1.0, result["dp_loss"])
    assert result["step_diff"] < 1e-5, result["step_diff"]
    # the optimizer update keeps every variable's layout
    after = result["specs_after_step"]
    assert {p: v["spec"] for p, v in result["variables"].items()} == after


@pytest.mark.parametrize("case", TRAINED)
def test_data_parallel_works_unchanged(sharded_runs, case):
    result = sharded_runs["cases"][case]
    assert result["dp_replicated"]
    assert result["dp_forward_diff"] < 1e-5


# -- bad input, checked in this (one-device) process: meshes need no real devices here -----
def fake_mesh(shape, axis_names):
    count = 1
    for size in shape:
        count *= size
    return keras.distribution.DeviceMesh(shape, axis_names, [f"cpu:{i}" for i in range(count)])


def test_mesh_without_model_axis_is_an_error():
    mesh = fake_mesh((8,), ("batch",))
    with pytest.raises(kerasbert.KerasBertError, match=r"model_axis='model'.*\['batch'\]"):
        get_layout_map(mesh)


def test_mesh_without_data_axis_is_an_error():
    mesh = fake_mesh((2, 4), ("data", "model"))
    with pytest.raises(DistributionError, match=r"data_axis='batch'.*\['data', 'model'\]"):
        get_layout_map(mesh, data_axis="batch")


def test_other_bad_arguments():
    mesh = fake_mesh((2, 4), ("batch", "model"))
    with pytest.raises(DistributionError, match="DeviceMesh"):
        get_layout_map(("batch", "model"))
    with pytest.raises(DistributionError, match="both 'model'"):
        get_layout_map(mesh, data_axis="model")
    with pytest.raises(DistributionError, match="embedding_axis='rows'"):
        get_layout_map(mesh, embedding_axis="rows")
    with pytest.raises(DistributionError, match="keras.Model or a config"):
        get_layout_map(mesh, model=42)


def test_indivisible_vocabulary_is_reported_before_building():
    mesh = fake_mesh((2, 4), ("batch", "model"))
    config = dict(TINY, vocab_size=30522)
    with pytest.raises(DistributionError, match=r"Embedding-Token/embeddings.*30522.*'model'"):
        get_layout_map(mesh, model=config)
    # the suggested remedy works: shard the embedding size instead
    layout_map = get_layout_map(mesh, embedding_axis="hidden", model=config)
    assert layout_map["Embedding-Token/embeddings"].axes == (None, "model")


def test_check_of_a_built_model():
    mesh = fake_mesh((1, 4), ("batch", "model"))
    model = kerasbert.build_transformer_model(dict(TINY), with_mlm=True)
    check_layout_map(get_layout_map(mesh), model)  # fits
    odd = kerasbert.build_transformer_model(dict(TINY, intermediate_size=30))
    with pytest.raises(DistributionError, match=r"FeedForward/intermediate/kernel.*\(16, 30\)"):
        get_layout_map(mesh, model=odd)
    inputs = keras.Input((4,))
    unrelated = keras.Model(inputs, keras.layers.Dense(8)(inputs))
    with pytest.raises(DistributionError, match="nothing would be sharded"):
        get_layout_map(mesh, model=unrelated)


@pytest.mark.parametrize(
    "model, options",
    [
        ("bert", {"application": "unilm", "with_pool": True, "with_nsp": True}),
        ("nezha", {"application": "lm", "with_mlm": True}),
        ("roformer", {"application": "unilm", "with_mlm": True, "embedding_size": 8}),
        ("roformer_v2", {"application": "lm", "with_mlm": True, "embedding_size": 8}),
        ("albert", {"embedding_size": 8, "num_hidden_layers": 2, "num_hidden_groups": 2}),
        ("bert", {"layer_norm_cond": "cond", "layer_norm_cond_hidden_size": 8}),
    ],
)
def test_layout_keys_cover_model_variants(model, options):
    # No sharding here, only matching: every kernel of these variants has exactly one rule.
    options = dict(options)
    if options.get("layer_norm_cond") == "cond":
        condition = keras.Input((4,), name="Condition")
        options.update(layer_norm_cond=condition, additional_input_layers=condition)
    layout_map = get_layout_map(fake_mesh((1, 4), ("batch", "model")))
    built = kerasbert.build_transformer_model(dict(TINY), model=model, **options)
    kernels = [v.path for v in built.variables if len(v.shape) >= 2]
    matches = {p: [k for k in layout_map if re.fullmatch(k, p)] for p in kernels}
    assert all(len(keys) == 1 for keys in matches.values()), matches
    if options.get("layer_norm_cond") is not None:
        assert any("Norm/gamma_dense/kernel" in p for p in kernels)
    check_layout_map(layout_map, built)
