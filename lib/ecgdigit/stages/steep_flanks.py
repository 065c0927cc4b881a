"""Stage 2: steep flanks read along pixel rows instead of down columns.

On a QRS flank the stroke is nearly vertical: one column holds tens of pixels of it, and the column's
ink-weighted centre moves by `slope` pixels for every pixel the stroke shifts sideways, so any
asymmetry of that long profile (the bend at either end, the other flank near a spike's apex, the
blend of two source columns on an upsampled page) becomes a large error in y. Across a pixel ROW the
same stroke is a short, symmetric profile a few pixels wide whose centre is its x to a tenth of a
pixel. Inverting those x(y) points along a monotone flank gives y at every column it crosses.
"""
from __future__ import annotations

import numpy as np

# a column where the curve moves this many px (y) per px (x) is read across rows (before the one-column
# guard, 4 and 9 read within 0.1 dB of 6 on realdev renders). The row reading as a whole: realdev
# renders 21.00 -> 22.63 dB, scans 15.58 -> 16.04, the synthetic hold-out 21.07 -> 21.65 (README)
STEEP_PX = 6.0
ROW_LEVEL = 0.05  # ink below this is paper in a row's profile
MAX_MOVE_COLUMNS = 1.0  # the column reading is off by a fraction of a column, not more
SPREAD_MARGIN = 1.15  # 1.3 and 1.6 read 0.03 and 0.2 dB worse on realdev renders (before the one-column guard)
# near a spike's apex or a sharp trough a row crosses both flanks and their ink runs together: a dip
# below this share of the lower of the two peaks beside it is where one stroke ends and the other
# begins (0.6 / 0.8 / 0.95 read 25.11 / 25.19 / 25.21 dB on realdev renders)
VALLEY_FRAC = 0.8
END_REACH_COLUMNS = 1.0  # a flank's end line is carried this far past its last row point
END_FIT_COLUMNS = 1.5  # ... fitted to the row points this close to it
MIN_FIT_SPAN = 0.2  # columns: row points bunched closer than this give no line


def refine_steep_flanks(y: np.ndarray, band: np.ndarray, pen_px: float, steep: float = STEEP_PX) -> np.ndarray:
    """y (n,) of one printed segment (band px, down), refined on its steep monotone runs.

    band: (h, n) ink of the segment's columns; pen_px: the stroke's width in px. Columns whose
    flank could not be read across rows (a crossing too close to another stroke, a run too short)
    keep their y.
    """
    out = np.asarray(y, np.float64).copy()
    n = len(out)
    if n < 3:
        return out
    slope = np.gradient(out)
    sign = np.where(slope >= steep, 1, np.where(slope <= -steep, -1, 0))
    edges = np.flatnonzero(np.diff(np.r_[0, sign, 0]) != 0)
    reach = int(np.ceil(pen_px)) + 3  # how far from the guess a crossing's ink may extend
    h = band.shape[0]
    # one crossing of a steep stroke is the pen's width across: a box of that width, blurred a pixel
    max_spread = SPREAD_MARGIN * np.sqrt((pen_px ** 2 + 1.0) / 12.0)
    for i0, i1 in zip(edges[:-1], edges[1:]):
        if sign[i0] == 0 or i1 - i0 < 2:
            continue
        xs = np.arange(i0, i1)
        ys = out[i0:i1]
        order = np.argsort(ys)
        y_lo, y_hi = ys[order[0]], ys[order[-1]]
        rows = np.arange(int(np.ceil(y_lo)), int(np.floor(y_hi)) + 1)
        rows = rows[(rows >= 0) & (rows < h)]
        if len(rows) < 3:
            continue
        x_guess = np.interp(rows, ys[order], xs[order].astype(np.float64))
        pts = []
        for r, xg in zip(rows, x_guess):
            crossing = _row_crossing(band[r], xg, reach)
            # wider: two flanks merged near an apex; further: another stroke crossing this row
            if crossing is not None and crossing[1] <= max_spread and abs(crossing[0] - xg) <= MAX_MOVE_COLUMNS:
                pts.append((crossing[0], float(r)))
        if len(pts) < 3:
            continue
        px, py = np.array(pts).T
        k = np.argsort(px)
        px, py = px[k], py[k]
        # a flank is monotone: points out of order are crossings of something else
        mono = np.r_[True, np.diff(py) * sign[i0] > 0]
        px, py = px[mono], py[mono]
        if len(px) < 3:
            continue
        inside = (xs > px[0]) & (xs < px[-1])
        # only where the row points are dense around the column: no long extrapolated spans
        near = np.abs(px[np.clip(np.searchsorted(px, xs), 0, len(px) - 1)] - xs) <= 1.0
        use = inside & near
        y_new = np.interp(xs[use], px, py)
        # a sub-column correction: never more than MAX_MOVE_COLUMNS of the flank's own travel, or
        # anywhere between the neighbouring columns' readings (a column at a flank's bend is read
        # halfway round it, further off than the mean slope allows: the flank is monotone there)
        ok = ((np.abs(y_new - ys[use]) <= MAX_MOVE_COLUMNS * np.abs(slope[xs[use]]) + pen_px)
              | _between_neighbours(y_new, y, xs[use]))
        out[xs[use][ok]] = y_new[ok]
        for side in (0, -1):
            _carry_flank_on(out, y, xs, px, py, side)
    return out


def _carry_flank_on(out: np.ndarray, y: np.ndarray, xs: np.ndarray, px: np.ndarray, py: np.ndarray,
                    side: int) -> None:
    """Columns within END_REACH_COLUMNS past the row points' first (side 0) or last (side -1) x: the
    flank's end line, fitted to its row points within END_FIT_COLUMNS, carried on, where it stays
    between the column's neighbours (in place in out). These are a flank's bend columns, where the
    rows beyond hold both strokes: a third of the renders' steep error sat in them."""
    end = px[side]
    beyond = (xs <= end) & (end - xs < END_REACH_COLUMNS) if side == 0 else (xs >= end) & (xs - end < END_REACH_COLUMNS)
    near_end = np.abs(px - end) <= END_FIT_COLUMNS
    if not beyond.any() or near_end.sum() < 3 or np.ptp(px[near_end]) < MIN_FIT_SPAN:
        return
    slope, offset = np.polyfit(px[near_end], py[near_end], 1)
    cols = xs[beyond]
    y_end = offset + slope * cols
    ok = _between_neighbours(y_end, y, cols)
    out[cols[ok]] = y_end[ok]


def _between_neighbours(v: np.ndarray, y: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(len(cols),) whether v lies between y's values at each column's two neighbours."""
    a = np.asarray(y, np.float64)[np.maximum(cols - 1, 0)]
    b = np.asarray(y, np.float64)[np.minimum(cols + 1, len(y) - 1)]
    return (v >= np.minimum(a, b)) & (v <= np.maximum(a, b))


def _row_crossing(row: np.ndarray, x_guess: float, reach: int) -> tuple[float, float] | None:
    """(ink-weighted centre, spread) of the run of ink in `row` that holds (or is nearest) x_guess,
    cut at a valley where two strokes' ink runs together, or None when there is none, or it runs
    past `reach` (not one crossing: a flat part, a mark)."""
    n = len(row)
    c0, c1 = max(0, int(round(x_guess)) - reach), min(n, int(round(x_guess)) + reach + 1)
    inked = row[c0:c1] >= ROW_LEVEL
    if not inked.any():
        return None
    idx = np.flatnonzero(inked)
    j = int(idx[np.argmin(np.abs(idx + c0 - x_guess))])
    lo, hi = j, j
    while lo > 0 and inked[lo - 1]:
        lo -= 1
    while hi < len(inked) - 1 and inked[hi + 1]:
        hi += 1
    cut_lo, cut_hi = _split_at_valleys(row[c0:c0 + len(inked)], lo, hi, j)
    # a run reaching the window's edge with ink beyond (or the segment's end) is not one crossing,
    # unless a valley ends it there: the other stroke lies beyond
    if cut_lo == 0 and cut_lo == lo and (c0 == 0 or row[c0 - 1] >= ROW_LEVEL):
        return None
    if cut_hi == len(inked) - 1 and cut_hi == hi and (c1 == n or row[c1] >= ROW_LEVEL):
        return None
    lo, hi = cut_lo, cut_hi
    if hi < lo:
        return None
    p = row[c0 + lo:c0 + hi + 1].astype(np.float64)
    cx = np.arange(c0 + lo, c0 + hi + 1)
    xc = float((p * cx).sum() / p.sum())
    return xc, float(np.sqrt((p * (cx - xc) ** 2).sum() / p.sum()))


def _split_at_valleys(p: np.ndarray, lo: int, hi: int, j: int) -> tuple[int, int]:
    """The piece of the run p[lo:hi + 1] that holds index j, the run cut at every dip below
    VALLEY_FRAC of the lower peak beside it (the dip's own pixel, shared by two strokes, is in
    neither piece; a j on it keeps the piece after it)."""
    seg = p[lo:hi + 1].astype(np.float64)
    cuts = [lo + k for k in range(1, len(seg) - 1)
            if seg[k] <= min(seg[k - 1], seg[k + 1]) and seg[k] < max(seg[k - 1], seg[k + 1])
            and seg[k] < VALLEY_FRAC * min(seg[:k].max(), seg[k + 1:].max())]
    if not cuts:
        return lo, hi
    bounds = [lo - 1, *cuts, hi + 1]
    k = int(np.searchsorted(bounds, j, side="right"))  # bounds[k - 1] <= j < bounds[k]
    return bounds[k - 1] + 1, bounds[k] - 1
