"""Losses of the stage models: thin traces, point heatmaps, orientation classes (each stage's task,
training/tasks.py, names its terms and their weights).

All take logits and compute in float32 (safe under autocast); `valid` masks (B, 1, h, w) drop pixels
that came from outside the captured image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _valid(valid: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    if valid is None:
        return torch.ones_like(like)
    return valid.float().expand_as(like)


def trace_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
               pos_weight: float = 10.0, dice_weight: float = 1.0) -> torch.Tensor:
    """BCE with positives weighted up (traces cover ~1 % of pixels) + soft Dice per (sample, channel).

    Dice is over the whole map of each channel, so an empty crop of a row contributes only BCE.
    """
    logits, target = logits.float(), target.float()
    v = _valid(valid, target)
    w = v * (1.0 + (pos_weight - 1.0) * target)
    bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * w).sum() / w.sum().clamp_min(1.0)
    p = torch.sigmoid(logits) * v
    t = target * v
    inter = (p * t).flatten(2).sum(-1)
    denom = (p + t).flatten(2).sum(-1)
    has = t.flatten(2).sum(-1) > 0.5
    dice = 1.0 - (2 * inter + 1.0) / (denom + 1.0)
    dice = dice[has].mean() if bool(has.any()) else logits.new_zeros(())
    return bce + dice_weight * dice


def heatmap_focal_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
                       alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss; positives are cells where the target is 1.

    Normalised by the number of positives (at least 1), so maps with no point still train to 0.
    """
    logits, target = logits.float(), target.float()
    v = _valid(valid, target)
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = (target >= 0.999).float() * v
    neg = (1.0 - pos) * v
    logp, log1p = F.logsigmoid(logits), F.logsigmoid(-logits)
    pos_loss = -(((1 - p) ** alpha) * logp * pos).sum()
    neg_loss = -(((1 - target) ** beta) * (p ** alpha) * log1p * neg).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp_min(1.0)


def line_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
              pos_weight: float = 5.0) -> torch.Tensor:
    """Weighted BCE for thin line maps (grid lines)."""
    logits, target = logits.float(), target.float()
    w = _valid(valid, target) * (1.0 + (pos_weight - 1.0) * target)
    return (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * w).sum() / w.sum().clamp_min(1.0)


def orientation_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.05) -> torch.Tensor:
    return F.cross_entropy(logits.float(), target.long(), label_smoothing=label_smoothing)
