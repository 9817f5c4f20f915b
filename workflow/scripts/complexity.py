import torch

from bemseg.atomic import write_json
from bemseg.complexity import measure
from bemseg.workflow.job import run_job


def main() -> None:
    if snakemake.threads > 0:
        torch.set_num_threads(snakemake.threads)
    write_json(snakemake.output[0], measure(snakemake.wildcards.model, **snakemake.params.settings))


run_job(snakemake, main)
