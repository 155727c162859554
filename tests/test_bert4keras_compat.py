"""bert4keras import paths resolve: the public names its scripts use exist in kerasbert.

docs/bert4keras_compat.md lists, per module, the names deliberately not provided and why;
this test also checks that every bert4keras public name is either here or listed there.
"""

import importlib
import pathlib
import re

import pytest

PROVIDED = {
    "models": [
        "build_transformer_model", "Transformer", "BERT", "ALBERT", "ALBERT_Unshared",
        "NEZHA", "extend_with_language_model", "extend_with_unified_language_model",
    ],
    "layers": [
        "Embedding", "MultiHeadAttention", "LayerNormalization", "PositionEmbedding",
        "SinusoidalPositionEmbedding", "RelativePositionEmbedding", "FeedForward",
        "ConditionalRandomField", "GlobalPointer", "EfficientGlobalPointer", "Loss",
        "GlobalAveragePooling1D", "GlobalMaxPooling1D", "custom_objects",
    ],
    "tokenizers": ["Tokenizer", "load_vocab", "save_vocab"],
    "snippets": [
        "sequence_padding", "truncate_sequences", "text_segmentate", "DataGenerator",
        "ViterbiDecoder", "AutoRegressiveDecoder", "softmax", "to_array", "is_string",
        "strQ2B", "longest_common_substring", "longest_common_subsequence",
        "insert_arguments", "delete_arguments", "is_one_of", "string_matching",
        "convert_to_unicode", "convert_to_str", "lowercase_and_normalize",
        "orthogonally_resize", "parallel_apply", "parallel_apply_generator", "open", "uniout",
    ],
    "optimizers": [
        "Adam", "AdamW", "extend_with_weight_decay", "extend_with_piecewise_linear_lr",
        "extend_with_gradient_accumulation", "extend_with_exponential_moving_average",
        "extend_with_layer_adaptation", "extend_with_lazy_optimization",
        "extend_with_parameter_wise_lr", "export_to_custom_objects",
        "extend_with_weight_decay_v2", "extend_with_piecewise_linear_lr_v2",
        "extend_with_gradient_accumulation_v2", "extend_with_exponential_moving_average_v2",
    ],
    "backend": [
        "K", "keras", "gelu_erf", "gelu_tanh", "set_gelu", "infinity", "set_infinity",
        "piecewise_linear", "sequence_masking", "batch_gather", "swish", "leaky_relu",
        "root_mean_square", "search_layer", "sinusoidal_embeddings",
        "apply_rotary_position_embeddings", "multilabel_categorical_crossentropy",
        "sparse_multilabel_categorical_crossentropy", "align", "reshape", "flatten", "dtype",
        "where", "symbolic",
    ],
}  # fmt: skip

# bert4keras 0.11.5's public functions and classes, per module.
BERT4KERAS = {
    "models": "Transformer LM_Mask UniLM_Mask BERT ALBERT ALBERT_Unshared NEZHA RoFormer "
    "RoFormerV2 ELECTRA GPT GPT2 GPT2_ML T5_Base T5_Encoder T5_Decoder T5 "
    "extend_with_language_model extend_with_unified_language_model data_parallel "
    "build_transformer_model",
    "layers": "integerize_shape GlobalAveragePooling1D GlobalMaxPooling1D Embedding ScaleOffset "
    "Concatenate1D BatchSplit BatchConcat MultiHeadAttention GatedAttentionUnit "
    "LayerNormalization PositionEmbedding SinusoidalPositionEmbedding "
    "RelativePositionEmbedding RelativePositionEmbeddingT5 FeedForward ConditionalRandomField "
    "MaximumEntropyMarkovModel GlobalPointer EfficientGlobalPointer Loss",
    "tokenizers": "TokenizerBase Tokenizer SpTokenizer load_vocab save_vocab",
    "snippets": "to_array is_string strQ2B string_matching convert_to_unicode convert_to_str "
    "lowercase_and_normalize open parallel_apply_generator parallel_apply sequence_padding "
    "truncate_sequences text_segmentate is_one_of DataGenerator ViterbiDecoder softmax "
    "AutoRegressiveDecoder insert_arguments delete_arguments longest_common_substring "
    "longest_common_subsequence orthogonally_resize WebServing Hook",
    "optimizers": "Adam LionV2 AdaFactorBase AdaFactorV1 AdaFactorV2 export_to_custom_objects "
    "extend_with_weight_decay extend_with_layer_adaptation extend_with_piecewise_linear_lr "
    "extend_with_gradient_accumulation extend_with_lookahead extend_with_lazy_optimization "
    "extend_with_exponential_moving_average extend_with_parameter_wise_lr",
    "backend": "get_available_gpus gelu_erf gelu_tanh set_gelu piecewise_linear search_layer "
    "align reshape flatten dtype where sequence_masking batch_gather pool1d "
    "divisible_temporal_padding root_mean_square swish leaky_relu attention_normalize "
    "sinusoidal_embeddings Sinusoidal apply_rotary_position_embeddings "
    "multilabel_categorical_crossentropy sparse_multilabel_categorical_crossentropy symbolic "
    "graph_mode_decorator recompute_grad",
}

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "bert4keras_compat.md"


@pytest.mark.parametrize("module", sorted(PROVIDED))
def test_names_resolve(module):
    loaded = importlib.import_module(f"kerasbert.{module}")
    missing = [name for name in PROVIDED[module] if not hasattr(loaded, name)]
    assert not missing, f"kerasbert.{module} lacks {missing}"


@pytest.mark.parametrize("module", sorted(BERT4KERAS))
def test_every_bert4keras_name_is_provided_or_documented(module):
    loaded = importlib.import_module(f"kerasbert.{module}")
    text = DOC.read_text(encoding="utf-8")
    section = re.search(rf"## `{module}`(.*?)(\n## |\Z)", text, re.S)
    assert section, f"docs/bert4keras_compat.md has no section for {module}"
    for name in BERT4KERAS[module].split():
        assert hasattr(loaded, name) or f"`{name}`" in section.group(1), (module, name)


def test_a_bert4keras_script_ports_by_renaming():
    """The usual bert4keras imports, with the package renamed, build and run a model."""
    import numpy as np

    from kerasbert.backend import K, keras
    from kerasbert.layers import Loss
    from kerasbert.models import build_transformer_model
    from kerasbert.snippets import DataGenerator, sequence_padding
    from kerasbert.tokenizers import Tokenizer

    assert issubclass(Loss, keras.layers.Layer) and DataGenerator
    tokenizer = Tokenizer({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "好": 4, "的": 5})
    batch = sequence_padding([tokenizer.encode("好的")[0], tokenizer.encode("好")[0]])
    model = build_transformer_model(
        {"vocab_size": 6, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
         "intermediate_size": 16}, with_pool=True,
    )  # fmt: skip
    output = keras.layers.Dense(2, activation="softmax")(model.output)
    classifier = keras.Model(model.input, output)
    probabilities = classifier.predict([batch, np.zeros_like(batch)], verbose=0)
    np.testing.assert_allclose(K.convert_to_numpy(K.sum(probabilities, axis=-1)), 1.0, rtol=1e-5)
