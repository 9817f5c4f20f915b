from pathlib import Path

from bemseg.reports.label import report_label
from bemseg.reports.paper import load_paper
from bemseg.reports.render import write_table
from bemseg.reports.runs import load_complexity, load_runs
from bemseg.reports.tables import TABLES
from bemseg.workflow.job import run_job


def main() -> None:
    runs = load_runs(snakemake.input.runs)
    complexity = load_complexity([Path(p) for p in snakemake.input.complexity])
    paper = load_paper(Path(snakemake.input.paper[0]).parent)
    table = TABLES[snakemake.wildcards.table](runs, complexity, paper, report_label(runs))
    write_table(table, Path(snakemake.output.md).with_suffix(""))


run_job(snakemake, main)
