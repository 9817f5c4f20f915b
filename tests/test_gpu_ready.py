"""The GPU-ready parts of the engine that run anywhere: data-loader settings and the optional torch.compile."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from bemseg.engine.checkpoint import load_checkpoint
from bemseg.engine.device import loader_options
from bemseg.engine.train import train
from tests.conftest import REPO
from tests.engine_helpers import prepared_potsdam, run_config


def test_loader_options_feed_a_gpu_and_leave_a_cpu_alone():
    assert loader_options(torch.device("cpu"), 0, 4) == {"num_workers": 0, "pin_memory": False,
                                                         "persistent_workers": False, "prefetch_factor": None}
    assert loader_options(torch.device("cuda"), 4, 4) == {"num_workers": 4, "pin_memory": True,
                                                          "persistent_workers": True, "prefetch_factor": 4}


def test_compiled_training_runs_the_compiled_module_and_saves_plain_names(tmp_path, monkeypatch):
    real_compile, compiled = torch.compile, []

    def eager_compile(module, **kwargs):  # the real wrapper, with the backend that needs no C++ toolchain
        wrapped = real_compile(module, backend="eager", **kwargs)
        compiled.append(wrapped)
        return wrapped

    monkeypatch.setattr(torch, "compile", eager_compile)
    prepared = prepared_potsdam(tmp_path / "data")
    plain = train(run_config(prepared, iterations=2, checkpoint_every=100), tmp_path / "plain")
    assert not compiled
    faster = train(run_config(prepared, iterations=2, checkpoint_every=100, compile=True), tmp_path / "compiled")
    assert len(compiled) == 1 and isinstance(compiled[0], torch._dynamo.eval_frame.OptimizedModule)
    state = load_checkpoint(tmp_path / "compiled" / "model.pt")["model"]
    assert not any(k.startswith("_orig_mod") for k in state)
    assert state.keys() == load_checkpoint(tmp_path / "plain" / "model.pt")["model"].keys()
    for key, value in faster["final_losses"].items():  # the eager backend computes what the module computes
        assert abs(value - plain["final_losses"][key]) < 1e-4, key


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the benchmark measures instead")
def test_gpu_benchmark_says_it_needs_cuda_and_exits_cleanly():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks/gpu_step.py")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("gpu_step.py: no CUDA device on this machine")
