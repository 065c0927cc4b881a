"""Stage 2's stroke model: a round pen's edges give back the curve it drew, peaks and troughs included."""
import numpy as np

from ecgdigit.stages.stroke_envelope import (
    centre_line,
    closing_from_top,
    column_edges,
    opening_from_bottom,
    pen_radius,
)


def _pen_edges(y: np.ndarray, r: float, sub: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Exact top/bottom (y down) of y drawn with a disk of radius r: the dilation, on a fine grid."""
    n = len(y)
    xf = np.arange(n * sub) / sub
    yf = np.interp(xf, np.arange(n), y)
    top, bot = np.empty(n), np.empty(n)
    for j in range(n):
        d = xf - j
        near = np.abs(d) <= r
        g = np.sqrt(r * r - d[near] ** 2)
        top[j], bot[j] = (yf[near] - g).min(), (yf[near] + g).max()
    return top, bot


def _ecg_like(n: int = 400) -> np.ndarray:
    x = np.arange(n, dtype=np.float64)
    # y down: an R peak 120 px tall and 8 px wide, an S trough, a broad T wave
    return (300 - 120 * np.exp(-0.5 * ((x - 150) / 4) ** 2) + 40 * np.exp(-0.5 * ((x - 165) / 3) ** 2)
            - 25 * np.exp(-0.5 * ((x - 260) / 25) ** 2))


def test_centre_line_recovers_narrow_peaks_and_troughs():
    y = _ecg_like()
    r = 3.0
    top, bot = _pen_edges(y, r)
    got = centre_line(top, bot, r)
    naive = 0.5 * (top + bot)
    err, err_naive = np.abs(got - y), np.abs(naive - y)
    assert err.max() < 1.5, err.max()
    assert err_naive.max() > 8 * err.max()  # the column midpoint misses the R peak by many px
    # the apex itself within half a pixel
    assert abs(got[150] - y[150]) < 0.5
    assert abs(got[165] - y[165]) < 0.5


def test_closing_and_opening_bracket_the_curve():
    y = _ecg_like()
    top, bot = _pen_edges(y, 2.5)
    closed, opened = closing_from_top(top, 2.5), opening_from_bottom(bot, 2.5)
    assert np.all(closed <= y + 0.2) and np.all(opened >= y - 0.2)
    smooth = slice(200, 400)  # the broad T wave: both exact
    assert np.abs(closed[smooth] - y[smooth]).max() < 0.2
    assert np.abs(opened[smooth] - y[smooth]).max() < 0.2


def test_pen_radius_is_half_the_flat_thickness():
    y = np.full(300, 50.0)
    top, bot = _pen_edges(y, 2.2)
    assert abs(pen_radius(top, bot) - 2.2) < 0.05
    assert pen_radius(top[:5], bot[:5], default=7.0) == 7.0  # too few flat columns


def test_column_edges_at_sub_pixel_level_crossing():
    h, n = 40, 3
    band = np.zeros((h, n), np.float32)
    lo, hi = 10.3, 14.7  # a stroke covering [lo, hi] of pixel rows centred on integers
    for i in range(h):
        band[i] = np.clip(min(i + 0.5, hi) - max(i - 0.5, lo), 0, 1)
    band[30:33, 1] = 1.0  # another stroke in column 1, not a member
    member = band >= 0.3
    member[25:, :] = False
    top, bot = column_edges(band, member, level=0.5)
    assert np.allclose(top, lo, atol=0.15) and np.allclose(bot, hi, atol=0.15)
    empty = np.zeros_like(member)
    assert np.isnan(column_edges(band, empty)[0]).all()


def test_r_peak_next_to_a_deeper_s_trough_keeps_both_extremes():
    # the flanks between them are too steep for closing and opening to agree: one region holds both
    x = np.arange(200, dtype=np.float64)
    y = 300 - 60 * np.exp(-0.5 * ((x - 100) / 1.5) ** 2) + 90 * np.exp(-0.5 * ((x - 104) / 1.5) ** 2)
    r = 1.5
    top, bot = _pen_edges(y, r)
    got = centre_line(top, bot, r)
    assert abs(got[100] - y[100]) < 2.0, (got[100], y[100])  # the R peak
    assert abs(got[104] - y[104]) < 2.0, (got[104], y[104])  # the S trough
