from pathlib import Path

from bemseg.reports.runs import collect_runs, write_runs
from bemseg.workflow.job import run_job


def main() -> None:
    records = collect_runs([Path(f) for f in snakemake.params.folders], snakemake.params.study,
                           snakemake.params.run_ids)
    write_runs(records, snakemake.output.json, snakemake.output.csv)


run_job(snakemake, main)
