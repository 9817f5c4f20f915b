"""What each job asks a scheduler for: memory and wall time per rule, from the workflow config.

The config's `resources` section holds `default` (every rule) and per-rule entries on top of it;
threads and GPUs come from `threads_per_job` and `gpus_per_job`. The rules read these values, so
a profile (`profiles/slurm`) never hard-codes a size and a command line's `--default-resources`
(account, partition) has nothing to replace. Memory is in MB, wall time (`runtime`) in minutes,
as Snakemake and its SLURM executor take them (`--mem`, `--time`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bemseg.errors import ConfigError


def rule_resources(config: Mapping[str, Any], rule: str) -> dict[str, int]:
    """`mem_mb` and `runtime` of the jobs of `rule`: the rule's entry over `default`."""
    sizes = config["resources"]
    return {**sizes["default"], **sizes.get(rule, {})}


def check_rule_names(config: Mapping[str, Any], rules: Iterable[str]) -> None:
    """Every entry of the `resources` section names a rule of the workflow (or is `default`)."""
    known = set(rules)
    for name in config["resources"]:
        if name != "default" and name not in known:
            raise ConfigError(f"config field 'resources.{name}': the workflow has no rule '{name}'; "
                              f"rules: default, {', '.join(sorted(known))}")
