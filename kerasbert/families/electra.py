"""ELECTRA (google-research/electra, HFL's Chinese-ELECTRA): BERT's encoder, other heads.

Canonical names are those of Google's TF code (``model/modeling.py``, ``run_pretraining.py``):
BERT's under ``electra/`` (no pooler), ``electra/embeddings_project`` for a smaller
embedding, ``discriminator_predictions/dense`` and ``/dense_1`` (the replaced-token head) and
``generator_predictions/{dense,LayerNorm,output_bias}`` (the generator's MLM head, tied to the
word embeddings). Google's joint pre-training checkpoints add the generator's body under
``generator/`` (sharing ``electra/embeddings``); ``ELECTRA(body="generator")`` reads it.
HF transformers names the body ``electra.`` (``embeddings_project`` included), the heads
``discriminator_predictions.dense`` / ``.dense_prediction`` (``ElectraForPreTraining``) and
``generator_predictions.{dense,LayerNorm}`` + ``generator_lm_head`` (``ElectraForMaskedLM``),
whose weight is the tied word embedding (skipped) and whose bias is the output bias. HF's
TF classes (``tf_model.h5``) store Google's names, but ``dense_prediction`` and
``generator_lm_head/bias``.
"""

from kerasbert.families.bert import BERT_LAYER, ELECTRA_LAYER, encoder_rules
from kerasbert.families.naming import NameTable, Rule
from kerasbert.families.record import Detection, Family, ModelEntry

HF_RULES = [
    Rule("electra/embeddings_project/{dense}", "{prefix}embeddings_project.{dense}",
         transpose=True),
] + [
    rule for rule in encoder_rules("electra")
    if "embedding_hidden_mapping_in" not in rule.canonical and "pooler" not in rule.canonical
] + [
    Rule("discriminator_predictions/dense/{dense}", "discriminator_predictions.dense.{dense}",
         transpose=True),
    Rule("discriminator_predictions/dense_1/{dense}",
         "discriminator_predictions.dense_prediction.{dense}", transpose=True),
    Rule("generator_predictions/dense/{dense}", "generator_predictions.dense.{dense}",
         transpose=True),
    Rule("generator_predictions/LayerNorm/{norm}", "generator_predictions.LayerNorm.{norm}"),
    Rule("generator_predictions/output_bias", "generator_lm_head.bias"),
]  # fmt: skip
# HF's TF ELECTRA (tf_model.h5, as HFL's hub repos ship it), after the reader's generic
# clean-up of HF Keras names: Google's names but for two heads' layers. (The generator's
# output layer repeats the embeddings' datasets under its own group: the same tied values.)
HF_TF_RULES = [
    Rule("discriminator_predictions/dense_1/{rest}",
         "discriminator_predictions/dense_prediction/{rest}"),
    Rule("generator_predictions/output_bias", "generator_lm_head/bias"),
    Rule("electra/{rest}", "electra/{rest}"),
    Rule("discriminator_predictions/dense/{rest}", "discriminator_predictions/dense/{rest}"),
    Rule("generator_predictions/{rest}", "generator_predictions/{rest}"),
]  # fmt: skip
HF_SKIPPED = [
    r"position_ids$",
    r"token_type_ids$",
    # The generator's output projection is the word embedding matrix (tied).
    r"^generator_lm_head\.weight$",
]

ELECTRA = Family(
    name="electra",
    title="ELECTRA",
    models=(ModelEntry("electra", "kerasbert.models.electra:ELECTRA"),),
    description="BERT's encoder trained as a replaced-token discriminator (or its generator)",
    checkpoint_names=Detection(requires=(r"^electra/encoder/layer_\d+/",)),
    layer_names=Detection(requires=(BERT_LAYER, r"^Embedding-Position$", ELECTRA_LAYER)),
    model_types=("electra",),
    hf_prefix="electra.",
    hf_class="Electra",
    names={
        "hf": NameTable(HF_RULES, HF_SKIPPED, prefix="electra.", optional_prefix=True),
        "hf_tf": NameTable(HF_TF_RULES),
    },
    heads={
        "with_discriminator": ("discriminator_predictions/dense_1/kernel",),
        "with_mlm": ("generator_predictions/output_bias", "generator_predictions/dense/kernel"),
    },
    hf_architectures=(
        (("with_discriminator",), "ForPreTraining"),
        (("with_mlm",), "ForMaskedLM"),
    ),
    # Google's releases ship no config (HFL's: discriminator.json / generator.json); a TF
    # conversion writes the BertConfig JSON that Google's modeling.py reads.
    tf_files=("electra_model.ckpt", "bert_config.json"),
    # google-research/electra's modeling.gelu is the erf form.
    google_gelu="gelu_erf",
    vocab_variable="electra/embeddings/word_embeddings",
    tiny_config={"embedding_size": 6},
)
