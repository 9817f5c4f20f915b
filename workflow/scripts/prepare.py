from bemseg.data.prepare import prepare
from bemseg.workflow.job import run_job

run_job(snakemake, lambda: prepare(snakemake.wildcards.dataset, snakemake.input.raw, snakemake.output[0],
                                   only=snakemake.params.only, **snakemake.params.prepare))
