"""Stage 1 on a scan whose 1 mm grid lines are as dark as its 5 mm ones: the map laid on the minor lattice."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from ecgdigit.config import PAGE
from ecgdigit.geometry.coordinate_map import CoordinateMap
from ecgdigit.geometry.grid_map import invert_points
from ecgdigit.geometry.minor_lattice import refine_on_minor_lattice
from ecgdigit.stages.stage1_rectify import rectify


def _coverage(n, centres, width):
    k = np.arange(n)[:, None]
    c = np.asarray(centres)[None, :]
    ov = np.minimum(k + 0.5, c + width / 2) - np.maximum(k - 0.5, c - width / 2)
    return np.clip(np.clip(ov, 0, None).sum(axis=1), 0, 1)


def _dark_grid_page(seed: int = 0) -> np.ndarray:
    """The real scans' look at scale 1: grey paper, minor and major lines the same dark grey, a trace."""
    h, w = PAGE.shape
    xs, ys = PAGE.grid_lines(False)
    cx = _coverage(w, xs, 1.6)[None, :]
    cy = _coverage(h, ys, 1.6)[:, None]
    a = 1 - (1 - cx) * (1 - cy)
    img = 225.0 * (1 - a) + 140.0 * a
    img = np.repeat(img[..., None], 3, axis=2).astype(np.uint8)
    rng = np.random.default_rng(seed)
    for base in PAGE.baselines_y:
        x = np.linspace(PAGE.signal_x0, PAGE.signal_x1, 1600)
        y = base - 60 * np.sin(x / 23.0 + rng.uniform(0, 6)) * (rng.random(1600) > 0.93) - 8 * np.sin(x / 70)
        pts = np.round(np.stack([x, y], 1) * 16).astype(np.int32)
        cv2.polylines(img, [pts], False, (30, 30, 30), 2, cv2.LINE_AA, shift=4)
    return img


def _scan_warp(p):
    """page -> scan: 0.4 % short in x (the scans' drift), turned 0.25 deg, bent a little."""
    p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    c = np.array([PAGE.width / 2, PAGE.height / 2])
    d = p - c
    th = np.radians(0.25)
    q = c + (d * [0.996, 1.0]) @ np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]])
    q[:, 0] += 1.5 * (d[:, 1] / c[1]) ** 2
    return q


@pytest.fixture(scope="module")
def scan():
    page = _dark_grid_page()
    fwd = CoordinateMap.from_function(_scan_warp, PAGE.shape, PAGE.shape, step=16)
    back = CoordinateMap.from_function(lambda p: invert_points(fwd, p), PAGE.shape, PAGE.shape, step=8)
    return back.remap(page, interpolation=cv2.INTER_CUBIC)


def _map_error(m: CoordinateMap, shift=(0.0, 0.0)) -> np.ndarray:
    """|map - truth| at points over the page; shift: page px the map's content was moved by (layout
    registration settles whole major squares by the pulses, and this page has none)."""
    rng = np.random.default_rng(3)
    probe = rng.uniform([0.1 * PAGE.width, 0.2 * PAGE.height], [0.9 * PAGE.width, 0.9 * PAGE.height], (2000, 2))
    return np.linalg.norm(m(probe) - _scan_warp(probe + np.asarray(shift)), axis=1)


def test_minor_lattice_recovers_a_drift_wider_than_a_step(scan):
    """The identity map is up to 5 px off (more than half a 1 mm step): the offsets wrap, and the
    fitted drift still puts every line back."""
    ident = CoordinateMap.identity(PAGE.shape, step=8)  # a dense map's lattice: more points than cv2.remap's 32767
    assert _map_error(ident).max() > 4.0
    fit = refine_on_minor_lattice(ident, scan)
    assert fit.ok and min(fit.coherence) > 0.8
    err = _map_error(fit.map)
    assert np.median(err) < 0.25 and err.max() < 0.8, (np.median(err), err.max())


def test_minor_lattice_refuses_a_page_without_grid():
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 255, (*PAGE.shape, 3), dtype=np.uint8)
    ident = CoordinateMap.identity(PAGE.shape, step=16)
    for page in (noise, np.full((*PAGE.shape, 3), 230, np.uint8)):
        fit = refine_on_minor_lattice(ident, page)
        assert not fit.ok
        assert fit.map is ident


def test_stage1_lays_a_failed_grid_fit_on_the_minor_lines(scan):
    """Crossings of 5 mm lines cannot be told from 1 mm ones here: the major-grid fit fails, and the
    homography is refined on the minor lattice instead of standing as it is (the old behaviour)."""
    res = rectify(scan, np.eye(3), PAGE)
    assert res.method == "minor grid" and res.found_grid
    err = _map_error(res.page_to_image, res.layout_shift_px)
    assert np.median(err) < 0.3, np.median(err)
