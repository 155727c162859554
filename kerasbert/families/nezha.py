"""NEZHA (huawei-noah/Pretrained-Language-Model): BERT's layout, relative positions.

Its checkpoints have BERT's names but no ``position_embeddings``: positions are a fixed
function of the distance, which HF keeps as a buffer and kerasbert computes.
"""

from kerasbert.families.bert import (
    BERT_LAYER,
    HF_ARCHITECTURES,
    HF_SKIPPED,
    NORM_GAMMA,
    PRETRAINING_HEAD_RULES,
    PRETRAINING_HEADS,
    encoder_rules,
)
from kerasbert.families.naming import NameTable
from kerasbert.families.record import Detection, Family, ModelEntry

NEZHA = Family(
    name="nezha",
    title="NEZHA",
    models=(ModelEntry("nezha", "kerasbert.models.nezha:NEZHA"),),
    description="BERT with functional relative positions",
    checkpoint_names=Detection(
        requires=(r"^bert/encoder/layer_\d+/", NORM_GAMMA),
        excludes=(r"^bert/embeddings/position_embeddings$",),
    ),
    layer_names=Detection(requires=(BERT_LAYER, r"^Embedding-Relative-Position$")),
    config_markers=("max_relative_position", "use_relative_position"),
    model_types=("nezha",),
    hf_prefix="nezha.",
    hf_class="Nezha",
    names={
        "hf": NameTable(
            encoder_rules() + PRETRAINING_HEAD_RULES,
            HF_SKIPPED + [r"relative_positions_encoding\.positions_encoding$"],
            prefix="nezha.",
            optional_prefix=True,
        )
    },
    heads=PRETRAINING_HEADS,
    hf_architectures=HF_ARCHITECTURES,
    config_keys=("max_relative_position",),
    config_constants={"use_relative_position": True},
    vocab_variable="bert/embeddings/word_embeddings",
    tiny_config={"max_relative_position": 3},
)
