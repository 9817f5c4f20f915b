"""The training recipe (docs/RECIPE.md): each model's default, its optimiser and parameter groups, mmcv's
poly schedule with warm-up and per-group minimum, the cross-entropy reduction, the reference initialisation,
and the precision choice."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re

import pytest
import torch

import bemseg
from baselines.aux_head import AUX_WEIGHT
from baselines.resnet_segmentor import MMSEG_SGD_RECIPE
from bemseg.cli import main
from bemseg.config import load_schema
from bemseg.data.catalog import IGNORE_INDEX, DatasetInfo
from bemseg.data.normalization import NORMS
from bemseg.data.transforms import TrainPipeline, photometric_distortion
from bemseg.engine.device import resolve_precision
from bemseg.engine.optim import build_optimizer, param_groups, set_lr
from bemseg.engine.train import train
from bemseg.errors import ConfigError
from bemseg.models.clip_segmentor import CLIP_RECIPE, ClipSegConfig
from bemseg.models.context_decoder import ContextDecoder
from bemseg.models.recipe import Recipe
from bemseg.models.seg_loss import seg_cross_entropy
from tests.conftest import REPO
from tests.engine_helpers import prepared_potsdam, run_config, write_config

BASELINES = ("pspnet", "deeplabv3plus", "semantic_fpn")
PAPER_ITERATIONS = 80000


def mmcv_poly_lr(base: float, iteration: int, max_iters: int, power: float, min_lr: float,
                 warmup_iters: int = 0, warmup_ratio: float = 1.0) -> float:
    """mmcv 1.x: PolyLrUpdaterHook.get_lr for one group, then LrUpdaterHook's linear warm-up (by_epoch=False)."""
    regular = (base - min_lr) * (1 - iteration / max_iters) ** power + min_lr
    if warmup_iters and iteration < warmup_iters:
        k = (1 - iteration / warmup_iters) * (1 - warmup_ratio)
        return regular * (1 - k)
    return regular


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_potsdam(tmp_path_factory.mktemp("potsdam"))


def build(name: str):
    torch.manual_seed(0)
    return bemseg.create_model(name, 6)


def test_every_model_declares_the_recipe_of_its_reference_pipeline():
    assert (MMSEG_SGD_RECIPE.optimizer, MMSEG_SGD_RECIPE.lr, MMSEG_SGD_RECIPE.momentum,
            MMSEG_SGD_RECIPE.weight_decay, MMSEG_SGD_RECIPE.encoder_lr_mult, MMSEG_SGD_RECIPE.no_decay,
            MMSEG_SGD_RECIPE.poly_power, MMSEG_SGD_RECIPE.min_lr, MMSEG_SGD_RECIPE.warmup_iters) == \
        ("sgd", 0.01, 0.9, 5e-4, 1.0, (), 0.9, 1e-4, 0)  # mmsegmentation 0.x schedule_80k.py
    assert (CLIP_RECIPE.optimizer, CLIP_RECIPE.lr, CLIP_RECIPE.weight_decay, CLIP_RECIPE.encoder_lr_mult,
            CLIP_RECIPE.no_decay, CLIP_RECIPE.poly_power, CLIP_RECIPE.min_lr, CLIP_RECIPE.warmup_iters,
            CLIP_RECIPE.warmup_ratio) == \
        ("adamw", 1e-4, 1e-4, 0.1, ("norm",), 0.9, 1e-6, 1500, 1e-6)  # paper 4.1.3 + DenseCLIP's config
    assert MMSEG_SGD_RECIPE.loss_reduction == CLIP_RECIPE.loss_reduction == "all_pixels"
    for name in bemseg.list_models():
        expected = MMSEG_SGD_RECIPE if name in BASELINES else CLIP_RECIPE
        assert type(build(name)).recipe is expected, name


@pytest.mark.parametrize("name", ["bemseg", "pspnet"])
def test_schedule_follows_mmcv_poly_with_warmup_and_per_group_minimum(name):
    model = build(name)
    recipe = model.recipe
    optimizer = build_optimizer(model, recipe)
    warmup = recipe.warmup_iters
    points = sorted({0, 1, max(warmup - 1, 0), warmup, PAPER_ITERATIONS // 2, PAPER_ITERATIONS - 1,
                     PAPER_ITERATIONS})
    for iteration in points:
        set_lr(optimizer, recipe, iteration, PAPER_ITERATIONS)
        for group in optimizer.param_groups:
            base = recipe.lr * (recipe.encoder_lr_mult if group["name"].startswith("encoder") else 1.0)
            expected = mmcv_poly_lr(base, iteration, PAPER_ITERATIONS, recipe.poly_power, recipe.min_lr,
                                    recipe.warmup_iters, recipe.warmup_ratio)
            assert group["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-18), (iteration, group["name"])
    # every group, the encoder's included, ends at the minimum (mmcv's min_lr is per group, not scaled)
    assert [group["lr"] for group in optimizer.param_groups] == \
        [pytest.approx(recipe.min_lr)] * len(optimizer.param_groups)
    if name == "bemseg":
        set_lr(optimizer, recipe, 0, PAPER_ITERATIONS)
        encoder = next(g for g in optimizer.param_groups if g["name"] == "encoder")
        assert encoder["lr"] == pytest.approx(1e-5 * 1e-6)  # warm-up starts at warmup_ratio x the group's rate


def test_clip_recipe_groups_follow_denseclips_custom_keys():
    model = build("bemseg")
    groups = {g["name"]: g for g in param_groups(model, CLIP_RECIPE)}
    names = {id(p): n for n, p in model.named_parameters()}
    members = {name: {names[id(p)] for p in group["params"]} for name, group in groups.items()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set().union(*members.values()) == trainable and sum(map(len, members.values())) == len(trainable)
    assert not any(n.startswith("text_tower.tower.") for n in trainable), "the frozen text encoder is left out"
    assert members["encoder"] == {n for n in trainable if n.startswith("image_encoder.")}
    # 'norm': decay_mult 0 matches the fusion decoders' layer norms (norm1-3), not the projections' LayerNorms,
    # not BatchNorm (named bn / by index), not the gammas or the prompt context: exactly as in DenseCLIP
    no_decay = {n for n in trainable if any(f".norm{i}." in n for i in (1, 2, 3))}
    assert members["head (no decay)"] == no_decay and len(no_decay) == 2 * 2 * 3 * 3
    assert {"fusion.gamma_image", "fusion.gamma_text", "text_tower.context"} <= members["head"]
    assert (groups["encoder"]["lr"], groups["encoder"]["weight_decay"]) == (pytest.approx(1e-5), 1e-4)
    assert (groups["head"]["lr"], groups["head"]["weight_decay"]) == (1e-4, 1e-4)
    assert groups["head (no decay)"]["weight_decay"] == 0.0
    assert isinstance(build_optimizer(model, CLIP_RECIPE), torch.optim.AdamW)


def _record_steps(monkeypatch, optimizer_class: type[torch.optim.Optimizer]) -> list[list[dict]]:
    """Patch `optimizer_class.step` to record every group's settings at each call; other optimisers fail."""
    steps: list[list[dict]] = []
    real_step = optimizer_class.step

    def recording(self, *args, **kwargs):
        steps.append([{k: v for k, v in group.items() if k != "params"} for group in self.param_groups])
        return real_step(self, *args, **kwargs)

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{type(self).__name__} ran instead of {optimizer_class.__name__}")

    monkeypatch.setattr(optimizer_class, "step", recording)
    for other in (torch.optim.SGD, torch.optim.AdamW):
        if other is not optimizer_class:
            monkeypatch.setattr(other, "step", refuse)
    return steps


@pytest.mark.parametrize(("name", "warmup"), [(name, 0) for name in BASELINES] + [("clip_fpn", 3)])
def test_bemseg_train_runs_the_models_recipe(prepared, tmp_path, monkeypatch, name, warmup):
    """`bemseg train` with the model's default recipe: optimiser, groups and rates at the reference's iterations."""
    iterations = 8
    config = run_config(prepared, model=name, iterations=iterations, checkpoint_every=100)
    config["train"]["recipe"] = {"warmup_iters": warmup} if warmup else {}  # baselines: the default recipe as is
    recipe = type(build(name)).recipe.with_overrides(config["train"]["recipe"])
    steps = _record_steps(monkeypatch, torch.optim.SGD if recipe.optimizer == "sgd" else torch.optim.AdamW)
    assert main(["train", "--config", str(write_config(tmp_path / "run.yaml", config)),
                 "--out", str(tmp_path / "run")]) == 0
    assert len(steps) == iterations
    checked = {0, 1, iterations // 2, iterations - 1} | ({warmup - 1, warmup} if warmup else set())
    for iteration in sorted(checked):
        for group in steps[iteration]:
            encoder = group["name"].startswith("encoder")
            base = recipe.lr * (recipe.encoder_lr_mult if encoder else 1.0)
            assert group["initial_lr"] == pytest.approx(base)
            assert group["lr"] == pytest.approx(mmcv_poly_lr(base, iteration, iterations, recipe.poly_power,
                                                             recipe.min_lr, recipe.warmup_iters,
                                                             recipe.warmup_ratio), rel=1e-12), (iteration, group)
            decayed = not group["name"].endswith("(no decay)")
            assert group["weight_decay"] == (recipe.weight_decay if decayed else 0.0)
            if recipe.optimizer == "sgd":
                assert (group["momentum"], group["dampening"], group["nesterov"]) == (0.9, 0, False)
            else:
                assert group["betas"] == (0.9, 0.999)
    if recipe.optimizer == "sgd":  # mmsegmentation's configs have no parameter-wise settings: all decayed, lr x1
        assert {g["name"] for g in steps[0]} == {"encoder", "head"}
        assert {g["initial_lr"] for g in steps[0]} == {0.01}
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["recipe"] == recipe.as_dict() and summary["precision"] == "fp32"


def test_recipe_overrides_are_validated_and_a_changed_recipe_is_not_resumed(prepared, tmp_path, capsys):
    config = run_config(prepared, iterations=2)
    config["train"]["recipe"]["lrr"] = 0.1
    assert main(["train", "--config", str(write_config(tmp_path / "bad.yaml", config)),
                 "--out", str(tmp_path / "bad")]) == 2
    assert "config field 'train.recipe.lrr': unknown field" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"'train.recipe.optimizer'"):
        MMSEG_SGD_RECIPE.with_overrides({"optimizer": "adam"})
    with pytest.raises(ConfigError, match=r"'train.recipe.min_lr'"):
        CLIP_RECIPE.with_overrides({"min_lr": 1e-3})


def test_cross_entropy_reductions():
    logits = torch.zeros(1, 4, 2, 2)  # uniform: every labelled pixel costs log(4)
    labels = torch.tensor([[[0, 1], [255, 255]]])
    assert seg_cross_entropy(logits, labels, "all_pixels").item() == pytest.approx(math.log(4) / 2)
    assert seg_cross_entropy(logits, labels, "labelled_pixels").item() == pytest.approx(math.log(4))
    nothing = torch.full((1, 2, 2), 255)
    for reduction in ("all_pixels", "labelled_pixels"):
        loss = seg_cross_entropy(logits.requires_grad_(), nothing, reduction)
        assert loss.item() == 0.0
        loss.backward()


@pytest.mark.parametrize("name", ["clip_fpn", "pspnet"])
def test_the_models_losses_use_the_recipes_reduction(name):
    model = build(name).train()
    images = torch.randn(2, 3, 32, 32)
    labels = torch.randint(0, 6, (2, 32, 32))
    labels[:, :16] = 255  # half the pixels ignored: the two reductions differ by a factor of 2
    torch.manual_seed(1)
    all_pixels = model(images, labels)
    model.loss_reduction = "labelled_pixels"
    torch.manual_seed(1)
    labelled = model(images, labels)
    for term in set(all_pixels) - {"total", "cpc"}:
        assert labelled[term].item() == pytest.approx(2 * all_pixels[term].item(), rel=1e-4), term


def test_training_applies_the_recipes_loss_reduction(prepared, tmp_path, monkeypatch):
    from baselines.resnet_segmentor import ResNetSegmentor

    seen = []
    real = ResNetSegmentor.forward_train

    def spy(self, images, labels):
        seen.append(self.loss_reduction)
        return real(self, images, labels)

    monkeypatch.setattr(ResNetSegmentor, "forward_train", spy)
    train(run_config(prepared, iterations=1, recipe={"loss_reduction": "labelled_pixels"}), tmp_path / "a")
    train(run_config(prepared, iterations=1), tmp_path / "b")
    assert seen == ["labelled_pixels", "all_pixels"]


def _fan(conv: torch.nn.Conv2d) -> tuple[int, int]:
    receptive = conv.kernel_size[0] * conv.kernel_size[1]
    return conv.in_channels // conv.groups * receptive, conv.out_channels * receptive


@pytest.mark.parametrize(("name", "decoder"), [("clip_fpn", "decoder"), ("semantic_fpn", "decode_head")])
def test_fpn_neck_and_head_start_as_mmcv_initialises_them(name, decoder):
    fpn = getattr(build(name), decoder)
    neck_convs = [*fpn.neck.lateral, *fpn.neck.output]
    for conv in neck_convs:  # Xavier uniform (gain 1), bias 0: FPN's init_cfg
        fan_in, fan_out = _fan(conv)
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
        assert conv.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
        assert torch.all(conv.bias == 0)
    head_convs = [m for m in fpn.head.scale_heads.modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in head_convs:  # ConvModule: Kaiming normal, fan_out, ReLU gain; no bias (BatchNorm follows)
        assert conv.bias is None
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / _fan(conv)[1]), rel=0.1)
    classifier = fpn.head.classifier[1]  # conv_seg: N(0, 0.01), bias 0
    assert classifier.weight.std().item() == pytest.approx(0.01, rel=0.3) and torch.all(classifier.bias == 0)
    norms = [m for m in fpn.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)


def test_precision_choices(prepared, tmp_path):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu).dtype is None
    with pytest.raises(ConfigError, match=r"'train.precision': 'fp16' needs a CUDA device"):
        resolve_precision("fp16", cpu)
    mixed = resolve_precision("mixed", cpu)
    assert mixed.name in ("bf16", "fp32") and not mixed.scaler
    summary = train(run_config(prepared, iterations=2, precision="bf16"), tmp_path / "bf16")
    assert summary["precision"] == "bf16" and summary["provenance"]["precision"] == "bf16"
    assert all(math.isfinite(v) for v in summary["final_losses"].values())


def test_recipe_round_trips_and_describes_itself():
    for recipe in (CLIP_RECIPE, MMSEG_SGD_RECIPE):
        assert Recipe.from_dict(recipe.as_dict()) == recipe
    assert MMSEG_SGD_RECIPE.describe().startswith("SGD (momentum 0.9), lr 0.01, weight decay 0.0005")
    assert "lr 0.0001 (encoder x0.1)" in CLIP_RECIPE.describe() and "warm-up 1500" in CLIP_RECIPE.describe()
    changed = MMSEG_SGD_RECIPE.with_overrides({"optimizer": "adamw", "lr": 0.001, "momentum": 0.9})
    assert changed.overridden == ("lr", "optimizer")  # momentum was already 0.9
    assert changed.describe().startswith("AdamW") and changed.describe().endswith(
        "[changed by the run config: lr, optimizer]")
    assert Recipe.from_dict(changed.as_dict()) == changed


def test_context_decoders_start_as_denseclips():
    torch.manual_seed(0)
    decoder = ContextDecoder(1024, width=256, heads=4, layers=3)
    linears = [m for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
    # trunc_normal_(std=0.02) as timm and torch define it cuts at +-2 in absolute terms: in effect N(0, 0.02)
    assert all(m.weight.std().item() == pytest.approx(0.02, rel=0.05) for m in linears)
    assert all(m.weight.abs().max() > 0.06 for m in linears if m.weight.numel() > 100_000)  # not cut at 2 std
    assert all(torch.all(m.bias == 0) for m in linears if m.bias is not None)
    norms = [m for m in decoder.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)


def _format(value) -> str:
    """A code value as docs/RECIPE.md writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _resolve(setting: str):
    """The code value a RECIPE.md setting names: `A.b` (a class's default or an object's field), `run.S.f`, `NAME`."""
    head, _, rest = setting.partition(".")
    if head == "run":
        section, name = rest.split(".")
        return load_schema("run")["properties"][section]["properties"][name]["default"]
    objects = {"CLIP_RECIPE": CLIP_RECIPE, "MMSEG_SGD_RECIPE": MMSEG_SGD_RECIPE, "ClipSegConfig": ClipSegConfig(),
               "TrainPipeline": TrainPipeline(), "NORMS": NORMS, "IGNORE_INDEX": IGNORE_INDEX,
               "AUX_WEIGHT": AUX_WEIGHT}
    if head == "photometric_distortion":
        return inspect.signature(photometric_distortion).parameters[rest].default
    if head == "DatasetInfo":
        return next(f.default for f in dataclasses.fields(DatasetInfo) if f.name == rest)
    value = objects[head]
    return (value[rest] if isinstance(value, dict) else getattr(value, rest)) if rest else value


def test_recipe_table_matches_the_code():
    rows = [line.strip("|").split(" | ") for line in (REPO / "docs/RECIPE.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| item") and not line.startswith("| ---")]
    assert len(rows) > 50
    checked = 0
    for item, _reference, ours, setting, test in (map(str.strip, row) for row in rows):
        file, _, name = test.strip("`").partition("::")
        assert re.search(rf"^\s*def {name}\(", (REPO / "tests" / file).read_text(), re.M), f"{item}: no test {test}"
        if setting != "-":
            assert _format(_resolve(setting.strip("`"))) == ours.strip("`"), f"{item}: docs say {ours}, code differs"
            checked += 1
    assert checked >= 45
