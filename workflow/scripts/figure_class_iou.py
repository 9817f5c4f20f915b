from pathlib import Path

from bemseg.reports.figures import plot_class_iou
from bemseg.reports.label import report_label
from bemseg.reports.paper import load_paper
from bemseg.reports.runs import load_runs
from bemseg.workflow.job import run_job


def main() -> None:
    runs = load_runs(snakemake.input.runs)
    paper = load_paper(Path(snakemake.input.paper[0]).parent)
    plot_class_iou(runs, snakemake.params.dataset, snakemake.params.models, paper, snakemake.output.png,
                   snakemake.output.pdf, report_label(runs))


run_job(snakemake, main)
