"""Training inputs and targets of the three stage models, made from one SyntheticImage.

The frames they are made in (letterbox, dense-head strides, page scale) are models/frames.py's: the
same conventions inference reads the models' outputs with. Every input is float32 CHW in 0..1;
targets are float32 maps in 0..1 at the head's stride plus 'valid' masks (0 where the input pixel
came from outside the captured image).
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import cv2
import numpy as np

from ..config import LAYOUT_ROWS, PAGE, PaperLayout
from ..geometry.coordinate_map import CoordinateMap, apply_homography
from ..geometry.grid_map import major_lattice
from ..geometry.orientation import rotate_map_source, undo_orientation
from ..models.frames import heatmap_coords, letterbox, letterbox_points, out_shape, to_chw
from ..synth.render import RenderStyle, render_page
from ..synth.stroke import add_stroke
from ..synth.truth import EcgRecord, RenderedPage, SyntheticImage

logger = logging.getLogger(__name__)

# Signal-area box used for the 4 corner key points: from 3 mV above the first row's baseline to 1 mV
# below the rhythm strip's baseline, over the 10 s of signal.
AREA_TOP_MV = 3.0
AREA_BOTTOM_MV = 1.0

Sample = tuple[np.ndarray, dict[str, np.ndarray]]


# ---------------------------------------------------------------- key points
def signal_area_corners(layout: PaperLayout = PAGE) -> np.ndarray:
    """TL, TR, BR, BL of the printed signal area (page px)."""
    y0 = layout.mv_to_y(0, AREA_TOP_MV)
    y1 = layout.mv_to_y(len(layout.baselines_y) - 1, -AREA_BOTTOM_MV)
    x0, x1 = layout.signal_x0, layout.signal_x1
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def keypoint_page_positions(page: RenderedPage) -> np.ndarray:
    """(16, 2) page px of stage 0's key points, in stage_models.KEYPOINT_NAMES order.

    The 4 signal-area corners, then the centres of the 12 short-lead label boxes. The renderer places
    each label deterministically (left end at signal_x0 + column * column_width, text baseline
    label_offset_mv below the row's baseline, fixed font), so these positions are the same on every
    page: inference fits its homography to reference_keypoint_positions(). A label the page lacks
    (never, with the default style) falls back to that reference position.
    """
    ref = reference_keypoint_positions(page.layout)
    out = ref.copy()
    out[:4] = signal_area_corners(page.layout)
    k = 4
    for r, leads in enumerate(LAYOUT_ROWS[:3]):
        for c, lead in enumerate(leads):
            box = page.label_boxes.get(f"{r}_{c}_{lead}")
            if box is not None:
                out[k] = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
            k += 1
    return out


@functools.lru_cache(maxsize=4)
def _reference_keypoints(layout: PaperLayout) -> tuple:
    rec = EcgRecord("reference", 500, np.zeros((5000, 12), np.float32))
    page = render_page(rec, np.random.default_rng(0), layout, RenderStyle(show_header=False))
    pts = signal_area_corners(layout).tolist()
    for r, leads in enumerate(LAYOUT_ROWS[:3]):
        for c, lead in enumerate(leads):
            b = page.label_boxes[f"{r}_{c}_{lead}"]
            pts.append(((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0))
    return tuple(map(tuple, pts))


def reference_keypoint_positions(layout: PaperLayout = PAGE) -> np.ndarray:
    """(16, 2) page px of the key points on any page of this layout (rendered once, cached)."""
    return np.array(_reference_keypoints(layout), np.float64)


# ---------------------------------------------------------------- heatmaps
def gaussian_maps(pts_hm: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """(K, h, w) float32: a Gaussian at each point (heatmap coords); the nearest cell is set to 1.

    Points that are NaN or outside the map give an all-zero map. The float centre keeps the
    sub-pixel position in the neighbours' values; the exact 1 marks the positive for focal losses.
    """
    pts_hm = np.asarray(pts_hm, np.float64).reshape(-1, 2)
    h, w = shape
    out = np.zeros((len(pts_hm), h, w), np.float32)
    r = int(np.ceil(3 * sigma))
    for k, (x, y) in enumerate(pts_hm):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        ix, iy = int(round(x)), int(round(y))
        if not (0 <= ix < w and 0 <= iy < h):
            continue
        x0, x1, y0, y1 = max(0, ix - r), min(w, ix + r + 1), max(0, iy - r), min(h, iy + r + 1)
        xs = np.arange(x0, x1) - x
        ys = np.arange(y0, y1) - y
        g = np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma ** 2))
        out[k, y0:y1, x0:x1] = g
        out[k, iy, ix] = 1.0
    return out


def point_heatmap(pts_hm: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """(1, h, w): the max over Gaussians at many points (crossings), built in one pass."""
    pts_hm = np.asarray(pts_hm, np.float64).reshape(-1, 2)
    h, w = shape
    out = np.zeros((h, w), np.float32)
    r = int(np.ceil(3 * sigma))
    ok = np.isfinite(pts_hm).all(1)
    for x, y in pts_hm[ok]:
        ix, iy = int(round(x)), int(round(y))
        if not (0 <= ix < w and 0 <= iy < h):
            continue
        x0, x1, y0, y1 = max(0, ix - r), min(w, ix + r + 1), max(0, iy - r), min(h, iy + r + 1)
        g = np.exp(-(((np.arange(y0, y1) - y)[:, None]) ** 2 + ((np.arange(x0, x1) - x)[None, :]) ** 2)
                   / (2 * sigma ** 2)).astype(np.float32)
        np.maximum(out[y0:y1, x0:x1], g, out=out[y0:y1, x0:x1])
        out[iy, ix] = 1.0
    return out[None]


def _downsample(maps: np.ndarray, stride: int, shape: tuple[int, int]) -> np.ndarray:
    """(C, H, W) -> (C, *shape) by area averaging over stride x stride cells (pads with 0)."""
    if stride == 1:
        return maps
    c, h, w = maps.shape
    ph, pw = shape[0] * stride, shape[1] * stride
    pad = np.zeros((c, ph, pw), maps.dtype)
    pad[:, :h, :w] = maps
    return pad.reshape(c, shape[0], stride, shape[1], stride).mean(axis=(2, 4))


# ---------------------------------------------------------------- maps and windows
def remap_window(cmap: CoordinateMap, image: np.ndarray, scale: float, x0: int, y0: int, h: int, w: int,
                 warp=None, border_value: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """A window of cmap's destination frame at `scale` sampled from image, and its valid mask.

    Window pixel (j, i) is destination point ((x0 + j) / scale, (y0 + i) / scale), first moved by
    warp(points (N, 2)) -> (N, 2) when given. valid is 1 where the source lies inside the image.
    """
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float64) + x0, np.arange(h, dtype=np.float64) + y0)
    pts = np.stack([jj.ravel(), ii.ravel()], 1) / scale
    if warp is not None:
        pts = warp(pts)
    gx = (pts[:, 0] / cmap.step).reshape(h, w).astype(np.float32)
    gy = (pts[:, 1] / cmap.step).reshape(h, w).astype(np.float32)
    src = cv2.remap(cmap.src_xy, gx, gy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mx, my = np.ascontiguousarray(src[..., 0]), np.ascontiguousarray(src[..., 1])
    out = cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=(border_value,) * 3)
    ih, iw = image.shape[:2]
    valid = ((mx >= -0.5) & (mx <= iw - 0.5) & (my >= -0.5) & (my <= ih - 0.5)).astype(np.float32)
    return out, valid


def draw_polylines(polys: list[np.ndarray], shape: tuple[int, int], width_px: float) -> np.ndarray:
    """(len(polys), h, w) uint8 0..255, each polyline (output px) drawn as render.trace_masks does:
    real width `width_px`, round joins. A warp may bend a line back in x: such a polyline is drawn
    as its x-monotone pieces (stroke.py draws x-monotone polylines)."""
    out = np.zeros((len(polys), *shape), np.uint8)
    for k, p in enumerate(polys):
        p = np.asarray(p, np.float64)
        p = p[np.isfinite(p).all(1)]
        if len(p) < 2:
            continue
        cov = np.zeros(shape, np.float32)
        for piece in x_monotone_pieces(p):
            add_stroke(cov, piece, width_px)
        out[k] = np.rint(cov * 255).astype(np.uint8)
    return out


def x_monotone_pieces(p: np.ndarray) -> list[np.ndarray]:
    """Split a polyline where x turns back; each piece ordered by increasing x, joints shared."""
    dx = np.sign(np.diff(p[:, 0]))
    # a zero step (vertical) continues the current direction
    for i in range(1, len(dx)):
        if dx[i] == 0:
            dx[i] = dx[i - 1]
    cuts = np.flatnonzero(dx[1:] * dx[:-1] < 0) + 1
    pieces = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(p) - 1]):
        piece = p[a:b + 1]
        pieces.append(piece[::-1] if piece[-1, 0] < piece[0, 0] else piece)
    return pieces


def upright_page_map(syn: SyntheticImage) -> tuple[CoordinateMap, np.ndarray]:
    """page -> upright image map and the upright image (what stage 0 hands to stage 1)."""
    k = int(syn.orientation) % 4
    if k == 0:
        return syn.page_to_image, syn.image
    return undo_orientation(syn.page_to_image, k), np.ascontiguousarray(np.rot90(syn.image, -k))


def turned(syn: SyntheticImage, j: int) -> SyntheticImage:
    """The same capture turned j more quarter turns (exact: image, map and orientation move together)."""
    j %= 4
    if j == 0:
        return syn
    return SyntheticImage(np.ascontiguousarray(np.rot90(syn.image, j)), syn.image_type,
                          rotate_map_source(syn.page_to_image, j), (syn.orientation + j) % 4, syn.page, syn.record)


def fit_homography(cmap: CoordinateMap, n: int = 12) -> np.ndarray:
    """Least-squares homography page -> image of a (possibly non-projective) map, from n x n points."""
    h, w = cmap.dst_size
    xs, ys = np.meshgrid(np.linspace(0, w - 1, n), np.linspace(0, h - 1, n))
    page = np.stack([xs.ravel(), ys.ravel()], 1)
    img = cmap(page)
    H, _ = cv2.findHomography(page.astype(np.float32), img.astype(np.float32), 0)
    if H is None:
        raise ValueError("fit_homography: degenerate page -> image map")
    return H


def perturb_homography(H: np.ndarray, page_size: tuple[int, int], noise_px: float,
                       rng: np.random.Generator) -> np.ndarray:
    """H with its 4 page-corner images moved by N(0, noise_px): a stage-0 estimate's typical error."""
    ph, pw = page_size
    corners = np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], np.float64)
    img = apply_homography(H, corners) + rng.normal(0.0, noise_px, (4, 2))
    return cv2.getPerspectiveTransform(corners.astype(np.float32), img.astype(np.float32)).astype(np.float64)


@dataclass
class SmoothWarp:
    """A small smooth displacement of the page (page px): affine part plus one low-frequency wave.

    __call__(q) = q + d(q); inverse(p) solves q + d(q) = p by four fixed-point steps (d is small and
    smooth: with the training configs' warps the residual is under 1e-5 px, measured on 200 draws).
    """

    centre: np.ndarray
    A: np.ndarray  # (2, 2) linear part minus identity
    t: np.ndarray  # (2,) translation
    amp: np.ndarray  # (2,) wave amplitude
    k: np.ndarray  # (2, 2) wave vectors (rad / px) for the x and y displacement
    phase: np.ndarray  # (2,)

    @classmethod
    def random(cls, rng: np.random.Generator, shift_px: float, rot_deg: float, scale_frac: float,
               wave_px: float, layout: PaperLayout = PAGE) -> "SmoothWarp":
        a = np.deg2rad(rng.normal(0, rot_deg))
        s = rng.normal(0, scale_frac, 2)
        A = np.array([[np.cos(a) * (1 + s[0]) - 1, -np.sin(a)], [np.sin(a), np.cos(a) * (1 + s[1]) - 1]])
        lam = rng.uniform(300, 1500, 2)
        ang = rng.uniform(0, np.pi, 2)
        k = np.stack([np.cos(ang), np.sin(ang)], 1) * (2 * np.pi / lam)[:, None]
        return cls(np.array([layout.width / 2, layout.height / 2]), A, rng.normal(0, shift_px, 2),
                   rng.normal(0, wave_px, 2), k, rng.uniform(0, 2 * np.pi, 2))

    def displacement(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, np.float64).reshape(-1, 2)
        d = (q - self.centre) @ self.A.T + self.t
        return d + self.amp * np.sin(q @ self.k.T + self.phase)

    def __call__(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, np.float64).reshape(-1, 2)
        return q + self.displacement(q)

    def inverse(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, np.float64).reshape(-1, 2)
        q = p.copy()
        for _ in range(4):
            q = p - self.displacement(q)
        return q


# ---------------------------------------------------------------- stage 0
def stage0_sample(syn: SyntheticImage, side: int, stride: int, sigma: float) -> Sample:
    """Letterboxed captured image; orientation class; key-point heatmaps in the INPUT frame.

    The key points follow the page wherever the capture turned it. Stage 0 runs the key-point head
    on the image it turned upright, which is the k = 0 case of this training distribution.
    """
    x, f = letterbox(syn.image, side)
    pts_img = syn.page_to_image(keypoint_page_positions(syn.page))
    pts_in = letterbox_points(pts_img, f)
    ih, iw = syn.image.shape[:2]
    inside = ((pts_img[:, 0] >= 0) & (pts_img[:, 0] <= iw - 1) & (pts_img[:, 1] >= 0) & (pts_img[:, 1] <= ih - 1))
    shape = out_shape((side, side), stride)
    hm = gaussian_maps(np.where(inside[:, None], heatmap_coords(pts_in, stride), np.nan), shape, sigma)
    xy = np.where(inside[:, None], pts_in, np.nan).astype(np.float32)
    return to_chw(x), {"orientation": np.int64(syn.orientation % 4), "keypoints": hm,
                       "keypoints_xy": xy, "keypoints_valid": inside.astype(np.float32)}


# ---------------------------------------------------------------- stage 1
@dataclass
class NormalizedPage:
    """Stage 1's input frame for one image: the page seen through a (perturbed) homography."""

    H: np.ndarray  # page px -> upright image px (the simulated stage-0 estimate)
    truth: CoordinateMap  # page px -> upright image px (exact)
    upright: np.ndarray
    scale: float

    def crossings(self, layout: PaperLayout = PAGE) -> np.ndarray:
        """(M, 2) true major-grid crossings in normalized px (NaN where outside the image)."""
        pos, _ = major_lattice(layout.shape)
        return self.page_points_to_normalized(pos)

    def page_points_to_normalized(self, pts: np.ndarray) -> np.ndarray:
        img = self.truth(pts)
        ih, iw = self.upright.shape[:2]
        bad = (img[:, 0] < 0) | (img[:, 0] > iw - 1) | (img[:, 1] < 0) | (img[:, 1] > ih - 1)
        out = apply_homography(np.linalg.inv(self.H), img) * self.scale
        out[bad] = np.nan
        return out

    def grid_lines(self, layout: PaperLayout = PAGE, step: float = 8.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Major horizontal and vertical grid lines as normalized-px polylines."""
        xs, ys = layout.grid_lines(major=True)
        xs = [x for x in xs if x <= layout.width - 1]
        ys = [y for y in ys if 0 <= y <= layout.height - 1]
        tx = np.arange(0, layout.width - 1 + step, step).clip(0, layout.width - 1)
        ty = np.arange(0, layout.height - 1 + step, step).clip(0, layout.height - 1)
        h = [self.page_points_to_normalized(np.stack([tx, np.full_like(tx, y)], 1)) for y in ys]
        v = [self.page_points_to_normalized(np.stack([np.full_like(ty, x), ty], 1)) for x in xs]
        return h, v

    def window(self, x0: int, y0: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        cmap = CoordinateMap.from_homography(self.H, PAGE.shape, self.upright.shape[:2], step=16)
        return remap_window(cmap, self.upright, self.scale, x0, y0, h, w)


def normalized_page(syn: SyntheticImage, scale: float, noise_frac: float, rng: np.random.Generator) -> NormalizedPage:
    """Stage 1's view: the truth map's best homography, its corners jittered by noise_frac x long side."""
    truth, upright = upright_page_map(syn)
    H = fit_homography(truth)
    if noise_frac > 0:
        H = perturb_homography(H, truth.dst_size, noise_frac * max(upright.shape[:2]), rng)
    return NormalizedPage(H, truth, upright, scale)


def stage1_sample(syn: SyntheticImage, scale: float, crop: tuple[int, int] | None, stride: int, sigma: float,
                  noise_frac: float, rng: np.random.Generator, line_width: float = 1.0,
                  layout: PaperLayout = PAGE) -> Sample:
    """A (random crop of the) normalized page; crossing heatmap, h/v line maps and the valid mask."""
    npage = normalized_page(syn, scale, noise_frac, rng)
    full = layout.shape_at(scale)
    h, w = crop if crop is not None else full
    x0 = int(rng.integers(0, max(1, full[1] - w + 1))) if crop is not None else 0
    y0 = int(rng.integers(0, max(1, full[0] - h + 1))) if crop is not None else 0
    img, valid = npage.window(x0, y0, h, w)
    return to_chw(img), stage1_targets(npage, (x0, y0, h, w), stride, sigma, valid, line_width, layout)


def stage1_targets(npage: NormalizedPage, win: tuple[int, int, int, int], stride: int, sigma: float,
                   valid: np.ndarray, line_width: float = 1.0, layout: PaperLayout = PAGE) -> dict[str, np.ndarray]:
    x0, y0, h, w = win
    shape = out_shape((h, w), stride)
    off = np.array([x0, y0], np.float64)
    cross = npage.crossings(layout) - off
    hl, vl = npage.grid_lines(layout)
    to_hm = lambda p: heatmap_coords(p - off, stride)  # noqa: E731
    hmap = draw_polylines([to_hm(p) for p in hl], shape, line_width).max(axis=0, initial=0)
    vmap = draw_polylines([to_hm(p) for p in vl], shape, line_width).max(axis=0, initial=0)
    return {"gridpoints": point_heatmap(heatmap_coords(cross, stride), shape, sigma),
            "gridlines": np.stack([hmap, vmap]).astype(np.float32) / 255.0,
            "valid": _downsample(valid[None], stride, shape).astype(np.float32)}


# ---------------------------------------------------------------- stage 2
def trace_width_px(scale: float, layout: PaperLayout = PAGE) -> float:
    """Printed trace width in rectified px at `scale` (render.trace_masks' default)."""
    return layout.trace_line_pt * layout.px_per_pt * scale


def stage2_window(rng: np.random.Generator, scale: float, crop: tuple[int, int],
                  layout: PaperLayout = PAGE) -> tuple[int, int]:
    """Top-left (x0, y0) of a random crop, centred on a random row's signal, in rectified px."""
    full_h, full_w = layout.shape_at(scale)
    h, w = crop
    r = int(rng.integers(len(layout.baselines_y)))
    cy = (layout.baselines_y[r] + rng.normal(0, 0.4) * layout.px_per_mv) * scale  # mostly on the trace
    cx = rng.uniform(layout.signal_x0, layout.signal_x1) * scale
    x0 = int(np.clip(round(cx - w / 2), 0, max(0, full_w - w)))
    y0 = int(np.clip(round(cy - h / 2), 0, max(0, full_h - h)))
    return x0, y0


def stage2_sample(syn: SyntheticImage, scale: float, crop: tuple[int, int] | None, stride: int,
                  rng: np.random.Generator, warp: SmoothWarp | None = None, layout: PaperLayout = PAGE) -> Sample:
    """A (random crop of the) rectified page and the 4 row masks drawn where the traces really are.

    The page is rectified through truth(warp(q)), i.e. with a small geometric error; the masks are
    the true polylines p carried to the rectified frame by warp.inverse(p), so image and target agree.
    """
    full = layout.shape_at(scale)
    h, w = crop if crop is not None else full
    x0, y0 = stage2_window(rng, scale, (h, w), layout) if crop is not None else (0, 0)
    img, valid = remap_window(syn.page_to_image, syn.image, scale, x0, y0, h, w, warp=warp)
    return to_chw(img), stage2_targets(syn.page, (x0, y0, h, w), scale, stride, valid, warp)


def stage2_targets(page: RenderedPage, win: tuple[int, int, int, int], scale: float, stride: int,
                   valid: np.ndarray, warp: SmoothWarp | None = None) -> dict[str, np.ndarray]:
    x0, y0, h, w = win
    polys = []
    for pts in page.traces:
        p = np.asarray(pts, np.float64)
        # where the rectified image shows true page point p: q with warp(q) = p
        q = warp.inverse(p) if warp is not None else p
        q = q * scale - [x0, y0]
        polys.append(q)
    masks = draw_polylines(polys, (h, w), trace_width_px(scale, page.layout)).astype(np.float32) / 255.0
    shape = out_shape((h, w), stride)
    return {"traces": _downsample(masks, stride, shape), "valid": _downsample(valid[None], stride, shape)}
