"""Shared fixtures: the repository root, the real samples in ../shared (skipped when absent), the tiny-DAG run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.workflow_helpers import METRICS_SNAPSHOT, RUN_OUTPUT, metrics_of, snakemake

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


@pytest.fixture(scope="session")
def dag(tmp_path_factory) -> Path:
    """The whole reproduce_tables DAG run once, locally, on the tiny config (shared by the workflow and SLURM tests).

    Its folder also holds what Snakemake printed (RUN_OUTPUT) and every run's metrics as they were right after
    the run (METRICS_SNAPSHOT), for tests that compare against it after others have added runs.
    """
    workdir = tmp_path_factory.mktemp("dag")
    result = snakemake(workdir, "reproduce_tables")
    (workdir / RUN_OUTPUT).write_text(result.stdout + result.stderr)
    (workdir / METRICS_SNAPSHOT).write_text(json.dumps(metrics_of(workdir)))
    return workdir
