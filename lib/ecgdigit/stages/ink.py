"""Ink: how much each pixel of a page looks like trace ink, whatever the paper, grid and light.

Stage-neutral: stage 0 (orientation from the ink's profiles), stage 1 (layout registration and
detection) and stage 2 (trace reading) all measure ink the same way.
"""
from __future__ import annotations

import cv2
import numpy as np

INK_SPAN = 0.55  # no ink above this fraction of the way from the darkest ink to the paper (0.7, 0.85 measured worse)


def paper_brightness(bright: np.ndarray, stroke_px: float) -> np.ndarray:
    """The paper's local brightness under shadows, stains and uneven light.

    A closing wider than the trace's stroke removes the thin dark lines and keeps the slow light
    field; it runs on a quarter-size copy because the light field is smooth.
    """
    f = 4
    small = cv2.resize(bright, (max(1, bright.shape[1] // f), max(1, bright.shape[0] // f)), interpolation=cv2.INTER_AREA)
    k = max(3, int(round(3 * stroke_px / f)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel)
    closed = cv2.GaussianBlur(closed, (0, 0), k / 2)
    return cv2.resize(closed, (bright.shape[1], bright.shape[0]), interpolation=cv2.INTER_LINEAR)


def paper_ratio(page_rgb: np.ndarray, stroke_px: float = 4.0) -> np.ndarray:
    """The brightest channel over the local paper brightness: about 1 on paper, low on ink.

    The red and pink grid keep one channel near 255 while the grey/black trace keeps all three low,
    so a coloured grid vanishes without knowing its colour exactly. Dividing by the local paper
    brightness makes a shadow's edge or a stain paper, not ink.
    """
    bright = page_rgb.max(axis=2) if page_rgb.ndim == 3 else page_rgb
    bright = bright.astype(np.float32)
    return bright / np.maximum(paper_brightness(bright, stroke_px), 1.0)


def ink_from_ratio(ratio: np.ndarray) -> np.ndarray:
    """How much each pixel looks like trace ink, 0..1, from its paper ratio.

    The grey grid of a black-and-white scan sits near 0.8 of the paper, the trace below 0.4. Full
    ink is the image's darkest ~0.3 % (the trace), none above 55 % of the way from there to the paper.
    """
    # contrast adapts to the image: a blurred photo's trace may only reach 0.5 of the paper
    sample = ratio[::5, ::5]
    darkest = min(float(np.percentile(sample, 0.3)), 0.6)
    paper = float(np.median(sample))
    hi = darkest + INK_SPAN * max(paper - darkest, 0.05)
    return np.clip((hi - ratio) / max(hi - darkest, 1e-3), 0.0, 1.0)


def ink_from_rgb(page_rgb: np.ndarray, stroke_px: float = 4.0) -> np.ndarray:
    """How much each pixel looks like trace ink, 0..1 (any page, rectified or not)."""
    return ink_from_ratio(paper_ratio(page_rgb, stroke_px))


# ink this wide all round is no stroke (a trace, a pulse or a tick is under 1 mm): a scan's dark
# background's shadowed border, a stain, mould
WIDE_INK_MM = 3.0
WIDE_INK_LEVEL = 0.15  # a shadow fades outwards: its faint part is as wide and counts too
WIDE_INK_MARGIN_MM = 1.0  # the blob's fringe goes with it


def without_wide_ink(ink: np.ndarray, px_per_mm: float) -> np.ndarray:
    """The ink with wide blobs (and a fringe around them) set to none. Layout marks are matched on
    strokes: a shadowed page edge is a long band of ink that the pulse's edges and the column ticks
    would otherwise be laid on. px_per_mm: at the ink's scale."""
    k = max(3, int(round(WIDE_INK_MM * px_per_mm)) | 1)
    solid = cv2.morphologyEx((ink >= WIDE_INK_LEVEL).astype(np.uint8), cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if not solid.any():
        return ink
    m = max(3, int(round(2 * WIDE_INK_MARGIN_MM * px_per_mm)) | 1)
    out = ink.copy()
    out[cv2.dilate(solid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (m, m))).astype(bool)] = 0.0
    return out
