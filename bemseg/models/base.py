"""The contract every registered model keeps, so the engine never needs to know which model it runs.

Training mode with labels: `model(images, labels)` returns a dict of named scalar losses, the
unweighted terms (`main`, and `aux`, `cpc` where the model has them) plus `total`, their sum
weighted by `loss_weights`. Otherwise `model(images)` returns logits (B, num_classes, H, W) at the
input's size.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from bemseg.errors import ModelError
from bemseg.models.recipe import Recipe

#: Normalisations an encoder can ask for; the datasets apply the one the model names.
INPUT_NORMS = ("clip", "imagenet")


class SegmentationModel(nn.Module, metaclass=abc.ABCMeta):
    """Base class of every model in the registry."""

    #: The image normalisation the encoder was pretrained with ("clip" or "imagenet").
    input_norm: str = "clip"
    #: How the model is trained by default (bemseg/models/recipe.py); a run config can override any field.
    recipe: ClassVar[Recipe | None] = None

    def __init__(self, num_classes: int, class_names: list[str]) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.class_names = list(class_names)
        #: Weight of each named loss term in `total`.
        self.loss_weights: dict[str, float] = {"main": 1.0}
        #: How the cross-entropy terms average over pixels (the recipe's `loss_reduction`, set by the engine).
        self.loss_reduction = "all_pixels"
        #: How the encoders were initialised; every log line that reports the model states it.
        self.weights = "random initialisation (no pretrained weights)"
        #: Set by the registry: the registered name and the file that defines it.
        self.model_name = type(self).__name__
        self.source = ""

    @property
    @abc.abstractmethod
    def encoder(self) -> nn.Module:
        """The pretrained image encoder (trained with a reduced learning rate)."""

    @property
    def text_encoder(self) -> nn.Module | None:
        """The frozen text encoder, if any (its parameters are counted apart)."""
        return None

    def evaluation_session(self) -> contextlib.AbstractContextManager:
        """Context for predicting many images with fixed weights (e.g. caching input-independent parts).

        The engine wraps whole-split evaluation in it; FLOP and FPS measurements stay outside, so they
        count every forward in full as the paper does.
        """
        return contextlib.nullcontext()

    def describe(self) -> str:
        """One line for logs: the model's name and how its weights were initialised."""
        return f"{self.model_name} ({self.weights})"

    @abc.abstractmethod
    def forward_train(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted named losses for a batch; keys are a subset of `loss_weights`."""

    @abc.abstractmethod
    def forward_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes, H, W) at the size of `images`."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        if self.training and labels is not None:
            losses = self.forward_train(images, labels)
            unknown = set(losses) - set(self.loss_weights)
            if unknown:
                raise ModelError(f"{self.source or type(self).__name__}: loss terms {sorted(unknown)} "
                                 f"have no weight in loss_weights {sorted(self.loss_weights)}")
            losses["total"] = sum(self.loss_weights[k] * v for k, v in losses.items())
            return losses
        return self.forward_logits(images)


def build_config(config_cls: type, model_name: str, preset: dict[str, Any], overrides: dict[str, Any]):
    """Instantiate a model's config dataclass from a registered preset plus user overrides.

    An override that is not a field of the config is a ModelError naming it and the known fields.
    """
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ModelError(f"model '{model_name}': unknown option '{unknown[0]}'; "
                         f"known options: {', '.join(sorted(known))}")
    return config_cls(**{**preset, **overrides})
