"""Model cost as the paper's Table 3 reports it: GFLOPs, parameters, FPS.

Conventions (measurement spec, "Complexity"), which reproduce DenseCLIP's and hence the paper's:
- GFLOPs: fvcore's count of the inference forward at batch 1, 1x3xSxS, eval mode. fvcore counts
  one multiply-add as one flop. Attention is written as matmuls so it is counted; every operator
  fvcore could not count is listed with the number.
- Params: trainable parameters only; the frozen text encoder is reported in its own column.
- FPS: batch 1, eval, `torch.inference_mode()`, warm-up, then 1 / median of timed forwards, the
  device synchronised before each clock read. On a CPU an FPS is only meaningful as a ratio
  against another model measured in the same run.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

import torch

from bemseg.errors import ConfigError
from bemseg.models.base import SegmentationModel
from bemseg.provenance import device_name, provenance
from bemseg.registry import create_model

FLOP_CONVENTION = "fvcore: one multiply-add counted as one flop"
#: The encoders reduce the input 32-fold; smaller inputs vanish before the last stage.
MIN_SIZE = 32


def parameter_counts(model: SegmentationModel) -> tuple[int, int]:
    """(trainable parameters, frozen text-encoder parameters)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    text = model.text_encoder
    frozen_text = sum(p.numel() for p in text.parameters() if not p.requires_grad) if text is not None else 0
    return trainable, frozen_text


def count_flops(model: SegmentationModel, size: int) -> tuple[float, dict[str, int]]:
    """fvcore flops (multiply-adds) of one eval forward at 1x3xSxS, and the operators it skipped."""
    from fvcore.nn import FlopCountAnalysis

    for name in ("fvcore", "fvcore.nn.jit_analysis"):
        logging.getLogger(name).setLevel(logging.ERROR)
    model.eval()
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, (torch.zeros(1, 3, size, size),))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        total = analysis.total()
    return float(total), dict(sorted(analysis.unsupported_ops().items()))


def time_forward(model: torch.nn.Module, inputs: torch.Tensor, repeats: int, warmup: int = 2) -> list[float]:
    """Seconds per forward for `repeats` timed calls after `warmup` untimed ones (device synchronised)."""
    sync = torch.cuda.synchronize if inputs.is_cuda else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(inputs)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


def measure_fps(model: SegmentationModel, size: int, repeats: int = 10, device: str = "cpu") -> dict[str, Any]:
    """FPS at batch 1 and SxS on `device`: 1 / median seconds per forward."""
    target = torch.device(device)
    model = model.to(target).eval()
    times = time_forward(model, torch.zeros(1, 3, size, size, device=target), repeats)
    median = statistics.median(times)
    return {"fps": 1.0 / median, "seconds_per_forward": median, "fps_repeats": repeats,
            "fps_device": device_name(target)}


def measure(model_name: str, num_classes: int = 6, size: int = 512, repeats: int = 10,
            device: str = "cpu", **options: Any) -> dict[str, Any]:
    """Every Table 3 cost column for a registered model, with provenance."""
    if size < MIN_SIZE:
        raise ConfigError(f"--size: {size} is too small; use at least {MIN_SIZE} pixels")
    _check_device(device)
    model = create_model(model_name, num_classes, **options)
    trainable, frozen_text = parameter_counts(model)
    flops, unsupported = count_flops(model, size)
    report = {
        "model": model_name,
        "num_classes": num_classes,
        "size": size,
        "params_m": trainable / 1e6,
        "text_params_m": frozen_text / 1e6,
        "gflops": flops / 1e9,
        "flop_convention": FLOP_CONVENTION,
        "unsupported_ops": unsupported,
        "weights": model.weights,
    }
    if repeats > 0:
        report.update(measure_fps(model, size, repeats, device))
    report["provenance"] = provenance(config={"model": model_name, "options": options, "num_classes": num_classes,
                                              "size": size}, device=device)
    return report


def _check_device(device: str) -> None:
    """A device torch knows and this machine has, or a one-line ConfigError."""
    try:
        target = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"--device: '{device}' is not a device; use cpu or cuda") from exc
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device: '{device}' was asked for but no CUDA device is available; use cpu")


def format_report(report: dict[str, Any]) -> str:
    """Human-readable lines for `bemseg complexity` without --json."""
    lines = [
        f"model            {report['model']} ({report['weights']})",
        f"input            1x3x{report['size']}x{report['size']}, {report['num_classes']} classes",
        f"GFLOPs           {report['gflops']:.2f}  ({report['flop_convention']})",
        f"params           {report['params_m']:.2f} M trainable; frozen text encoder {report['text_params_m']:.2f} M",
        f"not counted      {', '.join(f'{k} x{v}' for k, v in report['unsupported_ops'].items()) or 'nothing'}",
    ]
    if "fps" in report:
        lines.append(f"FPS              {report['fps']:.2f} on {report['fps_device']} "
                     f"(median of {report['fps_repeats']})")
    return "\n".join(lines)
