"""Stage 2, physics part: row curves in pixels -> 12 leads in mV over 10 s.

x -> seconds and y -> mV come from the layout's paper rules (its paper speed and gain) and each row's
baseline; each lead is cut from its longest printed segment (lead II from the rhythm strip). A page
at 50 mm/s shows the record's first 5 s only: the rest is filled (`fill_unshown`) and said so.
"""
from __future__ import annotations

import numpy as np

from ..config import DURATION_S, LEADS, PAGE, PaperLayout
from ..digitized import Digitized
from ..lead_layouts import printed_segments, source_segments
from .trace_reading import RowCurve


def _measured_span(t: np.ndarray, found: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Columns of the window [t0, t1) from its first to its last measured one: what the reader saw
    of this lead, gaps inside bridged; beyond them (a pulse's or separator's footprint over the
    trace) the lead's own edge slope carries on."""
    inside = (t >= t0) & (t < t1)
    seen = np.flatnonzero(inside & found)
    if len(seen) < 2:
        return inside
    keep = np.zeros_like(inside)
    keep[seen[0]:seen[-1] + 1] = True  # t increases with the column: all inside the window
    return keep


def row_curve_to_mv(curve: RowCurve, scale: float, layout: PaperLayout = PAGE) -> tuple[np.ndarray, np.ndarray]:
    """(t seconds, mV) of a row curve (pen points in rectified px at `scale`)."""
    return layout.pen_signal(curve.row, curve.x / scale, curve.y / scale)


EDGE_SLOPE_S = 0.010  # the slope carried past a lead's last measured column is measured over this much signal
MAX_EXTEND_MV = 0.1
EXTEND_S = 0.032  # the slope carries on this long, then holds
LEAD_II_AGREE_MV = 0.15  # RMS; readings of the same lead II further apart than this are flagged


def interp_extend(t_grid: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """np.interp inside [t0, t1]; beyond it, the edge's own slope carries on (a guard of a few ms
    at a segment's end is better continued than held flat: ECGs are steep there as often as not)."""
    out = np.interp(t_grid, t, v)
    for side in (0, -1):
        edge_t, edge_v = t[side], v[side]
        near = np.abs(t - edge_t) <= EDGE_SLOPE_S
        if near.sum() >= 3:
            slope = np.polyfit(t[near] - edge_t, v[near], 1)[0]
            beyond = t_grid < edge_t if side == 0 else t_grid > edge_t
            step = slope * np.clip(t_grid[beyond] - edge_t, -EXTEND_S, EXTEND_S)
            out[beyond] = edge_v + np.clip(step, -MAX_EXTEND_MV, MAX_EXTEND_MV)  # a wrong slope costs little
    return out


def assemble_leads(curves: list[RowCurve], scale: float, layout: PaperLayout = PAGE,
                   fs: float | None = None, simultaneous: bool = False) -> Digitized:
    """12 leads on a uniform grid at fs (default: one sample per rectified column), each from its
    longest printed segment in `layout.rows` (lead_layouts.source_segments: a rhythm strip before a
    short copy, which only checks it).

    Outside its window a short lead continues its own edge, so that resampling near the edge never
    mixes in the neighbouring lead. simultaneous: every column shows the record's first seconds, so a
    short lead printed from page time t0 is moved back by t0.
    """
    fs = float(fs or layout.px_per_s * scale)
    n = int(round(DURATION_S * fs))
    t_grid = np.arange(n) / fs
    out = np.zeros((n, len(LEADS)), np.float32)
    by_row = {c.row: c for c in curves}
    sources = source_segments(layout.rows, layout.shown_s)
    windows: dict[str, tuple[float, float]] = {}
    seen: dict[str, tuple[float, float]] = {}
    copies: list[tuple[str, np.ndarray, np.ndarray]] = []  # a lead printed again, shorter: it checks the source
    read = {}
    for r, c, lead, t0, t1 in printed_segments(layout.rows, layout.shown_s):
        if r not in by_row:
            continue
        if r not in read:
            read[r] = row_curve_to_mv(by_row[r], scale, layout)
        t, mv = read[r]
        keep = _measured_span(t, by_row[r].found, t0, t1)
        if keep.sum() < 2:
            continue
        moved = t0 - (0.0 if simultaneous else t0)  # page time -> record time
        if sources[lead][:2] != (r, c):
            copies.append((lead, t[keep] - moved, mv[keep]))
            continue
        out[:, LEADS.index(lead)] = interp_extend(t_grid, t[keep] - moved, mv[keep])
        windows[lead] = (t0 - moved, t1 - moved)
        seen[lead] = (float(t[keep][0] - moved), float(t[keep][-1] - moved))
    warnings = [fill_unshown(out, t_grid, layout.shown_s, windows)] if layout.shown_s < DURATION_S else []
    for lead, t_copy, mv_copy in copies:
        if lead not in windows:
            continue
        gap = lead_ii_disagreement(out[:, LEADS.index(lead)], fs, t_copy, mv_copy)
        if gap > LEAD_II_AGREE_MV:
            warnings.append(f"lead {lead}: the rhythm strip and its short-row copy differ by {gap:.2f} mV RMS")
    return Digitized(out, fs, warnings, simultaneous_columns=simultaneous, lead_windows=windows,
                     shown_s=layout.shown_s, seen_spans=seen)


def fill_unshown(out: np.ndarray, t_grid: np.ndarray, shown_s: float, windows: dict[str, tuple[float, float]]) -> str:
    """Fill, in place, the record's time after what the page shows (a 50 mm/s page: 5..10 s) with
    each read lead's median over its printed window (its baseline); returns the warning saying so.

    Nothing on the page tells that time's beats, so any waveform put there would be invented; the
    baseline is the estimate with the least squared error whatever the rhythm (the median: robust to
    the QRS). A WFDB record leaves that time out altogether (record_signals); the competition's
    test.csv rows are 10 s long and get these values, never NaN.
    """
    after = t_grid >= shown_s
    for lead, (t0, t1) in windows.items():
        j = LEADS.index(lead)
        printed = (t_grid >= t0) & (t_grid < t1)
        out[after, j] = np.median(out[printed, j]) if printed.any() else 0.0
    return (f"the page shows the record's first {shown_s:g} s only (paper speed): each lead holds its "
            f"median from {shown_s:g} to {DURATION_S:g} s, not read")


def lead_ii_disagreement(rhythm: np.ndarray, fs: float, t_copy: np.ndarray, mv_copy: np.ndarray) -> float:
    """RMS difference (offset removed) between the rhythm strip and the short row's lead II.

    Both are readings of the same 2.5 s: a large difference means one of them was misread (a lost
    path, a wrong row, a misplaced grid), which the pipeline reports instead of hiding. Blending the
    two was measured and did not lower the error, so the rhythm strip alone is kept.
    """
    ref = np.interp(t_copy, np.arange(len(rhythm)) / fs, rhythm)
    d = mv_copy - ref
    return float(np.sqrt(np.mean((d - np.median(d)) ** 2))) if len(d) else 0.0
