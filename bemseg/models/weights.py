"""Pretrained weights from local files only, each checked against a recorded sha256.

Nothing is downloaded: users place the files (README, "Real data and weights") and name them in
the config. A file is accepted when its sha256 matches the shipped manifest
(`bemseg/resources/weights.sha256`) or a `weights.sha256` file beside it (sha256sum format), so
users can register weights of their own. Publishers that state only a prefix of the hash
(torchvision, OpenMMLab: 8 hex digits in the file name) are recorded as that prefix.

Two formats load through one path: OpenAI's TorchScript archives (`RN50.pt`) and plain
`torch.save` state dicts (open_clip, timm, torchvision, mmpretrain), read with `weights_only=True`.
Importing this module does not import torch, so config checks can name a missing file's checksum
and origin (`missing_weights`) while the workflow is parsed.
"""

from __future__ import annotations

import functools
import warnings
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from bemseg.atomic import sha256_file
from bemseg.errors import WeightsError

if TYPE_CHECKING:
    import torch

SIDECAR = "weights.sha256"


@dataclass(frozen=True)
class KnownWeights:
    """A manifest line: the (prefix of the) sha256, the file name, and where it comes from."""

    sha256: str
    filename: str
    origin: str


def _parse_manifest(text: str) -> dict[str, KnownWeights]:
    known = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(maxsplit=2)
        if len(parts) < 2:
            continue
        name = parts[1].lstrip("*")
        known[name] = KnownWeights(parts[0].lower(), name, parts[2] if len(parts) > 2 else "")
    return known


@functools.cache
def shipped_manifest() -> dict[str, KnownWeights]:
    """The weight files the suite knows, by file name."""
    return _parse_manifest(resources.files("bemseg.resources").joinpath(SIDECAR).read_text())


def expected_checksum(path: Path) -> KnownWeights | None:
    """The recorded checksum for `path`: the sidecar manifest beside it first, then the shipped one."""
    sidecar = path.parent / SIDECAR
    if sidecar.is_file():
        entry = _parse_manifest(sidecar.read_text()).get(path.name)
        if entry is not None:
            return entry
    return shipped_manifest().get(path.name)


def missing_weights(path: str | Path) -> str:
    """What to say about a weight file that is not there: where it was looked for, its checksum, its origin."""
    path = Path(path)
    known = expected_checksum(path)
    expected = f"expected sha256 {known.sha256}" if known else "no checksum recorded"
    origin = f"; get it from {known.origin}" if known and known.origin else ""
    return f"weight file {path.name} not found (looked in {path.parent.resolve()}); {expected}{origin}"


def verify_weights(path: str | Path) -> str:
    """Check that `path` exists and matches its recorded sha256; return the full sha256."""
    path = Path(path)
    known = expected_checksum(path)
    if not path.is_file():
        raise WeightsError(f"{missing_weights(path)}; or set pretrained to null for random initialisation")
    digest = sha256_file(path)
    if known is None:
        raise WeightsError(f"weight file {path} has no recorded checksum (sha256 {digest}); if you trust it, "
                           f"add the line '{digest}  {path.name}' to {path.parent / SIDECAR}")
    if not digest.startswith(known.sha256):
        raise WeightsError(f"weight file {path} has sha256 {digest} but {known.sha256} was expected; "
                           "the file is corrupt or a different release: download it again")
    return digest


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Verify `path` and return its tensors as a flat state dict (wrappers and 'module.' removed)."""
    import torch

    path = Path(path)
    verify_weights(path)
    try:
        with warnings.catch_warnings():  # torch's notices (jit.load is deprecated, ...) say nothing about the file
            warnings.simplefilter("ignore")
            if _is_torchscript(path):
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to deserialise means the file is not a weight file we can read
        raise WeightsError(f"weight file {path} could not be read ({type(exc).__name__}); "
                           "expected a TorchScript archive or a torch.save'd state dict") from exc
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise WeightsError(f"weight file {path} holds a {type(state).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path | str, what: str) -> None:
    """`module.load_state_dict(state)` with every key accounted for, or a one-line WeightsError."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise WeightsError(f"weight file {source} does not fit the {what}: {first_mismatch(exc)}") from exc
    if result.missing_keys or result.unexpected_keys:
        missing = f"missing {len(result.missing_keys)} (e.g. {result.missing_keys[:2]})" if result.missing_keys else ""
        extra = (f"unexpected {len(result.unexpected_keys)} (e.g. {result.unexpected_keys[:2]})"
                 if result.unexpected_keys else "")
        raise WeightsError(f"weight file {source} does not fit the {what}: {'; '.join(filter(None, [missing, extra]))}")


def first_mismatch(exc: RuntimeError) -> str:
    """The first of the size mismatches `load_state_dict` lists (one per line) in its RuntimeError."""
    text = str(exc)
    return (text.split("\n\t")[1] if "\n\t" in text else text).strip()
