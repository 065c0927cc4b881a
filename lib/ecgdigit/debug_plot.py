"""Pictures a person would rather look at: the rectified page with the read-back signal over it."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .config import PAGE, PaperLayout
from .digitized import Digitized
from .lead_layouts import printed_segments

TRACE_RGB = (0, 160, 255)  # read-back signal
TRUTH_RGB = (0, 200, 0)  # the truth, where known


def _row_polyline(values: np.ndarray, fs: float, row: int, lead_t0: float, scale: float, layout: PaperLayout):
    t = lead_t0 + np.arange(len(values)) / fs
    x, y = layout.pen_xy(row, t, values)
    x, y = x * scale, y * scale
    return np.round(np.stack([x, y], 1) * 16).astype(np.int32)


def _lead_segments(d: Digitized, layout: PaperLayout):
    """(row, lead, t0, values) of every printed segment: drawn where printed, whatever time it shows."""
    for r, c, lead, t0, t1 in printed_segments(layout.rows, layout.shown_s):
        a = int(round((0.0 if d.simultaneous_columns else t0) * d.fs))
        yield r, lead, t0, d.lead(lead)[a:a + int(round((t1 - t0) * d.fs))]


def overlay(rectified: np.ndarray, scale: float, digitized: Digitized, truth: Digitized | None = None,
            out_width: int = 2200, layout: PaperLayout = PAGE) -> np.ndarray:
    """The rectified page (resized to out_width) with the digitized leads drawn where they were read."""
    s = out_width / rectified.shape[1]
    img = cv2.resize(rectified, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    img = (0.55 * img + 0.45 * 255).astype(np.uint8)  # fade the page so the overlay reads
    draw_scale = scale * s
    for sig, rgb in ((truth, TRUTH_RGB), (digitized, TRACE_RGB)):
        if sig is None:
            continue
        for r, _lead, t0, v in _lead_segments(sig, layout):
            cv2.polylines(img, [_row_polyline(v, sig.fs, r, t0, draw_scale, layout)], False, rgb, 1, cv2.LINE_AA, shift=4)
    for r, c, lead, t0, _t1 in printed_segments(layout.rows, layout.shown_s):
        x = int(layout.time_to_x(t0) * draw_scale) + 4
        y = int((layout.baselines_y[r] - 1.4 * layout.px_per_mv) * draw_scale)
        cv2.putText(img, lead, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 160), 1, cv2.LINE_AA)
    return img


def save_overlay(path: str | Path, rectified: np.ndarray, scale: float, digitized: Digitized,
                 truth: Digitized | None = None, title: str = "", layout: PaperLayout = PAGE) -> Path:
    img = overlay(rectified, scale, digitized, truth, layout=layout)
    if title:
        cv2.putText(img, title, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path

