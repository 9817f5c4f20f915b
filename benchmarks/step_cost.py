"""Training-step and inference cost of the ablation variants relative to the baseline (clip_fpn).

The paper reports training time relative to its baseline of 1.18 (BEMSeg-B), 1.42 (BEMSeg-C) and
1.52 (BEMSeg), and inference 40.3 -> 34.0 FPS (1.19x the time). BFF adds about 1 GFLOP to 69 and
CPC is a few milliseconds, so a faithful implementation should cost far less than that:
targets at most 1.08 / 1.03 / 1.10 for training and 1.10 for inference.

Method: one run, all models built once; repeats interleaved round-robin across models, the order
rotated every repeat (so drift in machine load and position effects hit every model alike);
medians; ratios against clip_fpn measured in the same run.
Training step = forward with labels, backward, the model's recipe optimiser step (AdamW with the
family's parameter groups; batch 2, 512x512). Inference = eval forward at batch 1, 512x512, under
inference_mode.

    python benchmarks/step_cost.py [--repeats 7] [--size 512] [--batch 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import bemseg
from bemseg.complexity import time_forward
from bemseg.engine.optim import build_optimizer
from bemseg.provenance import device_name

BASELINE = "clip_fpn"
TARGETS = {"bemseg_b": (1.08, None), "bemseg_c": (1.03, None), "bemseg": (1.10, 1.10)}
PAPER = {"bemseg_b": 1.18, "bemseg_c": 1.42, "bemseg": 1.52}


def train_step_seconds(model, optimizer, images, labels) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    model(images, labels)["total"].backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [BASELINE, *TARGETS]
    torch.manual_seed(0)
    models = {n: bemseg.create_model(n, 6) for n in names}
    optimizers = {n: build_optimizer(m, m.recipe) for n, m in models.items()}
    images = torch.randn(args.batch, 3, args.size, args.size)
    labels = torch.randint(0, 6, (args.batch, args.size, args.size))
    def rotated(i: int) -> list[str]:
        return names[i % len(names):] + names[:i % len(names)]

    train = {n: [] for n in names}
    for i in range(args.warmup + args.repeats):
        for n in rotated(i):
            seconds = train_step_seconds(models[n].train(), optimizers[n], images, labels)
            if i >= args.warmup:
                train[n].append(seconds)
    infer = {n: [] for n in names}
    single = images[:1]
    for i in range(args.repeats):
        for n in rotated(i):
            infer[n].extend(time_forward(models[n].eval(), single, repeats=1, warmup=1))

    base_train = statistics.median(train[BASELINE])
    base_infer = statistics.median(infer[BASELINE])
    print(f"# step cost on {device_name('cpu')}, {args.threads} threads, batch {args.batch}, "
          f"{args.size}x{args.size}, median of {args.repeats} (random initialisation)\n")
    print("| model | train s/step | train ratio | target | paper | infer s | infer ratio | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in names:
        t, f = statistics.median(train[n]), statistics.median(infer[n])
        t_target, f_target = TARGETS.get(n, (None, None))
        print(f"| {n} | {t:.3f} | {t / base_train:.3f} | {t_target or '-'} | {PAPER.get(n, 1.0):.2f} "
              f"| {f:.3f} | {f / base_infer:.3f} | {f_target or '-'} |")


if __name__ == "__main__":
    main()
