"""The shared model tester: every registered model keeps the model contract (bemseg/models/base.py).

Parametrised over `list_models()`, so a new baseline or variant is tested by being registered.
Inputs are tiny (64x64, 3 classes) so the whole class runs in seconds per model.
"""

from __future__ import annotations

import pytest
import torch

import bemseg
import bemseg.errors
from bemseg.models.base import INPUT_NORMS
from bemseg.models.recipe import Recipe

NUM_CLASSES = 3
CLASS_NAMES = ["impervious surface", "building", "low_vegetation"]


def build(name: str) -> bemseg.models.base.SegmentationModel:
    torch.manual_seed(0)
    return bemseg.create_model(name, NUM_CLASSES, class_names=CLASS_NAMES)


def labels_for(images: torch.Tensor) -> torch.Tensor:
    labels = torch.randint(0, NUM_CLASSES, (images.shape[0], *images.shape[-2:]))
    labels[:, :4, :4] = 255  # some ignored pixels
    return labels


@pytest.mark.parametrize("name", bemseg.list_models())
class TestModelContract:
    def test_train_forward_returns_named_finite_losses(self, name):
        model = build(name).train()
        images = torch.randn(2, 3, 64, 64)
        losses = model(images, labels_for(images))
        assert "main" in losses and "total" in losses
        assert set(losses) - {"total"} <= set(model.loss_weights)
        for key, value in losses.items():
            assert value.ndim == 0, key
            assert torch.isfinite(value), key
        expected = sum(model.loss_weights[k] * v for k, v in losses.items() if k != "total")
        torch.testing.assert_close(losses["total"], expected)

    def test_gradients_reach_every_trainable_parameter_and_no_frozen_one(self, name):
        model = build(name).train()
        images = torch.randn(2, 3, 64, 64)
        model(images, labels_for(images))["total"].backward()
        unreached = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not unreached, f"no gradient reaches {unreached[:5]}"
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        text = model.text_encoder
        if text is not None:
            frozen = [p for p in text.parameters() if not p.requires_grad]
            assert frozen, "the text encoder must be frozen"
            assert all(p.grad is None for p in frozen)
            context = [p for n, p in text.named_parameters() if p.requires_grad]
            assert context and all(p.grad is not None and p.grad.abs().sum() > 0 for p in context), \
                "the prompt context must receive gradient through the frozen text encoder"

    def test_gammas_start_at_1e_4(self, name):
        model = build(name)
        for param_name, param in model.named_parameters():
            if "gamma" in param_name.split(".")[-1]:
                assert torch.all(param == 1e-4), param_name

    @pytest.mark.parametrize("size", [(64, 64), (72, 88)])
    def test_eval_logits_match_input_size(self, name, size):
        model = build(name).eval()
        with torch.no_grad():
            logits = model(torch.randn(1, 3, *size))
        assert logits.shape == (1, NUM_CLASSES, *size)
        assert torch.isfinite(logits).all()

    def test_declares_its_contract(self, name):
        model = build(name)
        assert model.input_norm in INPUT_NORMS
        assert model.model_name == name
        assert model.encoder is not None and any(True for _ in model.encoder.parameters())
        assert name in model.describe() and model.weights in model.describe()
        assert isinstance(model.recipe, Recipe), "every model declares its training recipe"


def test_registry_listing_without_imports_agrees_with_the_registry():
    declared = bemseg.declared_models()
    assert set(declared) == set(bemseg.list_models())


def test_unknown_model_and_unknown_option_are_clear_errors():
    with pytest.raises(bemseg.errors.ModelError, match=r"unknown model 'bemsg'.*did you mean bemseg"):
        bemseg.create_model("bemsg", 6)
    with pytest.raises(bemseg.errors.ModelError, match="unknown option 'lamda1'"):
        bemseg.create_model("bemseg", 6, lamda1=0.3)
    with pytest.raises(bemseg.errors.ModelError, match="lambda2"):
        bemseg.create_model("bemseg", 6, lambda2=1.5)
