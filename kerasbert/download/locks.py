"""Inter-process file locks: :func:`file_lock` keeps two processes (or threads) from fetching
the same file at once, with ``fcntl.flock`` (``msvcrt.locking`` on Windows)."""

import contextlib
import os
import time

from kerasbert.download.errors import DownloadError


@contextlib.contextmanager
def file_lock(path, timeout=600.0, on_wait=None, remove=False):
    """Hold an exclusive inter-process lock on ``path + ".lock"`` for the ``with`` block.

    Uses ``fcntl.flock`` (``msvcrt.locking`` on Windows), polling every 50 ms. The lock is
    tied to its own open file, so two threads of one process exclude each other too. After
    taking the lock, the holder checks that the file it locked is still the one at the
    lock's path (and starts over if not), which makes ``remove=True`` safe.

    Args:
        path: the file (or folder) being protected; its parent folder is created.
        timeout: seconds to wait for the lock (None waits forever).
        on_wait: called once, with the lock file's path, if the lock is busy (another
            holder has it) before this call gets it.
        remove: delete the lock file when releasing it. Safe only when every user of this
            lock path is this function (a holder of a deleted lock file is told apart by
            the check above); by default the ``.lock`` file is left in place.

    Yields:
        The lock file's path.

    Raises:
        DownloadError: the lock was not free within ``timeout`` seconds, or the lock file
            cannot be created.

    Example:

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "model.bin")
    >>> with file_lock(target) as lock:
    ...     os.path.basename(lock)
    'model.bin.lock'
    >>> with file_lock(target, remove=True):
    ...     pass
    >>> os.path.exists(target + ".lock")
    False
    """
    lock_path = os.fspath(path) + ".lock"
    deadline = None if timeout is None else time.monotonic() + timeout
    waited = False
    while True:
        fd = _open(lock_path)
        try:
            while not _try_lock(fd):
                if not waited:
                    waited = True
                    if on_wait is not None:
                        on_wait(lock_path)
                if deadline is not None and time.monotonic() >= deadline:
                    raise DownloadError(
                        f"Another process holds the lock {lock_path!r} (waited {timeout} s); "
                        "it is probably downloading the same file. Wait for it to finish, or "
                        "delete the lock file if no such process is running."
                    )
                time.sleep(0.05)
            if _still_there(fd, lock_path):
                break
            _unlock(fd)  # a holder removed that file on release: lock the new one
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield lock_path
    finally:
        try:
            if remove and os.name != "nt":  # Windows cannot delete an open file
                with contextlib.suppress(OSError):
                    os.remove(lock_path)
            _unlock(fd)
        finally:
            os.close(fd)


def _open(lock_path):
    try:
        os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
        return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise DownloadError(
            f"Cannot create the lock file {lock_path!r}: {error.strerror or error}. Check that "
            "its folder is a writable folder."
        ) from error


def _still_there(fd, lock_path):
    """Whether ``fd`` is (still) the file at ``lock_path``."""
    try:
        here, there = os.fstat(fd), os.stat(lock_path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _try_lock(fd):
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows)
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (BlockingIOError, PermissionError):
        return False


def _unlock(fd):
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows)
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)
