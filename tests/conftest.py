"""Shared fixtures: the repository root, and the real samples in ../shared (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The folder of real LoveDA, Potsdam and Vaihingen samples; the test is skipped without it."""
    root = REPO.parent / "shared" / "realdata"
    if not root.is_dir():
        pytest.skip("../shared/realdata is not present (real samples are only on developer machines)")
    return root
