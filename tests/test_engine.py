"""The training and evaluation engine: resume after SIGKILL, learning, bad input, evaluation outputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bemseg.atomic import atomic_path
from bemseg.cli import main
from bemseg.engine import evaluate as evaluate_module
from bemseg.engine import train as train_module
from bemseg.engine.checkpoint import load_checkpoint
from bemseg.engine.evaluate import evaluate
from bemseg.engine.train import TrainingError, train
from bemseg.lock import exclusive
from bemseg.metrics import summarize
from tests.engine_helpers import prepared_potsdam, run_config, write_config
from tests.folders import read_only_folder, small_disk


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return prepared_potsdam(tmp_path_factory.mktemp("potsdam"))


@pytest.fixture(scope="module")
def finished(prepared, tmp_path_factory) -> Path:
    """The final checkpoint of a one-iteration run."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train(run_config(prepared, iterations=1), run)
    return run / "model.pt"


def bemseg_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "bemseg.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output
    return output


@pytest.mark.slow
def test_sigkill_then_rerun_gives_the_uninterrupted_result(prepared, tmp_path):
    config = write_config(tmp_path / "run.yaml", run_config(prepared, iterations=8, checkpoint_every=2))
    finish(bemseg_cli("train", "--config", str(config), "--out", str(tmp_path / "straight")))

    interrupted = tmp_path / "interrupted"
    proc = bemseg_cli("train", "--config", str(config), "--out", str(interrupted))
    deadline = time.monotonic() + 300
    while not (interrupted / "checkpoints" / "last.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (interrupted / "train_summary.json").exists(), "the kill came too late to interrupt training"
    assert not (interrupted / "model.pt").exists()
    checkpointed = load_checkpoint(interrupted / "checkpoints" / "last.pt")["iteration"]

    resumed = finish(bemseg_cli("train", "--config", str(config), "--out", str(interrupted)))
    assert f"bemseg train: resuming {interrupted} from iteration {checkpointed} of 8 (" in resumed
    summary = json.loads((interrupted / "train_summary.json").read_text())
    assert summary["sessions"] == [[0, checkpointed], [checkpointed, 8]], "the rerun must only run what was left"
    assert json.loads((tmp_path / "straight" / "train_summary.json").read_text())["sessions"] == [[0, 8]]
    straight_state = load_checkpoint(tmp_path / "straight" / "model.pt")["model"]
    resumed_state = load_checkpoint(interrupted / "model.pt")["model"]
    assert straight_state.keys() == resumed_state.keys()
    for key, tensor in straight_state.items():
        assert torch.equal(tensor, resumed_state[key]), key
    assert (tmp_path / "straight" / "train_log.csv").read_text().splitlines()[0] == \
        (interrupted / "train_log.csv").read_text().splitlines()[0]

    metrics = [evaluate(run / "model.pt", run / "eval") for run in (tmp_path / "straight", interrupted)]
    assert metrics[0]["confusion_matrix"] == metrics[1]["confusion_matrix"]
    assert metrics[0]["miou"] == metrics[1]["miou"]


def test_an_interrupted_run_resumes_and_runs_only_the_remaining_iterations(prepared, tmp_path, monkeypatch, capsys):
    from baselines.resnet_segmentor import ResNetSegmentor

    config = run_config(prepared, iterations=6, checkpoint_every=2)
    real_save, real_forward = train_module.save_checkpoint, ResNetSegmentor.forward_train
    steps = []

    def save_then_die(path, **content):
        real_save(path, **content)
        if content["kind"] == "resume" and content["iteration"] == 4:
            raise KeyboardInterrupt

    def counting(self, images, labels):
        steps.append(1)
        return real_forward(self, images, labels)

    monkeypatch.setattr(ResNetSegmentor, "forward_train", counting)
    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run")
    assert len(steps) == 4 and not (tmp_path / "run" / "train_summary.json").exists()
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    steps.clear()
    capsys.readouterr()
    summary = train(config, tmp_path / "run")
    assert len(steps) == 2, "a resumed run executes only the iterations after its checkpoint"
    assert summary["sessions"] == [[0, 4], [4, 6]]
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert capsys.readouterr().out.splitlines() == [
        f"bemseg train: resuming {tmp_path / 'run'} from iteration 4 of 6 ({last})"]
    with open(tmp_path / "run" / "train_log.csv") as log:
        assert [int(row["iteration"]) for row in csv.DictReader(log)] == list(range(1, 7))


def test_rerun_of_a_finished_run_does_nothing_and_another_config_is_refused(prepared, tmp_path, capsys):
    config = run_config(prepared, iterations=2)
    first = train(config, tmp_path / "run")
    stamp = (tmp_path / "run" / "model.pt").stat().st_mtime_ns
    again = train(config, tmp_path / "run")
    assert again["config_hash"] == first["config_hash"]
    assert (tmp_path / "run" / "model.pt").stat().st_mtime_ns == stamp
    path = write_config(tmp_path / "other.yaml", run_config(prepared, iterations=3))
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another config" in err


@pytest.mark.slow
def test_semantic_fpn_learns_the_synthetic_potsdam(tmp_path):
    prepared = prepared_potsdam(tmp_path, tiles=2, tile_size=256, patch_size=128)
    config = run_config(prepared, iterations=80, batch_size=4, checkpoint_every=1000, log_every=10, threads=2,
                        recipe={"optimizer": "adamw", "lr": 1e-3, "warmup_iters": 0})
    config["data"].update(crop_size=64, resize_scale=128)
    config["eval"].update(window=128, stride=128)
    train(config, tmp_path / "run")
    metrics = evaluate(tmp_path / "run" / "model.pt", tmp_path / "run" / "eval")
    cm = torch.tensor(metrics["confusion_matrix"])
    majority = torch.zeros_like(cm)
    majority[:, cm.sum(1).argmax()] = cm.sum(1)  # every pixel predicted as the most frequent class
    baseline = summarize(majority)
    assert metrics["oa"] > baseline["oa"] + 0.15
    assert metrics["miou"] > 3 * baseline["miou"], (metrics["miou"], baseline["miou"])


@pytest.mark.parametrize(("change", "expected"), [
    ({"model": {"name": "bemsg"}}, "'model.name': unknown model 'bemsg'; allowed values:"),
    ({"model": {"name": "bemseg", "options": {"lambda2": 1.5}}}, "'model.options.lambda2': 1.5 is greater than"),
    ({"train": {"iterations": -3}}, "'train.iterations': -3 is less than the minimum of 1"),
    ({"data": {"dataset": "potsdam", "root": "/nowhere"}}, "'data.root': /nowhere is not a prepared dataset"),
    ({"data": {"dataset": "isaid", "root": "x"}}, "'data.dataset': \"isaid\" is not allowed; allowed values:"),
    ({"train": {"itrations": 3}}, "'train.itrations': unknown field; known fields here:"),
])
def test_bad_configs_are_one_line_naming_the_field(prepared, tmp_path, capsys, change, expected):
    config = run_config(prepared)
    for section, values in change.items():
        config[section] = values if section != "train" else {**config["train"], **values}
    path = write_config(tmp_path / "bad.yaml", config)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("bemseg: error: config field ") and expected in err, err
    assert not (tmp_path / "run").exists()


def test_corrupt_checkpoints_are_one_line(prepared, tmp_path, capsys):
    broken = tmp_path / "model.pt"
    broken.write_bytes(b"\x80\x04 definitely not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(broken), "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.pt is corrupt or not a bemseg checkpoint" in err
    assert not (tmp_path / "eval" / "metrics.json").exists()

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    path = write_config(tmp_path / "run.yaml", run_config(prepared))
    assert main(["train", "--config", str(path), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "last.pt is corrupt" in err


def test_interrupted_evaluation_leaves_no_metrics(prepared, tmp_path, monkeypatch):
    train(run_config(prepared, iterations=1), tmp_path / "run")
    calls = 0

    def predict_then_die(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    real_predict = evaluate_module.predict_logits
    monkeypatch.setattr(evaluate_module, "predict_logits", predict_then_die)
    with pytest.raises(KeyboardInterrupt):
        evaluate(tmp_path / "run" / "model.pt", tmp_path / "eval")
    assert not (tmp_path / "eval" / "metrics.json").exists()
    monkeypatch.setattr(evaluate_module, "predict_logits", real_predict)
    metrics = evaluate(tmp_path / "run" / "model.pt", tmp_path / "eval")
    assert (tmp_path / "eval" / "metrics.json").exists() and metrics["images"] == 2


def test_interrupted_reevaluation_leaves_the_previous_evaluation_whole(finished, tmp_path, monkeypatch):
    first = evaluate(finished, tmp_path / "eval")
    files = {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "eval").rglob("*")
             if p.is_file()}
    real_predict = evaluate_module.predict_logits
    calls = 0

    def predict_then_die(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:  # the first test image and its figures are done
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "predict_logits", predict_then_die)
    with pytest.raises(KeyboardInterrupt):
        evaluate(finished, tmp_path / "eval", ms=True, overrides=["eval.scales=[1.0]"])
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp_path / "eval").rglob("*")
            if p.is_file()} == files, "the interrupted evaluation changed the previous one"
    monkeypatch.setattr(evaluate_module, "predict_logits", real_predict)
    again = evaluate(finished, tmp_path / "eval", ms=True, overrides=["eval.scales=[1.0]"])
    assert again["ms"] and not first["ms"] and (tmp_path / "eval" / "metrics.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["eval"]


def test_unwritable_out_is_refused_before_any_work(prepared, finished, tmp_path, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output folder was checked")

    monkeypatch.setattr(train_module, "build_model", no_work)
    monkeypatch.setattr(evaluate_module, "restore_model", no_work)
    config = write_config(tmp_path / "run.yaml", run_config(prepared))
    with read_only_folder(tmp_path / "ro") as ro:
        for argv in (["train", "--config", str(config)], ["evaluate", "--checkpoint", str(finished)]):
            assert main([*argv, "--out", str(ro / "out")]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"{ro / 'out'}: cannot write into {ro}" in err, err


def test_full_disk_is_one_line_and_keeps_the_last_checkpoint(prepared, tmp_path, capsys):
    config = write_config(tmp_path / "run.yaml", run_config(prepared, iterations=6, checkpoint_every=2))
    with small_disk(tmp_path / "disk", 350) as disk:  # one resume checkpoint (SGD recipe: 229 MB) fits, two do not
        assert main(["train", "--config", str(config), "--out", str(disk / "run")]) == 2
        err = capsys.readouterr().err.split("\n")
        assert err[-1] == "" and err[-2].rsplit("\r", 1)[-1].startswith("bemseg: error: "), err
        assert f"{disk / 'run' / 'checkpoints' / 'last.pt'}: cannot be written, the disk is full" in err[-2]
        assert load_checkpoint(disk / "run" / "checkpoints" / "last.pt")["iteration"] == 2
        assert [p.name for p in (disk / "run" / "checkpoints").iterdir()] == ["last.pt"]


def test_temporaries_of_a_killed_checkpoint_write_are_removed_but_never_a_live_ones(prepared, tmp_path, capsys):
    config = write_config(tmp_path / "run.yaml", run_config(prepared, iterations=3, checkpoint_every=2))
    run, checkpoints = tmp_path / "run", tmp_path / "run" / "checkpoints"
    proc = bemseg_cli("train", "--config", str(config), "--out", str(run))
    deadline = time.monotonic() + 300
    while True:  # kill it while it writes a checkpoint: stop it when a temporary shows, kill it if one is still there
        assert proc.poll() is None and time.monotonic() < deadline, "training ended before a checkpoint was killed"
        if checkpoints.is_dir() and list(checkpoints.glob(".last.pt.*")):
            proc.send_signal(signal.SIGSTOP)
            if list(checkpoints.glob(".last.pt.*")):
                break
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (checkpoints / ".last.pt.mine").write_text("the user's")
    (checkpoints / "notes.tmp").write_text("the user's")
    train(run_config(prepared, iterations=3, checkpoint_every=2), run)
    assert sorted(p.name for p in checkpoints.iterdir()) == [".last.pt.mine", "notes.tmp"]
    assert not [p for p in run.iterdir() if p.name.startswith(".")]

    live = write_config(tmp_path / "live.yaml", run_config(prepared, iterations=2))
    with exclusive(tmp_path / "live"), atomic_path(tmp_path / "live" / "model.pt") as writing:
        writing.write_bytes(b"being written by a live process")
        assert main(["train", "--config", str(live), "--out", str(tmp_path / "live")]) == 2
        assert "another bemseg process" in capsys.readouterr().err and writing.exists()


def test_nonfinite_loss_stops_naming_iteration_and_term(prepared, tmp_path, monkeypatch):
    from baselines.resnet_segmentor import ResNetSegmentor

    real = ResNetSegmentor.forward_train
    seen = 0

    def poisoned(self, images, labels):
        nonlocal seen
        seen += 1
        losses = real(self, images, labels)
        if seen == 2:
            losses["aux"] = losses["aux"] * float("nan")
        return losses

    monkeypatch.setattr(ResNetSegmentor, "forward_train", poisoned)
    expected = r"non-finite loss term 'aux' \(nan\) at iteration 2; .*nonfinite-iter2\.pt"
    with pytest.raises(TrainingError, match=expected):
        train(run_config(prepared, model="pspnet", iterations=4), tmp_path / "run")
    dump = load_checkpoint(tmp_path / "run" / "nonfinite-iter2.pt")
    assert dump["images"].shape[0] == 2 and torch.isnan(dump["losses"]["aux"])
    assert not (tmp_path / "run" / "model.pt").exists()


def test_evaluation_outputs_provenance_and_figures(prepared, tmp_path):
    summary = train(run_config(prepared, model="clip_rn50_fpn", iterations=2), tmp_path / "run")
    for key in ("seconds_per_iter_median", "projected_hours", "peak_memory_mb"):
        assert summary[key] > 0
    metrics = evaluate(tmp_path / "run" / "model.pt", tmp_path / "eval", ms=True,
                       overrides=["eval.scales=[0.75, 1.0]", "eval.fps_repeats=1"])
    assert metrics["ms"] and len(metrics["iou"]) == 6 and 0 <= metrics["miou"] <= 1
    assert metrics["fps"] > 0 and metrics["timing"]["forward_seconds"] > 0
    record = metrics["provenance"]
    for key in ("seed", "config_hash", "git_commit", "versions", "device", "synthetic", "weights"):
        assert key in record, key
    assert record["synthetic"] is True and record["weights"].startswith("random")
    names = sorted(p.name for p in (tmp_path / "eval" / "predictions").iterdir())
    assert names == ["2_13_image.png", "2_13_label.png", "2_13_pred.png"]
    assert (tmp_path / "eval" / "confusion.csv").read_text().startswith("label\\prediction,impervious_surface")
    with pytest.raises(Exception, match="may only change eval"):
        evaluate(tmp_path / "run" / "model.pt", tmp_path / "eval", overrides=["train.lr=1"])
