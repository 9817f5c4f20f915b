"""Category-based pixel contrast (CPC, section 3.2, Eq. 5-6) on the pixel-text score map.

The suite's pinned reading of the paper (spec/model.md, "Losses"):

1. A pixel's embedding is its C-vector in the score map s, L2-normalised.
2. Its category is the argmax of s over C -- the paper takes it "based on the maximum value of a
   pixel on its channel in the pixel-text score map" -- or, with ``assign="label"``, its label
   (already nearest-downsampled to the map by the caller). Pixels labelled ``ignore_index`` take
   no part, neither as anchors nor in the bank.
3. The bank (the paper's sample set S, B x C x C) holds, for each image b and each category c
   present in b, the mean raw score vector of those pixels, L2-normalised; an absent category
   gives no entry. The paper says S is "dynamically updated as the iteration proceeds", so it is
   rebuilt from the current batch and detached: gradients reach s only through the pixels.
4. Pixel i of category c has positives = the bank entries of c (one per image holding c, its own
   included) and negatives = every entry of another category. Eq. 5 scores each positive against
   itself plus all negatives and averages over the positives.
5. ``reduction="mean"`` averages L_i over the batch's participating pixels; ``"sum"`` is Eq. 6
   literally: the sum over each map's pixels, averaged over the B maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_ASSIGN = ("pred", "label")
_REDUCTION = ("mean", "sum")


def cpc_loss(
    score_map: torch.Tensor,
    labels: torch.Tensor | None = None,
    eta: float = 0.1,
    assign: str = "pred",
    ignore_index: int = 255,
    reduction: str = "mean",
) -> torch.Tensor:
    """CPC loss of a (B, C, h, w) score map of raw cosine scores (no temperature applied).

    `labels` (B, h, w) are at the map's resolution; they decide the categories when
    ``assign="label"`` and exclude ``ignore_index`` pixels in both modes (None with
    ``assign="pred"``: every pixel takes part). Math runs in at least float32 with autocast off.

    Degenerate batches -- no participating pixel, or a single category in the whole batch so that
    no pixel has a negative -- give an exact zero that is still part of the graph (its gradient is
    zero), so ``backward()`` works unconditionally.
    """
    if assign not in _ASSIGN:
        raise ValueError(f"cpc_loss: assign must be one of {_ASSIGN}, got {assign!r}")
    if reduction not in _REDUCTION:
        raise ValueError(f"cpc_loss: reduction must be one of {_REDUCTION}, got {reduction!r}")
    if not eta > 0:
        raise ValueError(f"cpc_loss: eta must be positive, got {eta!r}")
    if score_map.dim() != 4:
        raise ValueError(f"cpc_loss: score_map must be (B, C, h, w), got shape {tuple(score_map.shape)}")
    b, c, h, w = score_map.shape
    if labels is None and assign == "label":
        raise ValueError('cpc_loss: assign="label" needs labels (B, h, w) at the score map\'s resolution')
    if labels is not None:
        _check_labels(labels, (b, h, w), c, ignore_index)

    dtype = torch.promote_types(score_map.dtype, torch.float32)
    with torch.autocast(device_type=score_map.device.type, enabled=False):
        scores = score_map.to(dtype).flatten(2).transpose(1, 2)  # (B, P, C) raw score vectors
        if labels is None:
            valid = torch.ones(scores.shape[:2], dtype=torch.bool, device=scores.device)
        else:
            valid = labels.flatten(1) != ignore_index
        category = scores.argmax(-1) if assign == "pred" else labels.flatten(1).long()
        classes = torch.arange(c, device=scores.device)
        member = (category.unsqueeze(-1) == classes) & valid.unsqueeze(-1)  # (B, P, C)
        member_f = member.to(dtype)

        # Bank: per-image category means of the raw scores, normalised, detached. (B, C, C)
        counts = member_f.sum(1)
        present = counts > 0
        means = torch.einsum("bpk,bpd->bkd", member_f, scores.detach()) / counts.clamp_min(1).unsqueeze(-1)
        bank = F.normalize(means, dim=-1).reshape(b * c, c)
        slot_present = present.reshape(b * c)  # slot b'*C + k holds image b', category k

        embed = F.normalize(scores, dim=-1)
        logits = embed @ bank.T / eta  # (B, P, B*C)
        is_pos = member.repeat(1, 1, b) & slot_present
        is_neg = ~member.repeat(1, 1, b) & slot_present
        # log(sum over negatives of exp); an empty set gives a huge negative, so its term is 0.
        neg_lse = logits.masked_fill(~is_neg, torch.finfo(dtype).min).logsumexp(-1, keepdim=True)
        # -log(e^p / (e^p + sum_n e^n)) = softplus(log sum_n e^n - p)
        per_pos = F.softplus(neg_lse - logits) * is_pos
        per_pixel = per_pos.sum(-1) / is_pos.sum(-1).clamp_min(1)  # (B, P); 0 for non-participants
        total = per_pixel.sum()
        if reduction == "sum":
            return total / b
        return total / valid.sum().clamp_min(1)


def _check_labels(
    labels: torch.Tensor, shape: tuple[int, int, int], num_classes: int, ignore_index: int
) -> None:
    """Reject labels of the wrong shape or with values outside [0, C) other than ignore_index."""
    if tuple(labels.shape) != shape:
        raise ValueError(
            f"cpc_loss: labels must be (B, h, w) = {shape} like the score map, got {tuple(labels.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"cpc_loss: labels must be integers, got {labels.dtype}")
    bad = ((labels < 0) | (labels >= num_classes)) & (labels != ignore_index)
    if bad.any():
        raise ValueError(
            f"cpc_loss: label value {int(labels[bad][0])} is outside [0, {num_classes}) and is not "
            f"ignore_index ({ignore_index})"
        )
