"""Stage 0: which way up the photo/scan is, and a homography from the page to it."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..config import PAGE, PaperLayout
from ..geometry.homography import fit_page_homography
from . import page_detection

logger = logging.getLogger(__name__)


@dataclass
class Stage0Result:
    orientation: int  # quarter turns (np.rot90 sense) the page went through; upright = rot90(image, -k)
    upright: np.ndarray  # the original pixels turned upright (a copy only when k != 0)
    H: np.ndarray  # page px (scale 1) -> upright image px
    method: str  # 'keypoints', 'page_quad', 'frame'
    orientation_scores: list[float] = field(default_factory=list)


def normalize(image: np.ndarray, layout: PaperLayout = PAGE, keypoint_fn=None, orientation_fn=None) -> Stage0Result:
    """Orientation and page homography, from models where given, else from the classical finder.

    keypoint_fn(upright) -> (image_pts, page_pts) or None; orientation_fn(image) -> k.
    """
    if orientation_fn is not None:
        k, scores = int(orientation_fn(image)), []
    else:
        k, scores = page_detection.classical_orientation(image, layout)
    upright = np.ascontiguousarray(np.rot90(image, -k)) if k else image

    if keypoint_fn is not None:
        pts = keypoint_fn(upright)
        if pts is not None:
            fit = fit_page_homography(pts[0], pts[1], image_size=upright.shape[:2])
            if fit.ok:
                return Stage0Result(k, upright, fit.H, "keypoints", scores)
            logger.warning("stage 0: key-point homography rejected (%s); using the page outline", fit.reason)

    quad = page_detection.detect_page_quad(upright)
    if quad is not None:
        return Stage0Result(k, upright, page_detection.page_homography_from_quad(quad, layout), "page_quad", scores)
    return Stage0Result(k, upright, page_detection.frame_homography(upright.shape[:2], layout), "frame", scores)


def outline_homographies(upright: np.ndarray, layout: PaperLayout = PAGE) -> list[tuple[str, np.ndarray]]:
    """The classical page -> image homographies, (method, H): the detected paper outline where one is
    found, and the image's own frame (a clean render or a tight scan is the page itself)."""
    out = []
    quad = page_detection.detect_page_quad(upright)
    if quad is not None:
        out.append(("page_quad", page_detection.page_homography_from_quad(quad, layout)))
    out.append(("frame", page_detection.frame_homography(upright.shape[:2], layout)))
    return out
