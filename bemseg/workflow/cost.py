"""What a workflow is about to cost, said before it starts: training runs, iterations, projected GPU-hours.

The Snakefile's `onstart` passes the training jobs Snakemake is about to run (the train_evaluate
jobs that `snakemake -n` counts); `python -m bemseg.workflow.cost CONFIG` states the same for a
config's whole plan without running anything (data and weights need not be there yet). Each run's
iterations come from its engine config; its speed from the config's `cost.seconds_per_iter` (by
model, or `default`), else the paper's own: its training hours for 80,000 iterations on one RTX
3090 (Tables 3 and 6), BEMSeg's for a model the paper does not time. Training only: evaluation
is not counted.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bemseg.config import load_yaml, resolve_run_config
from bemseg.errors import BemsegError
from bemseg.workflow import plan
from bemseg.workflow.config import load_schema, resolve_workflow_config
from bemseg.workflow.resources import rule_resources

#: The paper's training hours are for this many iterations (section 4.1.3), on one RTX 3090.
PAPER_ITERATIONS = 80_000
#: The model whose paper speed stands in for models the paper does not time.
SLOWEST_TIMED = "bemseg"


@dataclass(frozen=True)
class Speed:
    """Seconds per training iteration of one model, and where the number comes from."""

    seconds_per_iter: float
    source: str


@dataclass(frozen=True)
class RunCost:
    """One training run's share of the cost."""

    model: str
    iterations: int
    speed: Speed

    @property
    def hours(self) -> float:
        return self.iterations * self.speed.seconds_per_iter / 3600


@dataclass(frozen=True)
class Cost:
    """The training runs about to start, with the GPUs and wall time each job asks for."""

    runs: list[RunCost]
    gpus_per_run: int
    runtime_minutes: int

    @property
    def iterations(self) -> int:
        return sum(r.iterations for r in self.runs)

    @property
    def hours(self) -> float:
        """Projected hours of training summed over runs (one device per run)."""
        return sum(r.hours for r in self.runs)


def paper_speeds(paper_folder: str | Path) -> dict[str, Speed]:
    """Each model the paper times: its training hours (Table 3, else Table 6) over 80k iterations."""
    from bemseg.reports.paper import load_paper

    paper = load_paper(paper_folder)
    speeds = {}
    for table in ("table6", "table3"):
        for model in paper.models(table):
            hours = paper.value(table, model, "train_hours")
            if hours == hours:  # not NaN
                speeds[model] = Speed(hours * 3600 / PAPER_ITERATIONS,
                                      f"paper: {hours:g} h / 80k iterations, one RTX 3090 (Table {table[5:]})")
    return speeds


def model_speed(config: Mapping[str, Any], model: str, paper: Mapping[str, Speed]) -> Speed:
    """The config's seconds per iteration for `model` (or its `default`), else the paper's."""
    given = config["cost"]["seconds_per_iter"]
    origin = f"config cost.seconds_per_iter{': ' + config['cost']['source'] if config['cost']['source'] else ''}"
    if model in given:
        return Speed(float(given[model]), origin)
    if "default" in given:
        return Speed(float(given["default"]), origin)
    if model in paper:
        return paper[model]
    stand_in = paper[SLOWEST_TIMED]
    return Speed(stand_in.seconds_per_iter, f"not timed by the paper; {SLOWEST_TIMED}'s {stand_in.source}")


def estimate(config: Mapping[str, Any], runs: Iterable[plan.RunSpec], paper_folder: str | Path) -> Cost:
    """The cost of training `runs` under `config` (a resolved workflow config)."""
    paper = paper_speeds(paper_folder)
    costs = []
    for spec in runs:
        engine = resolve_run_config(plan.run_config(dict(config), spec.dataset, spec.run, spec.seed), check_paths=False)
        model = engine["model"]["name"]
        costs.append(RunCost(model, engine["train"]["iterations"], model_speed(config, model, paper)))
    return Cost(costs, config["gpus_per_job"], rule_resources(config, "train_evaluate")["runtime"])


def duration(hours: float) -> str:
    """Hours as `1,218.9 h`, `3.5 min` or `12 s`."""
    if hours >= 1:
        return f"{hours:,.1f} h"
    return f"{hours * 60:.1f} min" if hours * 60 >= 1 else f"{hours * 3600:.0f} s"


def statement(cost: Cost) -> str:
    """The lines printed before the workflow starts (each prefixed `bemseg:`)."""
    if not cost.runs:
        return "bemseg: cost: no training run to do"
    iterations = {r.iterations for r in cost.runs}
    each = f"{iterations.pop():,} iterations each, " if len(iterations) == 1 else ""
    longest = max(r.hours for r in cost.runs)
    if cost.gpus_per_run:
        device = f"{cost.gpus_per_run} GPU{'s' * (cost.gpus_per_run > 1)} per run"
        total = f"{cost.hours * cost.gpus_per_run:,.1f} GPU-hours"
    else:
        device, total = "on CPUs (gpus_per_job: 0)", duration(cost.hours)
    lines = [f"cost: {len(cost.runs)} training runs, {each}{cost.iterations:,} iterations in all, {device}",
             f"projected {total} of training (evaluation not counted); the longest run {duration(longest)}",
             f"{'model':16s} {'runs':>5s} {'s/iter':>8s} {'per run':>9s}  speed from"]
    for model, count in Counter(r.model for r in cost.runs).items():
        run = next(r for r in cost.runs if r.model == model)
        lines.append(f"{model:16s} {count:5d} {run.speed.seconds_per_iter:8.3f} {duration(run.hours):>9s}  "
                     f"{run.speed.source}")
    if longest * 60 > cost.runtime_minutes:
        lines.append(f"note: a run needs up to {duration(longest)} but a training job asks for "
                     f"{duration(cost.runtime_minutes / 60)} (resources.train_evaluate.runtime); one that reaches "
                     "its limit resumes from its last checkpoint when resubmitted (profiles/slurm: retries)")
    return "\n".join(f"bemseg: {line}" for line in lines)


def announce(config: Mapping[str, Any], jobs: Iterable[Any], paper_folder: str | Path) -> str:
    """The statement for the train_evaluate jobs among Snakemake's jobs about to run (`workflow.dag.needrun_jobs()`)."""
    runs = [plan.RunSpec(j.wildcards.dataset, j.wildcards.run, int(j.wildcards.seed), "")
            for j in jobs if j.rule.name == "train_evaluate"]
    return statement(estimate(config, runs, paper_folder))


def plan_config(path: str | Path) -> dict[str, Any]:
    """A workflow config resolved for planning only: its data and weight files need not exist yet."""
    raw = load_yaml(path)
    for spec in (raw.get("datasets") or {}).values():
        if isinstance(spec, dict):
            spec["archives"] = None
    raw["weights"] = {}
    return resolve_workflow_config(raw, load_schema("workflow/schemas/config.schema.yaml"))


def main(argv: list[str] | None = None) -> None:
    """`python -m bemseg.workflow.cost CONFIG`: the cost of a config's whole reproduce_tables plan."""
    parser = argparse.ArgumentParser(description="The projected cost of a workflow config's training runs "
                                                 "(run from the repository root).")
    parser.add_argument("configfile", type=Path, help="a workflow config, e.g. workflow/config/paper.yaml")
    args = parser.parse_args(argv)
    try:
        config = plan_config(args.configfile)
        print(statement(estimate(config, plan.reference_runs(config), "results/paper")))
    except BemsegError as err:
        sys.exit(f"bemseg: error: {err}")


if __name__ == "__main__":
    main()
