"""Device, numeric precision, memory layout and data loading, decided in one place for training and evaluation.

Precision (`train.precision`): `fp32` is full precision, the paper's setting and the default
(on a GPU with TF32 tensor cores, matrix products may use TF32 unless `train.tf32: false`);
`bf16` and `fp16` run the forward under autocast in that type, `fp16` with a gradient scaler
(CUDA only); `mixed` picks bfloat16 where the device supports it, else float16 with a scaler on
CUDA, else full precision. The resolved choice is recorded with every result.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from dataclasses import dataclass
from typing import Any

import torch

from bemseg.errors import ConfigError
from bemseg.models.base import SegmentationModel

PRECISIONS = ("fp32", "mixed", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    """A resolved precision: its name as recorded, the autocast type (None = off), whether a scaler runs."""

    name: str
    dtype: torch.dtype | None
    scaler: bool


#: Full precision without TF32: what the CPU always computes in unless told otherwise.
FULL_PRECISION = Precision("fp32", None, False)


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


def bf16_supported(device: torch.device) -> bool:
    """Whether the device computes bfloat16 natively (CUDA: Ampere or newer; CPU: AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(choice: str, device: torch.device, tf32: bool = True) -> Precision:
    """The precision `choice` means on `device`; fp16 on a CPU is a config error."""
    if choice == "mixed":
        choice = "bf16" if bf16_supported(device) else "fp16" if device.type == "cuda" else "fp32"
    if choice == "fp16" and device.type != "cuda":
        raise ConfigError("config field 'train.precision': 'fp16' needs a CUDA device; use 'bf16', 'mixed' or 'fp32'")
    if choice == "fp32":
        uses_tf32 = device.type == "cuda" and tf32 and torch.cuda.get_device_capability(device)[0] >= 8
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = uses_tf32
            torch.backends.cudnn.allow_tf32 = uses_tf32
        return Precision("fp32 (tf32 matmul)" if uses_tf32 else "fp32", None, False)
    dtype = torch.bfloat16 if choice == "bf16" else torch.float16
    return Precision(choice, dtype, choice == "fp16")


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    """Autocast to the precision's type on `device`; a no-op for full precision."""
    if precision.dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=precision.dtype)


def prepare_model(model: SegmentationModel, device: torch.device, channels_last: bool | str) -> tuple[
        SegmentationModel, bool]:
    """Move the model to `device`; return it with the resolved channels_last flag ('auto' = on CUDA)."""
    use_cl = device.type == "cuda" if channels_last == "auto" else bool(channels_last)
    model = model.to(device)
    if use_cl:
        model = model.to(memory_format=torch.channels_last)
    return model, use_cl


def loader_options(device: torch.device, workers: int, prefetch_factor: int) -> dict[str, Any]:
    """DataLoader settings that keep a GPU fed: pinned memory (so copies can overlap compute), workers that
    live as long as the loader and prepare `prefetch_factor` batches each ahead."""
    return {"num_workers": workers, "pin_memory": device.type == "cuda", "persistent_workers": workers > 0,
            "prefetch_factor": prefetch_factor if workers > 0 else None}


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA allocator peak on a GPU, resident set size on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
