"""The training recipe a model declares: optimiser, parameter groups, learning-rate schedule, loss reduction.

A recipe is data. Every model class carries its default (`SegmentationModel.recipe`): the CLIP
family the paper's AdamW on DenseCLIP's pipeline, the ResNet baselines mmsegmentation's SGD
configs (docs/RECIPE.md lists every field with its source). A run config's `train.recipe`
overrides any field; the resolved recipe is stored with the checkpoint and the run's summary.

Parameter groups follow mmcv's `DefaultOptimizerConstructor` with `custom_keys`: the image
encoder's parameters (the configs' `backbone` key, which mmcv matches first) train at
`lr * encoder_lr_mult` with full weight decay; any other parameter whose name contains one of
`no_decay` gets no weight decay (DenseCLIP's `'norm': dict(decay_mult=0.)`); frozen parameters
(the text encoder) are left out.

Schedule: mmcv's `PolyLrUpdaterHook` with linear warm-up, applied per group. At the 0-based
iteration i (mmcv's `runner.iter`, before the step) a group whose initial rate is `base` runs at

    regular(i) = (base - min_lr) * (1 - i / max_iters) ** poly_power + min_lr
    lr(i)      = regular(i) * (1 - (1 - i / warmup_iters) * (1 - warmup_ratio))   while i < warmup_iters

so every group, the encoder's included, ends at `min_lr` (mmcv applies the minimum per group).

Loss reduction: mmsegmentation 0.x averaged the cross-entropy over every pixel of the batch,
ignored pixels counting as zero (`all_pixels`, the reference); `labelled_pixels` averages over
labelled pixels only, which weights batches with many ignored pixels (eroded boundaries, padding)
more strongly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bemseg.errors import ConfigError

OPTIMIZERS = ("adamw", "sgd")
LOSS_REDUCTIONS = ("all_pixels", "labelled_pixels")


@dataclass(frozen=True)
class Recipe:
    """Every setting of how a model is trained, apart from the protocol (iterations, batch, crop, data)."""

    name: str  # short id shown in tables, e.g. "denseclip_adamw"
    source: str  # where the values come from
    optimizer: str  # adamw | sgd
    lr: float
    weight_decay: float
    momentum: float = 0.0  # SGD
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW
    eps: float = 1e-8  # AdamW
    encoder_lr_mult: float = 1.0
    no_decay: tuple[str, ...] = ()  # parameter-name substrings that get no weight decay (outside the encoder)
    poly_power: float = 0.9
    min_lr: float = 0.0
    warmup_iters: int = 0
    warmup_ratio: float = 1.0  # 1.0 = no warm-up effect
    loss_reduction: str = "all_pixels"
    overridden: tuple[str, ...] = ()  # the fields a run config changed from the model's default (set by with_overrides)

    def __post_init__(self) -> None:
        checks = {
            "optimizer": self.optimizer in OPTIMIZERS,
            "loss_reduction": self.loss_reduction in LOSS_REDUCTIONS,
            "lr": self.lr > 0,
            "min_lr": 0 <= self.min_lr <= self.lr * min(self.encoder_lr_mult, 1.0) or self.encoder_lr_mult == 0,
            "warmup_ratio": 0 <= self.warmup_ratio <= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"config field 'train.recipe.{bad[0]}': {getattr(self, bad[0])!r} is not valid for "
                              f"recipe '{self.name}' (optimizer: {', '.join(OPTIMIZERS)}; loss_reduction: "
                              f"{', '.join(LOSS_REDUCTIONS)}; 0 <= min_lr <= the smallest group's lr)")

    def with_overrides(self, overrides: Mapping[str, Any]) -> Recipe:
        """This recipe with some fields replaced (a run config's `train.recipe`); unknown fields are errors."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"config field 'train.recipe.{unknown[0]}': unknown field; known fields here: "
                              f"{', '.join(sorted(known))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if k != "overridden"}
        changed = {k for k, v in values.items() if getattr(self, k) != v}
        return dataclasses.replace(self, **values, overridden=tuple(sorted(changed | set(self.overridden))))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Recipe:
        """Inverse of `as_dict` (a recipe read back from a run's summary)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def describe(self) -> str:
        """One line for reports, e.g. 'SGD (momentum 0.9), lr 0.01, weight decay 0.0005, poly 0.9 to 0.0001'."""
        parts = [f"AdamW (betas {self.betas[0]:g}/{self.betas[1]:g})" if self.optimizer == "adamw"
                 else f"SGD (momentum {self.momentum:g})",
                 f"lr {self.lr:g}" + (f" (encoder x{self.encoder_lr_mult:g})" if self.encoder_lr_mult != 1 else ""),
                 f"weight decay {self.weight_decay:g}"
                 + (f" (none on parameters named *{'*, *'.join(self.no_decay)}*)" if self.no_decay else ""),
                 f"poly {self.poly_power:g} to {self.min_lr:g}",
                 f"linear warm-up {self.warmup_iters} iterations from x{self.warmup_ratio:g}" if self.warmup_iters
                 else "no warm-up",
                 f"cross-entropy averaged over {self.loss_reduction.replace('_', ' ')}"]
        changed = f" [changed by the run config: {', '.join(self.overridden)}]" if self.overridden else ""
        return ", ".join(parts) + changed

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (stored with checkpoints and summaries)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def lr_at(self, iteration: int, max_iters: int, base: float) -> float:
        """Learning rate at 0-based `iteration` of a group whose initial rate is `base` (mmcv's formula)."""
        progress = min(iteration / max_iters, 1.0)
        lr = (base - self.min_lr) * (1.0 - progress) ** self.poly_power + self.min_lr
        if iteration < self.warmup_iters:
            lr *= 1.0 - (1.0 - iteration / self.warmup_iters) * (1.0 - self.warmup_ratio)
        return lr
