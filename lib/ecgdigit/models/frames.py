"""The frames a stage model's input and output live in: shared by training (targets.py makes the
inputs and targets in them) and inference (models/inference.py reads the outputs back).

- stage 0 input: the captured image letterboxed to a square of side S: resized by f = S / long side,
  placed at the TOP-LEFT, padded with LETTERBOX_PAD. An image point x maps to (x + 0.5) f - 0.5.
- dense heads of stride s: output cell (i, j) is centred on input pixel (s j + (s - 1) / 2, s i + (s - 1) / 2)
  (heatmap_coords / input_coords).
- stage 1 input: the page normalized by a page -> image homography, at page scale `scale`:
  normalized pixel (j, i) shows page point (j / scale, i / scale) (the CoordinateMap convention).
- stage 2 input: the page rectified by the page -> image map at `scale`, same convention.
- a model's input tensor: float32 CHW in 0..1 (to_chw).
"""
from __future__ import annotations

import cv2
import numpy as np

LETTERBOX_PAD = 0  # stage-0 pad value (uint8): black, unlike any paper


def heatmap_coords(pts: np.ndarray, stride: int) -> np.ndarray:
    """Input-pixel points -> coordinates in a dense output of `stride`."""
    return (np.asarray(pts, np.float64) - (stride - 1) / 2.0) / stride


def input_coords(pts: np.ndarray, stride: int) -> np.ndarray:
    """Coordinates in a dense output of `stride` -> input pixels (inverse of heatmap_coords)."""
    return np.asarray(pts, np.float64) * stride + (stride - 1) / 2.0


def out_shape(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """Shape of a dense head's output for an input of `size` (the model's ceil rule)."""
    return -(-int(size[0]) // stride), -(-int(size[1]) // stride)


def letterbox(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """(side, side, 3) uint8: the image resized so its long side is `side`, top-left, padded."""
    h, w = image.shape[:2]
    f = side / max(h, w)
    nh, nw = min(side, max(1, int(round(h * f)))), min(side, max(1, int(round(w * f))))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    out = np.full((side, side, 3), LETTERBOX_PAD, np.uint8)
    out[:nh, :nw] = small
    return out, f


def letterbox_points(pts: np.ndarray, f: float) -> np.ndarray:
    """Image points -> letterboxed-input points (pixel-centre convention of cv2.resize)."""
    return (np.asarray(pts, np.float64) + 0.5) * f - 0.5


def to_chw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0
