"""Confusion matrix against scikit-learn, and the derived IoU/F1/OA against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import f1_score, jaccard_score

from bemseg.metrics import confusion_matrix, summarize

IGNORE = 255


@pytest.mark.parametrize("num_classes", [6, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_agrees_with_sklearn(num_classes: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    shape = (3, 17, 19)
    # class num_classes-1 never appears as a label, class 1 never as a prediction
    target = torch.randint(0, num_classes - 1, shape, generator=gen)
    pred = torch.randint(0, num_classes, shape, generator=gen)
    pred[pred == 1] = 0
    target[torch.rand(shape, generator=gen) < 0.2] = IGNORE

    cm = confusion_matrix(pred, target, num_classes)

    keep = (target != IGNORE).numpy().ravel()
    want = sk_confusion_matrix(
        target.numpy().ravel()[keep], pred.numpy().ravel()[keep], labels=list(range(num_classes))
    )
    assert cm.dtype == torch.int64
    assert cm.shape == (num_classes, num_classes)
    np.testing.assert_array_equal(cm.numpy(), want)
    assert int(cm.sum()) == int(keep.sum())
    assert int(cm[num_classes - 1].sum()) == 0 and int(cm[:, 1].sum()) == 0


def test_rows_are_labels_columns_are_predictions() -> None:
    target = torch.tensor([0, 0, 2, IGNORE])
    pred = torch.tensor([1, 1, 2, 0])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[0, 2, 0], [0, 0, 0], [0, 0, 1]]


def test_custom_ignore_index_and_any_shape() -> None:
    target = torch.tensor([[[-1, 1], [0, 0]]], dtype=torch.int16)
    pred = torch.tensor([[[5, 1], [1, 0]]], dtype=torch.int16)
    cm = confusion_matrix(pred, target, 2, ignore_index=-1)
    assert cm.tolist() == [[1, 1], [0, 1]]


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))],
)
def test_result_stays_on_input_device(device: str) -> None:
    target = torch.tensor([0, 1, 1], device=device)
    cm = confusion_matrix(target.clone(), target, 2)
    assert cm.device == target.device
    assert cm.dtype == torch.int64
    assert cm.cpu().tolist() == [[1, 0], [0, 2]]


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        ([0, 6, 1], [0, 1, 1], "pred value 6"),
        ([0, -1, 1], [0, 1, 1], "pred value -1"),
        ([0, 1, 1], [0, 9, 1], "target value 9"),
        ([0, 1, 1], [0, -2, 1], "target value -2"),
    ],
)
def test_out_of_range_values_raise(pred: list[int], target: list[int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        confusion_matrix(torch.tensor(pred), torch.tensor(target), 6)


def test_prediction_at_ignored_pixel_is_not_checked() -> None:
    cm = confusion_matrix(torch.tensor([IGNORE, 2]), torch.tensor([IGNORE, 2]), 6)
    assert int(cm.sum()) == 1 and int(cm[2, 2]) == 1


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        (torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long), "differ"),
        (torch.zeros(3), torch.zeros(3, dtype=torch.long), "integer"),
    ],
)
def test_bad_inputs_raise(pred: torch.Tensor, target: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        confusion_matrix(pred, target, 6)


# rows = label, columns = prediction
SMALL = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])


@pytest.mark.parametrize("as_tensor", [False, True])
def test_summary_matches_hand_computation(as_tensor: bool) -> None:
    cm = torch.from_numpy(SMALL) if as_tensor else SMALL
    out = summarize(cm)
    # class 0: tp 5, row 6, col 7 -> IoU 5/8,  F1 10/13
    # class 1: tp 3, row 6, col 4 -> IoU 3/7,  F1 6/10
    # class 2: tp 4, row 4, col 5 -> IoU 4/5,  F1 8/9
    iou = [5 / 8, 3 / 7, 4 / 5]
    f1 = [10 / 13, 6 / 10, 8 / 9]
    assert out["iou"] == pytest.approx(iou, abs=1e-15)
    assert out["f1"] == pytest.approx(f1, abs=1e-15)
    assert out["miou"] == pytest.approx(sum(iou) / 3, abs=1e-15)
    assert out["mf1"] == pytest.approx(sum(f1) / 3, abs=1e-15)
    assert out["oa"] == pytest.approx(12 / 16, abs=1e-15)
    assert out["absent_classes"] == []
    assert all(isinstance(v, float) for v in [*out["iou"], *out["f1"], out["miou"], out["oa"]])


def test_absent_class_is_nan_and_left_out_of_means() -> None:
    cm = np.zeros((4, 4), dtype=np.int64)
    cm[:3, :3] = SMALL
    out = summarize(cm)
    assert math.isnan(out["iou"][3]) and math.isnan(out["f1"][3])
    assert out["absent_classes"] == [3]
    assert out["miou"] == pytest.approx((5 / 8 + 3 / 7 + 4 / 5) / 3, abs=1e-15)
    assert out["mf1"] == pytest.approx((10 / 13 + 6 / 10 + 8 / 9) / 3, abs=1e-15)
    assert out["oa"] == pytest.approx(12 / 16, abs=1e-15)


def test_class_only_predicted_is_present_with_zero_scores() -> None:
    cm = np.array([[3, 1], [0, 0]])  # class 1 never labelled but predicted once
    out = summarize(cm)
    assert out["iou"] == [0.75, 0.0]
    assert out["f1"] == pytest.approx([6 / 7, 0.0])
    assert out["absent_classes"] == []
    assert out["miou"] == pytest.approx(0.375)


def test_empty_matrix_is_all_nan() -> None:
    out = summarize(torch.zeros(6, 6, dtype=torch.int64))
    assert math.isnan(out["oa"]) and math.isnan(out["miou"]) and math.isnan(out["mf1"])
    assert out["absent_classes"] == list(range(6))


def test_summary_of_random_matrix_matches_sklearn_scores() -> None:
    gen = np.random.default_rng(3)
    target = gen.integers(0, 7, 2000)
    pred = np.where(gen.random(2000) < 0.6, target, gen.integers(0, 7, 2000))
    out = summarize(confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), 7))
    labels = list(range(7))
    np.testing.assert_allclose(out["iou"], jaccard_score(target, pred, labels=labels, average=None))
    np.testing.assert_allclose(out["f1"], f1_score(target, pred, labels=labels, average=None))
    assert out["oa"] == pytest.approx(float((pred == target).mean()))


def test_non_square_matrix_raises() -> None:
    with pytest.raises(ValueError, match="square"):
        summarize(np.zeros((3, 4)))
