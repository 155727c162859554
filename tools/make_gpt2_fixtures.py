"""Write tiny random GPT-2 reference fixtures: HF safetensors, OpenAI's TF names, bert4keras's.

Environment: the ``/tmp/ref`` venv (torch 2.13.0+cpu, transformers 4.57.6, tensorflow-cpu
2.21.0, tokenizers 0.22, safetensors, numpy; CPU only), and kerasbert's own venv
(``KERASBERT_PYTHON``, default ``.venv/bin/python``) for the last check. Run from the
repository root::

    /tmp/ref/bin/python tools/make_gpt2_fixtures.py

Everything goes to ``tests/fixtures/gpt2_tiny/``:

- ``vocab.json`` + ``merges.txt``: a byte-level BPE (GPT-2's pre-tokenizer, 400 tokens
  with ``<|endoftext|>``) trained by HF ``tokenizers`` on ``corpus.txt``'s first half plus
  a few English sentences; ``corpus.txt`` (English, punctuation, digits, accents, CJK,
  emoji, whitespace runs; one case per line, ``\\n`` kept out of the lines) and
  ``tokenizer_goldens.json``: the ids of HF's slow ``GPT2Tokenizer`` for every line
  (``lines``, in order) and for the whole file as one text (``whole``), and
  ``pattern_check``: kerasbert's ``re`` spelling of GPT-2's pre-tokenizer pattern agrees
  with the ``regex`` package's on every code point Python's Unicode database assigns (it
  differs only on code points assigned after it, which ``regex`` knows);
- ``hf/``: ``config.json`` + ``model.safetensors`` of a ``GPT2LMHeadModel`` (``save_pretrained``)
  with a vocabulary of 100 (not the tokenizer's: three copies of the weights stay under
  300 KB), n_embd 32, 2 layers, 4 heads, 32 positions, ``n_inner`` 64 (not the default
  4 * n_embd, so that the config key is exercised) and every parameter random, LayerNorm
  gammas / betas and biases included;
- ``openai/``: the same weights as OpenAI's TF checkpoints name them (``model/wte``,
  ``model/h0/attn/c_attn/w`` of shape ``[1, in, out]``, ...; TF1 ``Saver``,
  ``model.ckpt.*`` + ``checkpoint``) and an ``hparams.json`` with OpenAI's keys (plus
  ``n_inner``, which OpenAI's releases leave at 4 * n_embd); read back by
  HF's own ``load_tf_weights_in_gpt2`` to the same parameters;
- ``bert4keras/``: the same weights under bert4keras's GPT2 names (``gpt/transformer/layer_0/
  attention/self/query/kernel``, ...: q, k, v split out of ``c_attn``) and a bert4keras-style
  ``config.json`` (BERT's keys, ``hidden_act: gelu_tanh``, no epsilon: bert4keras's GPT2
  fixes 1e-5);
- ``goldens.npz``: ``token_ids`` (3 rows of lengths 12, 9 and 5, right-padded with id 0, no
  real token 0), ``lengths``, HF's ``logits`` and last hidden state (after ``ln_f``), float32,
  in eval mode with the attention mask; ``greedy_tokens``: the 20 tokens HF's ``generate``
  (greedy) adds after the first row's 12 ids (``min_new_tokens`` keeps it from stopping);
- ``hf_loads.json``: kerasbert (its own venv) converts ``bert4keras/`` and ``openai/`` to
  safetensors; HF's ``GPT2LMHeadModel.from_pretrained`` loads each with no missing or
  unexpected keys, every parameter equal to the reference, and the goldens' logits.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors import safe_open  # noqa: E402

v1 = tf.compat.v1
v1.disable_eager_execution()

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "tests" / "fixtures" / "gpt2_tiny"
KERASBERT_PYTHON = os.environ.get("KERASBERT_PYTHON", str(REPO_ROOT / ".venv" / "bin" / "python"))
MAX_BYTES = 300 * 1024
VOCAB_SIZE = 400  # the tokenizer's
MODEL_VOCAB = 100  # the model's (its own tiny vocabulary keeps three copies under 300 KB)
SEED = 1919
LENGTHS = (12, 9, 5)
PAD = 0
GREEDY_TOKENS = 20

CORPUS = [
    "Hello world! This is a tiny corpus for GPT-2's byte-level BPE.",
    "It's the tokenizer's job: we'll see, they've said, I'm sure you'd agree.",
    "Numbers: 0 1 12 123 1234 3.14159 -42 +7 1e-5 2026-12-02 10:45pm",
    "Punctuation!!! ??? ... ,,, ;;; ::: (brackets) [square] {curly} <angle>",
    "Quotes \"double\" 'single' `back` and “curly” ‘ones’ — dashes – too.",
    "   leading spaces and trailing spaces   ",
    "tabs\tand\t\tmore tabs\t",
    "multiple     spaces     inside",
    "Accents: café, naïve, façade, Ångström, São Paulo, Zürich, Œuvre.",
    "Greek αβγ δέλτα and Cyrillic привет мир.",
    "中文分词测试：今天天气很好，我们去公园散步。",
    "日本語のテキストもあります。カタカナとひらがな。",
    "한국어 문장도 하나 있습니다.",
    "Emoji: 😀 🎉 👍🏽 👨‍👩‍👧 ❤️ 🇫🇷",
    "Math: ∑ x² ≤ ½ √2 ≈ 1.414, ∞ ≠ π; Ⅻ ⅷ ① ² ³",
    "Symbols & stuff: @user #tag $5.00 100% a+b=c ~tilde^ caret|pipe \\back",
    "CamelCaseWords and snake_case_words and kebab-case-words",
    "URLs: https://example.com/path?q=1&r=two#frag and user@mail.org",
    "Mixed123numbers456and789letters",
    "A line with a very long word: Pneumonoultramicroscopicsilicovolcanoconiosis.",
    "don't DON'T Don't 's 't 're 've 'm 'll 'd",
    "<|endoftext|> marks the end of a document.",
    "Two texts<|endoftext|>joined by the special token.",
    "Arabic مرحبا بالعالم and Hebrew שלום עולם.",
    "Devanagari नमस्ते दुनिया and Thai สวัสดีชาวโลก",
    "Combining marks: é (e + U+0301) and ñ (n + U+0303).",
    "Zero\u200bwidth\u200bspace and non\u00a0breaking\u00a0space.",
    "End with spaces after punctuation.  ",
    " a",
    "a ",
    "  ",
    "!",
    "!!",
    "'''",
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs; sphinx of black quartz, judge my vow.",
]
EXTRA_TRAINING = [
    "the of and to in is that for it as was with be by on not he this are or his",
    "language models predict the next token given the previous tokens of a text",
    "transformers attend to every earlier position through causal self attention",
]


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                    encoding="utf-8")  # fmt: skip


def train_tokenizer() -> transformers.GPT2Tokenizer:
    (OUT / "corpus.txt").write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS[: len(CORPUS) // 2] + EXTRA_TRAINING,
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        bpe.save_model(tmp)
        vocab = json.loads(Path(tmp, "vocab.json").read_text(encoding="utf-8"))
        merges = Path(tmp, "merges.txt").read_text(encoding="utf-8")
    write_json(OUT / "vocab.json", vocab)
    (OUT / "merges.txt").write_text(merges, encoding="utf-8")
    slow = transformers.GPT2Tokenizer(str(OUT / "vocab.json"), str(OUT / "merges.txt"))
    goldens = {"tokenizer": f"transformers {transformers.__version__} GPT2Tokenizer (slow)",
               "lines": [], "whole": None}  # fmt: skip
    for line in CORPUS:
        ids = slow.encode(line)
        goldens["lines"].append(ids)
        assert slow.decode(ids) == line, line
    whole = (OUT / "corpus.txt").read_text(encoding="utf-8")
    goldens["whole"] = slow.encode(whole)
    goldens["pattern_check"] = check_pattern()
    text = json.dumps(goldens, sort_keys=True, separators=(",", ":"))
    (OUT / "tokenizer_goldens.json").write_text(text + "\n", encoding="utf-8")
    print(f"  tokenizer: {len(vocab)} tokens, {len(CORPUS)} corpus lines")
    return slow


def check_pattern() -> dict:
    """kerasbert's ``re`` spelling of GPT-2's pre-tokenizer pattern against the ``regex``
    package's (HF's slow tokenizer's), on every code point in a few contexts."""
    import unicodedata

    import regex

    sys.path.insert(0, str(REPO_ROOT))
    from kerasbert.tokenizers.bpe import gpt2_pattern  # plain Python, no Keras

    reference = regex.compile(
        r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    )
    mine = gpt2_pattern()
    assigned = differ = unassigned_differ = 0
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code < 0xE000:
            continue
        c = chr(code)
        texts = (c + c, " " + c + "a", "a" + c + " 1", c + "  x", "x" + c + "\n")
        bad = any(reference.findall(t) != mine.findall(t) for t in texts)
        if unicodedata.category(c) == "Cn":
            unassigned_differ += bad
        else:
            assigned += 1
            differ += bad
    assert differ == 0, differ
    print(f"  pattern: {assigned} assigned code points agree with regex's")
    return {
        "python_unicode": unicodedata.unidata_version,
        "regex": regex.__version__,
        "assigned_code_points": assigned,
        "assigned_differing": differ,
        "unassigned_in_python_differing": unassigned_differ,
    }


def build_reference(vocab_size: int) -> transformers.GPT2LMHeadModel:
    config = transformers.GPT2Config(
        vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=32, n_inner=64,
        activation_function="gelu_new", layer_norm_epsilon=1e-5,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1,
    )  # fmt: skip
    torch.manual_seed(SEED)
    model = transformers.GPT2LMHeadModel(config).eval()
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(0.2 * noise)
    return model


def write_tf_checkpoint(prefix: Path, weights: dict) -> None:
    """Save ``weights`` with a TF1 Saver (op names = checkpoint names) and read them back."""
    with tf.Graph().as_default():
        var_list = {}
        for name in sorted(weights):
            var = v1.Variable(weights[name], dtype=tf.float32, name=name)
            assert var.op.name == name, (var.op.name, name)
            var_list[name] = var
        saver = v1.train.Saver(var_list=var_list, save_relative_paths=True, max_to_keep=1)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            saved = saver.save(sess, str(prefix), write_meta_graph=False)
    assert saved == str(prefix), saved
    for name, value in weights.items():
        got = tf.train.load_variable(str(prefix), name)
        assert got.dtype == np.float32 and np.array_equal(got, value), name
    print(f"  {prefix.parent.name}/{prefix.name}: {len(weights)} variables")


def openai_names(state: dict) -> dict:
    """OpenAI's TF names and shapes (openai/gpt-2 src/model.py: conv1d w is [1, in, out])."""
    out = {}
    for name, value in state.items():
        parts = name.removeprefix("transformer.").split(".")
        if parts[0] in ("wte", "wpe"):
            out[f"model/{parts[0]}"] = value
            continue
        if parts[0] == "ln_f":
            out[f"model/ln_f/{'g' if parts[1] == 'weight' else 'b'}"] = value
            continue
        assert parts[0] == "h", name
        layer, rest = parts[1], parts[2:]
        leaf = rest[-1]
        if rest[0].startswith("ln_"):
            out[f"model/h{layer}/{rest[0]}/{'g' if leaf == 'weight' else 'b'}"] = value
        else:
            tensor = value[None] if leaf == "weight" else value
            out[f"model/h{layer}/{rest[0]}/{rest[1]}/{'w' if leaf == 'weight' else 'b'}"] = tensor
    return out


def bert4keras_names(state: dict, hidden: int) -> dict:
    """bert4keras's GPT2.variable_mapping names; q, k, v split out of c_attn."""
    out = {
        "gpt/embeddings/word_embeddings": state["transformer.wte.weight"],
        "gpt/embeddings/position_embeddings": state["transformer.wpe.weight"],
        "gpt/output/LayerNorm/gamma": state["transformer.ln_f.weight"],
        "gpt/output/LayerNorm/beta": state["transformer.ln_f.bias"],
    }
    layer = 0
    while f"transformer.h.{layer}.ln_1.weight" in state:
        h, p = f"transformer.h.{layer}.", f"gpt/transformer/layer_{layer}/"
        for norm, name in (("ln_1", "attention/input/LayerNorm"), ("ln_2", "input/LayerNorm")):
            out[p + name + "/gamma"] = state[h + norm + ".weight"]
            out[p + name + "/beta"] = state[h + norm + ".bias"]
        w, b = state[h + "attn.c_attn.weight"], state[h + "attn.c_attn.bias"]
        for i, part in enumerate(("query", "key", "value")):
            out[p + f"attention/self/{part}/kernel"] = w[:, i * hidden : (i + 1) * hidden]
            out[p + f"attention/self/{part}/bias"] = b[i * hidden : (i + 1) * hidden]
        for conv, name in (
            ("attn.c_proj", "attention/output/dense"),
            ("mlp.c_fc", "intermediate/dense"),
            ("mlp.c_proj", "output/dense"),
        ):
            out[p + name + "/kernel"] = state[h + conv + ".weight"]
            out[p + name + "/bias"] = state[h + conv + ".bias"]  # fmt: skip
        layer += 1
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def make_inputs(vocab_size: int) -> tuple:
    rng = np.random.default_rng(SEED)
    ids = np.full((len(LENGTHS), max(LENGTHS)), PAD, dtype=np.int32)
    for row, length in enumerate(LENGTHS):
        ids[row, :length] = rng.integers(1, vocab_size, length)  # no real token 0
    return ids, np.array(LENGTHS, dtype=np.int32)


KERASBERT_CONVERT = """
import json, sys
from kerasbert.convert import convert
for source, destination, to, kwargs in json.loads(sys.argv[1]):
    convert(source, destination, to=to, **kwargs)
"""


def check_hf_loads(model: transformers.GPT2LMHeadModel, ids, mask, logits) -> dict:
    reference = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    record = {"kerasbert_python": os.path.relpath(KERASBERT_PYTHON, REPO_ROOT),
              "transformers": transformers.__version__, "torch": torch.__version__,
              "models": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        steps = [[str(OUT / "bert4keras"), str(tmp / "from_bert4keras"), "safetensors", {}],
                 [str(OUT / "openai" / "model.ckpt"), str(tmp / "from_openai"), "safetensors",
                  {"config": str(OUT / "openai" / "hparams.json")}],
                 [str(OUT / "hf"), str(tmp / "to_tf"), "tf", {}],
                 [str(tmp / "to_tf"), str(tmp / "back_to_hf"), "safetensors", {}]]  # fmt: skip
        env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
        subprocess.run([KERASBERT_PYTHON, "-c", KERASBERT_CONVERT, json.dumps(steps)],
                       check=True, cwd=REPO_ROOT, env=env)  # fmt: skip
        for name in ("from_bert4keras", "from_openai", "back_to_hf"):
            folder = tmp / name
            loaded, info = transformers.GPT2LMHeadModel.from_pretrained(
                str(folder), output_loading_info=True
            )
            loaded.eval()
            assert not info["missing_keys"] and not info["unexpected_keys"], info
            state = {k: v.detach().numpy() for k, v in loaded.state_dict().items()}
            assert sorted(state) == sorted(reference), sorted(set(state) ^ set(reference))
            for key, value in reference.items():
                assert np.array_equal(state[key], value), (name, key)
            with torch.no_grad():
                got = loaded(torch.from_numpy(ids).long(), attention_mask=mask).logits.numpy()
            diff = float(np.max(np.abs(got - logits)))
            assert diff == 0.0, (name, diff)
            with safe_open(str(folder / "model.safetensors"), framework="numpy") as f:
                keys = sorted(f.keys())
            config = json.loads((folder / "config.json").read_text())
            record["models"][name] = {
                "loading_info": {k: sorted(v) for k, v in info.items() if k != "error_msgs"},
                "parameters_equal": True,
                "max_abs_logits_diff": diff,
                "config": {k: config.get(k) for k in ("architectures", "model_type", "n_embd",
                           "n_layer", "n_head", "n_positions", "n_inner",
                           "activation_function", "layer_norm_epsilon")},
                "tensors": keys,
                "sha256": hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest(),
            }  # fmt: skip
            print(f"  HF loads kerasbert's {name}: every parameter equal, logits diff {diff}")
    write_json(OUT / "hf_loads.json", record)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    train_tokenizer()
    model = build_reference(MODEL_VOCAB)
    config = model.config
    model.save_pretrained(str(OUT / "hf"), safe_serialization=True)
    (OUT / "hf" / "generation_config.json").unlink(missing_ok=True)
    state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    state.pop("lm_head.weight")  # tied to wte

    openai = OUT / "openai"
    openai.mkdir(exist_ok=True)
    openai_weights = openai_names(state)
    write_tf_checkpoint(openai / "model.ckpt", openai_weights)
    # OpenAI's keys, plus n_inner: every OpenAI release has 4 * n_embd, this one has not.
    hparams = {
        "n_vocab": config.vocab_size,
        "n_ctx": config.n_positions,
        "n_embd": config.n_embd,
        "n_head": config.n_head,
        "n_layer": config.n_layer,
        "n_inner": config.n_inner,
    }
    write_json(openai / "hparams.json", hparams)
    # HF's own importer reads the OpenAI-named checkpoint back to the same parameters.
    imported = transformers.GPT2Model(config)
    transformers.models.gpt2.modeling_gpt2.load_tf_weights_in_gpt2(
        imported, config, str(openai / "model.ckpt")
    )
    for key, value in imported.state_dict().items():
        assert np.array_equal(value.numpy(), state["transformer." + key]), key

    b4k = OUT / "bert4keras"
    b4k.mkdir(exist_ok=True)
    write_tf_checkpoint(b4k / "model.ckpt", bert4keras_names(state, config.n_embd))
    write_json(b4k / "config.json", {
        "vocab_size": config.vocab_size, "hidden_size": config.n_embd,
        "num_hidden_layers": config.n_layer, "num_attention_heads": config.n_head,
        "intermediate_size": config.n_inner, "hidden_act": "gelu_tanh",
        "max_position_embeddings": config.n_positions, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
    })  # fmt: skip

    ids, lengths = make_inputs(config.vocab_size)
    mask = torch.from_numpy((np.arange(ids.shape[1])[None] < lengths[:, None]).astype(np.int64))
    with torch.no_grad():
        out = model(torch.from_numpy(ids).long(), attention_mask=mask, output_hidden_states=True)
    logits = out.logits.numpy().astype(np.float32)
    hidden = out.hidden_states[-1].numpy().astype(np.float32)
    # HF's greedy generation (no sampling) from the first row's prompt: 20 new tokens, none of
    # them id 0 (which kerasbert, as bert4keras, would mask as padding).
    prompt = torch.from_numpy(ids[:1, : LENGTHS[0]]).long()
    with torch.no_grad():
        generated = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                   max_new_tokens=GREEDY_TOKENS, min_new_tokens=GREEDY_TOKENS,
                                   pad_token_id=config.eos_token_id)  # fmt: skip
    greedy = generated[0, LENGTHS[0] :].numpy().astype(np.int32)
    assert len(greedy) == GREEDY_TOKENS and 0 not in greedy.tolist(), greedy
    np.savez_compressed(OUT / "goldens.npz", token_ids=ids, lengths=lengths, logits=logits,
                        last_hidden_state=hidden, greedy_tokens=greedy)  # fmt: skip
    check_hf_loads(model, ids, mask, logits)

    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"  {OUT.relative_to(REPO_ROOT)}: {total} bytes")
    assert total < MAX_BYTES, total


if __name__ == "__main__":
    sys.exit(main())
