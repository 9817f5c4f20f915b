import json
from pathlib import Path

from bemseg.reports.class_shares import plot_class_shares
from bemseg.workflow.job import run_job


def main() -> None:
    manifests = {name: json.loads((Path(folder) / "manifest.json").read_text())
                 for name, folder in snakemake.input.items()}
    plot_class_shares(manifests, snakemake.output.png, snakemake.output.pdf, label=snakemake.params.label)


run_job(snakemake, main)
