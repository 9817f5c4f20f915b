"""A quick check that a model keeps the suite's contract, run before any training step.

A variant that returns logits of the wrong shape would otherwise fail deep inside the loss with a
traceback; this names the model's file and what was expected instead.
"""

from __future__ import annotations

import torch

from bemseg.errors import ModelError
from bemseg.models.base import SegmentationModel
from bemseg.models.recipe import Recipe

PROBE_SIZE = 64


def check_contract(model: SegmentationModel) -> None:
    """The model declares a training recipe, and an eval forward of one zero image gives (1, C, 64, 64) logits."""
    if not isinstance(model.recipe, Recipe):
        raise ModelError(f"{model.source or type(model).__name__}: model '{model.model_name}' declares no training "
                         "recipe; set the class attribute `recipe` to a bemseg.models.recipe.Recipe (e.g. inherit "
                         "ClipSegmentor's)")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.zeros(1, 3, PROBE_SIZE, PROBE_SIZE, device=device))
    finally:
        model.train(was_training)
    expected = (1, model.num_classes, PROBE_SIZE, PROBE_SIZE)
    shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
    if shape != expected:
        raise ModelError(f"{model.source or type(model).__name__}: model '{model.model_name}' returned {shape} "
                         f"for a 1x3x{PROBE_SIZE}x{PROBE_SIZE} input in eval mode; expected logits of shape "
                         f"{expected} (see bemseg/models/base.py)")
