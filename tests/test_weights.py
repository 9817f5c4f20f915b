"""Loading CLIP weights from local files: the same code path for real and test-made files, clear errors."""

from __future__ import annotations

import hashlib

import open_clip
import pytest
import torch

import bemseg
from bemseg.atomic import sha256_file
from bemseg.cli import main
from bemseg.errors import WeightsError
from bemseg.models.weights import SIDECAR, verify_weights


@pytest.fixture(scope="module")
def clip_reference():
    """A randomly initialised open_clip RN50 (QuickGELU, as OpenAI's) and its state dict."""
    torch.manual_seed(123)
    model = open_clip.create_model("RN50-quickgelu", pretrained=None)
    return model, model.state_dict()


def register(path):
    (path.parent / SIDECAR).write_text(f"{sha256_file(path)}  {path.name}\n")


def saved(state, path):
    """`state` saved to `path` and registered in the sidecar checksum file."""
    torch.save(state, path)
    register(path)
    return path


def check_loaded(model, reference_state):
    encoder = model.image_encoder.state_dict()
    for key in ("conv1.weight", "layer4.2.bn3.running_var", "attnpool.c_proj.weight"):
        torch.testing.assert_close(encoder[key], reference_state[f"visual.{key}"])
    # CLIP's 7x7 (+1) position table is resized into the 16x16 (+1) table of a 512 crop.
    assert encoder["attnpool.positional_embedding"].shape == (257, 2048)
    torch.testing.assert_close(encoder["attnpool.positional_embedding"][0],
                               reference_state["visual.attnpool.positional_embedding"][0])
    tower = model.text_encoder.tower.state_dict()
    for key in ("token_embedding.weight", "transformer.resblocks.11.mlp.c_proj.weight", "text_projection"):
        torch.testing.assert_close(tower[key], reference_state[key])
    assert "RN50" in model.weights or ".pt" in model.weights or ".bin" in model.weights


def test_open_clip_state_dict_loads(tmp_path, clip_reference):
    _, state = clip_reference
    path = saved(state, tmp_path / "open_clip_rn50.bin")
    model = bemseg.create_model("bemseg", 6, pretrained=path)
    check_loaded(model, state)
    assert path.name in model.weights


def test_torchscript_export_loads_through_the_same_path(tmp_path, clip_reference):
    reference, state = clip_reference

    class Holder(torch.nn.Module):
        """A TorchScript archive whose state dict has OpenAI's names (as RN50.pt has)."""

        def __init__(self) -> None:
            super().__init__()
            self.visual = reference.visual
            self.transformer = reference.transformer
            self.token_embedding = reference.token_embedding
            self.positional_embedding = reference.positional_embedding
            self.ln_final = reference.ln_final
            self.text_projection = reference.text_projection
            self.logit_scale = reference.logit_scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    path = tmp_path / "RN50-export.pt"
    torch.jit.script(Holder()).save(str(path))
    register(path)
    model = bemseg.create_model("clip_fpn", 6, pretrained=path)
    check_loaded(model, state)


def test_text_free_model_takes_only_the_trunk(tmp_path, clip_reference):
    _, state = clip_reference
    path = saved(state, tmp_path / "rn50.bin")
    model = bemseg.create_model("clip_rn50_fpn", 6, pretrained=path)
    torch.testing.assert_close(model.image_encoder.state_dict()["layer1.0.conv1.weight"],
                               state["visual.layer1.0.conv1.weight"])


def test_wrong_checksum_is_a_clear_error(tmp_path, clip_reference):
    path = tmp_path / "rn50.bin"
    torch.save({"visual.conv1.weight": torch.zeros(1)}, path)
    (tmp_path / SIDECAR).write_text(f"{hashlib.sha256(b'other').hexdigest()}  rn50.bin\n")
    with pytest.raises(WeightsError, match=r"rn50\.bin has sha256 .* but .* was expected.*download it again"):
        verify_weights(path)


def test_shipped_manifest_guards_the_openai_file_name(tmp_path):
    path = tmp_path / "RN50.pt"
    path.write_bytes(b"not the real file")
    with pytest.raises(WeightsError, match="afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"):
        verify_weights(path)


def test_missing_file_names_file_place_and_checksum(tmp_path, capsys):
    missing = tmp_path / "weights" / "RN50.pt"
    with pytest.raises(WeightsError) as err:
        verify_weights(missing)
    message = str(err.value)
    assert "RN50.pt not found" in message and str(missing.parent) in message
    assert "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762" in message
    assert "\n" not in message


def test_unregistered_file_tells_how_to_register_it(tmp_path):
    path = tmp_path / "mine.pt"
    torch.save({}, path)
    with pytest.raises(WeightsError, match=f"add the line '{sha256_file(path)}  mine.pt'"):
        verify_weights(path)


def test_file_that_does_not_fit_is_a_clear_error(tmp_path):
    path = saved({"visual.conv1.weight": torch.zeros(2, 2)}, tmp_path / "tiny.bin")
    with pytest.raises(WeightsError, match="does not fit the CLIP RN50 image encoder"):
        bemseg.create_model("clip_rn50_fpn", 6, pretrained=path)


def test_cli_reports_missing_weights_in_one_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text(f"model: {{name: bemseg, pretrained: {tmp_path / 'RN50.pt'}}}\n"
                      f"data: {{dataset: potsdam, root: {tmp_path}}}\n")
    (tmp_path / "manifest.json").write_text("{}")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("bemseg: error:") and "RN50.pt" in err
