"""RoFormer v1 (ZhuiyiTechnology/roformer, RoFormer-Sim): BERT's layout, rotary positions.

Canonical names are those of the bert4keras-trained TF checkpoints: BERT's, without
``position_embeddings`` (exactly NEZHA's names, so a checkpoint's names alone cannot tell
the two apart: the config's ``model_type`` or ``rotary_value``, HF names or ``model=``
decide). HF transformers names the model ``roformer.`` (``RoFormerForMaskedLM``), projects
a smaller embedding with ``roformer.embeddings_project`` and keeps the rotary sinusoid as a
fixed weight, ``roformer.encoder.embed_positions.weight``, which is skipped on reading and
not written (HF recomputes it when it is absent). HF's ``tf_model.h5`` (``TFRoFormer*``)
stores BERT's TF names under ``roformer/``. HF's RoFormer has no pooler and no NSP
head; kerasbert reads and writes them (RoFormer-Sim's pooler) under BERT's HF names.
"""

from kerasbert.families.bert import (
    BERT_LAYER,
    HF_SKIPPED,
    HF_TF_RULES,
    NORM_GAMMA,
    PRETRAINING_HEAD_RULES,
    PRETRAINING_HEADS,
    encoder_rules,
)
from kerasbert.families.naming import NameTable, Rule
from kerasbert.families.record import Detection, Family, ModelEntry

HF_RULES = [
    Rule("bert/encoder/embedding_hidden_mapping_in/{dense}", "{prefix}embeddings_project.{dense}",
         transpose=True),
] + [
    rule for rule in encoder_rules() if "embedding_hidden_mapping_in" not in rule.canonical
] + PRETRAINING_HEAD_RULES  # fmt: skip

# HF's TFRoFormer (tf_model.h5), after the reader's clean-up of HF Keras names: BERT's TF
# names under "roformer/", the projection as "roformer/embeddings_project".
HF_TF_RULES_ROFORMER = [
    Rule("bert/encoder/embedding_hidden_mapping_in/{rest}", "roformer/embeddings_project/{rest}"),
    Rule("bert/{rest}", "roformer/{rest}"),
] + [rule for rule in HF_TF_RULES if rule.canonical.startswith("cls/")]  # fmt: skip

ROFORMER = Family(
    name="roformer",
    title="RoFormer",
    models=(ModelEntry("roformer", "kerasbert.models.roformer:RoFormer"),),
    description="BERT with rotary position embeddings in every attention layer",
    checkpoint_names=Detection(
        requires=(r"^bert/encoder/layer_\d+/", NORM_GAMMA),
        excludes=(r"^bert/embeddings/position_embeddings$",),
    ),
    layer_names=Detection(
        requires=(BERT_LAYER, r"^Embedding-Rotary-Position$", r"^Embedding-Norm/gamma$")
    ),
    config_signatures=("rotary_value",),
    model_types=("roformer",),
    hf_prefix="roformer.",
    hf_class="RoFormer",
    names={
        "hf": NameTable(
            HF_RULES,
            HF_SKIPPED + [r"(^|\.)encoder\.embed_positions\.weight$"],
            prefix="roformer.",
            optional_prefix=True,
        ),
        "hf_tf": NameTable(HF_TF_RULES_ROFORMER, [r"^roformer/encoder/embed_positions/"]),
    },
    heads=PRETRAINING_HEADS,
    hf_architectures=((("with_mlm",), "ForMaskedLM"),),
    config_keys=("rotary_value",),
    # Zhuiyi trained RoFormer with bert4keras, whose "gelu" is the erf form.
    google_gelu="gelu_erf",
    vocab_variable="bert/embeddings/word_embeddings",
    tiny_config={"embedding_size": 6, "rotary_value": True},
)
