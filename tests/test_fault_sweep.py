"""The fault sweep: bad inputs and faults x commands, each failing cleanly.

Every case runs the `bemseg` command line in-process on tiny synthetic data and checks the promise
of README and docs/ARCHITECTURE.md: a non-zero exit; exactly one line on stderr as a terminal
shows it (a progress bar cleared, and the warnings a real process would print counted as lines),
naming the file or field; no traceback; no file written (so nothing that looks complete, and no
half-written staging folder); and every file that was there before, the good results made for
the sweep included, left untouched.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from bemseg.atomic import sha256_file
from bemseg.cli import main
from bemseg.engine.checkpoint import save_checkpoint
from bemseg.engine.evaluate import evaluate
from bemseg.engine.train import train
from bemseg.lock import exclusive
from bemseg.models.weights import SIDECAR
from tests.engine_helpers import prepared_potsdam, run_config, write_config

IMAGE_ZIP, LABEL_ZIP = "2_Ortho_RGB.zip", "5_Labels_all_noBoundary.zip"
IMAGE_MEMBER = "2_Ortho_RGB/top_potsdam_2_10_RGB.tif"
#: Warning categories a plain `python` process does not print.
SILENT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@dataclass(frozen=True)
class World:
    """Good inputs and outputs every case starts from (and must leave untouched)."""

    root: Path
    raw: Path
    prepared: Path
    run: Path


@dataclass(frozen=True)
class Case:
    """A command line, what its one error line must name, and a lock held while it runs (if any)."""

    argv: list[str]
    names: str
    hold: Any = None


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    prepared = prepared_potsdam(root, tiles=1, tile_size=128, patch_size=64)
    train(run_config(prepared, iterations=1), root / "run")
    evaluate(root / "run" / "model.pt", root / "run" / "eval")
    return World(root, root / "raw", prepared, root / "run")


def _stamps(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rewrite(archive: Path, member: str, data: bytes) -> None:
    with zipfile.ZipFile(archive) as old:
        members = {n: old.read(n) for n in old.namelist()}
    members[member] = data
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as new:
        for name, content in members.items():
            new.writestr(name, content)


def _raw_copy(w: World, tmp: Path) -> Path:
    raw = tmp / "raw"
    shutil.copytree(w.raw, raw)
    (raw / "SYNTHETIC.json").unlink()  # a real download: every tile of --only must be there
    return raw


def _prepare(raw: Path, out: Path) -> list[str]:
    return ["prepare", "potsdam", str(raw), str(out), "--only", "2_10", "--patch-size", "64"]


def _damaged_deflate(w: World, tmp: Path) -> Case:
    """The index of the zip is intact, the compressed stream of one member is not."""
    raw = _raw_copy(w, tmp)
    archive = raw / IMAGE_ZIP
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(IMAGE_MEMBER)
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 100:start + 400] = bytes(300)
    archive.write_bytes(bytes(data))
    return Case(_prepare(raw, tmp / "out"), IMAGE_MEMBER)


def _member(w: World, tmp: Path, transform: Callable[[bytes], bytes]) -> Case:
    raw = _raw_copy(w, tmp)
    with zipfile.ZipFile(raw / IMAGE_ZIP) as zf:
        _rewrite(raw / IMAGE_ZIP, IMAGE_MEMBER, transform(zf.read(IMAGE_MEMBER)))
    return Case(_prepare(raw, tmp / "out"), IMAGE_MEMBER)


def _four_bands(tiff: bytes) -> bytes:
    rgb = np.asarray(Image.open(io.BytesIO(tiff)))
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA").save(buffer, format="TIFF")
    return buffer.getvalue()


def _archive(w: World, tmp: Path, content: Callable[[bytes], bytes]) -> Case:
    raw = _raw_copy(w, tmp)
    (raw / IMAGE_ZIP).write_bytes(content((raw / IMAGE_ZIP).read_bytes()))
    return Case(_prepare(raw, tmp / "out"), str(raw / IMAGE_ZIP))


def _prepared_before(w: World, tmp: Path, damage: Callable[[Path], None] = lambda out: None) -> Path:
    out = tmp / "out"
    shutil.copytree(w.prepared, out)
    damage(out)
    return out


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _train(w: World, tmp: Path, root: Path | None = None, out: Path | None = None, **changes: Any) -> list[str]:
    """`bemseg train` with the tiny run config, changed section by section."""
    config = run_config(root or w.prepared, iterations=1)
    for section, values in changes.items():
        config[section] = {**config.get(section, {}), **values}
    path = write_config(tmp / "run.yaml", config)
    return ["train", "--config", str(path), "--out", str(out or tmp / "run")]


def _weights(tmp: Path, name: str, content: bytes, register: bool = True) -> Path:
    path = tmp / name
    path.write_bytes(content)
    if register:
        (tmp / SIDECAR).write_text(f"{sha256_file(path)}  {name}\n")
    return path


def _torchscript_damaged(tmp: Path) -> Path:
    """A TorchScript archive whose pickled data is damaged (its members are all there)."""
    source = tmp / "source.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(source))
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(buffer, "w") as new:
        for name in old.namelist():
            new.writestr(name, b"damaged" if name.endswith("data.pkl") else old.read(name))
    return _weights(tmp, "ts.pt", buffer.getvalue())


def _prepared_png_damaged(w: World, tmp: Path) -> Path:
    root = _prepared_before(w, tmp)
    first = (root / "splits" / "train.txt").read_text().split()[0]
    _truncate(root / "train" / "img" / f"{first}.png")
    return root


def _evaluate(w: World, tmp: Path, checkpoint: Path | None = None, *extra: str) -> list[str]:
    return ["evaluate", "--checkpoint", str(checkpoint or w.run / "model.pt"), "--out", str(tmp / "eval"), *extra]


def _checkpoint(w: World, tmp: Path, change: Callable[[dict], None]) -> Path:
    state = torch.load(w.run / "model.pt", weights_only=True)
    change(state)
    save_checkpoint(tmp / "other.pt", **{k: v for k, v in state.items() if k != "format"})
    return tmp / "other.pt"


def _file(path: Path) -> Path:
    path.write_text("a file, not a folder\n")
    return path


def _folder_with(path: Path, name: str) -> Path:
    path.mkdir()
    (path / name).write_text("the user's own file\n")
    return path


CASES: dict[str, Callable[[World, Path], Case]] = {
    # bemseg synth
    "synth/unknown-dataset": lambda w, t: Case(["synth", "potsdamm", str(t / "s")], "potsdamm"),
    "synth/tiles-zero": lambda w, t: Case(["synth", "potsdam", str(t / "s"), "--tiles", "0"], "--tiles"),
    "synth/tiles-not-a-number": lambda w, t: Case(["synth", "potsdam", str(t / "s"), "--tiles", "x"], "--tiles"),
    "synth/tile-size-tiny": lambda w, t: Case(["synth", "potsdam", str(t / "s"), "--tile-size", "8"], "--tile-size"),
    "synth/seed-negative": lambda w, t: Case(["synth", "potsdam", str(t / "s"), "--seed", "-1"], "--seed"),
    "synth/out-is-a-file": lambda w, t: Case(["synth", "potsdam", str(_file(t / "s"))], str(t / "s")),
    "synth/out-inside-a-file": lambda w, t: Case(["synth", "potsdam", str(_file(t / "f") / "s")], str(t / "f")),
    "synth/out-holds-other-files": lambda w, t: Case(
        ["synth", "potsdam", str(_folder_with(t / "s", "notes.txt"))], str(t / "s")),
    "synth/out-synthetic-plus-user-files": lambda w, t: Case(
        ["synth", "potsdam", str(_raw_with_notes(w, t)), "--tiles", "1", "--tile-size", "96"], "notes.txt"),
    "synth/marker-damaged": lambda w, t: Case(
        ["synth", "potsdam", str(_raw_marker_damaged(w, t)), "--tiles", "1", "--tile-size", "96"], "SYNTHETIC.json"),
    "synth/out-busy": lambda w, t: Case(["synth", "potsdam", str(t / "s")], str(t / "s"), exclusive(t / "s")),
    # bemseg prepare
    "prepare/unknown-dataset": lambda w, t: Case(["prepare", "potsdamm", str(w.raw), str(t / "o")], "potsdamm"),
    "prepare/raw-missing": lambda w, t: Case(["prepare", "potsdam", str(t / "nowhere"), str(t / "o")],
                                             str(t / "nowhere")),
    "prepare/raw-of-another-dataset": lambda w, t: Case(["prepare", "vaihingen", str(w.raw), str(t / "o")],
                                                        "SYNTHETIC.json"),
    "prepare/unknown-id": lambda w, t: Case(["prepare", "potsdam", str(w.raw), str(t / "o"), "--only", "9_99"],
                                            "--only"),
    "prepare/patch-size-zero": lambda w, t: Case(["prepare", "potsdam", str(w.raw), str(t / "o"), "--patch-size",
                                                  "0"], "--patch-size"),
    "prepare/stride-negative": lambda w, t: Case(["prepare", "potsdam", str(w.raw), str(t / "o"), "--stride", "-1"],
                                                 "--stride"),
    "prepare/archive-missing": lambda w, t: Case(
        _prepare(_folder_with(t / "raw", "readme.txt"), t / "out"), IMAGE_ZIP),
    "prepare/archive-not-a-zip": lambda w, t: _archive(w, t, lambda data: b"<html>not found</html>"),
    "prepare/archive-truncated": lambda w, t: _archive(w, t, lambda data: data[: len(data) // 2]),
    "prepare/member-deflate-damaged": _damaged_deflate,
    "prepare/member-not-an-image": lambda w, t: _member(w, t, lambda data: b"not a tiff"),
    "prepare/member-truncated": lambda w, t: _member(w, t, lambda data: data[: len(data) // 2]),
    "prepare/member-four-bands": lambda w, t: _member(w, t, _four_bands),
    "prepare/out-is-a-file": lambda w, t: Case(_prepare(w.raw, _file(t / "out")), str(t / "out")),
    "prepare/out-inside-a-file": lambda w, t: Case(_prepare(w.raw, _file(t / "f") / "out"), str(t / "f")),
    "prepare/out-holds-other-files": lambda w, t: Case(_prepare(w.raw, _folder_with(t / "out", "notes.txt")),
                                                       str(t / "out")),
    "prepare/out-other-settings": lambda w, t: Case(
        ["prepare", "potsdam", str(w.raw), str(_prepared_before(w, t)), "--patch-size", "32"], str(t / "out")),
    "prepare/out-manifest-truncated": lambda w, t: Case(
        ["prepare", "potsdam", str(w.raw), str(_prepared_before(w, t, lambda o: _truncate(o / "manifest.json"))),
         "--patch-size", "64"], "manifest.json"),
    "prepare/out-busy": lambda w, t: Case(_prepare(w.raw, t / "out"), str(t / "out"), exclusive(t / "out")),
    # bemseg train
    "train/config-missing": lambda w, t: Case(["train", "--config", str(t / "no.yaml"), "--out", str(t / "r")],
                                              str(t / "no.yaml")),
    "train/config-yaml-syntax": lambda w, t: Case(
        ["train", "--config", str(_text(t / "bad.yaml", "model: {name: bemseg\ndata: [1,\n")), "--out", str(t / "r")],
        "bad.yaml line"),
    "train/config-not-a-mapping": lambda w, t: Case(
        ["train", "--config", str(_text(t / "list.yaml", "- model\n")), "--out", str(t / "r")], "list.yaml"),
    "train/unknown-model": lambda w, t: Case(_train(w, t, model={"name": "bemsg"}), "'model.name'"),
    "train/lambda-out-of-range": lambda w, t: Case(
        _train(w, t, model={"name": "bemseg", "options": {"lambda2": 1.5}}), "'model.options.lambda2'"),
    "train/iterations-negative": lambda w, t: Case(_train(w, t, train={"iterations": -3}), "'train.iterations'"),
    "train/unknown-field": lambda w, t: Case(_train(w, t, train={"itrations": 3}), "'train.itrations'"),
    "train/device-cuda-without-gpu": lambda w, t: Case(_train(w, t, train={"device": _cuda_missing()}),
                                                       "'train.device'"),
    "train/data-root-not-prepared": lambda w, t: Case(_train(w, t, root=t), "'data.root'"),
    "train/data-root-manifest-truncated": lambda w, t: Case(
        _train(w, t, root=_prepared_before(w, t, lambda o: _truncate(o / "manifest.json"))), "manifest.json"),
    "train/prepared-png-damaged": lambda w, t: Case(_train(w, t, root=_prepared_png_damaged(w, t)),
                                                    "bemseg prepare"),
    "train/prepared-png-damaged-in-a-worker": lambda w, t: Case(
        _train(w, t, root=_prepared_png_damaged(w, t), data={"num_workers": 1}), "bemseg prepare"),
    "train/weights-missing": lambda w, t: Case(
        _train(w, t, model={"name": "clip_fpn", "pretrained": str(t / "RN50.pt")}),
        "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"),
    "train/weights-unregistered": lambda w, t: Case(
        _train(w, t, model={"name": "clip_fpn", "pretrained": str(_weights(t, "mine.pt", b"x", False))}),
        "mine.pt"),
    "train/weights-wrong-checksum": lambda w, t: Case(
        _train(w, t, model={"name": "clip_fpn", "pretrained": str(_weights(t, "RN50.pt", b"x", False))}),
        "RN50.pt"),
    "train/weights-torchscript-damaged": lambda w, t: Case(
        _train(w, t, model={"name": "clip_rn50_fpn", "pretrained": str(_torchscript_damaged(t))}), "ts.pt"),
    "train/set-without-value": lambda w, t: Case([*_train(w, t), "--set", "train.iterations"], "--set"),
    "train/out-is-a-file": lambda w, t: Case(_train(w, t, out=_file(t / "r")), str(t / "r")),
    "train/out-inside-a-file": lambda w, t: Case(_train(w, t, out=_file(t / "f") / "r"), str(t / "f")),
    "train/out-holds-another-run": lambda w, t: Case(_train(w, t, out=w.run, train={"iterations": 2}), str(w.run)),
    "train/out-last-checkpoint-corrupt": lambda w, t: Case(
        _train(w, t, out=_last_checkpoint(t / "r", b"PK\x03\x04 truncated")), "last.pt"),
    "train/out-busy": lambda w, t: Case(_train(w, t), str(t / "run"), exclusive(t / "run")),
    # bemseg evaluate
    "evaluate/checkpoint-missing": lambda w, t: Case(_evaluate(w, t, t / "model.pt"), str(t / "model.pt")),
    "evaluate/checkpoint-not-a-checkpoint": lambda w, t: Case(
        _evaluate(w, t, _weights(t, "model.pt", b"\x80\x04 definitely not a checkpoint", False)), "model.pt"),
    "evaluate/checkpoint-truncated": lambda w, t: Case(_evaluate(w, t, _half_model(w, t)), "model.pt"),
    "evaluate/checkpoint-unfinished": lambda w, t: Case(_evaluate(w, t, _resume_checkpoint(t)), "last.pt"),
    "evaluate/checkpoint-of-another-model": lambda w, t: Case(
        _evaluate(w, t, _checkpoint(w, t, lambda s: s["config"]["model"].update(name="clip_fpn"))),
        "does not fit model clip_fpn"),
    "evaluate/set-train-field": lambda w, t: Case(_evaluate(w, t, None, "--set", "train.lr=1"), "--set"),
    "evaluate/set-bad-window": lambda w, t: Case(_evaluate(w, t, None, "--set", "eval.window=-1"), "'eval.window'"),
    "evaluate/data-root-gone": lambda w, t: Case(_evaluate(w, t, None, "--set", f"data.root={t / 'gone'}"),
                                                 "'data.root'"),
    "evaluate/out-is-a-file": lambda w, t: Case([*_evaluate(w, t), *_nothing(_file(t / "eval"))], str(t / "eval")),
    "evaluate/out-holds-other-files": lambda w, t: Case(
        [*_evaluate(w, t), *_nothing(_folder_with(t / "eval", "notes.txt"))], "notes.txt"),
    "evaluate/out-busy": lambda w, t: Case(_evaluate(w, t), str(t / "eval"), exclusive(t / "eval")),
    # bemseg complexity, and the command line itself
    "complexity/unknown-model": lambda w, t: Case(["complexity", "nope"], "'nope'"),
    "complexity/size-tiny": lambda w, t: Case(["complexity", "semantic_fpn", "--size", "16"], "--size"),
    "complexity/device-unknown": lambda w, t: Case(["complexity", "semantic_fpn", "--device", "gpu"], "--device"),
    "cli/unknown-command": lambda w, t: Case(["trian"], "trian"),
    "cli/missing-argument": lambda w, t: Case(["prepare", "potsdam"], "raw, out"),
}


def _nothing(made: Path) -> list[str]:
    """No further arguments: `made` was only created, at `--out`."""
    assert made.exists()
    return []


def _cuda_missing() -> str:
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    return "cuda"


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _raw_with_notes(w: World, tmp: Path) -> Path:
    raw = tmp / "raw"
    shutil.copytree(w.raw, raw)
    (raw / "notes.txt").write_text("the user's notes\n")
    return raw


def _raw_marker_damaged(w: World, tmp: Path) -> Path:
    raw = tmp / "raw"
    shutil.copytree(w.raw, raw)
    _truncate(raw / "SYNTHETIC.json")
    return raw


def _last_checkpoint(run: Path, content: bytes) -> Path:
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(content)
    return run


def _half_model(w: World, tmp: Path) -> Path:
    data = (w.run / "model.pt").read_bytes()
    return _weights(tmp, "model.pt", data[: len(data) // 2], False)


def _resume_checkpoint(tmp: Path) -> Path:
    save_checkpoint(tmp / "last.pt", kind="resume", iteration=1)
    return tmp / "last.pt"


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit status and the stderr lines a terminal would show (warnings a process would print included)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse
            code = exit_.code
    err = capsys.readouterr().err
    lines = [line.rsplit("\r", 1)[-1] for line in err.split("\n")]
    lines += [str(w.message) for w in caught if not issubclass(w.category, SILENT)]
    return code, [line for line in lines if line.strip()]


@pytest.mark.parametrize("case", list(CASES))
def test_fault(case, world, tmp_path, capsys):
    before = _stamps(world.root)
    setup = CASES[case](world, tmp_path)
    mine = _stamps(tmp_path)
    with setup.hold or contextlib.nullcontext():
        code, lines = run_cli(setup.argv, capsys)
    assert code not in (0, None), f"{case} exited {code}"
    assert len(lines) == 1, lines
    assert lines[0].startswith("bemseg: error: ") and "Traceback" not in lines[0], lines[0]
    assert setup.names in lines[0], f"the error line does not name {setup.names!r}: {lines[0]}"
    after = _stamps(tmp_path)
    assert {name: after.get(name) for name in mine} == mine, "files that were there before changed"
    assert not set(after) - set(mine), f"half-written output left: {sorted(set(after) - set(mine))}"
    assert _stamps(world.root) == before, "the good output made before was touched"
