from bemseg.reports.figures import plot_learning_curves
from bemseg.reports.label import report_label
from bemseg.reports.runs import load_runs
from bemseg.workflow.job import run_job


def main() -> None:
    runs = load_runs(snakemake.input.runs)
    plot_learning_curves(runs, list(snakemake.params.models), snakemake.output.png, snakemake.output.pdf,
                         report_label(runs))


run_job(snakemake, main)
