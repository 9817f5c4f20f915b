"""Whole-image prediction: sliding-window inference and the multi-scale-and-flip test (MS).

Sliding window as mmsegmentation's `slide` mode: windows of `window` pixels every `stride`
(512 / 341 by default), the last row and column snapped to the image edge, logits of overlapping
windows averaged; windows go through the model `batch_size` at a time, on the model's device.
MS (section 4.1.3): the image resized by each scale (0.5 ... 1.75), each also flipped
horizontally, slid over (a scale and its mirror image in shared batches), resized back and
averaged. The spec averages logits; `average: probs` averages softmax probabilities as
mmsegmentation's test-time augmentation does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from bemseg.engine.device import FULL_PRECISION, Precision, autocast


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets along one axis: every `stride`, the last one snapped so the window ends at the edge."""
    if length <= window:
        return [0]
    count = (length - window + stride - 1) // stride + 1
    return [min(i * stride, length - window) for i in range(count)]


@torch.no_grad()
def slide_logits(model: torch.nn.Module, images: torch.Tensor, num_classes: int, window: int, stride: int,
                 batch_size: int = 8, precision: Precision = FULL_PRECISION,
                 channels_last: bool = False) -> torch.Tensor:
    """Logits (C, H, W) of an image (3, H, W), or (V, C, H, W) of V views (V, 3, H, W) of one size, from
    overlapping windows; the windows of all views go through the model together, `batch_size` at a time."""
    views = images if images.dim() == 4 else images[None]
    count, _, height, width = views.shape
    boxes = [(v, y, x) for v in range(count) for y in window_starts(height, window, stride)
             for x in window_starts(width, window, stride)]
    logits = torch.zeros(count, num_classes, height, width, device=views.device)
    counts = torch.zeros(1, 1, height, width, device=views.device)
    win_h, win_w = min(window, height), min(window, width)
    for y, x in {(y, x) for _, y, x in boxes}:
        counts[..., y:y + win_h, x:x + win_w] += 1
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first:first + batch_size]
        crops = torch.stack([views[v, :, y:y + win_h, x:x + win_w] for v, y, x in chunk])
        if channels_last:
            crops = crops.contiguous(memory_format=torch.channels_last)
        with autocast(views.device, precision):
            out = model(crops).float()
        for (v, y, x), crop_logits in zip(chunk, out):
            logits[v, :, y:y + win_h, x:x + win_w] += crop_logits
    logits /= counts
    return logits if images.dim() == 4 else logits[0]


@torch.no_grad()
def predict_logits(model: torch.nn.Module, image: torch.Tensor, num_classes: int, window: int, stride: int,
                   batch_size: int = 8, ms: bool = False, scales: Sequence[float] = (1.0,), flip: bool = True,
                   average: str = "logits", precision: Precision = FULL_PRECISION, channels_last: bool = False
                   ) -> torch.Tensor:
    """Logits (C, H, W) for a whole image: one sliding pass, or the MS-and-flip average with `ms=True`.

    Under MS each scale and its mirror image are slid over together, so their windows share batches
    on the device.
    """
    if not ms:
        return slide_logits(model, image, num_classes, window, stride, batch_size, precision, channels_last)
    height, width = image.shape[-2:]
    total = torch.zeros(num_classes, height, width, device=image.device)
    passes = 0
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        views = torch.cat([scaled, scaled.flip(-1)]) if flip else scaled
        logits = slide_logits(model, views, num_classes, window, stride, batch_size, precision, channels_last)
        if flip:
            logits[1] = logits[1].flip(-1)
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        total += (logits.softmax(1) if average == "probs" else logits).sum(0)
        passes += len(logits)
    return total / passes
