"""Fix the page map's whole-square ambiguity with the printed layout.

The grid is periodic: a dense map built from grid crossings is exact up to a shift by whole major
squares, which the approximate stage-0 homography cannot always settle (a scan's page edge is often
cut off). The calibration pulses, column ticks and the rows' baselines are at fixed page positions,
so matching them against the rectified ink settles the shift.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from ..config import LAYOUT_ROWS, PAGE, SHORT_LEAD_S, PaperLayout
from ..geometry.coordinate_map import CoordinateMap
from .ink import ink_from_rgb, without_wide_ink

logger = logging.getLogger(__name__)

REG_SCALE = 0.5
MAX_SHIFT_SQUARES = 2


@dataclass
class Registration:
    shift_px: tuple[float, float]  # page px to add to every page point before mapping
    score: float
    score_unshifted: float


def layout_template(scale: float, layout: PaperLayout = PAGE) -> np.ndarray:
    """Where the fixed marks are drawn: calibration pulses, column ticks, a band on each baseline."""
    h, w = layout.shape_at(scale)
    t = np.zeros((h, w), np.float32)
    lw = max(1, int(round(2 * scale)))
    for r, leads in enumerate(LAYOUT_ROWS):
        base = layout.baselines_y[r]
        top = layout.mv_to_y(r, layout.calib_mv)
        pulse = np.array([[layout.calib_x0, base], [layout.calib_x0, top], [layout.signal_x0, top],
                          [layout.signal_x0, base]]) * scale
        cv2.polylines(t, [np.round(pulse).astype(np.int32)], False, 1.0, lw)
        for c in range(1, len(leads)):
            x = layout.time_to_x(c * SHORT_LEAD_S)
            half = layout.column_tick_mv / 2 * layout.px_per_mv
            cv2.line(t, (int(round(x * scale)), int(round((base - half) * scale))),
                     (int(round(x * scale)), int(round((base + half) * scale))), 1.0, lw)
        # the trace hugs its baseline most of the time: a weak horizontal band
        y = int(round(base * scale))
        x0, x1 = int(layout.signal_x0 * scale), int(layout.signal_x1 * scale)
        t[max(0, y - lw):y + lw + 1, x0:x1] += 0.15
    return t


def register_to_layout(page_to_image: CoordinateMap, upright: np.ndarray, layout: PaperLayout = PAGE,
                       quantize: bool = True, scale: float = REG_SCALE) -> Registration:
    """The shift (whole major squares when `quantize`) that best lays the marks on the page's ink."""
    step = layout.grid_major_px
    pad = int(np.ceil((MAX_SHIFT_SQUARES + 0.5) * step * scale))
    ink = without_wide_ink(ink_from_rgb(page_to_image.remap(upright, scale=scale), 2.0 * scale * 2),
                           layout.px_per_mm * scale)
    ink = cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    tmpl = layout_template(scale, layout)
    # response[dy, dx]: template placed at offset (dx - pad, dy - pad) in the rectified ink
    resp = cv2.matchTemplate(ink, tmpl, cv2.TM_CCORR)
    if quantize:
        ks = np.arange(-MAX_SHIFT_SQUARES, MAX_SHIFT_SQUARES + 1)
        cands = {}
        for ky in ks:
            for kx in ks:
                dx, dy = kx * step, ky * step
                y, x = int(round(pad + dy * scale)), int(round(pad + dx * scale))
                cands[(dx, dy)] = float(resp[max(0, y - 1):y + 2, max(0, x - 1):x + 2].max())  # 1 px slack
        best_d = max(cands, key=cands.get)
        if cands[best_d] < 1.02 * cands[(0.0, 0.0)]:
            best_d = (0.0, 0.0)  # keep the grid's own answer unless the layout clearly disagrees
        return Registration((float(best_d[0]), float(best_d[1])), cands[best_d], cands[(0.0, 0.0)])
    y, x = np.unravel_index(int(np.argmax(resp)), resp.shape)
    return Registration(((x - pad) / scale, (y - pad) / scale), float(resp[y, x]), float(resp[pad, pad]))


def shifted(page_to_image: CoordinateMap, shift_px: tuple[float, float]) -> CoordinateMap:
    """The map with page content moved: new(p) = old(p + shift)."""
    d = np.asarray(shift_px, np.float64)
    if not d.any():
        return page_to_image
    return CoordinateMap.from_function(lambda p: page_to_image(p + d), page_to_image.dst_size,
                                       page_to_image.src_size, page_to_image.step)
