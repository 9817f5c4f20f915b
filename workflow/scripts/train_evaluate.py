from pathlib import Path

from bemseg.engine.evaluate import evaluate
from bemseg.engine.train import train
from bemseg.workflow.gpu_slot import gpu_slot
from bemseg.workflow.job import run_job


def main() -> None:
    with gpu_slot(snakemake.resources.gpu):  # its own GPU(s) on a multi-GPU machine; CPU-only jobs: untouched
        train(snakemake.params.config, Path(snakemake.output.summary).parent)
        evaluate(snakemake.output.model, Path(snakemake.output.metrics).parent)


run_job(snakemake, main)
