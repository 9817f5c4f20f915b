"""Confusion-matrix accuracy metrics (section 4.1.2).

A run accumulates one dataset-level confusion matrix (rows = label, columns = prediction, ignored
pixels excluded) and every reported number is derived from it by `summarize`, so a change of
protocol never needs retraining. A class absent from both label and prediction has no defined
IoU or F1: it is NaN, left out of the means and listed in ``absent_classes`` for the report.
"""

from __future__ import annotations

import numpy as np
import torch


def _counted(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
             ignore_index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mask of counted pixels, their labels, their predictions), both checked to lie in [0, C)."""
    if pred.shape != target.shape:
        raise ValueError(
            f"confusion_matrix: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ"
        )
    for name, tensor in (("pred", pred), ("target", target)):
        if tensor.is_floating_point() or tensor.is_complex():
            raise ValueError(f"confusion_matrix: {name} must hold integer class indices, got {tensor.dtype}")
    if num_classes < 1:
        raise ValueError(f"confusion_matrix: num_classes must be positive, got {num_classes}")
    counted = target != ignore_index
    labels = target[counted].long()
    preds = pred[counted].long()
    for name, values in (("target", labels), ("pred", preds)):
        bad = (values < 0) | (values >= num_classes)
        if bad.any():
            raise ValueError(
                f"confusion_matrix: {name} value {int(values[bad][0])} is outside [0, {num_classes})"
                + (f" and is not ignore_index ({ignore_index})" if name == "target" else "")
            )
    return counted, labels, preds


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """int64 (C, C) counts on the inputs' device; pixels whose target is `ignore_index` are skipped.

    Predictions are checked only at counted pixels, so a prediction marked `ignore_index` where
    the label is ignored is accepted; any other value outside [0, C) raises ValueError.
    """
    _, labels, preds = _counted(pred, target, num_classes, ignore_index)
    counts = torch.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def unit_confusion_matrices(pred: torch.Tensor, target: torch.Tensor, num_classes: int, unit_size: int | None,
                            ignore_index: int = 255) -> torch.Tensor:
    """int64 (U, C, C): one confusion matrix per test unit of an (H, W) image, for bootstrapping the test set.

    A unit is the whole image (`unit_size` None) or each block of `unit_size` x `unit_size` pixels in
    row-major order (the last row and column of blocks may be smaller). Their sum is the image's matrix.
    """
    if unit_size is None:
        return confusion_matrix(pred, target, num_classes, ignore_index)[None]
    counted, labels, preds = _counted(pred, target, num_classes, ignore_index)
    height, width = target.shape[-2:]
    cols = -(-width // unit_size)
    units = -(-height // unit_size) * cols
    block = (torch.arange(height, device=target.device)[:, None] // unit_size * cols
             + torch.arange(width, device=target.device)[None, :] // unit_size)
    keys = (block[counted] * num_classes + labels) * num_classes + preds
    return torch.bincount(keys, minlength=units * num_classes**2).reshape(units, num_classes, num_classes)


def summarize(cm: torch.Tensor | np.ndarray) -> dict:
    """Per-class IoU and F1, their NaN-skipping means, OA, and the classes absent from both axes.

    Fractions in [0, 1], computed in float64. An empty matrix gives NaN everywhere.
    """
    counts = cm.detach().cpu().numpy() if isinstance(cm, torch.Tensor) else np.asarray(cm)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"summarize: expected a square (C, C) confusion matrix, got shape {counts.shape}")
    counts = counts.astype(np.float64)
    hits = np.diag(counts)
    both = counts.sum(1) + counts.sum(0)  # row_c + col_c
    present = both > 0
    safe = np.where(present, both, 1.0)
    iou = np.where(present, hits / (safe - hits), np.nan)
    f1 = np.where(present, 2 * hits / safe, np.nan)
    total = counts.sum()
    return {
        "iou": iou.tolist(),
        "f1": f1.tolist(),
        "miou": float(iou[present].mean()) if present.any() else float("nan"),
        "mf1": float(f1[present].mean()) if present.any() else float("nan"),
        "oa": float(hits.sum() / total) if total > 0 else float("nan"),
        "absent_classes": np.flatnonzero(~present).tolist(),
    }
