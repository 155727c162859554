"""The family registry: every family through every format, its name tables both ways, and
the package's layering (no import cycles; only the registry and a family's own model files
name a family).

A new family is covered here by adding its record: the round trip builds each of its
models with random weights (LayerNorm and biases included, so a mis-mapped weight shows),
writes it in every format it converts to, reads it back and compares every variable and
every output.
"""

import ast
import json
import pathlib

import keras
import numpy as np
import pytest

import kerasbert
from kerasbert import families
from kerasbert.convert import convert, load_model
from kerasbert.models import save_tf_checkpoint

PACKAGE = pathlib.Path(kerasbert.__file__).parent
BASE_CONFIG = {
    "vocab_size": 23, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 12, "max_position_embeddings": 16, "type_vocab_size": 2,
    "hidden_act": "gelu",
}  # fmt: skip
MODEL_ENTRIES = [(f.name, m) for f in families.FAMILIES.values() for m in f.models]
EACH_MODEL = pytest.mark.parametrize(
    "family_name, entry", MODEL_ENTRIES, ids=[m.name for _, m in MODEL_ENTRIES]
)


def _config(family):
    return dict(BASE_CONFIG, model_type=family.model_types[0], **family.tiny_config)


def _heads(family):
    """Every head the family's checkpoints can hold; logits rather than probabilities."""
    return {option: True if option == "with_pool" else "linear" for option in family.heads}


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.5, variable.shape).astype(variable.dtype))


INPUTS = [np.array([[2, 5, 7, 9, 3, 0], [2, 11, 3, 0, 0, 0]], "int32"),
          np.array([[0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0]], "int32")]  # fmt: skip


def _outputs(model):
    outputs = model.predict(INPUTS[: len(model.inputs)], verbose=0)  # GPT-2: token ids only
    return [np.asarray(o) for o in (outputs if isinstance(outputs, list) else [outputs])]


def _assert_same_model(got, expected):
    want = {v.path: v.numpy() for v in expected.weights}
    have = {v.path: v.numpy() for v in got.weights}
    assert sorted(have) == sorted(want)
    for path, value in want.items():
        np.testing.assert_array_equal(have[path], value, err_msg=path)
    for a, b in zip(_outputs(got), _outputs(expected), strict=True):
        np.testing.assert_array_equal(a, b)


@EACH_MODEL
def test_every_model_round_trips_through_every_format(family_name, entry, tmp_path):
    family = families.get(family_name)
    config, heads = _config(family), _heads(family)
    built = kerasbert.build_transformer_model(config, model=entry.name, **heads)
    _randomize(built)

    # Keras files hold any model.
    built.save_weights(tmp_path / "model.weights.h5")
    again = kerasbert.build_transformer_model(
        config, tmp_path / "model.weights.h5", model=entry.name, **heads
    )
    _assert_same_model(again, built)
    built.save(tmp_path / "model.keras")
    _assert_same_model(keras.saving.load_model(tmp_path / "model.keras"), built)
    if not entry.canonical:
        return

    # Canonical names: the original TF format, then convert to every target and back.
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.json").write_text(json.dumps(config))
    save_tf_checkpoint(built, source / family.tf_files[0])
    loaded = kerasbert.build_transformer_model(source / "config.json", source, **heads)
    assert type(kerasbert.models.mapping_for_model(loaded)) is dict
    _assert_same_model(loaded, built)
    targets = ["keras", "tf"] + (["safetensors"] if families.name_table(family, "hf") else [])
    for target in targets:
        out = convert(source, tmp_path / target, to=target)
        _assert_same_model(load_model(out, **heads), built)


@EACH_MODEL
def test_a_built_model_is_detected_as_its_family(family_name, entry):
    family = families.get(family_name)
    model = kerasbert.build_transformer_model(_config(family), model=entry.name)
    assert families.get(entry.name) is family
    assert families.detect_from_config(_config(family)) == family_name
    if entry.canonical:
        assert families.detect_from_layers(families.model_layer_names(model)) is family
        names = kerasbert.models.model_arrays(model)
        candidates = families.candidates_from_names(names)
        assert family_name in candidates
        assert families.detect_from_names(names, hint=family_name) == family_name
        if len(candidates) == 1:
            assert families.detect_from_names(names) == family_name
        else:  # names several families share (NEZHA's, RoFormer's) are never guessed
            with pytest.raises(kerasbert.errors.ModelTypeError, match="several families"):
                families.detect_from_names(names)


NAME_TABLES = [(f.name, naming) for f in families.FAMILIES.values() for naming in f.names]


@pytest.mark.parametrize("family_name, naming", NAME_TABLES)
def test_every_name_table_reads_back_what_it_writes(family_name, naming):
    table = families.get(family_name).names[naming]
    examples = list(table.examples())
    assert examples
    for canonical in examples:
        written = table.place(canonical)
        assert written is not None, (naming, canonical)
        # One stored tensor may hold several canonical ones (GPT-2's fused c_attn).
        assert written in table.translate(written.stored), (naming, canonical)


def test_families_without_hf_names_are_those_hf_lacks():
    # HF transformers has no RoFormer v2: it converts to TF checkpoints and Keras files only.
    assert [f.name for f in families.FAMILIES.values() if "hf" not in f.names] == ["roformer_v2"]


def test_registry_names_are_unique_and_importable():
    models = families.model_names()
    assert len(models) == len(set(models))
    assert not set(models) & (set(families.names()) - set(models))
    for _, entry in MODEL_ENTRIES:
        builder = entry.builder_class()
        assert getattr(kerasbert.models, builder.__name__) is builder
        for alias in entry.aliases:
            assert getattr(kerasbert.models, alias) is builder
    with pytest.raises(kerasbert.errors.ModelTypeError, match="known families"):
        families.get("gpt-17")


def _imports(path, modules):
    """The kerasbert modules a file imports, at any depth (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found & set(modules)


def _package_modules():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def test_no_import_cycles_inside_kerasbert():
    modules = _package_modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    state, cycles = {}, []

    def visit(name, stack):
        state[name] = "open"
        for imported in sorted(graph[name]):
            if state.get(imported) == "open":
                cycles.append(" -> ".join(stack[stack.index(imported) :] + [imported]))
            elif imported not in state:
                visit(imported, stack + [imported])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles


def _string_constants(path):
    """String literals of a module that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        is_string = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_string and id(node) not in docstrings:
            yield node.lineno, node.value


def test_only_the_registry_and_model_files_name_a_family():
    """Readers, writers, detection, conversion, the index and the CLI ask the registry."""
    names = set(families.names()) | set(families.model_names())
    own_files = {
        PACKAGE.parent / (entry.builder.partition(":")[0].replace(".", "/") + ".py")
        for _, entry in MODEL_ENTRIES
    }
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "families") or path in own_files:
            continue
        for line, value in _string_constants(path):
            if value.lower() in names:
                found.append(f"{path.relative_to(PACKAGE)}:{line}: {value!r}")
    assert not found, found
