"""T5 1.0, T5 1.1 and mT5 against HF transformers' T5/MT5ForConditionalGeneration
(tools/make_t5_fixtures.py), from HF safetensors and the original mesh-TF names: encoder
states and decoder logits over padded sources, the position buckets, bert4keras's API and
options, cached decoding and greedy generation, detection, loading errors, conversion,
mixed precision and the layout map."""

import json
import logging
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import FIXTURES, goldens, rewritten_safetensors

import kerasbert
from kerasbert.checkpoints import open_checkpoint
from kerasbert.convert import convert, load_model
from kerasbert.distribution import check_layout_map, get_layout_map
from kerasbert.errors import ConfigError, ModelTypeError, WeightLoadingError
from kerasbert.families import detect_checkpoint, detect_from_config
from kerasbert.layers.buckets import relative_position_buckets
from kerasbert.models.t5 import MT5, T5, T5_1_0
from kerasbert.models.t5_decoding import T5Generator, T5IncrementalDecoder
from kerasbert.snippets import AutoRegressiveDecoder, _select_rows

ROOT = FIXTURES / "t5_tiny"
VARIANTS = ["t5.1.0", "t5.1.1", "mt5.1.1"]
LOGITS_ATOL, STATES_ATOL = 5e-5, 1e-5


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request):
    return request.param


def _g(variant):
    return goldens(ROOT / variant)


def _target_real(g):
    """Decoder positions HF and kerasbert agree on: the start and every non-padding id
    (HF attends to the decoder's padding, kerasbert masks it as bert4keras does)."""
    ids = g["decoder_ids"]
    return (ids != 0) | (np.arange(ids.shape[1]) == 0)[None]


def _build(variant, checkpoint=None, **options):
    folder = ROOT / variant
    checkpoint = folder if checkpoint is None else checkpoint
    options.setdefault("with_lm", "linear")
    return kerasbert.build_transformer_model(
        folder, checkpoint, model=variant, return_keras_model=False, **options
    )


def _diffs(t5, g):
    states = t5.encoder.predict(g["encoder_ids"], verbose=0)
    logits = t5.model.predict([g["encoder_ids"], g["decoder_ids"]], verbose=0)
    return {
        "encoder_states": float(np.abs(states - g["encoder_states"])[g["encoder_ids"] != 0].max()),
        "decoder_logits": float(np.abs(logits - g["decoder_logits"])[_target_real(g)].max()),
    }


# -- parity ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["hf", "tf"])
def test_matches_hf(variant, fmt):
    checkpoint = ROOT / variant / ("tf/model.ckpt" if fmt == "tf" else "model.safetensors")
    t5 = _build(variant, checkpoint)
    diffs = _diffs(t5, _g(variant))
    assert diffs["encoder_states"] < STATES_ATOL and diffs["decoder_logits"] < LOGITS_ATOL, diffs
    # The original checkpoints' Adafactor slots and global_step are all that is left over.
    assert all(("_slot_" in n or n == "global_step") for n in t5.load_report.unused)


def test_decoder_over_encoder_states_equals_the_whole_model(variant):
    """bert4keras's API: ``t5.decoder.predict([t5.encoder.predict(x), y])`` is the model's
    output, the source's padding masked through the zero rows of the encoder states."""
    t5, g = _build(variant), _g(variant)
    states = t5.encoder.predict(g["encoder_ids"], verbose=0)
    assert np.all(states[g["encoder_ids"] == 0] == 0)
    through_states = t5.decoder.predict([states, g["decoder_ids"]], verbose=0)
    whole = t5.model.predict([g["encoder_ids"], g["decoder_ids"]], verbose=0)
    np.testing.assert_allclose(through_states, whole, atol=1e-6)
    # Padding a source further changes nothing at its real positions or in the decoder.
    padded = np.pad(g["encoder_ids"], ((0, 0), (0, 5)))
    again = t5.model.predict([padded, g["decoder_ids"]], verbose=0)
    np.testing.assert_allclose(again[_target_real(g)], whole[_target_real(g)], atol=1e-5)


def test_decoder_states_match_hf():
    g = _g("t5.1.1")
    t5 = _build("t5.1.1", with_lm=False)
    states = t5.model.predict([g["encoder_ids"], g["decoder_ids"]], verbose=0)
    real = _target_real(g)
    assert float(np.abs(states - g["decoder_states"])[real].max()) < STATES_ATOL


@pytest.mark.parametrize(
    "key,bidirectional,buckets,distance",
    [("buckets_bidirectional", True, 8, 16), ("buckets_unidirectional", False, 8, 16),
     ("buckets32_bidirectional", True, 32, 128), ("buckets32_unidirectional", False, 32, 128)],
)  # fmt: skip
def test_position_buckets_equal_hf(key, bidirectional, buckets, distance):
    distances = np.arange(-300, 301)
    got = relative_position_buckets(distances, bidirectional, buckets, distance)
    assert got.tolist() == _g("t5.1.1")[key].tolist()


def test_softmax_by_default_and_bert4keras_options():
    g = _g("t5.1.1")
    logits = _build("t5.1.1").model.predict([g["encoder_ids"], g["decoder_ids"]], verbose=0)
    probas = _build("t5.1.1", with_lm=True).model.predict(
        [g["encoder_ids"], g["decoder_ids"]], verbose=0
    )
    np.testing.assert_allclose(probas, keras.ops.convert_to_numpy(keras.ops.softmax(logits)),
                               atol=1e-6)  # fmt: skip
    # bert4keras's T5: the decoder's position bias in cross-attention too, and the output
    # rescaled before an untied head: other numbers, the same weights.
    scaled = _build("t5.1.1", output_scale=True).model.predict(
        [g["encoder_ids"], g["decoder_ids"]], verbose=0
    )
    np.testing.assert_allclose(scaled, logits * 16**-0.5, rtol=1e-5, atol=1e-6)
    crossed = _build("t5.1.1", cross_position_bias=True)
    assert "Decoder-Embedding-Relative-Position" in [layer.name for layer in crossed.model.layers]
    other = crossed.model.predict([g["encoder_ids"], g["decoder_ids"]], verbose=0)
    assert np.abs(other - logits).max() > 1e-2


def test_keep_tokens_shrink_the_embedding_and_the_untied_head():
    keep = [0, 1] + list(range(2, 101, 3))
    source, target = np.array([[2, 5, 8, 1]]), np.array([[0, 11, 14]])
    full = _build("t5.1.1").model.predict([source, target], verbose=0)
    small = _build("t5.1.1", keep_tokens=keep)
    assert small.layers["Decoder-Output-LM"].kernel.shape == (16, len(keep))
    remap = np.vectorize(keep.index)
    out = small.model.predict([remap(source), remap(target)], verbose=0)
    np.testing.assert_allclose(out, full[..., keep], atol=1e-5)


# -- cached decoding and generation ---------------------------------------------------------------
@pytest.mark.parametrize("cross_position_bias", [False, True])
def test_cached_decoding_equals_full_recompute(cross_position_bias):
    g = _g("t5.1.1")
    t5 = _build("t5.1.1", cross_position_bias=cross_position_bias)
    rng = np.random.default_rng(3)
    target = rng.integers(2, 101, size=(3, 12)).astype("int32")
    target[:, 0] = 0
    full = t5.model.predict([g["encoder_ids"], target], verbose=0)
    decoder = T5IncrementalDecoder(t5, max_length=16)
    cache = decoder.start(g["encoder_ids"])
    pieces = []
    for start, end in [(0, 3), (3, 4), (4, 5), (5, 12)]:
        outputs, cache = decoder.step(target[:, start:end], cache)
        pieces.append(outputs)
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cross_position_bias", [False, True])
def test_one_source_serves_every_row_without_copies(cross_position_bias):
    """A 1-row source decodes any number of target rows (beams, samples) as if it were
    repeated for each, and follows the beam's row reordering as it is."""
    g = _g("t5.1.1")
    t5 = _build("t5.1.1", cross_position_bias=cross_position_bias)
    decoder = T5IncrementalDecoder(t5, max_length=8)
    source = g["encoder_ids"][1:2]
    target = np.array([[0, 5, 6], [0, 7, 8], [0, 9, 9]], "int32")
    shared = decoder.start(source)
    shared = _select_rows(shared, np.zeros(3, int), 1)  # as the beam search's first step
    assert shared["source"].batch == 1 and shared["token_ids"].shape[0] == 3
    repeated = decoder.start(np.repeat(source, 3, axis=0))
    got, shared = decoder.step(target, shared)
    expected, _ = decoder.step(target, repeated)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert shared["source"].select_rows(np.array([2, 0]), 3) is shared["source"]


def _greedy(decoder, source, steps):
    """``steps`` greedy ids (EOS never stops it: every step runs)."""
    cache = decoder.start(source)
    outputs, cache = decoder.step(np.zeros((len(source), 1), "int32"), cache)
    for _ in range(steps):
        outputs, cache = decoder.step(outputs[:, -1].argmax(-1)[:, None].astype("int32"), cache)


def test_greedy_generation_equals_hf_generate(variant):
    """HF generate's greedy tokens, 12 new ones per source, finished rows padded with 0
    after EOS; and with EOS suppressed (``min_new_tokens``: id 1 never chosen)."""
    g, t5 = _g(variant), _build(variant)
    decoder = T5IncrementalDecoder(t5, max_length=16)
    assert decoder.greedy(g["encoder_ids"], 12).tolist() == g["greedy_ids"].tolist()
    forced = g["greedy_ids_min"]
    outputs, _ = decoder.step(forced[:, :-1], decoder.start(g["encoder_ids"]))
    outputs[..., 1] = -np.inf  # HF's min_new_tokens: EOS masked at every step
    assert outputs.argmax(-1).tolist() == forced[:, 1:].tolist()


def test_beam_search_and_sampling_with_the_cache_equal_recomputing():
    g = _g("t5.1.1")
    t5 = _build("t5.1.1", with_lm=True)

    class Uncached(AutoRegressiveDecoder):
        @AutoRegressiveDecoder.wraps(default_rtype="probas")
        def predict(self, inputs, output_ids, states):
            return t5.model.predict([inputs[0], output_ids], verbose=0)[:, -1]

    source = [g["encoder_ids"][1, :12]]
    for topk in (1, 3):
        expected = Uncached(start_id=0, end_id=1, maxlen=8).beam_search(source, topk=topk)
        got = T5Generator(t5, maxlen=8).beam_search(source, topk=topk)
        assert got.tolist() == expected.tolist()
    for topk, topp in ((5, None), (None, 0.8)):
        a = Uncached(start_id=0, end_id=1, maxlen=8).random_sample(
            source, 3, topk=topk, topp=topp, rng=np.random.default_rng(7)
        )
        b = T5Generator(t5, maxlen=8).random_sample(
            source, 3, topk=topk, topp=topp, rng=np.random.default_rng(7))  # fmt: skip
        assert [x.tolist() for x in a] == [x.tolist() for x in b]
    with pytest.raises(ConfigError, match="start id"):
        T5Generator(t5, start_id=None)


def test_steps_compile_once_per_batch_width_and_source_bucket(caplog):
    t5 = _build("t5.1.1")
    decoder = T5IncrementalDecoder(t5, max_length=32)
    rng = np.random.default_rng(1)

    def source(length, batch=2):
        return rng.integers(2, 101, size=(batch, length)).astype("int32")

    with caplog.at_level(logging.INFO, logger="kerasbert.models.decoding"):
        _greedy(decoder, source(9), steps=3)  # encoding (source 16) + a step of width 1
    warm = decoder.num_compilations
    assert warm == 2
    assert any("source 16" in r.getMessage() for r in caplog.records)
    _greedy(decoder, source(14), steps=20)  # another source length of the same bucket
    assert decoder.num_compilations == warm
    assert decoder._step.function._cache_size() == 1
    _greedy(decoder, source(20), steps=1)  # source bucket 32: its encoding and its step
    assert decoder.num_compilations == warm + 2


def test_decoder_errors():
    t5 = _build("t5.1.1")
    decoder = T5IncrementalDecoder(t5, max_length=4, max_source_length=20)
    with pytest.raises(ConfigError, match="max_source_length=20"):
        decoder.start(np.ones((1, 21), "int32"))
    with pytest.raises(ConfigError, match="integer ids"):
        decoder.start(np.ones((1, 3), "float32"))
    cache = decoder.start(np.ones((2, 3), "int32"))
    with pytest.raises(ConfigError, match="exceed max_length=4"):
        decoder.step(np.zeros((2, 5), "int32"), cache)
    with pytest.raises(ConfigError, match="cache has 2 rows"):
        decoder.step(np.zeros((3, 1), "int32"), cache)
    with pytest.raises(ConfigError, match="T5 builder"):
        T5IncrementalDecoder(kerasbert.build_transformer_model(
            ROOT.parent / "bert_tiny_gelu", return_keras_model=False))  # fmt: skip
    with pytest.raises(ConfigError, match="max_length must be a positive int"):
        T5IncrementalDecoder(t5, max_length=0)


# -- detection and configs ------------------------------------------------------------------------
def test_detected_from_names_and_configs(variant):
    for checkpoint in (ROOT / variant / "model.safetensors", ROOT / variant / "tf/model.ckpt"):
        assert detect_checkpoint(open_checkpoint(checkpoint)) == "t5"
    assert detect_from_config(json.loads((ROOT / variant / "config.json").read_text())) == "t5"
    t5 = kerasbert.build_transformer_model(ROOT / variant, ROOT / variant, with_lm="linear",
                                           return_keras_model=False)  # fmt: skip
    assert isinstance(t5, T5) and t5.tie_word_embeddings == (variant == "t5.1.0")
    assert t5.hidden_act == ("relu" if variant == "t5.1.0" else ["gelu_tanh", "linear"])
    assert (t5.relative_attention_num_buckets, t5.relative_attention_max_distance) == (8, 16)


def test_a_bert4keras_style_config():
    """bojone's T5 configs: BERT's keys, ``hidden_act: ["gelu", "linear"]``, no
    ``model_type`` (the model name decides the head)."""
    config = {"vocab_size": 101, "hidden_size": 16, "num_hidden_layers": 2,
              "num_attention_heads": 3, "attention_head_size": 6, "intermediate_size": 24,
              "hidden_act": ["gelu", "linear"], "relative_attention_num_buckets": 8,
              "relative_attention_max_distance": 16}  # fmt: skip
    t5 = kerasbert.build_transformer_model(config, ROOT / "mt5.1.1/tf/model.ckpt",
                                           model="mt5.1.1", with_lm="linear",
                                           return_keras_model=False)  # fmt: skip
    assert isinstance(t5, MT5) and t5.hidden_act == ["gelu_tanh", "linear"]
    diffs = _diffs(t5, _g("mt5.1.1"))
    assert diffs["decoder_logits"] < LOGITS_ATOL, diffs
    tied = kerasbert.build_transformer_model(dict(config, hidden_act="relu"), model="t5.1.0",
                                             return_keras_model=False)  # fmt: skip
    assert isinstance(tied, T5_1_0) and tied.tie_word_embeddings


def test_the_wrong_head_names_the_model():
    with pytest.raises(WeightLoadingError, match="untied head.*model='t5.1.1'"):
        kerasbert.build_transformer_model(ROOT / "t5.1.0", ROOT / "t5.1.1", model="t5.1.0")
    with pytest.raises(WeightLoadingError, match="no output kernel.*model='t5.1.0'"):
        kerasbert.build_transformer_model(ROOT / "t5.1.1", ROOT / "t5.1.0", model="t5.1.1")


def test_bad_options_and_contradictions():
    with pytest.raises(ModelTypeError, match="encoder-decoder"):
        _build("t5.1.1", application="lm")
    with pytest.raises(ConfigError, match="with_pool"):
        _build("t5.1.1", with_pool=True)
    with pytest.raises(ModelTypeError, match="looks like t5"):
        kerasbert.build_transformer_model(ROOT / "t5.1.1", ROOT / "t5.1.1", model="bert")
    bert = FIXTURES / "bert_tiny_gelu"
    with pytest.raises((ModelTypeError, ConfigError), match="bert"):
        kerasbert.build_transformer_model(bert, bert, model="t5.1.1")
    with pytest.raises(ConfigError, match="hidden_act"):
        _build("t5.1.1", hidden_act=["gelu", 3])


def test_missing_and_misshaped_variables_are_named(tmp_path):
    source = ROOT / "t5.1.1" / "model.safetensors"
    missing = rewritten_safetensors(
        source, tmp_path / "a", drop=["decoder.block.1.layer.1.EncDecAttention.k.weight"]
    )
    with pytest.raises(WeightLoadingError, match="decoder/block_001/layer_001/EncDecAttention/k"):
        _build("t5.1.1", missing)
    bias = {"encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight":
            np.zeros((32, 3), "float32")}  # fmt: skip
    misshaped = rewritten_safetensors(source, tmp_path / "b", change=bias)
    with pytest.raises(WeightLoadingError, match=r"relative_attention_bias.*\(3, 32\)"):
        _build("t5.1.1", misshaped)
    shallow = dict(json.loads((ROOT / "t5.1.1/config.json").read_text()), num_layers=1,
                   num_decoder_layers=1)  # fmt: skip
    with pytest.raises(WeightLoadingError, match="blocks the model lacks"):
        kerasbert.build_transformer_model(shallow, source, model="t5.1.1")


# -- conversion -----------------------------------------------------------------------------------
def test_convert_round_trips(variant, tmp_path):
    """HF safetensors -> original TF names -> HF safetensors (bit for bit) and -> Keras: the
    same outputs from each."""
    from safetensors.numpy import load_file

    g = _g(variant)
    tf_out = Path(convert(ROOT / variant, tmp_path / "tf", to="tf"))
    written, fixture = (
        open_checkpoint(tf_out / "model.ckpt"),
        open_checkpoint(ROOT / variant / "tf/model.ckpt"),
    )
    model_names = [n for n in fixture.names() if "_slot_" not in n and n != "global_step"]
    assert written.names() == sorted(model_names)  # mT5's rms_norm read as layer_norm
    for name in written.names():
        assert written.read(name).tobytes() == fixture.read(name).tobytes(), name
    hf_out = Path(convert(tf_out, tmp_path / "hf", to="safetensors"))
    again, original = (
        load_file(hf_out / "model.safetensors"),
        load_file(ROOT / variant / "model.safetensors"),
    )
    assert sorted(again) == sorted(original)
    assert all(again[k].tobytes() == v.tobytes() for k, v in original.items())
    config = json.loads((hf_out / "config.json").read_text())
    assert config["architectures"] == ["T5ForConditionalGeneration"]
    assert config["feed_forward_proj"] == ("relu" if variant == "t5.1.0" else "gated-gelu")
    assert (config["d_model"], config["d_kv"], config["d_ff"], config["num_heads"],
            config["num_layers"], config["num_decoder_layers"],
            config["tie_word_embeddings"]) == (16, 6, 24, 3, 2, 2, variant == "t5.1.0")  # fmt: skip
    keras_out = convert(ROOT / variant, tmp_path / "keras", to="keras")
    for folder in (tf_out, hf_out, keras_out):
        model = load_model(folder, model=variant, with_lm="linear")
        logits = model.predict([g["encoder_ids"], g["decoder_ids"]], verbose=0)
        diff = np.abs(logits - g["decoder_logits"])[_target_real(g)].max()
        assert diff < LOGITS_ATOL, (folder, diff)


def test_keras_file_round_trip(tmp_path):
    g = _g("t5.1.1")
    model = _build("t5.1.1").model
    model.save(tmp_path / "t5.keras")
    again = keras.saving.load_model(tmp_path / "t5.keras")
    np.testing.assert_array_equal(
        again.predict([g["encoder_ids"], g["decoder_ids"]], verbose=0),
        model.predict([g["encoder_ids"], g["decoder_ids"]], verbose=0),
    )


# -- training options and distribution ------------------------------------------------------------
def test_mixed_precision_smoke():
    g = _g("t5.1.1")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        t5 = _build("t5.1.1")
        logits = t5.model.predict([g["encoder_ids"], g["decoder_ids"]], verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert logits.dtype == "float32" and {v.dtype for v in t5.model.weights} == {"float32"}
    real = _target_real(g)
    scale = float(np.abs(g["decoder_logits"][real]).max())
    assert float(np.abs(logits - g["decoder_logits"])[real].max()) < 0.05 * scale


def test_layout_map_covers_every_kernel():
    mesh = keras.distribution.DeviceMesh((1, 1), ("batch", "model"),
                                         keras.distribution.list_devices()[:1])  # fmt: skip
    layout_map = get_layout_map(mesh)
    model = _build("t5.1.1").model
    kernels = [v.path for v in model.variables if len(v.shape) >= 2]
    matches = {p: [k for k in layout_map if re.fullmatch(k, p)] for p in kernels}
    assert all(len(keys) == 1 for keys in matches.values()), matches
    # shared embedding, 2 bias tables, the head; per encoder block q k v o + 3 FFN kernels,
    # per decoder block 8 attention + 3 FFN kernels
    assert len(kernels) == 4 + 2 * 7 + 2 * 11
    sharded = {p: layout_map[keys[0]].axes for p, keys in matches.items()}
    assert sharded["Decoder-Transformer-1-MultiHeadCrossAttention/key/kernel"] == (None, "model")
    assert sharded["Encoder-Transformer-0-FeedForward/intermediate_1/kernel"] == (None, "model")
    assert sharded["Decoder-Output-LM/kernel"] == (None, "model")
    check_layout_map(layout_map, model)


def test_trains():
    """One fit step on the whole model moves the loss (every layer is trainable and the
    gradient reaches the encoder through cross-attention)."""
    g = _g("t5.1.1")
    model = _build("t5.1.1", with_lm=True).model
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    x = [g["encoder_ids"], g["decoder_ids"][:, :-1]]
    y = g["decoder_ids"][:, 1:]
    encoder_kernel = model.get_layer("Encoder-Transformer-0-FeedForward").weights[0]
    before = keras.ops.convert_to_numpy(encoder_kernel).copy()
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first
    assert np.abs(keras.ops.convert_to_numpy(encoder_kernel) - before).max() > 0


def test_converted_safetensors_are_those_transformers_loaded(tmp_path):
    """tools/verify_t5_hf_loads.py loaded kerasbert's safetensors (converted from each mesh-TF
    checkpoint) in T5/MT5ForConditionalGeneration with nothing missing or unexpected, every
    parameter equal, the goldens' logits and greedy ids, and in T5/MT5EncoderModel with the
    goldens' states (hf_loads.json); kerasbert must still write exactly those files."""
    import hashlib

    from safetensors.numpy import load_file

    record = json.loads((ROOT / "hf_loads.json").read_text())
    assert record["transformers"] == "4.57.6"
    assert sorted(record["models"]) == sorted(VARIANTS)
    classes = {"t5.1.0": "T5", "t5.1.1": "T5", "mt5.1.1": "MT5"}
    for variant in VARIANTS:
        result = record["models"][variant]
        assert result["class"] == classes[variant] + "ForConditionalGeneration"
        assert result["architectures"] == [result["class"]]
        assert result["loading_info"] == {"missing_keys": [], "unexpected_keys": [],
                                          "mismatched_keys": []}  # fmt: skip
        assert result["parameters_equal"] and result["max_abs_logits_diff"] == 0.0
        assert result["greedy_equal"] == {"greedy_ids": True, "greedy_ids_min": True}
        encoder = result["encoder_loading_info"]
        assert result["encoder_class"] == classes[variant] + "EncoderModel"
        assert encoder["missing_keys"] == [] and encoder["mismatched_keys"] == []
        assert encoder["unexpected_keys_not_decoder"] == ([] if variant == "t5.1.0"
                                                          else ["lm_head.weight"])  # fmt: skip
        assert result["encoder_parameters_equal"]
        assert result["max_abs_encoder_states_diff"] == 0.0
        tied, gated = variant == "t5.1.0", variant != "t5.1.0"
        assert result["hf_config"] == {
            "class": classes[variant] + "Config", "model_type": classes[variant].lower(),
            "feed_forward_proj": "gated-gelu" if gated else "relu", "is_gated_act": gated,
            "dense_act_fn": "gelu_new" if gated else "relu", "tie_word_embeddings": tied,
            "vocab_size": 101, "d_model": 16, "d_kv": 6, "d_ff": 24, "num_heads": 3,
            "num_layers": 2, "num_decoder_layers": 2, "relative_attention_num_buckets": 8,
            "relative_attention_max_distance": 16, "layer_norm_epsilon": 1e-6,
            "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
        }  # fmt: skip
        assert result["tensors_as_save_pretrained"]
        out = Path(convert(ROOT / variant / "tf" / "model.ckpt", tmp_path / variant,
                           to="safetensors", config=ROOT / variant / "config.json"))  # fmt: skip
        digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
        assert digest == result["sha256"], variant
        assert sorted(load_file(out / "model.safetensors")) == result["tensors"]
        written = json.loads((out / "config.json").read_text())
        assert written["architectures"] == result["architectures"]
        assert {k: written[k] for k in ("model_type", "feed_forward_proj", "dense_act_fn",
                                        "is_gated_act", "tie_word_embeddings")} == {
            k: result["hf_config"][k] for k in ("model_type", "feed_forward_proj",
                                                "dense_act_fn", "is_gated_act",
                                                "tie_word_embeddings")}  # fmt: skip
