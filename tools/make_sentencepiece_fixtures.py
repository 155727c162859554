"""Train two tiny SentencePiece models and record HF transformers' slow tokenizers on them.

Writes, under ``tests/fixtures/sentencepiece/``:

- ``t5.model``: a unigram model with T5's special pieces (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2;
  no ``<s>``), trained by ``sentencepiece`` itself on ``TRAINING_TEXT`` below plus the
  WordPiece corpus (``tests/fixtures/tokenizer/corpus.json``);
- ``albert.model``: a unigram model with ALBERT's (``<pad>`` 0, ``<unk>`` 1, ``[CLS]`` 2,
  ``[SEP]`` 3, ``[MASK]`` 4), trained on the same text lower-cased, as Google's ALBERT
  spiece is;
- ``goldens.json``: for every line of the corpus (the WordPiece corpus plus ``EXTRA_LINES``:
  whitespace runs, digits with commas, accents, emoji, astral CJK, T5's ``<extra_id_N>``),
  HF ``T5Tokenizer`` (slow, sentencepiece-based; ``extra_ids=100``, its default legacy
  behaviour) ``encode(line)`` ids and ``decode(ids, skip_special_tokens=True)``, and HF
  ``AlbertTokenizer`` (slow; ``do_lower_case=True``, ``remove_space=True``,
  ``keep_accents=False``, as ALBERT v2's tokenizer_config) ``encode(line)`` ids and
  ``tokenize(line)`` pieces. Also the versions used.

Environment: the ``/tmp/ref`` venv (transformers 4.57.6, sentencepiece 0.2.3). Run from the
repository root::

    /tmp/ref/bin/python tools/make_sentencepiece_fixtures.py

Training is deterministic for a given sentencepiece version (one thread, fixed seed).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import sentencepiece as spm
import transformers

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "sentencepiece"
CORPUS = json.loads((REPO / "tests" / "fixtures" / "tokenizer" / "corpus.json").read_text())

TRAINING_TEXT = """\
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!
Summarize: the committee approved the budget of 1,250,000 dollars on 3 May 2024.
translate English to German: That is good. Das ist gut.
Machine learning models are trained on large datasets; evaluation uses held-out data.
Résumé, naïve café, façade and coöperate keep their accents in cased text.
mT5 covers 101 languages: 你好，世界。こんにちは。안녕하세요. Привет, мир! مرحبا
Numbers: 3.14159, 2,718, 1e-5, 42%, $19.99, 2024-12-02, 10:30 pm.
""".splitlines()

EXTRA_LINES = [
    "",
    " ",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nmixed",
    "multiple     spaces    between words",
    "9,000 and 1,000,000,000 items, 3,4",
    "Ünïcödé àccents: São Paulo, Zürich, Ångström",
    "emoji 😀🎉 and symbols ©®™ ±×÷",
    "astral CJK 𠀀𠀁𪚥 and fullwidth ＡＢＣ１２３",
    "summarize: <extra_id_0> went to <extra_id_1> yesterday",
    "<extra_id_99></s><pad> specials in text",
    "UPPER lower MiXeD",
]


ALBERT_SPECIALS = ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")


def lines() -> list[str]:
    return list(CORPUS) + EXTRA_LINES


def train(prefix: Path, text: list[str], **options) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.txt"
        data.write_text("\n".join(line for line in text if line.strip()) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(data),
            model_prefix=str(prefix),
            model_type="unigram",
            vocab_size=options.pop("vocab_size"),
            character_coverage=0.995,  # rare characters stay out: <unk> is exercised
            num_threads=1,
            seed_sentencepiece_size=100000,
            shuffle_input_sentence=False,
            minloglevel=2,
            **options,
        )
    prefix.with_suffix(".vocab").unlink()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    text = TRAINING_TEXT + list(CORPUS)
    train(OUT / "t5", text, vocab_size=800, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    train(
        OUT / "albert",
        [line.lower() for line in text],
        vocab_size=800,
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        control_symbols="[CLS],[SEP]",
        user_defined_symbols="[MASK]",
    )
    t5 = transformers.T5Tokenizer(str(OUT / "t5.model"), extra_ids=100)
    albert = transformers.AlbertTokenizer(
        str(OUT / "albert.model"), do_lower_case=True, remove_space=True, keep_accents=False
    )
    records = []
    for line in lines():
        t5_ids = t5.encode(line)
        records.append(
            {
                "text": line,
                "t5_ids": t5_ids,
                "t5_decoded": t5.decode(t5_ids, skip_special_tokens=True),
                "albert_ids": albert.encode(line),
                "albert_pieces": albert.tokenize(line),
            }
        )
    goldens = {
        "transformers": transformers.__version__,
        "sentencepiece": spm.__version__,
        "t5_vocab_size": len(t5),
        "albert_special_ids": {t: albert.convert_tokens_to_ids(t) for t in ALBERT_SPECIALS},
        "lines": records,
    }
    (OUT / "goldens.json").write_text(json.dumps(goldens, ensure_ascii=False, indent=1) + "\n")
    sizes = {p.name: p.stat().st_size for p in sorted(OUT.iterdir())}
    print(f"{len(records)} lines; files {sizes}")


if __name__ == "__main__":
    main()
