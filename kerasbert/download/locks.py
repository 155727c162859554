"""Inter-process file locks: :func:`file_lock` keeps two processes (or threads) from fetching
the same file at once, with ``fcntl.flock`` (``msvcrt.locking`` on Windows)."""

import contextlib
import os
import time

from kerasbert.download.errors import DownloadError


@contextlib.contextmanager
def file_lock(path, timeout=600.0):
    """Hold an exclusive inter-process lock on ``path + ".lock"`` for the ``with`` block.

    Uses ``fcntl.flock`` (``msvcrt.locking`` on Windows), polling every 50 ms. The lock is
    tied to its own open file, so two threads of one process exclude each other too. The
    ``.lock`` file is left in place (deleting it would race with a waiting process).

    Args:
        path: the file (or folder) being protected; its parent folder is created.
        timeout: seconds to wait for the lock (None waits forever).

    Yields:
        The lock file's path.

    Raises:
        DownloadError: the lock was not free within ``timeout`` seconds.

    Example:

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "model.bin")
    >>> with file_lock(target) as lock:
    ...     os.path.basename(lock)
    'model.bin.lock'
    """
    lock_path = os.fspath(path) + ".lock"
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not _try_lock(fd):
            if deadline is not None and time.monotonic() >= deadline:
                raise DownloadError(
                    f"Another process holds the lock {lock_path!r} (waited {timeout} s); it is "
                    "probably downloading the same file. Wait for it to finish, or delete the "
                    "lock file if no such process is running."
                )
            time.sleep(0.05)
        try:
            yield lock_path
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


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
