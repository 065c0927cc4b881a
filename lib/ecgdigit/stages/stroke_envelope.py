"""Stage 2: a drawn stroke's top and bottom edges -> the centre line the pen followed.

A trace printed with a round pen of radius r is the curve dilated by a disk: in every column its ink
spans [U, L] with U(x) = min_d y(x+d) - g(d) and L(x) = max_d y(x+d) + g(d), g(d) = sqrt(r^2 - d^2).
The column's centroid is therefore biased wherever the curve bends faster than the pen is wide
(a QRS: the neighbouring columns' ink widens every peak and trough). The inverse is exact on one
side of each bend: eroding the top edge by g gives the curve's closing (true at peaks, too high only
inside troughs narrower than the pen), dilating the bottom edge gives its opening (true at troughs).
Where the two agree the curve is smooth and the column's ink centroid is used (two level crossings
of a faint, blurred stroke are noisier than its centroid: measured on scans and photos); where they
differ, the region's shape says whether it hides a peak or a trough.
"""
from __future__ import annotations

import numpy as np

EDGE_LEVEL = 0.5  # the stroke's edge: where the ink map crosses half of full ink
FLAT_SLOPE_PX = 0.3  # a column this flat (px per px) shows the pen's vertical thickness
AGREE_PX = 0.25  # closing and opening closer than this: no hidden extremum here


def column_edges(band: np.ndarray, member: np.ndarray, level: float = EDGE_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel top and bottom edge of the `member` pixels of each column of `band` (h, n).

    The edge lies where the ink crosses `level` between the outermost member pixel at or above it
    and its outer neighbour (linear interpolation); a faint column (a thin stroke's steep part has
    no pixel at the level) uses its outermost member pixels. NaN where a column has no member pixel.
    """
    h, n = band.shape
    strong = member & (band >= level)
    member = np.where(strong.any(axis=0), strong, member)
    has = member.any(axis=0)
    top = np.argmax(member, axis=0)
    bot = h - 1 - np.argmax(member[::-1], axis=0)
    cols = np.arange(n)

    def beyond(inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
        v_in = band[inner, cols]
        v_out = np.where((outer >= 0) & (outer < h), band[np.clip(outer, 0, h - 1), cols], 0.0)
        return np.clip((v_in - level) / np.maximum(v_in - v_out, 1e-3), 0.0, 1.0)

    t = top - beyond(top, top - 1)
    b = bot + beyond(bot, bot + 1)
    return np.where(has, t, np.nan), np.where(has, b, np.nan)


def pen_radius(top: np.ndarray, bottom: np.ndarray, default: float = 2.0) -> float:
    """Half the stroke's vertical thickness where the trace is flat: the pen as this image drew it
    (print width, scan blur and the ink threshold together)."""
    mid = 0.5 * (top + bottom)
    slope = np.abs(np.gradient(mid)) if len(mid) > 1 else np.zeros_like(mid)
    flat = np.isfinite(mid) & (slope < FLAT_SLOPE_PX)
    if flat.sum() < 10:
        return default
    return float(0.5 * np.median((bottom - top)[flat]))


def _disk_profile(r: float) -> np.ndarray:
    k = int(np.floor(r))
    d = np.arange(-k, k + 1, dtype=np.float64)
    return np.sqrt(np.maximum(r * r - d * d, 0.0))


def _shifted(v: np.ndarray, k: int) -> list[np.ndarray]:
    p = np.pad(v, k, mode="edge")
    return [p[k + d: k + d + len(v)] for d in range(-k, k + 1)]


def closing_from_top(top: np.ndarray, r: float) -> np.ndarray:
    """y (down) of the curve's closing: max_d top(x+d) + g(d)."""
    g = _disk_profile(r)
    return np.max([s + gd for s, gd in zip(_shifted(top, (len(g) - 1) // 2), g)], axis=0)


def opening_from_bottom(bottom: np.ndarray, r: float) -> np.ndarray:
    """y (down) of the curve's opening: min_d bottom(x+d) - g(d)."""
    g = _disk_profile(r)
    return np.min([s - gd for s, gd in zip(_shifted(bottom, (len(g) - 1) // 2), g)], axis=0)


def centre_line(top: np.ndarray, bottom: np.ndarray, r: float, centroid: np.ndarray | None = None) -> np.ndarray:
    """The pen's path y(x) (image y, down) from finite top/bottom edges and the pen radius.

    Where closing and opening agree the curve is smooth; there `centroid` (the ink-weighted centre
    of each column, steadier than two level crossings on a faint or blurred stroke) is used if given.
    """
    closed = closing_from_top(top, r)  # y down: closed <= y, equal except inside narrow troughs
    opened = opening_from_bottom(bottom, r)  # opened >= y, equal except inside narrow peaks
    return _choose(closed, opened, centroid)


def _choose(closed: np.ndarray, opened: np.ndarray, smooth: np.ndarray | None = None,
            turn_px: float = 2.0) -> np.ndarray:
    """Per region where the two disagree: a peak (ink bulging up, smaller y) keeps the closing, a
    trough the opening; the bulge beyond the region's ends says which one it is.

    A QRS's flanks are too steep for the two to agree between its R peak and S trough, so one region
    may hold both: it is cut at the steepest column between every two turns of more than `turn_px`
    (one decision for the whole complex clipped the R peak to the S trough's reading: realdev V3s
    read 30 px low at 2x)."""
    mid = 0.5 * (closed + opened)
    out = mid.copy() if smooth is None else np.asarray(smooth, np.float64).copy()
    differ = (opened - closed) >= AGREE_PX
    if not differ.any():
        return out
    edges = np.diff(np.r_[0, differ.astype(np.int8), 0])
    n = len(mid)
    pieces = []
    for i0, i1 in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        cuts = _steepest_between_turns(mid[i0:i1], turn_px) + i0
        bounds = [i0, *cuts.tolist(), i1]
        pieces += [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    for i0, i1 in pieces:
        e0, e1 = mid[max(i0 - 1, 0)], mid[min(i1, n - 1)]
        up = min(e0, e1) - closed[i0:i1].min()  # how far the peak reading rises above both ends
        down = opened[i0:i1].max() - max(e0, e1)  # how far the trough reading sinks below them
        out[i0:i1] = closed[i0:i1] if up >= down else opened[i0:i1]
    return out


def _steepest_between_turns(y: np.ndarray, turn_px: float) -> np.ndarray:
    """Indices (into y) of the steepest step between consecutive turning points of y, a turn being
    a reversal by more than turn_px (smaller wiggles are noise, not a peak and a trough)."""
    turns = []
    lo_i = hi_i = 0
    direction = 0  # +1 rising (y growing), -1 falling, 0 not yet known
    for i in range(1, len(y)):
        if y[i] > y[hi_i]:
            hi_i = i
        if y[i] < y[lo_i]:
            lo_i = i
        if direction >= 0 and y[hi_i] - y[i] > turn_px:
            turns.append(hi_i)
            direction, lo_i = -1, i
        elif direction <= 0 and y[i] - y[lo_i] > turn_px:
            turns.append(lo_i)
            direction, hi_i = 1, i
    if direction == 0 or len(turns) < 2:
        return np.zeros(0, np.int64)
    step = np.abs(np.diff(y))
    return np.array([a + 1 + int(np.argmax(step[a:b])) for a, b in zip(turns[:-1], turns[1:])], np.int64)
