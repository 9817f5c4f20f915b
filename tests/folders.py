"""Output folders a command cannot write: read-only, or on a nearly full disk.

Root ignores permissions, so as root these are small tmpfs mounts (read-only, or of a given size);
otherwise a read-only folder is made with chmod, and a full disk cannot be made (the test skips).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


@contextlib.contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """`path` as a folder nothing can be created in."""
    if os.geteuid() == 0:
        with _tmpfs(path, "ro,size=64k"):
            yield path
        return
    path.mkdir(parents=True)
    path.chmod(0o555)
    try:
        yield path
    finally:
        path.chmod(0o755)


@contextlib.contextmanager
def small_disk(path: Path, megabytes: int) -> Iterator[Path]:
    """`path` as an empty folder on a file system of `megabytes` MB (root only)."""
    if os.geteuid() != 0:
        pytest.skip("a small file system needs root (mount)")
    with _tmpfs(path, f"size={megabytes}m"):
        yield path
