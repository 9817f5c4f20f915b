"""Where the time of one embedded-default run goes: start-up, model build, training, evaluation; before and after.

One workflow job trains and evaluates one run in a fresh interpreter. This script runs such a job
(the same package calls as workflow/scripts/train_evaluate.py) for one (dataset, model, seed) of the
embedded default, in two code versions measured in the same session: "before" is a git revision
(default: the last commit before the embedded default was reworked), checked out into a temporary
worktree, with its own workflow/config/default.yaml; "after" is this working tree with its own.
Each side prepares its synthetic data first (not timed), then runs the job `--repeats` times,
alternating sides. Phases, wall seconds:

- start-up: from spawning the interpreter until the job's imports are done;
- model build: the engine's `build_model` call (timed by wrapping it);
- training: the rest of `train()` (data, loop, checkpoints);
- evaluation: `evaluate()` on the test split.

    python benchmarks/embedded_run.py [--before REV] [--dataset potsdam] [--model bemseg] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEFORE = "5a18d1b"  # main before the recipe and embedded-default rework

# Runs inside the measured interpreter (either code version); prints the phase times as JSON.
JOB = r"""
import json, sys, time
import bemseg.engine.evaluate as evaluate_module, bemseg.engine.train as train_module
from bemseg.workflow import job  # noqa: F401  (what every workflow script imports)
imported = time.time()
config, out = json.loads(sys.argv[1]), sys.argv[2]
build = train_module.build_model
spent = {"build": 0.0}
def timed_build(*args, **kwargs):
    tic = time.perf_counter()
    try:
        return build(*args, **kwargs)
    finally:
        spent["build"] += time.perf_counter() - tic
train_module.build_model = timed_build
tic = time.perf_counter()
train_module.train(config, out)
trained = time.perf_counter() - tic
tic = time.perf_counter()
evaluate_module.evaluate(out + "/model.pt", out + "/eval")
print(json.dumps({"imported": imported, "build": spent["build"], "train": trained - spent["build"],
                  "evaluate": time.perf_counter() - tic}))
"""

PREPARE = r"""
import json, sys
import yaml
from bemseg.data.prepare import prepare
from bemseg.data.synth import synthesize
from bemseg.workflow import plan
from bemseg.workflow.config import load_schema, resolve_workflow_config
root, dataset, model, seed, work = sys.argv[1:6]
config = yaml.safe_load(open(f"{root}/workflow/config/default.yaml"))
config = resolve_workflow_config(config, load_schema(f"{root}/workflow/schemas/config.schema.yaml"))
raw = synthesize(dataset, f"{work}/raw/{dataset}", **config["synthetic"])
prepare(dataset, raw, f"{work}/prepared/{dataset}", only=config["datasets"][dataset]["only"], **config["prepare"])
run = plan.run_config(config, dataset, model, int(seed))
run["data"]["root"] = f"{work}/prepared/{dataset}"
print(json.dumps(run))
"""


def side_env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}


def prepare_side(root: Path, work: Path, args: argparse.Namespace) -> dict:
    result = subprocess.run([sys.executable, "-c", PREPARE, str(root), args.dataset, args.model, str(args.seed),
                             str(work)], env=side_env(root), cwd=work, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_job(root: Path, work: Path, config: dict, index: int) -> dict[str, float]:
    out = work / f"run{index}"
    spawned = time.time()
    tic = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", JOB, json.dumps(config), str(out)], env=side_env(root),
                            cwd=work, capture_output=True, text=True, check=True)
    total = time.perf_counter() - tic
    phases = json.loads(result.stdout.strip().splitlines()[-1])
    return {"start-up": phases.pop("imported") - spawned, "model build": phases["build"],
            "training": phases["train"], "evaluation": phases["evaluate"], "total": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="git revision of the 'before' code")
    parser.add_argument("--dataset", default="potsdam")
    parser.add_argument("--model", default="bemseg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bemseg-embedded-run-") as tmp:
        tmp = Path(tmp)
        before_root = tmp / "before-code"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before_root), args.before], cwd=REPO,
                       check=True)
        try:
            sides = {"before": before_root, "after": REPO}
            configs = {}
            for name, root in sides.items():
                (tmp / name).mkdir()
                configs[name] = prepare_side(root, tmp / name, args)
            times: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
            for index in range(args.repeats):
                for name, root in sides.items() if index % 2 == 0 else reversed(list(sides.items())):
                    times[name].append(run_job(root, tmp / name, configs[name], index))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before_root)], cwd=REPO, check=False)
    describe = {name: (f"{c['train']['iterations']} iterations, batch {c['train']['batch_size']}, crop "
                       f"{c['data']['crop_size']}, precision {c['train'].get('precision', 'fp32')}")
                for name, c in configs.items()}
    print(f"# one embedded run: {args.model} on {args.dataset}, seed {args.seed}; median of {args.repeats} "
          f"fresh interpreters per side, sides alternated")
    print(f"# before = {args.before} ({describe['before']}); after = working tree ({describe['after']})\n")
    print("| phase | before (s) | after (s) | after / before |")
    print("| --- | ---: | ---: | ---: |")
    for phase in ("start-up", "model build", "training", "evaluation", "total"):
        before = statistics.median(t[phase] for t in times["before"])
        after = statistics.median(t[phase] for t in times["after"])
        print(f"| {phase} | {before:.2f} | {after:.2f} | {after / before:.2f} |")


if __name__ == "__main__":
    main()
