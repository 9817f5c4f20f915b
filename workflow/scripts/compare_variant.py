from pathlib import Path

from bemseg.reports.benchmark import compare_variant, load_frozen
from bemseg.reports.runs import load_complexity, load_runs
from bemseg.workflow.job import run_job


def main() -> None:
    variant = snakemake.wildcards.variant
    complexity = load_complexity([Path(snakemake.input.complexity)])
    compare_variant(variant, load_runs(snakemake.input.runs), load_frozen(Path(snakemake.input.frozen)),
                    dict(snakemake.params.protocol), Path(snakemake.output[0]), complexity)


run_job(snakemake, main)
