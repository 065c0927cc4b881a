"""Stage 2's grid suppression: a dark-grey grid on a rectified page turns to paper, the trace stays ink."""
import numpy as np

from ecgdigit.config import PAGE
from ecgdigit.stages.grid_suppression import grid_shade, suppress_grid
from ecgdigit.stages.ink import ink_from_ratio, paper_ratio

SCALE = 0.5


def _page(minor: float, major: float, trace_grey: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A rectified page (scale 0.5) whose grid lines darken the paper by a factor (minor, major: as
    a black-and-white scan's grey grid; crossings darker still), and one wavy trace. Returns the
    page, the trace mask and the grid mask."""
    h, w = int(PAGE.height * SCALE), int(PAGE.width * SCALE)
    step = PAGE.grid_minor_px * SCALE
    col, row = np.ones(w), np.ones(h)
    for k in range(int(w / step) + 1):
        col[min(w - 1, int(round(k * step)))] = major if k % 5 == 0 else minor
    for k in range(int(h / step) + 1):
        row[max(0, int(round(h - 1 - k * step)))] = major if k % 5 == 0 else minor
    img = 235.0 * row[:, None] * col[None, :]
    grid = (row[:, None] * col[None, :]) < 1.0
    trace = np.zeros((h, w), bool)
    x = np.arange(w)
    y = (PAGE.baselines_y[1] * SCALE + 12 * np.sin(x / 37.0)).astype(int)
    for dy in (-1, 0, 1):
        trace[y + dy, x] = True
    img[trace] = trace_grey
    rgb = np.repeat(np.round(img).astype(np.uint8)[:, :, None], 3, axis=2)
    return rgb, trace, grid & ~trace


def test_a_dark_grey_grid_becomes_paper_and_the_trace_stays_ink():
    rgb, trace, grid = _page(minor=0.8, major=0.6)
    before = ink_from_ratio(paper_ratio(rgb))
    after = ink_from_ratio(suppress_grid(paper_ratio(rgb), SCALE))
    assert before[grid].mean() > 0.05  # the brightest channel keeps a grey grid
    assert after[grid].mean() < 0.02 and np.percentile(after[grid], 99) < 0.2
    assert after[trace].mean() > 0.9


def test_paper_without_a_visible_grid_is_left_alone():
    rgb, trace, _ = _page(minor=1.0, major=1.0)  # a red grid vanishes in the brightest channel: this is what is left
    ratio = paper_ratio(rgb)
    np.testing.assert_allclose(grid_shade(ratio, SCALE), 1.0, atol=0.02)
    np.testing.assert_allclose(ink_from_ratio(suppress_grid(ratio, SCALE))[trace], ink_from_ratio(ratio)[trace], atol=0.05)


def test_dashed_major_lines_become_paper_but_a_flat_trace_on_a_baseline_line_stays():
    """A scan's 5 mm lines printed as dashes (half dark, half gaps): the 75th percentile sees the gaps.
    On the known 5 mm rows away from the baselines the dashes go; a flat trace along row 2's
    baseline, which lies on a 5 mm line, stays ink."""
    h, w = int(PAGE.height * SCALE), int(PAGE.width * SCALE)
    img = np.full((h, w), 235.0)
    step = PAGE.grid_major_px * SCALE
    dashes = np.zeros((h, w), bool)
    dash = (np.arange(w) // 12) % 2 == 0
    for k in range(int(h / step) + 1):
        y = int(round(h - k * step))
        if 0 <= y < h:
            dashes[y, dash] = True
    img[dashes] = 130.0
    trace = np.zeros((h, w), bool)
    y1 = int(round(PAGE.baselines_y[1] * SCALE))
    trace[y1 - 1:y1 + 2, :] = True  # flat for 10 s on the line its baseline lies on
    img[trace] = 60.0
    rgb = np.repeat(np.round(img).astype(np.uint8)[:, :, None], 3, axis=2)
    after = ink_from_ratio(suppress_grid(paper_ratio(rgb), SCALE))
    far = dashes & ~trace
    for b in PAGE.baselines_y:  # dashes near a baseline are left as they are
        far[max(0, int(b * SCALE) - 8):int(b * SCALE) + 8] = False
    assert far.sum() > 1000
    assert after[far].mean() < 0.1, after[far].mean()
    assert after[trace].mean() > 0.9
