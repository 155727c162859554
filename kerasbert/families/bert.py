"""BERT (and every BERT-architecture checkpoint: RoBERTa-wwm, MiniLM, ...).

Canonical names are Google's (``bert/encoder/layer_0/attention/self/query/kernel``); HF
transformers names them ``bert.encoder.layer.0.attention.self.query.weight`` with torch's
transposed ``Linear`` layout. :func:`encoder_rules` and :func:`embedding_rules` give the
rules of this layout for any scope, so families built on BERT's layout reuse them.
"""

from kerasbert.families.naming import NameTable, Rule
from kerasbert.families.record import Detection, Family, ModelEntry


def embedding_rules(scope="bert"):
    """HF rules of the embeddings and their optional projection to the hidden size."""
    return [
        Rule(f"{scope}/embeddings/{{embedding}}_embeddings",
             "{prefix}embeddings.{embedding}_embeddings.weight"),
        Rule(f"{scope}/embeddings/LayerNorm/{{norm}}", "{prefix}embeddings.LayerNorm.{norm}"),
        # BERT-layout checkpoints whose embedding size differs from the hidden size (HF's
        # BertModel has no such layer, but kerasbert writes and reads it under this name).
        Rule(f"{scope}/encoder/embedding_hidden_mapping_in/{{dense}}",
             "{prefix}encoder.embedding_hidden_mapping_in.{dense}", transpose=True),
    ]  # fmt: skip


def encoder_rules(scope="bert"):
    """HF rules of BERT's embeddings, transformer layers and pooler under ``scope``."""
    layer, hf = f"{scope}/encoder/layer_{{n}}/", "{prefix}encoder.layer.{n}."
    rules = embedding_rules(scope)
    for dense in ("attention/output/dense", "intermediate/dense", "output/dense"):
        rules.append(Rule(f"{layer}{dense}/{{dense}}",
                          hf + dense.replace("/", ".") + ".{dense}", transpose=True))  # fmt: skip
    rules += [
        Rule(f"{layer}attention/self/{{qkv}}/{{dense}}", hf + "attention.self.{qkv}.{dense}",
             transpose=True),
        Rule(f"{layer}attention/output/LayerNorm/{{norm}}",
             hf + "attention.output.LayerNorm.{norm}"),
        Rule(f"{layer}output/LayerNorm/{{norm}}", hf + "output.LayerNorm.{norm}"),
        Rule(f"{scope}/pooler/dense/{{dense}}", "{prefix}pooler.dense.{dense}", transpose=True),
    ]  # fmt: skip
    return rules


# The pre-training heads of BertForPreTraining (and NEZHA's, same names).
PRETRAINING_HEAD_RULES = [
    Rule("cls/predictions/transform/dense/{dense}", "cls.predictions.transform.dense.{dense}",
         transpose=True),
    Rule("cls/predictions/transform/LayerNorm/{norm}",
         "cls.predictions.transform.LayerNorm.{norm}"),
    Rule("cls/predictions/output_bias", "cls.predictions.bias"),
    Rule("cls/seq_relationship/output_weights", "cls.seq_relationship.weight"),
    Rule("cls/seq_relationship/output_bias", "cls.seq_relationship.bias"),
]  # fmt: skip
HF_SKIPPED = [
    r"position_ids$",
    # The MLM decoder is tied to the word embeddings; its bias duplicates the output bias.
    r"^cls\.predictions\.decoder\.(weight|bias)$",
]
PRETRAINING_HEADS = {
    "with_pool": ("bert/pooler/dense/kernel",),
    "with_nsp": ("cls/seq_relationship/output_weights",),
    "with_mlm": ("cls/predictions/output_bias", "cls/predictions/transform/dense/kernel"),
}
HF_ARCHITECTURES = ((("with_mlm", "with_nsp"), "ForPreTraining"), (("with_mlm",), "ForMaskedLM"))

# HF's TF BERT (tf_model.h5), after the reader's generic clean-up of HF Keras names.
HF_TF_RULES = [
    Rule("cls/predictions/output_bias", "mlm___cls/predictions/bias"),
    Rule("cls/predictions/transform/{rest}", "mlm___cls/predictions/transform/{rest}"),
    Rule("cls/seq_relationship/output_weights", "nsp___cls/seq_relationship/kernel",
         transpose=True),
    Rule("cls/seq_relationship/output_bias", "nsp___cls/seq_relationship/bias"),
    Rule("bert/{rest}", "bert/{rest}"),
]  # fmt: skip

BERT_LAYER = r"^Transformer-\d+-MultiHeadSelfAttention$"
# What tells an ELECTRA kerasbert built from a BERT, whose layers it has: its discriminator
# head, or the model's own name (listed by families.model_layer_names).
ELECTRA_LAYER = r"^(Discriminator-Dense|model:electra)$"
# GPT-2's final norm: what tells a GPT-2 kerasbert built, whose layers are BERT's otherwise.
GPT2_LAYER = r"^Output-Norm$"
# A block's layer norm: what NEZHA's and RoFormer v1's names have and RoFormer v2's lack.
NORM_GAMMA = r"^bert/encoder/layer_\d+/.*LayerNorm/gamma$"

BERT = Family(
    name="bert",
    title="BERT",
    models=(
        ModelEntry("bert", "kerasbert.models.bert:BERT"),
        ModelEntry("roberta", "kerasbert.models.bert:BERT"),  # bert4keras's alias
    ),
    description="Google's post-LayerNorm encoder with learned absolute positions",
    checkpoint_names=Detection(
        requires=(r"^bert/encoder/layer_\d+/", r"^bert/embeddings/position_embeddings$")
    ),
    layer_names=Detection(
        requires=(BERT_LAYER, r"^Embedding-Position$"), excludes=(ELECTRA_LAYER, GPT2_LAYER)
    ),
    model_types=("bert", "roberta"),
    hf_prefix="bert.",
    hf_class="Bert",
    names={
        "hf": NameTable(
            encoder_rules() + PRETRAINING_HEAD_RULES,
            HF_SKIPPED,
            prefix="bert.",
            optional_prefix=True,
        ),
        "hf_tf": NameTable(HF_TF_RULES),
    },  # fmt: skip
    heads=PRETRAINING_HEADS,
    hf_architectures=HF_ARCHITECTURES,
    vocab_variable="bert/embeddings/word_embeddings",
)
