"""Decoding heatmap heads into points: one implementation for inference and for training's hold-out,
so that the hold-out measures exactly what the pipeline ships."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(v, -30, 30)))


def _centroid3(hm: np.ndarray, y: int, x: int) -> tuple[float, float]:
    """The 3x3 weighted centre around (y, x), clipped at the map's edges (map coords)."""
    y0, y1, x0, x1 = max(0, y - 1), min(hm.shape[0], y + 2), max(0, x - 1), min(hm.shape[1], x + 2)
    w = np.clip(hm[y0:y1, x0:x1], 0, None)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    tot = float(w.sum()) or 1.0
    return float((w * xs).sum() / tot), float((w * ys).sum() / tot)


def heatmap_peak(hm: np.ndarray) -> tuple[float, float, float]:
    """(x, y, value) of the map's maximum, refined to sub-cell by its 3x3 weighted centre."""
    i, j = np.unravel_index(int(np.argmax(hm)), hm.shape)
    x, y = _centroid3(hm, int(i), int(j))
    return x, y, float(hm[i, j])


def heatmap_peaks(hm: np.ndarray, threshold: float = 0.5, nms_size: int = 3) -> np.ndarray:
    """(N, 2) local maxima (over nms_size x nms_size) at or above threshold, each refined by its
    3x3 weighted centre (map coords)."""
    ys, xs = np.nonzero((hm == maximum_filter(hm, size=nms_size, mode="nearest")) & (hm >= threshold))
    if len(xs) == 0:
        return np.zeros((0, 2))
    return np.array([_centroid3(hm, int(y), int(x)) for y, x in zip(ys, xs)], np.float64)
