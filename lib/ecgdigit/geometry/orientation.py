"""Quarter turns of images and points, in np.rot90's sense (k > 0 turns counter-clockwise).

Pixel centres sit at integer coordinates (x, y), as everywhere in the kit. Sizes are (height, width).
"""
from __future__ import annotations

import logging

import numpy as np

from .coordinate_map import CoordinateMap

logger = logging.getLogger(__name__)


def rotated_size(size: tuple[int, int], k: int) -> tuple[int, int]:
    """(height, width) of a frame of `size` after k quarter turns."""
    h, w = int(size[0]), int(size[1])
    return (w, h) if k % 2 else (h, w)


def rotate_image(img: np.ndarray, k: int) -> np.ndarray:
    """The image turned k quarter turns counter-clockwise (np.rot90), contiguous for cv2."""
    if img.ndim < 2:
        raise ValueError(f"rotate_image: expected an (H, W[, C]) image, got shape {img.shape}")
    return np.ascontiguousarray(np.rot90(img, k % 4, axes=(0, 1)))


def unrotate_image(img: np.ndarray, k: int) -> np.ndarray:
    """Undo rotate_image(., k)."""
    return rotate_image(img, -k)


def rotate_points(pts: np.ndarray, k: int, size_before: tuple[int, int]) -> np.ndarray:
    """Positions in rotate_image(img, k) of points (N, 2) of img, whose size is size_before (h, w)."""
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2).copy()
    h, w = int(size_before[0]), int(size_before[1])
    for _ in range(k % 4):
        # one counter-clockwise turn: new[i, j] = old[j, w - 1 - i]  =>  (x, y) -> (y, w - 1 - x)
        p = np.stack([p[:, 1], (w - 1) - p[:, 0]], axis=1)
        h, w = w, h
    return p


def unrotate_points(pts: np.ndarray, k: int, size_before: tuple[int, int]) -> np.ndarray:
    """Positions in the original image (size size_before) of points of rotate_image(img, k)."""
    return rotate_points(pts, -k % 4, rotated_size(size_before, k))


def rotate_map_source(m: CoordinateMap, k: int) -> CoordinateMap:
    """The same map with its source frame turned by k: dst -> rotate_image(src, k)."""
    src = rotate_points(m.src_xy.reshape(-1, 2), k, m.src_size).reshape(m.src_xy.shape)
    return CoordinateMap(src.astype(np.float32), m.step, tuple(m.dst_size), rotated_size(m.src_size, k))


def undo_orientation(m: CoordinateMap, k: int) -> CoordinateMap:
    """Given m: page -> image where image = rotate_image(upright, k), the map page -> upright."""
    return rotate_map_source(m, -k % 4)
