"""`bemseg evaluate`: a checkpoint over the whole test split, one dataset-level confusion matrix.

Every test tile or image is predicted whole (sliding window, or the multi-scale-and-flip test with
`--ms`); predictions accumulate into one confusion matrix (rows = label, columns = prediction)
from which every metric derives (measurement spec). Written to OUT:

    confusion.csv             the matrix, with class names
    predictions/NAME_*.png    centre crops of the first test images: image, label, prediction (Figure 5)
    metrics.json              per-class IoU and F1, mIoU, mF1, OA, FPS, timing, provenance, and one
                              confusion matrix per test unit (image, or block of `eval.unit_size`) for
                              the bootstrap of the test set (bemseg/reports/significance.py)

The files are assembled beside OUT and replace it as a whole, so OUT always holds one complete
evaluation (or none): an interrupted evaluation leaves an earlier one untouched, and its
temporaries are removed by the next run. Rerunning a finished evaluation does nothing; an OUT
holding files an evaluation does not write is refused, never replaced.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from bemseg.atomic import (
    atomic_directory,
    discard_temporaries,
    read_json_or_none,
    refuse_foreign,
    write_bytes,
    write_json,
    write_text,
)
from bemseg.complexity import measure_fps
from bemseg.config import resolve_run_config, set_dotted
from bemseg.data import build_dataset
from bemseg.data.catalog import get_dataset_info
from bemseg.data.imageio import encode
from bemseg.data.labels import colorize
from bemseg.data.normalization import denormalize
from bemseg.engine.checkpoint import CheckpointError, load_checkpoint, restore_model
from bemseg.engine.device import (
    Precision,
    loader_options,
    prepare_model,
    resolve_device,
    resolve_precision,
    set_threads,
)
from bemseg.engine.inference import predict_logits
from bemseg.errors import ConfigError
from bemseg.lock import exclusive
from bemseg.metrics import summarize, unit_confusion_matrices
from bemseg.provenance import config_hash, provenance

#: What an evaluation writes into OUT (fnmatch patterns); anything else there is the user's.
OUTPUTS = ("metrics.json", "confusion.csv", "predictions", "predictions/*_image.png", "predictions/*_label.png",
           "predictions/*_pred.png")


def _centre_crop(array: np.ndarray, size: int) -> np.ndarray:
    height, width = array.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return array[top:top + size, left:left + size]


def _write_figures(folder: Path, name: str, image: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor,
                   norm: str, palette: list[tuple[int, int, int]], size: int) -> None:
    crops = {
        "image": _centre_crop(denormalize(image, norm), size),
        "label": colorize(_centre_crop(mask.cpu().numpy().astype(np.uint8), size), tuple(palette)),
        "pred": colorize(_centre_crop(pred.cpu().numpy().astype(np.uint8), size), tuple(palette)),
    }
    for kind, array in crops.items():
        write_bytes(folder / f"{name}_{kind}.png", encode(array, "PNG"))


def _confusion_csv(cm: torch.Tensor, class_names: list[str]) -> str:
    lines = ["label\\prediction," + ",".join(class_names)]
    lines += [f"{name}," + ",".join(str(int(v)) for v in row) for name, row in zip(class_names, cm.tolist())]
    return "\n".join(lines) + "\n"


def _accumulate(model: torch.nn.Module, loader: DataLoader, num_classes: int, ecfg: dict[str, Any],
                precision: Precision, channels_last: bool, device: torch.device,
                on_prediction: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None],
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-unit confusion matrices (U, C, C) of every image of `loader`; data, forward and metric timed apart."""
    units = []
    timing = {"data_seconds": 0.0, "forward_seconds": 0.0, "metric_seconds": 0.0}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    tic = time.perf_counter()
    for index, (image, mask) in enumerate(loader):
        image, mask = image.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        sync()
        mark = time.perf_counter()
        timing["data_seconds"] += mark - tic
        logits = predict_logits(model, image, num_classes, ecfg["window"], ecfg["stride"], ecfg["batch_size"],
                                ms=ecfg["ms"], scales=ecfg["scales"], flip=ecfg["flip"], average=ecfg["average"],
                                precision=precision, channels_last=channels_last)
        sync()
        timing["forward_seconds"] += time.perf_counter() - mark
        mark = time.perf_counter()
        pred = logits.argmax(0)
        units.append(unit_confusion_matrices(pred, mask, num_classes, ecfg["unit_size"]))
        sync()
        timing["metric_seconds"] += time.perf_counter() - mark
        on_prediction(index, image, mask, pred)
        tic = time.perf_counter()
    timing["overhead_ratio"] = (timing["data_seconds"] + timing["metric_seconds"]) / max(timing["forward_seconds"],
                                                                                          1e-12)
    return torch.cat(units), timing


def evaluate(checkpoint: str | Path, out: str | Path, ms: bool = False,
             overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Evaluate a final checkpoint on its dataset's test split; return the metrics record."""
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    if state.get("kind") != "final":
        raise CheckpointError(f"{checkpoint} is a {state.get('kind')} checkpoint, not a finished model; "
                              "let `bemseg train` finish first")
    cfg = copy.deepcopy(state["config"])
    for assignment in overrides:
        if not assignment.startswith(("eval.", "data.")):
            raise ConfigError(f"--set '{assignment}': evaluation may only change eval.* and data.* fields")
        set_dotted(cfg, assignment)
    if ms:
        cfg["eval"]["ms"] = True
    cfg = resolve_run_config(cfg)
    ecfg = cfg["eval"]
    out = Path(out)
    # A final checkpoint is identified by its run's config hash and creation time (hashing 200 MB costs more).
    key = {"checkpoint": {"config_hash": state["config_hash"], "created": state["provenance"]["created"]},
           "eval": ecfg, "data_root": cfg["data"]["root"]}
    with exclusive(out):
        previous = read_json_or_none(out / "metrics.json")
        if previous is not None and previous.get("evaluation_key") == key:
            return previous
        refuse_foreign(out, OUTPUTS, "`bemseg evaluate`")
        discard_temporaries(out)
        with atomic_directory(out) as staging:
            return _evaluate(state, checkpoint, cfg, key, staging)


def _evaluate(state: dict[str, Any], checkpoint: Path, cfg: dict[str, Any], key: dict[str, Any],
              out: Path) -> dict[str, Any]:
    """Evaluate the model of `state` and write its files into the empty folder `out`."""
    ecfg = cfg["eval"]
    device = resolve_device(cfg["train"]["device"])
    set_threads(cfg["train"]["threads"])
    model = restore_model(state, checkpoint)
    model, channels_last = prepare_model(model, device, cfg["train"]["channels_last"])
    precision = resolve_precision(cfg["train"]["precision"], device, cfg["train"]["tf32"])
    model.eval()
    info = get_dataset_info(cfg["data"]["dataset"])
    dataset = build_dataset(info.name, cfg["data"]["root"], "test", norm=model.input_norm, augment=False)
    count = min(len(dataset), ecfg["limit"] or len(dataset))
    loader = DataLoader(torch.utils.data.Subset(dataset, range(count)), batch_size=None,
                        **loader_options(device, cfg["data"]["num_workers"], cfg["data"]["prefetch_factor"]))
    num_classes = state["num_classes"]

    def figures(index: int, image: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor) -> None:
        if index < ecfg["num_figures"]:
            _write_figures(out / "predictions", dataset.names[index], image, mask, pred, model.input_norm,
                           list(info.palette), ecfg["window"])

    with model.evaluation_session():
        units, timing = _accumulate(model, loader, num_classes, ecfg, precision, channels_last, device, figures)
    cm = units.sum(0)
    scores = summarize(cm.cpu())
    train_record = state["provenance"]
    record = {
        "model": cfg["model"]["name"],
        "dataset": info.name,
        "seed": cfg["train"]["seed"],
        "class_names": state["class_names"],
        **scores,
        "absent_class_names": [state["class_names"][i] for i in scores["absent_classes"]],
        "confusion_matrix": cm.cpu().tolist(),
        "unit_confusion_matrices": units.cpu().tolist(),
        "images": count,
        "ms": ecfg["ms"],
        "timing": timing,
        "evaluation_key": key,
        "config_hash": config_hash(cfg),
        "provenance": provenance(seed=cfg["train"]["seed"], config=cfg, device=device, precision=precision.name,
                                 synthetic=train_record.get("synthetic"), weights=train_record.get("weights"),
                                 recipe=train_record.get("recipe"), trained_with=train_record),
    }
    if ecfg["fps_repeats"] > 0:
        record.update(measure_fps(model, ecfg["window"], ecfg["fps_repeats"], str(device)))
    write_text(out / "confusion.csv", _confusion_csv(cm.cpu(), state["class_names"]))
    write_json(out / "metrics.json", record)
    return record
