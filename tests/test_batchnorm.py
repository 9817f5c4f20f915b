"""Precise BatchNorm statistics (train.bn_recalibration): what they average, and how training uses them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bemseg.engine.batchnorm import recalibrate_batchnorm
from bemseg.engine.checkpoint import load_checkpoint
from bemseg.engine.train import train
from tests.engine_helpers import prepared_potsdam, run_config


def test_running_statistics_become_the_average_of_the_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Dropout(0.5)).eval()
    batches = [torch.randn(2, 3, 5, 5) * (i + 1) + i for i in range(3)]
    weights = [p.clone() for p in model.parameters()]
    assert recalibrate_batchnorm(model, iter(batches)) == 3
    features = [model[0](b).detach() for b in batches]
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in features])
    variances = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in features])
    torch.testing.assert_close(model[1].running_mean, means.mean(0))
    torch.testing.assert_close(model[1].running_var, variances.mean(0))
    assert model[1].momentum == 0.1 and not model.training  # restored
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))  # weights untouched
    before = model[1].running_mean.clone()
    assert recalibrate_batchnorm(model, iter([])) == 0 and torch.equal(model[1].running_mean, before)


def test_training_recalibrates_after_the_schedule_and_keeps_the_weights(tmp_path):
    prepared = prepared_potsdam(tmp_path / "data")
    plain = train(run_config(prepared, iterations=3, checkpoint_every=100), tmp_path / "plain")
    tuned = train(run_config(prepared, iterations=3, checkpoint_every=100, bn_recalibration=2), tmp_path / "tuned")
    assert plain["final_losses"] == tuned["final_losses"]  # the same training ...
    first = load_checkpoint(tmp_path / "plain" / "model.pt")["model"]
    second = load_checkpoint(tmp_path / "tuned" / "model.pt")["model"]
    running = [k for k in first if k.endswith(("running_mean", "running_var"))]
    assert running and all(torch.equal(first[k], second[k]) for k in first if k not in running
                           and not k.endswith("num_batches_tracked"))  # ... the same weights ...
    assert sum(not torch.equal(first[k], second[k]) for k in running) > len(running) // 2  # ... new statistics
    assert {int(second[k]) for k in second if k.endswith("num_batches_tracked")} == {2}


@pytest.mark.parametrize("batches", [0, 2])
def test_recalibration_is_deterministic(tmp_path, batches):
    prepared = prepared_potsdam(tmp_path / "data")
    config = run_config(prepared, iterations=2, checkpoint_every=100, bn_recalibration=batches)
    train(config, tmp_path / "a")
    train(config, tmp_path / "b")
    first = load_checkpoint(tmp_path / "a" / "model.pt")["model"]
    second = load_checkpoint(tmp_path / "b" / "model.pt")["model"]
    assert all(torch.equal(first[k], second[k]) for k in first)
