"""GPT-2 against HF transformers' GPT2LMHeadModel (tools/make_gpt2_fixtures.py), from HF
safetensors, OpenAI's original TF names and bert4keras's GPT names: logits and the last
hidden state, detection, the output activation, loading errors, conversion both ways,
inspection, mixed precision and the layout map."""

import hashlib
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import FIXTURES, goldens
from safetensors.numpy import load_file, save_file

import kerasbert
from kerasbert.checkpoints import open_checkpoint
from kerasbert.checkpoints.inspect import inspect
from kerasbert.config import load_config
from kerasbert.convert import convert, load_model
from kerasbert.distribution import check_layout_map, get_layout_map
from kerasbert.errors import CheckpointError, ConfigError, ModelTypeError, WeightLoadingError
from kerasbert.families import detect_checkpoint, detect_from_config
from kerasbert.models import GPT2, IncrementalModel, resolve_model
from kerasbert.tokenizers import BPETokenizer

ROOT = FIXTURES / "gpt2_tiny"
HF, OPENAI, B4K = ROOT / "hf", ROOT / "openai", ROOT / "bert4keras"
# (config, checkpoint) of each format
FORMATS = {
    "hf": (HF / "config.json", HF / "model.safetensors"),
    "openai": (OPENAI / "hparams.json", OPENAI / "model.ckpt"),
    "bert4keras": (B4K / "config.json", B4K / "model.ckpt"),
}
LOGITS_ATOL, HIDDEN_ATOL = 5e-5, 1e-5
NO_FAMILY_CONFIG = {"vocab_size": 1, "hidden_size": 1, "num_hidden_layers": 1,
                    "num_attention_heads": 1, "intermediate_size": 1}  # fmt: skip


def _real(g):
    """The real (unpadded) positions of the goldens' batch."""
    return np.arange(g["token_ids"].shape[1])[None] < g["lengths"][:, None]


def _hidden_and_output(model, token_ids):
    sub = keras.Model(model.inputs, [model.get_layer("Output-Norm").output, model.output])
    return sub.predict(token_ids, verbose=0)


def _diffs(model, g):
    hidden, logits = _hidden_and_output(model, g["token_ids"])
    real = _real(g)
    return {
        "logits": float(np.abs(logits - g["logits"])[real].max()),
        "last_hidden_state": float(np.abs(hidden - g["last_hidden_state"])[real].max()),
    }


@pytest.fixture(scope="module")
def g():
    return goldens(ROOT)


# -- parity ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_matches_hf(fmt, g):
    config, checkpoint = FORMATS[fmt]
    model = kerasbert.build_transformer_model(config, checkpoint, final_activation="linear")
    assert [i.name for i in model.inputs] == ["Input-Token"]
    diffs = _diffs(model, g)
    assert diffs["logits"] < LOGITS_ATOL and diffs["last_hidden_state"] < HIDDEN_ATOL, diffs


def test_right_padding_leaves_the_real_tokens_alone(g):
    """Attention is causal: padding after a text cannot change its outputs (whatever the
    pad id; bert4keras's mask of id 0 only matters at and after a real token 0)."""
    model = kerasbert.build_transformer_model(*FORMATS["hf"], final_activation="linear")
    row, length = 2, int(g["lengths"][2])
    alone = model.predict(g["token_ids"][row : row + 1, :length], verbose=0)
    padded_with_7 = g["token_ids"][row : row + 1].copy()
    padded_with_7[0, length:] = 7
    other = model.predict(padded_with_7, verbose=0)[:, :length]
    np.testing.assert_allclose(alone, g["logits"][row : row + 1, :length], atol=LOGITS_ATOL)
    np.testing.assert_allclose(other, alone, atol=1e-6)


def test_final_activation_softmax_by_default(g):
    model = kerasbert.build_transformer_model(*FORMATS["bert4keras"])
    probabilities = model.predict(g["token_ids"], verbose=0)
    assert model.get_layer("LM-Activation").activation.__name__ == "softmax"
    logits = g["logits"].astype(np.float64)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    real = _real(g)
    np.testing.assert_allclose(probabilities[real], expected[real], atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)


def test_builder_options():
    sizes = {"vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
             "num_attention_heads": 2, "intermediate_size": 16}  # fmt: skip
    for option in ("with_pool", "with_nsp", "with_mlm"):
        with pytest.raises(ConfigError, match=f"GPT-2 has no.*{option}"):
            GPT2(**sizes, **{option: True})
    with pytest.raises(ModelTypeError, match="causal language model"):
        GPT2(**sizes, application="unilm")
    with pytest.raises(ConfigError, match="scale_attn_by_inverse_layer_idx=True"):
        config = dict(json.loads((HF / "config.json").read_text()))
        kerasbert.build_transformer_model(
            dict(config, scale_attn_by_inverse_layer_idx=True), HF / "model.safetensors"
        )
    builder = GPT2(**sizes, application="encoder")  # always causal, as bert4keras's
    model = builder.build()
    assert builder.application == "lm" and "Attention-LM-Mask" in [x.name for x in model.layers]
    assert "Input-Segment" not in [i.name for i in model.inputs]


# -- configs and detection ----------------------------------------------------------------------
def test_configs_of_each_format_read_alike():
    read = {fmt: load_config(config, family="gpt2") for fmt, (config, _) in FORMATS.items()}
    for fmt, config in read.items():
        assert (config["vocab_size"], config["hidden_size"], config["num_hidden_layers"],
                config["num_attention_heads"], config["intermediate_size"],
                config["max_position"]) == (100, 32, 2, 4, 64, 32), fmt  # fmt: skip
        assert config["hidden_act"] == "gelu_tanh" and config["layer_norm_eps"] == 1e-5, fmt
    # OpenAI's hparams.json as released: no n_inner, no epsilon, no activation.
    openai = load_config({"n_vocab": 50257, "n_ctx": 1024, "n_embd": 768, "n_head": 12,
                          "n_layer": 12})  # fmt: skip
    assert openai["intermediate_size"] == 3072 and openai["max_position"] == 1024
    assert openai["layer_norm_eps"] == 1e-5 and openai["hidden_act"] == "gelu_tanh"
    # A bert4keras-style config gets GPT-2's epsilon once the checkpoint says GPT-2.
    builder = kerasbert.build_transformer_model(*FORMATS["bert4keras"], return_keras_model=False)
    assert builder.layer_norm_eps == 1e-5 and builder.hidden_act == "gelu_tanh"


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_detected_from_each_formats_names(fmt):
    config, path = FORMATS[fmt]
    checkpoint = open_checkpoint(path)
    assert detect_checkpoint(checkpoint) == "gpt2"
    assert resolve_model(None, NO_FAMILY_CONFIG, checkpoint) == "gpt2"
    model = kerasbert.build_transformer_model(config, path)  # model="auto"
    assert model.name == "gpt2"
    assert "gpt/transformer/layer_1/attention/self/value/kernel" in checkpoint.names()
    assert checkpoint.shape("gpt/transformer/layer_1/attention/self/value/kernel") == (32, 32)


def test_detected_from_configs():
    assert detect_from_config(json.loads((HF / "config.json").read_text())) == "gpt2"
    assert detect_from_config(json.loads((OPENAI / "hparams.json").read_text())) == "gpt2"
    assert detect_from_config(json.loads((B4K / "config.json").read_text())) is None


@pytest.mark.parametrize(
    "fmt,wrong", [("hf", "bert"), ("openai", "nezha"), ("bert4keras", "roformer")]
)
def test_a_contradicting_model_names_the_family(fmt, wrong):
    config, checkpoint = FORMATS[fmt]
    with pytest.raises(ModelTypeError, match=f"model='{wrong}'.*looks like gpt2.*'gpt2'"):
        kerasbert.build_transformer_model(config, checkpoint, model=wrong)
    with pytest.raises(ModelTypeError, match="model='gpt2'.*looks like bert"):
        bert = FIXTURES / "bert_tiny_gelu"
        kerasbert.build_transformer_model(bert, bert, model="gpt2")


def test_inspect():
    summary = inspect(HF / "model.safetensors")
    assert summary.family == "gpt2" and summary.other_variables == []
    stored = load_file(HF / "model.safetensors")
    assert summary.num_parameters == sum(v.size for v in stored.values())
    openai = inspect(OPENAI / "model.ckpt")
    assert openai.family == "gpt2" and openai.num_parameters == summary.num_parameters
    assert inspect(B4K / "model.ckpt").num_parameters == summary.num_parameters


def test_reads_the_hubs_gpt2model_names_and_buffers(tmp_path, g):
    """openai-community/gpt2's model.safetensors: GPT2Model's names (no "transformer."),
    the causal-mask buffers attn.bias / attn.masked_bias (skipped)."""
    tensors = {
        k.removeprefix("transformer."): v for k, v in load_file(HF / "model.safetensors").items()
    }
    for layer in (0, 1):
        tensors[f"h.{layer}.attn.bias"] = np.tril(np.ones((1, 1, 32, 32), "float32"))
        tensors[f"h.{layer}.attn.masked_bias"] = np.array(-1e4, "float32")
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    checkpoint = open_checkpoint(tmp_path / "model.safetensors")
    assert sorted(checkpoint.ignored_names) == sorted(
        f"h.{i}.attn.{b}" for i in (0, 1) for b in ("bias", "masked_bias")
    )
    model = kerasbert.build_transformer_model(HF, checkpoint, final_activation="linear")
    diffs = _diffs(model, g)
    assert diffs["logits"] < LOGITS_ATOL and diffs["last_hidden_state"] < HIDDEN_ATOL, diffs


# -- loading errors -------------------------------------------------------------------------------
def _copy(folder, drop=(), change=None):
    folder.mkdir()
    tensors = load_file(HF / "model.safetensors")
    for name in drop:
        del tensors[name]
    tensors.update(change or {})
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text((HF / "config.json").read_text())
    return folder


def test_missing_and_misshaped_variables_are_named(tmp_path):
    missing = _copy(tmp_path / "a", drop=["transformer.h.1.attn.c_attn.weight"])
    with pytest.raises(WeightLoadingError) as info:
        kerasbert.build_transformer_model(missing, missing)
    for part in ("query", "key", "value"):
        assert f"gpt/transformer/layer_1/attention/self/{part}/kernel" in str(info.value)
    norm = {"transformer.ln_f.bias": np.zeros(5, "float32")}
    with pytest.raises(WeightLoadingError, match=r"gpt/output/LayerNorm/beta.*\(5,\).*\(32,\)"):
        kerasbert.build_transformer_model(HF, _copy(tmp_path / "b", change=norm))
    fused = {"transformer.h.0.attn.c_attn.weight": np.zeros((32, 95), "float32")}
    with pytest.raises((WeightLoadingError, CheckpointError), match="c_attn"):
        kerasbert.build_transformer_model(HF, _copy(tmp_path / "c", change=fused))
    with pytest.raises(WeightLoadingError, match="shape mismatch"):
        kerasbert.build_transformer_model(HF, HF, intermediate_size=24)


# -- conversion -----------------------------------------------------------------------------------
def test_convert_round_trips(tmp_path, g):
    """HF safetensors -> bert4keras-named TF -> HF safetensors, and -> Keras: the same
    arrays bit for bit (the TF output holds the bert4keras fixture's), the same outputs."""
    tf_out = Path(convert(HF, tmp_path / "tf", to="tf"))
    written, fixture = open_checkpoint(tf_out), open_checkpoint(B4K / "model.ckpt")
    assert written.names() == fixture.names()
    for name in fixture.names():
        assert written.read(name).tobytes() == fixture.read(name).tobytes(), name
    tf_config = json.loads((tf_out / "config.json").read_text())
    assert "model_type" not in tf_config and tf_config["hidden_act"] == "gelu_tanh"
    hf_out = Path(convert(tf_out, tmp_path / "hf", to="safetensors"))
    again, original = load_file(hf_out / "model.safetensors"), load_file(HF / "model.safetensors")
    assert sorted(again) == sorted(original)
    for name, value in original.items():
        assert again[name].tobytes() == value.tobytes(), name
    config = json.loads((hf_out / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["model_type"] == "gpt2"
    assert (config["n_embd"], config["n_layer"], config["n_head"], config["n_inner"],
            config["n_positions"], config["activation_function"],
            config["layer_norm_epsilon"]) == (32, 2, 4, 64, 32, "gelu_new", 1e-5)  # fmt: skip
    assert "hidden_size" not in config and "hidden_act" not in config
    keras_out = convert(OPENAI / "model.ckpt", tmp_path / "keras", to="keras",
                        config=OPENAI / "hparams.json")  # fmt: skip
    for folder in (tf_out, hf_out, keras_out):
        diffs = _diffs(load_model(folder, final_activation="linear"), g)
        assert diffs["logits"] < LOGITS_ATOL and diffs["last_hidden_state"] < HIDDEN_ATOL


def test_converted_safetensors_are_those_transformers_loaded(tmp_path):
    """tools/make_gpt2_fixtures.py loaded kerasbert's safetensors in GPT2LMHeadModel with
    every parameter equal (hf_loads.json); kerasbert must still write exactly those files."""
    record = json.loads((ROOT / "hf_loads.json").read_text())
    assert record["transformers"] == "4.57.6"
    sources = {"from_bert4keras": (B4K, None), "from_openai": (OPENAI / "model.ckpt",
               OPENAI / "hparams.json")}  # fmt: skip
    for name, (source, config) in sources.items():
        result = record["models"][name]
        assert result["parameters_equal"] and result["max_abs_logits_diff"] == 0.0
        assert result["loading_info"]["missing_keys"] == []
        assert result["loading_info"]["unexpected_keys"] == []
        out = Path(convert(source, tmp_path / name, to="safetensors", config=config))
        digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
        assert digest == result["sha256"], name
        assert sorted(load_file(out / "model.safetensors")) == result["tensors"]


# -- training options and distribution ------------------------------------------------------------
def test_mixed_precision_smoke(g):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = kerasbert.build_transformer_model(*FORMATS["hf"], final_activation="linear")
        logits = model.predict(g["token_ids"], verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert logits.dtype == "float32" and {v.dtype for v in model.weights} == {"float32"}
    real = _real(g)
    scale = float(np.abs(g["logits"][real]).max())
    assert float(np.abs(logits - g["logits"])[real].max()) < 0.05 * scale


def test_layout_map_covers_every_kernel():
    mesh = keras.distribution.DeviceMesh((1, 1), ("batch", "model"),
                                         keras.distribution.list_devices()[:1])  # fmt: skip
    layout_map = get_layout_map(mesh)
    model = kerasbert.build_transformer_model(*FORMATS["hf"])
    kernels = [v.path for v in model.variables if len(v.shape) >= 2]
    matches = {p: [k for k in layout_map if re.fullmatch(k, p)] for p in kernels}
    assert all(len(keys) == 1 for keys in matches.values()), matches
    assert len(kernels) == 2 + 2 * 6  # token + position tables; q, k, v, o, ffn in, out
    check_layout_map(layout_map, model)


# -- cached decoding ------------------------------------------------------------------------------
def test_cached_decoding_equals_full_recompute():
    builder = kerasbert.build_transformer_model(
        *FORMATS["hf"], final_activation="linear", return_keras_model=False
    )
    rng = np.random.default_rng(5)
    ids = rng.integers(1, 100, size=(2, 32)).astype("int32")
    full = builder.model.predict(ids, verbose=0)
    step = IncrementalModel(builder)  # max_length: the 32 positions of the table
    assert step.max_length == 32
    outputs, cache = step(ids[:, :6])
    pieces = [outputs]
    for start, end in [(6, 7), (7, 8), (8, 32)]:  # widths 1, 1, 24 (padded to 32 - 8)
        outputs, cache = step(ids[:, start:end], cache=cache)
        pieces.append(outputs)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, atol=1e-5, rtol=1e-5)


def test_greedy_generation_with_the_cache_equals_hf_generate(g):
    """Greedy decoding over the cached step gives HF generate's tokens (goldens), each the
    argmax of a full recompute of the prefix too."""
    builder = kerasbert.build_transformer_model(*FORMATS["hf"], return_keras_model=False)
    step = IncrementalModel(builder)
    prompt = g["token_ids"][:1, : int(g["lengths"][0])]
    probas, cache = step(prompt)
    sequence = list(prompt[0])
    for _ in range(len(g["greedy_tokens"])):
        token = int(np.argmax(probas[0, -1]))
        full = builder.model.predict(np.array([sequence]), verbose=0)
        assert token == int(np.argmax(full[0, -1]))
        sequence.append(token)
        probas, cache = step(np.array([[token]]), cache=cache)
    assert sequence[len(prompt[0]) :] == g["greedy_tokens"].tolist()
    assert step.num_compilations <= 2  # the prompt's width and width 1


def test_a_bert4keras_style_decoder_generates_hf_greedy_tokens(g):
    """bert4keras's GPT-2 scripts: an AutoRegressiveDecoder over ``last_token(model)``."""
    from kerasbert.snippets import AutoRegressiveDecoder

    model = kerasbert.build_transformer_model(*FORMATS["hf"])

    class Continuation(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="probas")
        def predict(self, inputs, output_ids, states):
            token_ids = np.concatenate([inputs[0], output_ids], 1)
            return self.last_token(model).predict(token_ids, verbose=0)

    decoder = Continuation(start_id=None, end_id=None, maxlen=len(g["greedy_tokens"]))
    prompt = g["token_ids"][0, : int(g["lengths"][0])]
    assert [int(t) for t in decoder.beam_search([prompt], topk=1)] == g["greedy_tokens"].tolist()


# -- the byte-level BPE tokenizer -----------------------------------------------------------------
CORPUS_LINES = (ROOT / "corpus.txt").read_text(encoding="utf-8").split("\n")[:-1]


@pytest.fixture(scope="module")
def tokenizer_goldens():
    return json.loads((ROOT / "tokenizer_goldens.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("fast", [False, True], ids=["python", "rust"])
def test_tokenizer_equals_hf_slow_gpt2_tokenizer(fast, tokenizer_goldens):
    tokenizer = BPETokenizer(ROOT, fast=fast)
    assert tokenizer.uses_fast_path is fast
    assert len(CORPUS_LINES) == len(tokenizer_goldens["lines"]) == 36
    mismatches = [
        (line, tokenizer.encode(line), ids)
        for line, ids in zip(CORPUS_LINES, tokenizer_goldens["lines"], strict=True)
        if tokenizer.encode(line) != ids
    ]
    assert mismatches == []
    whole = (ROOT / "corpus.txt").read_text(encoding="utf-8")
    assert tokenizer.encode(whole) == tokenizer_goldens["whole"]
    for line in CORPUS_LINES + [whole]:
        assert tokenizer.decode(tokenizer.encode(line)) == line
        assert tokenizer.tokens_to_ids(tokenizer.tokenize(line)) == tokenizer.encode(line)


def test_tokenizer_api():
    tokenizer = BPETokenizer(ROOT / "vocab.json", fast=False)  # merges.txt beside it
    assert kerasbert.tokenizers.GPT2Tokenizer is BPETokenizer
    assert tokenizer.vocab_size == 400 and tokenizer.token_to_id("<|endoftext|>") == 0
    tokens = tokenizer.tokenize("Two texts<|endoftext|>")  # the special token kept whole
    assert tokens[-1] == "<|endoftext|>" and "".join(tokens[:-1]) == "TwoĠtexts"
    assert tokenizer.id_to_token(tokenizer.token_to_id(tokens[1])) == tokens[1]
    assert tokenizer.token_to_id("no such token") is None
    assert tokenizer.encode("Hello world!", maxlen=2) == tokenizer.encode("Hello world!")[:2]
    # Bytes that are not UTF-8 on their own decode as U+FFFD, as HF's tokenizer does.
    emoji = tokenizer.encode("😀")
    assert len(emoji) > 1 and tokenizer.decode(emoji[:1]) == "\ufffd"
    from kerasbert.tokenizers.choice import tokenizer_for

    assert isinstance(tokenizer_for(ROOT / "vocab.json"), BPETokenizer)  # index downloads
    with pytest.raises(kerasbert.errors.KerasBertError, match="merges"):
        BPETokenizer({"a": 0})
    with pytest.raises(kerasbert.errors.KerasBertError, match="not in the vocabulary"):
        BPETokenizer({"a": 0}, [], special_tokens=["<|x|>"])
