"""Stage 1's last geometry step: the page map nudged onto the paper's MINOR grid lines.

The major-grid fit (grid_map) needs the 5 mm lines told from the 1 mm ones. On a black-and-white
print-and-scan whose 1 mm lines are as dark as the 5 mm ones it cannot (realdev scan 1701097445:
crossings everywhere, fit rejected, the keypoint homography stands and the rectified grid is
up to 2 page px off: the trace's time drifts by 14 samples along the rhythm strip). The minor lines
themselves are the clearest lattice on such a page, and a map within half a minor step (3.9 px)
of the truth tells every line's index without any search.

Each tile's column (row) profile, a median along the lines so the trace drops out, is a periodic
pattern of period one minor step; its phase at that frequency is the lines' offset from where the
map puts them. Tiles are weighted by that component's strength (paper, text and blank margins give
none), smoothed over neighbouring tiles, and the map is composed with the offset field.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..config import PAGE, PaperLayout
from .coordinate_map import CoordinateMap

TILE_MM = 5.0  # one major square per tile
SMOOTH_TILES = 1.5  # Gaussian sigma of the offset field, in tiles (a scanner's drift is smooth)
MIN_STRENGTH = 0.3  # a tile counts where its minor-line component is this share of the page's median
MIN_TILES = 0.25  # share of the page's tiles that must show lines, or the map is kept as it is
MAX_OFFSET = 0.4  # minor steps: beyond this the line's index is ambiguous, the tile is not used
# the tiles' offsets must agree on one drift (|mean phasor| of the weighted tiles about the fitted
# plane): a real grid scores near 1 (realdev scans 0.8-0.95), a page of noise or text near 0
MIN_COHERENCE = 0.5


@dataclass
class LatticeOffsets:
    """The grid lines' offsets from where a page map puts them, at tile centres (page px)."""

    x: np.ndarray  # (ty, tx) tile centres' x
    y: np.ndarray  # (ty, tx)
    dx: np.ndarray  # (ty, tx) vertical lines' offset along x (line seen at x_nominal + dx)
    dy: np.ndarray  # (ty, tx) horizontal lines' offset along y
    weight_x: np.ndarray  # (ty, tx) 0..1 trust in dx
    weight_y: np.ndarray

    @property
    def usable(self) -> bool:
        return min(float((self.weight_x > 0).mean()), float((self.weight_y > 0).mean())) >= MIN_TILES


def _darkness(page_rgb: np.ndarray, period: float) -> np.ndarray:
    """Grid-line darkness with the slow paper shading removed (any grid colour: luminance)."""
    grey = cv2.cvtColor(page_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) if page_rgb.ndim == 3 \
        else page_rgb.astype(np.float32)
    dark = 255.0 - grey
    k = int(round(3 * period)) | 1
    return dark - cv2.blur(dark, (k, k))  # a box: cheap, and the shading is slow


def _phase_offsets(profiles: np.ndarray, coords: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """(offset, strength) of a period-`period` line pattern in each profile (..., n) sampled at
    coords (..., n) where the lines should lie at multiples of `period`."""
    w = np.exp(-2j * np.pi * coords / period)
    p = profiles - profiles.mean(axis=-1, keepdims=True)
    z = (p * w).sum(axis=-1) * (2.0 / profiles.shape[-1])
    return -np.angle(z) * period / (2 * np.pi), np.abs(z)


def measure_offsets(page_rgb: np.ndarray, layout: PaperLayout = PAGE) -> LatticeOffsets:
    """The minor lines' offsets on a page rendered at scale 1 through a page map (page px)."""
    period = layout.grid_minor_px
    h, w = page_rgb.shape[:2]
    dark = _darkness(page_rgb, period)
    t = max(4, int(round(TILE_MM * layout.px_per_mm)))
    ny, nx = max(1, h // t), max(1, w // t)
    tiles = dark[:ny * t, :nx * t].reshape(ny, t, nx, t)
    # along the lines: the median keeps the line, not a trace crossing part of it (every other
    # pixel along is as good and half the work)
    cols = np.median(tiles[:, ::2], axis=1)  # (ny, nx, t): each tile's column profile
    rows = np.median(tiles[..., ::2], axis=3).transpose(0, 2, 1)  # (ny, nx, t): its row profile
    k = np.arange(t, dtype=np.float64)
    x0, y0 = np.arange(nx) * t, np.arange(ny) * t
    xs = x0[:, None] + k[None, :]  # (nx, t)
    ys = layout.height - (y0[:, None] + k[None, :])  # (ny, t): lines counted from the bottom edge
    dx, sx = _phase_offsets(cols, xs[None, :, :], period)
    dy, sy = _phase_offsets(rows, ys[:, None, :], period)
    yc, xc = np.meshgrid(y0 + 0.5 * (t - 1), x0 + 0.5 * (t - 1), indexing="ij")
    weights = []
    for s in (sx, sy):
        ref = float(np.median(s[s > 0])) if (s > 0).any() else 0.0
        weights.append(np.clip(s / max(ref, 1e-6), 0.0, 1.0) * (s >= MIN_STRENGTH * ref) if ref > 0 else np.zeros_like(s))
    return LatticeOffsets(xc, yc, dx, -dy, weights[0], weights[1])  # y runs down the page, the lattice up


MAX_SLOPE = 0.012  # px per px: the steepest linear drift of the offsets looked for (1.2 %: scale, shear)
SLOPE_STEP = 0.0004  # ... in steps this fine (0.9 px over the page's width: a tenth of a step)


def _wrap(v: np.ndarray, period: float) -> np.ndarray:
    return (v + 0.5 * period) % period - 0.5 * period


def _linear_drift(v: np.ndarray, wt: np.ndarray, x: np.ndarray, y: np.ndarray,
                  period: float) -> tuple[np.ndarray, float]:
    """The plane a + gx x + gy y (page px) that the tiles' offsets (known modulo one step) follow
    best: a scale or shear error of the map moves the lines by more than a step across the page,
    so the offsets wrap and only their phase can be fitted. `a` is taken within half a step at the
    page's centre (the map is right on average; its branch is the map's own). Also returns how well
    the tiles agree with it (0..1)."""
    slopes = np.arange(-MAX_SLOPE, MAX_SLOPE + 0.5 * SLOPE_STEP, SLOPE_STEP)
    xm, ym = float(x.mean()), float(y.mean())
    ph = wt * np.exp(2j * np.pi * v / period)  # (ty, tx)
    ex = np.exp(-2j * np.pi * slopes[:, None] * (x[0] - xm)[None, :] / period)  # (ns, tx)
    ey = np.exp(-2j * np.pi * slopes[:, None] * (y[:, 0] - ym)[None, :] / period)  # (ns, ty)
    total = ey @ (ph @ ex.T)  # (ns gy, ns gx)
    iy, ix = np.unravel_index(int(np.argmax(np.abs(total))), total.shape)
    a = float(np.angle(total[iy, ix])) * period / (2 * np.pi)
    coherence = float(np.abs(total[iy, ix]) / max(float(wt.sum()), 1e-9))
    return a + slopes[ix] * (x - xm) + slopes[iy] * (y - ym), coherence


def _offset_field(v: np.ndarray, wt: np.ndarray, x: np.ndarray, y: np.ndarray,
                  period: float) -> tuple[np.ndarray, float]:
    """The smooth offset field (page px, unwrapped) through the tiles' offsets: their linear drift,
    plus the rest (within half a step of it) smoothed over neighbouring tiles as a phase; and the
    tiles' coherence about the plane."""
    plane, coherence = _linear_drift(v, wt, x, y, period)
    rest = _wrap(v - plane, period)
    wt = wt * (np.abs(rest) <= MAX_OFFSET * period)
    ang = 2 * np.pi * rest / period
    c = cv2.GaussianBlur((wt * np.cos(ang)).astype(np.float32), (0, 0), SMOOTH_TILES)
    s = cv2.GaussianBlur((wt * np.sin(ang)).astype(np.float32), (0, 0), SMOOTH_TILES)
    return plane + np.arctan2(s, c) * period / (2 * np.pi), coherence


@dataclass
class MinorLatticeFit:
    map: CoordinateMap  # the refined page -> image map (the input map where not ok)
    offsets: LatticeOffsets
    coherence: tuple[float, float]  # of the x and y offsets about their fitted drift
    ok: bool  # lines on enough tiles, agreeing on one drift: the map was refined


def refine_on_minor_lattice(page_to_image: CoordinateMap, image: np.ndarray,
                            layout: PaperLayout = PAGE) -> MinorLatticeFit:
    """The map composed with the minor lines' measured offsets, where enough tiles show lines that
    agree on one smooth drift (else the map unchanged, ok False). The map's page frame must be
    config.PAGE's at scale 1."""
    page = page_to_image.remap(image, scale=1.0, interpolation=cv2.INTER_LINEAR)
    off = measure_offsets(page, layout)
    if not off.usable:
        return MinorLatticeFit(page_to_image, off, (0.0, 0.0), False)
    period = layout.grid_minor_px
    dx, cx = _offset_field(off.dx, off.weight_x, off.x, off.y, period)
    dy, cy = _offset_field(off.dy, off.weight_y, off.x, off.y, period)
    if min(cx, cy) < MIN_COHERENCE:
        return MinorLatticeFit(page_to_image, off, (cx, cy), False)
    # tile centres -> the map's lattice (linear, held flat beyond the outer tile centres)
    lattice = CoordinateMap.lattice_points(page_to_image.dst_size, page_to_image.step)  # (gh, gw, 2)
    ty, tx = off.x.shape
    u = np.interp(lattice[..., 0], off.x[0], np.arange(tx)).astype(np.float32)
    v = np.interp(lattice[..., 1], off.y[:, 0], np.arange(ty)).astype(np.float32)
    shift = np.stack([cv2.remap(f.astype(np.float32), u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()
                      for f in (dx, dy)], axis=1)
    pts = lattice.reshape(-1, 2)
    # a line that should be at p is seen at p + shift on the old map's page: the page point p is there
    src = page_to_image(pts + shift).reshape(page_to_image.src_xy.shape)
    refined = CoordinateMap(src.astype(np.float32), page_to_image.step, tuple(page_to_image.dst_size),
                            tuple(page_to_image.src_size))
    return MinorLatticeFit(refined, off, (cx, cy), True)
