"""Running the repository's Snakemake workflow from the tests, and the tiny-DAG run they share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from bemseg.workflow.config import load_schema, resolve_workflow_config

REPO = Path(__file__).resolve().parent.parent
TEST_CONFIG = REPO / "workflow/config/test.yaml"
SCHEMA = load_schema(REPO / "workflow/schemas/config.schema.yaml")
#: What the shared tiny-DAG run leaves in its folder besides the workflow's outputs.
RUN_OUTPUT, METRICS_SNAPSHOT = "snakemake.out", "metrics.snapshot.json"


def config_from(path: Path, **changes) -> dict:
    """The workflow config file at `path` with top-level `changes`, resolved as the Snakefile resolves it."""
    config = yaml.safe_load(path.read_text())
    config.update(changes)
    return resolve_workflow_config(config, SCHEMA)


def snakemake_command(workdir: Path, *args: str, config: Path = TEST_CONFIG, cores: str | None = "2") -> list[str]:
    """The command line running the repository's workflow in `workdir` (on `cores` local cores; None: not given)."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            *(["--cores", cores] if cores else []), *args, "--configfile", str(config)]


def snakemake(workdir: Path, *args: str, config: Path = TEST_CONFIG, check: bool = True,
              cores: str | None = "2", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the repository's workflow in `workdir` with a config file (on `cores` local cores; None: not given)."""
    command = snakemake_command(workdir, *args, config=config, cores=cores)
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def metrics_of(workdir: Path) -> dict[str, dict]:
    """Every run's eval/metrics.json under `workdir` by run folder, without what differs between two runs of it
    (timing, provenance, and the evaluation cache key, which holds the checkpoint's creation time)."""
    found = {}
    for path in sorted((workdir / "results/runs").glob("**/eval/metrics.json")):
        record = json.loads(path.read_text())
        found[str(path.parent.parent.relative_to(workdir))] = {k: v for k, v in record.items()
                                                               if k not in ("timing", "provenance", "evaluation_key")}
    return found
