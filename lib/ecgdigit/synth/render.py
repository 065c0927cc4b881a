"""The clean page (image type 0001), drawn by ECG-image-kit's paper rules from config.PaperLayout.

Coordinates are 200 dpi page pixels with pixel centres at integers (the CoordinateMap convention).
Everything the later stages must learn is returned exactly as drawn: each printed row's trace
polyline at full sample resolution, and the box of every lead name.

Drawing choices that mirror ECG-image-kit (src/ecg_image_generator/ecg_plot.py):
- short lead k of column c is drawn at t = 2.5 c + k / fs, its int(2.5 fs) samples starting at
  sample c * int(2.5 fs) of the record; the rhythm strip is lead II sample k at t = k / fs;
- the calibration pulse is ECG-image-kit's 0, 0, 1 ... 1, 0, 0 pulse sampled at fs over 0.2 s + 4
  samples from calib_x0, 1.5 x the trace width; the column tick is centred on the baseline, 3 x the
  trace width; lead names sit with their text baseline label_offset_mv below the row baseline;
- every stroke (trace, pulse, tick) is drawn at its true real width with round joins and caps by
  stroke.py: cv2's anti-aliased lines only come in real widths of about 1.38, 3.38, 5.38 ... px
  (measured, thickness t: 1.38 for t=1, 2*floor((t+1)/2) + 1.38 for t > 1), so the 0.75 pt = 2.08 px
  trace came out 3.4 px wide and no t gives the 3.1 px pulse or the 6.2 px tick;
- '25mm/s' and '10mm/mV' at (2 s, 0.5 mV) and (4 s, 0.5 mV) from the bottom-left corner (paper
  positions: config.LEGEND_X_MM at any speed); optional header lines from the top-left corner; the
  axes frame is a 0.8 pt black line on the page edge;
- at 50 mm/s (PaperLayout.mm_per_s) the same paper shows the record's first 5 s: each of 4 columns
  1.25 s, a rhythm strip 5 s, and the 0.2 s pulse is 10 mm wide.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..config import CALIB_PULSE_S, DURATION_S, LEGEND_X_MM, PAGE, PAPER_SPEEDS_MM_PER_S, PaperLayout
from ..lead_layouts import LEAD_LAYOUTS
from .signals import simulate_record
from .stroke import stroke_band
from .truth import EcgRecord, RenderedPage

logger = logging.getLogger(__name__)

_FRAME_PT = 0.8  # matplotlib's default axes-frame (spine) width
_CALIB_WIDTH_FACTOR = 1.5
_TICK_WIDTH_FACTOR = 3.0
CONNECTED_COLUMNS_RATE = 0.1
# ECG-image-kit's page without the calibration pulse starts each row's signal where the pulse would
# stand (realdev renders_no_pulse); render with this layout and RenderStyle(show_calibration=False)
NO_PULSE: PaperLayout = dataclasses.replace(PAGE, signal_x0=PAGE.calib_x0)  # pages drawn with joined columns, so readers stay robust to them


def arranged_layout(arrangement: str, pulse: str = "start", mm_per_mv: float = 10.0,
                    mm_per_s: float = 25.0) -> PaperLayout:
    """The page of a registered lead arrangement (lead_layouts.LEAD_LAYOUTS) with its calibration pulse
    at the rows' 'start' (ECG-image-kit's place), 'end' (GE-style) or 'none', at a gain and a paper
    speed. Without a pulse before it the signal starts where the 25 mm/s pulse would be, as on
    ECG-image-kit's no-pulse pages; at 50 mm/s a start pulse reaches a square further left."""
    layout = LEAD_LAYOUTS[arrangement].page(PAGE, pulse=pulse, mm_per_mv=mm_per_mv).at_speed(mm_per_s)
    return layout if pulse == "start" else replace(layout, signal_x0=PAGE.calib_x0)


@dataclass(frozen=True)
class RenderStyle:
    """Per-page drawing choices; `None` fields are drawn at random by `draw_style`."""

    trace_grey: int = 0  # 0..layout.trace_grey_max
    # ECG-image-kit plots every lead on its own (one ax.plot per lead): nothing joins a column's last
    # sample to the next lead's first; True draws one polyline per row (some other printers do)
    connect_columns: bool = False
    show_calibration: bool = True
    show_ticks: bool = True
    show_labels: bool = True
    show_header: bool = True
    show_frame: bool = True
    snap_grid: bool = False  # matplotlib snaps grid lines to pixel centres; exact by default
    # matplotlib's drawing order, vertical lines (major, minor) before horizontal ones (major, minor):
    # the light horizontal minor lines then cross the red vertical major lines, which look dashed on
    # ECG-image-kit's pages (realdev renders_kaggle_look); False: all minor lines, then all major
    axis_grid_order: bool = False
    # every column shows the record's first 2.5 s (some printers; ECG-image-kit in one of its runs)
    simultaneous_columns: bool = False


# Share of pages drawn as ECG-image-kit's matplotlib draws them (grid snapped to pixel centres, in
# axis order; realdev's renders all are); the rest keep the exact grid so readers stay robust to both.
MATPLOTLIB_GRID_RATE = 0.6


def matplotlib_look(style: RenderStyle) -> RenderStyle:
    """`style` as ECG-image-kit's matplotlib draws its grid: snapped to pixel centres, in axis order (its
    strokes' half-pixel offset is every page's: PaperLayout.pen_offset_px)."""
    return replace(style, snap_grid=True, axis_grid_order=True)


def draw_style(rng: np.random.Generator, layout: PaperLayout = PAGE) -> RenderStyle:
    style = RenderStyle(trace_grey=int(rng.integers(0, layout.trace_grey_max + 1)),
                        show_header=bool(rng.random() < 0.8),
                        connect_columns=bool(rng.random() < CONNECTED_COLUMNS_RATE))
    return matplotlib_look(style) if rng.random() < MATPLOTLIB_GRID_RATE else style


# ---------------------------------------------------------------- grid (cached per layout)
def _coverage(centres: np.ndarray, width: float, n: int) -> np.ndarray:
    """Fraction of each of n pixels (centres 0..n-1) covered by lines of `width` at `centres`."""
    px = np.arange(n, dtype=np.float64)[:, None]
    c = np.asarray(centres, dtype=np.float64)[None, :]
    ov = np.minimum(px + 0.5, c + width / 2) - np.maximum(px - 0.5, c - width / 2)
    return np.clip(ov, 0, 1).sum(axis=1).clip(0, 1)


def _blend_lines(img: np.ndarray, cov: np.ndarray, rgb, axis: int) -> None:
    """Paint full-length lines whose per-pixel coverage along `axis` (0: rows, 1: columns) is cov."""
    a = cov[:, None, None] if axis == 0 else cov[None, :, None]
    col = np.asarray(rgb, dtype=np.float32)
    img *= 1 - a
    img += a * col


@functools.lru_cache(maxsize=8)
def grid_image(layout: PaperLayout = PAGE, snap: bool = False, axis_order: bool = False) -> np.ndarray:
    """The empty gridded page (read-only RGB uint8), built once per (layout, snap, axis_order)."""
    h, w = layout.shape
    img = np.full((h, w, 3), 255.0, dtype=np.float32)
    width = layout.grid_line_pt * layout.px_per_pt
    xs_major, ys_major = (np.array(v) for v in layout.grid_lines(major=True))
    xs_minor, ys_minor = (np.array(v) for v in layout.grid_lines(major=False))

    def not_on(minor, major):  # matplotlib drops minor ticks that coincide with major ones
        return minor[np.min(np.abs(minor[:, None] - major[None, :]), axis=1) > 0.01]

    xs_minor, ys_minor = not_on(xs_minor, xs_major), not_on(ys_minor, ys_major)
    if snap:
        xs_major, ys_major, xs_minor, ys_minor = (np.round(v) for v in (xs_major, ys_major, xs_minor, ys_minor))
    if axis_order:
        for lines, n, axis in ((xs_major, w, 1), (xs_minor, w, 1), (ys_major, h, 0), (ys_minor, h, 0)):
            major = lines is xs_major or lines is ys_major
            _blend_lines(img, _coverage(lines, width, n), layout.grid_major_rgb if major else layout.grid_minor_rgb, axis)
    else:
        for xs, ys, rgb in ((xs_minor, ys_minor, layout.grid_minor_rgb), (xs_major, ys_major, layout.grid_major_rgb)):
            _blend_lines(img, _coverage(xs, width, w), rgb, axis=1)
            _blend_lines(img, _coverage(ys, width, h), rgb, axis=0)
    out = np.round(img).astype(np.uint8)
    out.setflags(write=False)
    return out


def _draw_frame(img: np.ndarray, layout: PaperLayout) -> None:
    """matplotlib's axes frame: a black line centred on the page edge, half of it visible."""
    width = _FRAME_PT * layout.px_per_pt
    h, w = img.shape[:2]
    for axis, n in ((1, w), (0, h)):
        cov = _coverage(np.array([-0.5, n - 0.5]), width, n)
        k = int(np.ceil(width))
        for sl in (slice(0, k), slice(n - k, n)):
            a = cov[sl]
            if axis == 1:
                img[:, sl] = np.round(img[:, sl] * (1 - a[None, :, None])).astype(np.uint8)
            else:
                img[sl] = np.round(img[sl] * (1 - a[:, None, None])).astype(np.uint8)


# ---------------------------------------------------------------- text
@functools.lru_cache(maxsize=8)
def _font(size_px: float) -> ImageFont.FreeTypeFont:
    import matplotlib  # here: only for the path of the font it ships; importing it costs ~0.3 s

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    if not os.path.exists(path):
        raise FileNotFoundError(f"DejaVu Sans not found at {path} (it ships with matplotlib)")
    return ImageFont.truetype(path, size=size_px)


def _draw_text(img: np.ndarray, text: str, x: float, y: float, font: ImageFont.FreeTypeFont,
               grey: int = 0) -> tuple[float, float, float, float] | None:
    """Draw `text` with its left end and baseline at (x, y); return the box of its ink (page px)."""
    ox, oy = int(round(x)), int(round(y))
    bx0, by0, bx1, by1 = font.getbbox(text, anchor="ls")
    if bx1 <= bx0 or by1 <= by0:
        return None
    mask = Image.new("L", (bx1 - bx0, by1 - by0), 0)
    ImageDraw.Draw(mask).text((-bx0, -by0), text, fill=255, font=font, anchor="ls")
    a = np.asarray(mask, dtype=np.float32) / 255.0
    x0, y0 = ox + bx0, oy + by0
    h, w = img.shape[:2]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + a.shape[1], w), min(y0 + a.shape[0], h)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    a = a[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0, None]
    roi = img[cy0:cy1, cx0:cx1].astype(np.float32)
    img[cy0:cy1, cx0:cx1] = np.round(roi * (1 - a) + grey * a).astype(np.uint8)
    return float(x0), float(y0), float(x0 + mask.width), float(y0 + mask.height)


def _header_lines(rng: np.random.Generator, record: EcgRecord) -> list[list[str]]:
    """Patient-like printed header: lines of columns, as ECG-image-kit's text templates."""
    ii = record.lead("II")
    hr = _estimate_rate(ii, record.fs)
    year, month, day = int(rng.integers(1990, 2025)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    hh, mm, ss = int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    sex = "M" if rng.random() < 0.5 else "F"
    return [
        [f"ID: {int(rng.integers(10**7, 10**8)):08d}", f"{day:02d}-{month:02d}-{year} {hh:02d}:{mm:02d}:{ss:02d}"],
        [f"Age: {int(rng.integers(18, 95))} {sex}", f"Vent. rate: {hr} BPM", f"PR int: {int(rng.integers(120, 210))} ms"],
        [f"QRS dur: {int(rng.integers(80, 130))} ms", f"QT/QTc: {int(rng.integers(340, 440))}/{int(rng.integers(380, 470))} ms",
         f"P-R-T axes: {int(rng.integers(-30, 90))} {int(rng.integers(-30, 100))} {int(rng.integers(-30, 90))}"],
    ]


def _estimate_rate(x: np.ndarray, fs: int) -> int:
    """Rough heart rate for the printed header (peaks of the absolute slope)."""
    d = np.abs(np.diff(x.astype(np.float64)))
    thr = 0.5 * float(d.max()) if d.size else 0.0
    above = np.flatnonzero(d > thr)
    if above.size < 2:
        return 0
    starts = above[np.r_[True, np.diff(above) > int(0.25 * fs)]]
    if starts.size < 2:
        return 0
    return int(round(60.0 * fs / float(np.median(np.diff(starts)))))


# ---------------------------------------------------------------- traces
def row_polylines(record: EcgRecord, layout: PaperLayout = PAGE, simultaneous: bool = False) -> list[list[np.ndarray]]:
    """Per printed row, its segments (one per column) as (k, 2) float32 page-px polylines.

    The rows are layout.rows (lead_layouts.LEAD_LAYOUTS: any registered arrangement); a row of n leads
    shows n consecutive S/n s windows of the S = layout.shown_s seconds the page shows (10 at 25 mm/s,
    5 at 50). simultaneous: every column shows the record's first S/n s.
    """
    fs = record.fs
    n_full = int(round(DURATION_S * fs))
    if record.n_samples < n_full:
        raise ValueError(f"record {record.record_id!r}: {record.n_samples} samples, expected {n_full} "
                         f"(10 s at {fs} Hz)")
    n_shown = int(round(layout.shown_s * fs))
    rows: list[list[np.ndarray]] = []
    for r, leads in enumerate(layout.rows):
        segs = []
        if len(leads) == 1:  # rhythm strip
            t = np.arange(n_shown) / fs
            v = record.lead(leads[0])[:n_shown]
            segs.append(_to_page(layout, r, t, v))
        else:
            seg_s = layout.shown_s / len(leads)  # 2.5 s on the competition's 4 columns
            n_seg = int(seg_s * fs)
            for c, lead in enumerate(leads):
                t = c * seg_s + np.arange(n_seg) / fs
                a = 0 if simultaneous else c * n_seg
                v = record.lead(lead)[a:a + n_seg]
                segs.append(_to_page(layout, r, t, v))
        rows.append(segs)
    return rows


def _to_page(layout: PaperLayout, row: int, t: np.ndarray, mv: np.ndarray) -> np.ndarray:
    x, y = layout.pen_xy(row, t.astype(np.float64), mv.astype(np.float64))
    return np.stack([x, y], axis=1).astype(np.float32)


def _paint(img: np.ndarray, pts: np.ndarray, width_px: float, grey: int) -> None:
    """Blend one stroke (true width, round joins) into the RGB uint8 image in grey, in place."""
    res = stroke_band(pts, width_px, img.shape[:2])
    if res is None:
        return
    i0, j0, a = res
    ii, jj = np.nonzero(a)  # the stroke fills a few % of its bounding band: blend only those pixels
    cov = a[ii, jj][:, None]
    ii, jj = ii + i0, jj + j0
    img[ii, jj] = np.round(img[ii, jj] * (1 - cov) + grey * cov).astype(np.uint8)


def _calibration_pulse(layout: PaperLayout, row: int, fs: int) -> np.ndarray | None:
    """ECG-image-kit's pulse where the layout puts it (before the signal, or after it on GE-style pages)."""
    span = layout.pulse_span_x()
    if span is None:
        return None
    step = 1.0 / fs
    t = np.arange(0, fs * CALIB_PULSE_S * step + 4 * step, step)  # ECG-image-kit's own sampling of the pulse
    pulse = np.ones(len(t))
    pulse[:2] = 0
    pulse[-2:] = 0
    x = span[0] + t * layout.px_per_s + layout.pen_offset_px  # plotted like the trace
    y = layout.mv_to_y(row, layout.calib_mv * pulse) + layout.pen_offset_px
    return np.stack([x, y], axis=1)


def render_page(record: EcgRecord, rng: np.random.Generator | None = None, layout: PaperLayout = PAGE,
                style: RenderStyle | None = None) -> RenderedPage:
    """Draw the clean 0001 page of `record`; see the module docstring for the rules."""
    if record.signals.ndim != 2 or record.signals.shape[1] != 12:
        raise ValueError(f"record {record.record_id!r}: signals must be (n, 12), got {record.signals.shape}")
    if not np.all(np.isfinite(record.signals)):
        raise ValueError(f"record {record.record_id!r}: signals contain NaN or inf")
    rng = np.random.default_rng(0) if rng is None else rng
    style = draw_style(rng, layout) if style is None else style
    img = np.array(grid_image(layout, style.snap_grid, style.axis_grid_order))  # writable copy
    grey = int(np.clip(style.trace_grey, 0, 255))
    trace_w = layout.trace_line_pt * layout.px_per_pt

    rows = row_polylines(record, layout, style.simultaneous_columns)
    traces: list[np.ndarray] = []
    for r, segs in enumerate(rows):
        traces.append(np.concatenate(segs, axis=0))
        drawn = [traces[-1]] if style.connect_columns else segs
        for s in drawn:
            _paint(img, s, trace_w, grey)
        pulse = _calibration_pulse(layout, r, record.fs) if style.show_calibration else None
        if pulse is not None:
            _paint(img, pulse, _CALIB_WIDTH_FACTOR * trace_w, grey)
        if style.show_ticks and len(segs) > 1:
            half = 0.5 * layout.column_tick_mv * layout.px_per_mv
            y0 = layout.baselines_y[r]
            seg_s = layout.shown_s / len(segs)
            for c in range(1, len(segs)):
                # at the end of column c-1: t = seg_s (c-1) + its samples / fs
                x = layout.time_to_x((c - 1) * seg_s + int(seg_s * record.fs) / record.fs)
                tick = np.array([[x, y0 - half], [x, y0 + half]])  # a vertical jump: x-monotone
                _paint(img, tick, _TICK_WIDTH_FACTOR * trace_w, grey)

    font = _font(layout.label_font_pt * layout.px_per_pt)
    label_boxes: dict[str, tuple[float, float, float, float]] = {}
    if style.show_labels:
        for r, leads in enumerate(layout.rows):
            rhythm = len(leads) == 1
            off = layout.rhythm_label_offset_mv if rhythm else layout.label_offset_mv
            y = layout.mv_to_y(r, -off)
            seg_w = (layout.shown_s / len(leads)) * layout.px_per_s  # the competition's column_width
            for c, lead in enumerate(leads):
                box = _draw_text(img, lead, layout.signal_x0 + c * seg_w, y, font)
                if box is not None:
                    label_boxes[f"{r}_{c}_{lead}"] = box
    # speed and gain legend 0.5 mV above the bottom edge
    y_legend = layout.height - 0.5 * layout.px_per_mv
    _draw_text(img, f"{layout.mm_per_s:g}mm/s", LEGEND_X_MM[0] * layout.px_per_mm, y_legend, font)
    _draw_text(img, f"{layout.mm_per_mv:g}mm/mV", LEGEND_X_MM[1] * layout.px_per_mm, y_legend, font)
    if style.show_header:
        y = layout.height - int(layout.height / layout.px_per_mv) * layout.px_per_mv
        for line in _header_lines(rng, record):
            x = 1.25 * layout.px_per_mm  # ECG-image-kit's 0.05 s and 3 s at 25 mm/s: paper positions
            for item in line:
                _draw_text(img, item, x, y, font)
                x += 75.0 * layout.px_per_mm
            y += 0.5 * layout.px_per_mv
    if style.show_frame:
        _draw_frame(img, layout)
    return RenderedPage(image=img, traces=traces, label_boxes=label_boxes, layout=layout)


# ---------------------------------------------------------------- training targets
def trace_masks(page: RenderedPage, scale: float = 1.0, width_px: float | None = None) -> np.ndarray:
    """(n_rows, H*scale, W*scale) uint8 0..255: each printed row's trace alone, anti-aliased.

    width_px is the real stroke width in OUTPUT pixels (default: the printed trace width times scale),
    drawn exactly as render_page draws the trace (stroke.py).
    """
    lay = page.layout
    h, w = lay.shape_at(scale)
    width = lay.trace_line_pt * lay.px_per_pt * scale if width_px is None else width_px
    out = np.zeros((len(page.traces), h, w), dtype=np.uint8)
    for r, pts in enumerate(page.traces):
        res = stroke_band(pts, width, (h, w), scale)
        if res is not None:
            i0, j0, a = res
            out[r, i0:i0 + a.shape[0], j0:j0 + a.shape[1]] = np.round(a * 255).astype(np.uint8)
    return out


def oracle_row_curves(page: RenderedPage, scale: float = 1.0) -> np.ndarray:
    """(n_rows, W*scale) float32: y (scaled page px) of each row's trace at every pixel column.

    NaN outside the trace's x extent. The polyline's x increases along each row, so y(x) is the
    linear interpolation between drawn vertices (as a 1-px-wide reading of the drawn line).
    """
    lay = page.layout
    w = int(round(lay.width * scale))
    xs = np.arange(w, dtype=np.float64) / scale
    out = np.full((len(page.traces), w), np.nan, dtype=np.float32)
    for r, pts in enumerate(page.traces):
        x, y = pts[:, 0].astype(np.float64), pts[:, 1].astype(np.float64)
        inside = (xs >= x[0]) & (xs <= x[-1])
        out[r, inside] = (np.interp(xs[inside], x, y) * scale).astype(np.float32)
    return out


# ---------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Render one synthetic clean ECG page (type 0001) to a PNG.")
    ap.add_argument("--out", required=True, help="output PNG path")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fs", type=int, default=500)
    ap.add_argument("--rhythm", default=None, help="sinus, sinus_arrhythmia, afib or pvc")
    ap.add_argument("--arrangement", choices=list(LEAD_LAYOUTS), default="3x4+1", help="lead arrangement (default 3x4+1)")
    ap.add_argument("--pulse", choices=("start", "end", "none"), default="start", help="calibration pulse's place")
    ap.add_argument("--gain", type=float, default=10.0, help="mm/mV (default 10)")
    ap.add_argument("--speed", type=float, choices=PAPER_SPEEDS_MM_PER_S, default=25.0, help="paper speed, mm/s (default 25)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    overrides = {} if args.rhythm is None else {"rhythm": args.rhythm}
    record = simulate_record(rng, args.fs, record_id=str(args.seed), **overrides)
    layout = arranged_layout(args.arrangement, args.pulse, args.gain, args.speed)
    style = replace(draw_style(rng, layout), show_calibration=args.pulse != "none")
    page = render_page(record, rng, layout, style)
    ok = cv2.imwrite(args.out, cv2.cvtColor(page.image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not write {args.out}")
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
