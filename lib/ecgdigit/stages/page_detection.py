"""Model-free stage 0: find the paper in a photo/scan and which way up it is.

Used when no stage-0 weights are shipped, and as the fallback when the model's key points fail.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d

from ..config import PAGE, PaperLayout
from ..geometry.coordinate_map import CoordinateMap
from .ink import ink_from_rgb

logger = logging.getLogger(__name__)

WORK_SIDE = 768  # long side of the copy this runs on


def _small(image: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    s = side / max(image.shape[:2])
    if s >= 1:
        return image, 1.0
    return cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), s


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left (image axes)."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    c = pts.mean(axis=0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # clockwise in image axes, starting near -pi (left)
    start = np.argmin(pts.sum(axis=1))  # top-left has the smallest x + y
    return np.roll(pts, -start, axis=0)


def _paper_masks(small: np.ndarray) -> list[np.ndarray]:
    """Candidate paper masks: bright and unsaturated; tinted only by the red grid (R above G, G ~ B),
    which tells paper from beige, wood or grey backgrounds that are as bright as it; finely textured."""
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    v = hsv[..., 2].astype(np.float32)
    sat = hsv[..., 1].astype(np.float32)
    thr = max(60.0, float(np.percentile(v, 60)) * 0.75)
    rgb = small.astype(np.int16)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    pinkish = (r - g >= 4) & (np.abs(g - b) <= 14) & (v >= 0.5 * thr)
    # the printed grid makes the paper finely textured where photo backgrounds are mostly smooth
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = cv2.blur(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 2.0)), (15, 15))
    detail8 = np.clip(detail * (255.0 / max(float(detail.max()), 1e-3)), 0, 255).astype(np.uint8)
    _, textured = cv2.threshold(detail8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return [((v >= thr) & (sat <= 70)).astype(np.uint8), pinkish.astype(np.uint8), textured]


def _quad_from_mask(mask: np.ndarray) -> tuple[np.ndarray | None, float]:
    """(4 corners, how well a quadrilateral fits it) of the most page-like of the largest blobs;
    None when there is none, or when the page fills the frame (a scan)."""
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    h, w = mask.shape
    best, best_score = None, 0.0
    for k in 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:3]:
        area = stats[k, cv2.CC_STAT_AREA]
        x, y, bw, bh = stats[k, :4]
        if area < 0.15 * h * w:
            break
        if bw >= 0.985 * w and bh >= 0.985 * h:
            return None, 0.0  # it touches every edge: the page is the frame
        contours, _ = cv2.findContours((labels == k).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = cv2.convexHull(max(contours, key=cv2.contourArea))
        quad = None
        for eps in (0.01, 0.02, 0.03, 0.05, 0.08):
            approx = cv2.approxPolyDP(hull, eps * cv2.arcLength(hull, True), True)
            if len(approx) == 4:
                quad = approx.reshape(4, 2).astype(np.float64)
                break
        if quad is None:
            quad = cv2.boxPoints(cv2.minAreaRect(hull)).reshape(4, 2).astype(np.float64)
        fill = area / max(cv2.contourArea(quad.astype(np.float32)), 1.0)
        fill = min(fill, 1.0 / max(fill, 1e-6))
        if fill > best_score:
            best, best_score = quad, fill
    return best, float(best_score)


def detect_page_quad(image: np.ndarray) -> np.ndarray | None:
    """The paper's 4 corners in image px, or None when the paper fills the frame or is not found."""
    small, s = _small(image)
    best, best_fill = None, 0.6  # a blob must fill most of its quadrilateral to count as the page
    for mask in _paper_masks(small):
        quad, fill = _quad_from_mask(mask)
        if quad is not None and fill > best_fill:
            best, best_fill = quad, fill
    return None if best is None else order_corners(best / s)


def page_homography_from_quad(quad: np.ndarray, layout: PaperLayout = PAGE) -> np.ndarray:
    """H mapping page px (scale 1) to image px, from the paper's corners."""
    page = np.array([[0, 0], [layout.width, 0], [layout.width, layout.height], [0, layout.height]], np.float64)
    q = order_corners(quad)
    # landscape page: the longer edge pair is the page's width
    if np.linalg.norm(q[1] - q[0]) < np.linalg.norm(q[3] - q[0]):
        q = np.roll(q, -1, axis=0)  # shouldn't happen upright; keeps the fit sane otherwise
    return cv2.getPerspectiveTransform(page.astype(np.float32), q.astype(np.float32))


def frame_homography(image_size: tuple[int, int], layout: PaperLayout = PAGE) -> np.ndarray:
    """The page stretched onto the whole image frame (a scan or the clean render)."""
    h, w = image_size
    return np.diag([w / layout.width, h / layout.height, 1.0])


def row_profile_score(page_small: np.ndarray, scale: float, layout: PaperLayout = PAGE) -> float:
    """How well the page's ink rows match the layout's baselines (higher = more upright).

    Correlates the mean ink per page row with bumps at the 4 baselines, over the signal columns.
    """
    grey = page_small.max(axis=2).astype(np.float32) if page_small.ndim == 3 else page_small.astype(np.float32)
    x0, x1 = int(layout.signal_x0 * scale), int(layout.signal_x1 * scale)
    ink = np.clip(np.percentile(grey, 90) * 0.75 - grey, 0, None)[:, x0:x1].mean(axis=1)
    ys = np.arange(len(ink)) / scale
    template = np.zeros_like(ink)
    for b in layout.baselines_y:
        template += np.exp(-0.5 * ((ys - b) / (0.6 * layout.px_per_mv)) ** 2)
    ink = ink - ink.mean()
    template = template - template.mean()
    denom = np.linalg.norm(ink) * np.linalg.norm(template)
    return float(ink @ template / denom) if denom > 0 else 0.0


def line_direction(image: np.ndarray) -> float:
    """log of how much more the ink's row profile varies than its column profile: > 0 upright.

    Printed rows make the ink per image row peak at each baseline, while the ink per image column
    stays nearly flat; a sideways page shows the opposite.
    """
    small, _ = _small(image, 640)
    ink = ink_from_rgb(small, 2.0)

    def variation(profile: np.ndarray) -> float:
        profile = uniform_filter1d(profile, max(3, len(profile) // 100))
        core = profile[len(profile) // 10: -len(profile) // 10]  # page edges and background aside
        return float(core.std() / (core.mean() + 1e-6))

    return float(np.log((variation(ink.sum(axis=1)) + 1e-6) / (variation(ink.sum(axis=0)) + 1e-6)))


def _looks_sideways(small: np.ndarray) -> bool:
    """The landscape page's long side runs up the image: from the paper's outline where one is
    found (its frame for a scan), else from the ink's row/column profiles."""
    quad = detect_page_quad(small)
    if quad is None:
        h, w = small.shape[:2]
        if max(h, w) > 1.15 * min(h, w):
            return h > w
    else:
        q = order_corners(quad)
        across = np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])
        down = np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])
        if max(across, down) > 1.15 * min(across, down):
            return down > across
    return line_direction(small) < 0


def header_gap_position(upright_small: np.ndarray) -> float | None:
    """Where the empty band between the header text and the first printed row lies, as a fraction
    of the ink's vertical extent (about 0.2 on an upright page, 0.8 upside down); None if unclear.

    Needs no page outline, so it works on photos whose paper blends into the background.
    """
    ink = ink_from_rgb(upright_small, 2.0)
    prof = uniform_filter1d(ink.sum(axis=1), max(3, len(ink) // 80))
    cum = np.cumsum(prof) / max(prof.sum(), 1e-6)
    a, b = int(np.searchsorted(cum, 0.01)), int(np.searchsorted(cum, 0.99))
    if b - a < 20:
        return None
    core = prof[a:b]
    empty = core < 0.12 * np.median(core[core > 0]) if (core > 0).any() else np.ones_like(core, bool)
    # the longest empty run
    best, best_at, run = 0, 0, 0
    for i, e in enumerate(empty):
        run = run + 1 if e else 0
        if run > best:
            best, best_at = run, i - run + 1
    if best < 0.08 * (b - a):
        return None
    return (best_at + best / 2) / (b - a)


def classical_orientation(image: np.ndarray, layout: PaperLayout = PAGE) -> tuple[int, list[float]]:
    """Quarter turns k (np.rot90 sense) the page went through; undo with np.rot90(image, -k).

    Long horizontal strokes tell upright/upside-down (k even) from sideways (k odd); the rows'
    vertical layout (header above, rhythm strip at the bottom) then picks between the two.
    """
    small, _ = _small(image, 640)
    scale = 0.25
    sideways = _looks_sideways(small)
    scores = [-np.inf] * 4
    for k in ((1, 3) if sideways else (0, 2)):
        up = np.ascontiguousarray(np.rot90(small, -k))
        quad = detect_page_quad(up)
        H = page_homography_from_quad(quad, layout) if quad is not None else frame_homography(up.shape[:2], layout)
        cmap = CoordinateMap.from_homography(H, layout.shape, up.shape[:2], step=32)
        scores[k] = row_profile_score(cmap.remap(up, scale=scale), scale, layout)
        if quad is None:
            # no outline (a scan, or paper lost in the background): the header gap votes too
            gap = header_gap_position(up)
            if gap is not None:
                scores[k] += 0.5 if gap < 0.5 else -0.5
    return int(np.argmax(scores)), scores
