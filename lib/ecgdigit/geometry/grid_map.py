"""Stage 1's geometry: a dense page -> image map from detected crossings of the paper's major grid.

The major lattice is anchored at the page's bottom-left: node (i, j) sits at
x = i * step, y = height - j * step (page px at the page frame's scale). Crossings are indexed with
the help of an approximate map (the stage-0 homography), then the residual of that approximation is
interpolated by a smoothing thin-plate spline, so lens bending and paper curl are undone too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.spatial import ConvexHull, QhullError, cKDTree

from ..config import PAGE
from .coordinate_map import CoordinateMap, apply_homography

logger = logging.getLogger(__name__)

INDEX_TOLERANCE = 0.25  # lattice units: farther than this from a node is ambiguous
MEDIAN_GUARD = 0.5  # lattice units: an affine offset prediction this far from the median is distrusted
GROW_REACH = 1.6  # lattice units: indexing grows to points this close to indexed ones
# growth stops at a gap wider than GROW_REACH (a mould colony, a blank band, a faint stretch of grid);
# a projective fit of the indexed crossings then carries indexing across, but only when that fit
# explains them well (90 % within BRIDGE_FIT_MAX lattice units: a torn or curled page is no one
# homography) and only for points that land close to a node (BRIDGE_TOL, stricter than INDEX_TOLERANCE)
BRIDGE_ROUNDS = 3
BRIDGE_FIT_MAX = 0.08
BRIDGE_TOL = 0.12
NEIGHBOURS = 10  # crossings in each local fit (indexing offsets, outlier rejection)
# thin-plate smoothing, coordinates in lattice units. Crossing positions carry ~0.1-0.3 px of noise
# and bias (trace and text over the grid lines); 1.0 let the spline follow it. Swept on a tuning set
# (seed 555000, 4 images per type, map error over the signal area): 1 -> 0.26 page px median on
# clean pages, 10 -> 0.14, 100 -> 0.07 (photos 0.43 -> 0.35), 1000 under-fits photos' bends (0.73).
TPS_SMOOTHING = 100.0
BLEND_NEAR, BLEND_FAR = 0.5, 3.0  # lattice units outside the crossings' hull: full fit .. fallback
# a flat page's grid is one homography; what the spline adds beyond it on such a page is the grid's
# own drawing error (a renderer snaps each line to a whole pixel, the trace it does not: a +-0.1 px
# beat along the page that the spline followed, and the trace read 0.25 samples off with it). The
# homography stands where its residual at the crossings is within this factor of the spline's
# (realdev renders 1.07-1.09, the hold-out's flat types 0.9-1.09; scans with a bend 1.3-1.5, photos more).
# realdev renders 25.40 -> 26.49 dB, hold-out 22.63 -> 23.04 (clean +0.65, colour +0.68), scans level.
FLAT_PAGE_RATIO = 1.15
# Where the pitch is close to a whole number of px the beat is slow and the spline follows it all:
# there the snapping itself is told, by the crossings' image positions sharing one fraction of a
# pixel (circular concentration: 0.5 on realdev renders, at most 0.05 on resampled scans and photos).
SNAPPED_CONCENTRATION = 0.3
SNAPPED_MAX_RESIDUAL_PX = 0.6  # a whole-pixel rounding on both axes alone is 0.41 px RMS
# ECG-image-kit draws every grid line at a whole pixel of its 2200 x 1700 page (measured on realdev
# renders: the lines sit at round(k * 39.37) to 0.1-0.17 px RMS, against 0.28-0.31 at k * 39.37),
# and a print, scan or photo of that page keeps them there. Where the crossings follow that rounding
# more closely than the exact lattice (their median local-plane deviation below this share), the
# nodes' page positions are the rounded ones (after the flat-page rule: realdev renders 26.49 -> 26.69
# dB, scans 18.22 -> 18.42, hold-out 23.04 -> 23.19, phone photos 23.07 -> 23.29).
SNAPPED_LATTICE_GAIN = 0.85


def flat_page_homography(page_pts: np.ndarray, image_pts: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(H page -> image, RMS residual px) of the least-squares homography through matched crossings,
    or None where it cannot be fitted."""
    if len(page_pts) < 4:
        return None
    H, _ = cv2.findHomography(np.float32(page_pts), np.float32(image_pts), 0)
    if H is None or not np.all(np.isfinite(H)):
        return None
    res = apply_homography(H, page_pts) - image_pts
    return H, float(np.sqrt(np.mean(np.sum(res ** 2, axis=1))))


def grid_is_pixel_snapped(image_pts: np.ndarray) -> bool:
    """Whether crossings' image positions share one fraction of a pixel on both axes (a digital
    render's grid drawn snapped to whole pixels, seen without resampling)."""
    frac = np.exp(2j * np.pi * np.asarray(image_pts, np.float64).reshape(-1, 2))
    return len(frac) > 0 and bool(np.all(np.abs(frac.mean(axis=0)) >= SNAPPED_CONCENTRATION))


# ---------------------------------------------------------------- lattice
def page_scale(page_size: tuple[int, int]) -> float:
    """Scale of a page frame relative to config.PAGE, from its (height, width)."""
    return float(page_size[1]) / PAGE.width


def major_lattice(page_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All major-grid nodes inside a page frame of page_size (h, w): (positions (M, 2), (i, j) (M, 2))."""
    page_size = page_size or PAGE.shape
    s = page_scale(page_size)
    step, height = PAGE.grid_major_px * s, PAGE.height * s
    ni = int(np.floor((page_size[1] - 1) / step)) + 1
    nj = int(np.floor(height / step)) + 1
    jj, ii = np.mgrid[0:nj, 0:ni]
    ij = np.stack([ii.ravel(), jj.ravel()], axis=1)
    pos = np.stack([ij[:, 0] * step, height - ij[:, 1] * step], axis=1)
    inside = (pos[:, 0] <= page_size[1] - 1) & (pos[:, 1] >= 0) & (pos[:, 1] <= page_size[0] - 1)
    return pos[inside], ij[inside]


def node_position(ij: np.ndarray, page_size: tuple[int, int] | None = None) -> np.ndarray:
    """Page positions of lattice indices (M, 2) in a page frame of page_size."""
    page_size = page_size or PAGE.shape
    s = page_scale(page_size)
    ij = np.asarray(ij, dtype=np.float64).reshape(-1, 2)
    return np.stack([ij[:, 0] * PAGE.grid_major_px * s, PAGE.height * s - ij[:, 1] * PAGE.grid_major_px * s], 1)


# ---------------------------------------------------------------- map helpers
def eval_extrapolated(m: CoordinateMap, pts: np.ndarray) -> np.ndarray:
    """m at points (N, 2), bilinear inside the lattice and linear beyond it (m() clamps instead)."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    gh, gw = m.src_xy.shape[:2]
    u, v = pts[:, 0] / m.step, pts[:, 1] / m.step
    j0 = np.clip(np.floor(u), 0, gw - 2).astype(int)
    i0 = np.clip(np.floor(v), 0, gh - 2).astype(int)
    fu, fv = (u - j0)[:, None], (v - i0)[:, None]
    g = m.src_xy.astype(np.float64)
    top = g[i0, j0] * (1 - fu) + g[i0, j0 + 1] * fu
    bot = g[i0 + 1, j0] * (1 - fu) + g[i0 + 1, j0 + 1] * fu
    return top * (1 - fv) + bot * fv


def invert_points(m: CoordinateMap, pts: np.ndarray, iters: int = 8, tol_px: float = 0.05) -> np.ndarray:
    """Destination positions of source points (N, 2) under m; NaN where m does not reach them.

    Nearest lattice node first (a k-d tree, fast), then Newton steps on the bilinear map itself.
    """
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    dst = CoordinateMap.lattice_points(m.dst_size, m.step).reshape(-1, 2)
    src = m.src_xy.reshape(-1, 2).astype(np.float64)
    _, nn = cKDTree(src).query(pts)
    q = dst[nn].copy()
    e = 0.25 * m.step
    for _ in range(iters):
        f = eval_extrapolated(m, q)
        jx = (eval_extrapolated(m, q + [e, 0]) - eval_extrapolated(m, q - [e, 0])) / (2 * e)
        jy = (eval_extrapolated(m, q + [0, e]) - eval_extrapolated(m, q - [0, e])) / (2 * e)
        a, b, c, d = jx[:, 0], jy[:, 0], jx[:, 1], jy[:, 1]  # d src / d dst
        det = a * d - b * c
        good = np.abs(det) > 1e-12
        r = pts - f
        dx = np.zeros_like(r)
        dx[good, 0] = (d[good] * r[good, 0] - b[good] * r[good, 1]) / det[good]
        dx[good, 1] = (-c[good] * r[good, 0] + a[good] * r[good, 1]) / det[good]
        q = q + np.clip(dx, -m.step, m.step)
    miss = np.linalg.norm(eval_extrapolated(m, q) - pts, axis=1) > max(tol_px, 1e-3 * m.step)
    q[miss] = np.nan
    return q


def compose(page_to_mid: CoordinateMap, mid_to_src: CoordinateMap) -> CoordinateMap:
    """page -> src through an intermediate frame (e.g. dense grid map, then the stage-0 warp)."""
    if any(abs(a - b) > 1 for a, b in zip(page_to_mid.src_size, mid_to_src.dst_size)):
        raise ValueError(f"compose: the first map's source frame {page_to_mid.src_size} is not the second "
                         f"map's destination frame {mid_to_src.dst_size}")
    src = mid_to_src(page_to_mid.src_xy.reshape(-1, 2)).reshape(page_to_mid.src_xy.shape)
    return CoordinateMap(src.astype(np.float32), page_to_mid.step, tuple(page_to_mid.dst_size),
                         tuple(mid_to_src.src_size))


def _as_map(approx, page_size) -> CoordinateMap:
    if isinstance(approx, CoordinateMap):
        return approx
    H = np.asarray(approx, dtype=np.float64)
    if H.shape != (3, 3):
        raise ValueError(f"approximate page->image map must be a CoordinateMap or a 3x3 homography, got {H.shape}")
    return CoordinateMap.from_homography(H, page_size, (0, 0), 16.0)


# ---------------------------------------------------------------- indexing
def _predict_offsets(u_known: np.ndarray, off_known: np.ndarray, u_query: np.ndarray) -> np.ndarray:
    """Offsets at u_query from an affine fit over the nearest known ones (extrapolates the trend)."""
    k = min(NEIGHBOURS, len(u_known))
    _, nb = cKDTree(u_known).query(u_query, k=k)
    nb = np.asarray(nb).reshape(len(u_query), k)
    med = np.median(off_known[nb], axis=1)
    if k < 4:
        return med
    dx = u_known[nb] - u_query[:, None, :]
    A = np.concatenate([np.ones(dx.shape[:2] + (1,)), dx], axis=2)
    # ridge keeps a one-sided or collinear neighbourhood from extrapolating wildly
    AtA = np.einsum("nki,nkj->nij", A, A) + np.diag([1e-6, 0.5, 0.5])
    coef = np.linalg.solve(AtA, np.einsum("nki,nkc->nic", A, off_known[nb]))
    pred = coef[:, 0, :]
    # a fit pulled by a wrong neighbour disagrees with the median: trust the median then
    far = np.abs(pred - med).max(axis=1) > MEDIAN_GUARD
    pred[far] = med[far]
    return pred


def index_crossings(points_img: np.ndarray, approx_page_to_image, *, tol: float = INDEX_TOLERANCE,
                    return_index: bool = False):
    """Give each detected crossing its lattice node, using an approximate page -> image map.

    points_img: (N, 2) crossings in image px. approx_page_to_image: CoordinateMap (or a 3x3 page ->
    image homography in the config.PAGE frame). The approximation may be off by a smoothly varying
    amount: indexing grows outward from the centre of the points, one step at a time, each point
    taking the offset trend (local affine fit) of its indexed neighbours, so only the error's
    change over a step must stay small (a global error of half a step or more is not recoverable).
    Points farther than tol (lattice units) from their node, and all but the closest claim on a
    node, are dropped.

    Returns (page_pts (M, 2) in the map's page frame, image_pts (M, 2)); with return_index also (i, j).
    """
    page_size = approx_page_to_image.dst_size if isinstance(approx_page_to_image, CoordinateMap) \
        else PAGE.shape
    m = _as_map(approx_page_to_image, page_size)
    pts = np.asarray(points_img, dtype=np.float64).reshape(-1, 2)
    empty = (np.zeros((0, 2)), np.zeros((0, 2))) + ((np.zeros((0, 2), int),) if return_index else ())
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        return empty
    s = page_scale(page_size)
    step, height = PAGE.grid_major_px * s, PAGE.height * s
    q = invert_points(m, pts)
    keep = np.isfinite(q).all(axis=1)
    pts, q = pts[keep], q[keep]
    if len(pts) == 0:
        return empty
    u = np.stack([q[:, 0] / step, (height - q[:, 1]) / step], axis=1)  # lattice coordinates

    # seed: the consensus sub-step shift near the middle (circular mean of fractional parts)
    centre = np.median(u, axis=0)
    d = np.linalg.norm(u - centre, axis=1)
    order = np.argsort(d)
    seed = order[: max(8, min(len(u), 30))]
    ang = 2 * np.pi * u[seed]
    shift = np.arctan2(np.sin(ang).mean(0), np.cos(ang).mean(0)) / (2 * np.pi)
    offsets = np.full((len(u), 2), np.nan)
    node = np.zeros((len(u), 2), int)
    dist = np.full(len(u), np.inf)

    def assign(idx: np.ndarray, pred: np.ndarray) -> None:
        v = u[idx] + pred
        nd = np.rint(v).astype(int)
        node[idx] = nd
        dist[idx] = np.linalg.norm(v - nd, axis=1)
        good = dist[idx] < tol
        offsets[idx[good]] = nd[good] - u[idx[good]]

    def grow() -> None:
        # outward one step at a time: each point is indexed from the trend of indexed neighbours
        while True:
            known = np.isfinite(offsets[:, 0])
            if known.all() or not known.any():
                return
            reach, _ = cKDTree(u[known]).query(u[~known], distance_upper_bound=GROW_REACH)
            cand = np.flatnonzero(~known)[np.isfinite(reach)]
            if len(cand) == 0:
                return
            assign(cand, _predict_offsets(u[known], offsets[known], u[cand]))
            if not np.isfinite(offsets[cand, 0]).any():
                return

    assign(seed, np.broadcast_to(-shift, (len(seed), 2)))
    grow()
    for _ in range(BRIDGE_ROUNDS):  # across the gaps growth cannot cross, then grow again from there
        known = np.isfinite(offsets[:, 0])
        if known.all() or known.sum() < 8:
            break
        node_known = u[known] + offsets[known]
        Hl, _ = cv2.findHomography(u[known], node_known, 0)  # least squares, lattice units
        if Hl is None:
            break
        if np.percentile(np.linalg.norm(apply_homography(Hl, u[known]) - node_known, axis=1), 90) > BRIDGE_FIT_MAX:
            break
        rest = np.flatnonzero(~known)
        v = apply_homography(Hl, u[rest])
        close = np.linalg.norm(v - np.rint(v), axis=1) < BRIDGE_TOL
        if not close.any():
            break
        assign(rest[close], (v - u[rest])[close])
        grow()
    ok = dist < tol
    # nodes must lie on the page's lattice
    _, lat_ij = major_lattice(page_size)
    ni, nj = lat_ij[:, 0].max() + 1, lat_ij[:, 1].max() + 1
    ok &= (node[:, 0] >= 0) & (node[:, 0] < ni) & (node[:, 1] >= 0) & (node[:, 1] < nj)
    idx = np.flatnonzero(ok)
    # duplicates: keep the closest claim on each node
    key = node[idx, 0] * (nj + 1) + node[idx, 1]
    srt = np.lexsort((dist[idx], key))
    first_of = np.ones(len(srt), bool)
    first_of[1:] = key[srt][1:] != key[srt][:-1]
    idx = idx[srt[first_of]]
    page_pts = node_position(node[idx], page_size)
    logger.debug("indexed %d of %d crossings", len(idx), len(points_img))
    out = (page_pts, pts[idx])
    return out + ((node[idx],) if return_index else ())


# ---------------------------------------------------------------- dense map
@dataclass
class GridMapFit:
    """Result of dense_map_from_crossings."""

    map: CoordinateMap  # page -> image
    n_used: int
    residual_px: float  # RMS of the fit at the crossings it used (image px)
    ok: bool
    n_rejected: int = 0
    reason: str = ""


def _local_plane_deviation(x: np.ndarray, r: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
    """|r_i - affine fit of r over the k nearest valid neighbours (excluding i) at x_i|."""
    vidx = np.flatnonzero(valid)
    k = min(k, len(vidx) - 1)
    _, nb = cKDTree(x[vidx]).query(x, k=k + 1)
    nb = vidx[np.asarray(nb).reshape(len(x), k + 1)]
    # drop each point from its own neighbourhood: keep the first k entries that are not itself
    order = np.argsort(nb == np.arange(len(x))[:, None], axis=1, kind="stable")
    nb = np.take_along_axis(nb, order, axis=1)[:, :k]
    dx = x[nb] - x[:, None, :]  # (N, k, 2) relative positions
    A = np.concatenate([np.ones(dx.shape[:2] + (1,)), dx], axis=2)  # (N, k, 3)
    AtA = np.einsum("nki,nkj->nij", A, A) + 1e-3 * np.eye(3)
    Atb = np.einsum("nki,nkc->nic", A, r[nb])  # (N, 3, 2)
    coef = np.linalg.solve(AtA, Atb)
    return np.linalg.norm(r - coef[:, 0, :], axis=1)


def render_pixel_lattice(page_pts: np.ndarray, page_size: tuple[int, int]) -> np.ndarray:
    """Page positions rounded to the whole pixels of the 2200 x 1700 render frame, where the
    renderer draws its grid lines."""
    s = page_scale(page_size)
    return np.round(np.asarray(page_pts, np.float64) / s) * s


def _as_drawn(page_pts: np.ndarray, image_pts: np.ndarray, fallback: CoordinateMap, gstep: float) -> np.ndarray:
    """The nodes' page positions as the grid was drawn: rounded to the render's pixels where the
    crossings follow that (SNAPPED_LATTICE_GAIN), else exact."""
    if len(page_pts) <= NEIGHBOURS:
        return page_pts
    snapped = render_pixel_lattice(page_pts, tuple(fallback.dst_size))
    every = np.ones(len(page_pts), bool)
    noise = [np.median(_local_plane_deviation(p / gstep, image_pts - fallback(p), every, NEIGHBOURS))
             for p in (page_pts, snapped)]
    return snapped if noise[1] < SNAPPED_LATTICE_GAIN * noise[0] else page_pts


def _hull_distance(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distance of q outside the convex hull of x (0 inside; the farthest facet line's distance)."""
    try:
        eq = ConvexHull(x).equations  # (F, 3): unit normal . p + offset <= 0 inside
    except (QhullError, ValueError):  # collinear crossings: fall back to the nearest one
        return cKDTree(x).query(q)[0]
    return np.clip((q @ eq[:, :2].T + eq[:, 2]).max(axis=1), 0.0, None)


def dense_map_from_crossings(page_pts: np.ndarray, image_pts: np.ndarray, fallback: CoordinateMap,
                             step: float = 8.0, *, smoothing: float = TPS_SMOOTHING,
                             reject_px: float = 1.5, min_points: int = 12,
                             max_residual_px: float = 3.0) -> GridMapFit:
    """A smooth dense page -> image map through matched crossings, blending to `fallback` away from them.

    page_pts, image_pts: (N, 2) matched crossings (page frame of fallback.dst_size, image px).
    The fallback's residual at the crossings is interpolated by a smoothing thin-plate spline;
    crossings that disagree with their neighbours' local affine trend by more than
    max(reject_px, 4 robust sigmas) are rejected first. Output lattice: `step` page px.
    """
    page_pts = np.asarray(page_pts, dtype=np.float64).reshape(-1, 2)
    image_pts = np.asarray(image_pts, dtype=np.float64).reshape(-1, 2)
    if len(page_pts) != len(image_pts):
        raise ValueError(f"dense_map_from_crossings: {len(page_pts)} page points but {len(image_pts)} image points")
    page_size, src_size = tuple(fallback.dst_size), tuple(fallback.src_size)
    lattice = CoordinateMap.lattice_points(page_size, step)
    base = fallback(lattice.reshape(-1, 2)).reshape(lattice.shape)

    def give_up(reason: str, n_used=0, n_rej=0, res=float("nan")) -> GridMapFit:
        logger.debug("dense grid map falls back: %s", reason)
        return GridMapFit(CoordinateMap(base.astype(np.float32), float(step), page_size, src_size),
                          n_used, res, False, n_rej, reason)

    finite = np.isfinite(page_pts).all(1) & np.isfinite(image_pts).all(1)
    page_pts, image_pts = page_pts[finite], image_pts[finite]
    if len(page_pts) < min_points:
        return give_up(f"only {len(page_pts)} crossings (need {min_points})")
    gstep = PAGE.grid_major_px * page_scale(page_size)
    page_pts = _as_drawn(page_pts, image_pts, fallback, gstep)
    x = page_pts / gstep  # lattice units keep the spline's smoothing scale-free
    r = image_pts - fallback(page_pts)

    valid = np.ones(len(x), bool)
    for _ in range(3):
        dev = _local_plane_deviation(x, r, valid, NEIGHBOURS)
        sigma = 1.4826 * np.median(dev[valid]) + 1e-9
        new_valid = dev < max(reject_px, 4.0 * sigma)
        if np.array_equal(new_valid, valid):
            break
        valid = new_valid
        if valid.sum() < min_points:
            return give_up(f"only {int(valid.sum())} consistent crossings", int(valid.sum()), int((~valid).sum()))
    x, r = x[valid], r[valid]

    try:
        rbf = RBFInterpolator(x, r, kernel="thin_plate_spline", smoothing=smoothing, degree=1)
    except (np.linalg.LinAlgError, ValueError) as exc:  # e.g. all crossings on one line
        return give_up(f"spline fit failed: {exc}", len(x), int((~valid).sum()))
    fit_res = r - rbf(x)
    residual = float(np.sqrt(np.mean(np.sum(fit_res ** 2, axis=1))))
    q = lattice.reshape(-1, 2)
    flat = flat_page_homography(page_pts[valid], image_pts[valid])
    if flat is not None and (flat[1] <= FLAT_PAGE_RATIO * residual
                             or (flat[1] <= SNAPPED_MAX_RESIDUAL_PX and grid_is_pixel_snapped(image_pts[valid]))):
        logger.debug("grid map: a flat page (homography %.3f px, spline %.3f px)", flat[1], residual)
        corr, residual = apply_homography(flat[0], q) - base.reshape(-1, 2), flat[1]
    else:
        # the spline is costly per point and smooth at the grid's scale: evaluate it on a coarser
        # lattice (half a grid step) and interpolate that bilinearly onto the output lattice
        cstep = max(float(step), 0.5 * gstep)
        coarse = CoordinateMap.lattice_points(page_size, cstep)
        corr_c = rbf(coarse.reshape(-1, 2) / gstep).reshape(coarse.shape)
        corr = CoordinateMap(corr_c.astype(np.float32), cstep, page_size, src_size)(q)
    # beyond the crossings either correction fades into the fallback (the margins' marks register
    # the page on what stage 0 saw there)
    w = np.clip((BLEND_FAR - _hull_distance(x, q / gstep)) / (BLEND_FAR - BLEND_NEAR), 0.0, 1.0)
    w = w * w * (3 - 2 * w)  # smoothstep: no kink where the blend starts
    src = base.reshape(-1, 2) + w[:, None] * corr
    out = CoordinateMap(src.reshape(lattice.shape).astype(np.float32), float(step), page_size, src_size)
    ok = residual <= max_residual_px
    return GridMapFit(out, int(valid.sum()), residual, ok, int((~valid).sum()),
                      "" if ok else f"fit residual {residual:.2f} px exceeds {max_residual_px} px")
