"""Stage 2: divide the printed grid out of the rectified page, whatever its colour.

On the rectified page the grid's lines are rows and columns of pixels, so the grid's darkening is
separable: a vertical line darkens its column wherever there is paper, a horizontal line its row.
A high percentile of each column (and row), taken over blocks so a slightly bent line is followed,
is the paper's brightness there with the grid and without the trace: the trace covers few pixels
of any column, and fewer than a quarter of any row even where it runs flat along it. Dividing by
the product of the two profiles turns grid pixels (and their crossings) into paper and leaves the
trace as dark as it was relative to its surroundings.

The brightest channel already hides a red grid (it stays near 255 in red); this step is what the
dark-grey grid of a black-and-white scan needs, where the brightest channel keeps it. Measured on
realdev's real scans: 5.1 -> 11.4 dB; synthetic hold-out 22.92 -> 23.12 dB.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..config import PAGE, PaperLayout
from .ink import ink_from_ratio, paper_ratio

GRID_BLOCK_MM = 25.0  # profiles are taken over blocks this long (5 major squares)
PROFILE_PERCENTILE = 75  # robust to a trace covering up to a quarter of a row
MIN_SHADE = 0.5  # a grid line never darkens paper by more than half; below that it is ink
# A scan's 5 mm lines can print dashed (realdev scan 1961248302: dark dashes, paper between): the
# 75th percentile sees the gaps, the dashes stay ink and a flat stretch of trace jumps onto them.
# On the rectified page those lines lie on known rows, so there the profile is a low percentile:
# the dashes, not the gaps. Not near a baseline: a flat trace runs there for seconds (row 2's
# baseline lies on a 5 mm line, the others 1 mm from one).
DASHED_PERCENTILE = 30
MAJOR_LINE_REACH_MM = 0.3  # rows this close to a 5 mm line are the line's (its width and blur)
BASELINE_CLEAR_MM = 1.5  # ... unless this close to a baseline


def _profile(ratio: np.ndarray, n_blocks: int, axis: int, percentile: float = PROFILE_PERCENTILE) -> np.ndarray:
    """The percentile profile along `axis` per block of the other axis, stretched back to full size."""
    h, w = ratio.shape
    length = h if axis == 0 else w
    edges = np.linspace(0, length, n_blocks + 1).astype(int)
    if axis == 0:  # column profiles, one per horizontal band: (n_blocks, w)
        prof = np.stack([np.percentile(ratio[a:b], percentile, axis=0) for a, b in zip(edges[:-1], edges[1:])])
    else:  # row profiles, one per vertical band: (h, n_blocks)
        prof = np.stack([np.percentile(ratio[:, a:b], percentile, axis=1) for a, b in zip(edges[:-1], edges[1:])],
                        axis=1)
    prof = np.clip(prof, MIN_SHADE, 1.0).astype(np.float32)
    if n_blocks == 1:
        return np.broadcast_to(prof, (h, w))
    return cv2.resize(prof, (w, h), interpolation=cv2.INTER_LINEAR)


def _from_major_line(from_anchor_px: np.ndarray, scale: float, layout: PaperLayout) -> np.ndarray:
    """Distance (px at `scale`) to the nearest 5 mm grid line of positions measured from the lattice's
    anchor (the page's bottom for rows, its left for columns)."""
    d = from_anchor_px / (layout.grid_major_px * scale)
    return np.abs(d - np.round(d)) * layout.grid_major_px * scale


def _row_distances(h: int, scale: float, layout: PaperLayout) -> np.ndarray:
    """(h,) each pixel row's distance (px) to the nearest 5 mm line (anchored at the page's bottom)."""
    return _from_major_line(layout.height * scale - np.arange(h), scale, layout)


def major_line_rows(h: int, scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """(h,) bool: the rectified page's pixel rows on a 5 mm grid line (anchored at the page's bottom)."""
    return _row_distances(h, scale, layout) <= MAJOR_LINE_REACH_MM * layout.px_per_mm * scale


def major_line_columns(w: int, scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """(w,) bool: the rectified page's pixel columns on a 5 mm grid line (anchored at the page's left)."""
    return _from_major_line(np.arange(w), scale, layout) <= MAJOR_LINE_REACH_MM * layout.px_per_mm * scale


def away_from_baselines(h: int, scale: float, clear_mm: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """(h,) bool: the rectified page's pixel rows farther than clear_mm from every baseline."""
    y = np.arange(h)
    away = np.ones(h, bool)
    for b in layout.baselines_y:
        away &= np.abs(y - b * scale) > clear_mm * layout.px_per_mm * scale
    return away


def dashed_line_rows(h: int, scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """(h,) bool: the rectified page's pixel rows on a 5 mm grid line that no baseline is near."""
    return major_line_rows(h, scale, layout) & away_from_baselines(h, scale, BASELINE_CLEAR_MM, layout)


def grid_shade(ratio: np.ndarray, scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """(H, W) the grid's multiplicative darkening of a rectified page's paper ratio (1 = none)."""
    h, w = ratio.shape
    block = GRID_BLOCK_MM * layout.px_per_mm * scale
    n_rows = max(1, int(round(w / (2 * block))))
    rows = _profile(ratio, n_rows, 1)
    on = dashed_line_rows(h, scale, layout)
    if on.any():
        rows = np.array(rows, copy=True)
        rows[on] = _profile(ratio[on], n_rows, 1, DASHED_PERCENTILE)
    return _profile(ratio, max(1, int(round(h / block))), 0) * rows


def suppress_grid(ratio: np.ndarray, scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """The paper ratio with the grid divided out (grid pixels become paper, about 1.0)."""
    return np.minimum(ratio / grid_shade(ratio, scale, layout), 1.2).astype(np.float32)


def grid_free_ink(rectified_rgb: np.ndarray, stroke_px: float, scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """Trace ink 0..1 of a rectified page at `scale`, whatever the grid's colour (ink.paper_ratio, then
    the grid divided out, then ink.ink_from_ratio)."""
    return ink_from_ratio(suppress_grid(paper_ratio(rectified_rgb, stroke_px), scale, layout))


# A B&W print's 5 mm lines can print partly solid, in dashes and long stretches as dark as the trace
# (grid/trace darkness ~0.94). Near a baseline they are left as ink (see dashed_line_rows), and a
# path running 1 mm from one takes the straight stretch instead of a low T wave: as dark, and no
# climbing. Ink running straight along a 5 mm line's row for longer than a crossing trace covers it
# is marked, so the reader can prefer other ink there.
STRETCH_LEVEL = 0.3  # ink that counts (the reader's own threshold)
STRETCH_MIN_MM = 0.5  # along the row this long: a crossing stroke covers less unless nearly flat


def solid_line_stretches(ink: np.ndarray, scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """(H, W) bool: ink lying on a 5 mm line's rows in a horizontal run of STRETCH_MIN_MM or more."""
    on = (ink >= STRETCH_LEVEL) & major_line_rows(ink.shape[0], scale, layout)[:, None]
    length = max(3, int(round(STRETCH_MIN_MM * layout.px_per_mm * scale)))
    return cv2.morphologyEx(on.astype(np.uint8), cv2.MORPH_OPEN, np.ones((1, length), np.uint8)).astype(bool)


# Only a grey grid prints such stretches: a coloured one vanishes in the brightest channel, and there
# the ink on a 5 mm line is the trace itself (row 2 rests on one; discounted, its path leapt onto a
# damaged page's speck: -0.15 dB on that type). The 5 mm rows' brightness over the rows midway
# between them (both away from the baselines), measured on 3 pages per hold-out type: B&W print and
# mould on B&W 0.885-0.929, realdev's real scans 0.872-0.891, clean, colour, phone, stained, damaged
# and mould colour 0.959-1.012, screen photos 0.876-1.0 (a screen can show the grid grey).
GREY_GRID_SHADE = 0.94
MID_ROW_REACH_MM = 0.3  # rows this close to midway between two 5 mm lines: paper and minor lines only


def major_line_shade(ratio: np.ndarray, scale: float, layout: PaperLayout = PAGE) -> float:
    """How dark the 5 mm lines print in a rectified page's paper ratio: the median 75th-percentile
    brightness of their rows over that of the rows midway between them (1: the grid is hidden)."""
    h = ratio.shape[0]
    half_step = 0.5 * layout.grid_major_px * scale
    mid = np.abs(_row_distances(h, scale, layout) - half_step) <= MID_ROW_REACH_MM * layout.px_per_mm * scale
    away = away_from_baselines(h, scale, BASELINE_CLEAR_MM, layout)
    bright = np.percentile(ratio[:, ::4], PROFILE_PERCENTILE, axis=1)  # every 4th column: a profile
    major, between = dashed_line_rows(h, scale, layout), mid & away
    if not major.any() or not between.any():
        return 1.0
    return float(np.median(bright[major]) / max(float(np.median(bright[between])), 1e-6))
