"""Snakemake's locks left by a killed run: removed when no run of this workflow is alive in the folder.

Snakemake writes `.snakemake/locks/N.{input,output}.lock` when a run starts and deletes them when
it ends; `kill -9` or a power loss leaves them behind, and every later run stops with
LockException until `snakemake --unlock`. Snakemake cannot tell a dead run's locks from a live
one's, so the main process of every run of this workflow holds a shared flock on
`.snakemake/bemseg-alive` from the moment it parses the Snakefile (before Snakemake checks its
locks) until it exits; the kernel releases a flock when its process dies, however it dies. A new
run that can take that flock exclusively knows no run is alive here, so any lock files are stale:
it removes them, then holds the flock shared like the others. While another run is alive nothing
is touched, and Snakemake refuses a second run that would write the same files, as it always has.

Only main processes take part: job processes (`--mode subprocess`) and cluster job steps
(`--mode remote`) also parse the Snakefile, but never lock. A dry run or `--lint` holds the flock
shared for its few seconds too, which never harms a live run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from snakemake_interface_executor_plugins.settings import ExecMode

from bemseg.lock import flock

ALIVE = "bemseg-alive"
#: The alive-flock's descriptor, open for the life of the process (closing it would release the flock).
_HELD: list[int] = []


def release_stale_locks(exec_mode: ExecMode, folder: Path = Path(".snakemake")) -> list[Path]:
    """Remove the Snakemake locks of runs that are no longer alive; return the removed files."""
    if exec_mode != ExecMode.DEFAULT or _HELD:
        return []
    folder.mkdir(exist_ok=True)
    fd = os.open(folder / ALIVE, os.O_RDWR | os.O_CREAT, 0o644)
    removed = []
    if flock(fd, blocking=False):
        removed = sorted((folder / "locks").glob("*.lock"))
        for path in removed:
            path.unlink(missing_ok=True)
        if removed:
            print(f"bemseg: removed the locks of an interrupted run from {folder / 'locks'} (no snakemake run is "
                  "alive in this folder)", file=sys.stderr)
    flock(fd, shared=True)
    _HELD.append(fd)
    return removed
