"""Device choice and the CUDA-only speed-ups (mixed precision, channels_last), in one place."""

from __future__ import annotations

import contextlib
import resource
import sys

import torch

from bemseg.errors import ConfigError
from bemseg.models.base import SegmentationModel


def resolve_device(choice: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a config error."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config field 'train.device': 'cuda' was asked for but no CUDA device is available; "
                          "use 'auto' or 'cpu'")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def set_threads(threads: int) -> None:
    """Limit torch's CPU threads (0 keeps torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def _flag(value: bool | str, device: torch.device) -> bool:
    return device.type == "cuda" if value == "auto" else bool(value) and device.type == "cuda"


def prepare_model(model: SegmentationModel, device: torch.device, amp: bool | str,
                  channels_last: bool | str) -> tuple[SegmentationModel, bool, bool]:
    """Move the model to `device`; return it with the resolved (amp, channels_last) flags (CUDA only)."""
    use_amp, use_cl = _flag(amp, device), _flag(channels_last, device)
    model = model.to(device)
    if use_cl:
        model = model.to(memory_format=torch.channels_last)
    return model, use_amp, use_cl


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when enabled; a no-op otherwise."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator peak on a GPU, resident set size on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
