"""Safe extraction of zip and tar archives: :func:`extract` refuses members that would land
outside the target folder (absolute paths, ``..``, links pointing out, devices) before and while
it writes them. Standard library only."""

import contextlib
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib

from kerasbert.download.errors import DownloadError

_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # Python versions with PEP 706


def extract(archive, target):
    """Extract a zip or tar archive (plain, gzip, bzip2, xz) into the folder ``target``.

    The format is read from the content, not the name. Every member is checked before anything
    is written: an absolute path, a path escaping ``target`` (``../x``), a symlink or hardlink
    pointing outside it, or a device/fifo member refuses the whole archive. Links are checked
    again against the files on disk as they are created.

    Args:
        archive: the archive file.
        target: the folder to extract into (created if missing).

    Returns:
        The extracted paths (``target`` joined with each member's name), in archive order.

    Example:

    >>> import os, tempfile, zipfile
    >>> folder = tempfile.mkdtemp()
    >>> with zipfile.ZipFile(os.path.join(folder, "model.zip"), "w") as z:
    ...     z.writestr("model/vocab.txt", "[PAD]\\n")
    >>> paths = extract(os.path.join(folder, "model.zip"), os.path.join(folder, "out"))
    >>> [os.path.relpath(p, folder) for p in paths]
    ['out/model/vocab.txt']
    """
    archive = os.fspath(archive)
    target = os.fspath(target)
    if not os.path.isfile(archive):
        raise DownloadError(f"Archive {archive!r} does not exist or is not a file.")
    os.makedirs(target, exist_ok=True)
    root = os.path.realpath(target)
    try:
        if tarfile.is_tarfile(archive):
            return _extract_tar(archive, target, root)
        if zipfile.is_zipfile(archive):
            return _extract_zip(archive, target, root)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise DownloadError(
            f"Archive {archive!r} is corrupt or truncated ({error}); delete it and download "
            "it again."
        ) from error
    raise DownloadError(
        f"{archive!r} is neither a zip nor a tar archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2); "
        "it may be an error page saved by mistake. Delete it and download it again."
    )


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


def _extract_tar(archive, target, root):
    with tarfile.open(archive) as tar:
        todo = []
        for member in tar.getmembers():
            relative = _relative(member.name, archive)
            if relative == ".":
                continue  # the archive's root folder: target itself
            if member.issym():
                _check_link(member.name, member.linkname, archive, os.path.dirname(relative))
            elif member.islnk():
                _check_link(member.name, member.linkname, archive, "")
            elif not (member.isfile() or member.isdir()):
                raise DownloadError(
                    f"Archive {archive!r} has a special file {member.name!r} (device or fifo); "
                    "refusing to extract it. Model archives hold only files and folders."
                )
            todo.append((member, relative))
        # PEP 706's "data" filter (Python 3.10.12+/3.11.4+) as a second line of defence.
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        paths, links = [], []
        for member, relative in todo:
            path = os.path.join(root, relative)
            _check_on_disk(root, path, archive, member.name)
            if member.issym():
                link = os.path.join(os.path.dirname(path), member.linkname)
                _check_on_disk(root, link, archive, member.name)
                links.append((path, member.name))
            elif member.islnk():
                _check_on_disk(root, os.path.join(root, member.linkname), archive, member.name)
            try:
                tar.extract(member, root, **options)
            except _FILTER_ERROR as error:  # pragma: no cover (the checks above come first)
                raise DownloadError(
                    f"Archive {archive!r}: refusing member {member.name!r} ({error}). "
                    "The archive is unsafe."
                ) from error
            paths.append(os.path.normpath(os.path.join(target, relative)))
    # A link that looked safe until a later link changed what it resolves to (a -> b/..,
    # then b -> .) is caught here, once every link exists.
    escaped = [name for path, name in links if not _inside(root, os.path.realpath(path))]
    if escaped:
        for path, _ in links:
            with contextlib.suppress(OSError):
                os.remove(path)
        raise DownloadError(
            f"Archive {archive!r}: links {escaped} resolve outside the target folder {root!r} "
            "through other links; removed the archive's links. The archive is unsafe."
        )
    return paths


def _extract_zip(archive, target, root):
    with zipfile.ZipFile(archive) as zf:
        todo = []
        for info in zf.infolist():
            relative = _relative(info.filename, archive)
            if relative == ".":
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                link_target = zf.read(info).decode("utf-8", "replace")
                _check_link(info.filename, link_target, archive, os.path.dirname(relative))
            todo.append((info, relative))
        paths = []
        for info, relative in todo:
            path = os.path.join(root, relative)
            _check_on_disk(root, path, archive, info.filename)
            if info.is_dir():
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with zf.open(info) as source, open(path, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
            paths.append(os.path.normpath(os.path.join(target, relative)))
    return paths
