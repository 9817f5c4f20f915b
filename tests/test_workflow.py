"""The Snakemake workflow: config checks before any job, the plan of runs, and the whole DAG on the tiny config."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.cli import parse_config
from snakemake.utils import update_config

from bemseg.errors import ConfigError
from bemseg.workflow import plan
from bemseg.workflow.config import protocol, resolve_workflow_config
from tests.workflow_helpers import REPO, SCHEMA, TEST_CONFIG, config_from, snakemake, snakemake_command


@pytest.mark.parametrize(("changes", "field"), [
    ({"comparison": {"models": ["pspnet", "bemsg"]}}, "config field 'comparison.models[1]': unknown model 'bemsg'"),
    ({"comparison": {"datasets": ["potsdam", "isaid"]}}, "config field 'comparison.datasets.1'"),
    ({"lambda_study": {"lambda2_values": [0.2, 1.5]}}, "config field 'lambda_study.lambda2_values.1': 1.5 is greater"),
    ({"lambda_study": {"model": "nope"}}, "config field 'lambda_study.model': unknown model 'nope'"),
    ({"seeds": []}, "config field 'seeds'"),
    ({"weights": {"clip": "/nowhere/RN50.pt"}},
     "config field 'weights.clip': weight file RN50.pt not found (looked in /nowhere); expected sha256 afeb0e10"),
])
def test_bad_workflow_configs_name_the_field(changes, field):
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config.update(changes)
    with pytest.raises(ConfigError) as err:
        resolve_workflow_config(config, SCHEMA)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_bad_config_is_rejected_before_any_job_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["lambda_study"]["lambda1_values"] = [0.4, -0.1]
    bad.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "reproduce_tables", config=bad, check=False)
    assert result.returncode != 0
    assert "bemseg: error: config field 'lambda_study.lambda1_values.1': -0.1 is less than the minimum of 0" in \
        result.stderr
    assert not (tmp_path / "results").exists()


def test_config_overrides_mean_what_they_would_in_a_config_file(tmp_path):
    result = snakemake(tmp_path, "-n", "reproduce_tables", "--config", "seeds=[0]")
    assert "train_evaluate" in result.stdout + result.stderr
    entries = ["seeds=[0, 2]", "weights={clip: null}", "datasets={potsdam: {only: [2_10]}}",
               "run={train: {iterations: 3, recipe: {lr: 1e-4}}}",
               "lambda_study={lambda1_fixed: 0.6, lambda2_values: [0.2]}"]
    config = yaml.safe_load(TEST_CONFIG.read_text())
    overrides = parse_config(entries)  # Snakemake's own reading of --config: nested values stay strings
    assert overrides["seeds"] == ["0", "2"]
    update_config(config, overrides)
    resolved = resolve_workflow_config(config, SCHEMA, overrides)
    assert resolved["seeds"] == [0, 2] and resolved["weights"]["clip"] is None
    assert resolved["datasets"]["potsdam"]["only"] == ["2_10"]
    assert resolved["run"]["train"] == {"iterations": 3, "recipe": {"warmup_iters": 1, "lr": 1e-4}, "batch_size": 2,
                                        "checkpoint_every": 1000, "log_every": 1, "timing_warmup": 1}
    assert resolved["lambda_study"]["lambda1_fixed"] == 0.6

    bad = "lambda_study={lambda1_fixed: 0.4, lambda2_values: [0.0, 1.5]}"
    with pytest.raises(ConfigError, match=r"^config field 'lambda_study.lambda2_values.1': 1.5 is greater than"):
        resolve_workflow_config(config, SCHEMA, parse_config([bad]))


def test_plan_of_the_default_and_paper_configs():
    default = config_from(REPO / "workflow/config/default.yaml")
    specs = plan.reference_runs(default)
    keys = {(s.dataset, s.run, s.seed) for s in specs}
    assert len(keys) == len(specs), "a run is planned twice"
    seeds = len(default["seeds"])
    # 6 comparison models x 3 datasets, + bemseg_b/c on 2 datasets, + 4 lambda points off the default point
    assert len(specs) == seeds * (6 * 3 + 2 * 2 + 4)
    assert ("potsdam", "bemseg/l1_0.4_l2_0", 0) in keys and ("potsdam", "bemseg/l1_0.4_l2_0.2", 0) not in keys
    config = plan.run_config(default, "potsdam", "bemseg/l1_1_l2_0.2", 1)
    assert config["model"] == {"name": "bemseg", "pretrained": None, "options": {"lambda1": 1.0, "lambda2": 0.2}}
    assert config["train"]["seed"] == 1 and config["data"]["root"] == "results/prepared/potsdam"
    # the frozen benchmark and the variants measured against it: more seeds than the tables, reference models only
    frozen = plan.benchmark_seeds(default)
    assert len(frozen) == 5 and set(default["seeds"]) < set(frozen)
    runs = plan.benchmark_runs(default)
    assert len(runs) == len(frozen) * (6 * 3 + 2 * 2) and {s.study for s in runs} == {"main"}
    assert {s.run for s in runs} == set(plan.benchmark_models(default))
    assert {(s.dataset, s.seed) for s in plan.variant_runs(default, "segclip")} == {
        (d, seed) for d in default["comparison"]["datasets"] for seed in frozen}

    paper = config_from(REPO / "workflow/config/paper.yaml", datasets={}, weights={})
    assert paper["run"]["train"]["iterations"] == 80000 and paper["run"]["train"]["batch_size"] == 4
    assert paper["run"]["data"]["crop_size"] == 512 and paper["seeds"] == [0, 1, 2]
    assert paper["run"]["eval"] == {"window": 512, "stride": 341, "ms": True, "batch_size": 8, "fps_repeats": 50,
                                    "num_figures": 4}
    assert "resize_scale" not in paper["run"]["data"], "paper.yaml must not inherit the embedded default's sizes"


def test_weights_reach_the_models_of_their_family(tmp_path):
    clip, imagenet = tmp_path / "RN50.pt", tmp_path / "r50.pth"
    clip.write_bytes(b"x")
    imagenet.write_bytes(b"y")
    config = config_from(TEST_CONFIG, weights={"clip": str(clip), "imagenet": str(imagenet)})
    assert plan.run_config(config, "potsdam", "bemseg", 0)["model"]["pretrained"] == str(clip)
    assert plan.run_config(config, "potsdam", "semantic_fpn", 0)["model"]["pretrained"] == str(imagenet)


def test_protocol_ignores_models_but_not_settings():
    base = config_from(TEST_CONFIG)
    assert protocol(base) == protocol(config_from(TEST_CONFIG, variants=["segclip"]))
    changed = config_from(TEST_CONFIG, seeds=[0, 1, 2])
    assert protocol(changed)["hash"] != protocol(base)["hash"]
    # the benchmark's seeds are what a comparison shares; the tables' seeds then no longer matter
    frozen = config_from(TEST_CONFIG, benchmark={"seeds": [0, 1, 2]})
    assert protocol(frozen)["settings"]["seeds"] == [0, 1, 2] and protocol(frozen)["hash"] != protocol(base)["hash"]
    assert protocol(config_from(TEST_CONFIG, seeds=[0], benchmark={"seeds": [0, 1, 2]})) == protocol(frozen)


def test_the_committed_embedded_benchmark_is_the_embedded_default_and_every_run_learns():
    """results/frozen/embedded.json: made under default.yaml as shipped, every planned run, each >= 3x chance."""
    default = config_from(REPO / "workflow/config/default.yaml")
    frozen = json.loads((REPO / default["benchmark"]["frozen"]).read_text())
    assert frozen["protocol"]["hash"] == protocol(default)["hash"], "default.yaml changed: rerun freeze_benchmark"
    planned = {(s.dataset, s.run, s.seed) for s in plan.benchmark_runs(default)}
    assert {(r["dataset"], r["model"], r["seed"]) for r in frozen["runs"]} == planned
    for run in frozen["runs"]:
        labels = np.asarray(run["confusion_matrix"]).sum(axis=1)
        majority = labels.max() / labels.sum() / np.count_nonzero(labels)  # mIoU of always the most frequent class
        assert run["miou"] >= 3 * majority, (run["dataset"], run["model"], run["seed"], run["miou"], majority)


#: One run of one model on one dataset: a workflow that is quick to start, kill and start again.
ONE_RUN = {
    "datasets": {"potsdam": {}, "vaihingen": {}, "loveda": {}},
    "synthetic": {"tiles": 1, "tile_size": 64},
    "prepare": {"patch_size": 32},
    "seeds": [0],
    "comparison": {"models": ["semantic_fpn"], "datasets": ["potsdam"]},
    "ablation": {"models": ["semantic_fpn"], "datasets": ["potsdam"]},
    "lambda_study": {"model": "semantic_fpn", "dataset": "potsdam", "lambda2_values": [0.2], "lambda1_values": [0.4]},
    "run": {"data": {"crop_size": 32, "resize_scale": 32},
            "train": {"iterations": 30, "batch_size": 2, "recipe": {"warmup_iters": 1}, "checkpoint_every": 1000,
                      "log_every": 1, "timing_warmup": 1},
            "eval": {"window": 32, "stride": 32, "fps_repeats": 0, "num_figures": 1}},
    "complexity": {"extra_models": []},
    "threads_per_job": 1,
}


@pytest.mark.slow
def test_a_killed_workflow_is_simply_started_again_and_a_second_run_is_refused(tmp_path):
    config = tmp_path / "one_run.yaml"
    config.write_text(yaml.safe_dump(ONE_RUN))
    work = tmp_path / "work"
    command = snakemake_command(work, "results/summary/runs.json", config=config)
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        training = work / "results/logs/train_evaluate/potsdam/semantic_fpn/seed0.log"
        deadline = time.monotonic() + 600
        while not (training.exists() and list((work / ".snakemake/locks").glob("*.lock"))):
            assert first.poll() is None and time.monotonic() < deadline, "the workflow ended before training"
            time.sleep(0.1)
        locks = {p: p.read_text() for p in (work / ".snakemake/locks").glob("*.lock")}

        second = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert second.returncode != 0 and "LockException" in second.stdout + second.stderr, second.stderr[-2000:]
        assert first.poll() is None, "the first run ended while the second was refused: make it train longer"
        assert {p: p.read_text() for p in (work / ".snakemake/locks").glob("*.lock")} == locks, "locks were stolen"

        first.send_signal(signal.SIGKILL)  # the snakemake process only: its training job goes on as an orphan
        first.wait()
        again = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-4000:]
        assert "removed the locks of an interrupted run" in again.stderr
        runs = json.loads((work / "results/summary/runs.json").read_text())
        assert [(r["dataset"], r["model"], r["seed"]) for r in runs] == [("potsdam", "semantic_fpn", 0)]
        assert not list((work / ".snakemake/locks").glob("*.lock"))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)


@pytest.mark.slow
def test_reproduce_tables_makes_every_table_and_figure(dag):
    paths = plan.report_paths()
    for path in paths["tables"] + paths["figures"]:
        assert (dag / path).is_file() and (dag / path).stat().st_size > 0, path
    for table in plan.TABLES:
        assert "synthetic data, random encoders: not comparable to the paper" in (dag / f"reports/tables/{table}.md") \
            .read_text()
    runs = json.loads((dag / "results/summary/runs.json").read_text())
    assert len(runs) == len(plan.reference_runs(config_from(TEST_CONFIG)))
    for record in runs:
        for key in ("seed", "config_hash", "git_commit", "versions", "device"):
            assert key in record["provenance"], key


@pytest.mark.slow
def test_rendered_tables_match_the_results_they_came_from(dag):
    runs = pd.DataFrame(json.loads((dag / "results/summary/runs.json").read_text()))
    runs = runs[runs["study"] == "main"]
    for table_name, dataset in (("table3", "vaihingen"), ("table4", "potsdam"), ("table5", "loveda")):
        table = pd.read_csv(dag / f"reports/tables/{table_name}.csv", comment="#").set_index("model")
        column = "Vaihingen mIoU ours" if table_name == "table3" else "mIoU ours"
        for model, group in runs[runs["dataset"] == dataset].groupby("model"):
            if model not in table.index:
                continue
            scores = 100 * group["miou"]
            expected = f"{scores.mean():.2f} ± {scores.std(ddof=1):.2f} ({len(scores)})"
            assert table.loc[model, column] == expected, (table_name, model)
            paper = table.loc[model, column.replace("ours", "paper")]
            if pd.notna(paper):
                delta = float(table.loc[model, column.replace("ours", "Δ")])
                assert abs(delta - (round(scores.mean(), 2) - float(paper))) < 0.011


@pytest.mark.slow
def test_browsable_report_holds_every_table_and_figure(dag):
    snakemake(dag, "--report", str(dag / "report.html"))
    html = (dag / "report.html").read_text(errors="replace")
    for path in plan.report_paths()["figures"] + plan.report_paths()["tables"]:
        if path.endswith((".png", ".md")):
            assert Path(path).name in html, path


@pytest.mark.slow
def test_second_run_has_nothing_to_do(dag):
    result = snakemake(dag, "reproduce_tables", "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_freeze_then_compare_a_variant_without_rerunning_the_references(dag):
    snakemake(dag, "freeze_benchmark")
    frozen = dag / "results/frozen/test.json"
    assert frozen.is_file()
    reference_metrics = sorted((dag / "results/runs").glob("*/*/seed*/eval/metrics.json"))
    stamps = {p: p.stat().st_mtime_ns for p in reference_metrics}
    shutil.rmtree(dag / "results/runs/potsdam/clip_fpn")  # a reference run the comparison must not need
    result = snakemake(dag, "compare_variants", "--config", "variants=[segclip, bemseg_reinit]")
    assert "rule train_evaluate:" in result.stdout + result.stderr
    report = (dag / "reports/compare/segclip.md").read_text()
    assert "segclip" in report and "clip_fpn" in report and "synthetic data" in report
    # the null control, bemseg from another random draw of its weights, is not told apart from bemseg anywhere
    null = [line for line in (dag / "reports/compare/bemseg_reinit.md").read_text().splitlines()
            if line.startswith("| bemseg | reference |") and line.count("|") == 10]  # the score tables' rows
    assert len(null) == 3 and all(line.endswith("| no detectable difference |") for line in null), null
    assert not (dag / "results/runs/potsdam/clip_fpn").exists(), "compare_variants reran a reference model"
    for path, stamp in stamps.items():
        if path.exists():
            assert path.stat().st_mtime_ns == stamp, f"{path} was rewritten"
    for variant in ("segclip", "bemseg_reinit"):
        trained = {p.parts[-5] for p in (dag / "results/runs").glob(f"*/{variant}/seed*/eval/metrics.json")}
        assert trained == {"potsdam", "vaihingen", "loveda"}


@pytest.mark.slow
def test_broken_variant_is_named_and_references_stay_untouched(dag):
    frozen = dag / "results/frozen/test.json"
    before = frozen.read_bytes() if frozen.exists() else None
    variants = REPO / "variants"
    cases = {
        "broken_import_probe": "import not_a_real_module_at_all\n",
        "broken_shape_probe": (
            "import torch\n"
            "from bemseg.models.clip_segmentor import build_clip_segmentor\n"
            "from bemseg.registry import register_model\n\n\n"
            "@register_model(weights='clip')\n"
            "def broken_shape_probe(num_classes, class_names, pretrained=None, **overrides):\n"
            "    model = build_clip_segmentor('probe', {}, num_classes, class_names, pretrained, overrides)\n"
            "    model.forward_logits = lambda images: torch.zeros(images.shape[0], 2, 3, 3)\n"
            "    return model\n"),
    }
    try:
        for name, source in cases.items():
            (variants / f"{name}.py").write_text(source if "register_model" in source else
                                                 source + "from bemseg.registry import register_model\n\n\n"
                                                 "@register_model\n"
                                                 f"def {name}(num_classes, class_names, pretrained=None):\n"
                                                 "    raise RuntimeError\n")
        for name in cases:
            result = snakemake(dag, "compare_variants", "--config", f"variants=[{name}]", check=False)
            assert result.returncode != 0
            output = result.stdout + result.stderr
            assert f"variants/{name}.py" in output, output[-3000:]
            assert "Traceback" not in (output.split("bemseg: error:")[0] if "bemseg: error:" in output else "")
            assert not (dag / f"reports/compare/{name}.md").exists()
    finally:
        for name in cases:
            (variants / f"{name}.py").unlink(missing_ok=True)
    assert (frozen.read_bytes() if frozen.exists() else None) == before
