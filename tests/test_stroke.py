import numpy as np
import pytest

from ecgdigit.synth.stroke import add_stroke, stroke_band

W = 0.75 * 200 / 72  # the printed trace: 0.75 pt at 200 dpi = 2.083 px


def _cov(pts, width=W, shape=(200, 400), scale=1.0):
    cov = np.zeros(shape, np.float32)
    add_stroke(cov, np.asarray(pts, np.float64), width, scale)
    return cov


@pytest.mark.parametrize("y0", [50.0, 50.37, 50.5])
@pytest.mark.parametrize("width", [1.0, W, 4.17])
def test_horizontal_column_sum_is_the_width(y0, width):
    cov = _cov([[10, y0], [390, y0]], width)
    s = cov[:, 20:380].sum(axis=0)
    assert np.allclose(s, width, rtol=0.02), (s.min(), s.max())
    assert cov.min() >= 0 and cov.max() <= 1
    assert cov[:, :5].max() == 0 and cov[:, 395:].max() == 0  # nothing past the round caps


def test_45_degree_column_sum_is_width_root_two():
    cov = _cov([[10, 20.2], [300, 310.2]], shape=(400, 400))
    s = cov[:, 30:280].sum(axis=0)
    assert np.allclose(s, W * np.sqrt(2), rtol=0.03), (s.min(), s.max())
    assert 0 <= cov.min() and cov.max() <= 1


def test_sloped_line_centroid_is_the_line():
    pts = np.array([[10, 50.37], [390, 140.1]])
    cov = _cov(pts)
    cols = np.arange(20, 380)
    ys = np.arange(cov.shape[0])[:, None]
    c = (cov[:, cols] * ys).sum(0) / cov[:, cols].sum(0)
    assert np.abs(c - np.interp(cols, pts[:, 0], pts[:, 1])).max() < 0.05


def test_spike_gets_a_round_cap():
    apex = 60.0
    r = W / 2
    cov = _cov([[99.5, 100.0], [100.0, apex], [100.5, 100.0], [150, 100.0]])
    rows = np.flatnonzero(cov.max(axis=1) > 0)
    # the cap reaches apex - r = 58.96: inside pixel 59, not pixel 58
    assert rows.min() == int(np.floor(apex - r + 0.5))
    # pixel (59, 100) holds the disk's top around the apex: the mean over |d| < 0.5 of its overlap
    d = np.linspace(-0.5, 0.5, 2001)
    want = np.clip(np.sqrt(r * r - d * d) - (apex - 59.5), 0, 1).mean()
    assert cov[59, 100] == pytest.approx(want, abs=0.03)
    # the spike's stroke is about its tip width + 2 r wide, not a hair
    assert 1.5 < cov[80].sum() < 1.0 + 2 * r + 0.2


def test_vertical_jump_is_covered_along_its_length():
    cov = _cov([[50, 100.0], [80, 100.0], [80, 40.0], [110, 40.0]])
    assert cov[41:100, 80].min() == pytest.approx(1.0)
    s = cov[45:95].sum(axis=1)  # rows crossing only the jump: its horizontal width
    assert np.allclose(s, W, atol=1 / 8 + 1e-6)  # x quantised to 1/8 px sub-columns
    assert cov[45:95, :77].max() == 0 and cov[45:95, 84:].max() == 0


def test_band_clipping_scale_and_errors():
    # a stroke partly off the image is clipped, and scale multiplies the points
    i0, j0, band = stroke_band(np.array([[-20.0, 0.25], [30.0, 0.25]]), 3.0, (50, 20), scale=2.0)
    assert i0 == 0 and j0 == 0 and band.shape[1] == 20
    assert np.allclose(band.sum(axis=0)[2:], 2.5, atol=0.02)  # y = 0.5 +- 1.5, clipped at -0.5
    assert stroke_band(np.array([[0.0, -50.0], [30.0, -50.0]]), 2.0, (50, 50)) is None
    with pytest.raises(ValueError, match="non-decreasing"):
        stroke_band(np.array([[5.0, 1.0], [4.0, 1.0]]), 2.0, (50, 50))


def test_dense_trace_matches_a_straight_reference():
    # 1025 Hz samples on a sine: many vertices per pixel; every column's coverage stays one interval
    # of about the stroke's normal thickness
    x = np.linspace(20, 380, 3700)
    y = 100 + 30 * np.sin(x / 25.0)
    cov = _cov(np.stack([x, y], 1))
    slope = np.abs(30 / 25.0 * np.cos(np.arange(30, 370) / 25.0))
    s = cov[:, 30:370].sum(axis=0)
    # curvature makes it slightly off the straight-line value W sqrt(1 + slope^2)
    assert np.allclose(s, W * np.sqrt(1 + slope ** 2), rtol=0.05)


@pytest.mark.parametrize("slope", [-100.0, -25.0, 5.0, 25.0, 100.0])
def test_steep_stroke_is_the_pen_width_across(slope):
    # a QRS flank sampled at 500 Hz (0.39 px apart): each row crosses the stroke over W / cos(angle)
    # px, as matplotlib draws it (the candidate points alone left it up to 10 % narrow)
    x = np.arange(0.0, 20.0, 0.3937) + 100.3
    y = (200.0 if slope > 0 else 2300.0) + slope * (x - 100.3)
    i0, _, band = stroke_band(np.stack([x, y], 1), W, (2600, 200))
    mid = band.shape[0] // 2
    s = band[mid - 20:mid + 20].sum(axis=1)
    want = W * np.sqrt(1.0 + 1.0 / slope ** 2)
    assert abs(s.mean() - want) < 0.02, (s.mean(), want)
    assert np.all(np.abs(s - want) <= 1 / 8 + 1e-3)  # x quantised to 1/8 px sub-columns
