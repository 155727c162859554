"""What a model folder says about using it: case handling, length limit, pooling, files.

A model folder carries more than weights. HF folders have ``tokenizer_config.json``
(``do_lower_case``, ``model_max_length``); sentence-transformers folders add ``modules.json``
(which modules run: a Pooling module, perhaps Normalize), ``1_Pooling/config.json`` (the
pooling mode) and ``sentence_bert_config.json`` (``max_seq_length``, its own
``do_lower_case``); Google's releases have none of that, but the index entry knows
``do_lower_case`` and the folder name says ``uncased_`` / ``cased_``. :func:`read_settings`
reads all of it into :class:`FolderSettings`, each value with the file it came from, so the
Python API and the command line configure the tokenizer, the maximum length, the pooling
and the normalisation the way the model was trained. An explicit option wins; a
contradiction between an option and the folder is a warning (:func:`choose`).

The fetch record (:data:`FETCH_RECORD`) is what :func:`kerasbert.pretrained.get_pretrained`
writes into a model's cache folder when a fetch is complete: the size and SHA-256 of every
file it placed there (:func:`write_fetch_record`), compared again on each later use
(:func:`check_fetch_record`: sizes) and by ``kerasbert verify`` (sizes and SHA-256).

This module reads JSON only (no Keras), so the tokenizer and the command line can use it.

Example:

>>> import json, os, tempfile
>>> folder = tempfile.mkdtemp(prefix="uncased_L-2_H-128_")
>>> with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
...     json.dump({"do_lower_case": False, "model_max_length": 128}, f)
>>> settings = read_settings(folder)
>>> settings.do_lower_case, settings.max_seq_len, settings.source["do_lower_case"]
(False, 128, 'tokenizer_config.json')
"""

import glob
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass, field

from kerasbert.errors import ConfigError

CONFIG_NAMES = ("config.json", "bert_config.json", "albert_config.json")
# What `kerasbert convert --to keras` writes beside model.weights.h5: the builder's model
# and head options, which a .weights.h5 cannot show by itself.
RECORD = "kerasbert.json"
VOCAB_NAMES = ("vocab.txt",)
# What get_pretrained writes into a model's cache folder once every file is in place: that
# the fetch completed, and the size and SHA-256 of each file it placed. Older versions wrote
# "ok" there, and a folder put together by hand has it empty: then nothing is recorded.
FETCH_RECORD = ".kerasbert-complete"
_RECORD_LIMIT = 64 << 20  # bytes; a record is ~100 bytes per file
_SHA256 = re.compile(r"[0-9a-f]{64}")
# HF writes a huge sentinel model_max_length when a tokenizer has no limit.
_NO_LIMIT = 10**6
# sentence-transformers' pooling flags -> kerasbert's pooling names.
_ST_POOLINGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "last",
}
_ST_UNSUPPORTED = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens")


@dataclass
class FolderSettings:
    """How a model folder says it is used; None where the folder says nothing.

    Attributes:
        do_lower_case: the tokenizer lower-cases (and strips accents).
        max_seq_len: the most tokens per text the model was used with.
        pooling: ``"cls"``, ``"mean"``, ``"max"`` or ``"last"`` (sentence-transformers).
        normalize: sentence vectors are L2-normalized (a Normalize module).
        model: the ``model=`` family the weights index gives (names alone cannot tell
            some families apart, e.g. NEZHA's and RoFormer's TF checkpoints).
        source: setting name -> the file (or hint) it was read from.
    """

    do_lower_case: bool = None
    max_seq_len: int = None
    pooling: str = None
    normalize: bool = None
    model: str = None
    source: dict = field(default_factory=dict)

    def set(self, name, value, source):
        setattr(self, name, value)
        self.source[name] = source


def _read_json(folder, name):
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path!r} is not valid JSON ({e}); fix or delete it.") from None
    if not isinstance(value, (dict, list)):
        raise ConfigError(f"{path!r} holds a {type(value).__name__}, not a JSON object.")
    return value


def _sentence_transformers(folder, settings):
    modules = _read_json(folder, "modules.json")
    if modules is None:
        return
    if not isinstance(modules, list):
        raise ConfigError(f"{os.path.join(folder, 'modules.json')!r} must hold a list.")
    for module in modules:
        kind = str(module.get("type", "")) if isinstance(module, dict) else ""
        path = os.path.normpath(str(module.get("path", ""))) if kind else ""
        if path.startswith("..") or os.path.isabs(path):
            raise ConfigError(f"modules.json names {path!r}, outside the model folder.")
        if kind.endswith(".Pooling"):
            name = os.path.join(path, "config.json")
            config = _read_json(folder, name) or {}
            modes = [m for key, m in _ST_POOLINGS.items() if config.get(key)]
            unsupported = [key for key in _ST_UNSUPPORTED if config.get(key)]
            if unsupported or len(modes) != 1:
                raise ConfigError(
                    f"{os.path.join(folder, name)!r} asks for pooling {unsupported or modes}; "
                    "kerasbert pools one of cls, mean, max, last: pass pooling= to choose."
                )
            settings.set("pooling", modes[0], name)
        elif kind.endswith(".Normalize"):
            settings.set("normalize", True, "modules.json")
        elif kind.endswith(".Dense"):
            raise ConfigError(
                f"{os.path.join(folder, 'modules.json')!r} has a Dense module after the "
                "pooling, which kerasbert does not apply; its vectors would differ from "
                "sentence-transformers'. Encode with sentence-transformers, or pass pooling= "
                "to take the encoder's pooled vectors as they are."
            )
    if settings.pooling is not None and settings.normalize is None:
        settings.set("normalize", False, "modules.json")
    st_config = _read_json(folder, "sentence_bert_config.json") or {}
    length = st_config.get("max_seq_length")
    if isinstance(length, int) and not isinstance(length, bool) and length > 0:
        settings.set("max_seq_len", length, "sentence_bert_config.json")
    if st_config.get("do_lower_case") is True:  # lower-cases the text before the tokenizer
        settings.set("do_lower_case", True, "sentence_bert_config.json")


def read_settings(folder, entry=None):
    """The :class:`FolderSettings` of a model folder (and of its index entry, if any).

    Args:
        folder: the model folder.
        entry: the folder's ``weights_index.yaml`` entry, when it came from the index.

    Raises:
        ConfigError: a settings file that is not valid JSON, or asks for something
            kerasbert cannot do faithfully (a Dense module, an unknown pooling).
    """
    folder = os.fspath(folder)
    settings = FolderSettings()
    name = os.path.basename(os.path.normpath(folder)).lower()
    # Weakest first: later sources overwrite.
    if re.search(r"(^|[_-])uncased([_-]|$)", name):
        settings.set("do_lower_case", True, f"the folder name {name!r}")
    elif re.search(r"(^|[_-])cased([_-]|$)", name):
        settings.set("do_lower_case", False, f"the folder name {name!r}")
    if entry is not None:
        for key in ("do_lower_case", "pooling", "normalize", "max_seq_len"):
            if entry.get(key) is not None:
                settings.set(key, entry[key], "the weights index")
        if entry.get("family"):
            settings.set("model", entry["family"], "the weights index")
    tokenizer = _read_json(folder, "tokenizer_config.json") or {}
    if isinstance(tokenizer.get("do_lower_case"), bool):
        settings.set("do_lower_case", tokenizer["do_lower_case"], "tokenizer_config.json")
    limit = tokenizer.get("model_max_length")
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and 0 < limit < _NO_LIMIT:
        settings.set("max_seq_len", int(limit), "tokenizer_config.json")
    _sentence_transformers(folder, settings)
    return settings


def read_record(folder):
    """The ``kerasbert.json`` record in ``folder`` (``{"model", "build_kwargs"}``), or None.

    Raises:
        ConfigError: a record that is not valid.
    """
    path = os.path.join(os.fspath(folder), RECORD)
    if not os.path.isfile(path):
        return None
    record = _read_json(folder, RECORD)
    if not isinstance(record, dict) or not isinstance(record.get("build_kwargs", {}), dict):
        raise ConfigError(
            f"{path!r} is not a valid kerasbert record; it should hold "
            '{"model": ..., "build_kwargs": {...}}. Delete it and pass the head options '
            "(with_pool / with_nsp / with_mlm) yourself."
        )
    return record


def choose(name, given, settings, default):
    """The value of a setting: ``given`` when not None (warning when the folder disagrees),
    else the folder's, else ``default``.

    Example:

    >>> choose("pooling", None, FolderSettings(pooling="cls", source={"pooling": "x"}), "mean")
    'cls'
    """
    found = getattr(settings, name) if settings is not None else None
    if given is None:
        return default if found is None else found
    if found is not None and found != given:
        warnings.warn(
            f"{name}={given!r} was asked for, but {settings.source[name]} says {found!r}; "
            f"using {given!r}. Vectors will differ from the ones the model was trained with.",
            stacklevel=3,
        )
    return given


def find_file(folder, names):
    """The first of ``names`` that is a file in ``folder``, or None."""
    for name in names:
        path = os.path.join(os.fspath(folder), name)
        if os.path.isfile(path):
            return path
    return None


def find_vocabulary(folder):
    """A model folder's vocabulary file, or None: ``vocab.txt`` (WordPiece), else
    ``vocab.json`` with ``merges.txt`` beside it (byte-level BPE, GPT-2), else
    ``spiece.model`` or the folder's only other ``*.model`` (SentencePiece: T5, mT5,
    ALBERT's original releases name it e.g. ``30k-clean.model``).

    Example:

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "vocab.json").write_text("{}"), (folder / "merges.txt").write_text("")
    >>> pathlib.Path(find_vocabulary(folder)).name
    'vocab.json'
    """
    found = find_file(folder, VOCAB_NAMES)
    if found is None and os.path.isfile(os.path.join(os.fspath(folder), "merges.txt")):
        found = find_file(folder, ("vocab.json",))
    if found is None:
        found = find_file(folder, ("spiece.model",))
    if found is None:
        models = sorted(glob.glob(os.path.join(glob.escape(os.fspath(folder)), "*.model")))
        found = models[0] if len(models) == 1 and os.path.isfile(models[0]) else None
    return found


def _sha256(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_fetch_record(folder, name):
    """Record the size and SHA-256 of every regular file in ``folder`` (its subfolders too;
    links are not followed) in ``folder``'s :data:`FETCH_RECORD`.

    Args:
        folder: a model folder whose files are all in place.
        name: the model's index name (for messages).

    Returns:
        The record written: ``{"model": name, "files": {relative path: {"size", "sha256"}}}``.

    Example:

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "vocab.txt").write_text("[PAD]\\n")
    >>> write_fetch_record(folder, "tiny")["files"]["vocab.txt"]["size"]
    6
    >>> check_fetch_record(folder, read_fetch_record(folder))
    []
    """
    folder = os.fspath(folder)
    files = {}
    for parent, subfolders, names in os.walk(folder):
        subfolders.sort()
        for file in sorted(names):
            path = os.path.join(parent, file)
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            if relative == FETCH_RECORD or os.path.islink(path) or not os.path.isfile(path):
                continue
            files[relative] = {"size": os.path.getsize(path), "sha256": _sha256(path)}
    record = {"model": name, "files": files}
    with open(os.path.join(folder, FETCH_RECORD), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    return record


def read_fetch_record(folder):
    """The fetch record of a model folder, or None when it has none (no
    :data:`FETCH_RECORD`, or one an older version or a person wrote without file details).

    Raises:
        ConfigError: a record that is not valid.
    """
    path = os.path.join(os.fspath(folder), FETCH_RECORD)
    if not os.path.isfile(path):
        return None

    def invalid(why):
        return ConfigError(
            f"{path!r} is not a valid kerasbert fetch record ({why}); it was changed or "
            "damaged after kerasbert fetched the model: delete the folder and fetch the model "
            "again (kerasbert download NAME)."
        )

    try:
        if os.path.getsize(path) > _RECORD_LIMIT:
            raise invalid(f"over {_RECORD_LIMIT} bytes")
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise invalid(e) from None
    if not text.lstrip().startswith("{"):
        return None  # "ok" (older versions) or empty (put together by hand)
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise invalid(f"not JSON: {e}") from None
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict):
        raise invalid("no 'files' object")
    for name, info in files.items():
        parts = name.split("/")
        if not name or os.path.isabs(name) or ".." in parts or "\x00" in name:
            raise invalid(f"the file name {name!r} is not a path inside the folder")
        size = info.get("size") if isinstance(info, dict) else None
        digest = info.get("sha256") if isinstance(info, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise invalid(f"{name!r} has no valid size")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise invalid(f"{name!r} has no valid sha256")
    return record


def check_fetch_record(folder, record, full=False):
    """What differs between a model folder and its fetch record: one line per file that is
    missing or has another size (and, with ``full``, another SHA-256); empty if nothing.

    Args:
        folder: the model folder.
        record: its record (:func:`read_fetch_record`).
        full: also compare every file's SHA-256 (reads every file; sizes alone cost
            nothing).
    """
    folder = os.fspath(folder)
    problems = []
    for name, info in sorted(record["files"].items()):
        path = os.path.join(folder, *name.split("/"))
        if not os.path.isfile(path):
            problems.append(
                f"{path!r}, which kerasbert placed there when it fetched the model, is missing"
            )
            continue
        size = os.path.getsize(path)
        if size != info["size"]:
            problems.append(
                f"{path!r} has {size} bytes but had {info['size']} when kerasbert fetched "
                "it: the file was truncated or changed"
            )
        elif full and _sha256(path) != info["sha256"]:
            problems.append(
                f"{path!r} has another SHA-256 than when kerasbert fetched it: the file was "
                "changed or damaged"
            )
    return problems
