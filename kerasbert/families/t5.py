"""T5 and mT5 (google-research/text-to-text-transfer-transformer, google-research/multilingual-t5).

Canonical names are those of the original mesh-TensorFlow checkpoints (bert4keras's
``T5_Base.variable_mapping``), with ``layer_norm`` for every norm::

    shared/embedding                                              [vocab, hidden]
    encoder/block_000/layer_000/SelfAttention/{q,k,v,o}           [in, out]
    encoder/block_000/layer_000/SelfAttention/relative_attention_bias   [heads, buckets]
    encoder/block_000/layer_000/layer_norm/scale
    encoder/block_000/layer_001/DenseReluDense/{wi,wi_0,wi_1,wo}/kernel
    encoder/block_000/layer_001/layer_norm/scale
    encoder/final_layer_norm/scale
    decoder/block_000/layer_001/EncDecAttention/{q,k,v,o}         (layer_002: the FFN)
    decoder/final_layer_norm/scale
    decoder/logits/kernel                                         [hidden, vocab] (untied)

The mT5 releases spell the norms ``rms_norm`` (``.../layer_000/rms_norm/scale``, final
``encoder/rms_norm/scale``): the ``"tensorflow"`` table reads those as the canonical
names (a TF checkpoint kerasbert writes uses ``layer_norm``). Adafactor's slots
(``*_slot_vc``, ``*_slot_vr``) and ``global_step`` are left unused. HF transformers
(``T5ForConditionalGeneration`` / ``MT5ForConditionalGeneration``) numbers blocks and
sublayers ``encoder.block.0.layer.1.DenseReluDense.wi_0.weight`` (``Linear`` weights, so
transposed), stores the position bias as ``relative_attention_bias.weight`` ``[buckets,
heads]`` and the untied head as ``lm_head.weight`` ``[vocab, hidden]``; the embedding's
copies ``encoder.embed_tokens`` / ``decoder.embed_tokens`` are tied to ``shared``.
"""

from dataclasses import dataclass

from kerasbert.errors import ConfigError
from kerasbert.families.naming import SLOTS, NameTable, Rule, Slot
from kerasbert.families.record import Detection, Family, ModelEntry


@dataclass(frozen=True)
class PaddedNumber(Slot):
    """A number written with three digits in canonical names (``block_007``) and plainly in
    HF's (``block.7``)."""

    def canonical_pattern(self):
        return r"\d{3,}"

    def stored_pattern(self):
        return r"\d+"

    def to_stored(self, value):
        return str(int(value))

    def to_canonical(self, value):
        return f"{int(value):03d}"

    def example(self):
        return "007"


HF_SLOTS = dict(
    SLOTS,
    n=PaddedNumber(),
    stack=Slot({"encoder": "encoder", "decoder": "decoder"}),
    qkvo=Slot({"q": "q", "k": "k", "v": "v", "o": "o"}),
    wi=Slot({"wi": "wi", "wi_0": "wi_0", "wi_1": "wi_1", "wo": "wo"}),
    attention=Slot({"SelfAttention": "SelfAttention", "EncDecAttention": "EncDecAttention"}),
)
BLOCK = "{stack}/block_{n}/layer_"
HF_BLOCK = "{stack}.block.{n}.layer."
HF_RULES = [
    Rule("shared/embedding", "shared.weight"),
    Rule("{stack}/final_layer_norm/scale", "{stack}.final_layer_norm.weight"),
    Rule("decoder/logits/kernel", "lm_head.weight", transpose=True),
    Rule("{stack}/block_000/layer_000/SelfAttention/relative_attention_bias",
         "{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight", transpose=True),
    Rule(BLOCK + "000/SelfAttention/{qkvo}", HF_BLOCK + "0.SelfAttention.{qkvo}.weight",
         transpose=True),
    Rule("decoder/block_{n}/layer_001/EncDecAttention/{qkvo}",
         "decoder.block.{n}.layer.1.EncDecAttention.{qkvo}.weight", transpose=True),
    Rule("encoder/block_{n}/layer_001/DenseReluDense/{wi}/kernel",
         "encoder.block.{n}.layer.1.DenseReluDense.{wi}.weight", transpose=True),
    Rule("decoder/block_{n}/layer_002/DenseReluDense/{wi}/kernel",
         "decoder.block.{n}.layer.2.DenseReluDense.{wi}.weight", transpose=True),
    Rule(BLOCK + "{j}/layer_norm/scale", HF_BLOCK + "{j}.layer_norm.weight"),
]  # fmt: skip
HF_SLOTS["j"] = PaddedNumber()
HF_SKIPPED = [r"^(encoder|decoder)\.embed_tokens\.weight$"]

# mT5's spelling of the norms, read as the canonical one (never written).
NORM_SPELLING = Slot({"layer_norm": "layer_norm"}, aliases={"rms_norm": "layer_norm"})
FINAL_NORM_SPELLING = Slot(
    {"final_layer_norm": "final_layer_norm"}, aliases={"rms_norm": "final_layer_norm"}
)
TF_SLOTS = dict(SLOTS, stack=HF_SLOTS["stack"], norm=NORM_SPELLING, final=FINAL_NORM_SPELLING)
TF_RULES = [
    Rule("{stack}/block_{rest}/{norm}/scale", "{stack}/block_{rest}/{norm}/scale"),
    Rule("{stack}/{final}/scale", "{stack}/{final}/scale"),
]


def _tie_default(config):
    # HF's T5Config ties the head unless told otherwise; a config without model_type
    # (bert4keras's) leaves it to model= (t5.1.0 tied, t5.1.1 / mt5.1.1 not).
    return True if "model_type" in config else None


def _activation(config):
    """``hidden_act`` from HF's ``feed_forward_proj`` ("relu", "gated-gelu", ...)."""
    proj = config.get("feed_forward_proj", "relu")  # HF's T5Config default
    if not isinstance(proj, str):
        return proj  # normalize_activation says what is wrong with it
    gated, _, name = proj.rpartition("-")
    name = "gelu_new" if (gated, name) == ("gated", "gelu") else name  # HF's special case
    return [name, "linear"] if gated == "gated" else name


def _feed_forward_proj(hidden_act):
    """HF's ``feed_forward_proj`` (and ``dense_act_fn`` / ``is_gated_act``, which its
    config also saves) for kerasbert's ``hidden_act``."""
    gated = isinstance(hidden_act, list)
    name = hidden_act[0] if gated else hidden_act
    if gated and list(hidden_act[1:]) != ["linear"]:
        raise ConfigError(f"HF's T5 has no feed-forward {hidden_act!r}; convert to TF or Keras.")
    hf_name = {"gelu_tanh": "gelu_new", "gelu_erf": "gelu"}.get(name, name)
    proj = ("gated-gelu" if hf_name == "gelu_new" else f"gated-{hf_name}") if gated else hf_name
    if not gated and hf_name == "gelu_new":
        raise ConfigError(
            "HF's T5 reads a plain 'gelu' feed_forward_proj as the erf form; convert this "
            "tanh-GELU model to TF or Keras."
        )
    return {"feed_forward_proj": proj, "dense_act_fn": hf_name, "is_gated_act": gated}


T5 = Family(
    name="t5",
    title="T5",
    models=(
        ModelEntry("t5.1.1", "kerasbert.models.t5:T5", aliases=("T5_1_1",)),
        ModelEntry("t5.1.0", "kerasbert.models.t5:T5_1_0"),
        ModelEntry("mt5.1.1", "kerasbert.models.t5:MT5"),
    ),
    description="Google's encoder-decoder with bucketed relative position biases",
    checkpoint_names=Detection(requires=(r"^encoder/block_\d+/layer_000/SelfAttention/q$",)),
    layer_names=Detection(requires=(r"^Encoder-Transformer-\d+-MultiHeadSelfAttention$",)),
    config_signatures=("d_model", "feed_forward_proj"),
    model_types=("t5", "mt5"),
    hf_prefix="",
    hf_class="T5",
    hf_classes={"mt5": "MT5"},
    names={
        "hf": NameTable(HF_RULES, HF_SKIPPED, slots=HF_SLOTS),
        "tensorflow": NameTable(TF_RULES, slots=TF_SLOTS),
    },
    hf_architectures=(((), "ForConditionalGeneration"),),
    config_names={
        "hidden_size": ("d_model",),
        "num_hidden_layers": ("num_layers",),
        "num_attention_heads": ("num_heads",),
        "intermediate_size": ("d_ff",),
        "attention_head_size": ("d_kv",),
        "layer_norm_eps": ("layer_norm_epsilon",),
        "hidden_dropout_prob": ("dropout_rate",),
    },
    config_defaults={
        "hidden_act": _activation,
        "tie_word_embeddings": _tie_default,
        "attention_probs_dropout_prob": lambda config: config.get("hidden_dropout_prob"),
        "layer_norm_eps": 1e-6,
        "type_vocab_size": 0,
    },
    config_keys=(
        "num_decoder_layers",
        "relative_attention_num_buckets",
        "relative_attention_max_distance",
        "tie_word_embeddings",
    ),
    tf_files=("model.ckpt", "config.json"),
    hf_activation=_feed_forward_proj,
    vocab_variable="shared/embedding",
    sentencepiece="t5",
    tiny_config={"hidden_act": ["gelu_tanh", "linear"]},
)
