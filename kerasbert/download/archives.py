"""Safe extraction of zip and tar archives: :func:`extract` refuses members that would land
outside the target folder (absolute paths, ``..``, links pointing out, devices), archives
larger than a size limit or with more members than a count limit, and layouts that make one
name both a file and a folder, before and while it writes them. Standard library only."""

import contextlib
import gzip
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib

from kerasbert.download.errors import DownloadError

DEFAULT_MAX_TOTAL_SIZE = 20 * 2**30  # bytes: the largest BERT releases are a few GiB
DEFAULT_MAX_MEMBERS = 100_000

_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # Python versions with PEP 706
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_MAX_LINK = 4096  # bytes of a zip symlink member's target
# What a damaged archive raises while it is read (bz2 raises plain OSError: see _copy).
_CORRUPT = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    gzip.BadGzipFile,
    UnicodeDecodeError,
)


def extract(
    archive, target, max_total_size=DEFAULT_MAX_TOTAL_SIZE, max_members=DEFAULT_MAX_MEMBERS
):
    """Extract a zip or tar archive (plain, gzip, bzip2, xz) into the folder ``target``.

    The format is read from the content, not the name. Every member is checked before anything
    is written: an absolute path, a path escaping ``target`` (``../x``), a symlink or hardlink
    pointing outside it, a device/fifo member, an encrypted or unknown-compression zip member,
    a name that is both a file and a folder (``model/x`` and ``model/x/...``), more than
    ``max_members`` members, or declared sizes adding up to more than ``max_total_size``
    refuses the whole archive. While writing, each file is stopped at the size its header
    declared and the running total at ``max_total_size`` (headers can lie); links are checked
    again against the files on disk as they are created.

    On any refusal or error, the files and folders this call created are removed again (files
    that already existed in ``target`` and were overwritten are not restored), and a
    :class:`DownloadError` says what is wrong; a damaged archive never raises anything else.

    What is not caught: zipfile reads a zip's whole central directory (its member list) into
    memory before the count can be checked, and listing a compressed tar decompresses it
    once (time, not disk); both are bounded by the archive's own size. Two names that
    differ only in case are one file on a case-insensitive file system; writing the second
    then fails with a DownloadError instead of being refused up front.

    Args:
        archive: the archive file (never modified).
        target: the folder to extract into (created if missing).
        max_total_size: the most bytes all files together may hold (default 20 GiB).
        max_members: the most entries (files, folders, links) the archive may have
            (default 100,000).

    Returns:
        The extracted paths (``target`` joined with each member's name), in archive order.

    Raises:
        DownloadError: the archive is unsafe, over a limit, corrupt, not an archive, or
            cannot be written to ``target``.

    Example:

    >>> import os, tempfile, zipfile
    >>> folder = tempfile.mkdtemp()
    >>> with zipfile.ZipFile(os.path.join(folder, "model.zip"), "w") as z:
    ...     z.writestr("model/vocab.txt", "[PAD]\\n")
    >>> paths = extract(os.path.join(folder, "model.zip"), os.path.join(folder, "out"))
    >>> [os.path.relpath(p, folder) for p in paths]
    ['out/model/vocab.txt']
    >>> extract(os.path.join(folder, "model.zip"), os.path.join(folder, "out"),
    ...         max_total_size=3)
    Traceback (most recent call last):
    ...
    kerasbert.download.errors.DownloadError: Archive ... more than max_total_size=3...
    """
    archive = os.fspath(archive)
    target = os.fspath(target)
    checks = (("max_total_size", max_total_size, 0), ("max_members", max_members, 1))
    for name, value, least in checks:
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise DownloadError(
                f"extract({name}={value!r}): must be an integer of at least {least}."
            )
    if not os.path.isfile(archive):
        raise DownloadError(f"Archive {archive!r} does not exist or is not a file.")
    created = _Created(target)
    try:
        try:
            os.makedirs(target, exist_ok=True)
        except OSError as error:
            raise DownloadError(
                f"Cannot create the folder {target!r} to extract {archive!r} into: "
                f"{error.strerror or error}."
            ) from error
        root = os.path.realpath(target)
        limits = (max_total_size, max_members)
        if tarfile.is_tarfile(archive):
            return _extract_tar(archive, target, root, limits, created)
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, target, root, limits, created)
    except DownloadError:
        created.remove()
        raise
    except (*_CORRUPT, ValueError) as error:
        created.remove()
        raise DownloadError(
            f"Archive {archive!r} is corrupt or truncated ({type(error).__name__}: {error}); "
            "delete it and download it again."
        ) from error
    except OSError as error:
        created.remove()
        raise DownloadError(
            f"Cannot extract {archive!r} into {target!r}: {error}. The archive may be corrupt "
            "(delete it and download it again), or the folder not writable or full."
        ) from error
    raise DownloadError(
        f"{archive!r} is neither a zip nor a tar archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2); "
        "it may be an error page saved by mistake. Delete it and download it again."
    )


class _Created:
    """The files and folders one extract() call created, to remove them if it fails."""

    def __init__(self, target):
        self.root = os.path.abspath(target)
        self.paths = [] if os.path.lexists(target) else [self.root]

    def before(self, path):
        """Record ``path`` and its missing parent folders (call before creating it)."""
        missing, parent = [], os.path.dirname(path)
        while len(parent) > len(self.root) and not os.path.lexists(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        self.paths.extend(reversed(missing))
        if not os.path.lexists(path):
            self.paths.append(path)

    def remove(self):
        for path in reversed(self.paths):
            with contextlib.suppress(OSError):
                if os.path.isdir(path) and not os.path.islink(path):
                    os.rmdir(path)  # only if empty: never a folder that held files before
                else:
                    os.remove(path)


class _Budget:
    """The bytes written so far against ``max_total_size``."""

    def __init__(self, archive, max_total_size):
        self.archive, self.limit, self.used = archive, max_total_size, 0

    def spend(self, count, name):
        self.used += count
        if self.used > self.limit:
            raise DownloadError(
                f"Archive {self.archive!r} holds more than max_total_size={self.limit} bytes "
                f"(found while writing {name!r}: the headers understate the sizes); refusing "
                "it, the archive is corrupt or hostile. Pass a larger max_total_size= only if "
                "you trust it."
            )


def _copy(source, sink, declared, name, budget, chunk=1 << 20):
    """Copy one member's data, stopping at its ``declared`` size and at the budget.

    Args:
        source: the member's data (a file object from zipfile or tarfile).
        sink: the file being written.
        declared: the size the member's header gives.
        name: the member's name (for messages).
        budget: the archive's :class:`_Budget`.
        chunk: bytes read at a time.

    Returns:
        The bytes written (always ``declared``).
    """
    written = 0
    while True:
        try:
            block = source.read(min(chunk, declared - written + 1))
        except (*_CORRUPT, OSError) as error:  # bz2 reports bad data as a plain OSError
            raise DownloadError(
                f"Archive {budget.archive!r}: member {name!r} is corrupt or truncated "
                f"({type(error).__name__}: {error}); delete the archive and download it again."
            ) from error
        if not block:
            break
        written += len(block)
        if written > declared:
            raise DownloadError(
                f"Archive {budget.archive!r}: member {name!r} holds more than the {declared} "
                "bytes its header declares; refusing it, the archive is corrupt or hostile."
            )
        budget.spend(len(block), name)
        try:
            sink.write(block)
        except OSError as error:
            raise DownloadError(
                f"Cannot write {name!r} from {budget.archive!r}: {error.strerror or error} "
                "(is the disk full?)."
            ) from error
    if written < declared:
        raise DownloadError(
            f"Archive {budget.archive!r}: member {name!r} holds {written} bytes but its header "
            f"declares {declared}; the archive is truncated. Delete it and download it again."
        )
    return written


def _relative(name, archive, what="member"):
    """A member name as a clean relative path; refuses absolute names and escapes."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
        raise DownloadError(
            f"Archive {archive!r} has an absolute {what} path {name!r}; refusing to extract "
            "it (it would write outside the target folder). The archive is unsafe."
        )
    relative = os.path.normpath(clean)
    if relative == ".." or relative.startswith("../"):
        raise DownloadError(
            f"Archive {archive!r} has a {what} {name!r} that escapes the target folder; "
            "refusing to extract it. The archive is unsafe."
        )
    return relative


def _check_link(link_name, link_target, archive, relative_to):
    """Refuse a link whose target is absolute or lies outside the archive's root."""
    if link_target.replace("\\", "/").startswith("/") or re.match(r"^[A-Za-z]:", link_target):
        raise DownloadError(
            f"Archive {archive!r}: link {link_name!r} points to the absolute path "
            f"{link_target!r}; refusing to extract it. The archive is unsafe."
        )
    _relative(os.path.join(relative_to, link_target), archive, f"link {link_name!r} to")


def _inside(root, path):
    return os.path.commonpath([root, path]) == root


def _check_on_disk(root, path, archive, name):
    if not _inside(root, os.path.realpath(path)):
        raise DownloadError(
            f"Archive {archive!r}: {name!r} resolves outside the target folder {root!r} "
            "(through a link); refusing to extract it. The archive is unsafe."
        )


def _check_limits(archive, count, declared, limits):
    max_total_size, max_members = limits
    if count > max_members:
        raise DownloadError(
            f"Archive {archive!r} has more than max_members={max_members} members; refusing "
            "it (model archives hold a handful of files). Pass a larger max_members= only if "
            "you trust it."
        )
    if declared > max_total_size:
        raise DownloadError(
            f"Archive {archive!r} declares {declared} bytes of files, more than "
            f"max_total_size={max_total_size}; refusing it before writing anything. Pass a "
            "larger max_total_size= only if you trust it."
        )


def _check_layout(archive, entries):
    """Refuse two members that make one path both a file and a folder.

    ``entries``: ``(relative path, "file" or "dir", member name)`` in archive order; links
    count as files, and every parent of a member is a folder.
    """
    seen = {}  # path -> (kind, the member that made it so)
    for relative, kind, name in entries:
        parts = relative.replace(os.sep, "/").split("/")
        for i in range(1, len(parts) + 1):
            path, here = "/".join(parts[:i]), "dir" if i < len(parts) else kind
            other = seen.setdefault(path, (here, name))
            if other[0] != here:
                raise DownloadError(
                    f"Archive {archive!r} has members {other[1]!r} and {name!r}, which make "
                    f"{path!r} both a file and a folder; refusing to extract it (the archive "
                    "is broken or unsafe)."
                )


def _open_for_writing(path):
    """A new file at ``path``, replacing a link there rather than writing through it."""
    if os.path.islink(path):
        os.remove(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o644), "wb")


def _extract_tar(archive, target, root, limits, created):
    with tarfile.open(archive) as tar:
        members, sizes = [], {}
        for member in tar:  # lazily, so that the count is checked while listing
            members.append(member)
            _check_limits(archive, len(members), 0, limits)
        todo, declared = [], 0
        for member in members:
            relative = _relative(member.name, archive)
            if relative == ".":
                continue  # the archive's root folder: target itself
            if member.issym():
                _check_link(member.name, member.linkname, archive, os.path.dirname(relative))
            elif member.islnk():
                _check_link(member.name, member.linkname, archive, "")
                declared += sizes.get(os.path.normpath(member.linkname), 0)  # may be copied
            elif member.isfile():
                declared += member.size
                sizes[relative] = member.size
            elif not member.isdir():
                raise DownloadError(
                    f"Archive {archive!r} has a special file {member.name!r} (device or fifo); "
                    "refusing to extract it. Model archives hold only files and folders."
                )
            todo.append((member, relative))
        _check_limits(archive, len(members), declared, limits)
        _check_layout(archive, [(r, "dir" if m.isdir() else "file", m.name) for m, r in todo])
        # PEP 706's "data" filter (Python 3.10.12+/3.11.4+) as a second line of defence.
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        budget = _Budget(archive, limits[0])
        paths, links = [], []
        for member, relative in todo:
            path = os.path.join(root, relative)
            _check_on_disk(root, path, archive, member.name)
            created.before(path)
            if member.isdir():
                os.makedirs(path, exist_ok=True)
            elif member.isfile():
                os.makedirs(os.path.dirname(path), exist_ok=True)
                source = tar.extractfile(member)
                with source, _open_for_writing(path) as sink:
                    _copy(source, sink, member.size, member.name, budget)
            else:
                if member.issym():
                    link = os.path.join(os.path.dirname(path), member.linkname)
                    _check_on_disk(root, link, archive, member.name)
                    links.append((path, member.name))
                else:
                    _check_on_disk(root, os.path.join(root, member.linkname), archive, member.name)
                try:
                    tar.extract(member, root, **options)
                except _FILTER_ERROR as error:  # pragma: no cover (the checks above come first)
                    raise DownloadError(
                        f"Archive {archive!r}: refusing member {member.name!r} ({error}). "
                        "The archive is unsafe."
                    ) from error
                if member.islnk() and os.path.isfile(path):
                    budget.spend(0 if os.stat(path).st_nlink > 1 else os.path.getsize(path),
                                 member.name)  # fmt: skip
            paths.append(os.path.normpath(os.path.join(target, relative)))
    # A link that looked safe until a later link changed what it resolves to (a -> b/..,
    # then b -> .) is caught here, once every link exists.
    escaped = [name for path, name in links if not _inside(root, os.path.realpath(path))]
    if escaped:
        raise DownloadError(
            f"Archive {archive!r}: links {escaped} resolve outside the target folder {root!r} "
            "through other links; removed what was extracted. The archive is unsafe."
        )
    return paths


def _extract_zip(archive, target, root, limits, created):
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        _check_limits(archive, len(infos), 0, limits)
        todo, declared = [], 0
        for info in infos:
            relative = _relative(info.filename, archive)
            if relative == ".":
                continue
            if info.flag_bits & 0x1:
                raise DownloadError(
                    f"Archive {archive!r}: member {info.filename!r} is encrypted; kerasbert "
                    "cannot extract password-protected archives. Extract it yourself."
                )
            if info.compress_type not in _ZIP_METHODS:
                raise DownloadError(
                    f"Archive {archive!r}: member {info.filename!r} uses compression method "
                    f"{info.compress_type}, which Python's zipfile cannot read (it reads stored, "
                    "deflate, bzip2 and lzma). Extract it with another tool."
                )
            if stat.S_ISLNK(info.external_attr >> 16):
                if info.file_size > _MAX_LINK:
                    raise DownloadError(
                        f"Archive {archive!r}: link {info.filename!r} has a {info.file_size}-byte "
                        "target; refusing it. The archive is corrupt or hostile."
                    )
                link_target = zf.read(info).decode("utf-8", "replace")
                _check_link(info.filename, link_target, archive, os.path.dirname(relative))
            if not info.is_dir():
                declared += info.file_size
            todo.append((info, relative))
        _check_limits(archive, len(infos), declared, limits)
        _check_layout(archive, [(r, "dir" if i.is_dir() else "file", i.filename) for i, r in todo])
        budget = _Budget(archive, limits[0])
        paths = []
        for info, relative in todo:
            path = os.path.join(root, relative)
            _check_on_disk(root, path, archive, info.filename)
            created.before(path)
            if info.is_dir():
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with zf.open(info) as source, _open_for_writing(path) as sink:
                    _copy(source, sink, info.file_size, info.filename, budget)
            paths.append(os.path.normpath(os.path.join(target, relative)))
    return paths
