# Helpers shared by the rules: where logs and timings go, the checkpoint policy, what figures show, job sizes
# (`resources: **rule_resources(config, "RULE")`: memory and wall time from the config's `resources` section).

from bemseg.workflow.config import config_label, protocol
from bemseg.workflow.resources import rule_resources


wildcard_constraints:
    dataset="potsdam|vaihingen|loveda",
    run=plan.RUN_ID_PATTERN,
    seed=r"\d+",
    model=r"[A-Za-z0-9_]+",
    variant=r"[A-Za-z0-9_]+",


def log_path(name):
    """A rule's log file; the rules' wildcards fill it in."""
    return f"results/logs/{name}.log"


def timing_path(name):
    """A rule's Snakemake benchmark file (wall time, memory)."""
    return f"results/benchmarks/{name}.tsv"


def checkpoint_output(path):
    """model.pt is kept, or deleted once evaluated (keep_checkpoints: false)."""
    return path if config["keep_checkpoints"] else temp(path)


def figure_dataset(preferred):
    """The paper's dataset for a figure, or the first comparison dataset when it is not configured."""
    datasets = config["comparison"]["datasets"]
    return preferred if preferred in datasets else datasets[0]


def run_files(specs):
    """The per-run files a collection rule reads."""
    return {
        "summaries": [f"{s.folder}/train_summary.json" for s in specs],
        "metrics": [f"{s.folder}/eval/metrics.json" for s in specs],
    }


workflow_label = config_label(config)
