"""Running on SLURM: job sizes from the config, the shipped profile, the check before submission, and the real thing.

The end-to-end test stands up a single-node SLURM cluster on 127.0.0.1 (tests/slurm_cluster.py), runs the
README's cluster command on the tiny config through `profiles/slurm` as shipped, and compares every metric
with the local run of the same config. Without SLURM's programs it is skipped, unless BEMSEG_REQUIRE_SLURM=1
(set by .ci/run) says they must be there: then it fails.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from bemseg.errors import ConfigError
from bemseg.workflow import plan, slurm
from bemseg.workflow.resources import check_rule_names, rule_resources
from tests import slurm_cluster
from tests.workflow_helpers import METRICS_SNAPSHOT, REPO, TEST_CONFIG, config_from, metrics_of, snakemake

SINFO = """\
main*|node1|2|3900|(null)|1:00:00
main*|node2|4|7800|(null)|1:00:00
gpu|gpu1|32|256000|gpu:a100:4(S:0-1)|1-00:00:00
long|node1|2|3900|(null)|infinite
mixed|wide|16|4000|(null)|2:00:00
mixed|deep|2|64000|(null)|2:00:00
"""


def request(rule: str = "train_evaluate", cpus: int = 1, mem_mb: int = 1000, runtime: int = 10, gpus: int = 0,
            partition: str | None = None) -> slurm.Request:
    return slurm.Request(rule, cpus, mem_mb, runtime, gpus, partition)


# -- job sizes come from the workflow config -----------------------------------------------------------------------

def test_job_sizes_are_the_rules_entry_over_the_default():
    config = config_from(TEST_CONFIG)
    assert rule_resources(config, "train_evaluate") == {"mem_mb": 2500, "runtime": 20}
    assert rule_resources(config, "table") == {"mem_mb": 1000, "runtime": 10}
    bare = config_from(TEST_CONFIG, resources={"train_evaluate": {"runtime": 30}})
    assert rule_resources(bare, "train_evaluate") == {"mem_mb": 4000, "runtime": 30}  # schema default memory


def test_sizes_of_the_shipped_configs_fit_their_machines():
    paper = config_from(REPO / "workflow/config/paper.yaml", datasets={}, weights={})
    assert paper["gpus_per_job"] == 1 and rule_resources(paper, "train_evaluate")["runtime"] <= 12 * 60, \
        "a paper training job must fit a 24 h partition with room to spare"
    for name in ("default.yaml", "test.yaml"):  # a 2-CPU node with 4 GB of memory
        config = config_from(REPO / "workflow/config" / name)
        assert config["threads_per_job"] <= 2 and config["gpus_per_job"] == 0
        assert all(rule_resources(config, rule)["mem_mb"] <= 4000 for rule in config["resources"]), name


def test_unknown_rule_names_and_bad_sizes_name_the_field():
    config = config_from(TEST_CONFIG, resources={"train_evalute": {"runtime": 5}})
    with pytest.raises(ConfigError, match=r"config field 'resources\.train_evalute': the workflow has no rule"):
        check_rule_names(config, ["train_evaluate", "prepare"])
    with pytest.raises(ConfigError, match=r"config field 'resources\.prepare\.runtime': 0 is less than the minimum"):
        config_from(TEST_CONFIG, resources={"prepare": {"runtime": 0}})


def test_every_rule_asks_for_its_own_size():
    """Each rule's `rule_resources(config, NAME)` names that rule (a copied line would size it as another)."""
    rules = 0
    for path in sorted((REPO / "workflow/rules").glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", path.read_text(), flags=re.M | re.S):
            if "script:" not in body:
                continue  # a target rule: nothing is submitted
            rules += 1
            assert f'rule_resources(config, "{name}")' in body, f"{path.name}: rule {name}"
    assert rules >= 10


def test_the_slurm_profile_sets_no_sizes_and_reads_job_states_with_squeue():
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-status-command"] == "squeue"
    assert not {"default-resources", "set-resources", "set-threads", "resources"} & set(profile), \
        "a command line's --default-resources (account, partition) would replace these"


# -- the check before submission ----------------------------------------------------------------------------------

def test_sinfo_time_limits_and_gpus_are_read():
    nodes = slurm.parse_sinfo(SINFO)
    assert [(n.partition, n.cpus, n.mem_mb, n.gpus, n.time_limit, n.default) for n in nodes] == [
        ("main", 2, 3900, 0, 60, True), ("main", 4, 7800, 0, 60, True), ("gpu", 32, 256000, 4, 1440, False),
        ("long", 2, 3900, 0, None, False), ("mixed", 16, 4000, 0, 120, False), ("mixed", 2, 64000, 0, 120, False)]
    assert [slurm.minutes(t) for t in ("30", "30:00", "45:30", "2:03:04", "1-00:00:00", "2-12", "UNLIMITED")] == \
        [30, 30, 45, 123, 1440, 3600, None]
    assert [slurm.gpus(g) for g in ("(null)", "gpu:2,mps:100", "mps:100,gpu:tesla:2", "gpu:a:4(S:0),gpu:b:2")] == \
        [0, 2, 2, 6]


def test_jobs_that_fit_a_node_pass():
    nodes = slurm.parse_sinfo(SINFO)
    slurm.check_requests([request(cpus=4, mem_mb=7800, runtime=60), request(partition="long", runtime=10**6),
                          request(cpus=8, mem_mb=32000, gpus=1, runtime=720, partition="gpu")], nodes)


@pytest.mark.parametrize(("job", "message"), [
    (request(cpus=8), "rule train_evaluate asks for 8 CPUs, 1000 MB per job but no node of partition 'main' has "
                      "that much (at most 4 CPUs, 7800 MB, 0 GPUs); lower threads_per_job in the workflow config"),
    (request(mem_mb=300000, partition="gpu", gpus=8), "asks for 1 CPU, 300000 MB, 8 GPUs per job but no node of "
     "partition 'gpu' has that much (at most 32 CPUs, 256000 MB, 4 GPUs); lower resources.train_evaluate.mem_mb or "
     "gpus_per_job"),
    (request(gpus=1), "asks for 1 CPU, 1000 MB, 1 GPU per job but no node of partition 'main'"),
    (request(cpus=8, mem_mb=32000, rule="complexity", partition="mixed"),  # each fits a node, not both one
     "(at most 16 CPUs, 64000 MB, 0 GPUs); lower threads_per_job or resources.complexity.mem_mb or gpus_per_job"),
    (request(runtime=1800), "rule train_evaluate asks for 1800 min per job but partition 'main' allows 60 min; "
                            "lower resources.train_evaluate.runtime"),
    (request(partition="gpus"), "partition 'gpus' does not exist on this cluster (sinfo lists gpu, long, main, mixed)"),
])
def test_jobs_that_could_never_start_are_named_in_one_line(job, message):
    with pytest.raises(slurm.SchedulingError) as err:
        slurm.check_requests([request(), job], slurm.parse_sinfo(SINFO))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_no_partition_and_no_default_partition():
    with pytest.raises(slurm.SchedulingError, match="no partition given and the cluster has no default one"):
        slurm.check_requests([request()], slurm.parse_sinfo(SINFO.replace("main*", "main")))


def test_clusters_whose_job_states_squeue_cannot_see():
    slurm.check_job_states("AccountingStorageType   = accounting_storage/none\nMinJobAge               = 300 sec\n")
    slurm.check_job_states("AccountingStorageType   = accounting_storage/slurmdbd\nMinJobAge               = 30 sec\n")
    with pytest.raises(slurm.SchedulingError, match="forgets finished jobs after MinJobAge=120 s"):
        slurm.check_job_states("AccountingStorageType   = accounting_storage/none\nMinJobAge               = 120 sec\n")


def test_preflight_reads_snakemakes_jobs():
    resources = {"mem_mb": 2500, "runtime": 20, "gpu": 0, "slurm_partition": "main"}
    job = SimpleNamespace(rule=SimpleNamespace(name="train_evaluate"), threads=1, resources=resources)
    answers = {"sinfo": SINFO, "scontrol": "MinJobAge = 300 sec\n"}
    slurm.preflight([job], query=lambda command: answers[command[0]])
    job.resources = {**resources, "mem_mb": 10**6}
    with pytest.raises(slurm.SchedulingError, match="asks for 1 CPU, 1000000 MB"):
        slurm.preflight([job], query=lambda command: answers[command[0]])


# -- the real thing: a local SLURM cluster --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A single-node SLURM cluster on 127.0.0.1, stopped (exactly the daemons it started) after the module."""
    reason = slurm_cluster.unavailable()
    if reason:
        if os.environ.get("BEMSEG_REQUIRE_SLURM") == "1":
            pytest.fail(f"BEMSEG_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("slurm")
    try:
        yield slurm_cluster.start(folder)
    finally:
        slurm_cluster.stop(folder)


def readme_cluster_command() -> list[str]:
    """The README's command under "On a cluster", as words."""
    section = (REPO / "README.md").read_text().split("## On a cluster", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return shlex.split(block.replace("\\\n", " "))


def slurm_snakemake(workdir: Path, words: list[str]) -> tuple[str, int]:
    """Run `snakemake ...` words (as typed in the repository, nothing added) in `workdir`; output and exit status."""
    assert words[0] == "snakemake"
    args = [str(REPO / w) if w.startswith(("profiles/", "workflow/config/")) else w for w in words[1:]]
    config = Path(args.pop(args.index("--configfile") + 1))
    args.remove("--configfile")
    result = snakemake(workdir, *args, config=config, check=False, cores=None)
    return result.stdout + result.stderr, result.returncode


@pytest.mark.slow
def test_readme_cluster_command_runs_the_test_config_as_shipped(cluster, dag, tmp_path):
    words = readme_cluster_command()
    assert "--workflow-profile" in words and "profiles/slurm" in words
    given = {"slurm_account=ACCOUNT": "slurm_account=ci_account", "slurm_partition=PARTITION": "slurm_partition=bemseg",
             "workflow/config/paper.yaml": str(TEST_CONFIG)}
    assert set(given) <= set(words), words
    output, code = slurm_snakemake(tmp_path, [given.get(w, w) for w in words])
    assert code == 0, output[-6000:]
    config = config_from(TEST_CONFIG)
    local = json.loads((dag / METRICS_SNAPSHOT).read_text())  # metrics.json holds the confusion matrix too
    assert len(local) == len(plan.reference_runs(config))
    assert metrics_of(tmp_path) == local, "SLURM and local runs of the same config differ"
    jobs = cluster.completed_jobs()
    assert jobs and all(j["JobState"] == "COMPLETED" for j in jobs), jobs
    assert {(j["Partition"], j["Account"]) for j in jobs} == {("bemseg", "ci_account")}
    sizes = {(rule_resources(config, r)["runtime"], f"mem={rule_resources(config, r)['mem_mb']}M")
             for r in ("train_evaluate", "complexity", "prepare", "table")}
    assert {(int(j["TimeLimit"]), re.search(r"mem=\d+M", j["Tres"]).group()) for j in jobs} == sizes


@pytest.mark.slow
def test_a_job_no_node_can_hold_fails_before_anything_is_submitted(cluster, tmp_path):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["resources"]["train_evaluate"]["mem_mb"] = 10**7
    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump(config))
    before = len(cluster.completed_jobs())
    output, code = slurm_snakemake(tmp_path, ["snakemake", "--workflow-profile", "profiles/slurm", "reproduce_tables",
                                              "--configfile", str(big)])
    assert code != 0
    assert "bemseg: error: rule train_evaluate asks for 1 CPU, 10000000 MB per job but no node of partition " \
           "'main' has that much" in output, output[-3000:]
    assert len(cluster.completed_jobs()) == before and not cluster.run("squeue", "--noheader").strip()
