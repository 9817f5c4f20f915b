"""Evaluation overhead: data loading and metric accumulation relative to the model's forward time.

Target: at most 5 % of the forward time. One run: a synthetic Potsdam with whole test tiles of
`--tile-size` pixels, a model trained for one iteration (weights do not change the cost), then
`--repeats` evaluations with the paper's sliding window (512, stride 341); the engine times data,
forward and metrics apart (bemseg/engine/evaluate.py). Medians over repeats.

    python benchmarks/eval_overhead.py [--model clip_fpn] [--tile-size 1024] [--repeats 3] [--ms]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bemseg.data.prepare import prepare
from bemseg.data.synth import synthesize
from bemseg.engine.evaluate import evaluate
from bemseg.engine.train import train
from bemseg.provenance import device_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="clip_fpn")
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--tiles", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ms", action="store_true", help="multi-scale and flip test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        raw = synthesize("potsdam", root / "raw", tiles=args.tiles, tile_size=args.tile_size)
        prepared = root / "prepared"
        prepare("potsdam", raw, prepared)
        config = {
            "model": {"name": args.model},
            "data": {"dataset": "potsdam", "root": str(prepared), "crop_size": 64},
            "train": {"iterations": 1, "batch_size": 2, "threads": args.threads},
            "eval": {"window": 512, "stride": 341, "batch_size": 4, "fps_repeats": 0, "num_figures": 0},
        }
        train(config, root / "run")
        runs = [evaluate(root / "run" / "model.pt", root / f"eval{i}", ms=args.ms) for i in range(args.repeats)]
    timing = {key: statistics.median(r["timing"][key] for r in runs)
              for key in ("data_seconds", "forward_seconds", "metric_seconds")}
    forward = timing["forward_seconds"]
    print(f"# evaluation overhead: {args.model}, {runs[0]['images']} test tiles of {args.tile_size}x{args.tile_size}, "
          f"window 512 stride 341{', MS' if args.ms else ''}, {device_name('cpu')}, {args.threads} threads, "
          f"median of {args.repeats}\n")
    print("| part | seconds | share of forward | target |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| model forward (reference) | {forward:.3f} | 100.0% | |")
    for label, key in (("data loading", "data_seconds"), ("metric accumulation", "metric_seconds")):
        print(f"| {label} | {timing[key]:.3f} | {100 * timing[key] / forward:.2f}% | |")
    overhead = (timing["data_seconds"] + timing["metric_seconds"]) / forward
    print(f"| data + metrics | {timing['data_seconds'] + timing['metric_seconds']:.3f} | {100 * overhead:.2f}% "
          f"| <= 5% |")


if __name__ == "__main__":
    main()
