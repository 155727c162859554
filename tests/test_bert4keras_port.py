"""bert4keras semantics real scripts rely on: language models have the MLM head, layer-name
prefixes, the builder's tensors, user layers left alone when loading, and decoding that does
not compile a program per step."""

import keras
import numpy as np
import pytest

import kerasbert
from kerasbert.models import build_transformer_model, save_tf_checkpoint
from kerasbert.snippets import AutoRegressiveDecoder

CONFIG = {"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 16, "max_position_embeddings": 64}  # fmt: skip
IDS = np.array([[2, 7, 9, 4, 3], [2, 5, 3, 0, 0]], "int32")
SEGMENTS = np.array([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]], "int32")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A TF checkpoint with every head (as the released Chinese BERTs have)."""
    model = build_transformer_model(CONFIG, with_pool=True, with_nsp=True, with_mlm=True)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))
    prefix = tmp_path_factory.mktemp("ckpt") / "bert_model.ckpt"
    save_tf_checkpoint(model, prefix)
    return prefix


@pytest.mark.parametrize("application", ["lm", "unilm"])
def test_language_models_predict_token_probabilities(application, checkpoint):
    # bert4keras's extend_with_(unified_)language_model set with_mlm: a script that trains
    # a cross-entropy on the output must get probabilities over the vocabulary.
    model = build_transformer_model(CONFIG, checkpoint, application=application)
    probas = model.predict([IDS, SEGMENTS], verbose=0)
    assert probas.shape == IDS.shape + (CONFIG["vocab_size"],)
    np.testing.assert_allclose(probas.sum(-1), 1.0, atol=1e-5)
    logits = build_transformer_model(
        CONFIG, checkpoint, application=application, with_mlm="linear"
    ).predict([IDS, SEGMENTS], verbose=0)
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), probas,
                               atol=1e-5)  # fmt: skip
    encoder = build_transformer_model(CONFIG, checkpoint)
    assert encoder.output.shape[-1] == CONFIG["hidden_size"]


def test_prefix_names_every_layer_and_loads_the_same_weights(checkpoint):
    plain = build_transformer_model(CONFIG, checkpoint, with_mlm=True)
    builder = build_transformer_model(
        CONFIG, checkpoint, with_mlm=True, prefix="Successor-", return_keras_model=False
    )
    assert all(layer.name.startswith("Successor-") for layer in builder.model.layers)
    assert builder.layer("Embedding-Token") is builder.model.get_layer("Successor-Embedding-Token")
    np.testing.assert_array_equal(
        builder.model.predict([IDS, SEGMENTS], verbose=0), plain.predict([IDS, SEGMENTS], verbose=0)
    )
    with pytest.raises(kerasbert.ConfigError, match="prefix"):
        build_transformer_model(CONFIG, prefix=3)


def test_two_prefixed_models_share_one_keras_model(checkpoint):
    """BERT-of-Theseus: a 2-layer predecessor and a 1-layer successor from one checkpoint,
    their blocks mixed in one model built from the predecessor's inputs."""
    predecessor = build_transformer_model(
        CONFIG, checkpoint, prefix="Predecessor-", return_keras_model=False
    )
    successor = build_transformer_model(
        CONFIG, checkpoint, prefix="Successor-", num_hidden_layers=1, return_keras_model=False
    )
    assert successor.load_report.loaded and not successor.load_report.problems
    inputs = predecessor.inputs
    x = successor.apply_embeddings(inputs)
    x = predecessor.apply_main_layers(x, 1)
    mixed = keras.Model(inputs, successor.apply_main_layers(x, 0))
    names = {layer.name for layer in mixed.layers}
    assert {"Predecessor-Transformer-1-FeedForward", "Successor-Transformer-0-FeedForward",
            "Successor-Embedding-Token"} <= names  # fmt: skip
    assert mixed.predict([IDS, SEGMENTS], verbose=0).shape == IDS.shape + (8,)


def test_save_weights_as_checkpoint_writes_what_loads_back(checkpoint, tmp_path):
    builder = build_transformer_model(CONFIG, checkpoint, with_mlm=True, prefix="Student-",
                                      return_keras_model=False)  # fmt: skip
    builder.save_weights_as_checkpoint(str(tmp_path / "out.ckpt"))
    again = build_transformer_model(CONFIG, tmp_path / "out.ckpt", with_mlm=True)
    np.testing.assert_array_equal(
        again.predict([IDS, SEGMENTS], verbose=0),
        builder.model.predict([IDS, SEGMENTS], verbose=0),
    )
    builder.save_weights_as_checkpoint(str(tmp_path / "half.ckpt"), dtype="float16")
    assert kerasbert.checkpoints.open_checkpoint(tmp_path / "half.ckpt").dtype(
        "bert/embeddings/word_embeddings"
    ) == "float16"


def test_the_builder_has_bert4keras_tensors():
    builder = build_transformer_model(CONFIG, with_pool=True, with_mlm=True,
                                      return_keras_model=False)  # fmt: skip
    assert builder.inputs == list(builder.model.inputs) and len(builder.inputs) == 2
    assert builder.input == builder.inputs
    assert builder.outputs == list(builder.model.outputs) and builder.output == builder.outputs
    single = build_transformer_model(CONFIG, segment_vocab_size=0, return_keras_model=False)
    assert single.input is single.model.inputs[0] and single.output is single.model.outputs[0]
    # A script's head over the builder's tensors.
    head = keras.layers.Dense(3)(keras.layers.Lambda(lambda x: x[:, 0])(single.output))
    assert keras.Model(single.input, head).predict(IDS, verbose=0).shape == (2, 3)


def test_layers_a_script_adds_are_left_alone_when_loading(checkpoint):
    """A conditional LM: a label embedding (the script's own layer) feeds every layer norm;
    bert4keras loads the checkpoint into its layers and leaves that embedding alone."""
    label = keras.Input((1,), name="Input-Label")
    embedding = keras.layers.Embedding(4, 8, name="Label-Embedding")
    condition = keras.layers.Flatten()(embedding(label))
    builder = build_transformer_model(
        CONFIG, checkpoint, application="lm", layer_norm_cond=condition,
        additional_input_layers=label, return_keras_model=False,
    )  # fmt: skip
    assert builder.load_report.untouched == ["Label-Embedding/embeddings"]
    assert not builder.load_report.problems
    plain = build_transformer_model(CONFIG, checkpoint, application="lm")
    # The conditional projections start at zero: the loaded model is the unconditioned one.
    labels = np.array([[1], [3]], "int32")
    np.testing.assert_allclose(
        builder.model.predict([IDS, SEGMENTS, labels], verbose=0),
        plain.predict([IDS, SEGMENTS], verbose=0), atol=1e-6,
    )  # fmt: skip
    # A layer of the builder's own that the checkpoint lacks is still an error.
    with pytest.raises(kerasbert.WeightLoadingError, match="for Embedding-Mapping/kernel"):
        build_transformer_model(CONFIG, checkpoint, embedding_size=4)


class _TitleDecoder(AutoRegressiveDecoder):
    """bert4keras's seq2seq idiom: predict re-feeds the whole prefix each step."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        token_ids, segment_ids = inputs
        token_ids = np.concatenate([token_ids, output_ids], 1)
        segment_ids = np.concatenate([segment_ids, np.ones_like(output_ids)], 1)
        return self.last_token(self.model).predict([token_ids, segment_ids])


def test_bert4keras_style_decoding_compiles_a_few_programs(checkpoint):
    model = build_transformer_model(CONFIG, checkpoint, application="unilm")
    decoder = _TitleDecoder(model, start_id=None, end_id=29, maxlen=24)
    source = [np.array([2, 7, 9, 11, 3], "int32"), np.zeros(5, "int32")]
    ids = decoder.beam_search(source, topk=3)
    last = decoder.last_token(model)
    # 5..28 positions and 1 or 3 rows: a handful of (bucket, rows) programs, not 24.
    assert last.padded and 1 <= last.num_compilations <= 6
    # Each step's scores equal the unpadded model's at the last position.
    prefix = np.concatenate([source[0], ids[:4]])[None]
    segments = np.concatenate([source[1], np.ones(4, "int32")])[None]
    np.testing.assert_allclose(
        last.predict([np.repeat(prefix, 3, 0), np.repeat(segments, 3, 0)]),
        np.repeat(model.predict([prefix, segments], verbose=0)[:, -1], 3, 0), atol=1e-6,
    )  # fmt: skip
