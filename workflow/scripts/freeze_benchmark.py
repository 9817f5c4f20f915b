from pathlib import Path

from bemseg.atomic import sha256_file, write_json
from bemseg.reports.benchmark import freeze_benchmark
from bemseg.reports.runs import load_complexity, load_runs
from bemseg.workflow.job import run_job


def main() -> None:
    frozen = Path(snakemake.params.frozen)
    written = freeze_benchmark(load_runs(snakemake.input.runs),
                               load_complexity([Path(p) for p in snakemake.input.complexity]),
                               dict(snakemake.params.protocol), frozen, models=snakemake.params.models)
    write_json(snakemake.output.receipt, {"frozen": str(frozen), "sha256": sha256_file(frozen),
                                          "runs": len(written["runs"])})


run_job(snakemake, main)
