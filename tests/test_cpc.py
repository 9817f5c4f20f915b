"""CPC loss (Eq. 5-6) against a plain per-pixel loop written from the pinned reading."""

from __future__ import annotations

import math

import pytest
import torch

from bemseg.models.cpc import cpc_loss

IGNORE = 255


def reference_cpc(
    s: torch.Tensor,
    labels: torch.Tensor | None,
    eta: float,
    assign: str,
    reduction: str,
    detach_bank: bool = True,
) -> torch.Tensor:
    """Eq. 5-6 one pixel at a time: bank of per-image category means, then InfoNCE per positive."""
    b_size, c_size, h, w = s.shape
    pixels = []  # (image, category, raw score vector) of every participating pixel
    for b in range(b_size):
        for y in range(h):
            for x in range(w):
                if labels is not None and int(labels[b, y, x]) == IGNORE:
                    continue
                vec = s[b, :, y, x]
                cat = int(vec.argmax()) if assign == "pred" else int(labels[b, y, x])
                pixels.append((b, cat, vec))

    bank = []  # (category, normalised mean vector)
    for b in range(b_size):
        for c in range(c_size):
            members = [vec for (pb, pc, vec) in pixels if pb == b and pc == c]
            if members:
                mean = torch.stack(members).mean(0)
                if detach_bank:
                    mean = mean.detach()
                bank.append((c, mean / mean.norm()))

    total = s.sum() * 0
    for _, cat, vec in pixels:
        anchor = vec / vec.norm()
        positives = [p for (c, p) in bank if c == cat]
        negatives = [n for (c, n) in bank if c != cat]
        if not negatives:
            continue  # a single category in the batch: nothing to contrast against
        neg_sum = sum(torch.exp(anchor @ n / eta) for n in negatives)
        terms = []
        for p in positives:
            pos = torch.exp(anchor @ p / eta)
            terms.append(-torch.log(pos / (pos + neg_sum)))
        total = total + sum(terms) / len(positives)
    if reduction == "sum":
        return total / b_size
    return total / max(len(pixels), 1)


def make_case(seed: int, scenario: str, shape: tuple[int, int, int, int] = (3, 5, 4, 5)):
    """Random cosine-like scores in [-1, 1] and labels; scenarios add ignored pixels / absent classes."""
    gen = torch.Generator().manual_seed(seed)
    b, c, h, w = shape
    s = torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1
    labels = torch.randint(0, c, (b, h, w), generator=gen)
    if scenario in ("ignored", "absent"):
        labels[torch.rand((b, h, w), generator=gen) < 0.25] = IGNORE
    if scenario == "absent":
        # class c-1 absent from the whole batch, class 1 absent from image 0 (both assign modes)
        labels[labels == c - 1] = 0
        labels[0][labels[0] == 1] = 2
        s[:, c - 1] -= 3
        s[0, 1] -= 3
    return s, labels


@pytest.mark.parametrize("assign", ["pred", "label"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("scenario", ["plain", "ignored", "absent"])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_per_pixel_reference(assign: str, reduction: str, scenario: str, seed: int) -> None:
    s, labels = make_case(seed, scenario)
    eta = 0.1 if seed == 0 else 0.5
    got = cpc_loss(s, labels, eta=eta, assign=assign, reduction=reduction)
    want = reference_cpc(s, labels, eta, assign, reduction)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert got.item() > 0


def test_absent_scenario_really_lacks_classes() -> None:
    """Guard the fixture: the 'absent' case has a class missing in image 0 and one in the batch."""
    s, labels = make_case(0, "absent")
    pred = s.argmax(1)
    for cats in (pred, labels):
        assert not (cats == 4).any()
        assert not (cats[0] == 1).any()
        assert (cats[1:] == 1).any()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_pred_without_labels_uses_every_pixel(reduction: str) -> None:
    s, _ = make_case(3, "plain")
    got = cpc_loss(s, None, reduction=reduction)
    torch.testing.assert_close(got, reference_cpc(s, None, 0.1, "pred", reduction))
    all_valid = torch.zeros(s.shape[0], *s.shape[2:], dtype=torch.long)
    torch.testing.assert_close(got, cpc_loss(s, all_valid, reduction=reduction))


def test_ignored_pixels_change_the_loss() -> None:
    """Ignoring pixels must remove them from anchors and bank (guards against a no-op mask)."""
    s, labels = make_case(4, "ignored")
    assert (labels == IGNORE).any()
    kept = cpc_loss(s, labels, assign="pred")
    everything = cpc_loss(s, None, assign="pred")
    assert not torch.isclose(kept, everything)


@pytest.mark.parametrize("assign", ["pred", "label"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_invariant_to_batch_permutation(assign: str, reduction: str) -> None:
    s, labels = make_case(5, "absent", shape=(4, 6, 5, 5))
    perm = torch.tensor([2, 0, 3, 1])
    base = cpc_loss(s, labels, assign=assign, reduction=reduction)
    permuted = cpc_loss(s[perm], labels[perm], assign=assign, reduction=reduction)
    torch.testing.assert_close(permuted, base, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("assign", ["pred", "label"])
def test_lower_when_categories_are_separated(assign: str) -> None:
    gen = torch.Generator().manual_seed(6)
    b, c, h, w = 4, 6, 8, 8
    labels = torch.randint(0, c, (b, h, w), generator=gen)
    clustered = torch.nn.functional.one_hot(labels, c).permute(0, 3, 1, 2).double() * 0.8
    clustered += 0.02 * torch.randn((b, c, h, w), generator=gen, dtype=torch.float64)
    mixed = torch.rand((b, c, h, w), generator=gen, dtype=torch.float64) * 2 - 1
    separated = cpc_loss(clustered, labels, assign=assign)
    random = cpc_loss(mixed, labels, assign=assign)
    assert separated < 0.1 * random
    assert separated < 0.1  # near-perfect clusters: InfoNCE is close to its floor of 0


def test_gradient_reaches_pixels_not_bank() -> None:
    s, labels = make_case(7, "ignored", shape=(2, 4, 3, 3))
    leaf = s.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(cpc_loss(leaf, labels, assign="label"), leaf)

    (grad_detached,) = torch.autograd.grad(reference_cpc(leaf, labels, 0.1, "label", "mean"), leaf)
    (grad_through_bank,) = torch.autograd.grad(
        reference_cpc(leaf, labels, 0.1, "label", "mean", detach_bank=False), leaf
    )
    assert grad.abs().sum() > 0
    torch.testing.assert_close(grad, grad_detached, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(grad, grad_through_bank, rtol=1e-4, atol=1e-8)
    ignored = (labels == IGNORE).unsqueeze(1).expand_as(grad)
    assert torch.all(grad[ignored] == 0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", ["all_ignored", "one_label_category", "one_pred_category", "empty_map"])
def test_degenerate_batches_give_connected_zero(case: str, reduction: str) -> None:
    s, labels = make_case(8, "plain")
    assign = "label"
    if case == "all_ignored":
        labels[:] = IGNORE
    elif case == "one_label_category":
        labels[:] = 2
    elif case == "one_pred_category":
        s[:, 3] += 5
        assign = "pred"
    else:
        s, labels = s[..., :0], labels[..., :0]
    leaf = s.clone().requires_grad_(True)
    loss = cpc_loss(leaf, labels, assign=assign, reduction=reduction)
    assert loss.dim() == 0 and loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert leaf.grad is not None
    assert torch.all(leaf.grad == 0)


def test_half_input_computes_in_float32() -> None:
    s, labels = make_case(9, "ignored")
    want = cpc_loss(s, labels)
    got = cpc_loss(s.half(), labels)
    assert got.dtype == torch.float32
    assert math.isclose(got.item(), want.item(), rel_tol=5e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"assign": "argmax"}, "assign"),
        ({"reduction": "none"}, "reduction"),
        ({"assign": "label", "labels": None}, "needs labels"),
        ({"labels": torch.zeros(3, 4, 4, dtype=torch.long)}, "labels must be"),
        ({"labels": torch.full((3, 4, 5), 7)}, "label value 7"),
        ({"labels": torch.full((3, 4, 5), -1)}, "label value -1"),
        ({"labels": torch.zeros(3, 4, 5)}, "integers"),
        ({"eta": 0.0}, "eta"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    s, _ = make_case(10, "plain")
    with pytest.raises(ValueError, match=match):
        cpc_loss(s, **kwargs)


def test_score_map_must_be_4d() -> None:
    with pytest.raises(ValueError, match=r"\(B, C, h, w\)"):
        cpc_loss(torch.zeros(5, 4, 4))
