"""Whole-image prediction against models whose output is known: sliding windows, multi-scale and flip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bemseg.engine.inference import predict_logits, slide_logits, window_starts

NUM_CLASSES = 3


class Pointwise(nn.Module):
    """Logits = a fixed 1x1 linear map of the pixel: translation-equivariant, so sliding must equal one forward."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weight = torch.randn(NUM_CLASSES, 3, 1, 1, generator=generator)
        self.bias = torch.randn(NUM_CLASSES, generator=generator)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.conv2d(images, self.weight, self.bias)


class PointwiseRamp(Pointwise):
    """The pointwise map plus a class-dependent left-to-right ramp: flipping the input does not flip the ramp."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        ramp = torch.linspace(0.0, 2.0, images.shape[-1]) * torch.arange(NUM_CLASSES)[:, None, None]
        return super().forward(images) + ramp


class WindowMean(nn.Module):
    """Logits constant over each window: the window's mean of channel 0, so overlaps must be averaged."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, ...]] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(images.shape))
        value = images[:, :1].mean(dim=(2, 3), keepdim=True)
        return value.expand(-1, NUM_CLASSES, *images.shape[-2:]).clone()


def mmseg_windows(height: int, width: int, crop: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(y1, y2, x1, x2) of mmsegmentation's slide_inference: grids, then the last window snapped to the edge."""
    boxes = []
    for h_idx in range(max(height - crop + stride - 1, 0) // stride + 1):
        for w_idx in range(max(width - crop + stride - 1, 0) // stride + 1):
            y2, x2 = min(h_idx * stride + crop, height), min(w_idx * stride + crop, width)
            boxes.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    return boxes


@pytest.mark.parametrize(("height", "width", "window", "stride"), [(70, 90, 32, 21), (32, 32, 32, 21),
                                                                    (20, 50, 32, 16), (64, 96, 32, 32)])
def test_windows_are_mmsegmentations(height, width, window, stride):
    expected = mmseg_windows(height, width, window, stride)
    ys, xs = window_starts(height, window, stride), window_starts(width, window, stride)
    assert [(y, min(y + window, height), x, min(x + window, width)) for y in ys for x in xs] == expected


@pytest.mark.parametrize("batch_size", [1, 4])
def test_sliding_window_of_a_pointwise_model_equals_one_forward(batch_size):
    image = torch.randn(3, 70, 90)
    model = Pointwise()
    out = slide_logits(model, image, NUM_CLASSES, window=32, stride=21, batch_size=batch_size)
    torch.testing.assert_close(out, model(image[None])[0], rtol=1e-5, atol=1e-5)


def test_overlapping_windows_are_averaged():
    height, width, window, stride = 50, 70, 32, 20
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    image = torch.stack([rows, torch.zeros_like(rows), torch.zeros_like(rows)])
    model = WindowMean()
    out = slide_logits(model, image, NUM_CLASSES, window, stride, batch_size=3)
    total, count = torch.zeros(height, width), torch.zeros(height, width)
    for y1, y2, x1, x2 in mmseg_windows(height, width, window, stride):
        total[y1:y2, x1:x2] += rows[y1:y2, x1:x2].mean()
        count[y1:y2, x1:x2] += 1
    expected = total / count
    for c in range(NUM_CLASSES):
        torch.testing.assert_close(out[c], expected)
    assert sum(shape[0] for shape in model.calls) == len(mmseg_windows(height, width, window, stride))
    assert all(shape[0] <= 3 for shape in model.calls)


def _resized_forward(model: nn.Module, image: torch.Tensor, scale: float, flip: bool) -> torch.Tensor:
    """One MS view computed directly: resize, (flip), forward, (unflip), resize back."""
    height, width = image.shape[-2:]
    view = F.interpolate(image[None], size=(round(height * scale), round(width * scale)), mode="bilinear",
                         align_corners=False)
    if flip:
        view = view.flip(-1)
    logits = model(view)
    if flip:
        logits = logits.flip(-1)
    return F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)[0]


@pytest.mark.parametrize("average", ["logits", "probs"])
@pytest.mark.parametrize(("model", "window"), [(Pointwise(), 32), (PointwiseRamp(), 128)])
def test_multiscale_flip_test_averages_every_view(average, model, window):
    """Pointwise: windows inside every scaled view; ramp: one window per view, and flipped views must be unflipped."""
    image = torch.randn(3, 48, 64)
    scales = (0.5, 1.0, 1.5)
    out = predict_logits(model, image, NUM_CLASSES, window=window, stride=21, ms=True, scales=scales, flip=True,
                         average=average)
    views = [_resized_forward(model, image, s, flip) for s in scales for flip in (False, True)]
    if average == "probs":
        views = [v.softmax(0) for v in views]
    torch.testing.assert_close(out, torch.stack(views).mean(0), rtol=1e-4, atol=1e-4)
    if isinstance(model, PointwiseRamp):
        without_flip = predict_logits(model, image, NUM_CLASSES, window=window, stride=21, ms=True, scales=scales,
                                      flip=False, average=average)
        assert not torch.allclose(without_flip, out, atol=1e-3)
    else:
        single = predict_logits(model, image, NUM_CLASSES, window=window, stride=21)
        torch.testing.assert_close(single, model(image[None])[0], rtol=1e-5, atol=1e-5)


def test_a_scale_and_its_mirror_share_window_batches():
    model = WindowMean()
    image = torch.randn(3, 48, 64)
    predict_logits(model, image, NUM_CLASSES, window=32, stride=32, batch_size=4, ms=True, scales=(1.0,), flip=True)
    # 2 x 2 windows per view, two views (the image and its mirror): two batches of four, not four of two
    assert [shape[0] for shape in model.calls] == [4, 4]
