"""The downloaded archives as users have them: the .zip, its unpacked folder, or its files anywhere below RAW.

Members are located by name wherever they sit (real archives sometimes nest them one folder
deeper): ISPRS members by file name, LoveDA members by their `Split/Domain/kind/id.png` tail,
because LoveDA file names repeat between images and masks.
"""

from __future__ import annotations

import functools
import hashlib
import os
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from bemseg.data.catalog import Archive, DatasetInfo, get_dataset_info
from bemseg.errors import DataError

#: The folder members sit in inside the real archives (empty: at the archive's root). Readers do
#: not rely on it, except to prefer Vaihingen's images under `top/` when the image archive (or the
#: folder searched) also holds same-named files elsewhere, such as ground truth.
ARCHIVE_FOLDERS = {"2_Ortho_RGB.zip": "2_Ortho_RGB", "ISPRS_semantic_labeling_Vaihingen.zip": "top"}

#: LoveDA's sub-folders of a domain folder: images and masks.
LOVEDA_KINDS = {"image": "images_png", "label": "masks_png"}

#: Where users obtain each dataset (../spec/datasets.md).
DOWNLOAD_HINTS = {
    "potsdam": "request ISPRS Potsdam through the ISPRS 2D semantic labeling benchmark's form",
    "vaihingen": "request ISPRS Vaihingen through the ISPRS 2D semantic labeling benchmark's form",
    "loveda": "download it from Zenodo record 5706578",
}

_CHUNK = 1 << 20


@functools.cache
def _domain_index(dataset: str) -> dict[str, tuple[str, str]]:
    info = get_dataset_info(dataset)
    return {i: (split, domain) for split, domains in info.domains.items() for domain, ids in domains.items()
            for i in ids}


def loveda_domain(info: DatasetInfo, tile_id: str) -> tuple[str, str]:
    """(split, domain) of a LoveDA image id, from the catalogue's id ranges."""
    return _domain_index(info.name)[tile_id]


def member_key(info: DatasetInfo, role: str, tile_id: str, kind: str = "image") -> str:
    """The name a member is located by: the catalogue's member pattern filled in.

    `role` is an archive role (ISPRS: image, label, label_full; LoveDA: the split); `kind` is
    LoveDA's image or label.
    """
    pattern = info.archives[role].member
    if info.domains:
        _, domain = loveda_domain(info, tile_id)
        return pattern.format(id=tile_id, domain=domain, kind=LOVEDA_KINDS[kind])
    return pattern.format(id=tile_id)


def archive_path(info: DatasetInfo, role: str, tile_id: str, kind: str = "image") -> str:
    """Where the member sits inside the real archive (its folder, then its key)."""
    folder = ARCHIVE_FOLDERS.get(info.archives[role].filename, "")
    key = member_key(info, role, tile_id, kind)
    return f"{folder}/{key}" if folder else key


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file with any hashlib algorithm (md5 for LoveDA's published checksums)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(top: Path, base: Path, skip: set[Path]) -> list[str]:
    """POSIX paths relative to `base` of the files below `top`, skipping hidden entries, zips and `skip`."""
    found = []
    for folder, dirs, files in os.walk(top):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and here / d not in skip)
        found += [(here / f).relative_to(base).as_posix() for f in sorted(files)
                  if not f.startswith(".") and not f.endswith(".zip")]
    return found


class Source:
    """One archive's files, read from `RAW/NAME.zip`, else `RAW/NAME/`, else anywhere below RAW."""

    def __init__(self, raw: Path, archive: Archive, siblings: Iterable[Archive] = ()) -> None:
        self.archive = archive
        self.raw = raw
        self.stem = archive.filename.removesuffix(".zip")
        zip_path, folder = raw / archive.filename, raw / self.stem
        self._zip: zipfile.ZipFile | None = None
        if zip_path.is_file():
            self.kind, self.origin = "zip", zip_path
            try:
                self._zip = zipfile.ZipFile(zip_path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{zip_path}: not a readable zip archive ({exc}); re-download it") from exc
            names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
        elif folder.is_dir():
            self.kind, self.origin = "folder", folder
            names = _walk(folder, raw, set())
        else:
            self.kind, self.origin = "search", raw
            names = _walk(raw, raw, {raw / s.filename.removesuffix(".zip") for s in siblings if s != archive})
        self._by_name: dict[str, list[str]] = defaultdict(list)
        for name in names:
            self._by_name[PurePosixPath(name).name].append(name)

    def searched(self) -> str:
        """Where members were looked for, for error messages."""
        if self.kind == "search":
            return (f"{self.raw / self.archive.filename}, folder {self.raw / self.stem}/ "
                    f"and files anywhere below {self.raw}")
        return f"{self.origin}{'/' if self.kind == 'folder' else ''}"

    def find(self, key: str, folder: str = "") -> str | None:
        """The member whose path ends with `key` (preferring one inside `folder`), or None."""
        hits = [n for n in self._by_name.get(PurePosixPath(key).name, ()) if n == key or n.endswith("/" + key)]
        if len(hits) > 1 and folder:
            hits = [n for n in hits if n.endswith(f"{folder}/{key}")] or hits
        if len(hits) > 1:
            raise DataError(f"{self.searched()}: {len(hits)} files match {key} ({', '.join(hits[:3])}); "
                            f"unpack each archive into its own folder named after it, or keep only one")
        return hits[0] if hits else None

    def where(self, name: str) -> str:
        """Readable location of a member: `ARCHIVE.zip:member` or the file's path."""
        return f"{self.origin}:{name}" if self._zip else str(self.raw / name)

    def read(self, name: str) -> bytes:
        """The bytes of a member; a damaged archive entry is a DataError naming it."""
        try:
            if self._zip is not None:
                return self._zip.read(name)
            return (self.raw / name).read_bytes()
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
            raise DataError(f"{self.where(name)}: cannot read ({exc}); re-download the archive") from exc

    def fingerprint(self, used: Iterable[str]) -> dict[str, Any]:
        """What identifies this source cheaply (no hashing): zip size and mtime, or the used files' sizes."""
        if self._zip is not None:
            stat = self.origin.stat()
            return {"kind": "zip", "path": self.archive.filename, "bytes": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns}
        used = sorted(used)
        return {"kind": "folder", "path": self.origin.relative_to(self.raw).as_posix(), "files": len(used),
                "bytes": sum((self.raw / n).stat().st_size for n in used)}

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
