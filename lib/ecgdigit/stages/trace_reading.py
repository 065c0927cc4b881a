"""Stage 2, arithmetic part: per-row trace probability maps on the rectified page -> y(x) curves.

The rectified page is the 200 dpi page frame (config.PAGE) times `scale`, so the layout's baselines
and millimetres are known exactly; only the trace's vertical position per column is measured.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import PchipInterpolator

from ..config import PAGE, PaperLayout
from .lead_names import remove_lead_names
from .steep_flanks import refine_steep_flanks
from .stroke_envelope import EDGE_LEVEL, centre_line, column_edges, pen_radius

PAGE_EDGE_MM = 2.0
# per pixel of paper a path crosses between columns (see _best_path); realdev scans 11.4 -> 13.7 dB,
# synthetic hold-out 23.12 -> 23.51 (0.02 lost faint steep strokes on scans)
GAP_COST = 0.01
GAP_FULL_INK = 0.4  # ink this strong counts as stroke, not paper: a blurred photo's steep flanks are faint
# ink on a grid line's solid stretch (grid_suppression.solid_line_stretches) counts this much less on
# the path: a tie-break toward the trace, not an erasure (a flat trace on a 5 mm line stays the only ink)
STRETCH_DISCOUNT = 0.5


@dataclass
class RowCurve:
    """The trace of one printed row: y (rectified px, sub-pixel) at every signal column x."""

    row: int
    x: np.ndarray  # (n,) rectified px, column centres from signal_x0 to signal_x1
    y: np.ndarray  # (n,) rectified px, gaps filled
    found: np.ndarray  # (n,) bool: ink was seen in this column (False = filled)


def row_bands(scale: float, layout: PaperLayout = PAGE, height: int | None = None) -> list[tuple[int, int]]:
    """[top, bottom) y range searched for each printed row: from the baseline above to the one below.

    Bands overlap on purpose: tall waves cross the halfway line between rows (a 1.7 mV R wave on the
    rhythm strip does), and cutting there clips the peaks. The best path's continuity, not the band,
    keeps each row on its own trace.
    """
    b = [y * scale for y in layout.baselines_y]
    h = height if height is not None else int(round(layout.height * scale))
    reach = 3.5 * layout.px_per_mv * scale  # above the first row and below the last
    bands = []
    for r in range(len(b)):
        top = b[r - 1] if r > 0 else b[r] - reach
        bot = b[r + 1] if r < len(b) - 1 else b[r] + reach
        # never the page's own edge: a photo's paper border or the frame beyond it is dark
        bot = min(bot, (layout.height - PAGE_EDGE_MM * layout.px_per_mm) * scale)
        bands.append((max(0, int(np.floor(top))), min(h, int(np.ceil(bot)))))
    return bands


def signal_columns(scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """Integer x of every rectified column inside the 10 s signal area."""
    x0 = int(np.ceil(layout.signal_x0 * scale))
    x1 = int(np.floor(layout.signal_x1 * scale))
    return np.arange(x0, x1 + 1)


def _zero_box(ink: np.ndarray, zone, scale: float) -> None:
    x0, y0, x1, y1 = (v * scale for v in zone)
    ink[max(0, int(y0)):max(0, int(np.ceil(y1))), max(0, int(x0)):max(0, int(np.ceil(x1)))] = 0.0


PULSE_INK = 0.4  # mean ink along the pulse's top above this: the row starts with a calibration pulse


def has_pulse(ink: np.ndarray, row: int, scale: float, layout: PaperLayout = PAGE) -> bool:
    """Whether the row has a calibration pulse where the layout puts it (`PaperLayout.pulse_span_x`):
    ink all along its top (1 mV over 0.2 s). Pages drawn without one start the trace on the pulse's
    place instead, and a rectified page whose grid was registered on the separators then shows paper there."""
    span = layout.pulse_span_x()
    if span is None:
        return False
    y = (layout.baselines_y[row] - layout.calib_mv * layout.px_per_mv) * scale
    x0, x1 = (span[0] + 0.2 * (span[1] - span[0])) * scale, (span[1] - 0.2 * (span[1] - span[0])) * scale
    reach = int(np.ceil(layout.trace_line_pt * layout.px_per_pt * scale)) + 1  # the top line's own width
    yi = int(round(y))
    patch = ink[max(0, yi - reach):yi + reach + 1, int(x0):int(np.ceil(x1))]
    return patch.size > 0 and float(patch.max(axis=0).mean()) > PULSE_INK


PULSE_DROP_SEARCH_PX = (-2.0, 8.0)  # page px past the signal's edge where the pulse's edge there may lie
PULSE_EDGE_COVER = 0.6  # a column this inked between 0.15 and 0.85 mV is the pulse's vertical edge


def pulse_drop_px(ink: np.ndarray, row: int, scale: float, layout: PaperLayout = PAGE) -> float | None:
    """How far past the signal's edge the row's pulse meets it, in page px: a start pulse's trailing
    edge past signal_x0, an end pulse's leading edge past signal_x1 (the column nearest the signal
    inked over most of the pulse's height; its position depends on the fs the page was drawn at).
    None when no such column is found."""
    base = layout.baselines_y[row]
    end = layout.pulse == "end"
    edge = layout.signal_x1 if end else layout.signal_x0
    y0 = int((base - 0.85 * layout.calib_mv * layout.px_per_mv) * scale)
    y1 = int((base - 0.15 * layout.calib_mv * layout.px_per_mv) * scale)
    x_a = int(np.floor((edge + PULSE_DROP_SEARCH_PX[0]) * scale))
    x_b = int(np.ceil((edge + PULSE_DROP_SEARCH_PX[1]) * scale))
    patch = ink[max(0, y0):max(0, y1), max(0, x_a):max(0, x_b)]
    if patch.size == 0:
        return None
    cols = np.flatnonzero((patch >= 0.5).mean(axis=0) >= PULSE_EDGE_COVER)
    if len(cols) == 0:
        return None
    return float((max(0, x_a) + cols[0 if end else -1]) / scale - edge)


def suppress_printed_marks(ink: np.ndarray, scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """Zero the ink where lead names, the legend, the column separators and (where a row has one)
    the calibration pulse's trailing edge are printed: marks beside or on the trace would pull the
    path onto them. Of a lead name only its letters go, where they can be told from the trace
    (`lead_names.py`). A trace crossing any other zone loses those columns; gap filling bridges
    them, and at a segment's end the assembly carries the lead's own slope on.
    """
    out = _without_separators(ink, scale, layout)
    zones = list(layout.legend_zones())
    for r in range(len(layout.baselines_y)):
        if has_pulse(ink, r, scale, layout):
            zones += layout.pulse_zones(r, pulse_drop_px(ink, r, scale, layout))
    for zone in zones:
        _zero_box(out, zone, scale)
    # after the separators are gone: a bar touching a lead name would join it to the trace
    return remove_lead_names(out, scale, layout)


def segment_slices(xs: np.ndarray, row: int, scale: float, layout: PaperLayout = PAGE) -> list[slice]:
    """The columns of each printed segment of a row (one lead each): ECG-image-kit draws every lead
    as its own line, so the trace jumps between leads and each segment is read on its own. The cut
    lies where the pen drew the switch (pen_offset_px): at the nominal edge, the next lead's first
    column held the last lead's end (realdev renders 24.52 -> 24.90 dB)."""
    edges = (np.asarray(layout.segment_edges_x(row)[1:-1]) + layout.pen_offset_px) * scale
    cuts = [0, *np.searchsorted(xs, edges).tolist(), len(xs)]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _best_path(cost: np.ndarray, jump_cost: float, ink: np.ndarray | None = None, gap_cost: float = 0.0) -> np.ndarray:
    """Viterbi path through cost (H, n); moving vertically between columns costs jump_cost per
    pixel, plus gap_cost per pixel of paper crossed (1 - ink, the larger of the two columns' ink).

    Both are linear in a per-column coordinate u(y) = cumsum(jump_cost + gap_cost * (1 - ink)), so
    min over y' of D[y'] + |u(y) - u(y')| is still two running minima (a 1-D distance transform)
    and each column is O(H) in numpy. The paper term keeps the path on its stroke: climbing a QRS
    along ink is cheap, leaping across paper onto a scan's stray line or a neighbour's wave is not.
    """
    h, n = cost.shape
    back = np.empty((h, n), np.int32)
    acc = cost[:, 0].astype(np.float32).copy()
    # u(y) of every column transition at once, (n - 1, h): the loop below only looks it up
    if ink is not None and gap_cost > 0:
        between = np.maximum(ink[:, :-1], ink[:, 1:]).T
        steps = jump_cost + gap_cost * (1.0 - np.minimum(between / GAP_FULL_INK, 1.0))
        u = np.cumsum(steps, axis=1, dtype=np.float32)
    else:
        u = np.broadcast_to(np.cumsum(np.full(h, jump_cost, np.float32)), (max(n - 1, 0), h))
    for j in range(1, n):
        ys = u[j - 1]
        down = np.minimum.accumulate(acc - ys) + ys  # came from above (y' <= y)
        up = (np.minimum.accumulate((acc + ys)[::-1]) - ys[::-1])[::-1]  # from below
        # argmins of the two running minima give the predecessor
        arg_down = _running_argmin(acc - ys)
        arg_up = h - 1 - _running_argmin((acc + ys)[::-1])[::-1]
        take_up = up < down
        back[:, j] = np.where(take_up, arg_up, arg_down)
        acc = np.minimum(up, down) + cost[:, j]
    path = np.empty(n, np.int32)
    path[-1] = int(np.argmin(acc))
    for j in range(n - 1, 0, -1):
        path[j - 1] = back[path[j], j]
    return path


def _running_argmin(v: np.ndarray) -> np.ndarray:
    """Index of the running minimum of v (first occurrence)."""
    idx = np.arange(len(v))
    is_new_min = np.r_[True, v[1:] < np.minimum.accumulate(v)[:-1]]
    return np.maximum.accumulate(np.where(is_new_min, idx, 0))


def read_row_curve(prob: np.ndarray, row: int, scale: float, layout: PaperLayout = PAGE,
                   threshold: float = 0.3, level: float = EDGE_LEVEL, jump_cost: float = 0.004, gap_cost: float = GAP_COST,
                   max_gap_mv: float = 0.5, max_run_mv: float = 1.0, merge_gap_mv: float = 0.05,
                   strokes: np.ndarray | None = None, stretches: np.ndarray | None = None,
                   line_columns: np.ndarray | None = None) -> RowCurve:
    """One row's trace from its probability map (H, W).

    A continuous best path picks the trace where several inked runs share a column (neighbouring
    rows' spikes, text). The stroke around the path (its runs in that column, joined across gaps
    up to merge_gap_mv: a spike's up- and down-stroke share the columns near its apex) gives a top
    and bottom edge, from which the pen's centre line is recovered (stroke_envelope.py): the
    ink-weighted centre of the column where the curve is smooth, the closing/opening of the edges
    at peaks and troughs narrower than the pen (where the centre is read short).

    stretches: (H, W) bool, grid-line stretches whose ink the path counts STRETCH_DISCOUNT less
    (the stroke's edges are still read from prob). line_columns: (W,) bool, the columns of a grey
    grid's 5 mm vertical lines: there the stroke is kept within its extent just beside the line.

    strokes: the ink before printed marks were zeroed (default: prob). Near a segment's ends, where
    the marks' zones cut the trace, a column is kept only if its stroke connects in it to what the
    path read inside the segment: a lead name's serif below a separator is not the trace.
    """
    a, b = row_bands(scale, layout, prob.shape[0])[row]
    xs = signal_columns(scale, layout)
    xs = xs[xs < prob.shape[1]]
    band = prob[a:b, xs].astype(np.float32)  # (h, n)
    h, n = band.shape
    inked = band >= threshold  # below the edge level: a thin stroke's steep columns are faint
    baseline = layout.baselines_y[row] * scale - a
    # no ink in a column: a mild pull toward the baseline keeps the path sane through gaps
    prior = 0.002 * np.abs(np.arange(h, dtype=np.float32) - baseline)[:, None]
    segments = segment_slices(xs, row, scale, layout)
    # one path per lead: the lead switch is a jump the pen never drew
    on_path = band if stretches is None else band * (1.0 - STRETCH_DISCOUNT * stretches[a:b, xs])
    path = np.concatenate([_best_path(1.0 - on_path[:, s] + prior, jump_cost, band[:, s], gap_cost) for s in segments])

    yy = np.arange(h)[:, None]
    cols = np.arange(n)
    px_mv = layout.px_per_mv * scale
    gap = max(1, int(round(merge_gap_mv * px_mv)))
    joined = cv2.morphologyEx(inked.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((gap, 1), np.uint8)).astype(bool)
    run_id = np.cumsum(~joined, axis=0)  # constant inside each joined run
    dist = np.where(joined, np.abs(yy - path[None, :]), h)
    nearest = np.argmin(dist, axis=0)  # the run nearest the path (the path may cut a spike's corner)
    near_enough = dist[nearest, cols] <= max_gap_mv * px_mv
    # more than max_run_mv from the path is a neighbour's spike, texture or text fused with the stroke
    member = ((run_id == run_id[nearest, cols][None, :]) & inked
              & (np.abs(yy - path[None, :]) <= max_run_mv * px_mv))
    if line_columns is not None:
        member = _within_neighbours(member, line_columns[xs], LINE_MARGIN_PX)
    ok = near_enough & member.any(axis=0)
    # faint steep columns of a thin stroke must not split it: a low level and a dilation
    raw = cv2.dilate(((strokes if strokes is not None else prob)[a:b, xs] >= CONNECT_LEVEL).astype(np.uint8),
                     np.ones((CONNECT_REACH, CONNECT_REACH), np.uint8))
    ok &= _connected_at_ends(raw, member, ok, segments, EDGE_CHECK_S * layout.px_per_s * scale)
    y = np.full(n, baseline, np.float64)
    if ok.sum() < 2:
        return RowCurve(row=row, x=xs.astype(np.float64), y=y + a, found=ok)
    top, bottom = column_edges(band, member, level)
    w = np.where(member, band, 0.0)
    centroid = np.where(ok, (w * yy).sum(axis=0) / np.maximum(w.sum(axis=0), 1e-6), np.nan)
    radius = pen_radius(top[ok], bottom[ok])
    for s in segments:
        k = ok[s]
        if k.sum() < 2:
            ok[s] = False
            continue
        ys = centre_line(fill_gaps(top[s], k), fill_gaps(bottom[s], k), radius, fill_gaps(centroid[s], k))
        ys = refine_steep_flanks(ys, band[:, s], 2 * radius)
        ys[~k] = np.nan
        y[s] = fill_gaps(ys, k)
    return RowCurve(row=row, x=xs.astype(np.float64), y=y + a, found=ok)


# A grey grid's 5 mm vertical lines print dashes as dark as the trace: one touching a flat trace
# joins its run, and the column's edges read a spike. A continuous stroke in a line's columns lies
# within what it covers in the columns just beside the line, so the run is clipped to that (+ margin).
LINE_MARGIN_PX = 2


def _within_neighbours(member: np.ndarray, on_line: np.ndarray, margin: int) -> np.ndarray:
    """member (h, n) with each stretch of on_line columns clipped to the rows the member covers in
    the nearest columns either side (left alone where a side has none)."""
    out = member.copy()
    h, n = member.shape
    edges = np.flatnonzero(np.diff(np.r_[0, on_line.astype(np.int8), 0]))
    for j0, j1 in zip(edges[::2], edges[1::2]):  # line columns [j0, j1)
        if j0 == 0 or j1 >= n or not member[:, j0 - 1].any() or not member[:, j1].any():
            continue
        rows = np.flatnonzero(member[:, j0 - 1] | member[:, j1])
        keep = np.zeros(h, bool)
        keep[max(0, rows[0] - margin):rows[-1] + margin + 1] = True
        out[:, j0:j1] &= keep[:, None]
    return out


EDGE_CHECK_S = 0.1  # how far from a segment's ends strokes must connect to the segment's own
CONNECT_LEVEL = 0.1  # ink that counts for that connection
CONNECT_REACH = 9  # px (at reading scale): breaks this small in a faint stroke still connect


def _connected_at_ends(raw: np.ndarray, member: np.ndarray, ok: np.ndarray, segments: list[slice],
                       reach: float) -> np.ndarray:
    """(n,) False for columns within `reach` of a segment's ends whose member pixels lie only on
    connected components of `raw` that no interior column of the segment reads."""
    n_lab, labels = cv2.connectedComponents(raw.astype(np.uint8), connectivity=8)
    keep = np.ones(len(ok), bool)
    r = int(np.ceil(reach))
    for s in segments:
        lab = labels[:, s]
        mem = member[:, s] & ok[s][None, :]
        width = lab.shape[1]
        if width <= 2 * r + 2:
            continue
        interior = np.zeros(n_lab, bool)
        interior[np.unique(lab[:, r:width - r][mem[:, r:width - r]])] = True
        interior[0] = False
        for cols in (range(0, r), range(width - r, width)):
            for j in cols:
                if mem[:, j].any() and not interior[lab[mem[:, j], j]].any():
                    keep[s.start + j] = False
    return keep


def fill_gaps(y: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """PCHIP through the measured columns; flat beyond the ends (no overshoot, no wild extrapolation)."""
    idx = np.flatnonzero(ok)
    out = PchipInterpolator(idx, y[idx], extrapolate=False)(np.arange(len(y)))
    out[: idx[0]] = y[idx[0]]
    out[idx[-1] + 1:] = y[idx[-1]]
    return out


SHARED_INK_MV = 0.05  # two rows' curves this close in a column are reading the same stroke
MIN_SHARED_COLUMNS = 3


def read_row_curves(probs, scale: float, layout: PaperLayout = PAGE, **kw) -> list[RowCurve]:
    """probs: (N_ROWS, H, W) array or a sequence of N_ROWS (H, W) maps (they may be one shared map).

    A tall wave reaches into the neighbouring row's band, and that row's path may take the short
    cut over it instead of climbing its own spike. Where two rows' curves share a stroke, the one
    that jumped onto it is read again without the other's stroke.
    """
    if kw.get("strokes") is not None:
        kw["strokes"] = _without_separators(kw["strokes"], scale, layout)
    curves = [read_row_curve(probs[r], r, scale, layout, **kw) for r in range(len(probs))]
    share = SHARED_INK_MV * layout.px_per_mv * scale
    for r in range(len(curves) - 1):
        a, b = curves[r], curves[r + 1]
        shared = a.found & b.found & (np.abs(a.y - b.y) < share)
        if shared.sum() < MIN_SHARED_COLUMNS:
            continue
        intruder, owner = (r, r + 1) if _jump_into(a.y, shared) > _jump_into(b.y, shared) else (r + 1, r)
        masked = _without_curve(probs[intruder], curves[owner], 2 * share)
        curves[intruder] = read_row_curve(masked, intruder, scale, layout, **kw)
    return curves


def _without_separators(strokes: np.ndarray, scale: float, layout: PaperLayout) -> np.ndarray:
    """A copy of the strokes with the separator bars zeroed. Also the end-connectivity map's: a bar
    joins the end of one lead to the start of the next, and a segment's end columns would keep the
    other lead's ink as connected to its own."""
    out = np.array(strokes, dtype=np.float32, copy=True)
    for r in range(len(layout.baselines_y)):
        for zone in layout.separator_zones(r):
            _zero_box(out, zone, scale)
    return out


def _jump_into(y: np.ndarray, shared: np.ndarray) -> float:
    """The largest one-column step of y next to the shared columns (an intruder arrives by a jump)."""
    near = np.convolve(shared.astype(np.float32), np.ones(5, np.float32), mode="same") > 0
    steps = np.abs(np.diff(y, prepend=y[0]))
    return float(steps[near].max()) if near.any() else 0.0


def _without_curve(prob: np.ndarray, curve: RowCurve, half_px: float) -> np.ndarray:
    """prob with curve's stroke (where it saw ink) set to zero: half_px around it, and on a steep
    part the column's whole run (the curve's step to its neighbours)."""
    out = np.array(prob, dtype=np.float32, copy=True)
    reach = half_px + np.abs(np.gradient(curve.y))
    for x, y, d in zip(curve.x.astype(np.int64)[curve.found], curve.y[curve.found], reach[curve.found]):
        out[max(0, int(y - d)):max(0, int(np.ceil(y + d)) + 1), x] = 0.0
    return out
