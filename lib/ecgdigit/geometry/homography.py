"""Stage 0's geometry: the page -> image homography from matched points, with sanity checks.

The page frame is config.PAGE (2200 x 1700 px at scale 1). H maps page points to image points.
A fit that fails a check comes back with ok=False and a reason; the caller then falls back to
identity_page_homography (and logs it).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import least_squares

from ..config import PAGE
from .coordinate_map import CoordinateMap, apply_homography

logger = logging.getLogger(__name__)

# Sanity limits of a plausible page in a picture.
MIN_INLIER_FRACTION = 0.5
MIN_PAGE_AREA_FRACTION = 0.05  # page quad area / image area
MAX_PAGE_AREA_FRACTION = 6.0  # a page partly outside the picture is allowed, not a huge one
CORNER_MARGIN_FRACTION = 0.75  # page corners within this fraction of the image size outside it
MAX_SIDE_RATIO = 3.0  # opposite sides of the page quad: perspective stays moderate
MIN_CORNER_ANGLE_DEG = 35.0


@dataclass
class HomographyFit:
    """Result of fit_page_homography (or the identity fallback)."""

    H: np.ndarray  # (3, 3) page -> image
    inliers: np.ndarray  # (N,) bool
    reprojection_rmse_px: float
    ok: bool
    reason: str = ""
    fallback: bool = False
    page_size: tuple[int, int] = field(default_factory=lambda: PAGE.shape)

    def page_to_image_map(self, image_size: tuple[int, int], step: float = 16.0) -> CoordinateMap:
        """The homography as the kit's CoordinateMap (dst = page, src = image)."""
        return CoordinateMap.from_homography(self.H, self.page_size, tuple(image_size), step)


def page_corners(page_size: tuple[int, int]) -> np.ndarray:
    """Page corners TL, TR, BR, BL (pixel-edge corners, in pixel-centre coordinates)."""
    h, w = page_size
    return np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]], dtype=np.float64)


def identity_page_homography(image_size: tuple[int, int],
                             page_size: tuple[int, int] | None = None) -> HomographyFit:
    """The page frame scaled (per axis) onto the whole image: the fallback when no fit is trusted."""
    ph, pw = page_size or PAGE.shape
    ih, iw = image_size
    sx, sy = iw / pw, ih / ph
    # pixel-edge aligned: x_img + 0.5 = (x_page + 0.5) * s
    H = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], dtype=np.float64)
    return HomographyFit(H, np.zeros(0, bool), float("nan"), True, "identity fallback", True, (ph, pw))


def _normalizer(pts: np.ndarray) -> np.ndarray:
    """Similarity moving points to zero mean and unit mean distance (Hartley), for conditioning."""
    c = pts.mean(axis=0)
    d = np.sqrt(((pts - c) ** 2).sum(axis=1)).mean()
    s = 1.0 / max(d, 1e-9)
    return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1]], dtype=np.float64)


def _weighted_refine(H: np.ndarray, page: np.ndarray, img: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares refinement of H on the inliers (cv2 has no weights)."""
    Tp, Ti = _normalizer(page), _normalizer(img)
    Hn = Ti @ H @ np.linalg.inv(Tp)
    Hn = Hn / Hn[2, 2]
    pn = apply_homography(Tp, page)
    qn = apply_homography(Ti, img)
    sw = np.sqrt(w)[:, None]

    def resid(h):
        Hh = np.append(h, 1.0).reshape(3, 3)
        return ((apply_homography(Hh, pn) - qn) * sw).ravel()

    sol = least_squares(resid, Hn.ravel()[:8], method="lm" if len(page) >= 5 else "trf")
    Hr = np.linalg.inv(Ti) @ np.append(sol.x, 1.0).reshape(3, 3) @ Tp
    return Hr / Hr[2, 2]


def check_page_homography(H: np.ndarray, page_size: tuple[int, int],
                          image_size: tuple[int, int] | None = None) -> str:
    """Empty string when H maps the page to a plausible quadrilateral, else the reason it does not."""
    if H is None or not np.all(np.isfinite(H)) or abs(np.linalg.det(H)) < 1e-12:
        return "degenerate homography"
    corners = page_corners(page_size)
    wz = np.concatenate([corners, np.ones((4, 1))], axis=1) @ H.T
    if not (np.all(wz[:, 2] > 0) or np.all(wz[:, 2] < 0)):
        return "page crosses the horizon line"
    q = wz[:, :2] / wz[:, 2:3]
    edges = np.roll(q, -1, axis=0) - q
    cross = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    if np.all(cross < 0):
        return "page is mirrored"
    if not np.all(cross > 0):
        return "page quadrilateral is not convex"
    lengths = np.linalg.norm(edges, axis=1)
    if min(lengths) <= 1e-6:
        return "page quadrilateral has a zero-length side"
    for a, b in ((0, 2), (1, 3)):
        r = lengths[a] / lengths[b]
        if r > MAX_SIDE_RATIO or r < 1 / MAX_SIDE_RATIO:
            return f"perspective too strong (opposite sides ratio {r:.2f})"
    cosines = -(edges * np.roll(edges, 1, axis=0)).sum(axis=1) / (lengths * np.roll(lengths, 1))
    angles = np.degrees(np.arccos(np.clip(cosines, -1, 1)))
    if angles.min() < MIN_CORNER_ANGLE_DEG:
        return f"page corner angle {angles.min():.0f} deg too sharp"
    if image_size is not None:
        ih, iw = image_size
        area = 0.5 * abs(np.dot(q[:, 0], np.roll(q[:, 1], -1)) - np.dot(q[:, 1], np.roll(q[:, 0], -1)))
        frac = area / float(ih * iw)
        if frac < MIN_PAGE_AREA_FRACTION or frac > MAX_PAGE_AREA_FRACTION:
            return f"page area {frac:.3f} of the image is implausible"
        mx, my = CORNER_MARGIN_FRACTION * iw, CORNER_MARGIN_FRACTION * ih
        if (q[:, 0].min() < -mx or q[:, 0].max() > iw + mx or q[:, 1].min() < -my or q[:, 1].max() > ih + my):
            return "page corners fall far outside the image"
    return ""


def fit_page_homography(image_pts: np.ndarray, page_pts: np.ndarray, *, weights: np.ndarray | None = None,
                        ransac_px: float = 8.0, min_points: int = 4,
                        image_size: tuple[int, int] | None = None,
                        page_size: tuple[int, int] | None = None) -> HomographyFit:
    """Robust page -> image homography from matched points (USAC-MAGSAC, then weighted refinement).

    image_pts, page_pts: (N, 2) matched positions; weights: (N,) confidences >= 0 (optional).
    ransac_px: inlier threshold in image px. image_size (h, w) enables the in-image checks.
    """
    page_size = tuple(page_size or PAGE.shape)
    img = np.asarray(image_pts, dtype=np.float64).reshape(-1, 2)
    page = np.asarray(page_pts, dtype=np.float64).reshape(-1, 2)
    n = len(img)

    def fail(reason: str, H=None, inl=None, rmse=float("nan")) -> HomographyFit:
        H = np.full((3, 3), np.nan) if H is None else H
        inl = np.zeros(n, bool) if inl is None else inl
        return HomographyFit(H, inl, rmse, False, reason, False, page_size)

    if len(page) != n:
        raise ValueError(f"fit_page_homography: {n} image points but {len(page)} page points")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise ValueError(f"fit_page_homography: {len(w)} weights for {n} points")
    good = np.isfinite(img).all(1) & np.isfinite(page).all(1) & np.isfinite(w) & (w > 0)
    if good.sum() < max(min_points, 4):
        return fail(f"only {int(good.sum())} usable points (need {max(min_points, 4)})")

    H, mask = cv2.findHomography(page[good].astype(np.float32), img[good].astype(np.float32),
                                 cv2.USAC_MAGSAC, ransacReprojThreshold=float(ransac_px),
                                 maxIters=5000, confidence=0.999)
    if H is None:
        H, mask = cv2.findHomography(page[good], img[good], cv2.RANSAC, float(ransac_px))
    if H is None:
        return fail("findHomography found no model")
    inl = np.zeros(n, bool)
    inl[np.flatnonzero(good)] = mask.ravel().astype(bool)
    if inl.sum() < max(min_points, 4):
        return fail(f"only {int(inl.sum())} inliers", H, inl)
    if inl.sum() >= 5:
        try:
            Hr = _weighted_refine(H, page[inl], img[inl], w[inl])
            if np.all(np.isfinite(Hr)):
                H = Hr
        except (np.linalg.LinAlgError, ValueError) as exc:  # keep the robust estimate
            logger.debug("homography refinement failed: %s", exc)
        # the refined model may take back points the sample consensus left out
        err = np.linalg.norm(apply_homography(H, page) - img, axis=1)
        inl = good & (err < ransac_px)
    H = H / H[2, 2]
    err = np.linalg.norm(apply_homography(H, page[inl]) - img[inl], axis=1)
    rmse = float(np.sqrt(np.mean(err ** 2))) if inl.any() else float("nan")
    if inl.sum() < max(min_points, 4, MIN_INLIER_FRACTION * good.sum()):
        return fail(f"only {int(inl.sum())} of {int(good.sum())} points are inliers", H, inl, rmse)
    reason = check_page_homography(H, page_size, image_size)
    if reason:
        return fail(reason, H, inl, rmse)
    return HomographyFit(H, inl, rmse, True, "", False, page_size)
