"""Steep flanks read across pixel rows: a drawn flank's y comes back at every column it crosses."""
import cv2
import numpy as np

from ecgdigit.stages.steep_flanks import refine_steep_flanks

SUPER = 8  # drawn this much finer, then area-averaged: an anti-aliased stroke like a renderer's


def _draw(xs: np.ndarray, ys: np.ndarray, h: int, w: int, pen_px: float) -> np.ndarray:
    """Ink (h, w) in [0, 1] of the polyline (xs, ys) (pixel centres at integers) drawn pen_px wide."""
    big = np.zeros((h * SUPER, w * SUPER), np.uint8)
    pts = np.stack([(xs + 0.5) * SUPER - 0.5, (ys + 0.5) * SUPER - 0.5], 1)
    cv2.polylines(big, [np.round(pts * 16).astype(np.int32)], False, 255,
                  thickness=int(round(pen_px * SUPER)), lineType=cv2.LINE_8, shift=4)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _spike(x: np.ndarray, centre: float, height: float, half_width: float, base: float) -> np.ndarray:
    return base - height * np.clip(1.0 - np.abs(x - centre) / half_width, 0.0, None)


def _drawn_spike(w: int, h: int, pen: float, centre: float, height: float, half_width: float,
                 base: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ink, column x, the spike's y at each column) of one triangular spike drawn finely."""
    fine = np.linspace(0, w - 1, 50 * w)
    ink = _draw(fine, _spike(fine, centre, height, half_width, base), h, w, pen)
    cols = np.arange(w, dtype=np.float64)
    return ink, cols, _spike(cols, centre, height, half_width, base)


def test_flank_columns_come_back_where_a_biased_reading_was():
    pen = 3.0
    ink, cols, truth = _drawn_spike(80, 200, pen, 40.0, 150.0, 12.0, 180.0)
    # a column reading that sits a third of a column early on both flanks (tens of px in y)
    biased = _spike(cols + np.sign(cols - 40.0) * 0.33, 40.0, 150.0, 12.0, 180.0)
    out = refine_steep_flanks(biased, ink, pen)
    # steep, away from the apex (where the two flanks' ink merges across a row) and the foot
    flank = (np.abs(cols - 40.0) >= 3) & (np.abs(cols - 40.0) <= 10)
    assert np.abs(biased - truth)[flank].min() > 4.0
    assert np.abs(out - truth)[flank].max() < 2.0


def test_flat_and_gentle_curves_are_left_alone():
    w, h, pen = 120, 100, 3.0
    cols = np.arange(w, dtype=np.float64)
    y = 50.0 + 20.0 * np.sin(cols / 15.0)  # at most 1.3 px per column
    ink = _draw(cols, y, h, w, pen)
    np.testing.assert_array_equal(refine_steep_flanks(y, ink, pen), y)


def test_a_spike_narrower_than_the_pen_keeps_finite_values_inside_its_range():
    pen = 3.0
    ink, _, y = _drawn_spike(60, 200, pen, 30.0, 120.0, 1.5, 170.0)
    out = refine_steep_flanks(y, ink, pen)
    assert np.isfinite(out).all()
    assert out.min() >= y.min() - 1.0 and out.max() <= y.max() + 1.0


def test_a_column_at_a_flanks_bend_comes_back_though_it_was_read_further_off_than_the_slope():
    w, h, pen = 60, 400, 3.0

    def flank_then_gentle(x):  # 60 px per column, bending at x = 30.5 into 2 px per column
        return np.where(x < 30.5, 50 + 60 * np.clip(x - 25.5, 0, None), 350 + 2 * (x - 30.5))

    fine = np.linspace(0, w - 1, 50 * w)
    ink = _draw(fine, flank_then_gentle(fine), h, w, pen)
    truth = flank_then_gentle(np.arange(w, dtype=np.float64))
    read = truth.copy()
    read[30] = truth[29] + 10  # the bend's column read halfway round it: 50 px off, more than its slope
    out = refine_steep_flanks(read, ink, pen)
    assert abs(out[30] - truth[30]) < 2.0


def test_rows_through_both_flanks_near_a_narrow_apex_are_split_at_the_valley_between_them():
    pen = 4.0
    ink, cols, truth = _drawn_spike(80, 260, pen, 40.3, 200.0, 4.0, 230.0)
    yy = np.arange(ink.shape[0])[:, None]
    centroid = (ink * yy).sum(axis=0) / np.maximum(ink.sum(axis=0), 1e-6)  # what a column reading gives
    out = refine_steep_flanks(centroid, ink, pen)
    # the trailing flank's last steep column: its rows hold both flanks' ink, run together
    assert abs(centroid[43] - truth[43]) > 10.0
    assert abs(out[43] - truth[43]) < 2.0


def test_a_column_just_past_a_flanks_row_points_takes_the_flanks_own_line():
    pen = 3.0
    ink, cols, truth = _drawn_spike(80, 260, pen, 40.3, 200.0, 3.0, 230.0)
    yy = np.arange(ink.shape[0])[:, None]
    centroid = (ink * yy).sum(axis=0) / np.maximum(ink.sum(axis=0), 1e-6)
    out = refine_steep_flanks(centroid, ink, pen)
    # the trailing flank's column nearest the apex: no row there holds that flank alone
    assert abs(centroid[42] - truth[42]) > 5.0
    assert abs(out[42] - truth[42]) < 2.0
