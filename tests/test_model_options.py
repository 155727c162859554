"""build_transformer_model's options and output rules (bert4keras semantics)."""

import numpy as np
import pytest
from conftest import FIXTURES

import kerasbert
from kerasbert.checkpoints import open_checkpoint
from kerasbert.models import BERT

rng = np.random.default_rng(1)


def _ids(batch=2, length=7, vocab=50):
    ids = rng.integers(1, vocab, size=(batch, length)).astype("int32")
    return ids, np.zeros_like(ids)


def test_layer_names_follow_bert4keras(tiny_config):
    model = kerasbert.build_transformer_model(tiny_config, with_nsp=True, with_mlm=True)
    names = {layer.name for layer in model.layers}
    expected = {
        "Input-Token", "Input-Segment", "Embedding-Token", "Embedding-Segment",
        "Embedding-Token-Segment", "Embedding-Position", "Embedding-Norm",
        "Embedding-Dropout", "Transformer-0-MultiHeadSelfAttention",
        "Transformer-0-MultiHeadSelfAttention-Dropout",
        "Transformer-0-MultiHeadSelfAttention-Add",
        "Transformer-0-MultiHeadSelfAttention-Norm", "Transformer-1-FeedForward",
        "Transformer-1-FeedForward-Dropout", "Transformer-1-FeedForward-Add",
        "Transformer-1-FeedForward-Norm", "Pooler", "Pooler-Dense", "NSP-Proba",
        "MLM-Dense", "MLM-Norm", "MLM-Bias", "MLM-Activation",
    }  # fmt: skip
    assert expected <= names


def test_output_rules(tiny_config):
    plain = kerasbert.build_transformer_model(tiny_config)
    assert plain.output.shape == (None, None, 16)
    pool = kerasbert.build_transformer_model(tiny_config, with_pool=True)
    assert pool.output.shape == (None, 16)
    mlm = kerasbert.build_transformer_model(tiny_config, with_mlm=True)
    assert mlm.output.shape == (None, None, 50)
    both = kerasbert.build_transformer_model(tiny_config, with_pool=True, with_mlm=True)
    assert [o.shape for o in both.outputs] == [(None, 16), (None, None, 50)]
    nsp = kerasbert.build_transformer_model(tiny_config, with_nsp=True)
    assert nsp.output.shape == (None, 2)  # with_nsp implies the pooler


def test_segment_vocab_size_zero_drops_segment_input(tiny_config):
    model = kerasbert.build_transformer_model(tiny_config, segment_vocab_size=0)
    assert [i.name for i in model.inputs] == ["Input-Token"]
    ids, _ = _ids()
    assert model.predict(ids, verbose=0).shape == (2, 7, 16)


def test_sequence_length_fixes_input_shape(tiny_config):
    model = kerasbert.build_transformer_model(tiny_config, sequence_length=12)
    assert model.inputs[0].shape == (None, 12)


def test_roberta_is_bert_and_builder_is_returned(tiny_config):
    builder = kerasbert.build_transformer_model(
        tiny_config, model="roberta", return_keras_model=False
    )
    assert isinstance(builder, BERT)
    assert builder.model.name == "bert"


def test_dropout_rate_kwarg_overrides_config(tiny_config):
    tiny_config["hidden_dropout_prob"] = 0.1
    model = kerasbert.build_transformer_model(tiny_config, dropout_rate=0.3)
    assert model.get_layer("Embedding-Dropout").rate == 0.3


def test_keep_tokens_and_compound_tokens():
    fixture = FIXTURES / "bert_tiny_gelu"
    keep = [0, 2, 3, 7, 9, 11, 40]
    compound = [[3, 4], ([5, 6], [1.0, 3.0])]
    model = kerasbert.build_transformer_model(
        fixture / "config.json", fixture, with_mlm="linear",
        keep_tokens=keep, compound_tokens=compound,
    )  # fmt: skip
    full = open_checkpoint(fixture).read("bert/embeddings/word_embeddings")
    table = model.get_layer("Embedding-Token").embeddings.numpy()
    assert table.shape == (len(keep) + 2, full.shape[1])
    np.testing.assert_array_equal(table[: len(keep)], full[keep])
    np.testing.assert_allclose(table[len(keep)], full[[keep[3], keep[4]]].mean(0), atol=1e-6)
    weighted = (full[keep[5]] + 3 * full[keep[6]]) / 4
    np.testing.assert_allclose(table[len(keep) + 1], weighted, atol=1e-6)
    bias = model.get_layer("MLM-Bias").bias.numpy()
    full_bias = open_checkpoint(fixture).read("cls/predictions/output_bias")
    np.testing.assert_array_equal(bias[: len(keep)], full_bias[keep])

    # The kept rows give the same logits as the full model restricted to them.
    full_model = kerasbert.build_transformer_model(
        fixture / "config.json", fixture, with_mlm="linear"
    )
    ids = np.array([[2, 3, 7, 9, 3]], "int32")
    seg = np.zeros_like(ids)
    small_ids = np.array([[1, 2, 3, 4, 2]], "int32")
    a = model.predict([small_ids, seg], verbose=0)[..., : len(keep)]
    b = full_model.predict([ids, seg], verbose=0)[..., keep]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_padding_invariance(tiny_config):
    model = kerasbert.build_transformer_model(tiny_config, with_pool=True)
    sentence = np.array([2, 17, 5, 33, 9, 3], "int32")

    def run(length):
        ids = np.zeros((1, length), "int32")
        ids[0, : len(sentence)] = sentence
        return model.predict([ids, np.zeros_like(ids)], verbose=0)

    np.testing.assert_allclose(run(16), run(64), atol=1e-5)
    encoder = kerasbert.build_transformer_model(tiny_config)
    encoder.set_weights(model.get_weights()[: len(encoder.weights)])

    def vectors(length):
        ids = np.zeros((1, length), "int32")
        ids[0, : len(sentence)] = sentence
        return encoder.predict([ids, np.zeros_like(ids)], verbose=0)[0, : len(sentence)]

    np.testing.assert_allclose(vectors(16), vectors(64), atol=1e-5)
    # ... and padding really is masked: without the mask the outputs would differ.
    ids = np.zeros((1, 16), "int32")
    ids[0, : len(sentence)] = sentence
    unmasked = ids.copy()
    unmasked[0, len(sentence) :] = 1
    a = encoder.predict([ids, np.zeros_like(ids)], verbose=0)[0, : len(sentence)]
    b = encoder.predict([unmasked, np.zeros_like(ids)], verbose=0)[0, : len(sentence)]
    assert np.abs(a - b).max() > 1e-3


@pytest.mark.parametrize("with_mlm", [False, True])
def test_weights_are_all_named_in_the_mapping(tiny_config, with_mlm):
    builder = kerasbert.build_transformer_model(
        tiny_config, with_nsp=True, with_mlm=with_mlm, return_keras_model=False
    )
    mapping = builder.variable_mapping()
    mapped = set()
    for layer_name, variables in mapping.items():
        if layer_name in {layer.name for layer in builder.model.layers}:
            mapped.update(f"{layer_name}/{name}" for name in variables)
    assert mapped == {v.path for v in builder.model.weights}
