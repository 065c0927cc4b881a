"""Stage 2 on a grey grid's solid stretches: straight ink along a 5 mm line's row is told from the
trace, the path prefers a fainter trace to a darker stretch, and a vertical line's dash does not
join the trace's run (B&W prints, realdev's scans)."""
import numpy as np

from ecgdigit.config import PAGE
from ecgdigit.stages.grid_suppression import (GREY_GRID_SHADE, major_line_columns, major_line_rows,
                                              major_line_shade, solid_line_stretches)
from ecgdigit.stages.trace_reading import _within_neighbours, read_row_curve

SCALE = 1.0
ROW = 3  # the rhythm strip: its baseline lies 1 mm above a 5 mm line


def _blank() -> np.ndarray:
    return np.zeros((int(PAGE.height * SCALE), int(PAGE.width * SCALE)), np.float32)


def _line_below(row: int) -> int:
    """The first 5 mm line's centre row below the row's baseline."""
    rows = np.flatnonzero(major_line_rows(int(PAGE.height * SCALE), SCALE))
    below = rows[rows > PAGE.baselines_y[row] * SCALE]
    first = below[below - below[0] < 4]
    return int(round(first.mean()))


def test_a_long_dash_on_a_5mm_line_is_a_stretch_but_a_crossing_stroke_and_other_rows_are_not():
    ink = _blank()
    y = _line_below(ROW)
    ink[y, 400:460] = 1.0  # a solid stretch on the line
    ink[y - 30:y + 30, 600:603] = 1.0  # a steep stroke crossing the line
    ink[y + 4 * int(PAGE.px_per_mm * SCALE), 700:800] = 1.0  # a flat stroke on a minor row
    st = solid_line_stretches(ink, SCALE)
    assert st[y, 402:458].all()  # its ends may lose a pixel to the opening's even kernel
    assert not st[:, 590:615].any()
    assert not st[:, 690:810].any()


def test_the_path_keeps_a_faint_wave_over_a_darker_stretch_below_it():
    """A T wave's worth of trace (0.2 mV bump, ink 0.7) with a solid stretch (ink 1.0) 1 mm below
    its baseline all the way under it: without the discount the path runs straight along the line."""
    ink = _blank()
    base = PAGE.baselines_y[ROW] * SCALE
    line = _line_below(ROW)
    x = np.arange(int(PAGE.signal_x0 * SCALE), int(PAGE.signal_x1 * SCALE))
    bump = (x > 1000) & (x < 1100)
    y = base - np.where(bump, 0.2 * PAGE.px_per_mv * SCALE * np.sin(np.pi * (x - 1000) / 100.0), 0.0)
    for dy in (-1, 0, 1):
        ink[np.round(y).astype(int) + dy, x] = 0.7
    ink[line - 1:line + 1, 980:1120] = 1.0
    curve = read_row_curve(ink, ROW, SCALE, stretches=solid_line_stretches(ink, SCALE))
    top = (curve.x > 1040) & (curve.x < 1060)
    assert np.all(curve.y[top] < base - 0.15 * PAGE.px_per_mv * SCALE), curve.y[top]


def test_only_a_grey_grid_counts_as_one():
    """The 5 mm rows' brightness over the rows midway between them: about 1 where the grid vanished
    in the brightest channel (a coloured grid), well below where a grey grid printed."""
    h, w = int(PAGE.height * SCALE), int(PAGE.width * SCALE)
    ratio = np.ones((h, w), np.float32)
    assert major_line_shade(ratio, SCALE) > GREY_GRID_SHADE
    ratio[major_line_rows(h, SCALE)] = 0.8
    assert major_line_shade(ratio, SCALE) < GREY_GRID_SHADE


def test_a_dash_joined_to_a_flat_trace_in_a_line_column_is_clipped_but_a_steep_stroke_is_kept():
    """member (rows x columns) of a 3-px flat trace with a vertical dash hanging from it in the line's
    columns 10-12: clipped to the trace's rows beside the line (+ margin). A steep stroke through
    the same columns (rows 40 -> 70 over columns 8-14) spans what its neighbours span and stays."""
    on_line = np.zeros(24, bool)
    on_line[10:13] = True
    flat = np.zeros((100, 24), bool)
    flat[20:23] = True
    flat[20:45, 10:13] = True  # the dash
    out = _within_neighbours(flat, on_line, margin=2)
    assert out[20:23].all() and not out[26:, 10:13].any()
    steep = np.zeros((100, 24), bool)
    for j, y in enumerate(np.linspace(40, 70, 7).astype(int)):
        steep[y - 3:y + 4, 8 + j] = True
    np.testing.assert_array_equal(_within_neighbours(steep, on_line, margin=2), steep)


def test_the_5mm_line_columns_lie_on_the_page_grid():
    cols = np.flatnonzero(major_line_columns(int(PAGE.width * SCALE), SCALE))
    step = PAGE.grid_major_px * SCALE
    assert np.all(np.abs(cols / step - np.round(cols / step)) * step <= 0.3 * PAGE.px_per_mm * SCALE)
    assert 0 in cols and int(round(10 * step)) in cols
