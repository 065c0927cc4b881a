"""Stage 2, physics part: row curves in pixels -> 12 leads in mV over 10 s.

x -> seconds and y -> mV come from the fixed paper rules (25 mm/s, 10 mm/mV) and each row's
baseline; each short lead is cut from its row's 2.5 s column, lead II from the rhythm strip.
"""
from __future__ import annotations

import numpy as np

from ..config import DURATION_S, LAYOUT_ROWS, LEADS, PAGE, RHYTHM_LEAD, SHORT_LEAD_S, PaperLayout
from ..digitized import Digitized
from .trace_reading import RowCurve

# columns this close to a segment boundary carry the lead switch, the boundary tick, or the
# calibration pulse's trailing edge; they are bridged from the lead's own samples instead
BOUNDARY_GUARD_S = 0.016


def row_curve_to_mv(curve: RowCurve, scale: float, layout: PaperLayout = PAGE) -> tuple[np.ndarray, np.ndarray]:
    """(t seconds, mV) of a row curve."""
    t = (curve.x / scale - layout.signal_x0) / layout.px_per_s
    mv = (layout.baselines_y[curve.row] * scale - curve.y) / (layout.px_per_mv * scale)
    return t, mv


def assemble_leads(curves: list[RowCurve], scale: float, layout: PaperLayout = PAGE,
                   fs: float | None = None) -> Digitized:
    """12 leads on a uniform grid at fs (default: one sample per rectified column).

    Outside its window a short lead holds its own edge values, so that resampling near the edge
    never mixes in the neighbouring lead.
    """
    fs = float(fs or layout.px_per_s * scale)
    n = int(round(DURATION_S * fs))
    t_grid = np.arange(n) / fs
    out = np.zeros((n, len(LEADS)), np.float32)
    by_row = {c.row: c for c in curves}
    for r, row_leads in enumerate(LAYOUT_ROWS):
        if r not in by_row:
            continue
        t, mv = row_curve_to_mv(by_row[r], scale, layout)
        if r == len(LAYOUT_ROWS) - 1:  # the rhythm strip: lead II over 10 s
            keep = t >= BOUNDARY_GUARD_S
            out[:, LEADS.index(RHYTHM_LEAD)] = np.interp(t_grid, t[keep], mv[keep])
            continue
        for c, lead in enumerate(row_leads):
            t0, t1 = c * SHORT_LEAD_S, (c + 1) * SHORT_LEAD_S
            keep = (t >= t0 + BOUNDARY_GUARD_S) & (t <= t1 - BOUNDARY_GUARD_S)
            if keep.sum() < 2:
                continue
            if lead == RHYTHM_LEAD and r < len(LAYOUT_ROWS) - 1 and len(LAYOUT_ROWS[-1]) == 1:
                continue  # lead II comes from the rhythm strip; row 2's copy is a cross-check only
            out[:, LEADS.index(lead)] = np.interp(t_grid, t[keep], mv[keep])
    return Digitized(out, fs)
