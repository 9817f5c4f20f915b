"""`bemseg train`: iteration-based training that survives interruption without changing its result.

A run lives in one folder:

    OUT/checkpoints/last.pt   resume state, rewritten atomically every `checkpoint_every` iterations
    OUT/train_log.csv         every logged iteration: each named loss, the lr, seconds per iteration
    OUT/model.pt              final weights (written once the schedule is done)
    OUT/train_summary.json    written last: recipe, precision, timing, peak memory, provenance; its presence = done

The model's training recipe (bemseg/models/recipe.py), with the config's `train.recipe` fields
applied, sets the optimiser, its parameter groups, the learning rate of every iteration and the
loss reduction. Rerunning the same command resumes from `last.pt`, says so in one line, runs only
the remaining iterations and reaches the same final weights as an uninterrupted run (bitwise on
CPU): model, optimiser, scaler and RNG states are restored, and the data stream is a pure function
of (seed, position). The summary lists the sessions ([start, stop) iteration ranges) that made the
run. Rerunning a finished run does nothing; a different config or recipe in the same folder is an
error. With `train.bn_recalibration: N`, every BatchNorm's statistics are re-estimated over N more
batches of the data stream once the schedule is done (bemseg/engine/batchnorm.py). A non-finite loss
stops the run naming the iteration and the loss term, after saving the batch and weights for
inspection. OUT is checked for writability before any work and held against
a second process (`bemseg.lock`); the temporaries of a killed checkpoint write are removed then.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import statistics
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from bemseg.atomic import discard_temporaries, read_json_or_none, write_json, write_text
from bemseg.config import resolve_run_config
from bemseg.data import build_dataset
from bemseg.engine.batchnorm import recalibrate_batchnorm
from bemseg.engine.checkpoint import (
    build_model,
    frozen_fingerprint,
    load_checkpoint,
    load_model_state,
    model_state,
    save_checkpoint,
)
from bemseg.engine.device import (
    autocast,
    loader_options,
    peak_memory_mb,
    prepare_model,
    resolve_device,
    resolve_precision,
    set_threads,
)
from bemseg.engine.optim import build_optimizer, set_lr
from bemseg.engine.seeding import restore_rng_state, rng_state, sample_seed, seed_everything
from bemseg.errors import BemsegError, ConfigError
from bemseg.lock import exclusive
from bemseg.models.base import SegmentationModel
from bemseg.models.contract import check_contract
from bemseg.models.recipe import Recipe
from bemseg.provenance import config_hash, provenance

log = logging.getLogger("bemseg.train")


class TrainingError(BemsegError):
    """Training cannot go on (a non-finite loss)."""


class StreamSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (dataset index, augmentation seed) for iterations [start, stop).

    Position p of the stream is sample perm_e[p mod n] of epoch e = p // n, where perm_e is a
    permutation seeded by (seed, e); its augmentation seed depends on (seed, p) only. Any
    iteration's batch is therefore known without replaying the ones before it.
    """

    def __init__(self, size: int, batch_size: int, seed: int, start: int, stop: int) -> None:
        self.size, self.batch_size, self.seed, self.start, self.stop = size, batch_size, seed, start, stop

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, perm = -1, np.empty(0, dtype=np.int64)
        for iteration in range(self.start, self.stop):
            batch = []
            for position in range(iteration * self.batch_size, (iteration + 1) * self.batch_size):
                if position // self.size != epoch:
                    epoch = position // self.size
                    perm = self._permutation(epoch)
                batch.append((int(perm[position % self.size]), sample_seed(self.seed, position)))
            yield batch

    def __len__(self) -> int:
        return self.stop - self.start


def _worker_init(worker_id: int) -> None:
    """Workers draw nothing from global generators; seed them anyway so nothing is left to chance."""
    seed_everything(torch.initial_seed() % 2**31 + worker_id)


def _log_csv(rows: list[dict[str, float]]) -> str:
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _check_finite(losses: Mapping[str, torch.Tensor], iteration: int, out: Path, images: torch.Tensor,
                  labels: torch.Tensor, model: torch.nn.Module) -> None:
    bad = [k for k, v in losses.items() if not torch.isfinite(v)]
    if not bad:
        return
    dump = out / f"nonfinite-iter{iteration}.pt"
    save_checkpoint(dump, kind="nonfinite", iteration=iteration, images=images.cpu(), labels=labels.cpu(),
                    losses={k: v.detach().cpu() for k, v in losses.items()}, model=model_state(model))
    term = next((k for k in bad if k != "total"), bad[0])
    raise TrainingError(f"non-finite loss term '{term}' ({losses[term].item()}) at iteration {iteration}; "
                        f"batch, losses and weights saved to {dump} for inspection")


def _read_manifest(root: str | Path) -> dict[str, Any]:
    return read_json_or_none(Path(root) / "manifest.json", remedy=f"delete {root} and run `bemseg prepare` again")


def resolve_recipe(model: SegmentationModel, overrides: Mapping[str, Any]) -> Recipe:
    """The model's default recipe with the run config's `train.recipe` fields applied."""
    return model.recipe.with_overrides(overrides)


def train(config: Mapping[str, Any], out: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Train the run described by `config` into folder `out`; return the training summary."""
    cfg = resolve_run_config(config, overrides)
    out = Path(out)
    with exclusive(out):
        for name in ("checkpoints/last.pt", "model.pt", "train_log.csv", "train_summary.json"):
            discard_temporaries(out / name)
        return _train(cfg, out)


def _train(cfg: dict[str, Any], out: Path) -> dict[str, Any]:
    """`train` once `out` is held by this process."""
    chash = config_hash(cfg)
    summary_path, last_path = out / "train_summary.json", out / "checkpoints" / "last.pt"
    summary = read_json_or_none(summary_path)
    if summary is not None:
        if summary.get("config_hash") != chash:
            raise ConfigError(f"{out} holds a finished run with another config (hash {summary.get('config_hash')}, "
                              f"this one {chash}); use another --out or delete the folder")
        log.info("%s is complete; nothing to do", out)
        return summary

    tcfg, dcfg = cfg["train"], cfg["data"]
    device = resolve_device(tcfg["device"])
    set_threads(tcfg["threads"])
    seed_everything(tcfg["seed"])
    manifest = _read_manifest(dcfg["root"])
    class_names = list(manifest["class_names"])
    model = build_model(cfg, len(class_names), class_names)
    dataset = build_dataset(dcfg["dataset"], dcfg["root"], "train", norm=model.input_norm,
                            crop_size=dcfg["crop_size"], augment=True, resize_scale=dcfg["resize_scale"],
                            ratio_range=tuple(dcfg["ratio_range"]), cat_max_ratio=dcfg["cat_max_ratio"])
    model, channels_last = prepare_model(model, device, tcfg["channels_last"])
    check_contract(model)
    recipe = resolve_recipe(model, tcfg["recipe"])
    model.loss_reduction = recipe.loss_reduction
    precision = resolve_precision(tcfg["precision"], device, tcfg["tf32"])
    model.train()
    optimizer = build_optimizer(model, recipe)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.scaler)
    start, rows, step_times, sessions = 0, [], [], []

    if last_path.is_file():
        state = load_checkpoint(last_path)
        if state.get("config_hash") != chash:
            raise ConfigError(f"{last_path} belongs to a run with another config (hash {state.get('config_hash')}, "
                              f"this one {chash}); use another --out or delete the folder")
        if state.get("recipe") != recipe.as_dict():
            raise ConfigError(f"{last_path} was trained with another recipe than model "
                              f"'{cfg['model']['name']}' now declares; use another --out or delete the folder")
        load_model_state(model, state["model"], last_path)
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])
        start, rows, step_times, sessions = state["iteration"], state["log"], state["step_times"], state["sessions"]
        print(f"bemseg train: resuming {out} from iteration {start} of {tcfg['iterations']} ({last_path})",
              flush=True)

    iterations, log_every = tcfg["iterations"], tcfg["log_every"]
    feeding = loader_options(device, dcfg["num_workers"], dcfg["prefetch_factor"])

    def stream(first: int, last: int) -> DataLoader:
        """Batches `first` to `last` of the run's data stream."""
        return DataLoader(dataset, batch_sampler=StreamSampler(len(dataset), tcfg["batch_size"], tcfg["seed"],
                                                               first, last),
                          worker_init_fn=_worker_init, **feeding,
                          # its own generator: creating the iterator must not draw from the global one,
                          # or a resumed run's dropout would diverge from the uninterrupted run's
                          generator=torch.Generator().manual_seed(tcfg["seed"]))

    def on_device(images: torch.Tensor) -> torch.Tensor:
        images = images.to(device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if channels_last else images

    loader = stream(start, iterations)
    forward = torch.compile(model) if tcfg["compile"] else model  # checkpoints keep the plain module's names
    log.info("training %s on %s (%d samples) for %d iterations on %s in %s with recipe %s", model.describe(),
             dcfg["dataset"], len(dataset), iterations, device, precision.name, recipe.name)
    from tqdm import tqdm

    # iterating through the bar closes it however the loop ends, so an error line never shares its line
    progress = tqdm(loader, total=iterations, initial=start, desc=model.model_name, unit="it", mininterval=2.0,
                    dynamic_ncols=True, leave=False)
    window: dict[str, list[float]] = {}
    tic = time.perf_counter()
    for iteration, (images, labels) in enumerate(progress, start=start + 1):
        images, labels = on_device(images), labels.to(device, non_blocking=True)
        set_lr(optimizer, recipe, iteration - 1, iterations)
        lr = recipe.lr_at(iteration - 1, iterations, recipe.lr)  # the rate of the groups outside the encoder
        with autocast(device, precision):
            losses = forward(images, labels)
        _check_finite(losses, iteration, out, images, labels, model)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["total"]).backward()
        scaler.step(optimizer)
        scaler.update()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        toc = time.perf_counter()
        step_times.append(toc - tic)
        tic = toc
        for key, value in losses.items():
            window.setdefault(key, []).append(float(value.detach()))
        if iteration % log_every == 0 or iteration == iterations:
            row = {"iteration": iteration, "lr": lr, **{k: statistics.fmean(v) for k, v in window.items()},
                   "seconds_per_iter": statistics.fmean(step_times[-len(window["total"]):])}
            rows.append(row)
            window = {}
            progress.set_postfix(loss=f"{row['total']:.4f}", lr=f"{lr:.2e}")
        if iteration % tcfg["checkpoint_every"] == 0 and iteration < iterations:
            save_checkpoint(last_path, kind="resume", iteration=iteration, config=cfg, config_hash=chash,
                            recipe=recipe.as_dict(), model=model_state(model), optimizer=optimizer.state_dict(),
                            scaler=scaler.state_dict(), rng=rng_state(), log=rows, step_times=step_times,
                            sessions=[*sessions, [start, iteration]])
            write_text(out / "train_log.csv", _log_csv(rows))

    if tcfg["bn_recalibration"]:
        with autocast(device, precision):
            recalibrate_batchnorm(model, (on_device(images) for images, _ in
                                          stream(iterations, iterations + tcfg["bn_recalibration"])))
    warm = step_times[tcfg["timing_warmup"]:] or step_times
    seconds_per_iter = statistics.median(warm)
    sessions.append([start, iterations])
    record = provenance(seed=tcfg["seed"], config=cfg, device=device, precision=precision.name,
                        synthetic=bool(manifest.get("synthetic")), weights=model.weights, recipe=recipe.name)
    save_checkpoint(out / "model.pt", kind="final", iteration=iterations, config=cfg, config_hash=chash,
                    num_classes=len(class_names), class_names=class_names, model=model_state(model),
                    frozen_fingerprint=frozen_fingerprint(model), provenance=record)
    write_text(out / "train_log.csv", _log_csv(rows))
    summary = {
        "model": cfg["model"]["name"],
        "dataset": dcfg["dataset"],
        "iterations": iterations,
        "batch_size": tcfg["batch_size"],
        "crop_size": dcfg["crop_size"],
        "recipe": recipe.as_dict(),
        "precision": precision.name,
        "sessions": sessions,
        "seconds_per_iter_median": seconds_per_iter,
        "timed_iterations": len(warm),
        "projected_hours": seconds_per_iter * iterations / 3600.0,
        "peak_memory_mb": peak_memory_mb(device),
        "final_losses": {k: v for k, v in rows[-1].items() if k not in ("iteration", "lr", "seconds_per_iter")},
        "final_checkpoint": str(out / "model.pt"),
        "config_hash": chash,
        "config": cfg,
        "provenance": record,
    }
    if any(not math.isfinite(v) for v in summary["final_losses"].values()):
        raise TrainingError(f"final losses of {out} are not finite: {summary['final_losses']}")
    write_json(summary_path, summary)
    last_path.unlink(missing_ok=True)
    log.info("finished %s: %.3f s/iter, projected %.2f h for %d iterations", model.describe(),
             seconds_per_iter, summary["projected_hours"], iterations)
    return summary
