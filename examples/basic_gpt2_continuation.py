"""Basic: continue a prompt with GPT-2, greedily or by top-p sampling, with a key/value cache.

Task: each prompt is tokenized with GPT-2's byte-level BPE (``vocab.json`` + ``merges.txt``)
and continued by ``--max-new-tokens`` ids with ``kerasbert.generation.generate``: the
prompt runs through the model once, then every step runs only the newest id, attending to
the cached keys and values, in one jitted function over a fixed-size cache (so a run
compiles a few programs, printed at the end, not one per step). ``--method greedy`` (the
default) continues all prompts as one batch, whatever their lengths; ``sample`` (top-p
``--topp``, optionally top-k ``--topk``, at ``--temperature``, seeded by ``--seed``) and
``beam`` (``--num-beams``) take the prompts one at a time, as bert4keras's decoders do.
Generation stops early at ``<|endoftext|>``.

Model: a GPT-2 folder as HF ships it (``config.json``, ``model.safetensors`` or another
supported checkpoint, ``vocab.json``, ``merges.txt``), OpenAI's original release
(``hparams.json``, ``model.ckpt.*``, with ``vocab.json`` + ``merges.txt`` beside it), or a
name from ``kerasbert list`` (``openai-gpt2-small``, ...).

Commands::

    # OpenAI's GPT-2 small, downloaded and cached on first use
    python examples/basic_gpt2_continuation.py --pretrained openai-gpt2-small \\
        --text "The meaning of life is" --max-new-tokens 40

    # a model folder on disk, nucleus sampling
    python examples/basic_gpt2_continuation.py --model-dir gpt2/ --method sample \\
        --topp 0.9 --temperature 0.8 --seed 1

    # smoke test: the tokenizer of tests/fixtures/gpt2_tiny and a tiny random GPT-2 of its
    # sizes, written as a model folder and loaded back (the continuations are arbitrary)
    python examples/basic_gpt2_continuation.py --tiny

As in bert4keras, token id 0 is masked out as padding; in GPT-2's vocabulary it is ``!``,
so a prompt holding ``!`` continues differently from HF transformers after it.
"""

import json
import pathlib
import shutil
import tempfile
import time

import numpy as np
from common import ROOT, new_parser

# isort: split
# (``common`` imports kerasbert first, which selects the JAX backend before keras loads.)
import kerasbert
from kerasbert.generation import generate, num_compilations
from kerasbert.models import save_safetensors
from kerasbert.pretrained import resolve_model_files
from kerasbert.tokenizers import BPETokenizer

PROMPTS = [
    "The quick brown fox",
    "Once upon a time, in a small village by the sea,",
    "Machine learning is",
]
TINY = ROOT / "tests" / "fixtures" / "gpt2_tiny"
TINY_POSITIONS = 128
END_TOKEN = "<|endoftext|>"


def parse_args(argv=None):
    parser = new_parser(__doc__)
    group = parser.add_argument_group("model")
    group.add_argument("--pretrained", help="a name from `kerasbert list`, or a model folder")
    group.add_argument("--model-dir", help="a GPT-2 folder: config, checkpoint, vocab.json, "
                       "merges.txt")  # fmt: skip
    group.add_argument(
        "--tiny", action="store_true", help="a tiny random GPT-2 (smoke test, seconds on CPU)"
    )
    parser.add_argument("--text", action="append", help="a prompt (repeatable)")
    parser.add_argument("--max-new-tokens", type=int, default=40, help="ids added per prompt")
    parser.add_argument("--method", choices=("greedy", "sample", "beam"), default="greedy")
    parser.add_argument("--topp", type=float, default=0.9, help="sample: nucleus mass")
    parser.add_argument("--topk", type=int, default=None, help="sample: most likely ids kept")
    parser.add_argument("--temperature", type=float, default=1.0, help="sample / beam")
    parser.add_argument("--num-beams", type=int, default=4, help="beam: beams")
    parser.add_argument("--seed", type=int, default=0, help="sample: random seed")
    return parser.parse_args(argv)


def write_tiny_folder(folder, seed=0):
    """A GPT-2 model folder in ``folder``: the sizes of ``tests/fixtures/gpt2_tiny/hf`` with
    :data:`TINY_POSITIONS` positions and the vocabulary of its tokenizer (400 ids), random
    weights, written as HF does (``config.json``, ``model.safetensors``), with the fixture's
    ``vocab.json`` and ``merges.txt``. Returns the folder."""
    import keras

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = BPETokenizer(TINY / "vocab.json").vocab_size
    config = json.loads((TINY / "hf" / "config.json").read_text(encoding="utf-8"))
    config.update(vocab_size=vocab_size, n_positions=TINY_POSITIONS, bos_token_id=0,
                  eos_token_id=0)  # fmt: skip
    keras.utils.set_random_seed(seed)
    model = kerasbert.build_transformer_model(config, model="gpt2")
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_safetensors(model, folder)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(TINY / name, folder / name)
    return folder


def load_builder_and_tokenizer(args, scratch):
    """``(builder, tokenizer)`` of the GPT-2 the options name (``scratch``: a folder for
    ``--tiny``'s files)."""
    if args.tiny:
        folder = write_tiny_folder(scratch)
        config = checkpoint = vocab = folder
    elif args.model_dir:
        folder = pathlib.Path(args.model_dir)
        config = checkpoint = vocab = folder
    elif args.pretrained:
        config, checkpoint, vocab, _ = resolve_model_files(args.pretrained)
        vocab = vocab or pathlib.Path(checkpoint).parent  # a folder: vocab.json there
    else:
        raise SystemExit("give --tiny, --pretrained NAME or --model-dir FOLDER")
    builder = kerasbert.build_transformer_model(config, checkpoint, return_keras_model=False)
    if type(builder).__name__ != "GPT2":
        raise SystemExit(f"{checkpoint} holds a {type(builder).__name__} model, not GPT-2")
    return builder, BPETokenizer(vocab)


def main(argv=None):
    args = parse_args(argv)
    prompts = args.text or PROMPTS
    with tempfile.TemporaryDirectory() as scratch:
        builder, tokenizer = load_builder_and_tokenizer(args, scratch)
    end_id = tokenizer.token_to_id(END_TOKEN) if END_TOKEN in tokenizer.token_dict else None
    prompt_ids = [tokenizer.encode(text) for text in prompts]
    if any(0 in ids for ids in prompt_ids):
        print(f"note: a prompt holds id 0 ({tokenizer.id_to_token(0)!r}), masked as padding")

    start = time.perf_counter()
    options = {"method": args.method, "end_id": end_id, "temperature": args.temperature}
    if args.method == "greedy":
        new_ids = generate(builder, prompt_ids, args.max_new_tokens, end_id=end_id)
    elif args.method == "sample":
        options.update(topk=args.topk, topp=args.topp, seed=args.seed)
        new_ids = [generate(builder, ids, args.max_new_tokens, **options) for ids in prompt_ids]
    else:
        options.update(num_beams=args.num_beams)
        new_ids = [generate(builder, ids, args.max_new_tokens, **options) for ids in prompt_ids]
    seconds = time.perf_counter() - start

    continuations = [tokenizer.decode([int(i) for i in ids if i != end_id]) for ids in new_ids]
    for text, continuation, ids in zip(prompts, continuations, new_ids):
        print(f"\n{text}\u2502{continuation}\n  ({len(ids)} new ids)")
    count = sum(len(ids) for ids in new_ids)
    print(
        f"\n{args.method}: {count} ids in {seconds:.2f} s ({count / seconds:.1f} ids/s, "
        f"compilation included); {num_compilations(builder)} XLA compilations"
    )
    return {
        "prompts": prompts,
        "prompt_ids": prompt_ids,
        "new_ids": [np.asarray(ids).tolist() for ids in new_ids],
        "continuations": continuations,
        "method": args.method,
        "end_id": end_id,
        "compilations": num_compilations(builder),
        "builder": builder,
    }


if __name__ == "__main__":
    main()
