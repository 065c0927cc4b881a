"""Find where the rows' signal lies on a page that is not the competition's exact look.

The grid fixes the page map up to whole major squares; on the competition's look the calibration
pulses settle that (`layout_registration`). A page drawn without the pulse has no such mark, and
its signal starts where the pulse would have been. But every row's trace is one unbroken line that
lasts the layout's full duration: its ink covers every column of the signal span and none of the
margins beside it. The whole-square horizontal shift whose span best fits the rows' inked columns
puts the signal where the layout reads it, whatever the page's margins; the vertical shift is the
one that puts the rows' traces on their baselines (a trace spends most of its time near 0 mV).

The result is expressed in the competition's frame (the map is shifted so the signal starts at
`layout.signal_x0`), so stage 2 reads every page the same way; whether a row has a pulse is
stage 2's own per-row check.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..config import PAGE, PaperLayout
from ..geometry.coordinate_map import CoordinateMap
from .grid_suppression import grid_free_ink
from .trace_reading import has_pulse

DETECT_SCALE = 0.5
MAX_SHIFT_SQUARES = 2
ROW_REACH_MV = 1.0  # a row's trace is looked for this far above and below its baseline
BASELINE_REACH_MV = 0.25  # "near the baseline" for the vertical fit
INKED = 0.5  # a column whose ink reaches this anywhere in the row's band holds trace
MIN_PULSE_ROWS = 2  # this many rows with a pulse at the registered place: the competition's look
MIN_GAIN = 0.25  # a shift must explain this share of a square per row better than no shift


@dataclass
class LayoutFound:
    kind: str  # 'competition' (pulses where the layout puts them) or 'signal span' (found from the trace)
    shift_px: tuple[float, float]  # page px the map was moved by (whole major squares)
    pulse_rows: int  # rows with a calibration pulse at the registered place
    misfit_cols: float  # per row, columns the chosen span disagrees with (inked outside, blank inside)

    def describe(self) -> str:
        if self.kind == "competition":
            return f"competition (pulse in {self.pulse_rows} rows)"
        return f"signal span, no pulse, shifted {self.shift_px[0]:+.0f},{self.shift_px[1]:+.0f} px"


def page_ink(page_to_image: CoordinateMap, upright: np.ndarray, layout: PaperLayout, scale: float,
             pad: int) -> np.ndarray:
    """The rectified page's trace ink at `scale`, any grid divided out, padded with `pad` px of no
    ink on every side so that shifted spans can be tested against the same columns."""
    rect = page_to_image.remap(upright, scale=scale)
    ink = grid_free_ink(rect, 2.0 * scale * 2, scale, layout)
    return cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)


def _inked_columns(ink: np.ndarray, base_y: float, reach: float) -> np.ndarray:
    a, b = int(round(base_y - reach)), int(round(base_y + reach)) + 1
    band = ink[max(0, a):max(0, b)]
    return (band.max(axis=0) >= INKED) if band.size else np.zeros(ink.shape[1], bool)


def span_misfit(inked: np.ndarray, x0: float, x1: float, pulse_w: float, lo: int, hi: int) -> int:
    """Columns in [lo, hi) that disagree with a signal spanning [x0, x1): blank inside, inked outside.
    The pulse's place before x0 counts neither way (a page may or may not draw one)."""
    cols = np.arange(lo, hi)
    inside = (cols >= x0) & (cols < x1)
    free = (cols >= x0 - pulse_w) & (cols < x0)
    seg = inked[lo:hi]
    return int(np.count_nonzero(inside & ~seg) + np.count_nonzero(~inside & ~free & seg))


def detect_layout(page_to_image: CoordinateMap, upright: np.ndarray, layout: PaperLayout = PAGE,
                  scale: float = DETECT_SCALE) -> LayoutFound:
    """On a map already registered on the grid: keep it where the pulses are where the layout puts
    them; otherwise the whole-square shift that puts the rows' signal span and baselines in place."""
    step = layout.grid_major_px * scale
    pad = int(np.ceil((MAX_SHIFT_SQUARES + 1) * step))
    ink = page_ink(page_to_image, upright, layout, scale, pad)
    n_rows = len(layout.baselines_y)
    unpadded = ink[pad:ink.shape[0] - pad, pad:ink.shape[1] - pad]
    pulses = sum(has_pulse(unpadded, r, scale, layout) for r in range(n_rows))
    if pulses >= MIN_PULSE_ROWS:
        return LayoutFound("competition", (0.0, 0.0), pulses, 0.0)

    ks = np.arange(-MAX_SHIFT_SQUARES, MAX_SHIFT_SQUARES + 1)
    bases = [pad + b * scale for b in layout.baselines_y]
    x0, x1 = pad + layout.signal_x0 * scale, pad + layout.signal_x1 * scale
    # vertical: the shift that puts most of the rows' ink within a quarter mV of their baselines
    near = BASELINE_REACH_MV * layout.px_per_mv * scale
    rows_ink = ink[:, int(x0):int(x1)].sum(axis=1)
    cum = np.concatenate([[0.0], np.cumsum(rows_ink)])

    def near_baselines(dy: float) -> float:
        return sum(cum[min(len(cum) - 1, max(0, int(round(b + dy + near)) + 1))]
                   - cum[min(len(cum) - 1, max(0, int(round(b + dy - near))))] for b in bases)

    v_score = {int(k): near_baselines(k * step) for k in ks}
    ky = max(v_score, key=lambda k: (v_score[k], -abs(k)))
    # horizontal: the span fit, every candidate judged on the same columns
    reach = ROW_REACH_MV * layout.px_per_mv * scale
    inked = [_inked_columns(ink, b + ky * step, reach) for b in bases]
    pulse_w = (layout.signal_x0 - layout.calib_x0) * scale
    lo = max(0, int(x0 - (MAX_SHIFT_SQUARES + 1) * step))
    hi = min(ink.shape[1], int(np.ceil(x1 + (MAX_SHIFT_SQUARES + 1) * step)))
    misfit = {int(k): sum(span_misfit(c, x0 + k * step, x1 + k * step, pulse_w, lo, hi) for c in inked) / n_rows
              for k in ks}
    kx = min(misfit, key=lambda k: (misfit[k], abs(k)))
    if misfit[0] - misfit[kx] < MIN_GAIN * step:
        kx = 0  # the grid's own answer unless the span clearly disagrees
    if ky != 0 and v_score[ky] < 1.05 * v_score[0]:
        ky = 0
    shift = (float(kx * layout.grid_major_px), float(ky * layout.grid_major_px))
    return LayoutFound("signal span", shift, pulses, misfit[kx] / scale)
