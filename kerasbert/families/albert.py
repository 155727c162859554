"""ALBERT (google-research/albert, brightmart's albert_zh): shared transformer groups.

Canonical names are google-research/albert's: one block per (group, inner block) under
``bert/encoder/transformer/group_G/inner_group_J/`` with its own sublayer names
(``attention_1``, ``ffn_1``, ``LayerNorm_1``).
"""

from kerasbert.families.bert import PRETRAINING_HEADS, embedding_rules
from kerasbert.families.naming import NameTable, Rule
from kerasbert.families.record import Detection, Family, ModelEntry

_BLOCK = "bert/encoder/transformer/group_{g}/inner_group_{j}/"
_HF_BLOCK = "{prefix}encoder.albert_layer_groups.{g}.albert_layers.{j}."

HF_RULES = embedding_rules() + [
    Rule(_BLOCK + "attention_1/self/{qkv}/{dense}", _HF_BLOCK + "attention.{qkv}.{dense}",
         transpose=True),
    Rule(_BLOCK + "attention_1/output/dense/{dense}", _HF_BLOCK + "attention.dense.{dense}",
         transpose=True),
    Rule(_BLOCK + "LayerNorm/{norm}", _HF_BLOCK + "attention.LayerNorm.{norm}"),
    Rule(_BLOCK + "ffn_1/intermediate/dense/{dense}", _HF_BLOCK + "ffn.{dense}", transpose=True),
    Rule(_BLOCK + "ffn_1/intermediate/output/dense/{dense}", _HF_BLOCK + "ffn_output.{dense}",
         transpose=True),
    Rule(_BLOCK + "LayerNorm_1/{norm}", _HF_BLOCK + "full_layer_layer_norm.{norm}"),
    Rule("bert/pooler/dense/{dense}", "{prefix}pooler.{dense}", transpose=True),
    Rule("cls/predictions/transform/dense/{dense}", "predictions.dense.{dense}", transpose=True),
    Rule("cls/predictions/transform/LayerNorm/{norm}", "predictions.LayerNorm.{norm}"),
    Rule("cls/predictions/output_bias", "predictions.bias"),
    Rule("cls/seq_relationship/output_weights", "sop_classifier.classifier.weight"),
    Rule("cls/seq_relationship/output_bias", "sop_classifier.classifier.bias"),
]  # fmt: skip
HF_SKIPPED = [r"position_ids$", r"^predictions\.decoder\.(weight|bias)$"]

ALBERT = Family(
    name="albert",
    title="ALBERT",
    models=(
        ModelEntry("albert", "kerasbert.models.albert:ALBERT"),
        # One copy of the block weights per layer: Keras files only.
        ModelEntry(
            "albert_unshared",
            "kerasbert.models.albert:ALBERTUnshared",
            canonical=False,
            aliases=("ALBERT_Unshared",),
        ),
    ),
    description="factorized embeddings, transformer blocks shared across layers",
    checkpoint_names=Detection(
        requires=(r"(^|/)(transformer/group_\d+/inner_group_\d+|albert)(/|$)",)
    ),
    layer_names=Detection(
        requires=(r"^Transformer(-Group\d+)?(-Inner\d+)?-MultiHeadSelfAttention$",)
    ),
    config_markers=("num_hidden_groups", "inner_group_num"),
    model_types=("albert",),
    hf_prefix="albert.",
    hf_class="Albert",
    names={"hf": NameTable(HF_RULES, HF_SKIPPED, prefix="albert.", optional_prefix=True)},
    heads=PRETRAINING_HEADS,
    # HF's AlbertForPreTraining has the MLM and sentence-order heads.
    hf_architectures=((("with_mlm", "with_nsp"), "ForPreTraining"), (("with_mlm",), "ForMaskedLM")),
    config_keys=("embedding_size", "num_hidden_groups", "inner_group_num"),
    tf_files=("albert_model.ckpt", "albert_config.json"),
    # Google's English v2 releases ship 30k-clean.model, with their text preprocessing.
    sentencepiece="albert",
    vocab_variable="bert/embeddings/word_embeddings",
    index_fields=("embedding_size",),
    tiny_config={"embedding_size": 6, "num_hidden_layers": 4, "num_hidden_groups": 2,
                 "inner_group_num": 2},  # fmt: skip
)
