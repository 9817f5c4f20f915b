"""One GPU per training job on a machine with several: a lock file per GPU, held for the job's lifetime.

With `--resources gpu=N` Snakemake runs N training jobs at once but tells none of them which GPU
to use, so all would train on `cuda:0`. `gpu_slot(k)` takes k GPUs no other live job holds and
sets `CUDA_VISIBLE_DEVICES` to them before torch initialises CUDA. A GPU is held through an
exclusive `fcntl.flock` on `LOCK_DIR/gpu<ID>.lock`; the kernel drops it when the process ends,
however it ends, so a crashed job never keeps its GPU. When every GPU is taken (more jobs than
GPUs, or another workflow on the same machine) the job waits for one to come free.

Left alone: CPU-only jobs (k = 0), jobs that see no GPU, and jobs whose scheduler already gave
them exactly their GPUs (under SLURM, `CUDA_VISIBLE_DEVICES` lists the job's own GPUs).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from bemseg.errors import ConfigError

log = logging.getLogger("bemseg.gpu_slot")

#: Shared by every job on the machine (override with BEMSEG_GPU_LOCK_DIR, e.g. on a node-local disk).
LOCK_DIR = Path(os.environ.get("BEMSEG_GPU_LOCK_DIR", "/tmp/bemseg-gpu-locks"))


def machine_gpus() -> list[str]:
    """Indices of the GPUs `nvidia-smi` lists (none without a driver); CUDA is not initialised."""
    try:
        listing = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listing.splitlines() if line.strip()]


def candidates(environ: MutableMapping[str, str]) -> list[str]:
    """The GPUs this job may choose from: those CUDA_VISIBLE_DEVICES lists, else every GPU of the machine."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip()]
    return machine_gpus()


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on `path`, or None if another process holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def acquire(count: int, devices: list[str], lock_dir: Path, poll: float = 5.0) -> tuple[list[str], list[int]]:
    """Lock `count` of `devices` (in their order), waiting while too few are free; (devices, descriptors)."""
    if count > len(devices):
        raise ConfigError(f"config field 'gpus_per_job': {count} GPUs per job, but this job sees {len(devices)} "
                          f"({','.join(devices)}); lower gpus_per_job or run where more GPUs are visible")
    if not lock_dir.is_dir():
        lock_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            lock_dir.chmod(0o1777)  # every user's jobs share the machine's GPUs
    waited = False
    while True:
        held: list[tuple[str, int]] = []
        for device in devices:
            fd = _try_lock(lock_dir / f"gpu{device}.lock")
            if fd is not None:
                held.append((device, fd))
                if len(held) == count:
                    return [d for d, _ in held], [fd for _, fd in held]
        for _, fd in held:
            os.close(fd)
        if not waited:
            log.info("all of GPUs %s are held by other jobs (%s); waiting for %d to come free",
                     ",".join(devices), lock_dir, count)
            waited = True
        time.sleep(poll)


@contextlib.contextmanager
def gpu_slot(count: int, environ: MutableMapping[str, str] = os.environ, lock_dir: Path = LOCK_DIR,
             devices: list[str] | None = None, poll: float = 5.0) -> Iterator[list[str]]:
    """Hold `count` GPUs for the `with` block and show only them to CUDA; yields the devices (empty: untouched)."""
    devices = candidates(environ) if devices is None else devices
    if count <= 0 or not devices or ("SLURM_JOB_ID" in environ and len(devices) == count):
        yield []
        return
    chosen, fds = acquire(count, devices, lock_dir, poll)
    previous = environ.get("CUDA_VISIBLE_DEVICES")
    environ["CUDA_VISIBLE_DEVICES"] = ",".join(chosen)
    log.info("GPU slot: CUDA_VISIBLE_DEVICES=%s (lock files in %s)", environ["CUDA_VISIBLE_DEVICES"], lock_dir)
    try:
        yield chosen
    finally:
        if previous is None:
            environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            environ["CUDA_VISIBLE_DEVICES"] = previous
        for fd in fds:
            os.close(fd)
