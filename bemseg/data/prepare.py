"""`bemseg prepare`: downloaded archives (or their folders) -> the prepared layout of docs/ARCHITECTURE.md.

ISPRS training tiles are cut into patches as mmsegmentation's converter does; test tiles and
LoveDA images are kept whole (tests run a sliding window). Everything the selected splits need is
located before anything is converted, so a missing file is reported at once. The work happens in
`OUT.partial/`, one tile at a time with a done-record per tile (an interrupted run resumes where it
stopped), and the folder is renamed to `OUT` only when complete, with `manifest.json` written
last. A rerun over a complete `OUT` with the same settings and sources does nothing. OUT is
checked for writability before anything is read, and held against a second `prepare`
(`bemseg.lock`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bemseg import atomic
from bemseg.data.catalog import IGNORE_INDEX, DatasetInfo, get_dataset_info
from bemseg.data.imageio import decode_image, write_png
from bemseg.data.labels import LabelReport, decode_rgb, decode_zero_ignore
from bemseg.data.sources import ARCHIVE_FOLDERS, DOWNLOAD_HINTS, Source, file_digest, member_key
from bemseg.data.synth import MARKER, synthetic_marker
from bemseg.data.tiling import patch_name, windows
from bemseg.errors import BemsegError, ConfigError, DataError, OutputError
from bemseg.lock import exclusive
from bemseg.provenance import provenance

#: Datasets whose training tiles are cut into patches (LoveDA's 1024x1024 images are used whole).
TILED = ("potsdam", "vaihingen")
MANIFEST = "manifest.json"
_STATE = "state.json"
_DONE = "done"
_SHOW_MISSING = 3


@dataclass(frozen=True)
class Member:
    """A located file: the source it is read from and its name there."""

    source: Source
    name: str

    def read(self) -> bytes:
        return self.source.read(self.name)

    @property
    def where(self) -> str:
        return self.source.where(self.name)


@dataclass(frozen=True)
class Item:
    """One tile or image to convert."""

    split: str
    tile_id: str
    image: Member
    label: Member


def prepare(dataset: str, raw: str | Path, out: str | Path, *, only: list[str] | None = None,
            patch_size: int = 512, stride: int | None = None) -> dict[str, Any]:
    """Convert `dataset`'s archives in `raw` into `out`; returns the manifest (also `out/manifest.json`).

    `only` restricts the conversion to these tile/image ids (their split comes from the catalogue);
    when `raw` holds synthetic data and `only` is None, the ids it was written with are used.
    """
    info = get_dataset_info(dataset)
    raw, out = Path(raw), Path(out)
    stride = patch_size if stride is None else stride
    for field, value in (("--patch-size", patch_size), ("--stride", stride)):
        if value < 1:
            raise ConfigError(f"{field}: {value} is not allowed; use a positive number of pixels")
    if not raw.is_dir():
        raise DataError(f"{raw}: folder does not exist; put the {info.title} archives (or their unpacked "
                        f"folders) in a folder and pass it as RAW")
    marker = synthetic_marker(raw)
    if marker is not None and marker.get("dataset") != info.name:
        raise DataError(f"{raw / MARKER}: the folder holds synthetic {marker.get('dataset')} data, not "
                        f"{info.name}; pass the matching dataset or folder")
    ids = select_ids(info, only, marker)
    selected = None if only is None and marker is None else [i for split_ids in ids.values() for i in split_ids]
    settings = {"patch_size": patch_size, "stride": stride, "only": selected}
    with exclusive(out), _sources(info, raw, ids) as sources:
        items = _locate(info, raw, sources, ids)
        fingerprints = {role: src.fingerprint([m.name for it in items for m in (it.image, it.label)
                                               if m.source is src]) for role, src in sources.items()}
        existing = atomic.read_json_or_none(out / MANIFEST, remedy=f"delete {out} and run prepare again")
        if existing is not None:
            _check_reusable(existing, out, settings, sources, fingerprints)
            return existing
        if out.exists():
            if any(out.iterdir()):
                raise ConfigError(f"{out}: exists but is not a prepared folder (no {MANIFEST}); delete it or "
                                  "choose another OUT")
            out.rmdir()
        staging = out.with_name(out.name + ".partial")
        try:
            with atomic.storage_errors(staging):
                manifest = _convert(info, items, staging, settings, sources, fingerprints, marker)
        except OutputError:
            raise  # a full disk: the finished tiles are kept, and a rerun goes on from them once there is space
        except BemsegError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        os.replace(staging, out)
    return manifest


def select_ids(info: DatasetInfo, only: list[str] | None, marker: dict[str, Any] | None
               ) -> dict[str, list[str]]:
    """Ids to convert per split, in catalogue order: all, those in `only`, or those synthesised."""
    if only is None and marker is not None:
        only = [i for split_ids in marker["ids"].values() for i in split_ids]
    if only is None:
        return {split: list(split_ids) for split, split_ids in info.splits.items()}
    if not only:
        raise ConfigError("--only: no ids given; pass at least one tile/image id, or leave --only out")
    wanted = set(only)
    known = {i for split_ids in info.splits.values() for i in split_ids}
    unknown = [i for i in dict.fromkeys(only) if i not in known]
    if unknown:
        examples = ", ".join(info.splits["train"][:2])
        raise ConfigError(f"--only: unknown {info.title} id(s) {', '.join(unknown[:_SHOW_MISSING])}; "
                          f"ids look like {examples}")
    return {split: [i for i in split_ids if i in wanted] for split, split_ids in info.splits.items()}


def _roles(info: DatasetInfo, split: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """(archive role, kind) of a split's image and label."""
    if info.domains:
        return (split, "image"), (split, "label")
    return ("image", "image"), ("label", "image")


@contextlib.contextmanager
def _sources(info: DatasetInfo, raw: Path, ids: dict[str, list[str]]) -> Iterator[dict[str, Source]]:
    """The sources of the archives the selected splits need, closed afterwards."""
    roles = dict.fromkeys(role for split in info.splits if ids[split] for role, _ in _roles(info, split))
    siblings = list(info.archives.values())
    opened: dict[str, Source] = {}
    try:
        for role in roles:
            opened[role] = Source(raw, info.archives[role], siblings)
        yield opened
    finally:
        for src in opened.values():
            src.close()


def _locate(info: DatasetInfo, raw: Path, sources: dict[str, Source], ids: dict[str, list[str]]) -> list[Item]:
    """Find every file the selected ids need; a one-line DataError lists what is missing and where."""
    items: list[Item] = []
    missing: dict[str, list[str]] = {role: [] for role in sources}
    needed = dict.fromkeys(sources, 0)
    for split, split_ids in ids.items():
        for tile_id in split_ids:
            pair = []
            for role, kind in _roles(info, split):
                src = sources[role]
                key = member_key(info, role, tile_id, kind)
                name = src.find(key, ARCHIVE_FOLDERS.get(src.archive.filename, ""))
                needed[role] += 1
                if name is None:
                    missing[role].append(key)
                pair.append(Member(src, name or ""))
            items.append(Item(split, tile_id, *pair))
    for role, keys in missing.items():
        src = sources[role]
        if src.kind == "search" and len(keys) == needed[role]:
            raise DataError(f"{info.name}: archive {src.archive.filename} not found (looked for "
                            f"{src.searched()}); {DOWNLOAD_HINTS[info.name]} and put it in {raw}")
    lost = [(role, key) for role, keys in missing.items() for key in keys]
    if lost:
        shown = ", ".join(key for _, key in lost[:_SHOW_MISSING])
        more = f" and {len(lost) - _SHOW_MISSING} more" if len(lost) > _SHOW_MISSING else ""
        where = " and ".join(dict.fromkeys(sources[role].searched() for role, _ in lost))
        raise DataError(f"{info.name}: {len(lost)} of {sum(needed.values())} needed files missing ({shown}{more}) "
                        f"in {where}; re-download the archive, or pass --only with the ids you have")
    return items


def _check_reusable(existing: dict[str, Any], out: Path, settings: dict[str, Any], sources: dict[str, Source],
                    fingerprints: dict[str, dict[str, Any]]) -> None:
    """Accept an existing manifest only for the same settings and sources (hashing only if stats changed)."""
    before = existing.get("settings") or {}
    changed = [key for key in settings if before.get(key) != settings[key]]
    if changed:
        was = ", ".join("another id selection (--only)" if key == "only" else
                        f"{key.replace('_', '-')} {before.get(key)} (not {settings[key]})" for key in changed)
        raise ConfigError(f"{out}: was prepared with {was}; delete it or choose another OUT")
    recorded = existing.get("sources", {})
    for role, src in sources.items():
        entry = recorded.get(src.archive.filename, {})
        if entry.get("fingerprint") == fingerprints[role]:
            continue
        if src.kind != "zip" or entry.get("sha256") != atomic.sha256_file(src.origin):
            raise ConfigError(f"{out}: was prepared from a different {src.archive.filename} than the one in "
                              f"{src.raw}; delete it or choose another OUT")


def _convert(info: DatasetInfo, items: list[Item], staging: Path, settings: dict[str, Any],
             sources: dict[str, Source], fingerprints: dict[str, dict[str, Any]],
             marker: dict[str, Any] | None) -> dict[str, Any]:
    """Fill `staging` tile by tile (skipping tiles already done), then write splits and the manifest."""
    state = {"dataset": info.name, "settings": settings, "fingerprints": fingerprints}
    state_path = staging / _STATE
    if staging.exists() and atomic.read_json_or_none(state_path, f"delete {staging} and run prepare again") != state:
        shutil.rmtree(staging)  # left by a run with other settings or sources: start over
    for split in info.splits:
        for part in ("img", "ann"):
            (staging / split / part).mkdir(parents=True, exist_ok=True)
    (staging / _DONE).mkdir(exist_ok=True)
    atomic.write_json(state_path, state)

    records = []
    for item in items:
        done = staging / _DONE / f"{item.tile_id}.json"
        if not done.is_file():
            atomic.write_json(done, convert_item(info, item, staging, settings))
        records.append(json.loads(done.read_text()))

    manifest = _manifest(info, records, settings, sources, fingerprints, marker)
    for split in info.splits:
        atomic.write_text(staging / "splits" / f"{split}.txt",
                          "".join(f"{name}\n" for name in manifest["splits"][split]))
    shutil.rmtree(staging / _DONE)
    state_path.unlink()
    atomic.write_json(staging / MANIFEST, manifest)
    return manifest


def convert_item(info: DatasetInfo, item: Item, staging: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Decode one tile, write its samples under `staging/SPLIT/{img,ann}`, and return its record."""
    image = decode_image(item.image.read(), item.image.where, rgb=True)
    stored = decode_image(item.label.read(), item.label.where, rgb=info.label_kind == "rgb")
    if stored.shape[:2] != image.shape[:2]:
        raise DataError(f"{item.label.where} is {stored.shape[1]}x{stored.shape[0]} but its image "
                        f"{item.image.where} is {image.shape[1]}x{image.shape[0]}; re-download both")
    if info.label_kind == "rgb":
        label, report = decode_rgb(stored, info.palette)
    else:
        label, report = decode_zero_ignore(stored, info.num_classes, item.label.where), LabelReport(0, 0)
    if report.off_palette or report.undecodable:
        print(f"bemseg: warning: {item.label.where}: {report.off_palette} off-palette pixels decoded by "
              f"thresholding, {report.undecodable} undecodable pixels set to ignore", file=sys.stderr)

    height, width = label.shape
    if item.split == "train" and info.name in TILED:
        boxes = windows(height, width, settings["patch_size"], settings["stride"])
        names = [patch_name(item.tile_id, box)[:-4] for box in boxes]
    else:
        boxes, names = [(0, 0, width, height)], [item.tile_id]
    folder = staging / item.split
    for name, (x0, y0, x1, y1) in zip(names, boxes):
        write_png(folder / "img" / f"{name}.png", image[y0:y1, x0:x1])
        write_png(folder / "ann" / f"{name}.png", label[y0:y1, x0:x1])
    counts = np.bincount(label.ravel(), minlength=256)
    return {"split": item.split, "id": item.tile_id, "width": width, "height": height, "samples": names,
            "pixels": [int(c) for c in counts[: info.num_classes]] + [int(counts[IGNORE_INDEX])],
            "off_palette": report.off_palette, "undecodable": report.undecodable}


def _source_entries(info: DatasetInfo, sources: dict[str, Source], fingerprints: dict[str, dict[str, Any]],
                    synthetic: bool) -> dict[str, dict[str, Any]]:
    """Per archive: how it was read, its sha256 (zips), and for LoveDA the md5 check against Zenodo."""
    entries = {}
    for role, src in sources.items():
        name = src.archive.filename
        entry: dict[str, Any] = {"fingerprint": fingerprints[role], "sha256": None}
        if src.kind == "zip":
            entry["sha256"] = atomic.sha256_file(src.origin)
            if name in info.md5:
                md5 = file_digest(src.origin, "md5")
                entry.update(md5=md5, md5_expected=info.md5[name], md5_match=md5 == info.md5[name])
                if md5 != info.md5[name] and not synthetic:
                    print(f"bemseg: warning: {src.origin}: md5 {md5} differs from the published "
                          f"{info.md5[name]}; the archive may be damaged, re-download it if results look wrong",
                          file=sys.stderr)
        entries[name] = entry
    return entries


def _manifest(info: DatasetInfo, records: list[dict[str, Any]], settings: dict[str, Any],
              sources: dict[str, Source], fingerprints: dict[str, dict[str, Any]],
              marker: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest: what was converted from what, with pixel counts over whole tiles and provenance."""
    keys = [*info.class_names, "ignore"]
    pixels = {split: dict.fromkeys(keys, 0) for split in info.splits}
    for record in records:
        for key, count in zip(keys, record["pixels"]):
            pixels[record["split"]][key] += count
    splits = {split: [n for r in records if r["split"] == split for n in r["samples"]]
              for split in info.splits}
    return {
        "dataset": info.name,
        "title": info.title,
        "class_names": list(info.class_names),
        "palette": [list(c) for c in info.palette],
        "ignore_index": IGNORE_INDEX,
        "settings": settings,
        "sources": _source_entries(info, sources, fingerprints, marker is not None),
        "synthetic": marker is not None,
        "synthetic_info": marker,
        "pixels": pixels,
        "tiles": {r["id"]: {k: r[k] for k in ("split", "width", "height", "off_palette", "undecodable")}
                  for r in records},
        "samples": {split: len(names) for split, names in splits.items()},
        "splits": splits,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "provenance": provenance(synthetic=marker is not None),
    }
