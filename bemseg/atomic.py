"""Write results so that a crash never leaves something that looks complete.

Files are written to a temporary sibling and renamed into place (rename is atomic on POSIX);
directories are assembled under a temporary sibling and renamed as a whole. Readers therefore see
either the old state or the complete new one. Temporary siblings are hidden and end in
`.bemseg-tmp` (`.bemseg-old` for a directory on its way out), so a later run that holds the
folder (`bemseg.lock`) can remove the ones a killed process left, and nothing else. A disk that
is full or read-only is one OutputError line naming the file, as is an output folder that cannot
be written at all, which commands check before doing any work.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bemseg.errors import DataError, OutputError

_CHUNK = 1 << 20
TEMPORARY = ".bemseg-tmp"
REPLACED = ".bemseg-old"
#: Write failures that are the storage's state, not a bug: errno -> (what happened, what to do).
_STORAGE = {
    errno.ENOSPC: ("the disk is full", "free space on it"),
    errno.EDQUOT: ("the disk quota is exhausted", "free space on it"),
    errno.EROFS: ("the file system is read-only", "write the output to a writable disk"),
}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    """A new empty file next to `path`, with the permissions a plain `open(path, "w")` would give."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + TEMPORARY, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def storage_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a full or read-only disk met while writing `path` into one OutputError line naming it."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _STORAGE:
            raise
        what, remedy = _STORAGE[exc.errno]
        raise OutputError(f"{path}: cannot be written, {what} ({exc.strerror}); {remedy}, then run the same "
                          "command again (what was finished is kept)") from exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`, else delete it."""
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_sibling(path, path.suffix)
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any, indent: int | None = 2) -> str:
    """`obj` as JSON with NaN written as null, so any reader can parse it."""
    return json.dumps(_nan_to_none(obj), indent=indent, sort_keys=False)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as indented JSON atomically; NaN is written as null so any reader can parse it."""
    write_text(path, json_text(obj) + "\n")


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces `path` as a whole when the block succeeds.

    An existing `path` is only removed once the new content is complete; on failure the temporary
    directory is deleted and `path` is left as it was.
    """
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMPORARY, dir=path.parent))
        tmp.chmod(0o777 & ~_umask())
        try:
            yield tmp
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=REPLACED, dir=path.parent))
                os.replace(path, old / path.name)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def discard_temporaries(path: str | os.PathLike[str]) -> None:
    """Remove the temporaries of `path` that a killed writer left beside it.

    Only call this while holding `path` (`bemseg.lock.exclusive`): then no live process writes them.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}(\.[^.]*)?({TEMPORARY}|{REPLACED})")
    for entry in path.parent.iterdir():
        if pattern.fullmatch(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike[str]) -> None:
    """Fail before any work when folder `path` cannot be created or written into (one OutputError line).

    Both `path` (when it exists) and its parent are tried, because results are written inside the
    folder and temporaries and locks beside it. Nothing is left behind.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, not a folder; give the path of a folder (new or existing) "
                          "for the output")
    for folder in dict.fromkeys(_nearest_existing(p) for p in (path, path.parent)):
        if not folder.is_dir():
            raise OutputError(f"{path}: cannot be created because {folder} is a file, not a folder; "
                              "choose another output path")
        try:
            fd, probe = tempfile.mkstemp(prefix=".bemseg-probe.", suffix=TEMPORARY, dir=folder)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write into {folder} ({exc.strerror}); choose a writable output "
                              "folder or change the folder's permissions") from exc
        os.close(fd)
        os.unlink(probe)


def _nearest_existing(path: Path) -> Path:
    """`path`, or its closest ancestor that exists."""
    return next((p for p in (path, *path.parents) if p.exists()), Path.cwd())


def refuse_foreign(folder: str | os.PathLike[str], owned: Iterable[str], command: str) -> None:
    """Refuse to replace `folder` as a whole while it holds entries `command` does not write.

    `owned` are fnmatch patterns of the relative paths the command writes; anything else is the
    user's, and the suite never deletes what it did not write.
    """
    folder, owned = Path(folder), list(owned)
    if not folder.is_dir():
        return
    foreign = [rel for rel in (p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")))
               if not any(fnmatch.fnmatchcase(rel, pattern) for pattern in owned)]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise OutputError(f"{folder}: holds {', '.join(foreign[:3])}{more}, which {command} did not write; the "
                          "folder is replaced as a whole, so move those elsewhere or choose another folder")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json_or_none(path: str | os.PathLike[str], remedy: str = "delete it and run the same command again") -> Any:
    """The JSON content of `path`, or None when the file does not exist; a damaged file is one DataError line."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise DataError(f"{path}: damaged, cannot be read as JSON ({exc}); {remedy}") from exc
