"""A smooth map between two pixel frames, sampled on a coarse lattice.

One type serves the whole kit: the synthetic ground truth (page -> image), the stage-0 homography,
the stage-1 dense grid map, and the degradations' render map (image -> page). Keeping it sampled on a
lattice makes every warp, however it was made, cost one `cv2.remap` at any output resolution.

Convention: pixel centres sit at integer coordinates (as in cv2.remap); points are (x, y).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator


@dataclass
class CoordinateMap:
    """For points of a destination frame, their position in a source frame.

    src_xy[i, j] is the source (x, y) of destination point (j * step, i * step).
    dst_size and src_size are (height, width) in pixels of each frame at scale 1.
    """

    src_xy: np.ndarray  # (gh, gw, 2) float32
    step: float
    dst_size: tuple[int, int]
    src_size: tuple[int, int]

    def __post_init__(self) -> None:
        self.src_xy = np.ascontiguousarray(self.src_xy, dtype=np.float32)
        if self.src_xy.ndim != 3 or self.src_xy.shape[2] != 2:
            raise ValueError(f"src_xy must be (gh, gw, 2), got {self.src_xy.shape}")

    # ------------------------------------------------------------ construction
    @staticmethod
    def lattice_shape(dst_size: tuple[int, int], step: float) -> tuple[int, int]:
        h, w = dst_size
        return int(np.ceil((h - 1) / step)) + 2, int(np.ceil((w - 1) / step)) + 2

    @classmethod
    def lattice_points(cls, dst_size: tuple[int, int], step: float) -> np.ndarray:
        gh, gw = cls.lattice_shape(dst_size, step)
        ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float64) * step
        return np.stack([xs, ys], axis=-1)

    @classmethod
    def from_function(cls, fn, dst_size, src_size, step: float = 8.0) -> "CoordinateMap":
        """fn: (N, 2) destination points -> (N, 2) source points, vectorized."""
        pts = cls.lattice_points(dst_size, step)
        src = np.asarray(fn(pts.reshape(-1, 2)), dtype=np.float64).reshape(pts.shape)
        return cls(src.astype(np.float32), float(step), tuple(dst_size), tuple(src_size))

    @classmethod
    def from_homography(cls, H: np.ndarray, dst_size, src_size, step: float = 16.0) -> "CoordinateMap":
        """H maps destination points to source points (3x3, homogeneous)."""
        return cls.from_function(lambda p: apply_homography(H, p), dst_size, src_size, step)

    @classmethod
    def identity(cls, size, step: float = 16.0) -> "CoordinateMap":
        return cls.from_function(lambda p: p, size, size, step)

    # ------------------------------------------------------------ use
    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """Source positions of destination points (N, 2), bilinear between lattice points."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        gh, gw = self.src_xy.shape[:2]
        u = np.clip(pts[:, 0] / self.step, 0, gw - 1.000001)
        v = np.clip(pts[:, 1] / self.step, 0, gh - 1.000001)
        j0 = np.floor(u).astype(int)
        i0 = np.floor(v).astype(int)
        fu = (u - j0)[:, None]
        fv = (v - i0)[:, None]
        g = self.src_xy.astype(np.float64)
        top = g[i0, j0] * (1 - fu) + g[i0, j0 + 1] * fu
        bot = g[i0 + 1, j0] * (1 - fu) + g[i0 + 1, j0 + 1] * fu
        return top * (1 - fv) + bot * fv

    def dense(self, scale: float = 1.0, out_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel source maps for a destination rendered at `scale` (scale x dst_size)."""
        if out_size is None:
            out_size = (int(round(self.dst_size[0] * scale)), int(round(self.dst_size[1] * scale)))
        oh, ow = out_size
        # lattice coordinates of each output pixel, then one bilinear remap of the lattice itself
        gx = (np.arange(ow, dtype=np.float32) / scale) / self.step
        gy = (np.arange(oh, dtype=np.float32) / scale) / self.step
        mx, my = np.meshgrid(gx, gy)
        dense = cv2.remap(self.src_xy, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return dense[..., 0], dense[..., 1]

    def remap(self, src_image: np.ndarray, scale: float = 1.0, src_scale: float = 1.0,
              interpolation: int = cv2.INTER_LINEAR, border_value=255) -> np.ndarray:
        """Destination image at `scale`, sampled from `src_image` (which is src_size times src_scale).

        src_scale lets geometry found on a small copy be applied to the original pixels.
        """
        mx, my = self.dense(scale)
        if src_scale != 1.0:
            mx = mx * src_scale
            my = my * src_scale
        if np.ndim(border_value) == 0 and src_image.ndim == 3:
            border_value = (border_value,) * src_image.shape[2]
        return cv2.remap(src_image, mx, my, interpolation=interpolation,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)

    def invert(self, step: float = 8.0) -> "CoordinateMap":
        """The map the other way (source -> destination), by linear interpolation over a triangulation.

        Source points outside the mapped region get NaN-free extrapolated values from the nearest
        lattice point, so callers can test them against the destination frame.
        """
        dst = self.lattice_points(self.dst_size, self.step).reshape(-1, 2)
        src = self.src_xy.reshape(-1, 2).astype(np.float64)
        query = self.lattice_points(self.src_size, step).reshape(-1, 2)
        lin = LinearNDInterpolator(src, dst)(query)
        bad = ~np.isfinite(lin).all(axis=1)
        if bad.any():
            lin[bad] = NearestNDInterpolator(src, dst)(query[bad])
        gh, gw = self.lattice_shape(self.src_size, step)
        return CoordinateMap(lin.reshape(gh, gw, 2).astype(np.float32), float(step),
                             tuple(self.src_size), tuple(self.dst_size))

    def scaled(self, dst_scale: float = 1.0, src_scale: float = 1.0) -> "CoordinateMap":
        """The same map between frames resized by the given factors."""
        return CoordinateMap(self.src_xy * src_scale, self.step * dst_scale,
                             (int(round(self.dst_size[0] * dst_scale)), int(round(self.dst_size[1] * dst_scale))),
                             (int(round(self.src_size[0] * src_scale)), int(round(self.src_size[1] * src_scale))))


def apply_homography(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (N, 2) points."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(H, dtype=np.float64).T
    return hom[:, :2] / hom[:, 2:3]
