"""Checkpoints: written atomically, read with `weights_only=True`, without the frozen text encoder.

The frozen text encoder (63.7 M parameters) is the same in every run (CLIP's weights, or a fixed
random tower), so checkpoints leave it out and store a fingerprint instead; restoring rebuilds
the model from the run's config and checks the fingerprint. A resume checkpoint also carries the
optimiser, scaler, RNG states and the training log; a final one only the weights.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import torch

from bemseg.atomic import atomic_path
from bemseg.errors import BemsegError
from bemseg.models.base import SegmentationModel
from bemseg.models.weights import first_mismatch
from bemseg.registry import create_model

FORMAT = "bemseg-checkpoint-1"


class CheckpointError(BemsegError):
    """A checkpoint is unreadable, of another format, or does not fit its model."""


def frozen_names(model: SegmentationModel) -> set[str]:
    """Names of the state entries that checkpoints leave out: the frozen text encoder's parameters."""
    text = model.text_encoder
    if text is None:
        return set()
    frozen = {id(p) for p in text.parameters() if not p.requires_grad}
    return {name for name, p in model.named_parameters() if id(p) in frozen}


def frozen_fingerprint(model: SegmentationModel) -> str:
    """sha256 over the frozen parameters, in name order."""
    digest = hashlib.sha256()
    params = dict(model.named_parameters())
    for name in sorted(frozen_names(model)):
        digest.update(name.encode())
        digest.update(memoryview(params[name].detach().cpu().contiguous().numpy()).cast("B"))
    return digest.hexdigest()


def model_state(model: SegmentationModel) -> dict[str, torch.Tensor]:
    """The model's state dict without the frozen parameters."""
    skip = frozen_names(model)
    return {k: v for k, v in model.state_dict().items() if k not in skip}


def save_checkpoint(path: str | Path, **content: Any) -> None:
    """Write `content` (plus the format tag) atomically with torch.save.

    torch.save writes through a Python file object, and a failed write is raised as the OSError it
    is (a full disk becomes a one-line OutputError in `atomic_path`), not as torch's RuntimeError
    about stream positions.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        try:
            torch.save({"format": FORMAT, **content}, fh)
        except RuntimeError as exc:
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from exc
            raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with `weights_only=True`; any failure is one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train first (`bemseg train`)")
    try:
        with warnings.catch_warnings():  # e.g. the unpickler's notice about a foreign file's protocol
            warnings.simplefilter("ignore")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt or foreign files fail in many ways
        raise CheckpointError(f"checkpoint {path} is corrupt or not a bemseg checkpoint "
                              f"({type(exc).__name__}); delete it and train again") from exc
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a {FORMAT} file; was it written by another tool?")
    return content


def build_model(config: dict[str, Any], num_classes: int, class_names: list[str]) -> SegmentationModel:
    """The run's model, as its resolved config describes it."""
    spec = config["model"]
    return create_model(spec["name"], num_classes, class_names=class_names, pretrained=spec["pretrained"],
                        dataset=config["data"]["dataset"], **spec["options"])


def restore_model(checkpoint: dict[str, Any], path: str | Path) -> SegmentationModel:
    """Rebuild the model of a checkpoint and load its weights; the frozen parts must match.

    The weights are loaded first: a checkpoint of another model (or of another version of its code)
    is named as such, not blamed on the frozen text encoder.
    """
    model = build_model(checkpoint["config"], checkpoint["num_classes"], checkpoint["class_names"])
    load_model_state(model, checkpoint["model"], path)
    if frozen_fingerprint(model) != checkpoint["frozen_fingerprint"]:
        raise CheckpointError(f"checkpoint {path} was trained with another frozen text encoder than "
                              f"{checkpoint['config']['model']['pretrained'] or 'the random one'} gives; "
                              "evaluate with the weights it was trained with")
    return model


def load_model_state(model: SegmentationModel, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load a checkpoint's weights; only the frozen parameters may be absent."""
    fits = "it holds another model, or the model's code changed since it was written; use the matching checkpoint"
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of other shapes
        raise CheckpointError(f"checkpoint {path} does not fit model {model.model_name} ({first_mismatch(exc)}); "
                              f"{fits}") from exc
    missing = set(result.missing_keys) - frozen_names(model)
    if missing or result.unexpected_keys:
        raise CheckpointError(f"checkpoint {path} does not fit model {model.model_name} (missing "
                              f"{sorted(missing)[:2]}, unexpected {result.unexpected_keys[:2]}); {fits}")
