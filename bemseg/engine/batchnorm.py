"""Precise BatchNorm statistics: every BatchNorm's running mean and variance re-estimated after training.

BatchNorm normalises with the batch's statistics in training and with running averages (momentum
0.1) in evaluation. Over a long schedule the averages settle; over a few dozen iterations at a high
learning rate the weights move faster than the averages follow, and evaluation normalises with
statistics of weights that no longer exist (on the embedded default DeepLabV3+ then predicts one
class for every pixel, while the same weights with batch statistics are right on three quarters of
the training pixels). Re-estimating the averages with the final weights over N batches of training
data, each batch weighted alike, is the remedy of Wu and Johnson ("Rethinking BatchNorm", 2021;
fvcore's `update_bn_stats`). The reference pipelines do not do it: it is off by default
(`train.bn_recalibration: 0`) and the embedded default switches it on.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def recalibrate_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Reset every BatchNorm's running statistics and average them, equally weighted, over `batches` of images.

    The forward runs in training mode without gradients; the momenta and the model's mode are
    restored afterwards. Returns the number of batches used (0 leaves the model as it was).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    batches = iter(batches)
    first = next(batches, None)
    if first is None or not norms:
        return 0
    momenta = [m.momentum for m in norms]
    training = model.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # None: a cumulative average, every batch counting alike
    model.train()
    count = 0
    try:
        with torch.no_grad():
            for images in (first, *batches):
                model(images)
                count += 1
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(training)
    return count
