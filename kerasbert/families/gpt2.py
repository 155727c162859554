"""GPT-2 (openai/gpt-2; bert4keras's GPT2 and its converted Chinese GPT models).

Canonical names are bert4keras's GPT naming (``GPT2.variable_mapping``, which the TF
checkpoints converted for bert4keras use): BERT's names with ``bert/`` -> ``gpt/``,
``encoder`` -> ``transformer`` and ``output/LayerNorm`` -> ``input/LayerNorm`` (the norms
are before their sublayers), plus ``gpt/output/LayerNorm`` for the final norm::

    gpt/embeddings/{word,position}_embeddings
    gpt/transformer/layer_0/attention/input/LayerNorm/{gamma,beta}    (before attention)
    gpt/transformer/layer_0/attention/self/{query,key,value}/{kernel,bias}
    gpt/transformer/layer_0/attention/output/dense/{kernel,bias}
    gpt/transformer/layer_0/input/LayerNorm/{gamma,beta}              (before the FFN)
    gpt/transformer/layer_0/{intermediate,output}/dense/{kernel,bias}
    gpt/output/LayerNorm/{gamma,beta}

HF transformers (``GPT2LMHeadModel``; the hub's files of ``GPT2Model`` lack the
``transformer.`` prefix) stores ``Conv1D`` weights ``[in, out]`` (not transposed like
``Linear``), the query, key and value side by side in ``attn.c_attn`` (a ``split`` rule),
the causal-mask buffers ``attn.bias`` / ``attn.masked_bias`` (skipped) and no
``lm_head.weight`` (tied to ``wte``). OpenAI's original TF checkpoints (``model.ckpt`` of
openai/gpt-2) are read under the ``"tensorflow"`` naming: ``model/wte``, ``model/h0/ln_1/g``,
``model/h0/attn/c_attn/w`` (``[1, in, out]``: a ``squeeze`` rule), ``model/ln_f/b``, ...;
checkpoints with canonical names pass that table unchanged. Configs name the sizes as HF
(``n_embd``, ``n_layer``, ``n_head``, ``n_positions``, ``n_inner``,
``layer_norm_epsilon``, ``activation_function``) or as OpenAI's ``hparams.json``
(``n_vocab``, ``n_ctx``, ...): ``config_names`` reads both and writes HF's.
"""

from kerasbert.families.bert import BERT_LAYER
from kerasbert.families.naming import SLOTS, NameTable, Rule, Slot
from kerasbert.families.record import Detection, Family, ModelEntry

LAYER = "gpt/transformer/layer_{n}/"

HF_RULES = [
    Rule("gpt/embeddings/word_embeddings", "{prefix}wte.weight"),
    Rule("gpt/embeddings/position_embeddings", "{prefix}wpe.weight"),
    Rule(LAYER + "attention/input/LayerNorm/{norm}", "{prefix}h.{n}.ln_1.{norm}"),
    Rule(LAYER + "attention/self/{qkv}/{dense}", "{prefix}h.{n}.attn.c_attn.{dense}",
         split="qkv"),
    Rule(LAYER + "attention/output/dense/{dense}", "{prefix}h.{n}.attn.c_proj.{dense}"),
    Rule(LAYER + "input/LayerNorm/{norm}", "{prefix}h.{n}.ln_2.{norm}"),
    Rule(LAYER + "intermediate/dense/{dense}", "{prefix}h.{n}.mlp.c_fc.{dense}"),
    Rule(LAYER + "output/dense/{dense}", "{prefix}h.{n}.mlp.c_proj.{dense}"),
    Rule("gpt/output/LayerNorm/{norm}", "{prefix}ln_f.{norm}"),
]  # fmt: skip
HF_SKIPPED = [
    r"(^|\.)attn\.(bias|masked_bias)$",  # the causal mask, a buffer
    r"^lm_head\.weight$",  # tied to wte
]

# OpenAI's TF names (openai/gpt-2 src/model.py): conv1d weights "w" [1, in, out], "b";
# norms "g", "b".
OPENAI_SLOTS = dict(SLOTS, conv=Slot({"kernel": "w", "bias": "b"}),
                    ln=Slot({"gamma": "g", "beta": "b"}))  # fmt: skip
OPENAI_LAYER = "model/h{n}/"
OPENAI_RULES = [
    Rule("gpt/embeddings/word_embeddings", "model/wte"),
    Rule("gpt/embeddings/position_embeddings", "model/wpe"),
    Rule(LAYER + "attention/input/LayerNorm/{ln}", OPENAI_LAYER + "ln_1/{ln}"),
    Rule(LAYER + "attention/self/{qkv}/{conv}", OPENAI_LAYER + "attn/c_attn/{conv}",
         split="qkv", squeeze=True),
    Rule(LAYER + "attention/output/dense/{conv}", OPENAI_LAYER + "attn/c_proj/{conv}",
         squeeze=True),
    Rule(LAYER + "input/LayerNorm/{ln}", OPENAI_LAYER + "ln_2/{ln}"),
    Rule(LAYER + "intermediate/dense/{conv}", OPENAI_LAYER + "mlp/c_fc/{conv}", squeeze=True),
    Rule(LAYER + "output/dense/{conv}", OPENAI_LAYER + "mlp/c_proj/{conv}", squeeze=True),
    Rule("gpt/output/LayerNorm/{ln}", "model/ln_f/{ln}"),
]  # fmt: skip


def _intermediate_size(config):
    hidden = config.get("hidden_size")
    return 4 * hidden if isinstance(hidden, int) and not isinstance(hidden, bool) else None


GPT2 = Family(
    name="gpt2",
    title="GPT-2",
    models=(ModelEntry("gpt2", "kerasbert.models.gpt2:GPT2"),),
    description="OpenAI's pre-LayerNorm causal decoder with learned positions, tied output",
    checkpoint_names=Detection(requires=(r"^gpt/transformer/layer_\d+/",)),
    layer_names=Detection(requires=(BERT_LAYER, r"^Output-Norm$", r"^LM-Activation$")),
    config_signatures=("n_embd",),
    model_types=("gpt2",),
    hf_prefix="transformer.",
    hf_class="GPT2",
    names={
        "hf": NameTable(HF_RULES, HF_SKIPPED, prefix="transformer.", optional_prefix=True),
        "tensorflow": NameTable(OPENAI_RULES, slots=OPENAI_SLOTS),
    },
    hf_architectures=(((), "LMHeadModel"),),
    config_names={
        "vocab_size": ("vocab_size", "n_vocab"),
        "hidden_size": ("n_embd",),
        "num_hidden_layers": ("n_layer",),
        "num_attention_heads": ("n_head",),
        "intermediate_size": ("n_inner",),
        "max_position_embeddings": ("n_positions", "n_ctx"),
        "layer_norm_eps": ("layer_norm_epsilon",),
        "hidden_act": ("activation_function",),
        "hidden_dropout_prob": ("resid_pdrop",),
        "attention_probs_dropout_prob": ("attn_pdrop",),
    },
    # OpenAI's hparams.json names none of these: GPT-2's values.
    config_defaults={
        "intermediate_size": _intermediate_size,
        "layer_norm_eps": 1e-5,
        "hidden_act": "gelu_new",
        "type_vocab_size": 0,
    },
    # HF options that change the attention's scale: read so that other values are refused.
    config_keys=("scale_attn_weights", "scale_attn_by_inverse_layer_idx"),
    # bert4keras's converted GPT checkpoints ship a config.json beside model.ckpt.
    tf_files=("model.ckpt", "config.json"),
    # In a config without model_type (bert4keras's), "gelu" is bert4keras's: the erf form.
    google_gelu="gelu_erf",
    vocab_variable="gpt/embeddings/word_embeddings",
    index_fields=("merges",),  # the BPE's merges.txt beside vocab.json
    tiny_config={"hidden_act": "gelu_new"},
)
