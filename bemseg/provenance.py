"""Where a result came from: seed, config hash, git commit, library versions, device, precision.

Every result row the suite writes carries `provenance(...)`, so a number can be traced back to
the code and settings that produced it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions every result records.
TRACKED_PACKAGES = ("bemseg", "torch", "torchvision", "open_clip_torch", "timm",
                    "segmentation-models-pytorch", "fvcore", "numpy", "pillow")

_REPO = Path(__file__).resolve().parent.parent


def config_hash(config: Any) -> str:
    """First 12 hex digits of the sha256 of the config as canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@functools.cache
def git_commit() -> str:
    """The suite's git commit (with '-dirty' for uncommitted changes), or 'unknown' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


@functools.cache
def library_versions() -> dict[str, str]:
    """Installed versions of the tracked packages, plus Python's."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where available)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: Any = None) -> str:
    """Readable name of a torch device: the GPU's name for CUDA, the CPU model otherwise."""
    kind = str(device) if device is not None else "cpu"
    if kind.startswith("cuda"):
        import torch

        return f"cuda: {torch.cuda.get_device_name(torch.device(kind))}"
    return f"cpu: {cpu_name()}"


def provenance(*, seed: int | None = None, config: Any = None, device: Any = None, precision: str | None = None,
               **extra: Any) -> dict[str, Any]:
    """The provenance record attached to a result (extra keys, e.g. `synthetic`, are kept)."""
    record: dict[str, Any] = {
        "seed": seed,
        "config_hash": config_hash(config) if config is not None else None,
        "git_commit": git_commit(),
        "versions": library_versions(),
        "device": device_name(device),
        "precision": precision,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    record.update(extra)
    return record
