"""Training and evaluation speed of every model on a CUDA GPU, per precision, and the hours 80k iterations take.

Training: iterations per second at batch 4 on 512x512 crops with the model's own recipe (optimiser,
parameter groups, loss reduction), channels_last, the forward under the precision's autocast and a
gradient scaler for float16; random images and labels, so the data loader is not measured (see
benchmarks/data_loader.py). Evaluation: sliding-window windows per second (512, batch 8) over a
2048x2048 image, the multi-scale-and-flip test's workload per scale. The device is synchronised
around every timed step; medians after a warm-up. Projected hours = 80,000 / (iterations per s)
/ 3600, to set beside the paper's Table 3 hours (one RTX 3090) and to give `cost.seconds_per_iter`.

On a machine without CUDA it says so and exits with status 0: CPU speeds are measured by
benchmarks/step_cost.py (as ratios; absolute CPU seconds say nothing about a GPU).

    python benchmarks/gpu_step.py [--models bemseg,clip_fpn,...] [--precisions fp32,bf16,fp16] [--iterations 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import bemseg
from bemseg.engine.device import autocast, prepare_model, resolve_precision
from bemseg.engine.inference import slide_logits, window_starts
from bemseg.engine.optim import build_optimizer, set_lr
from bemseg.provenance import device_name

MODELS = ("clip_fpn", "bemseg_b", "bemseg_c", "bemseg", "denseclip", "pspnet", "deeplabv3plus", "semantic_fpn")
PAPER_ITERATIONS = 80000


def train_rate(name: str, precision_name: str, device: torch.device, iterations: int, warmup: int,
               compile_model: bool) -> tuple[float, float]:
    """(iterations per second, peak GB) of the model's training step at batch 4, 512x512."""
    torch.manual_seed(0)
    model, channels_last = prepare_model(bemseg.create_model(name, 6), device, "auto")
    model.train()
    recipe = model.recipe
    precision = resolve_precision(precision_name, device)
    optimizer = build_optimizer(model, recipe)
    scaler = torch.amp.GradScaler("cuda", enabled=precision.scaler)
    forward = torch.compile(model) if compile_model else model
    images = torch.randn(4, 3, 512, 512, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 6, (4, 512, 512), device=device)
    torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(warmup + iterations):
        torch.cuda.synchronize(device)
        tic = time.perf_counter()
        set_lr(optimizer, recipe, step, PAPER_ITERATIONS)
        with autocast(device, precision):
            loss = forward(images, labels)["total"]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        torch.cuda.synchronize(device)
        times.append(time.perf_counter() - tic)
    return 1.0 / statistics.median(times[warmup:]), torch.cuda.max_memory_allocated(device) / 2**30


def eval_rate(name: str, precision_name: str, device: torch.device, repeats: int) -> float:
    """Sliding-window windows per second (512, stride 341, batch 8) over a 2048x2048 image."""
    torch.manual_seed(0)
    model, channels_last = prepare_model(bemseg.create_model(name, 6), device, "auto")
    model.eval()
    precision = resolve_precision(precision_name, device)
    image = torch.randn(3, 2048, 2048, device=device)
    windows = len(window_starts(2048, 512, 341)) ** 2
    times = []
    with model.evaluation_session():
        for _ in range(repeats + 1):
            torch.cuda.synchronize(device)
            tic = time.perf_counter()
            slide_logits(model, image, 6, 512, 341, 8, precision, channels_last)
            torch.cuda.synchronize(device)
            times.append(time.perf_counter() - tic)
    return windows / statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--eval-repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="train through torch.compile")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_step.py: no CUDA device on this machine; it measures GPUs only. CPU step costs: "
              "python benchmarks/step_cost.py")
        return
    device = torch.device("cuda")
    precisions = [p for p in args.precisions.split(",") if p != "bf16" or torch.cuda.is_bf16_supported()]
    print(f"# {device_name(device)}; batch 4 at 512x512, median of {args.iterations} steps after {args.warmup}; "
          f"eval: window 512, stride 341, batch 8 over 2048x2048{'; torch.compile' if args.compile else ''}\n")
    print("| model | precision | train it/s | s/iter | h @80k | peak GB | eval windows/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name in args.models.split(","):
        for precision in precisions:
            rate, peak = train_rate(name, precision, device, args.iterations, args.warmup, args.compile)
            windows = eval_rate(name, precision, device, args.eval_repeats)
            label = resolve_precision(precision, device).name
            print(f"| {name} | {label} | {rate:.2f} | {1 / rate:.3f} | {PAPER_ITERATIONS / rate / 3600:.1f} "
                  f"| {peak:.1f} | {windows:.1f} |", flush=True)
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
