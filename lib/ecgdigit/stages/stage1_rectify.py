"""Stage 1: a dense page -> image map from the printed grid, refining stage 0's homography.

The grid is found on a normalized copy of the page (stage 0's homography applied at STAGE1_SCALE);
crossings are indexed on the paper's lattice and interpolated into a dense map, so lens bending and
curls are undone too. Where too few crossings are found the homography stands.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..config import PAGE, STAGE1_SCALE, PaperLayout
from ..geometry import grid_detect, grid_map
from ..geometry.minor_lattice import refine_on_minor_lattice
from ..geometry.coordinate_map import CoordinateMap
from .layout_detection import LayoutFound, detect_layout
from .layout_registration import register_to_layout, shifted

logger = logging.getLogger(__name__)

MIN_CROSSINGS = 12


@dataclass
class Stage1Result:
    page_to_image: CoordinateMap  # page px (scale 1) -> upright image px
    method: str  # 'grid', 'minor grid' (the homography laid on the 1 mm lines) or 'homography'
    n_crossings: int
    residual_px: float
    layout_shift_px: tuple[float, float] = (0.0, 0.0)  # whole squares the layout moved the grid map
    layout_found: LayoutFound | None = None  # what layout detection saw (None: not asked, or no grid map)

    @property
    def found_grid(self) -> bool:
        """The map was fitted to the page's printed grid (not the outline's homography alone)."""
        return self.method != "homography"


def rectify(upright: np.ndarray, H: np.ndarray, layout: PaperLayout = PAGE, scale: float = STAGE1_SCALE,
            crossing_fn=None, find_layout: bool = False) -> Stage1Result:
    """crossing_fn(normalized_page_rgb, px_per_mm) -> (N, 2) crossings in that page's px.

    Defaults to the classical grid detector; a model's crossing heatmap plugs in the same way.
    find_layout: where the registered page shows no calibration pulses, place the signal by its
    span instead (`layout_detection`).
    """
    page_size = layout.shape
    approx = CoordinateMap.from_homography(H, page_size, upright.shape[:2], step=16)
    normalized = approx.remap(upright, scale=scale)
    find = crossing_fn or grid_detect.detect_grid_crossings
    crossings = np.asarray(find(normalized, layout.px_per_mm * scale), np.float64).reshape(-1, 2) / scale
    n_used, residual, fit_map, why = len(crossings), float("nan"), None, f"{len(crossings)} grid crossings found"
    if len(crossings) >= MIN_CROSSINGS:
        # crossings are in (approximate) page px: index them on the lattice there, then carry them to the image
        page_pts, norm_pts = grid_map.index_crossings(crossings, CoordinateMap.identity(page_size, step=64))
        n_used, why = len(page_pts), f"{len(page_pts)} grid crossings indexed"
        if len(page_pts) >= MIN_CROSSINGS:
            fit = grid_map.dense_map_from_crossings(page_pts, approx(norm_pts), fallback=approx)
            n_used, residual, why = fit.n_used, fit.residual_px, f"grid map rejected ({fit.reason})"
            fit_map = fit.map if fit.ok else None
    grid_fit, method = fit_map, "grid"
    if grid_fit is None:
        # no major-grid fit, e.g. a scan whose 1 mm lines are as dark as its 5 mm ones (crossings
        # everywhere): the 1 mm lines still settle the homography's drift, where they are seen
        minor = refine_on_minor_lattice(approx, upright, layout)
        if not minor.ok:
            logger.info("stage 1: %s; keeping the homography", why)
            return Stage1Result(approx, "homography", n_used, residual)
        logger.info("stage 1: %s; the homography laid on the minor grid lines", why)
        grid_fit, method = minor.map, "minor grid"
    reg = register_to_layout(grid_fit, upright, layout)
    if reg.shift_px != (0.0, 0.0):
        logger.info("stage 1: layout says the grid map is off by %s page px; shifted", reg.shift_px)
    page_to_image, shift, found = shifted(grid_fit, reg.shift_px), reg.shift_px, None
    if find_layout:
        found = detect_layout(page_to_image, upright, layout)
        if found.shift_px != (0.0, 0.0):
            logger.info("stage 1: %s", found.describe())
            page_to_image = shifted(page_to_image, found.shift_px)
            shift = (shift[0] + found.shift_px[0], shift[1] + found.shift_px[1])
    return Stage1Result(page_to_image, method, n_used, residual, shift, found)
