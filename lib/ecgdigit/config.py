"""The kit's shared constants and paths: the competition's leads, layout, image types and sampling
rates, the page's geometry (PaperLayout), the stages' working scales and the folders. A constant that
one module tunes for itself (a threshold, a cost) lives in that module, beside the code it tunes.

Values marked (check) come from ../shared/spec/competition.md as believed but not confirmed;
one edit here fixes them everywhere.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------- leads and layout
LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
RHYTHM_LEAD = "II"
# Printed rows, top to bottom; each short row holds 4 leads of 2.5 s, the last is the 10 s rhythm strip.
LAYOUT_ROWS: tuple[tuple[str, ...], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
    ("II",),
)
N_ROWS = len(LAYOUT_ROWS)
N_COLUMNS = 4
DURATION_S = 10.0
SHORT_LEAD_S = DURATION_S / N_COLUMNS  # 2.5 s
SAMPLING_RATES: tuple[int, ...] = (250, 256, 500, 512, 1000, 1025)
CALIB_PULSE_S = 0.2  # the calibration pulse: 1 mV for 0.2 s (5 mm at 25 mm/s, 10 mm at 50)
PAPER_SPEEDS_MM_PER_S: tuple[float, ...] = (25.0, 50.0)  # the paper speeds the kit reads and draws
GAINS_MM_PER_MV: tuple[float, ...] = (5.0, 10.0, 20.0)  # the gains ECG printers offer


def lead_column(lead: str) -> int:
    """Column (0..3) where a short lead is printed; its 2.5 s window starts at column * 2.5 s."""
    for row in LAYOUT_ROWS[:3]:
        if lead in row:
            return row.index(lead)
    raise KeyError(f"unknown lead {lead!r}; expected one of {LEADS}")


def lead_window(lead: str, fs: int) -> tuple[int, int]:
    """[start, stop) sample indices of the lead's printed window in the 10 s record."""
    if lead == RHYTHM_LEAD:
        return 0, int(round(DURATION_S * fs))
    n = int(SHORT_LEAD_S * fs)  # the competition: each short lead is int(2.5 * fs) samples
    start = lead_column(lead) * n
    return start, start + n


def number_of_rows(lead: str, fs: int) -> int:
    """Rows a lead has in test.csv: 10*fs for lead II, 10*fs//4 for the others."""
    if lead == RHYTHM_LEAD:
        return int(round(DURATION_S * fs))
    return int(round(DURATION_S * fs)) // 4


# ---------------------------------------------------------------- image types
IMAGE_TYPES: dict[str, str] = {
    "0001": "clean",
    "0003": "colour_scan",
    "0004": "bw_scan",
    "0005": "mobile_photo",
    "0006": "screen_photo",
    "0009": "stained",
    "0010": "damaged",
    "0011": "mould_colour_scan",
    "0012": "mould_bw_scan",
}
# Image sizes (height, width) of the competition's captures, before any quarter turn.
SCAN_SIZE: tuple[int, int] = (1652, 2138)  # (check) "about 1652 px high"; width from the letter aspect
PHOTO_SIZES: tuple[tuple[int, int], ...] = ((3024, 4032), (3000, 4000), (1008, 1344))  # landscape (check)


def parse_image_types(text: str) -> tuple[str, ...]:
    """'all' or a comma list of image type codes ('0001,0005') for command lines; unknown codes are
    an error (argparse.ArgumentTypeError, so argparse shows the message as it is)."""
    if text.strip().lower() == "all":
        return tuple(IMAGE_TYPES)
    types = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in types if t not in IMAGE_TYPES]
    if bad or not types:
        raise argparse.ArgumentTypeError(f"unknown image type(s) {bad or text!r}; known: {', '.join(IMAGE_TYPES)}")
    return types


# ---------------------------------------------------------------- paper geometry
# ECG-image-kit prints '25mm/s' and '10mm/mV' 2 s and 4 s (at 25 mm/s) from the left edge: paper
# positions, whatever the page's speed
LEGEND_X_MM: tuple[float, float] = (50.0, 100.0)


@dataclass(frozen=True)
class PaperLayout:
    """ECG-image-kit's page, in pixels of the clean 200 dpi render (x right, y down).

    Every stage expresses page positions in these units times a scale factor, so that the
    rectified page at scale s is simply this layout with every length multiplied by s.
    """

    dpi: float = 200.0
    width: int = 2200
    height: int = 1700
    # paper speed, measured per page as the gain is: the signal's printed width (signal_mm) stays, so
    # a 50 mm/s page shows shown_s = 5 s of the record and its calibration pulse is twice as wide
    mm_per_s: float = 25.0
    mm_per_mv: float = 10.0
    signal_mm: float = DURATION_S * 25.0  # ECG-image-kit's: 10 s at 25 mm/s
    # zero-mV lines of the 4 printed rows (checked on a real 0001 image within 0.5 px)
    baselines_y: tuple[float, ...] = (708.33, 991.67, 1275.00, 1534.71)
    signal_x0: float = 118.11  # the trace starts here, after the calibration pulse
    calib_mv: float = 1.0
    column_tick_mv: float = 0.63  # vertical tick at each column boundary
    label_offset_mv: float = 0.7  # lead names this far below the baseline
    rhythm_label_offset_mv: float = 0.8
    label_font_pt: float = 11.0
    grid_major_mm: float = 5.0
    grid_minor_mm: float = 1.0
    grid_major_rgb: tuple[int, int, int] = (255, 0, 0)
    grid_minor_rgb: tuple[int, int, int] = (254, 223, 219)
    grid_line_pt: float = 0.5
    trace_line_pt: float = 0.75
    trace_grey_max: int = 51
    pulse_drop_px: float = 2.0  # the pulse's trailing edge ends this far past signal_x0 unless measured
    # ECG-image-kit's plotted lines (trace, pulse) sit this far right of and below the frame its grid
    # and layout are placed in (a half-pixel convention of its plotting): on realdev's renders every
    # page's trace lies 0.43-0.52 px left of and 0.52 px above where the layout puts the truth
    pen_offset_px: float = -0.5
    mark_margin_px: float = 0.5  # around printed marks, for anti-aliasing and small geometry errors
    # the printed rows' leads, top to bottom (one per baselines_y): a row of n leads splits the
    # 10 s into n consecutive segments; lead_layouts.LEAD_LAYOUTS registers the arrangements
    rows: tuple[tuple[str, ...], ...] = LAYOUT_ROWS
    pulse: str = "start"  # where each row's calibration pulse is: 'start' (calib_x0..signal_x0), 'end', 'none'
    # where the printed page's own left edge lies in this frame, page px. A page without a pulse before
    # its signal starts the signal where that pulse would be (ECG-image-kit's no-pulse pages, GE-style
    # pages), and is read with its signal moved to signal_x0: what is printed at fixed places on the
    # page (the legend) moves with it (layout detection sets this; 0 on the competition's look)
    page_x0: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in page px: the order of an image's shape, as every page frame uses it."""
        return self.height, self.width

    def shape_at(self, scale: float) -> tuple[int, int]:
        """(height, width) of the page rendered or rectified at `scale`."""
        return int(round(self.height * scale)), int(round(self.width * scale))

    @property
    def px_per_mm(self) -> float:
        return self.dpi / 25.4

    @property
    def px_per_mv(self) -> float:
        return self.mm_per_mv * self.px_per_mm

    @property
    def px_per_s(self) -> float:
        return self.mm_per_s * self.px_per_mm

    @property
    def px_per_pt(self) -> float:
        return self.dpi / 72.0

    @property
    def shown_s(self) -> float:
        """Seconds of the record the page shows from its start: 10 at 25 mm/s, 5 at 50."""
        return self.signal_mm / self.mm_per_s

    @property
    def calib_x0(self) -> float:
        """Where a calibration pulse before the signal begins: 1 mV x 0.2 s spans calib_x0..signal_x0
        (rounded to 0.01 px as the layout's positions are: 78.74 at 25 mm/s, 39.37 at 50)."""
        return round(self.signal_x0 - CALIB_PULSE_S * self.px_per_s, 2)

    @property
    def column_width(self) -> float:
        return self.shown_s / N_COLUMNS * self.px_per_s

    @property
    def signal_x1(self) -> float:
        return self.signal_x0 + self.shown_s * self.px_per_s

    @property
    def grid_major_px(self) -> float:
        return self.grid_major_mm * self.px_per_mm

    @property
    def grid_minor_px(self) -> float:
        return self.grid_minor_mm * self.px_per_mm

    def grid_lines(self, major: bool) -> tuple[list[float], list[float]]:
        """x and y positions of grid lines; the grid is anchored at the page's bottom-left."""
        step = self.grid_major_px if major else self.grid_minor_px
        xs = [i * step for i in range(int(self.width / step) + 1)]
        ys = [self.height - i * step for i in range(int(self.height / step) + 1)]
        return xs, ys

    def label_zone(self, row: int, column: int) -> tuple[float, float, float, float]:
        """x0, y0, x1, y1 around where a lead name is printed (its text sits on a line
        label_offset_mv below the baseline, starting at its segment's first column). Wide enough
        for 'aVR' at 11 pt, with a margin."""
        rhythm = len(self.rows[row]) == 1
        text_base = self.baselines_y[row] + (self.rhythm_label_offset_mv if rhythm else self.label_offset_mv) * self.px_per_mv
        x0 = self.segment_edges_x(row)[column]
        cap = self.label_font_pt * self.px_per_pt * 0.8  # capital height of DejaVu Sans ~0.73 em
        return x0 - 3.0, text_base - cap - 3.0, x0 + 2.3 * self.label_font_pt * self.px_per_pt, text_base + 4.0

    def legend_zones(self) -> list[tuple[float, float, float, float]]:
        """Boxes around the '25mm/s' and '10mm/mV' legend printed 0.5 mV above the bottom edge,
        starting LEGEND_X_MM from the page's left edge (page_x0 in this frame)."""
        text_base = self.height - 0.5 * self.px_per_mv
        cap = self.label_font_pt * self.px_per_pt * 0.8
        em = self.label_font_pt * self.px_per_pt
        return [(x0 - 3.0, text_base - cap - 3.0, x0 + 0.75 * em * n_chars, text_base + 4.0)
                for x0, n_chars in ((self.page_x0 + LEGEND_X_MM[0] * self.px_per_mm, 6),
                                    (self.page_x0 + LEGEND_X_MM[1] * self.px_per_mm, 7))]

    def segment_edges_x(self, row: int) -> list[float]:
        """x where each printed segment of a row begins, and where the last one ends: a row of
        four 2.5 s leads has five edges, the rhythm strip two."""
        n = len(self.rows[row])
        return [self.time_to_x(c * self.shown_s / n) for c in range(n + 1)]

    def at_speed(self, mm_per_s: float) -> "PaperLayout":
        """This page at another paper speed (the same paper: signal_x0, width and rows stay)."""
        return self if mm_per_s == self.mm_per_s else dataclasses.replace(self, mm_per_s=float(mm_per_s))

    def pulse_zones(self, row: int, drop_px: float | None = None) -> list[tuple[float, float, float, float]]:
        """Boxes around a row's calibration pulse where it meets the signal start: its trailing edge
        (full height; 1.5x the trace width) and its tail at 0 mV. ECG-image-kit samples the pulse at
        the record's fs: the edge drops at signal_x0 + 1..2 samples and the tail runs to 3 samples
        (0.4-1.2 px at 500 Hz, 2-6 px at 100 Hz). drop_px: the edge's measured right end past
        signal_x0 (default: pulse_drop_px)."""
        w, m = self.trace_line_pt * self.px_per_pt, self.mark_margin_px
        d = self.pulse_drop_px if drop_px is None else drop_px
        base = self.baselines_y[row]
        top = base - self.calib_mv * self.px_per_mv
        if self.pulse == "end":  # its leading edge rises d past the signal's end; its foot lies beyond
            x1 = self.signal_x1
            return [(x1 + min(0.0, d) - 0.75 * w - m, top - 0.75 * w - m, x1 + d + 0.75 * w + m, base + 0.75 * w + m)]
        x0 = self.signal_x0
        return [(x0 - 0.75 * w - m, top - 0.75 * w - m, x0 + d + 0.75 * w + m, base + 0.75 * w + m),
                (x0, base - 0.75 * w - m, x0 + 1.5 * d + 0.75 * w + m, base + 0.75 * w + m)]

    def pulse_span_x(self) -> tuple[float, float] | None:
        """x from where each row's calibration pulse begins to where it ends (None: no pulse): before
        the signal ('start', ECG-image-kit's) or after it ('end', GE-style pages)."""
        if self.pulse == "start":
            return self.calib_x0, self.signal_x0
        if self.pulse == "end":
            return self.signal_x1, self.signal_x1 + CALIB_PULSE_S * self.px_per_s
        return None

    def separator_zones(self, row: int) -> list[tuple[float, float, float, float]]:
        """Boxes around the separator bar at each of a row's column boundaries (3x the trace width,
        column_tick_mv tall; real renders measured 5.8 px wide and 0.7 mV tall)."""
        w, m = self.trace_line_pt * self.px_per_pt, self.mark_margin_px
        base = self.baselines_y[row]
        half_h = 0.5 * max(self.column_tick_mv, 0.7) * self.px_per_mv + 1.5 * w + m
        return [(x - 1.5 * w - m, base - half_h, x + 1.5 * w + m, base + half_h) for x in self.segment_edges_x(row)[1:-1]]

    def time_to_x(self, t_s):
        return self.signal_x0 + t_s * self.px_per_s

    def mv_to_y(self, row: int, mv):
        return self.baselines_y[row] - mv * self.px_per_mv

    def pen_xy(self, row: int, t_s, mv):
        """Where the pen draws (t seconds, mv) of a row's signal: the layout's point plus pen_offset_px."""
        return self.time_to_x(t_s) + self.pen_offset_px, self.mv_to_y(row, mv) + self.pen_offset_px

    def pen_signal(self, row: int, x, y):
        """(t seconds, mV) of a pen point (x, y) in page px: pen_xy's inverse."""
        return ((x - self.pen_offset_px - self.signal_x0) / self.px_per_s,
                (self.baselines_y[row] - (y - self.pen_offset_px)) / self.px_per_mv)


PAGE = PaperLayout()

# ---------------------------------------------------------------- metric
PERFECT_SCORE = 1e6  # final copy of the host's metric
PERFECT_SCORE_EARLY = 384.0  # early copies (25.84 dB)
MAX_TIME_SHIFT_S = 0.2

# ---------------------------------------------------------------- pipeline resolutions
# Geometry is found at low resolution and applied to the original pixels (see README).
STAGE0_INPUT = 512  # long side of the image the stage-0 model sees
STAGE1_SCALE = 0.5  # normalized page for grid finding, relative to the 200 dpi page
STAGE2_SCALE = 2.0  # rectified page for trace reading: 4400 px wide


# ---------------------------------------------------------------- paths
@dataclass(frozen=True)
class Paths:
    repo: Path = Path(__file__).resolve().parents[2]
    weights: Path = field(default_factory=lambda: Path(os.environ.get(
        "ECGDIGIT_WEIGHTS", Path(__file__).resolve().parents[2] / "weights")))
    embedded_sample: Path = field(default_factory=lambda: Path(os.environ.get(
        "ECGDIGIT_SAMPLE", Path(__file__).resolve().parents[2] / "data" / "embedded_sample")))
    outputs: Path = field(default_factory=lambda: Path(os.environ.get(
        "ECGDIGIT_OUTPUTS", Path(__file__).resolve().parents[2] / "outputs")))


def paths() -> Paths:
    """Paths read from the environment at call time, never cached at import."""
    return Paths()


# ---------------------------------------------------------------- Kaggle
# bump when a change to the generator alters the images it draws: cached synthetic folders
# (embedded sample, benchmark hold-out) record it and are rebuilt when it differs
# 2: traces, pulse and ticks drawn at their real widths (were 3.4 px from cv2's integer thickness)
# 3: leads drawn separately (ECG-image-kit's one plot per lead), joined columns on 10 % of pages
# 4: the pen's half-pixel offset (PaperLayout.pen_offset_px), drawn by the generator, read by stage 2
# 5: realistic signals (synth/realism.py: realdev's noise spectrum, wander, start transients, lead
#    spread, 100/250/500 Hz drawing), ECG-image-kit's matplotlib grid (snapped, drawn axis by axis) on
#    60 % of pages, B&W laser-print recipe for 0004/0012 (0004 also at the real scans' 2038x1554)
# 6: steep strokes at their true width across (stroke.py's offset segments; were up to 10 % thin on
#    QRS flanks), B&W prints: grid lines in solid and broken stretches, darker wider toner trace,
#    the scan of a print sampled bicubically
# 7: B&W prints refitted to what the current reader finds hard on realdev's scans: the grid's solid
#    stretches as dark as the trace (lighter trace, wider lines), a quarter of a line solid, partly in
#    long stretches; half the paper noise
SYNTH_VERSION = 7

COMPETITION_SLUG = "physionet-ecg-image-digitization"  # (check)
KAGGLE_INPUT = Path("/kaggle/input")
KAGGLE_WORKING = Path("/kaggle/working")
BUNDLE_SLUG = "ecgdigit-bundle"
