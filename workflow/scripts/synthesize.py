from bemseg.data.synth import synthesize
from bemseg.workflow.job import run_job

run_job(snakemake, lambda: synthesize(snakemake.wildcards.dataset, snakemake.output[0], **snakemake.params.synthetic))
