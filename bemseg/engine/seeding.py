"""Seeds and random-number-generator state, so that a resumed run continues bit for bit.

Training randomness has two sources: the model (dropout) draws from torch's global generator,
saved and restored with each checkpoint; data augmentation draws from a generator seeded per
sample from (run seed, stream position), so it depends neither on worker processes nor on where a
run was interrupted.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sample_seed(seed: int, position: int) -> int:
    """A 63-bit seed for the augmentation of the sample at `position` of the data stream."""
    return int(np.random.SeedSequence([seed, position]).generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)


def rng_state() -> dict[str, Any]:
    """Every global generator's state, in types that `torch.load(weights_only=True)` accepts."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
