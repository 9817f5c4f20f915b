"""The baselines beyond the shared contract: training-only auxiliary heads, smp variants, ImageNet
weights from local files, and DenseCLIP as the BEMSeg family's parts.

The shared model tester (test_models.py) already runs every registered baseline through the model
contract; these tests pin what is particular to them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from fvcore.nn import FlopCountAnalysis

import bemseg
from baselines.resnet_segmentor import AUX_STAGE, SmpDecodeHead
from bemseg.atomic import sha256_file
from bemseg.complexity import count_flops, parameter_counts
from bemseg.errors import ModelError, WeightsError
from bemseg.models.context_decoder import ContextDecoder

NUM_CLASSES = 3
SIZE = 64


def build(name: str, **options) -> bemseg.models.base.SegmentationModel:
    torch.manual_seed(0)
    return bemseg.create_model(name, NUM_CLASSES, **options)


def batch(size: tuple[int, int] = (SIZE, SIZE)) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(2, 3, *size), torch.randint(0, NUM_CLASSES, (2, *size))


# --- auxiliary heads: trained, never run at inference, never counted -------------------------------


@pytest.mark.parametrize("name", ["pspnet", "deeplabv3plus"])
def test_aux_head_runs_in_training_only_and_is_absent_from_the_flop_count(name):
    model = build(name)
    assert model.loss_weights == {"main": 1.0, "aux": 0.4}
    stage3 = torch.zeros(1, model.encoder.out_channels[AUX_STAGE], SIZE // 8, SIZE // 8)
    assert FlopCountAnalysis(model.aux_head.eval(), (stage3,)).total() > 0, "fvcore would see the head if it ran"

    calls = []
    model.aux_head.register_forward_hook(lambda *_: calls.append(1))

    images, labels = batch()
    with torch.no_grad():
        model.eval()(images)
    assert not calls, "the auxiliary head ran in the eval forward"
    flops, _ = count_flops(model, SIZE)
    assert not calls, "the auxiliary head ran in the counted forward"

    stripped = copy.deepcopy(model)
    del stripped.aux_head
    stripped.aux_head = None
    assert count_flops(stripped, SIZE)[0] == flops

    losses = model.train()(images, labels)
    assert len(calls) == 1 and set(losses) == {"main", "aux", "total"}


def test_semantic_fpn_has_no_aux_head_by_default():
    model = build("semantic_fpn")
    assert model.aux_head is None and model.loss_weights == {"main": 1.0}


# --- smp's own models behind `head: smp` -------------------------------------------------------------


@pytest.mark.parametrize("name, decoder", [("pspnet", "PSPDecoder"), ("deeplabv3plus", "DeepLabV3PlusDecoder"),
                                           ("semantic_fpn", "FPNDecoder")])
def test_smp_variant_is_selectable_and_keeps_the_contract(name, decoder):
    model = build(name, head="smp")
    assert isinstance(model.decode_head, SmpDecodeHead)
    assert type(model.decode_head.decoder).__name__ == decoder
    assert type(model.decode_head.decoder).__module__.startswith("segmentation_models_pytorch")
    assert model.aux_head is None and model.loss_weights == {"main": 1.0}

    with torch.no_grad():
        logits = model.eval()(torch.randn(1, 3, 72, 88))  # not a multiple of smp's output stride
    assert logits.shape == (1, NUM_CLASSES, 72, 88) and torch.isfinite(logits).all()
    losses = model.train()(*batch())
    assert set(losses) == {"main", "total"} and torch.isfinite(losses["total"])


def test_smp_deeplabv3plus_takes_an_aux_head_on_request():
    model = build("deeplabv3plus", head="smp", aux_weight=0.4)
    assert set(model.train()(*batch())) == {"main", "aux", "total"}


def test_bad_baseline_options_are_clear_errors():
    with pytest.raises(ModelError, match=r"aux_weight.*smp's PSPNet"):
        build("pspnet", head="smp", aux_weight=0.4)
    with pytest.raises(ModelError, match="option 'head' has the invalid value 'mmcv'"):
        build("pspnet", head="mmcv")
    with pytest.raises(ModelError, match="unknown option 'channels'"):
        build("semantic_fpn", channels=64)


# --- ImageNet weights from local files ---------------------------------------------------------------


def mmpretrain_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A timm resnet50c state dict under mmpretrain ResNetV1c's names, with its classifier."""
    stem = {"conv1.0": "stem.0.conv", "conv1.1": "stem.0.bn", "conv1.3": "stem.1.conv", "conv1.4": "stem.1.bn",
            "conv1.6": "stem.2.conv", "bn1": "stem.2.bn"}
    renamed = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        head = module.startswith("fc")
        renamed[f"head.{key}" if head else f"backbone.{stem.get(module, module)}.{leaf}"] = value
    return renamed


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A folder with timm, mmpretrain and torchvision ResNet-50 files registered in a sidecar manifest."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(1)
    timm_state = timm.create_model("resnet50c", pretrained=False).state_dict()
    torch.save(timm_state, folder / "resnet50c_random.pth")
    torch.save({"meta": {"arch": "ResNetV1c"}, "state_dict": mmpretrain_layout(timm_state)},
               folder / "resnetv1c50_random.pth")
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), folder / "resnet50_torchvision.pth")
    lines = [f"{sha256_file(p)}  {p.name}" for p in sorted(folder.glob("*.pth"))]
    (folder / "weights.sha256").write_text("\n".join(lines) + "\n")
    return folder, timm_state


@pytest.mark.parametrize("filename", ["resnet50c_random.pth", "resnetv1c50_random.pth"])
def test_timm_and_mmpretrain_weights_load_into_the_encoder(weight_files, filename):
    folder, source = weight_files
    model = build("semantic_fpn", pretrained=folder / filename)
    assert model.weights == f"ImageNet weights from {filename}"
    loaded = model.encoder.model.state_dict()
    assert set(loaded) == set(source) - {"fc.weight", "fc.bias"}
    assert all(torch.equal(loaded[k], source[k]) for k in loaded)


def test_weights_load_into_smp_pspnet_truncated_encoder(weight_files):
    folder, source = weight_files
    model = build("pspnet", head="smp", pretrained=folder / "resnetv1c50_random.pth")
    loaded = model.encoder.model.state_dict()
    assert not any(k.startswith(("layer3", "layer4")) for k in loaded)
    assert all(torch.equal(loaded[k], source[k]) for k in loaded)


def test_single_7x7_stem_weights_are_refused(weight_files):
    folder, _ = weight_files
    with pytest.raises(WeightsError, match=r"resnet50_torchvision\.pth has a single 7x7 stem.*deep 3-conv stem"):
        build("pspnet", pretrained=folder / "resnet50_torchvision.pth")


def test_wrong_checksum_and_missing_file_are_clear_errors(weight_files, tmp_path):
    folder, _ = weight_files
    copied = tmp_path / "resnet50c_random.pth"
    copied.write_bytes((folder / "resnet50c_random.pth").read_bytes())
    (tmp_path / "weights.sha256").write_text(f"{'0' * 64}  resnet50c_random.pth\n")
    with pytest.raises(WeightsError, match=r"resnet50c_random\.pth has sha256 .* but 0{64} was expected"):
        build("semantic_fpn", pretrained=copied)
    with pytest.raises(WeightsError, match=r"weight file resnet50c_absent\.pth not found"):
        build("semantic_fpn", pretrained=tmp_path / "resnet50c_absent.pth")


# --- DenseCLIP: the BEMSeg family's parts, nothing of its own ---------------------------------------


def test_denseclip_is_clip_fpn_plus_one_context_decoder_and_its_gamma():
    denseclip, clip_fpn = build("denseclip"), build("clip_fpn")
    dim = denseclip.image_encoder.embed_dim
    decoder = ContextDecoder(dim, width=256, heads=4, layers=3)
    extra = sum(p.numel() for p in decoder.parameters()) + dim
    assert parameter_counts(denseclip)[0] == parameter_counts(clip_fpn)[0] + extra
    fusion = denseclip.fusion
    assert len(fusion.decoders) == 1 and fusion.gamma_image is None
    assert torch.all(fusion.gamma_text == 1e-4)
