import time

import numpy as np
import pytest

from ecgdigit.config import LAYOUT_ROWS, PAGE, SHORT_LEAD_S
from ecgdigit.synth.render import (RenderStyle, grid_image, main, oracle_row_curves, render_page,
                                   trace_masks)
from ecgdigit.synth.signals import simulate_record
from ecgdigit.synth.truth import EcgRecord

PLAIN = RenderStyle(trace_grey=0, show_header=False)


def _step_record(fs=500):
    """Every lead 0 mV, except 1 mV over [0.8, 1.6) s of each 2.5 s column."""
    n = 10 * fs
    t = np.arange(n) / fs
    v = ((t % SHORT_LEAD_S) >= 0.8) & ((t % SHORT_LEAD_S) < 1.6)
    return EcgRecord("step", fs, np.repeat(v.astype(np.float32)[:, None], 12, axis=1))


def _darkness(page):
    return 255.0 - page.image[:, :, 0].astype(np.float64)  # red channel: the grid vanishes


def _centroid(dark, x, y_guess, half=12):
    col = dark[int(y_guess) - half:int(y_guess) + half + 1, int(round(x))]
    ys = np.arange(int(y_guess) - half, int(y_guess) + half + 1)
    w = np.where(col > 20, col, 0)
    return np.nan if w.sum() == 0 else float((w * ys).sum() / w.sum())


def test_image_size_dtype_and_traces():
    rec = simulate_record(np.random.default_rng(0), 500)
    page = render_page(rec, np.random.default_rng(1))
    assert page.image.shape == (1700, 2200, 3) and page.image.dtype == np.uint8
    assert len(page.traces) == 4
    for tr in page.traces[:3]:
        assert tr.shape == (4 * int(2.5 * 500), 2) and tr.dtype == np.float32
    assert page.traces[3].shape == (5000, 2)
    assert page.traces[0][0, 0] == pytest.approx(PAGE.signal_x0, abs=1e-3)
    assert page.traces[3][-1, 0] == pytest.approx(PAGE.time_to_x(9.998), abs=1e-2)


def test_trace_pixels_at_layout_positions():
    rec = _step_record()
    page = render_page(rec, style=PLAIN)
    dark = _darkness(page)
    for r in range(4):
        base = PAGE.baselines_y[r]
        for t, mv in ((0.4, 0.0), (1.2, 1.0), (2.0, 0.0), (5.0 + 1.2, 1.0), (7.5 + 0.4, 0.0)):
            y_exp = PAGE.mv_to_y(r, mv)
            y = _centroid(dark, PAGE.time_to_x(t), y_exp)
            assert abs(y - y_exp) < 1.0, (r, t, y, y_exp)
        # 1 mV is 78.74 px above the baseline
        up = _centroid(dark, PAGE.time_to_x(1.2), base - 78.74)
        assert abs((base - up) - 78.74) < 1.0


def test_grid_major_lines_red_at_predicted_positions():
    grid = grid_image(PAGE)
    assert not grid.flags.writeable
    xs, ys = PAGE.grid_lines(major=True)
    y_free = int(round(ys[-3] + PAGE.grid_major_px / 2)) + 2  # between horizontal lines
    for x in xs[1:-1]:
        px = grid[y_free, int(round(x))]
        assert px[0] == 255 and px[1] < 90 and px[2] < 90, (x, px)
    x_free = int(round(xs[3] + 3.5))  # between a minor and a major vertical line, off minor lines
    for y in ys[1:-1]:
        px = grid[int(round(y)), x_free]
        assert px[0] == 255 and px[1] < 90, (y, px)
    # the spaces between lines stay white; minor lines are the light pink
    minor_x = xs[5] + PAGE.grid_minor_px
    assert tuple(grid[y_free, int(round(minor_x))]) != (255, 255, 255)
    assert np.all(grid[y_free, int(round(xs[5] + PAGE.grid_minor_px / 2))] == 255)
    # anchored at the bottom-left corner
    assert ys[0] == PAGE.height and xs[0] == 0


def test_calibration_pulse_and_ticks():
    rec = EcgRecord("zero", 500, np.zeros((5000, 12), np.float32))
    page = render_page(rec, style=PLAIN)
    dark = _darkness(page)
    for r in range(4):
        base = PAGE.baselines_y[r]
        xm = (PAGE.calib_x0 + PAGE.signal_x0) / 2
        top = _centroid(dark, xm, base - PAGE.calib_mv * PAGE.px_per_mv)
        assert abs(top - (base - 78.74)) < 1.0
        # the rising edge: dark all the way from the baseline to 1 mV
        xr = PAGE.calib_x0 + 1.5 * PAGE.px_per_s / 500
        col = dark[int(base - 70):int(base - 8), int(round(xr))]
        assert col.min() > 60
        tick_rows = dark[int(base - 0.3 * 78.74):int(base - 10), :]
        for c in (1, 2, 3):
            xt = int(round(PAGE.signal_x0 + c * PAGE.column_width))
            has_tick = tick_rows[:, xt].min() > 100
            assert has_tick == (r < 3), (r, c)
        # nothing dark above the baseline elsewhere (the trace is flat at 0)
        assert tick_rows[:, int(PAGE.time_to_x(1.0))].max() < 5


def test_real_stroke_widths_match_the_printed_pens():
    """matplotlib's widths: trace 0.75 pt = 2.08 px, pulse 1.5x, tick 3x (cv2 AA lines drew 3.4 px)."""
    rec = EcgRecord("zero", 500, np.zeros((5000, 12), np.float32))
    page = render_page(rec, style=PLAIN)
    cov = _darkness(page) / 255.0
    trace_w = PAGE.trace_line_pt * PAGE.px_per_pt
    for r in range(3):
        base = int(round(PAGE.baselines_y[r]))
        xs = [int(PAGE.time_to_x(t)) for t in (1.0, 3.7, 6.2, 8.8)]
        widths = cov[base - 6:base + 7, xs].sum(axis=0)
        assert np.allclose(widths, trace_w, rtol=0.03), widths
        top = int(round(PAGE.mv_to_y(r, PAGE.calib_mv)))
        pulse_w = cov[top - 6:top + 7, int(round((PAGE.calib_x0 + PAGE.signal_x0) / 2))].sum()
        assert pulse_w == pytest.approx(1.5 * trace_w, rel=0.03)
        xt = int(round(PAGE.signal_x0 + PAGE.column_width))
        tick_w = cov[base - 15, xt - 8:xt + 9].sum()  # a row crossing the tick above the trace
        assert tick_w == pytest.approx(3.0 * trace_w, rel=0.03)


def test_rhythm_strip_is_lead_ii_and_rows_follow_layout():
    rec = simulate_record(np.random.default_rng(4), 256)
    page = render_page(rec, np.random.default_rng(0))
    off = page.stroke_offset_px  # matplotlib-style pages draw strokes half a pixel up-left
    mv = (PAGE.baselines_y[3] - (page.traces[3][:, 1].astype(np.float64) - off)) / PAGE.px_per_mv
    assert np.max(np.abs(mv - rec.lead("II"))) < 1e-3
    n = int(2.5 * 256)
    for r, leads in enumerate(LAYOUT_ROWS[:3]):
        mv = (PAGE.baselines_y[r] - (page.traces[r][:, 1].astype(np.float64) - off)) / PAGE.px_per_mv
        for c, lead in enumerate(leads):
            assert np.max(np.abs(mv[c * n:(c + 1) * n] - rec.lead(lead)[c * n:(c + 1) * n])) < 1e-3
            t = (page.traces[r][c * n:(c + 1) * n, 0] - off - PAGE.signal_x0) / PAGE.px_per_s
            assert np.allclose(t, c * 2.5 + np.arange(n) / 256, atol=1e-4)


def test_label_boxes_inside_page_and_below_baselines():
    rec = simulate_record(np.random.default_rng(5), 500)
    page = render_page(rec, np.random.default_rng(0))
    assert len(page.label_boxes) == 13
    dark = 255.0 - page.image.mean(axis=2)
    for key, (x0, y0, x1, y1) in page.label_boxes.items():
        r, c, lead = key.split("_")
        r, c = int(r), int(c)
        assert LAYOUT_ROWS[r][c] == lead
        assert 0 <= x0 < x1 <= PAGE.width and 0 <= y0 < y1 <= PAGE.height
        assert y0 > PAGE.baselines_y[r]
        off = PAGE.rhythm_label_offset_mv if r == 3 else PAGE.label_offset_mv
        assert abs(y1 - PAGE.mv_to_y(r, -off)) < 3  # text baseline at the offset (no descenders)
        assert abs(x0 - (PAGE.signal_x0 + c * PAGE.column_width)) < 6
        ink = dark[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))]
        assert ink.max() > 150


def test_round_trip_reading_flat_segments():
    rec = simulate_record(np.random.default_rng(7), 500, emg_mv=0.0, powerline_mv=0.0, wander_mv=0.0,
                          heart_rate=60.0)
    page = render_page(rec, np.random.default_rng(0), style=PLAIN)
    dark = _darkness(page)
    errs = []
    for r, tr in enumerate(page.traces):
        x, y = tr[:, 0].astype(np.float64), tr[:, 1].astype(np.float64)
        for xc in np.arange(int(PAGE.signal_x0) + 10, int(PAGE.signal_x1) - 10, 3):
            # skip column boundaries (ticks, jumps) and the label area
            if np.min(np.abs(xc - (PAGE.signal_x0 + np.arange(1, 4) * PAGE.column_width))) < 10:
                continue
            if any(b[0] - 3 <= xc <= b[2] + 3 for b in page.label_boxes.values()):
                continue
            near = np.abs(x - xc) < 6
            if np.ptp(y[near]) > 0.6:
                continue  # not flat
            y_true = float(np.interp(xc, x, y))
            # other rows' traces must be far away for a clean read
            if any(np.min(np.abs(o[np.abs(o[:, 0] - xc) < 6, 1] - y_true)) < 20
                   for k, o in enumerate(page.traces) if k != r):
                continue
            y_read = _centroid(dark, xc, y_true, half=8)
            errs.append((y_read - y_true) / PAGE.px_per_mv)
    errs = np.abs(np.array(errs))
    assert len(errs) > 500
    print(f"round trip: {len(errs)} columns, mean {np.nanmean(errs):.4f} mV, max {np.nanmax(errs):.4f} mV")
    assert np.nanmax(errs) < 0.02, np.nanmax(errs)


def test_trace_masks_and_oracle_curves():
    rec = simulate_record(np.random.default_rng(8), 500)
    page = render_page(rec, np.random.default_rng(0))
    for scale in (0.5, 2.0):
        m = trace_masks(page, scale=scale)
        assert m.shape == (4, int(1700 * scale), int(2200 * scale)) and m.dtype == np.uint8
        curves = oracle_row_curves(page, scale)
        assert curves.shape == (4, int(2200 * scale))
        for r in range(4):
            pts = page.traces[r][::50] * scale
            vals = m[r, np.round(pts[:, 1]).astype(int).clip(0, m.shape[1] - 1),
                     np.round(pts[:, 0]).astype(int)]
            assert np.all(vals > 0)
            # each mask holds its own row only
            other = page.traces[(r + 1) % 4]
            far = np.abs(other[:, 1] - np.interp(other[:, 0], page.traces[r][:, 0], page.traces[r][:, 1])) > 30
            po = other[far][::50] * scale
            assert np.mean(m[r, np.round(po[:, 1]).astype(int), np.round(po[:, 0]).astype(int)] > 0) < 0.02
            valid = ~np.isnan(curves[r])
            j = np.flatnonzero(valid)
            assert j.size > 0.8 * (PAGE.signal_x1 - PAGE.signal_x0) * scale
            assert np.allclose(curves[r, j], np.interp(j / scale, page.traces[r][:, 0], page.traces[r][:, 1]) * scale,
                               atol=1e-2)
    assert trace_masks(page, 1.0, width_px=5).sum() > trace_masks(page, 1.0).sum()


def test_bad_record_is_rejected():
    with pytest.raises(ValueError, match="short"):
        render_page(EcgRecord("short", 500, np.zeros((100, 12), np.float32)))
    bad = np.zeros((5000, 12), np.float32)
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        render_page(EcgRecord("nan", 500, bad))


def test_non_integer_short_window_fs():
    rec = simulate_record(np.random.default_rng(9), 1025)
    page = render_page(rec, np.random.default_rng(0))
    assert page.traces[0].shape[0] == 4 * int(2.5 * 1025)
    assert page.traces[3].shape[0] == 10250
    assert np.all(np.diff(page.traces[0][:, 0]) > 0)


def test_speed_and_cli(tmp_path):
    rng = np.random.default_rng(0)
    rec = simulate_record(rng, 500)
    render_page(rec, rng)
    t0 = time.perf_counter()
    for _ in range(5):
        render_page(rec, rng)
    per = (time.perf_counter() - t0) / 5
    assert per < 0.25, f"{per * 1000:.0f} ms per page"
    out = tmp_path / "page.png"
    main(["--out", str(out), "--seed", "3"])
    assert out.stat().st_size > 10_000


def test_leads_are_drawn_apart_unless_columns_are_joined():
    """ECG-image-kit plots each lead on its own: nothing joins lead I's end (+1.5 mV) to aVR's start
    (-1.5 mV); the joined style draws that jump. Probed 1 mV above the baseline, beyond the tick."""
    fs = 500
    sig = np.zeros((10 * fs, 12), np.float32)
    sig[:, 0], sig[:, 3] = 1.5, -1.5  # I (row 0, column 0), aVR (row 0, column 1)
    rec = EcgRecord("jump", fs, sig)
    x_b = PAGE.time_to_x(SHORT_LEAD_S) - 0.5 * PAGE.px_per_s / fs  # between the two leads' samples
    y = PAGE.mv_to_y(0, 1.0)
    assert RenderStyle().connect_columns is False
    apart = _darkness(render_page(rec, style=PLAIN))
    joined = _darkness(render_page(rec, style=RenderStyle(trace_grey=0, show_header=False, connect_columns=True)))
    probe = (int(round(y)), int(round(x_b)))
    assert apart[probe] < 10 and joined[probe] > 200
