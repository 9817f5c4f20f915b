"""The cost statement made before a workflow starts (bemseg.workflow.cost), against `snakemake -n`'s job count."""

from __future__ import annotations

import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from bemseg.workflow import cost, plan
from tests.workflow_helpers import REPO, RUN_OUTPUT, TEST_CONFIG, snakemake

PAPER_CONFIG = REPO / "workflow/config/paper.yaml"
PAPER_NUMBERS = REPO / "results/paper"


def dry_run_count(output: str, rule: str = "train_evaluate") -> int:
    """The count of `rule` in the job stats table Snakemake prints."""
    found = re.search(rf"^{rule}\s+(\d+)\s*$", output, flags=re.M)
    assert found, output[-3000:]
    return int(found.group(1))


def stated_runs(output: str) -> int:
    found = re.search(r"^bemseg: cost: (\d+) training runs", output, flags=re.M)
    assert found, output[-3000:]
    return int(found.group(1))


def test_the_paper_protocol_at_the_papers_speed():
    config = cost.plan_config(PAPER_CONFIG)
    estimate = cost.estimate(config, plan.reference_runs(config), PAPER_NUMBERS)
    # 6 models x 3 datasets + BEMSeg-B/C x 2 datasets + 13 lambda points off the main run, 3 seeds each
    assert len(estimate.runs) == 105 and estimate.iterations == 105 * 80_000
    hours = {"pspnet": 4.2, "deeplabv3plus": 4.5, "semantic_fpn": 4.5, "clip_fpn": 10.2, "denseclip": 11.7,
             "bemseg": 15.5, "bemseg_b": 12.0, "bemseg_c": 14.5}
    expected = 3 * (3 * sum(hours[m] for m in ("pspnet", "deeplabv3plus", "semantic_fpn", "clip_fpn", "denseclip",
                                                "bemseg"))
                    + 2 * (hours["bemseg_b"] + hours["bemseg_c"]) + 13 * hours["bemseg"])
    assert estimate.hours == pytest.approx(expected) and round(expected, 1) == 1218.9
    text = cost.statement(estimate)
    assert "bemseg: cost: 105 training runs, 80,000 iterations each, 8,400,000 iterations in all, 1 GPU per run" in text
    assert "projected 1,218.9 GPU-hours of training" in text
    assert "paper: 15.5 h / 80k iterations, one RTX 3090 (Table 3)" in text
    assert "resources.train_evaluate.runtime" in text, "a 15.5 h run in a 12 h job must be pointed out"


def test_configured_speeds_come_before_the_papers():
    config = cost.plan_config(TEST_CONFIG)
    config["cost"] = {"seconds_per_iter": {"bemseg": 3.0, "default": 1.0}, "source": "A100, gpu_step.py"}
    paper = cost.paper_speeds(PAPER_NUMBERS)
    assert cost.model_speed(config, "bemseg", paper) == cost.Speed(3.0, "config cost.seconds_per_iter: A100, "
                                                                        "gpu_step.py")
    assert cost.model_speed(config, "pspnet", paper).seconds_per_iter == 1.0
    config["cost"] = {"seconds_per_iter": {}, "source": None}
    assert cost.model_speed(config, "pspnet", paper).seconds_per_iter == pytest.approx(4.2 * 3600 / 80_000)
    segclip = cost.model_speed(config, "segclip", paper)  # not timed by the paper: BEMSeg's speed
    assert segclip.seconds_per_iter == pytest.approx(15.5 * 3600 / 80_000)
    assert "not timed by the paper" in segclip.source


def test_only_training_jobs_about_to_run_are_counted():
    config = cost.plan_config(TEST_CONFIG)

    def job(rule: str, **wildcards: str) -> SimpleNamespace:
        return SimpleNamespace(rule=SimpleNamespace(name=rule), wildcards=SimpleNamespace(**wildcards))

    jobs = [job("train_evaluate", dataset="potsdam", run="bemseg", seed="0"),
            job("train_evaluate", dataset="potsdam", run="bemseg/l1_1_l2_0.2", seed="1"),
            job("prepare", dataset="potsdam")]
    text = cost.announce(config, jobs, PAPER_NUMBERS)
    assert "bemseg: cost: 2 training runs, 2 iterations each, 4 iterations in all, on CPUs" in text
    assert cost.announce(config, [], PAPER_NUMBERS) == "bemseg: cost: no training run to do"


@pytest.mark.slow
def test_statement_comes_before_the_first_job_and_matches_the_dry_run(dag, tmp_path):
    dry = snakemake(tmp_path, "reproduce_tables", "--dry-run")
    expected = dry_run_count(dry.stdout + dry.stderr)
    output = (dag / RUN_OUTPUT).read_text()
    assert stated_runs(output) == expected == len(plan.reference_runs(cost.plan_config(TEST_CONFIG)))
    assert output.index("bemseg: cost:") < output.index("rule synthesize:"), "the statement came after a job started"


def test_paper_config_statement_matches_its_dry_run(tmp_path):
    config = yaml.safe_load(PAPER_CONFIG.read_text())
    for dataset in config["datasets"].values():  # the dry run needs the data folders and weight files to exist
        (tmp_path / dataset["archives"]).mkdir(parents=True)
    for weights in config["weights"].values():
        (tmp_path / weights).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / weights).write_bytes(b"")
    dry = snakemake(tmp_path, "reproduce_tables", "--dry-run", config=PAPER_CONFIG)
    stated = subprocess.run([sys.executable, "-m", "bemseg.workflow.cost", str(PAPER_CONFIG)], capture_output=True,
                            text=True, cwd=REPO, check=True).stdout
    assert stated_runs(stated) == dry_run_count(dry.stdout + dry.stderr) == 105


def test_cost_command_names_a_missing_config_file():
    result = subprocess.run([sys.executable, "-m", "bemseg.workflow.cost", "nowhere.yaml"], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode != 0 and "bemseg: error: config file nowhere.yaml does not exist" in result.stderr
    assert "Traceback" not in result.stderr
