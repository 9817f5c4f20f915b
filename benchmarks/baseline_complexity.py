"""Parameters and GFLOPs of PSPNet, DeepLabV3+ and Semantic FPN beside the paper's Table 3, in Markdown.

Run `python benchmarks/baseline_complexity.py` (options: --size, --num-classes). The main table is
`bemseg.complexity.measure(..., repeats=0)` (fvcore at batch 1, eval mode; no FPS), the same
numbers `bemseg complexity MODEL --json` prints. A second table splits each model's parameters by
part and gives the FLOPs the training-only auxiliary head would add if it were counted, which is
what the README's discussion of the differences rests on.
"""

from __future__ import annotations

import argparse
import os

import torch
from fvcore.nn import FlopCountAnalysis

from baselines.resnet_segmentor import AUX_STAGE
from bemseg.complexity import measure
from bemseg.registry import create_model

#: Table 3 of the paper: (row label, params in millions, GFLOPs), Potsdam, 512 x 512.
PAPER = {
    "pspnet": ("PSPNet", 53.32, 201.59),
    "deeplabv3plus": ("DeepLabV3+", 52.04, 198.33),
    "semantic_fpn": ("Semantic FPN", 28.50, 45.40),
}


def millions(module: torch.nn.Module | None) -> float:
    """Trainable parameters of `module` in millions (0 for None)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad) / 1e6 if module is not None else 0.0


def aux_head_gflops(name: str, num_classes: int, size: int) -> float:
    """fvcore GFLOPs of the model's auxiliary head on its stage-3 input for a 1x3xSxS image (0 without one)."""
    model = create_model(name, num_classes).eval()
    if model.aux_head is None:
        return 0.0
    with torch.no_grad():
        stage3 = model.encoder(torch.zeros(1, 3, size, size))[AUX_STAGE]
    analysis = FlopCountAnalysis(model.aux_head, (stage3,))
    analysis.unsupported_ops_warnings(False)
    return analysis.total() / 1e9


def parts(name: str, num_classes: int) -> tuple[float, float, float]:
    """Parameters (M) of the encoder, the decode head and the auxiliary head."""
    model = create_model(name, num_classes)
    return millions(model.encoder), millions(model.decode_head), millions(model.aux_head)


def relative(ours: float, paper: float) -> str:
    return f"{100 * (ours - paper) / paper:+.2f}%"


def tables(num_classes: int, size: int) -> str:
    """The comparison table and the per-part table, as Markdown."""
    lines = [f"Input 1x3x{size}x{size}, {num_classes} classes; fvcore counts one multiply-add as one flop; "
             "params are trainable parameters (auxiliary head included).", "",
             "| model | params (M) | paper (M) | diff | GFLOPs | paper | diff | not counted by fvcore |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    details = ["| model | encoder (M) | decode head (M) | aux head (M) | aux head GFLOPs (training only) "
               "| GFLOPs if the aux head were counted |",
               "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, (label, paper_params, paper_gflops) in PAPER.items():
        report = measure(name, num_classes=num_classes, size=size, repeats=0)
        skipped = ", ".join(f"{op.removeprefix('aten::')} x{n}" for op, n in report["unsupported_ops"].items())
        lines.append(f"| {label} (`{name}`) | {report['params_m']:.2f} | {paper_params:.2f} "
                     f"| {relative(report['params_m'], paper_params)} | {report['gflops']:.2f} | {paper_gflops:.2f} "
                     f"| {relative(report['gflops'], paper_gflops)} | {skipped} |")
        encoder, head, aux = parts(name, num_classes)
        aux_gflops = aux_head_gflops(name, num_classes, size)
        details.append(f"| {label} | {encoder:.2f} | {head:.2f} | {aux:.2f} | {aux_gflops:.2f} "
                       f"| {report['gflops'] + aux_gflops:.2f} |")
    return "\n".join([*lines, "", *details])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--num-classes", type=int, default=6)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(tables(args.num_classes, args.size))


if __name__ == "__main__":
    main()
