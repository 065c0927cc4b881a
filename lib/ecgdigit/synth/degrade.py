"""Turn the clean rendered page (type 0001) into every competition image type, with exact geometry.

Every image is made in three steps that keep geometry and appearance apart:
  1. page-space textures that sit on the paper (tint, stains, mould, dirt, fold shading, holes) are
     applied to the clean page without moving anything;
  2. one analytic warp g: page -> image (warps.PageWarp: creases -> curl -> camera -> lens -> quarter
     turn) places the page in the capture frame; the image is rendered by one cv2.remap through g's
     numerical inverse sampled on a lattice, the out-of-page scene composited through the paper alpha;
  3. image-space effects (light, shadows, glare, moire, grey conversion, blur, noise, JPEG) that
     again move nothing.
The ground truth is page_to_image = CoordinateMap.from_function(g, page size, image size, step=8).

IMAGE_TYPE_SPECS below is the whole recipe of each type, in one table.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..config import IMAGE_TYPES, PAGE, PHOTO_SIZES, SCAN_SIZE
from ..geometry.coordinate_map import CoordinateMap
from ..geometry.orientation import rotated_size
from . import textures as tx
from .warps import Crease, Curl, PageWarp, fit_camera_to_frame, photo_camera, scan_camera

logger = logging.getLogger(__name__)

PAGE_SIZE: tuple[int, int] = PAGE.shape
LATTICE_STEP = 8.0

# Probability of 0, 1, 2, 3 quarter turns (np.rot90 sense) when orientation is not given.
NO_TURNS = (1.0, 0.0, 0.0, 0.0)
SCAN_TURNS = (0.88, 0.04, 0.04, 0.04)
PHOTO_TURNS = (0.82, 0.06, 0.06, 0.06)
REAL_BW_SCAN_SIZE = (1554, 2038)  # realdev's real print-and-scans

# A black-and-white laser print of ECG-image-kit's red page, fitted to realdev's real scans
# (tools/bench_fidelity.py prints the figures side by side): the red grid comes out dark grey,
# printed as a halftone screen (dotted minor lines, dashed major ones), the trace as dark-grey
# toner slightly wider than drawn, paper light grey with grain; the scanner then keeps those levels
# (no push of paper to white and ink to black). Ranges are (lo, hi) drawn uniformly per page.
BW_PRINT = {
    # Fitted to realdev's 4 real scans as a kind (figures on the rectified page scale; the 3 pages
    # printed like each other, the 4th prints its minor lines as dark as the major ones). What makes
    # them hard to read is how dark the grid's solid stretches are next to the trace: along the major
    # lines p90 146-153 against a trace core of 154-158 (tools/bench_fidelity.py's grid/trace 0.96),
    # with a quarter of the lines' length solid, much of it in runs of 20 px and more. The SYNTH_VERSION 6
    # recipe had a darker trace (161-174) than its solid grid (p90 127-138), a solid share of 0.4-0.5 in
    # short runs, and twice the real paper's noise: its twins read 2.0 dB easier (3 seeds; bench 2.7).
    # grid: darkness (255 - grey) along the major lines p10/p50/p90 real 39-45 / 55-71 / 146-153
    "grid_dark": (145.0, 180.0),  # darkness of a major grid line's solid core
    "grid_gamma": (0.62, 0.75),  # minor lines' darkness relative to major: (24 / 179) ** gamma
    "grid_gain": (0.3, 0.6),  # px the toner widens a grid line by (real major lines 2.8 px across)
    "halftone": (0.5, 0.8),  # depth of the screen's modulation of the grid
    "halftone_pitch": (3.0, 4.5),  # page px
    # the trace: solid toner, widened and softened by the print; core darkness real 154-158 (139 on
    # the 4th page), half-maximum width 3.1-3.4 px
    "ink_dark": (158.0, 182.0),  # darkness of solid toner
    "dot_gain": (0.8, 1.2),  # px the toner widens a stroke by
    "spread_sigma": (0.4, 0.7),  # page px: the toner's soft edge
    # solid and broken stretches along a line (_line_pattern): real solid (darker than 100) share
    # 0.23-0.31, of it 0.26-0.41 in runs of 20 px and more
    "line_solid": (0.25, 0.4),  # share of a grid line's length that prints solid
    "line_weak": (0.25, 0.4),  # toner density of the broken stretches, relative to solid
    "line_run": (1.0, 2.0),  # page px: smoothing of the pattern's short dashes
    "line_long": (8.0, 16.0),  # page px: smoothing of its long stretches
    "long_mix": (0.3, 0.6),  # share of the pattern's variance in the long stretches
    "paper": (250.0, 255.0),
    "grain": (0.1, 0.4),  # paper grain std, grey levels
    # the scan of the print (drawn in _image_space, not by bw_print): the real paper's noise is half
    # the SYNTH_VERSION 6 twins' (image_stats noise 2.3 against 4.5)
    "scan_blur": (0.2, 0.5),  # image px: the scanner's optics
    "scan_noise": (0.2, 0.7),  # sensor noise std, grey levels
}


@dataclass(frozen=True)
class TypeSpec:
    """Recipe of one image type. Ranges (lo, hi) are inclusive counts drawn uniformly."""

    capture: str  # "clean" | "scan" | "photo" (of paper) | "screen" (photo of a monitor)
    grey: bool = False  # black-and-white capture: one channel replicated to RGB
    stains: tuple[int, int] = (0, 0)  # coffee / water stains
    mould: tuple[int, int] = (0, 0)  # mould colonies
    creases: tuple[int, int] = (0, 0)  # folds that displace the paper
    tears: tuple[int, int] = (0, 0)  # torn-off corners
    holes: tuple[int, int] = (0, 0)  # holes showing the background
    dirt: float = 0.0  # grime amount (0 = none)
    curl: float = 0.0  # max paper curl height, as a fraction of the page width
    turns: tuple[float, float, float, float] = NO_TURNS
    # the page went through a black-and-white laser printer before the scan (bw_print below)
    printed_bw: bool = False
    scan_sizes: tuple[tuple[int, int], ...] = (SCAN_SIZE,)  # (h, w) before the turn, drawn uniformly


IMAGE_TYPE_SPECS: dict[str, TypeSpec] = {
    "0001": TypeSpec("clean"),
    "0003": TypeSpec("scan", turns=SCAN_TURNS),
    "0004": TypeSpec("scan", grey=True, turns=SCAN_TURNS, printed_bw=True, scan_sizes=(SCAN_SIZE, REAL_BW_SCAN_SIZE)),
    "0005": TypeSpec("photo", creases=(0, 1), dirt=0.2, curl=0.05, turns=PHOTO_TURNS),
    "0006": TypeSpec("screen", turns=PHOTO_TURNS),
    "0009": TypeSpec("photo", stains=(1, 5), creases=(0, 1), dirt=0.3, curl=0.07, turns=PHOTO_TURNS),
    "0010": TypeSpec("photo", stains=(0, 2), creases=(1, 4), tears=(0, 2), holes=(0, 5), dirt=1.0, curl=0.06,
                     turns=PHOTO_TURNS),
    "0011": TypeSpec("scan", mould=(2, 12), dirt=0.3, turns=SCAN_TURNS),
    "0012": TypeSpec("scan", grey=True, mould=(2, 12), dirt=0.3, turns=SCAN_TURNS, printed_bw=True),
}
assert set(IMAGE_TYPE_SPECS) == set(IMAGE_TYPES), "every image type needs a recipe"


@dataclass
class Degraded:
    """A degraded image and its exact geometry."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    page_to_image: CoordinateMap  # dst = page frame (1700 x 2200), src = image frame
    orientation: int  # quarter turns (np.rot90 sense) applied to the page
    params: dict = field(default_factory=dict)  # what was drawn (JSON-friendly)
    warp: PageWarp | None = None  # the analytic warp behind page_to_image (forward / inverse)


# ---------------------------------------------------------------- entry point
def degrade(page_rgb: np.ndarray, image_type: str, rng: np.random.Generator, *, orientation: int | None = None,
            size: tuple[int, int] | None = None, max_side: int | None = None, photometric: bool = True) -> Degraded:
    """Make one image of `image_type` from the clean page.

    orientation: quarter turns; None draws it from the type's `turns` probabilities.
    size: final image (height, width) override (after the turn); max_side: draw only capture sizes
    whose long side fits (scaling the smallest down if none does). photometric=False keeps the
    geometry (same warp for the same seed) but skips every texture, light, noise and compression.
    """
    if image_type not in IMAGE_TYPE_SPECS:
        raise ValueError(f"degrade: unknown image_type {image_type!r}; expected one of {sorted(IMAGE_TYPE_SPECS)}")
    page_rgb = np.asarray(page_rgb)
    if page_rgb.shape != (*PAGE_SIZE, 3) or page_rgb.dtype != np.uint8:
        raise ValueError(f"degrade: page must be {PAGE_SIZE + (3,)} uint8 RGB, got {page_rgb.shape} {page_rgb.dtype}")
    spec = IMAGE_TYPE_SPECS[image_type]
    # independent streams so that geometry does not depend on which photometric effects ran
    seeds = rng.integers(0, 2 ** 63 - 1, size=4)
    r_turn, r_geo, r_page, r_img = (np.random.Generator(np.random.PCG64(int(s))) for s in seeds)
    k = int(r_turn.choice(4, p=np.asarray(spec.turns) / np.sum(spec.turns))) if orientation is None else int(orientation) % 4
    params: dict = {"image_type": image_type, "orientation": k, "photometric": photometric}

    if spec.capture == "clean":
        return _clean(page_rgb, k, size, params)

    if size is not None:
        frame = rotated_size((int(size[0]), int(size[1])), k)
    else:
        frame = _draw_frame(spec, r_geo, max_side)
    params["frame_size"] = frame
    warp = _draw_warp(spec, r_geo, frame, k, params)

    if photometric:
        page_rgba = _page_space(spec, r_page, page_rgb, warp, params)
        bg = (tx.scanner_background(r_img, frame) if spec.capture == "scan"
              else tx.table_background(r_img, frame, dark=spec.capture == "screen"))
    else:
        page_rgba = cv2.cvtColor(page_rgb, cv2.COLOR_RGB2RGBA)
        bg = np.full((*frame, 3), 128, np.uint8)
    # a flatbed scan of a laser print samples sharp toner edges: bicubic keeps a thin solid line's
    # core dark where bilinear spreads it over two pixels at half strength
    img = _render(page_rgba, warp, frame, bg, shadow=photometric and spec.capture != "screen", rng=r_img,
                  cubic=photometric and spec.printed_bw)
    if photometric:
        img = _image_space(spec, r_img, img, warp, params)
    img = np.ascontiguousarray(np.rot90(img, k))
    final = img.shape[:2]
    if photometric:
        img = _jpeg(img, r_img, (70, 95) if spec.capture != "scan" else (75, 97), params)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    p2i = CoordinateMap.from_function(warp.forward, PAGE_SIZE, tuple(final), step=LATTICE_STEP)
    return Degraded(img, p2i, k, params, warp)


# ---------------------------------------------------------------- geometry
def _clean(page_rgb: np.ndarray, k: int, size, params: dict) -> Degraded:
    """0001: the page itself (resized only if asked, turned only if asked)."""
    frame = PAGE_SIZE if size is None else rotated_size((int(size[0]), int(size[1])), k)
    fx, fy = frame[1] / PAGE_SIZE[1], frame[0] / PAGE_SIZE[0]
    P = np.array([[fx, 0, 0, 0.5 * fx - 0.5], [0, fy, 0, 0.5 * fy - 0.5], [0, 0, 0, 1.0]])
    warp = PageWarp(PAGE_SIZE, frame, P, orientation=k)
    img = page_rgb.copy() if frame == PAGE_SIZE else cv2.resize(
        page_rgb, (frame[1], frame[0]), interpolation=cv2.INTER_AREA if fx < 1 else cv2.INTER_LINEAR)
    img = np.ascontiguousarray(np.rot90(img, k))
    p2i = CoordinateMap.from_function(warp.forward, PAGE_SIZE, img.shape[:2], step=LATTICE_STEP)
    params["frame_size"] = frame
    return Degraded(img, p2i, k, params, warp)


def _draw_frame(spec: TypeSpec, rng: np.random.Generator, max_side: int | None) -> tuple[int, int]:
    """Capture frame (h, w) before the quarter turn."""
    if spec.capture == "scan":
        h, w = spec.scan_sizes[int(rng.integers(len(spec.scan_sizes)))] if len(spec.scan_sizes) > 1 else spec.scan_sizes[0]
        if max_side is not None and max(h, w) > max_side:
            f = max_side / max(h, w)
            h, w = int(round(h * f)), int(round(w * f))
        return h, w
    sizes = [s for s in PHOTO_SIZES if max_side is None or max(s) <= max_side]
    if not sizes:
        s = min(PHOTO_SIZES, key=max)
        f = max_side / max(s)
        sizes = [(int(round(s[0] * f)), int(round(s[1] * f)))]
    h, w = sizes[rng.integers(len(sizes))]
    # now and then the phone is held upright while the page lies landscape: a smaller page in the frame
    return (w, h) if rng.random() < 0.12 else (h, w)


def _draw_warp(spec: TypeSpec, rng: np.random.Generator, frame: tuple[int, int], k: int, params: dict) -> PageWarp:
    ph, pw = PAGE_SIZE
    if spec.capture == "scan":
        angle = float(np.clip(rng.normal(0, 1.0), -2.8, 2.8))
        cam = scan_camera(PAGE_SIZE, frame, rng, angle, scale_jitter=0.02, shift_px=0.01 * max(frame))
        params.update(scan_angle_deg=angle)
        return PageWarp(PAGE_SIZE, frame, cam, orientation=k)

    creases = []
    for _ in range(rng.integers(spec.creases[0], spec.creases[1] + 1)):
        # folds mostly in halves / thirds of the page, a little askew
        vertical = rng.random() < 0.5
        ang = np.deg2rad(rng.normal(0, 3.0)) + (0.0 if vertical else np.pi / 2)
        n = (float(np.cos(ang)), float(np.sin(ang)))
        frac = rng.choice([1 / 2, 1 / 3, 2 / 3, 1 / 4, 3 / 4]) + rng.normal(0, 0.03)
        off = float(frac * (pw if vertical else ph) * (n[0] if vertical else n[1]))
        creases.append(Crease(n, off, shift=float(rng.uniform(0.5, 3.0)), width=float(rng.uniform(15, 35)),
                              ridge=float(rng.uniform(-30, 30)), ridge_width=float(rng.uniform(30, 80))))
    curl = None
    if spec.curl > 0:
        a = np.deg2rad(rng.normal(0, 8)) + (0.0 if rng.random() < 0.7 else np.pi / 2)
        amp = spec.curl * pw
        curl = Curl(direction=(float(np.cos(a)), float(np.sin(a))), centre=(pw / 2 + rng.normal(0, 200), ph / 2),
                    half_extent=pw / 2, a2=float(rng.uniform(-1, 1) * amp), a3=float(rng.uniform(-0.5, 0.5) * amp))
        if rng.random() < 0.3:
            curl.corner_lift = float(rng.uniform(0.3, 1.0) * amp)
            curl.corner = (float(rng.choice([0, pw])), float(rng.choice([0, ph])))
            curl.corner_radius = float(rng.uniform(300, 900))
    tilt = float(min(abs(rng.normal(0, 10)), 28.0))
    roll = float(np.clip(rng.normal(0, 5), -15, 15))
    dist = float(rng.uniform(1.0, 2.0))
    cam0 = photo_camera(PAGE_SIZE, rng, tilt, roll, dist)
    tmp = PageWarp(PAGE_SIZE, frame, cam0, creases=creases, curl=curl)
    t = np.linspace(0, 1, 41)
    outline = np.concatenate([np.stack([t * (pw - 1), 0 * t], 1), np.stack([t * (pw - 1), 0 * t + ph - 1], 1),
                              np.stack([0 * t, t * (ph - 1)], 1), np.stack([0 * t + pw - 1, t * (ph - 1)], 1)])
    fill = float(rng.uniform(0.5, 0.9) if spec.capture == "screen" else rng.uniform(0.62, 0.95))
    cam = fit_camera_to_frame(cam0, tmp.project(outline), frame, rng, fill)
    lens = (float(rng.uniform(-0.08, 0.05)), float(rng.uniform(-0.02, 0.02)))
    params.update(tilt_deg=tilt, roll_deg=roll, distance_page_widths=dist, fill=fill, lens_k=lens,
                  n_creases=len(creases), curl=None if curl is None else {"a2": curl.a2, "a3": curl.a3})
    return PageWarp(PAGE_SIZE, frame, cam, orientation=k, creases=creases, curl=curl, lens_k=lens)


def _image_to_page(warp: PageWarp, frame: tuple[int, int]) -> CoordinateMap:
    """The inverse warp on the frame's lattice (before the quarter turn): frame px -> page px."""
    pts = CoordinateMap.lattice_points(frame, LATTICE_STEP).reshape(-1, 2)
    init = None
    if warp.creases or warp.curl is not None:
        # coarse to fine: Newton on a 4x coarser lattice, then 1-2 steps from its interpolation
        coarse_step = 4 * LATTICE_STEP
        cp = CoordinateMap.lattice_points(frame, coarse_step)
        cpp, _ = warp.inverse_frame(cp.reshape(-1, 2))
        init = CoordinateMap(cpp.reshape(cp.shape).astype(np.float32), coarse_step, frame, PAGE_SIZE)(pts)
    pp, res = warp.inverse_frame(pts, init=init)
    pp[~(res < 0.25)] = -1e4  # unsolved far-background points: definitely off the page
    gh, gw = CoordinateMap.lattice_shape(frame, LATTICE_STEP)
    return CoordinateMap(pp.reshape(gh, gw, 2).astype(np.float32), LATTICE_STEP, frame, PAGE_SIZE)


def _local_scale(warp: PageWarp) -> float:
    """Smallest image px per page px over the page (for choosing a pre-filter)."""
    ph, pw = PAGE_SIZE
    pts = np.array([[x, y] for x in (0.1 * pw, 0.5 * pw, 0.9 * pw) for y in (0.1 * ph, 0.5 * ph, 0.9 * ph)])
    f = warp.forward_frame(pts)
    fx = warp.forward_frame(pts + [4.0, 0.0]) - f
    fy = warp.forward_frame(pts + [0.0, 4.0]) - f
    return float(min(np.linalg.norm(fx, axis=1).min(), np.linalg.norm(fy, axis=1).min()) / 4.0)


def _render(page_rgba: np.ndarray, warp: PageWarp, frame: tuple[int, int], bg: np.ndarray, shadow: bool,
            rng: np.random.Generator, cubic: bool = False) -> np.ndarray:
    """The page seen through the warp, over the background; frame before the quarter turn."""
    inv = _image_to_page(warp, frame)
    lattice = inv.src_xy
    src = page_rgba
    # premultiply so that fringes at holes / page edges blend to the background, not to black
    if (src[..., 3] < 255).any():
        a4 = cv2.merge([src[..., 3]] * 3 + [np.full(PAGE_SIZE, 255, np.uint8)])
        src = cv2.multiply(src, a4, scale=1.0 / 255)
    s = _local_scale(warp)
    if s < 0.8:  # minifying: pre-filter so thin lines do not alias
        f = min(1.0, 1.3 * s)
        small = cv2.resize(src, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / src.shape[1], small.shape[0] / src.shape[0]
        # pixel centres: x_small = (x + 0.5) * f - 0.5 (affine, so it commutes with the interpolation)
        lattice = lattice * np.float32([fx, fy]) + np.float32([0.5 * fx - 0.5, 0.5 * fy - 0.5])
        src = small
    # dense per-pixel page coordinates: bilinear between lattice points (warpAffine = a faster remap here)
    M = np.float32([[1.0 / LATTICE_STEP, 0, 0], [0, 1.0 / LATTICE_STEP, 0]])
    maps = cv2.warpAffine(lattice, M, (frame[1], frame[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    out = cv2.remap(src, maps, None, interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT,
                    borderValue=(0, 0, 0, 0))
    inv_a = 255 - out[..., 3]
    if shadow:  # the page (and its holes) cast a soft shadow on the table
        lo = tx.low_res_shape(frame, 256)
        a_lo = cv2.resize(out[..., 3], (lo[1], lo[0]), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        d = rng.uniform(1, 4, 2) * rng.choice([-1, 1], 2)
        M = np.float32([[1, 0, d[0]], [0, 1, d[1]]])
        sh = cv2.GaussianBlur(cv2.warpAffine(a_lo, M, (lo[1], lo[0])), (0, 0), rng.uniform(1.0, 3.0))
        g = _to_gain_u8(np.repeat((1.0 - rng.uniform(0.2, 0.5) * sh)[..., None], 3, axis=2), frame)
        bg = cv2.multiply(bg, g, scale=1.0 / 128)
    # premultiplied over: page + background * (1 - alpha), all uint8
    return cv2.add(out[..., :3], cv2.multiply(bg, cv2.merge([inv_a, inv_a, inv_a]), scale=1.0 / 255))


# ---------------------------------------------------------------- appearance
def _page_space(spec: TypeSpec, rng: np.random.Generator, page_rgb: np.ndarray, warp: PageWarp,
                params: dict) -> np.ndarray:
    """Textures that sit on the paper; returns RGBA (alpha = paper present)."""
    rgb = page_rgb
    if spec.capture == "screen":
        # the monitor shows the page at its own resolution
        pitch = float(PAGE_SIZE[1] / rng.uniform(1000, 2560))
        params["screen_pitch_page_px"] = pitch
        rgb = cv2.GaussianBlur(rgb, (0, 0), 0.45 * pitch)
    if spec.printed_bw:
        rgb, params["bw_print"] = bw_print(rgb, rng)
    rgb_gain = None  # (H, W, 3) float32 multiplicative fields, only built when a texture needs them
    grey_gain = None
    if spec.stains[1] > 0:
        n = int(rng.integers(spec.stains[0], spec.stains[1] + 1))
        if n:
            rgb_gain, params["stains"] = tx.stain_gain(rng, PAGE_SIZE, n)
    if spec.dirt > 0:
        grey_gain = tx.dirt_gain(rng, PAGE_SIZE, spec.dirt * rng.uniform(0.3, 1.0))
    if warp.creases:
        cg = tx.crease_gain(PAGE_SIZE, warp.creases, rng)
        grey_gain = cg if grey_gain is None else grey_gain * cg
    mould = None
    if spec.mould[1] > 0:
        mould = tx.mould_layer(rng, PAGE_SIZE, int(rng.integers(spec.mould[0], spec.mould[1] + 1)))
    # every field is applied as a uint8 cv2 multiply / blend (128 = gain 1): fast on the 3.7 MP page
    if rgb_gain is not None:
        rgb = cv2.multiply(rgb, np.clip(rgb_gain * 128.0, 0, 255).astype(np.uint8), scale=1.0 / 128)
    if grey_gain is not None:
        g = np.clip(grey_gain * 128.0, 0, 255).astype(np.uint8)
        rgb = cv2.multiply(rgb, cv2.merge([g, g, g]), scale=1.0 / 128)
    if mould is not None:
        a, col, params["mould"] = mould
        # a yellowish discoloured halo around the colonies, then the opaque-ish mould on top
        small = cv2.resize(a, (PAGE_SIZE[1] // 8, PAGE_SIZE[0] // 8), interpolation=cv2.INTER_AREA)
        halo = cv2.GaussianBlur(small, (0, 0), 3)[..., None] * np.array([0.05, 0.12, 0.35], np.float32)
        rgb = cv2.multiply(rgb, _to_gain_u8(1.0 - halo, PAGE_SIZE), scale=1.0 / 128)
        rgb = cv2.blendLinear(rgb, col, 1.0 - a, a)
    if spec.capture != "screen" and not spec.printed_bw:
        # paper tint: slightly warm / grey off-white, uniform
        tint = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.88, 0.99)]) * rng.uniform(0.93, 1.0)
        rgb = cv2.multiply(rgb, (*tint.tolist(), 0.0))
        params["paper_tint"] = tint.round(4).tolist()
    n_t = int(rng.integers(spec.tears[0], spec.tears[1] + 1))
    n_h = int(rng.integers(spec.holes[0], spec.holes[1] + 1))
    rgba = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    if n_t or n_h:
        rgba[..., 3], params["missing"] = tx.paper_alpha(rng, PAGE_SIZE, n_t, n_h)
    return rgba


def bw_print(page_rgb: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The red ECG page as a black-and-white laser printer puts it on paper (grey RGB uint8), see BW_PRINT."""
    p = {k: float(rng.uniform(*v)) for k, v in BW_PRINT.items() if not k.startswith("scan_")}
    r = np.ascontiguousarray(page_rgb[..., 0])
    # the red grid is invisible in the red channel and dark in the luminance: red minus luminance is
    # the grid alone (179 on a full major line (255, 0, 0), 24 on a minor one), the red channel the ink
    v = cv2.subtract(r, cv2.cvtColor(page_rgb, cv2.COLOR_RGB2GRAY))
    # toner widens grid lines as it does the trace (realdev's major lines: 2.8 px across, drawn 1.4)
    v = cv2.addWeighted(v, 1.0 - p["grid_gain"], cv2.dilate(v, np.ones((2, 2), np.uint8)), p["grid_gain"], 0.0)
    rel = np.minimum(np.arange(256, dtype=np.float32) / 179.0, 1.0) ** np.float32(p["grid_gamma"])
    # a 45-degree halftone screen: light tones (minor lines) print as dots, full tones (major lines)
    # solid; cos(k(x+y)/sqrt2) cos(k(x-y)/sqrt2) = (cos(sqrt2 k x) + cos(sqrt2 k y)) / 2
    depth = p["halftone"] * (1.0 - rel)
    solid, screened = np.take(p["grid_dark"] * rel * (1.0 - depth), v), np.take(2.0 * p["grid_dark"] * rel * depth, v)
    h, w = r.shape
    k = np.float32(np.sqrt(2.0) * 2 * np.pi / p["halftone_pitch"])
    screen = 0.5 + 0.25 * (np.cos(k * np.arange(w, dtype=np.float32))[None, :]
                           + np.cos(k * np.arange(h, dtype=np.float32))[:, None])
    grid = (solid + screened * screen) * _line_pattern(rng, v, p)
    # dot gain: toner spreads the stroke by about `dot_gain` px with a solid core, then softens its edges
    ink = 255.0 - r.astype(np.float32)
    ink = cv2.addWeighted(ink, 1.0 - p["dot_gain"], cv2.dilate(ink, np.ones((2, 2), np.uint8)), p["dot_gain"], 0.0)
    ink = cv2.GaussianBlur(ink, (0, 0), p["spread_sigma"]) * np.float32(p["ink_dark"] / 255.0)
    dark = np.maximum(ink, grid)  # toner where either prints; never a double layer
    grain = (rng.standard_normal((h // 2, w // 2), dtype=np.float32) * np.float32(p["grain"]))
    paper = np.float32(p["paper"]) + cv2.resize(grain, (w, h), interpolation=cv2.INTER_LINEAR)
    out = np.clip(paper - dark * (paper * np.float32(1 / 255.0)), 0, 255).astype(np.uint8)
    return cv2.merge([out, out, out]), {k: round(v, 3) for k, v in p.items()}


def _line_pattern(rng: np.random.Generator, v: np.ndarray, p: dict) -> np.ndarray:
    """(H, W) float32 toner density along the printed grid lines: solid stretches and broken ones.

    A laser printer renders a thin tinted line through its halftone cells: along the line some
    stretches print solid and others broken (realdev's scans: a major line's darkness runs from
    under a third of the solid's to the solid's within a few pixels, where the kit's were uniform).
    Each line (a run of grid rows, or columns, in `v`) gets its own pattern, the same across its
    width; a pixel takes the pattern of the direction whose grid tone dominates there. The pattern
    has two scales: short dashes and long stretches (the real scans print a quarter of a major
    line's length solid, much of it in runs of 20 px and more, as dark as the trace).
    """
    from scipy.special import ndtri

    hrow = cv2.reduce(v, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()  # a horizontal line: a bright row
    vcol = cv2.reduce(v, 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
    thr = np.float32(ndtri(1.0 - p["line_solid"]))  # a unit-std pattern above this prints solid
    weak = np.float32(p["line_weak"])

    def lines(profile: np.ndarray) -> np.ndarray:
        on = profile > np.median(profile) + 4.0
        return np.cumsum(np.diff(np.r_[0, on.astype(np.int8)]) == 1) * on  # 0 between lines, k on the k-th

    def unit(z: np.ndarray, sigma: float) -> np.ndarray:
        z = cv2.GaussianBlur(z, (2 * int(np.ceil(3 * sigma)) + 1, 1), sigma, borderType=cv2.BORDER_REFLECT)
        return z * (np.float32(1.0) / np.maximum(z.std(axis=1, keepdims=True), np.float32(1e-6)))

    def pattern(labels: np.ndarray, length: int) -> np.ndarray:
        z = unit(rng.standard_normal((int(labels.max()) + 1, length), dtype=np.float32), p["line_run"])
        zl = unit(rng.standard_normal(z.shape, dtype=np.float32), p["line_long"])
        z = np.float32(np.sqrt(1.0 - p["long_mix"])) * z + np.float32(np.sqrt(p["long_mix"])) * zl
        solid = np.clip((z - thr) * np.float32(2.0) + np.float32(0.5), 0.0, 1.0)  # soft edges
        return (weak + (np.float32(1.0) - weak) * solid)[labels]

    fh = pattern(lines(hrow), v.shape[1])
    fv = pattern(lines(vcol), v.shape[0]).T
    return np.where(hrow[:, None] >= vcol[None, :], fh, fv)


def _to_gain_u8(gain: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A low-res float gain (1.0 = unchanged) as full-res uint8 with 128 = 1.0, for cv2.multiply."""
    g = np.clip(gain * 128.0, 0, 255).astype(np.uint8)
    return cv2.resize(g, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def _image_space(spec: TypeSpec, rng: np.random.Generator, img: np.ndarray, warp: PageWarp, params: dict) -> np.ndarray:
    """Light, shadows, glare, moire, colour, blur, noise; returns uint8 (H, W, 3) or (H, W) if grey.

    Works in uint8 with cv2 (fields at low resolution, one multiply each) to stay fast at 12 MP.
    """
    frame = img.shape[:2]
    lo = tx.low_res_shape(frame, 256)
    scan = spec.capture == "scan"
    gain = tx.lighting_gain(rng, lo, rng.uniform(0.02, 0.08) if scan else rng.uniform(0.1, 0.4))
    if spec.printed_bw:  # BW_PRINT's paper level is the scanned one: light falls off from it, not around it
        gain /= float(np.percentile(gain, 90))
    gain = np.repeat(gain[..., None], 3, axis=2)
    add = None
    if not scan:
        if rng.random() < 0.5:
            gain *= tx.shadow_gain(rng, lo, rng.uniform(0.2, 0.55))[..., None]
        # white balance / colour cast (screens: cooler)
        cast = rng.uniform(0.93, 1.04, 3) if spec.capture != "screen" else np.array(
            [rng.uniform(0.85, 1.0), rng.uniform(0.93, 1.03), rng.uniform(1.0, 1.1)])
        gain *= cast.astype(np.float32)
        params["colour_cast"] = np.round(cast, 3).tolist()
        if spec.capture == "screen" or rng.random() < 0.25:
            add = tx.glare_add(rng, lo, rng.uniform(0.05, 0.3))
    img = cv2.multiply(img, _to_gain_u8(gain, frame), scale=1.0 / 128)
    if spec.capture == "screen":
        # moire: the screen's pixel grid sampled by the camera (computed at half resolution)
        inv = _image_to_page(warp, frame)
        mx, my = inv.dense(out_size=(frame[0] // 2, frame[1] // 2), scale=0.5)
        amp = float(rng.uniform(0.05, 0.25))
        mo = tx.moire_gain(mx, my, params["screen_pitch_page_px"], amp, float(rng.normal(0, 0.02)))
        img = cv2.multiply(img, _to_gain_u8(mo, frame), scale=1.0 / 128)
        gamma = float(rng.uniform(0.8, 1.2))  # display gamma / contrast
        img = cv2.LUT(img, np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8))
        params["moire_amplitude"] = amp
    if add is not None:
        g = np.clip(add, 0, 255).astype(np.uint8)
        g = cv2.resize(g, (frame[1], frame[0]), interpolation=cv2.INTER_LINEAR)
        img = cv2.add(img, cv2.merge([g, g, g]))
    if spec.grey:
        w = np.array([rng.uniform(0.35, 0.75), 0.0, 0.0])
        w[1] = (1 - w[0]) * rng.uniform(0.5, 0.9)
        w[2] = 1 - w[0] - w[1]
        img = cv2.transform(img, w[None, :].astype(np.float32))
        params["grey_weights"] = np.round(w, 3).tolist()
    # optics: blur (defocus, and sometimes a little motion for photos)
    # a laser print's toner edges are already soft (BW_PRINT's spread): its scans measure sharper
    sigma = float((rng.uniform(*BW_PRINT["scan_blur"]) if spec.printed_bw else rng.uniform(0.3, 0.8)) if scan else rng.uniform(0.4, 1.3) * max(1.0, _local_scale(warp) * 0.8))
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    params["blur_sigma"] = sigma
    if not scan and rng.random() < 0.2:
        L = int(rng.integers(3, 8))
        kern = np.zeros((L, L), np.float32)
        kern[L // 2, :] = 1.0
        M = cv2.getRotationMatrix2D(((L - 1) / 2, (L - 1) / 2), float(rng.uniform(0, 180)), 1.0)
        kern = cv2.warpAffine(kern, M, (L, L))
        img = cv2.filter2D(img, -1, kern / max(float(kern.sum()), 1e-6))
        params["motion_blur_px"] = L
    # sensor noise: luma (scans per pixel; photos correlated by demosaicing, drawn at half res) + chroma
    nsig = float((rng.uniform(*BW_PRINT["scan_noise"]) if spec.printed_bw else rng.uniform(1.0, 4.0)) if scan else rng.uniform(2.0, 6.0))
    params["noise_sigma"] = nsig
    if scan:
        n, off = _noise_u8(rng, frame, nsig)
    else:
        n, off = _noise_u8(rng, (max(1, frame[0] // 2), max(1, frame[1] // 2)), 1.6 * nsig)
        n = cv2.resize(n, (frame[1], frame[0]), interpolation=cv2.INTER_LINEAR)
    if img.ndim == 3:
        n = cv2.merge([n, n, n])
    img = cv2.addWeighted(img, 1.0, n, 1.0, -off)
    if img.ndim == 3 and not scan:  # chroma noise, blotchy (drawn at quarter resolution)
        c, off = _noise_u8(rng, (max(1, frame[0] // 4), max(1, frame[1] // 4), 3), 0.8 * nsig)
        img = cv2.addWeighted(img, 1.0, cv2.resize(c, (frame[1], frame[0]), interpolation=cv2.INTER_LINEAR), 1.0, -off)
    if spec.grey and not spec.printed_bw:
        # black-and-white scanners push paper to white and ink to black
        lo_v, hi_v = rng.uniform(10, 60), rng.uniform(190, 240)
        img = cv2.LUT(img, np.clip((np.arange(256) - lo_v) * (255.0 / (hi_v - lo_v)), 0, 255).astype(np.uint8))
        params["bw_levels"] = (float(lo_v), float(hi_v))
    return img


def _noise_u8(rng: np.random.Generator, shape: tuple, sigma: float) -> tuple[np.ndarray, float]:
    """Noise of std ~sigma as uint8 with its mean: a sum of two uniform integers (triangular), far
    cheaper than normals at 12 MP; add it with cv2.addWeighted(img, 1, n, 1, -mean)."""
    a = max(2, int(round(np.sqrt(6.0 * sigma ** 2 + 1.0))))
    n = rng.integers(0, a, shape, dtype=np.uint8)
    n += rng.integers(0, a, shape, dtype=np.uint8)
    return n, float(a - 1)


def _jpeg(img: np.ndarray, rng: np.random.Generator, quality: tuple[int, int], params: dict) -> np.ndarray:
    q = int(rng.integers(quality[0], quality[1] + 1))
    params["jpeg_quality"] = q
    bgr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise RuntimeError("degrade: JPEG encoding failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return dec if dec.ndim == 2 else cv2.cvtColor(dec, cv2.COLOR_BGR2RGB)
