"""Before anything is submitted to SLURM: can every job start, and will Snakemake see it finish?

Many clusters accept a job that no node of its partition can hold, or that asks for more time than
the partition allows, and leave it pending for ever (`EnforcePartLimits=NO` is SLURM's default)
while Snakemake waits without a word. And on a cluster without accounting, Snakemake's SLURM
executor learns that a job ended only from `squeue` (profiles/slurm), which lists a finished job
for `MinJobAge` seconds: if that is shorter than the executor's longest pause between two
checks (180 s), a job can end unseen and the workflow waits for ever. `preflight` finds both
from `sinfo` and `scontrol show config` before the first submission and stops with one line.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bemseg.errors import BemsegError

#: sinfo's one line per (partition, node): partition (* = default), node, CPUs, memory MB, GRES, time limit.
SINFO = ["sinfo", "--noheader", "--Node", "--format=%P|%N|%c|%m|%G|%l"]
SCONTROL = ["scontrol", "show", "config"]
#: The SLURM executor's longest pause between two job-state checks (seconds): without accounting, squeue
#: must list a finished job at least this long for the executor to see it end.
STATUS_INTERVAL_MAX = 180


class SchedulingError(BemsegError):
    """A job could never start on this cluster, or its end could never be seen."""


@dataclass(frozen=True)
class Node:
    """One node of one partition, as sinfo lists it."""

    partition: str
    name: str
    cpus: int
    mem_mb: int
    gpus: int
    time_limit: int | None  # minutes; None: no limit
    default: bool


@dataclass(frozen=True)
class Request:
    """What each job of a rule asks SLURM for."""

    rule: str
    cpus: int
    mem_mb: int
    runtime: int  # minutes; 0: not given
    gpus: int
    partition: str | None

    @classmethod
    def of(cls, job: Any) -> Request:
        """The request of a Snakemake job (its threads and resources, as the SLURM executor submits them)."""
        resources = job.resources
        return cls(job.rule.name, int(job.threads), int(resources.get("mem_mb") or 0),
                   int(resources.get("runtime") or 0), int(resources.get("gpu") or 0),
                   resources.get("slurm_partition") or None)

    def describe(self) -> str:
        gpus = f", {self.gpus} GPU{'s' * (self.gpus != 1)}" if self.gpus else ""
        return f"{self.cpus} CPU{'s' * (self.cpus != 1)}, {self.mem_mb} MB{gpus}"


def minutes(limit: str) -> int | None:
    """A SLURM time limit (`infinite`, `MM`, `MM:SS`, `HH:MM:SS`, `D-HH[:MM[:SS]]`) in whole minutes, rounded
    down (a job may ask for no more); None = no limit."""
    if limit.strip().lower() in ("infinite", "unlimited", "n/a"):
        return None
    days, _, clock = limit.strip().rpartition("-")
    fields = [int(f) for f in clock.split(":")]
    if days:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, mins = [*fields, 0][:2]
    else:  # MM, MM:SS, HH:MM:SS
        hours, mins = fields[:2] if len(fields) == 3 else (0, fields[0])
    return (int(days or 0) * 24 + hours) * 60 + mins


def gpus(gres: str) -> int:
    """GPUs in a node's GRES (`gpu:4`, `gpu:a100:4(S:0-1)`, `gpu:2,mps:100`, `(null)`)."""
    return sum(int(count) for count in re.findall(r"(?:^|,)gpu(?::[^:,()]+)?:(\d+)", gres))


def parse_sinfo(text: str) -> list[Node]:
    """The nodes of `sinfo --Node --format=%P|%N|%c|%m|%G|%l` output."""
    nodes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        partition, name, cpus, mem, gres, limit = line.strip().split("|")
        nodes.append(Node(partition.rstrip("*"), name, int(cpus.rstrip("+")), int(mem.rstrip("+")), gpus(gres),
                          minutes(limit), partition.endswith("*")))
    return nodes


def check_requests(requests: Iterable[Request], nodes: list[Node]) -> None:
    """Every request fits some node of its partition, within the partition's time limit (checked by rule name)."""
    partitions = sorted({n.partition for n in nodes})
    default = next((n.partition for n in nodes if n.default), None)
    for request in sorted(set(requests), key=lambda r: (r.rule, r.cpus, r.mem_mb, r.runtime, r.gpus)):
        partition = request.partition or default
        if partition is None:
            raise SchedulingError(f"no partition given and the cluster has no default one; add "
                                  f"--default-resources slurm_partition=NAME (partitions: {', '.join(partitions)})")
        members = [n for n in nodes if n.partition == partition]
        if not members:
            raise SchedulingError(f"partition '{partition}' does not exist on this cluster (sinfo lists "
                                  f"{', '.join(partitions)}); give one of them as --default-resources "
                                  "slurm_partition=NAME")
        if not any(n.cpus >= request.cpus and n.mem_mb >= request.mem_mb and n.gpus >= request.gpus
                   for n in members):
            most = {"cpus": max(n.cpus for n in members), "mem_mb": max(n.mem_mb for n in members),
                    "gpus": max(n.gpus for n in members)}
            fields = {"cpus": "threads_per_job", "mem_mb": f"resources.{request.rule}.mem_mb", "gpus": "gpus_per_job"}
            over = [field for key, field in fields.items() if getattr(request, key) > most[key]]
            over = over or list(fields.values())  # each fits some node, but no node all of them
            raise SchedulingError(
                f"rule {request.rule} asks for {request.describe()} per job but no node of partition '{partition}' "
                f"has that much (at most {most['cpus']} CPUs, {most['mem_mb']} MB, {most['gpus']} GPUs); lower "
                f"{' or '.join(over)} in the workflow config, or choose a partition that fits with "
                "--default-resources slurm_partition=NAME")
        limit = members[0].time_limit
        if limit is not None and request.runtime > limit:
            raise SchedulingError(
                f"rule {request.rule} asks for {request.runtime} min per job but partition '{partition}' allows "
                f"{limit} min; lower resources.{request.rule}.runtime in the workflow config (a training job "
                "that reaches its limit resumes from its checkpoint when resubmitted), or choose another partition")


def check_job_states(scontrol_config: str) -> None:
    """Without accounting, finished jobs must stay visible to squeue long enough for the executor."""
    settings = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", scontrol_config, flags=re.M))
    accounting = settings.get("AccountingStorageType", "")
    age = re.match(r"\d+", settings.get("MinJobAge", ""))
    if accounting.endswith("/none") and age and int(age.group()) < STATUS_INTERVAL_MAX:
        raise SchedulingError(
            f"this cluster has no accounting ({accounting}) and forgets finished jobs after MinJobAge="
            f"{age.group()} s, less than the {STATUS_INTERVAL_MAX} s Snakemake's SLURM executor may wait between "
            f"two squeue checks: a job could end unseen; ask the administrators for MinJobAge >= "
            f"{STATUS_INTERVAL_MAX} in slurm.conf, or for accounting (then add --slurm-status-command sacct)")


def _query(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise SchedulingError(f"`{' '.join(command)}` failed ({err}); run the workflow where SLURM's "
                              "commands work (a login node), or without --workflow-profile profiles/slurm") from None


def preflight(jobs: Iterable[Any], query: Callable[[list[str]], str] = _query) -> None:
    """Check Snakemake's jobs about to be submitted against the cluster; SchedulingError with one line if hopeless."""
    check_job_states(query(SCONTROL))
    check_requests([Request.of(job) for job in jobs], parse_sinfo(query(SINFO)))
