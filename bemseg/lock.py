"""One bemseg process writes an output folder at a time.

`exclusive(path)` first checks that the folder can be written (`bemseg.atomic.check_writable`),
then holds an advisory lock on the hidden sibling `.NAME.lock` while the command writes the
folder. A second command for the same folder is refused with one line naming the process that
holds it; inside a workflow job (`waiting_for_others`) it waits instead, because the holder can
only be a job of a killed workflow run that is still finishing what the rerun needs. The kernel
releases a lock when its process dies, however it dies, so a lock is never stale; the lock file
is removed on release. While holding a folder, a command may remove the temporaries a killed
writer left there (`bemseg.atomic.discard_temporaries`): no live process is writing them. Where
the file system cannot lock (some network mounts), folders are written unlocked.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from bemseg.atomic import check_writable
from bemseg.errors import OutputError

log = logging.getLogger("bemseg.lock")
_WAIT = contextvars.ContextVar("bemseg_lock_wait", default=False)
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def flock(fd: int, *, shared: bool = False, blocking: bool = True) -> bool:
    """Take a shared or exclusive flock on `fd`; False when another process holds a conflicting one.

    A file system without locks counts as success: there is nothing to coordinate with.
    """
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, mode)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
    return True


@contextlib.contextmanager
def waiting_for_others() -> Iterator[None]:
    """Within this block `exclusive` waits for another process's lock instead of refusing (workflow jobs)."""
    token = _WAIT.set(True)
    try:
        yield
    finally:
        _WAIT.reset(token)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold output folder `path` for this process (see the module docstring)."""
    path = Path(path)
    check_writable(path)
    absolute = Path(os.path.abspath(path))
    absolute.parent.mkdir(parents=True, exist_ok=True)
    lock_path = absolute.parent / f".{absolute.name}.lock"
    fd = _acquire(lock_path, path)
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)  # before unlocking: a waiter then sees the file is gone and retries
        os.close(fd)


def _acquire(lock_path: Path, path: Path) -> int:
    """An fd holding the exclusive lock on `lock_path` (the file that is still there, not one just removed)."""
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not flock(fd, blocking=False):
                holder = _holder(fd)
                if not _WAIT.get():
                    raise OutputError(f"{path}: {holder} is writing it; wait for it to finish (or stop it), then "
                                      "run the same command again")
                log.warning("waiting for %s, which is writing %s", holder, path)
                flock(fd)
            if _is_current(fd, lock_path):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _is_current(fd: int, lock_path: Path) -> bool:
    """Whether `fd` is still the file at `lock_path` (its holder removes it on release)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(lock_path))
    except FileNotFoundError:
        return False


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it: 'another bemseg process (pid N on HOST)'."""
    fields = os.pread(fd, 200, 0).decode(errors="replace").split()
    return f"another bemseg process (pid {fields[0]} on {fields[1]})" if len(fields) == 2 else \
        "another bemseg process"
