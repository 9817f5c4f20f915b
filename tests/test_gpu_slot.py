"""One GPU per training job on a multi-GPU machine (bemseg.workflow.gpu_slot), tested without a GPU."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bemseg.errors import ConfigError
from bemseg.workflow.gpu_slot import candidates, gpu_slot
from tests.workflow_helpers import REPO, snakemake

#: A job in its own process: take a slot among DEVICES, record what it saw, hold it, release it.
JOB = """
import json, os, sys, time
from pathlib import Path
from bemseg.workflow.gpu_slot import gpu_slot
locks, devices, hold, record = Path(sys.argv[1]), sys.argv[2].split(","), float(sys.argv[3]), Path(sys.argv[4])
with gpu_slot(1, os.environ, locks, devices=devices, poll=0.02) as chosen:
    start = time.monotonic()
    print("holding", flush=True)
    time.sleep(hold)
    seen = os.environ["CUDA_VISIBLE_DEVICES"]
    record.write_text(json.dumps({"device": chosen[0], "seen": seen, "start": start, "end": time.monotonic()}))
"""


def job(locks: Path, devices: str, hold: float, record: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", JOB, str(locks), devices, str(hold), str(record)], text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_cpu_only_and_gpu_less_jobs_are_untouched(tmp_path):
    environ = {"CUDA_VISIBLE_DEVICES": "0,1"}
    with gpu_slot(0, environ, tmp_path / "locks") as chosen:  # gpus_per_job: 0
        assert chosen == [] and environ == {"CUDA_VISIBLE_DEVICES": "0,1"}
    environ = {}
    with gpu_slot(1, environ, tmp_path / "locks", devices=[]) as chosen:  # no GPU on this machine
        assert chosen == [] and environ == {}
    assert not (tmp_path / "locks").exists()


def test_the_gpu_slurm_gave_the_job_is_used_as_is(tmp_path):
    environ = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "3"}
    with gpu_slot(1, environ, tmp_path / "locks") as chosen:
        assert chosen == [] and environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert not (tmp_path / "locks").exists()


def test_candidates_are_the_visible_devices():
    assert candidates({"CUDA_VISIBLE_DEVICES": "2, 5,GPU-ab12"}) == ["2", "5", "GPU-ab12"]
    assert candidates({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_n_slots_give_n_jobs_n_different_gpus_and_the_next_waits(tmp_path):
    locks, devices = tmp_path / "locks", ["0", "1", "2"]
    envs = [{} for _ in range(3)]
    with gpu_slot(1, envs[0], locks, devices), gpu_slot(1, envs[1], locks, devices), \
            gpu_slot(1, envs[2], locks, devices):
        assert sorted(e["CUDA_VISIBLE_DEVICES"] for e in envs) == devices
        waiting: dict[str, str] = {}
        got = threading.Event()

        def fourth() -> None:
            with gpu_slot(1, waiting, locks, devices, poll=0.02):
                got.set()

        thread = threading.Thread(target=fourth, daemon=True)
        thread.start()
        assert not got.wait(0.5), "a fourth job took a GPU while three jobs held all three"
    assert got.wait(5), "the fourth job did not get a GPU once the others ended"
    thread.join(5)
    assert all(e == {} for e in envs), "CUDA_VISIBLE_DEVICES was not restored after the job"


def test_a_job_may_take_several_gpus_but_not_more_than_it_sees(tmp_path):
    environ = {"CUDA_VISIBLE_DEVICES": "4,5,6"}
    with gpu_slot(2, environ, tmp_path / "locks") as chosen:
        assert chosen == ["4", "5"] and environ["CUDA_VISIBLE_DEVICES"] == "4,5"
    assert environ["CUDA_VISIBLE_DEVICES"] == "4,5,6"
    with pytest.raises(ConfigError, match="config field 'gpus_per_job': 4 GPUs per job, but this job sees 3"), \
            gpu_slot(4, environ, tmp_path / "locks"):
        pass


def test_a_crashed_job_releases_its_gpu(tmp_path):
    locks = tmp_path / "locks"
    holder = job(locks, "0", 60, tmp_path / "holder.json")
    try:
        assert holder.stdout.readline().strip() == "holding"
        environ: dict[str, str] = {}
        got, done = threading.Event(), threading.Event()

        def second() -> None:
            with gpu_slot(1, environ, locks, ["0"], poll=0.02):
                got.set()
                done.wait(10)

        thread = threading.Thread(target=second, daemon=True)
        thread.start()
        assert not got.wait(0.5), "a second job took the GPU a live job holds"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert got.wait(5), "the GPU of a killed job was not released"
        assert environ["CUDA_VISIBLE_DEVICES"] == "0"
        done.set()
        thread.join(5)
    finally:
        holder.kill()
        holder.wait(10)


def test_concurrent_jobs_never_share_a_gpu(tmp_path):
    locks, records = tmp_path / "locks", [tmp_path / f"job{i}.json" for i in range(6)]
    jobs = [job(locks, "0,1", 0.3, record) for record in records]
    for process in jobs:
        process.communicate(timeout=60)
        assert process.returncode == 0
    spans = [json.loads(r.read_text()) for r in records]
    assert all(s["seen"] == s["device"] for s in spans), "a job's CUDA_VISIBLE_DEVICES is not its slot"
    for device in ("0", "1"):
        on_device = sorted((s["start"], s["end"]) for s in spans if s["device"] == device)
        assert on_device, f"no job used GPU {device}"
        for (_, end), (start, _) in itertools.pairwise(on_device):
            assert start >= end, f"two live jobs on GPU {device}"


@pytest.mark.slow
def test_a_training_job_of_the_workflow_holds_its_gpu_while_it_trains(tmp_path):
    """The train_evaluate job path takes a slot (no GPU here: the engine then trains on the CPU all the same)."""
    run = "results/runs/vaihingen/semantic_fpn/seed0"
    snakemake(tmp_path, f"{run}/eval/metrics.json", "--config", "gpus_per_job=1",
              env={"CUDA_VISIBLE_DEVICES": "5,6", "BEMSEG_GPU_LOCK_DIR": str(tmp_path / "locks")})
    log = (tmp_path / "results/logs/train_evaluate/vaihingen/semantic_fpn/seed0.log").read_text()
    assert "GPU slot: CUDA_VISIBLE_DEVICES=5 " in log, log[-2000:]
    assert (tmp_path / "locks/gpu5.lock").is_file() and (tmp_path / run / "eval/metrics.json").is_file()
