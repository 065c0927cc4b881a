"""Geometry: page homography, quarter turns, dense grid map from crossings, classical grid finder."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from ecgdigit.config import PAGE
from ecgdigit.geometry.coordinate_map import CoordinateMap, apply_homography
from ecgdigit.geometry.grid_detect import detect_grid_crossings, grid_crossings_truth
from ecgdigit.geometry.grid_map import (compose, dense_map_from_crossings, flat_page_homography, grid_is_pixel_snapped,
                                        index_crossings, invert_points,
                                        major_lattice)
from ecgdigit.geometry.homography import fit_page_homography, identity_page_homography
from ecgdigit.geometry.orientation import (rotate_image, rotate_map_source, rotate_points, rotated_size,
                                           undo_orientation, unrotate_points)

PAGE_SIZE = PAGE.shape
IMG_SIZE = (3000, 4000)
H_TRUE = np.array([[1.55, 0.08, 300.0], [-0.05, 1.5, 250.0], [2e-5, 1.5e-5, 1.0]])


def photo_warp(p: np.ndarray) -> np.ndarray:
    """page -> image: perspective, then a cylindrical curl of the right part, then barrel distortion."""
    p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    q = apply_homography(H_TRUE, p)
    t = np.clip(p[:, 0] - 1600.0, 0, None) / 600.0
    q = q + np.stack([-40 * t ** 2, 60 * t ** 2 * (p[:, 1] - 850.0) / 850.0], axis=1)
    c = np.array([2000.0, 1500.0])
    r2 = (((q - c) / 2000.0) ** 2).sum(axis=1, keepdims=True)
    return c + (q - c) * (1 + 0.04 * r2)


# ---------------------------------------------------------------- orientation
@pytest.mark.parametrize("k", [0, 1, 2, 3, -1, 5])
def test_rotate_points_follow_rotate_image(k):
    rng = np.random.default_rng(k + 10)
    img = np.zeros((7, 11), np.uint8)
    flat = rng.choice(7 * 11, 5, replace=False)
    pts = np.stack([flat % 11, flat // 11], axis=1)
    for n, (x, y) in enumerate(pts):
        img[y, x] = n + 1
    rot = rotate_image(img, k)
    assert rot.shape == rotated_size(img.shape, k)
    moved = rotate_points(pts, k, img.shape)
    for n, (x, y) in enumerate(np.rint(moved).astype(int)):
        assert rot[y, x] == n + 1
    back = unrotate_points(moved, k, img.shape)
    np.testing.assert_allclose(back, pts, atol=1e-9)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_undo_orientation_of_a_page_map(k):
    rng = np.random.default_rng(3)
    upright = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    H = np.array([[0.9, 0.05, 4.0], [-0.04, 0.95, 3.0], [0, 0, 1]])
    m = CoordinateMap.from_homography(H, (50, 70), upright.shape[:2], step=4)
    turned = rotate_image(upright, k)
    m_turned = rotate_map_source(m, k)  # page -> turned image
    assert m_turned.src_size == turned.shape[:2]
    a = m.remap(upright).astype(int)
    b = m_turned.remap(turned).astype(int)
    assert np.abs(a - b).max() <= 1  # the same page, up to rounding
    np.testing.assert_allclose(undo_orientation(m_turned, k).src_xy, m.src_xy, atol=1e-4)


# ---------------------------------------------------------------- homography
def _page_points(n, rng):
    return rng.uniform([50, 50], [PAGE.width - 50, PAGE.height - 50], (n, 2))


def test_fit_page_homography_recovers_h_with_outliers():
    rng = np.random.default_rng(0)
    page = _page_points(60, rng)
    img = apply_homography(H_TRUE, page) + rng.normal(0, 0.5, (60, 2))
    img[:8] = rng.uniform([0, 0], [4000, 3000], (8, 2))  # outliers
    fit = fit_page_homography(img, page, ransac_px=6, image_size=IMG_SIZE)
    assert fit.ok, fit.reason
    assert not fit.inliers[:8].any() and fit.inliers[8:].mean() > 0.9
    assert fit.reprojection_rmse_px < 1.5
    probe = _page_points(200, rng)
    err = np.linalg.norm(apply_homography(fit.H, probe) - apply_homography(H_TRUE, probe), axis=1)
    assert err.max() < 1.5


def test_fit_page_homography_weights_and_map():
    rng = np.random.default_rng(1)
    page = _page_points(40, rng)
    img = apply_homography(H_TRUE, page)
    img[:5] += 4.0  # small, below the RANSAC threshold: only the weights can discount them
    fit = fit_page_homography(img, page, weights=np.r_[np.full(5, 1e-4), np.ones(35)], ransac_px=10)
    assert fit.ok, fit.reason
    err = np.linalg.norm(apply_homography(fit.H, page[5:]) - img[5:], axis=1)
    assert err.max() < 0.05
    m = fit.page_to_image_map(IMG_SIZE)
    assert m.dst_size == PAGE_SIZE and m.src_size == IMG_SIZE
    np.testing.assert_allclose(m(page[5:]), img[5:], atol=0.1)


def test_fit_page_homography_rejects_implausible():
    rng = np.random.default_rng(2)
    page = _page_points(30, rng)
    mirror = np.array([[-1.5, 0, 3800], [0, 1.5, 200], [0, 0, 1]])
    bad = fit_page_homography(apply_homography(mirror, page), page, image_size=IMG_SIZE)
    assert not bad.ok and "mirror" in bad.reason
    tiny = np.array([[0.05, 0, 10], [0, 0.05, 10], [0, 0, 1]])
    bad = fit_page_homography(apply_homography(tiny, page), page, image_size=IMG_SIZE)
    assert not bad.ok and "area" in bad.reason
    strong = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.2e-3, 0, 1]])  # far side 3.6x shorter
    bad = fit_page_homography(apply_homography(strong, page), page)
    assert not bad.ok and "perspective" in bad.reason
    few = fit_page_homography(apply_homography(H_TRUE, page[:3]), page[:3])
    assert not few.ok and "usable" in few.reason
    with pytest.raises(ValueError, match="page points"):
        fit_page_homography(page, page[:5])


def test_identity_page_homography_maps_page_onto_image():
    fit = identity_page_homography((1000, 1300))
    corners = np.array([[-0.5, -0.5], [PAGE.width - 0.5, PAGE.height - 0.5]])
    np.testing.assert_allclose(apply_homography(fit.H, corners), [[-0.5, -0.5], [1299.5, 999.5]], atol=1e-9)
    assert fit.fallback


# ---------------------------------------------------------------- grid map
def _noisy_crossings(rng, drop=0.2, outliers=0.03, noise=0.3):
    pos, ij = major_lattice()
    keep = rng.random(len(pos)) > drop
    img = photo_warp(pos[keep]) + rng.normal(0, noise, (keep.sum(), 2))
    out = rng.uniform([0, 0], [IMG_SIZE[1], IMG_SIZE[0]], (int(outliers * len(pos)), 2))
    return pos[keep], ij[keep], img, out


def test_major_lattice_is_anchored_bottom_left():
    pos, ij = major_lattice()
    assert ij[:, 0].min() == 0
    # the bottom line (j = 0) sits on the page's edge, outside its pixels: j = 1 is the first row
    assert (ij[:, 1] >= 1).all() and pos[:, 1].max() <= PAGE.height - 1
    x0 = pos[(ij[:, 0] == 0) & (ij[:, 1] == 1)][0]
    np.testing.assert_allclose(x0, [0.0, PAGE.height - PAGE.grid_major_px])
    half, _ = major_lattice((PAGE.height // 2, PAGE.width // 2))
    assert np.isclose(np.diff(np.unique(half[:, 0]))[0], PAGE.grid_major_px / 2)


def test_invert_points_and_compose():
    m = CoordinateMap.from_function(photo_warp, PAGE_SIZE, IMG_SIZE, step=16)
    rng = np.random.default_rng(4)
    p = rng.uniform([0, 0], [PAGE.width - 1, PAGE.height - 1], (500, 2))
    q = invert_points(m, m(p))
    np.testing.assert_allclose(q, p, atol=0.05)
    assert np.isnan(invert_points(m, np.array([[-5000.0, -5000.0]]))).all()
    shift = CoordinateMap.from_function(lambda x: x + [7.0, -3.0], IMG_SIZE, (3100, 4100), step=32)
    both = compose(m, shift)
    np.testing.assert_allclose(both(p), m(p) + [7.0, -3.0], atol=0.02)
    with pytest.raises(ValueError, match="source frame"):
        compose(shift, m)


def test_index_crossings_with_rough_homography():
    rng = np.random.default_rng(5)
    page, ij, img, out = _noisy_crossings(rng)
    hfit = fit_page_homography(img, page, ransac_px=30, image_size=IMG_SIZE)
    assert hfit.ok, hfit.reason
    approx = hfit.page_to_image_map(IMG_SIZE)
    err = np.linalg.norm(approx(page) - photo_warp(page), axis=1)
    assert err.max() > 0.8 * PAGE.grid_major_px  # the approximation is off by about a step somewhere
    pts = np.concatenate([img, out])
    page_pts, image_pts, nodes = index_crossings(pts, approx, return_index=True)
    truth = {tuple(p): tuple(n) for p, n in zip(np.round(img, 6), ij)}
    is_true = np.array([tuple(p) in truth for p in np.round(image_pts, 6)])
    wrong = [tuple(n) != truth[tuple(p)] for p, n, t in zip(np.round(image_pts, 6), nodes, is_true) if t]
    assert not any(wrong)
    assert is_true.sum() >= 0.98 * len(img)
    assert len(np.unique(nodes, axis=0)) == len(nodes)  # no node claimed twice
    # a homography as the approximation works too
    p2, _ = index_crossings(img, hfit.H)
    assert len(p2) >= 0.98 * len(img)


@pytest.mark.parametrize("bridge", [True, False])
def test_indexing_reaches_across_a_gap(bridge, monkeypatch):
    """A band without crossings (a mould colony, a faint stretch of grid) stops step-by-step growth;
    a projective fit of what was indexed carries it across, onto the right nodes."""
    import ecgdigit.geometry.grid_map as gm

    if not bridge:
        monkeypatch.setattr(gm, "BRIDGE_ROUNDS", 0)
    rng = np.random.default_rng(12)
    pos, ij = major_lattice()
    keep = (pos[:, 0] < 800) | (pos[:, 0] > 1000)  # five squares wide, left of the page's centre
    pos, ij = pos[keep], ij[keep]
    img = apply_homography(H_TRUE, pos) + rng.normal(0, 0.2, (len(pos), 2))
    approx = CoordinateMap.from_homography(H_TRUE @ np.diag([1.002, 1.0, 1.0]), PAGE_SIZE, IMG_SIZE, step=16)
    page_pts, image_pts, nodes = index_crossings(img, approx, return_index=True)
    truth = {tuple(p): tuple(n) for p, n in zip(np.round(img, 6), ij)}
    assert all(truth[tuple(p)] == tuple(n) for p, n in zip(np.round(image_pts, 6), nodes))  # never a wrong node
    far_side = (pos[:, 0] < 800).sum()
    indexed_far = (page_pts[:, 0] < 800).sum()
    if bridge:
        assert indexed_far >= 0.98 * far_side
    else:
        assert indexed_far == 0


@pytest.mark.parametrize("seed", [6, 7])
def test_dense_map_reproduces_warp(seed):
    rng = np.random.default_rng(seed)
    page, _, img, out = _noisy_crossings(rng)
    hfit = fit_page_homography(img, page, ransac_px=30, image_size=IMG_SIZE)
    approx = hfit.page_to_image_map(IMG_SIZE)
    page_pts, image_pts = index_crossings(np.concatenate([img, out]), approx)
    fit = dense_map_from_crossings(page_pts, image_pts, approx, step=8)
    assert fit.ok, fit.reason
    assert fit.map.dst_size == PAGE_SIZE and fit.map.step == 8
    assert fit.n_used >= 0.95 * len(img)
    # random page points inside the crossings' hull
    lo, hi = page.min(0), page.max(0)
    probe = rng.uniform(lo + PAGE.grid_major_px, hi - PAGE.grid_major_px, (3000, 2))
    err = np.linalg.norm(fit.map(probe) - photo_warp(probe), axis=1)
    hom_err = np.linalg.norm(approx(probe) - photo_warp(probe), axis=1)
    assert err.mean() < 0.5 and err.max() < 1.5, (err.mean(), err.max())
    assert hom_err.mean() > 5 * err.mean()  # the map undoes what a homography cannot


@pytest.mark.parametrize("smoothing, should_average", [(None, True), (1.0, False)])
def test_dense_map_averages_crossing_noise(smoothing, should_average):
    """A flat scan's map is one homography: the spline must average the crossings' localisation
    noise (0.3 px here) rather than follow it; at high SNR a 0.2 px wobble costs dB (measured)."""
    rng = np.random.default_rng(11)
    pos, _ = major_lattice()
    img = apply_homography(H_TRUE, pos) + rng.normal(0, 0.3, (len(pos), 2))
    approx = CoordinateMap.from_homography(H_TRUE @ np.diag([1.001, 0.999, 1.0]), PAGE_SIZE, IMG_SIZE, step=16)
    kw = {} if smoothing is None else {"smoothing": smoothing}
    fit = dense_map_from_crossings(pos, img, approx, step=8, **kw)
    assert fit.ok, fit.reason
    probe = rng.uniform([PAGE.signal_x0, 300], [PAGE.signal_x1, 1600], (3000, 2))
    err = np.linalg.norm(fit.map(probe) - apply_homography(H_TRUE, probe), axis=1)
    assert (err.mean() < 0.1) == should_average, err.mean()


def test_dense_map_falls_back_without_crossings():
    fb = CoordinateMap.from_homography(H_TRUE, PAGE_SIZE, IMG_SIZE, step=16)
    page = np.array([[100.0, 100.0], [200.0, 100.0], [100.0, 200.0]])
    fit = dense_map_from_crossings(page, apply_homography(H_TRUE, page), fb, step=8)
    assert not fit.ok and "crossings" in fit.reason
    probe = np.array([[500.0, 600.0], [1500.0, 1200.0]])
    np.testing.assert_allclose(fit.map(probe), fb(probe), atol=0.05)


# ---------------------------------------------------------------- classical grid finder
def _coverage(n, centres, width):
    """Area coverage of pixels [k-0.5, k+0.5] by bands of `width` centred at `centres`: exact AA lines."""
    k = np.arange(n)[:, None]
    c = np.asarray(centres)[None, :]
    ov = np.minimum(k + 0.5, c + width / 2) - np.maximum(k - 0.5, c - width / 2)
    return np.clip(np.clip(ov, 0, None).sum(axis=1), 0, 1)


def _draw_page(scale, grey=False, seed=0):
    h, w = PAGE.shape_at(scale)
    lw = PAGE.grid_line_pt * PAGE.px_per_pt * scale
    img = np.full((h, w, 3), 255.0)
    for major in (False, True):
        xs, ys = PAGE.grid_lines(major)
        cx = _coverage(w, np.array(xs) * scale, lw)[None, :]
        cy = _coverage(h, np.array(ys) * scale, lw)[:, None]
        a = 1 - (1 - cx) * (1 - cy)
        col = np.array(PAGE.grid_major_rgb if major else PAGE.grid_minor_rgb, float)
        if grey:
            col = np.full(3, col @ [0.299, 0.587, 0.114])
        img = img * (1 - a[..., None]) + col * a[..., None]
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(seed)
    for base in PAGE.baselines_y:  # ECG-like traces with spikes along each row
        x = np.linspace(PAGE.signal_x0, PAGE.signal_x1, 800)
        y = base - 40 * np.sin(x / 23.0 + rng.uniform(0, 6)) * (rng.random(800) > 0.9) - 8 * np.sin(x / 70)
        pts = np.round(np.stack([x, y], 1) * scale * 16).astype(np.int32)
        cv2.polylines(img, [pts], False, (20, 20, 20), 1, cv2.LINE_AA, shift=4)
    return img


def _warped_page(grey):
    """A page at scale 0.5 as stage 1 would see it: rotated 0.8 deg, shifted, gently bent."""
    s = 0.5
    page = _draw_page(s, grey)
    h, w = page.shape[:2]

    def warp(p):
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        c = np.array([w / 2, h / 2])
        d = p - c
        th = np.radians(0.8)
        q = c + d @ np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]]) + [3.2, -2.1]
        q[:, 1] += 4 * (d[:, 0] / (w / 2)) ** 2
        q[:, 0] += 2 * (d[:, 1] / (h / 2)) ** 2
        return q

    fwd = CoordinateMap.from_function(warp, (h, w), (h, w), step=8)
    back = CoordinateMap.from_function(lambda p: invert_points(fwd, p), (h, w), (h, w), step=4)
    return back.remap(page), fwd, warp, s


@pytest.mark.parametrize("grey", [False, True])
def test_detect_grid_crossings_gives_the_warp(grey):
    img, fwd, warp, s = _warped_page(grey)
    pts = detect_grid_crossings(img, PAGE.px_per_mm * s)
    truth_page, truth_img = grid_crossings_truth(fwd)
    assert len(truth_page) > 2000
    from scipy.spatial import cKDTree
    d, _ = cKDTree(truth_img).query(pts)
    assert len(pts) > 0.9 * len(truth_img)
    assert np.median(d) < 0.35 and (d < 1.0).mean() > (0.98 if not grey else 0.9)
    h, w = img.shape[:2]
    approx = CoordinateMap.identity((h, w), step=16)  # stage 1's page is already roughly normalized
    page_pts, image_pts = index_crossings(pts, approx)
    fit = dense_map_from_crossings(page_pts, image_pts, approx, step=8)
    assert fit.ok, fit.reason
    rng = np.random.default_rng(8)
    probe = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h], (2000, 2))
    err = np.linalg.norm(fit.map(probe) - warp(probe), axis=1)
    idt = np.linalg.norm(probe - warp(probe), axis=1)
    assert err.mean() < 0.3 and err.max() < 1.0, (err.mean(), err.max())
    assert idt.mean() > 5 * err.mean()


def test_grid_crossings_truth_and_bad_input():
    m = CoordinateMap.identity(PAGE_SIZE, step=16)
    page_pts, img_pts = grid_crossings_truth(m)
    assert len(page_pts) == len(major_lattice()[0])
    np.testing.assert_allclose(img_pts, page_pts, atol=1e-3)
    shifted = CoordinateMap.from_function(lambda p: p + [-100.0, 0.0], PAGE_SIZE, PAGE_SIZE, step=16)
    inside_pts, inside_img = grid_crossings_truth(shifted)
    assert len(inside_pts) < len(page_pts) and inside_img[:, 0].min() >= 0
    with pytest.raises(ValueError, match="RGB uint8"):
        detect_grid_crossings(np.zeros((50, 50), np.uint8), 4.0)
    with pytest.raises(ValueError, match="px_per_mm"):
        detect_grid_crossings(np.zeros((50, 50, 3), np.uint8), -1.0)
    assert detect_grid_crossings(np.full((200, 300, 3), 255, np.uint8), PAGE.px_per_mm * 0.5).shape == (0, 2)


@pytest.mark.parametrize("flat_rule", [True, False])
def test_dense_map_of_a_flat_page_with_snapped_grid_is_its_homography(flat_rule, monkeypatch):
    """A page rendered at a pitch of 39.91 px, its grid lines snapped to the image's whole pixels
    (not the 2200 px page's: the rounded lattice does not explain them): the rounding beats slowly
    along the page and the spline follows it; the page's own homography does not."""
    import ecgdigit.geometry.grid_map as gm

    if not flat_rule:
        monkeypatch.setattr(gm, "FLAT_PAGE_RATIO", 0.0)
        monkeypatch.setattr(gm, "SNAPPED_CONCENTRATION", 2.0)
    pos, _ = major_lattice()
    scale = np.diag([1.0137, 1.0137, 1.0])
    img = np.round(apply_homography(scale, pos))
    approx = CoordinateMap.from_homography(scale @ np.diag([1.001, 0.999, 1.0]), PAGE_SIZE, IMG_SIZE, step=16)
    fit = dense_map_from_crossings(pos, img, approx, step=8)
    assert fit.ok, fit.reason
    rng = np.random.default_rng(3)
    probe = rng.uniform([PAGE.signal_x0, 300], [PAGE.signal_x1, 1600], (3000, 2))
    err = np.abs(fit.map(probe) - apply_homography(scale, probe))[:, 0]  # x: time
    assert (np.sqrt(np.mean(err ** 2)) < 0.04) == flat_rule, np.sqrt(np.mean(err ** 2))


@pytest.mark.parametrize("as_drawn", [True, False])
def test_dense_map_takes_a_photographed_grid_where_the_renderer_drew_it(as_drawn, monkeypatch):
    """ECG-image-kit draws grid lines at whole pixels of its 2200 px page; a photo of the print
    keeps them there. Fitting the crossings to the rounded nodes undoes the photo's warp without
    the rounding's beat."""
    import ecgdigit.geometry.grid_map as gm

    if not as_drawn:
        monkeypatch.setattr(gm, "SNAPPED_LATTICE_GAIN", 0.0)
    rng = np.random.default_rng(5)
    pos, _ = major_lattice()
    img = photo_warp(np.round(pos)) + rng.normal(0, 0.05, pos.shape)
    approx = CoordinateMap.from_homography(H_TRUE, PAGE_SIZE, IMG_SIZE, step=16)
    fit = dense_map_from_crossings(pos, img, approx, step=8)
    assert fit.ok, fit.reason
    probe = rng.uniform([PAGE.signal_x0, 300], [PAGE.signal_x1, 1600], (3000, 2))
    err = np.linalg.norm(fit.map(probe) - photo_warp(probe), axis=1)
    assert (np.sqrt(np.mean(err ** 2)) < 0.12) == as_drawn, np.sqrt(np.mean(err ** 2))


def test_grid_drawn_exactly_keeps_the_exact_lattice():
    from ecgdigit.geometry.grid_map import _as_drawn, render_pixel_lattice

    rng = np.random.default_rng(6)
    pos, _ = major_lattice()
    approx = CoordinateMap.from_homography(H_TRUE, PAGE_SIZE, IMG_SIZE, step=16)
    exact = photo_warp(pos) + rng.normal(0, 0.3, pos.shape)
    np.testing.assert_array_equal(_as_drawn(pos, exact, approx, PAGE.grid_major_px), pos)
    drawn = photo_warp(np.round(pos)) + rng.normal(0, 0.05, pos.shape)
    np.testing.assert_array_equal(_as_drawn(pos, drawn, approx, PAGE.grid_major_px), np.round(pos))
    # a page frame at twice the scale rounds to the render's pixels, 2 of its own
    np.testing.assert_array_equal(render_pixel_lattice(np.array([[3.0, 5.2]]), (2 * PAGE.height, 2 * PAGE.width)),
                                  [[4.0, 6.0]])


def test_flat_page_homography_fits_points_and_refuses_too_few():
    pos, _ = major_lattice()
    H, rms = flat_page_homography(pos, apply_homography(H_TRUE, pos))
    assert rms < 1e-3
    np.testing.assert_allclose(apply_homography(H, pos[:5]), apply_homography(H_TRUE, pos[:5]), atol=1e-3)
    assert flat_page_homography(pos[:3], pos[:3]) is None


def test_pixel_snapped_grid_is_told_from_a_resampled_one():
    pos, _ = major_lattice()
    assert grid_is_pixel_snapped(np.round(pos * 1.0137) + 0.5)
    assert not grid_is_pixel_snapped(pos * 1.0137 + np.random.default_rng(0).normal(0, 0.3, pos.shape))
    assert not grid_is_pixel_snapped(np.empty((0, 2)))
