# BEMSeg benchmark suite: the paper's tables and figures from data preparation to reports.
#
#   snakemake --cores all reproduce_tables                      embedded default (synthetic data, random encoders)
#   snakemake --cores all reproduce_tables --configfile workflow/config/paper.yaml     the real reproduction (target first)
#   snakemake --cores all compare_variants --config 'variants=[segclip]'              a new model vs the frozen benchmark
#   snakemake --cores all freeze_benchmark                      regenerate the frozen reference results (explicit)
#   snakemake --workflow-profile profiles/slurm reproduce_tables --configfile workflow/config/paper.yaml   on SLURM
#
# Layout, paths and run ids: bemseg/workflow/plan.py. Config schema: workflow/schemas/config.schema.yaml.
# Job sizes: bemseg/workflow/resources.py. Before the first job: the cost statement (bemseg/workflow/cost.py)
# and, on SLURM, the check that every job can start (bemseg/workflow/slurm.py).

import os

from snakemake.logging import logger

from bemseg.errors import BemsegError
from bemseg.workflow import cost, plan, slurm
from bemseg.workflow.config import load_schema, resolve_workflow_config
from bemseg.workflow.resources import check_rule_names
from bemseg.workflow.stale_locks import release_stale_locks

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# A killed run's locks would stop this one until `snakemake --unlock`; they are removed when no run is alive here.
release_stale_locks(workflow.exec_mode)


# The embedded default, unless a config file is given (a given file is complete: it is not merged with it).
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "workflow/config/default.yaml")


report: "workflow/report/workflow.rst"


try:
    schema = load_schema(os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml"))
    config.update(resolve_workflow_config(config, schema, overrides=workflow.config_settings.config))
except BemsegError as err:
    raise SystemExit(f"bemseg: error: {err}") from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/runs.smk"
include: "workflow/rules/complexity.smk"
include: "workflow/rules/reports.smk"
include: "workflow/rules/benchmark.smk"


try:
    check_rule_names(config, [r.name for r in workflow.rules])
except BemsegError as err:
    raise SystemExit(f"bemseg: error: {err}") from None


onstart:
    try:
        logger.info(cost.announce(config, workflow.dag.needrun_jobs(), os.path.join(workflow.basedir, "results/paper")))
        if workflow.executor_plugin.name == "slurm":
            slurm.preflight(workflow.dag.needrun_jobs())
    except BemsegError as err:
        raise SystemExit(f"bemseg: error: {err}") from None


rule reproduce_tables:
    """Every table (Markdown, LaTeX, CSV) and figure (PNG, PDF) of the paper, ours beside the paper's."""
    input:
        plan.report_paths()["tables"],
        plan.report_paths()["figures"],
    default_target: True
