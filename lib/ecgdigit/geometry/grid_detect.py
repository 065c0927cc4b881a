"""Classical stage 1: crossings of the paper's major grid, found without a model.

Works on a roughly normalized page (the picture warped by the stage-0 homography to the page frame
at some scale), where grid lines are near axis-aligned with a known spacing but may be locally
curved or offset. Steps: a grid-ness map (redness for colour paper, darkness for grey, with the
dark trace masked out), line ridges from oriented box filters, candidate crossings where vertical and
horizontal ridges meet, then sub-pixel refinement from projection profiles in a window centred on
each crossing (centred, so a slight rotation of the lines does not bias it).
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
from scipy.spatial import cKDTree

from ..config import PAGE
from .coordinate_map import CoordinateMap
from .grid_map import major_lattice

logger = logging.getLogger(__name__)

REDNESS_MIN = 60  # R - max(G, B) of a clearly red pixel (0..255)
COLOUR_FRACTION_MIN = 0.005  # this share of red pixels makes a page "colour"
TRACE_GREY_MAX = 60  # grey pages: darker than this is trace (grid lines are lighter), masked out
TRACE_SATURATION_MAX = 60  # colour pages: dark and this unsaturated is trace
TRACE_LUMA_MAX = 110
RIDGE_RELATIVE = 0.4  # a ridge must reach this share of the strongest one nearby
RADIUS_MIN = 1
CONTRAST_RELATIVE = 0.25  # a crossing's profile peaks must reach this share of the median crossing's


def grid_ness(page_img_rgb: np.ndarray, mode: str = "auto", rim_px: int = 1) -> tuple[np.ndarray, np.ndarray, str]:
    """(grid-ness map float32 ~0..1, valid mask (False on the trace), mode used: 'colour' or 'grey').

    rim_px: the trace mask grows by this much (plus one more on grey pages, where the trace's
    anti-aliased rim is as grey as a grid line)."""
    img = np.asarray(page_img_rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"grid_ness: expected an RGB uint8 (H, W, 3) image, got {img.dtype} {img.shape}")
    rgb = img.astype(np.int16)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    redness = np.clip(r - np.maximum(g, b), 0, 255)
    luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if mode == "auto":
        mode = "colour" if (redness > REDNESS_MIN).mean() > COLOUR_FRACTION_MIN else "grey"
    if mode == "colour":
        sat = rgb.max(axis=2) - rgb.min(axis=2)
        trace = (luma < TRACE_LUMA_MAX) & (sat < TRACE_SATURATION_MAX)
        gmap = redness.astype(np.float32) / 255.0
    elif mode == "grey":
        trace = luma < TRACE_GREY_MAX
        gmap = (255.0 - luma.astype(np.float32)) / 255.0
    else:
        raise ValueError(f"grid_ness: mode must be 'auto', 'colour' or 'grey', got {mode!r}")
    # the trace's anti-aliased rim is neither trace nor grid: mask it too
    k = 2 * (rim_px + (mode == "grey")) + 1
    valid = cv2.dilate(trace.astype(np.uint8), np.ones((k, k), np.uint8)) == 0
    gmap = np.where(valid, gmap, 0.0).astype(np.float32)
    return gmap, valid, mode


def _odd(v: float, lo: int = 3) -> int:
    v = max(lo, int(round(v)))
    return v if v % 2 else v + 1


def _top_hat(gmap: np.ndarray, step: float) -> np.ndarray:
    """Thin structures only: removes shading, stains and uneven illumination under the lines."""
    k = _odd(step / 6)
    return cv2.morphologyEx(gmap, cv2.MORPH_TOPHAT, np.ones((k, k), np.uint8))


def _candidates(g: np.ndarray, valid: np.ndarray, step: float) -> np.ndarray:
    """Rough crossings (N, 2): where vertical and horizontal ridges meet."""
    vf = valid.astype(np.float32)
    L = _odd(0.8 * step)
    ridges = []
    for ksize, across in (((1, L), (_odd(0.5 * step), 1)), ((L, 1), (1, _odd(0.5 * step)))):
        num = cv2.blur(g, ksize)
        den = cv2.blur(vf, ksize)
        resp = num / np.maximum(den, 0.2)  # along-line mean over the unmasked pixels
        peak = resp >= cv2.dilate(resp, np.ones(across[::-1], np.uint8))
        near = cv2.dilate(resp, np.ones((_odd(2 * step), _odd(2 * step)), np.uint8))
        floor = 0.2 * float(np.percentile(resp, 99.5))
        ridge = peak & (resp > RIDGE_RELATIVE * near) & (resp > floor)
        ridges.append(cv2.dilate(ridge.astype(np.uint8), np.ones((3, 3), np.uint8)))
    both = (ridges[0] & ridges[1]).astype(np.uint8)
    n, _, _, centroids = cv2.connectedComponentsWithStats(both, connectivity=8)
    return centroids[1:].astype(np.float64)


def _masked_median(vals: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Median over axis 1 of the entries where ok (0 where none): a grid line is there all along
    the window, a trace crossing it only over a stretch, so the median keeps the one, not the other."""
    v = np.where(ok, vals, np.inf)
    v.sort(axis=1)
    n = ok.sum(axis=1)  # (N, K)
    idx = np.clip((n - 1) // 2, 0, vals.shape[1] - 1)[:, None, :]
    med = np.take_along_axis(v, idx, axis=1)[:, 0, :]
    return np.where(n > 0, med, 0.0)


def _profile_peaks(g: np.ndarray, valid: np.ndarray, pts: np.ndarray, step: float,
                   radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel offsets (N, 2) of the vertical and horizontal line nearest each point, and their
    contrasts (N, 2), from projection profiles of a window centred on the point."""
    L = int(round(0.75 * step))  # along the line
    w = max(radius + 2, int(0.4 * step))  # across: the neighbouring major lines stay outside
    pad = L + w + 2
    gp = np.pad(g, pad)
    vp = np.pad(valid.astype(np.float32), pad)
    c = np.rint(pts).astype(int) + pad
    along = np.arange(-L, L + 1)
    across = np.arange(-w, w + 1)
    offs = np.zeros((len(pts), 2))
    contrast = np.zeros((len(pts), 2))
    for axis in (0, 1):  # 0: vertical line -> x offset; 1: horizontal line -> y offset
        if axis == 0:
            rows = c[:, 1, None, None] + along[None, :, None]
            cols = c[:, 0, None, None] + across[None, None, :]
        else:
            rows = c[:, 1, None, None] + across[None, None, :]
            cols = c[:, 0, None, None] + along[None, :, None]
        prof = _masked_median(gp[rows, cols], vp[rows, cols] > 0)  # (N, 2w+1)
        base = np.median(prof, axis=1, keepdims=True)
        peak = np.argmax(prof, axis=1)
        m = np.clip(peak, radius, 2 * w - radius)
        idx = m[:, None] + np.arange(-radius, radius + 1)[None, :]
        vals = np.clip(np.take_along_axis(prof, idx, axis=1) - base, 0, None)
        tot = vals.sum(axis=1)
        centroid = (vals * np.arange(-radius, radius + 1)[None, :]).sum(axis=1) / np.maximum(tot, 1e-9)
        offs[:, axis] = m - w + centroid
        # a peak at the window's edge is no line through the window
        at_edge = (peak < radius + 1) | (peak > 2 * w - radius - 1)
        height = np.take_along_axis(prof, m[:, None], axis=1)[:, 0] - base[:, 0]
        contrast[:, axis] = np.where(at_edge, 0.0, height)
    return offs, contrast


def detect_grid_crossings(page_img_rgb: np.ndarray, px_per_mm: float, *, mode: str = "auto",
                          refine_iters: int = 3, return_strength: bool = False):
    """Major-grid crossings (N, 2) of a roughly normalized page, sub-pixel, in that image's px.

    px_per_mm: the page's scale (config.PAGE.px_per_mm times the page scale); the major spacing is
    PAGE.grid_major_mm of it. mode: 'auto', 'colour' (red grid) or 'grey' (black-and-white scan).
    With return_strength also the (N,) contrast of each crossing (weaker of its two lines).
    """
    if not np.isfinite(px_per_mm) or px_per_mm <= 0:
        raise ValueError(f"detect_grid_crossings: px_per_mm must be positive, got {px_per_mm}")
    step = PAGE.grid_major_mm * px_per_mm
    if step < 6:
        raise ValueError(f"detect_grid_crossings: major grid spacing {step:.1f} px is too small to resolve")
    gmap, valid, used = grid_ness(page_img_rgb, mode, rim_px=max(1, int(round(step / 20))))
    g = _top_hat(gmap, step)
    pts = _candidates(g, valid, step)
    empty = np.zeros((0, 2))
    if len(pts) == 0:
        logger.debug("no grid crossing candidates (%s mode)", used)
        return (empty, np.zeros(0)) if return_strength else empty
    radius = max(RADIUS_MIN, int(round(step / 20)))
    h, w = g.shape
    for _ in range(refine_iters):
        offs, contrast = _profile_peaks(g, valid, pts, step, radius)
        # a candidate off a crossing moves to it: step from the rounded centre the window used
        pts = np.rint(pts) + offs
        # the window must see both sides of a crossing: none within `radius` of the border
        inside = ((pts[:, 0] >= radius) & (pts[:, 0] <= w - 1 - radius)
                  & (pts[:, 1] >= radius) & (pts[:, 1] <= h - 1 - radius))
        pts, contrast = pts[inside], contrast[inside]
        if len(pts) == 0:
            return (empty, np.zeros(0)) if return_strength else empty
    strength = contrast.min(axis=1)
    ref = float(np.median(strength))
    keep = strength > CONTRAST_RELATIVE * ref
    pts, strength = pts[keep], strength[keep]
    # duplicates (two candidates that converged on one crossing): keep the stronger
    drop = np.zeros(len(pts), bool)
    order = np.argsort(-strength)
    rank = np.empty(len(pts), int)
    rank[order] = np.arange(len(pts))
    for i, j in cKDTree(pts).query_pairs(0.3 * step):
        drop[j if rank[i] < rank[j] else i] = True
    pts, strength = pts[~drop], strength[~drop]
    logger.debug("%d grid crossings (%s mode, spacing %.1f px)", len(pts), used, step)
    return (pts, strength) if return_strength else pts


def grid_crossings_truth(page_to_image: CoordinateMap, *, inside_image: bool = True,
                         margin_px: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """True major-grid crossings: (page_pts (M, 2) in the map's page frame, image_pts (M, 2)).

    Every major lattice node inside the page, mapped through page_to_image; with inside_image, only
    those landing inside the image (src_size), at least margin_px from its border.
    """
    page_pts, _ = major_lattice(tuple(page_to_image.dst_size))
    img_pts = page_to_image(page_pts)
    if inside_image and page_to_image.src_size[0] > 0 and page_to_image.src_size[1] > 0:
        ih, iw = page_to_image.src_size
        ok = ((img_pts[:, 0] >= margin_px) & (img_pts[:, 0] <= iw - 1 - margin_px)
              & (img_pts[:, 1] >= margin_px) & (img_pts[:, 1] <= ih - 1 - margin_px))
        page_pts, img_pts = page_pts[ok], img_pts[ok]
    return page_pts, img_pts
