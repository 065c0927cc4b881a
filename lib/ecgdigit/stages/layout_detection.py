"""Find the page's layout where it is not the competition's exact look.

The grid fixes the page map up to whole major squares; on the competition's look the calibration
pulses settle that (`layout_registration`) and nothing else is looked for. Otherwise:
- the arrangement (`lead_layouts.LEAD_LAYOUTS`): the one whose baselines every row's trace lies on
  (a trace spends most of its time near 0 mV), at the whole-square vertical shift that puts most ink
  there; arrangements sharing their rows' places (3x4+3 and 6x2) are told apart by where lead names
  and column separators are printed;
- where the signal lies: every row's trace is one unbroken line that lasts the full 10 s, so its ink
  covers every column of the signal span and none of the margins beside it, but for the pulse's
  place before it (ECG-image-kit) or after it (GE-style). The whole-square horizontal shift whose span
  best fits the rows' inked columns puts the signal where the layout reads it, whatever the margins;
- the calibration pulse's side, and the gain from its height (1 mV: 5, 10 or 20 mm);
- the paper speed from the pulse's width (0.2 s: 5 mm at 25 mm/s, 10 mm at 50), on both kinds of page
  (a 50 mm/s page with its pulse at the start passes for the competition's look: its pulse's second
  half lies where the competition's pulse does). Without a pulse the speed is assumed 25 mm/s.

The result is expressed in the competition's frame (the map is shifted so the signal starts at
`layout.signal_x0`), with the PaperLayout stage 2 reads with; whether a row has a pulse is stage 2's
own per-row check.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from ..config import CALIB_PULSE_S, GAINS_MM_PER_MV, PAGE, PAPER_SPEEDS_MM_PER_S, PaperLayout
from ..lead_layouts import COMPETITION, LEAD_LAYOUTS
from ..geometry.coordinate_map import CoordinateMap
from .grid_suppression import grid_free_ink
from .ink import without_wide_ink
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
    pulse_rows: int  # rows with a calibration pulse at the registered place (the competition's)
    misfit_cols: float  # per row, columns the chosen span disagrees with (inked outside, blank inside)
    layout: PaperLayout = PAGE  # what stage 2 reads with: arrangement, pulse side, gain
    arrangement: str = COMPETITION  # its lead_layouts.LEAD_LAYOUTS name
    pulse_side: str = "none"  # where the calibration pulses were found: 'start', 'end' or 'none'
    pulse_height_mm: float | None = None  # the pulses' measured height, where the gain came from
    pulse_width_mm: float | None = None  # the pulses' measured width, where the paper speed came from
    # how well the arrangement's rows fit the page's traces (_vertical_fit; 1.0: not measured),
    # comparable between two geometries of one page
    rows_fit: float = 1.0

    def describe(self) -> str:
        speed = (f"{self.layout.mm_per_s:g} mm/s from the pulse" if self.pulse_width_mm is not None
                 else f"{self.layout.mm_per_s:g} mm/s assumed")
        if self.kind == "competition":
            return f"competition (pulse in {self.pulse_rows} rows), {speed}"
        pulse = {"start": "pulse at the start", "end": "pulse at the end"}.get(self.pulse_side, "no pulse")
        gain = (f"{self.layout.mm_per_mv:g} mm/mV from the pulse" if self.pulse_height_mm is not None
                else f"{self.layout.mm_per_mv:g} mm/mV assumed")
        return (f"signal span, {self.arrangement}, {pulse}, {gain}, {speed}, "
                f"shifted {self.shift_px[0]:+.0f},{self.shift_px[1]:+.0f} px")


def page_ink(page_to_image: CoordinateMap, upright: np.ndarray, layout: PaperLayout, scale: float,
             pad: int) -> np.ndarray:
    """The rectified page's trace ink at `scale`, any grid divided out, padded with `pad` px of no
    ink on every side so that shifted spans can be tested against the same columns."""
    rect = page_to_image.remap(upright, scale=scale)
    ink = without_wide_ink(grid_free_ink(rect, 2.0 * scale * 2, scale, layout), layout.px_per_mm * scale)
    return cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)


def _inked_columns(ink: np.ndarray, base_y: float, reach: float) -> np.ndarray:
    a, b = int(round(base_y - reach)), int(round(base_y + reach)) + 1
    band = ink[max(0, a):max(0, b)]
    return (band.max(axis=0) >= INKED) if band.size else np.zeros(ink.shape[1], bool)


def span_misfit(inked: np.ndarray, x0: float, x1: float, pulse_w: float, lo: int, hi: int,
                pulse_at_end: bool = False) -> int:
    """Columns in [lo, hi) that disagree with a signal spanning [x0, x1): blank inside, inked outside.
    The pulse's place before x0 (after x1 with pulse_at_end) counts neither way (a page may or may
    not draw one)."""
    cols = np.arange(lo, hi)
    inside = (cols >= x0) & (cols < x1)
    free = ((cols >= x1) & (cols < x1 + pulse_w)) if pulse_at_end else ((cols >= x0 - pulse_w) & (cols < x0))
    seg = inked[lo:hi]
    return int(np.count_nonzero(inside & ~seg) + np.count_nonzero(~inside & ~free & seg))


def detect_layout(page_to_image: CoordinateMap, upright: np.ndarray, layout: PaperLayout = PAGE,
                  scale: float = DETECT_SCALE) -> LayoutFound:
    """On a map already registered on the grid: keep it where the pulses are where the layout puts
    them; otherwise the registered arrangement whose baselines the rows' traces lie on, the
    whole-square shift that puts its signal span and baselines in place, the pulse's side and the
    gain its height gives. Either way the paper speed its width gives (else layout's: 25 mm/s)."""
    step = layout.grid_major_px * scale
    pad = int(np.ceil((MAX_SHIFT_SQUARES + 1) * step))
    ink = page_ink(page_to_image, upright, layout, scale, pad)
    unpadded = ink[pad:ink.shape[0] - pad, pad:ink.shape[1] - pad]
    pulses = sum(has_pulse(unpadded, r, scale, layout) for r in range(len(layout.baselines_y)))
    if pulses >= MIN_PULSE_ROWS:
        width_mm = pulse_width_mm(ink, (pad, pad), scale, layout, "start")
        lay = layout if width_mm is None else layout.at_speed(nearest_speed(width_mm))
        return LayoutFound("competition", (0.0, 0.0), pulses, 0.0, lay, pulse_side="start",
                           pulse_height_mm=None, pulse_width_mm=width_mm)

    fits = {name: _vertical_fit(ink, pad, scale, arr.page(layout)) for name, arr in LEAD_LAYOUTS.items()}
    group = _arrangements_by_rows(fits)
    found = _placed(ink, pad, scale, layout, group, fits, pulses)
    speed = nearest_speed(found.pulse_width_mm) if found.pulse_width_mm is not None else layout.mm_per_s
    if speed != layout.mm_per_s:
        # a faster page's pulse is wider (the span's other candidates then fit as well as the right
        # one): placed again with that pulse's room, on the side it was found; where no placement
        # within reach shows the pulses there (a map more than MAX_SHIFT_SQUARES off), the first stands
        again = _placed(ink, pad, scale, layout.at_speed(speed), group, fits, pulses, found.pulse_side)
        found = again if again.pulse_side == found.pulse_side else \
            dataclasses.replace(found, layout=found.layout.at_speed(speed))
    return found


def _placed(ink: np.ndarray, pad: int, scale: float, layout: PaperLayout, group: list[str],
            fits: dict[str, tuple[int, int, float]], pulses: int, side: str | None = None) -> LayoutFound:
    """The signal span placed for the arrangements in `group` at the layout's paper speed: the
    whole-square shift, the arrangement its printed marks show, the pulse's side, gain and width
    (side: the pulse's side when known)."""
    step = layout.grid_major_px * scale
    lay = LEAD_LAYOUTS[group[0]].page(layout)
    ky_raw, ky, _ = fits[group[0]]
    end, kx, misfit = _horizontal_fit(ink, pad, scale, lay, ky_raw, ky, side)
    shift = (float(kx * layout.grid_major_px), float(ky * layout.grid_major_px))
    offset = (pad + kx * step, pad + ky * step)  # the found frame's origin in `ink`
    name = _by_printed_marks(group, ink, offset, scale, layout)
    lay = LEAD_LAYOUTS[name].page(layout)
    side, height_mm = pulse_side_and_height(ink, offset, scale, lay, prefer_end=end)
    if side != "none":
        lay = dataclasses.replace(lay, pulse=side)
    if height_mm is not None:
        lay = dataclasses.replace(lay, mm_per_mv=nearest_gain(height_mm / lay.calib_mv))
    width_mm = pulse_width_mm(ink, offset, scale, lay, side) if side != "none" else None
    return LayoutFound("signal span", shift, pulses, misfit / scale, lay, name, side, height_mm, width_mm,
                       fits[name][2])


def _horizontal_fit(ink: np.ndarray, pad: int, scale: float, lay: PaperLayout, ky_raw: int,
                    ky: int, side: str | None = None) -> tuple[bool, int, float]:
    """(pulse after the signal?, whole-square shift, misfit per row) that puts the rows' signal span
    on their inked columns: every candidate judged on the same columns, the pulse's place free before
    the signal (or none: ECG-image-kit) or after it (GE-style); side 'start' or 'end': the pulse's
    side is known, only its placements are tried, those showing its pulses first."""
    step = lay.grid_major_px * scale
    ks = np.arange(-MAX_SHIFT_SQUARES, MAX_SHIFT_SQUARES + 1)
    bases = [pad + b * scale for b in lay.baselines_y]
    x0, x1 = pad + lay.signal_x0 * scale, pad + lay.signal_x1 * scale
    reach = ROW_REACH_MV * lay.px_per_mv * scale
    inked = [_inked_columns(ink, b + ky_raw * step, reach) for b in bases]
    pulse_w = (lay.signal_x0 - lay.calib_x0) * scale
    lo = max(0, int(x0 - (MAX_SHIFT_SQUARES + 1) * step))
    hi = min(ink.shape[1], int(np.ceil(x1 + (MAX_SHIFT_SQUARES + 1) * step)))
    ends = (False, True) if side is None else (side == "end",)
    misfit = {(end, int(k)): sum(span_misfit(c, x0 + k * step, x1 + k * step, pulse_w, lo, hi, end) for c in inked) / len(bases)
              for end in ends for k in ks}
    end = ends[0]
    if side is not None:
        # the pulses' place pins the span: a pulse at its true width (two squares at 50 mm/s) shows its
        # top over the middle of where a placement puts it only there; of those, the best fit
        rows_with = {int(k): len(pulse_heights(ink, (pad + k * step, pad + ky * step), scale, lay, side)) for k in ks}
        kx = min(ks, key=lambda k: (-rows_with[int(k)], misfit[(end, int(k))], abs(k)))
        return end, int(kx), misfit[(end, int(kx))]
    kx = min(ks, key=lambda k: (misfit[(end, int(k))], abs(k)))
    if misfit[(end, 0)] - misfit[(end, kx)] < MIN_GAIN * step:
        kx = 0  # the grid's own answer unless the span clearly disagrees
    # a pulse after the signal leaves the same inked span as one before it a square to the right:
    # among placements that fit about as well, one whose pulses are where it puts them wins
    tied = [e_k for e_k in misfit if misfit[e_k] - misfit[(end, kx)] < MIN_GAIN * step]
    rows_with = {e_k: len(pulse_heights(ink, (pad + e_k[1] * step, pad + ky * step), scale, lay, "end" if e_k[0] else "start"))
                 for e_k in tied}
    best = max(rows_with, key=lambda e_k: (rows_with[e_k], -misfit[e_k], not e_k[0]))
    if rows_with[best] >= MIN_PULSE_ROWS and rows_with[best] > rows_with.get((end, kx), 0):
        end, kx = best
    return end, int(kx), misfit[(end, int(kx))]


COVER_MV = 0.5  # a row's trace is within this of its baseline in most columns
BETWEEN_MV = 0.25  # ... and seldom this near the midline between two rows
MIN_FIT = 0.5  # an arrangement's rows fit when (least share of columns near a baseline) - (mean share near a midline) reaches this
MIN_FIT_GAIN = 0.15  # another arrangement must beat the competition's fit by this much


def _vertical_fit(ink: np.ndarray, pad: int, scale: float, lay: PaperLayout) -> tuple[int, int, float]:
    """For one arrangement: the whole-square vertical shift that puts most of the rows' ink within a
    quarter mV of its baselines (as found, and after preferring no shift unless clearly better), and
    how well its rows fit the page: the least share of signal columns any of its rows has trace ink
    near its baseline in, less the mean share with ink near the midlines between its rows."""
    step = lay.grid_major_px * scale
    ks = np.arange(-MAX_SHIFT_SQUARES, MAX_SHIFT_SQUARES + 1)
    bases = [pad + b * scale for b in lay.baselines_y]
    x0, x1 = pad + lay.signal_x0 * scale, pad + lay.signal_x1 * scale
    near = BASELINE_REACH_MV * lay.px_per_mv * scale
    rows_ink = ink[:, int(x0):int(x1)].sum(axis=1)
    cum = np.concatenate([[0.0], np.cumsum(rows_ink)])

    def near_baselines(dy: float) -> float:
        return sum(cum[min(len(cum) - 1, max(0, int(round(b + dy + near)) + 1))]
                   - cum[min(len(cum) - 1, max(0, int(round(b + dy - near))))] for b in bases)

    v_score = {int(k): near_baselines(k * step) for k in ks}
    ky_raw = max(v_score, key=lambda k: (v_score[k], -abs(k)))
    ky = 0 if ky_raw != 0 and v_score[ky_raw] < 1.05 * v_score[0] else ky_raw
    # the signal span may sit a square or two off yet: its middle columns are inked whatever the shift
    m0, m1 = int(x0 + (MAX_SHIFT_SQUARES + 1) * step), int(x1 - (MAX_SHIFT_SQUARES + 1) * step)
    px_mv = lay.px_per_mv * scale

    def share(y: float, reach_mv: float) -> float:
        return float(_inked_columns(ink, y, reach_mv * px_mv)[m0:m1].mean())

    on_rows = min(share(b + ky_raw * step, COVER_MV) for b in bases)
    # a page packed with more rows than the arrangement has traces between its baselines too
    between = [0.5 * (a + b) + ky_raw * step for a, b in zip(bases[:-1], bases[1:])]
    off_rows = float(np.mean([share(y, BETWEEN_MV) for y in between])) if between else 0.0
    return ky_raw, ky, on_rows - off_rows


def _arrangements_by_rows(fits: dict[str, tuple[int, int, float]]) -> list[str]:
    """The arrangements whose rows the page's traces lie on (the best cover; those sharing its
    baselines tie), the competition's unless another clearly fits better."""
    best = max(fits, key=lambda n: fits[n][2])
    if best == COMPETITION or fits[best][2] < MIN_FIT or fits[best][2] < fits[COMPETITION][2] + MIN_FIT_GAIN:
        best = COMPETITION
    return [n for n in LEAD_LAYOUTS if LEAD_LAYOUTS[n].baselines_y == LEAD_LAYOUTS[best].baselines_y
            and fits[n][:2] == fits[best][:2]]


def _zone_ink(ink: np.ndarray, zone, offset: tuple[float, float], scale: float) -> float:
    x0, y0, x1, y1 = zone
    a, b = int(offset[1] + y0 * scale), int(np.ceil(offset[1] + y1 * scale))
    c, d = int(offset[0] + x0 * scale), int(np.ceil(offset[0] + x1 * scale))
    patch = ink[max(0, a):max(0, b), max(0, c):max(0, d)]
    return float(patch.mean()) if patch.size else 0.0


def _marks(lay: PaperLayout) -> set[tuple[float, ...]]:
    """Where an arrangement prints lead names and column separators (page px boxes, rounded)."""
    zones = [lay.label_zone(r, c) for r in range(len(lay.rows)) for c in range(len(lay.rows[r]))]
    zones += [z for r in range(len(lay.rows)) for z in lay.separator_zones(r)]
    return {tuple(round(v, 1) for v in z) for z in zones}


def _by_printed_marks(group: list[str], ink: np.ndarray, offset: tuple[float, float], scale: float,
                      layout: PaperLayout) -> str:
    """Of arrangements sharing their rows' places, the one whose lead names and separators are
    printed: its own marks' ink minus the ink where only the others print theirs."""
    if len(group) == 1:
        return group[0]
    marks = {n: _marks(LEAD_LAYOUTS[n].page(layout)) for n in group}

    def evidence(n: str) -> float:
        others = set().union(*(marks[m] for m in group if m != n))
        own, foreign = marks[n] - others, others - marks[n]
        mean = (lambda zs: float(np.mean([_zone_ink(ink, z, offset, scale) for z in zs])) if zs else 0.0)
        return mean(own) - mean(foreign)

    return max(group, key=evidence)


PULSE_SEARCH_MM = (2.5, 25.0)  # a pulse's top is looked for this far above its row's baseline


def pulse_heights(ink: np.ndarray, offset: tuple[float, float], scale: float, lay: PaperLayout,
                  side: str) -> list[float]:
    """Height (page px) of each row's calibration pulse on `side` ('start' or 'end') where one is
    found: its top is a line of ink over the pulse's middle columns, between the row's baseline and
    the row above's. offset: where the layout's frame origin lies in `ink`."""
    return [lay.baselines_y[r] - (y - offset[1]) / scale for r, y in _pulse_tops(ink, offset, scale, lay, side)]


def _pulse_tops(ink: np.ndarray, offset: tuple[float, float], scale: float, lay: PaperLayout,
                side: str) -> list[tuple[int, int]]:
    """(row, y in `ink`) of the top line of each row's pulse found on `side` (see pulse_heights)."""
    c0, c1 = _pulse_middle(offset, scale, lay, side)
    span = dataclasses.replace(lay, pulse=side).pulse_span_x()
    w = span[1] - span[0]
    # beyond the far edge of the widest pulse (the fastest speed's), away from the signal: paper
    # where the top line is a pulse's, ink where it is a grid line the grid suppression left (a B&W
    # print's solid stretches)
    widest = CALIB_PULSE_S * max(PAPER_SPEEDS_MM_PER_S) * lay.px_per_mm
    far = span[1] - widest if side == "start" else span[0] + widest
    out = (far - RUN_ON_W * w, far - RUN_ON_GAP * w) if side == "start" else (far + RUN_ON_GAP * w, far + RUN_ON_W * w)
    o0, o1 = int(offset[0] + out[0] * scale), int(np.ceil(offset[0] + out[1] * scale))
    tops = []
    for r, base in enumerate(lay.baselines_y):
        top = base - PULSE_SEARCH_MM[1] * lay.px_per_mm
        if r > 0:
            top = max(top, lay.baselines_y[r - 1] + PULSE_SEARCH_MM[0] * lay.px_per_mm)
        y0, y1 = int(offset[1] + top * scale), int(offset[1] + (base - PULSE_SEARCH_MM[0] * lay.px_per_mm) * scale)
        patch = ink[max(0, y0):max(0, y1), max(0, c0):max(0, c1)]
        if patch.size == 0:
            continue
        # the top line's own rows (it is a few px thick): the most inked row, inked in nearly every column
        inked = cv2.dilate((patch >= INKED).astype(np.uint8), np.ones((3, 1), np.uint8))  # a px of tilt
        along = inked.mean(axis=1)
        beyond = ink[max(0, y0):max(0, y1), max(0, o0):max(0, o1)]
        if beyond.shape[0] == patch.shape[0] and beyond.shape[1] > 0:
            runs_on = cv2.dilate((beyond >= INKED).astype(np.uint8), np.ones((3, 1), np.uint8)).mean(axis=1)
            along = np.where(runs_on > RUN_ON_MAX, 0.0, along)
        y = int(np.argmax(along))
        if along[y] >= PULSE_COVER:
            tops.append((r, max(0, y0) + y))
    return tops


def _pulse_middle(offset: tuple[float, float], scale: float, lay: PaperLayout, side: str) -> tuple[int, int]:
    """Columns of `ink` over the middle half of the pulse's place on `side`."""
    span = dataclasses.replace(lay, pulse=side).pulse_span_x()
    w = span[1] - span[0]
    return int(offset[0] + (span[0] + 0.25 * w) * scale), int(np.ceil(offset[0] + (span[1] - 0.25 * w) * scale))


PULSE_GAP_PX = 2.0  # page px of a pulse's top line that may be missed (noise, a grid line divided out) without ending it


def pulse_width_mm(ink: np.ndarray, offset: tuple[float, float], scale: float, lay: PaperLayout,
                   side: str) -> float | None:
    """Median width (mm) of the rows' calibration pulses on `side`, None where fewer than
    MIN_PULSE_ROWS rows show one: the run of ink along each pulse's top line, followed outwards from
    the middle of where the layout puts it (its place at the layout's speed; any supported speed's
    pulse covers that middle) as far as a 0.2 s pulse at the fastest speed could reach."""
    tops = _pulse_tops(ink, offset, scale, lay, side)
    if len(tops) < MIN_PULSE_ROWS:
        return None
    c0, c1 = _pulse_middle(offset, scale, lay, side)
    reach = int(np.ceil(1.5 * CALIB_PULSE_S * max(PAPER_SPEEDS_MM_PER_S) * lay.px_per_mm * scale))
    gap = max(1, int(round(PULSE_GAP_PX * scale)))
    widths = []
    for _r, y in tops:
        line = ink[max(0, y - 1):y + 2].max(axis=0) >= INKED  # a px of tilt, as _pulse_tops allows
        mid = (c0 + c1) // 2
        if not line[mid]:
            continue
        ends = []
        for step in (-1, 1):
            x = last = mid
            while abs(x - mid) < reach and 0 <= x + step < len(line) and abs(x - last) <= gap:
                x += step
                if line[x]:
                    last = x
            ends.append(last)
        widths.append((ends[1] - ends[0] + 1) / scale / lay.px_per_mm)
    return float(np.median(widths)) if len(widths) >= MIN_PULSE_ROWS else None


def pulse_side_and_height(ink: np.ndarray, offset: tuple[float, float], scale: float, lay: PaperLayout,
                          prefer_end: bool = False) -> tuple[str, float | None]:
    """Where the rows' calibration pulses are ('start', 'end' or 'none') and their median height in
    mm. A side needs MIN_PULSE_ROWS rows with one; ties go to prefer_end's side."""
    found = {side: pulse_heights(ink, offset, scale, lay, side)
             for side in (("end", "start") if prefer_end else ("start", "end"))}
    side = max(found, key=lambda k: len(found[k]))
    if len(found[side]) < MIN_PULSE_ROWS:
        return "none", None
    return side, float(np.median(found[side])) / lay.px_per_mm


PULSE_COVER = 0.9  # share of the pulse top's middle columns inked on one px row
RUN_ON_GAP, RUN_ON_W = 0.25, 1.25  # where a top line must not run on: this far past the widest pulse's far edge (pulse widths)
RUN_ON_MAX = 0.3  # ... more inked than this: a grid line, not the pulse's top


def nearest_speed(pulse_width_mm: float) -> float:
    """The paper speed (config.PAPER_SPEEDS_MM_PER_S) whose 0.2 s pulse is nearest a measured width,
    on a log scale (25 and 50 mm/s part at 7.1 mm)."""
    return min(PAPER_SPEEDS_MM_PER_S, key=lambda v: abs(np.log(pulse_width_mm / (CALIB_PULSE_S * v))))


def nearest_gain(mm_per_mv: float) -> float:
    """The printer gain (config.GAINS_MM_PER_MV) nearest a measured one, on a log scale."""
    return min(GAINS_MM_PER_MV, key=lambda g: abs(np.log(mm_per_mv / g)))
