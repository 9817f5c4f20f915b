"""The `bemseg` command: a thin argument parser over the package's functions.

Each subcommand imports what it needs when it runs, so `bemseg --help` is instant. A
`BemsegError` is printed as one line (`bemseg: error: ...`) with exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from bemseg.errors import BemsegError

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _synth(args: argparse.Namespace) -> None:
    from bemseg.data.synth import synthesize

    out = synthesize(args.dataset, args.out, seed=args.seed, tiles=args.tiles, tile_size=args.tile_size)
    print(f"synthetic {args.dataset} archives written to {out}")


def _prepare(args: argparse.Namespace) -> None:
    from bemseg.data.prepare import prepare

    manifest = prepare(args.dataset, args.raw, args.out, only=args.only, patch_size=args.patch_size,
                       stride=args.stride)
    counts = ", ".join(f"{split}: {len(names)}" for split, names in manifest["splits"].items())
    print(f"prepared {args.dataset} in {args.out} ({counts})")


def _models(args: argparse.Namespace) -> None:
    from bemseg.registry import list_models, model_entry

    for name in list_models(args.pattern):
        entry = model_entry(name)
        print(f"{name:16s} {entry.source:34s} {entry.description}")


def _train(args: argparse.Namespace) -> None:
    from bemseg.config import load_yaml
    from bemseg.engine.train import train

    summary = train(load_yaml(args.config), args.out, overrides=args.set or ())
    print(json.dumps({k: summary[k] for k in ("model", "iterations", "final_checkpoint")}, indent=2))


def _evaluate(args: argparse.Namespace) -> None:
    from bemseg.engine.evaluate import evaluate

    metrics = evaluate(args.checkpoint, args.out, ms=args.ms, overrides=args.set or ())
    print(f"mIoU {metrics['miou'] * 100:.2f}  mF1 {metrics['mf1'] * 100:.2f}  OA {metrics['oa'] * 100:.2f}"
          f"  -> {Path(args.out) / 'metrics.json'}")


def _complexity(args: argparse.Namespace) -> None:
    from bemseg.complexity import format_report, measure

    report = measure(args.model, num_classes=args.num_classes, size=args.size, repeats=args.repeats,
                     device=args.device)
    print(json.dumps(report, indent=2) if args.json else format_report(report))


class _Parser(argparse.ArgumentParser):
    """argparse with the suite's one-line errors (argparse's own print the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"bemseg: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bemseg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], None], help_text: str):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command("synth", _synth, "write seeded synthetic archives in a dataset's real layout")
    p.add_argument("dataset", help="potsdam, vaihingen or loveda")
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tiles", type=int, default=None, help="tiles (ISPRS) or images (LoveDA) per split")
    p.add_argument("--tile-size", type=int, default=None, help="side of a tile (ISPRS) or image (LoveDA)")

    p = command("prepare", _prepare, "convert downloaded archives (or their folders) into training patches")
    p.add_argument("dataset", help="potsdam, vaihingen or loveda")
    p.add_argument("raw", type=Path, help="folder holding the archives or their unpacked folders")
    p.add_argument("out", type=Path)
    p.add_argument("--only", nargs="+", metavar="ID", help="prepare only these tile/image ids")
    p.add_argument("--patch-size", type=int, default=512)
    p.add_argument("--stride", type=int, default=None, help="default: the patch size (mmsegmentation's counts)")

    p = command("models", _models, "list the registered models")
    p.add_argument("pattern", nargs="?", default="*")

    p = command("train", _train, "train one model (resumes after an interruption)")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")

    p = command("evaluate", _evaluate, "evaluate a checkpoint with sliding-window (and --ms) testing")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--ms", action="store_true", help="multi-scale and flip test")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override an eval.* or data.* field")

    p = command("complexity", _complexity, "GFLOPs, parameters and FPS of a model (paper's Table 3 convention)")
    p.add_argument("model")
    p.add_argument("--num-classes", type=int, default=6)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=10, help="timed forwards for FPS (median)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except BemsegError as err:
        print(f"bemseg: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bemseg: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
