"""Tiny prepared datasets and run configs shared by the engine and workflow tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bemseg.data.prepare import prepare
from bemseg.data.synth import synthesize


def prepared_potsdam(root: Path, tiles: int = 2, tile_size: int = 128, patch_size: int = 64) -> Path:
    """Synthetic Potsdam written and prepared under `root`; returns the prepared folder."""
    raw = synthesize("potsdam", root / "raw", seed=0, tiles=tiles, tile_size=tile_size)
    out = root / "prepared"
    prepare("potsdam", raw, out, patch_size=patch_size)
    return out


def run_config(prepared: Path, model: str = "semantic_fpn", recipe: dict[str, Any] | None = None,
               **train: Any) -> dict[str, Any]:
    """A run config for a few quick iterations on 32x32 crops (`recipe`: overrides of the model's recipe)."""
    return {
        "model": {"name": model},
        "data": {"dataset": "potsdam", "root": str(prepared), "crop_size": 32, "resize_scale": 64},
        "train": {"iterations": 4, "batch_size": 2, "recipe": {"warmup_iters": 1, **(recipe or {})},
                  "checkpoint_every": 2, "log_every": 1, "timing_warmup": 1, "threads": 1, **train},
        "eval": {"window": 64, "stride": 48, "batch_size": 4, "fps_repeats": 0, "num_figures": 1},
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path
