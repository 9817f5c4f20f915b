"""Parameters and GFLOPs of every registered model beside the paper's Table 3, in Markdown.

Run `python benchmarks/complexity_table.py` (options: --size, --num-classes). The main table is
`bemseg.complexity.measure(..., repeats=0)` (fvcore at batch 1, eval mode; no FPS), the numbers
`bemseg complexity MODEL --json` prints, beside the paper's values read from results/paper/table3.csv.
`clip_rn50_fpn` is compared with the paper's CLIP-FPN row, whose complexity equals DenseCLIP's
text-free "RN50-CLIP + FPN" (spec); `clip_fpn` is the ablation baseline with text and alignment.
A second table splits the ResNet baselines' parameters by part and gives the FLOPs their
training-only auxiliary head would add if it were counted, which the README's discussion rests on.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import pandas as pd
import torch
from fvcore.nn import FlopCountAnalysis

from baselines.resnet_segmentor import AUX_STAGE
from bemseg.complexity import measure
from bemseg.registry import create_model, list_models, model_entry
from bemseg.reports.paper import load_paper

REPO = Path(__file__).resolve().parent.parent
#: Models whose paper row has another registry name: Table 3's CLIP-FPN cost is the text-free model's.
PAPER_ROW = {"clip_rn50_fpn": "clip_fpn"}


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


def paper_cost(table3: pd.DataFrame, name: str) -> tuple[str, float, float]:
    """(paper row label, params, GFLOPs) for a model, NaN where the paper gives none."""
    rows = table3[table3["model"] == PAPER_ROW.get(name, name)]
    if rows.empty:
        return "", math.nan, math.nan
    row = rows.iloc[0]
    return str(row["method"]), float(row["params_m"]), float(row["gflops"])


def relative(ours: float, paper: float) -> str:
    return "" if math.isnan(paper) else f"{100 * (ours - paper) / paper:+.2f}%"


def value(number: float) -> str:
    return "" if math.isnan(number) else f"{number:.2f}"


def tables(num_classes: int, size: int) -> str:
    """The comparison table for every model and the per-part table of the ResNet baselines, as Markdown."""
    table3 = load_paper(REPO / "results" / "paper").table3
    lines = [f"Input 1x3x{size}x{size}, {num_classes} classes; fvcore counts one multiply-add as one flop; params are "
             "trainable parameters (frozen text encoder apart; auxiliary heads included).", "",
             "| model | paper row | params (M) | paper (M) | diff | frozen text (M) | GFLOPs | paper | diff |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    details = ["| model | encoder (M) | decode head (M) | aux head (M) | aux head GFLOPs (training only) "
               "| GFLOPs if the aux head were counted |",
               "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name in list_models():
        report = measure(name, num_classes=num_classes, size=size, repeats=0)
        label, paper_params, paper_gflops = paper_cost(table3, name)
        lines.append(f"| `{name}` | {label} | {report['params_m']:.2f} | {value(paper_params)} "
                     f"| {relative(report['params_m'], paper_params)} | {report['text_params_m']:.2f} "
                     f"| {report['gflops']:.2f} | {value(paper_gflops)} | {relative(report['gflops'], paper_gflops)} |")
        if model_entry(name).weights == "imagenet":
            encoder, head, aux = parts(name, num_classes)
            aux_gflops = aux_head_gflops(name, num_classes, size)
            details.append(f"| `{name}` | {encoder:.2f} | {head:.2f} | {aux:.2f} | {aux_gflops:.2f} "
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
