"""Photometric textures for the degradations: light, shadows, glare, backgrounds, stains, mould, dirt,
fold shading, torn paper and screen moire.

None of them moves geometry: page-space ones are applied to the clean page before the warp (they sit on
the paper and move with it), image-space ones after it. Heavy fields are drawn at low resolution and
upsampled, so the cost is dominated by a few full-resolution cv2 passes.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- generic fields
def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: float, octaves: int = 1) -> np.ndarray:
    """Zero-mean, roughly unit-variance smooth noise of `shape`, features about shape/cells across."""
    h, w = shape
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        c = cells * 2 ** o
        gh = max(2, int(round(c * h / max(h, w))) + 2)
        gw = max(2, int(round(c * w / max(h, w))) + 2)
        g = rng.standard_normal((gh, gw)).astype(np.float32)
        out += amp * cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp ** 2
        amp *= 0.5
    return out / np.sqrt(total)


def low_res_shape(shape: tuple[int, int], max_side: int = 256) -> tuple[int, int]:
    h, w = shape
    f = min(1.0, max_side / max(h, w))
    return max(2, int(round(h * f))), max(2, int(round(w * f)))


def upsample(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(field, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def lighting_gain(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    """Uneven light: a smooth multiplicative field (low res) = gradient + blotches, mean about 1."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(a) * (xx / w - 0.5) + np.sin(a) * (yy / h - 0.5))
    # a vignette-like falloff towards a random bright centre
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    vig = ((xx - cx) ** 2 + (yy - cy) ** 2) / float(max(h, w)) ** 2
    g = 1.0 + strength * (0.8 * grad - 0.9 * vig + 0.25 * smooth_noise(rng, shape, 3))
    return g.astype(np.float32)


def shadow_gain(rng: np.random.Generator, shape: tuple[int, int], depth: float) -> np.ndarray:
    """A soft cast shadow (phone, hand, lamp arm): polygon from one side, blurred edge; low res."""
    h, w = shape
    m = np.zeros(shape, np.float32)
    side = rng.integers(4)
    n = rng.integers(3, 6)
    reach = rng.uniform(0.15, 0.55)
    if side in (0, 1):  # from the left / right edge
        ys = np.sort(rng.uniform(-0.2, 1.2, n)) * h
        xs = rng.uniform(0.3, 1.0, n) * reach * w
        xs = xs if side == 0 else w - xs
        edge = w * (-0.1 if side == 0 else 1.1)
        poly = np.concatenate([[[edge, ys[0]]], np.stack([xs, ys], 1), [[edge, ys[-1]]]])
    else:  # from the top / bottom edge
        xs = np.sort(rng.uniform(-0.2, 1.2, n)) * w
        ys = rng.uniform(0.3, 1.0, n) * reach * h
        ys = ys if side == 2 else h - ys
        edge = h * (-0.1 if side == 2 else 1.1)
        poly = np.concatenate([[[xs[0], edge]], np.stack([xs, ys], 1), [[xs[-1], edge]]])
    cv2.fillPoly(m, [np.round(poly).astype(np.int32)], 1.0, lineType=cv2.LINE_AA)
    k = max(3, int(max(h, w) * rng.uniform(0.01, 0.06)) | 1)
    m = cv2.GaussianBlur(m, (0, 0), k / 2.0)
    return (1.0 - depth * m).astype(np.float32)


def glare_add(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    """Additive specular glare (0..255 float, low res): an elongated soft blob or two."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros(shape, np.float32)
    for _ in range(rng.integers(1, 3)):
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        a = rng.uniform(0, np.pi)
        sa, sb = rng.uniform(0.05, 0.3) * max(h, w), rng.uniform(0.03, 0.12) * max(h, w)
        u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
        v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
        out += np.exp(-0.5 * ((u / sa) ** 2 + (v / sb) ** 2))
    return (255.0 * strength * np.clip(out, 0, 1.5)).astype(np.float32)


# ---------------------------------------------------------------- backgrounds
def table_background(rng: np.random.Generator, shape: tuple[int, int], dark: bool = False) -> np.ndarray:
    """Out-of-page scene: wood, plain desk, cloth or (dark=True) a screen's black surround. uint8 RGB."""
    lo = low_res_shape(shape, 384)
    h, w = lo
    kind = "screen" if dark else rng.choice(["wood", "plain", "cloth", "plain"])
    if kind == "screen":
        base = rng.uniform(8, 45, 3) * np.array([1.0, 1.0, rng.uniform(1.0, 1.3)])
        tex = 1.0 + 0.15 * smooth_noise(rng, lo, 2)
        img = base[None, None, :] * tex[..., None]
    elif kind == "wood":
        base = np.array([rng.uniform(90, 190), rng.uniform(55, 120), rng.uniform(25, 70)])
        a = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u = xx * np.cos(a) + yy * np.sin(a)
        warp = 0.8 * smooth_noise(rng, lo, 2) + 0.15 * smooth_noise(rng, lo, 12)
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * (u / rng.uniform(4, 12) + warp))
        tex = 0.75 + 0.35 * grain + 0.1 * smooth_noise(rng, lo, 8)
        img = base[None, None, :] * tex[..., None]
    elif kind == "cloth":
        base = rng.uniform(40, 200, 3)
        tex = 1.0 + 0.12 * smooth_noise(rng, lo, 20) + 0.1 * smooth_noise(rng, lo, 3)
        img = base[None, None, :] * tex[..., None]
    else:
        base = rng.uniform(60, 230) * (1.0 + rng.uniform(-0.15, 0.15, 3))
        tex = 1.0 + 0.06 * smooth_noise(rng, lo, 4)
        img = base[None, None, :] * tex[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.resize(img, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def scanner_background(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """The scanner lid around the page: near-white (usually) or black, slightly textured. uint8 RGB."""
    v = rng.uniform(225, 252) if rng.random() < 0.8 else rng.uniform(10, 40)
    lo = low_res_shape(shape, 128)
    img = np.clip(v + 3.0 * smooth_noise(rng, lo, 6), 0, 255).astype(np.uint8)
    img = cv2.resize(img, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.merge([img, img, img])


# ---------------------------------------------------------------- page-space stains and damage
def _blob_alpha(rng: np.random.Generator, box: tuple[int, int], radius: float, wobble: float) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (px, negative inside) to an irregular closed blob centred in a box (h, w)."""
    h, w = box
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - w / 2.0, yy - h / 2.0
    th = np.arctan2(dy, dx)
    r = np.sqrt(dx * dx + dy * dy)
    rad = np.ones_like(th)
    for k in range(1, 6):
        rad += wobble / k * rng.uniform(-1, 1) * np.cos(k * th + rng.uniform(0, 2 * np.pi))
    return r - radius * rad, r


def _paste_gain(gain: np.ndarray, patch: np.ndarray, cx: int, cy: int) -> None:
    """Multiply patch (h, w, 3) into gain centred at (cx, cy), clipped to the page."""
    H, W = gain.shape[:2]
    h, w = patch.shape[:2]
    x0, y0 = cx - w // 2, cy - h // 2
    a0, b0 = max(0, -x0), max(0, -y0)
    a1, b1 = min(w, W - x0), min(h, H - y0)
    if a1 <= a0 or b1 <= b0:
        return
    gain[y0 + b0:y0 + b1, x0 + a0:x0 + a1] *= patch[b0:b1, a0:a1]


def stain_gain(rng: np.random.Generator, page_shape: tuple[int, int], n_stains: int) -> tuple[np.ndarray, list[dict]]:
    """Coffee and water stains as a multiplicative RGB gain on the page (dye filters the print)."""
    H, W = page_shape
    gain = np.ones((H, W, 3), np.float32)
    drawn = []
    for _ in range(n_stains):
        kind = "coffee" if rng.random() < 0.6 else "water"
        R = float(rng.uniform(60, 320))
        box = int(2.6 * R)
        sd, r = _blob_alpha(rng, (box, box), R, rng.uniform(0.05, 0.25))
        fine = cv2.resize(rng.standard_normal((box // 40 + 3, box // 40 + 3)).astype(np.float32), (box, box),
                          interpolation=cv2.INTER_CUBIC)
        inside = 1.0 / (1.0 + np.exp(np.clip(sd / 3.0, -50, 50)))
        ring_w = rng.uniform(3, 12)
        ring = np.exp(-((sd + ring_w * 0.6) / ring_w) ** 2)  # tide line just inside the edge
        if kind == "coffee":
            colour = np.array([rng.uniform(120, 190), rng.uniform(70, 120), rng.uniform(20, 60)]) / 255.0
            a_in, a_ring = rng.uniform(0.1, 0.45), rng.uniform(0.3, 0.8)
            if rng.random() < 0.4:  # a cup ring: little dye inside
                a_in *= 0.2
        else:
            colour = np.array([rng.uniform(190, 230), rng.uniform(180, 220), rng.uniform(140, 190)]) / 255.0
            a_in, a_ring = rng.uniform(0.1, 0.35), rng.uniform(0.25, 0.6)
        alpha = np.clip(inside * a_in * (1.0 + 0.25 * fine) + ring * a_ring * (1.0 + 0.3 * fine), 0, 1)
        patch = 1.0 - alpha[..., None] * (1.0 - colour[None, None, :].astype(np.float32))
        cx, cy = int(rng.uniform(0, W)), int(rng.uniform(0, H))
        _paste_gain(gain, patch.astype(np.float32), cx, cy)
        drawn.append({"kind": kind, "centre": (cx, cy), "radius": R})
        # splashes around a coffee stain
        if kind == "coffee":
            for _ in range(rng.integers(0, 6)):
                rr = float(rng.uniform(3, 18))
                b = int(3 * rr) + 2
                sd2, _ = _blob_alpha(rng, (b, b), rr, 0.2)
                al = (1.0 / (1.0 + np.exp(sd2 / 1.5))) * rng.uniform(0.3, 0.7)
                p2 = 1.0 - al[..., None] * (1.0 - colour[None, None, :].astype(np.float32))
                ang = rng.uniform(0, 2 * np.pi)
                dist = R * rng.uniform(1.1, 1.8)
                _paste_gain(gain, p2.astype(np.float32), int(cx + dist * np.cos(ang)), int(cy + dist * np.sin(ang)))
    return gain, drawn


def mould_layer(rng: np.random.Generator, page_shape: tuple[int, int], n_colonies: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Mould colonies: (alpha (H, W) float32 0..1, colour (H, W, 3) uint8, drawn list).

    Dark green / black / grey-green blotches with fuzzy edges, spore specks around, a yellowish halo.
    """
    H, W = page_shape
    alpha = np.zeros((H, W), np.float32)
    colour = np.zeros((H, W, 3), np.uint8)
    palette = np.array([[25, 45, 20], [15, 15, 12], [45, 55, 30], [40, 60, 35], [60, 55, 30]], np.float32)
    drawn = []
    for _ in range(n_colonies):
        R = float(rng.uniform(25, 200))
        box = int(3.2 * R) + 8
        sd, r = _blob_alpha(rng, (box, box), R, rng.uniform(0.15, 0.45))
        # fuzzy edge: the boundary is perturbed by noise at two scales
        n1 = cv2.resize(rng.standard_normal((box // 30 + 3,) * 2).astype(np.float32), (box, box), interpolation=cv2.INTER_CUBIC)
        n2 = cv2.resize(rng.standard_normal((box // 4 + 2,) * 2).astype(np.float32), (box, box), interpolation=cv2.INTER_LINEAR)
        edge = np.exp(-(sd / (0.3 * R)) ** 2)  # fibrous fuzz only near the boundary
        fuzz = sd + R * 0.2 * n1 + 0.08 * R * n2 * edge
        a = 1.0 / (1.0 + np.exp(np.clip(fuzz / max(1.5, 0.03 * R), -50, 50)))
        a *= rng.uniform(0.75, 0.97) * (0.85 + 0.15 * np.clip(n1, -1, 1))
        # spores: sparse specks in a ring around the colony
        specks = (rng.random((box, box)) < rng.uniform(0.002, 0.01)) & (sd > 0) & (sd < 0.8 * R)
        specks = cv2.GaussianBlur(specks.astype(np.float32), (0, 0), 1.0) * 4.0
        a = np.clip(np.maximum(a, np.minimum(specks, 0.9)), 0, 1)
        col = palette[rng.integers(len(palette))] * rng.uniform(0.7, 1.2)
        # darker centre, lighter rim
        shade = np.clip(1.0 - 0.5 * np.exp(-(r / (0.5 * R)) ** 2), 0.4, 1)[..., None]
        cpatch = np.clip(col[None, None, :] * (0.6 + 0.6 * shade), 0, 255).astype(np.uint8)
        cx, cy = int(rng.uniform(0, W)), int(rng.uniform(0, H))
        x0, y0 = cx - box // 2, cy - box // 2
        a0, b0 = max(0, -x0), max(0, -y0)
        a1, b1 = min(box, W - x0), min(box, H - y0)
        if a1 > a0 and b1 > b0:
            sl = (slice(y0 + b0, y0 + b1), slice(x0 + a0, x0 + a1))
            pa = a[b0:b1, a0:a1]
            new = np.maximum(alpha[sl], pa)
            take = pa >= alpha[sl]
            colour[sl] = np.where(take[..., None], cpatch[b0:b1, a0:a1], colour[sl])
            alpha[sl] = new
        drawn.append({"centre": (cx, cy), "radius": R})
    return alpha, colour, drawn


def dirt_gain(rng: np.random.Generator, page_shape: tuple[int, int], amount: float) -> np.ndarray:
    """Grime: faint large smudges plus dark specks, as a multiplicative grey gain (H, W) float32."""
    H, W = page_shape
    lo = low_res_shape(page_shape, 256)
    sm = smooth_noise(rng, lo, 6, octaves=2)
    smudge = np.clip(sm - 1.2, 0, None) * 0.15 * amount
    g = 1.0 - upsample(smudge.astype(np.float32), page_shape)
    n = int(amount * rng.uniform(50, 400))
    ys, xs = rng.integers(0, H, n), rng.integers(0, W, n)
    specks = np.zeros(page_shape, np.float32)
    for x, y, r, v in zip(xs, ys, rng.uniform(0.6, 3.0, n), rng.uniform(0.2, 0.8, n)):
        cv2.circle(specks, (int(x), int(y)), int(np.ceil(r)), float(v), -1, lineType=cv2.LINE_AA)
    return np.clip(g - specks, 0.05, 1.0)


def crease_gain(page_shape: tuple[int, int], creases, rng: np.random.Generator) -> np.ndarray:
    """Shading of fold lines (H, W) float32: a thin dark line and a lit/shaded side across it.

    Each profile is a function of the signed distance d only: drawn as a 1-D table, then spread
    over the page by one warpAffine (d is affine in x, y).
    """
    H, W = page_shape
    g = np.ones(page_shape, np.float32)
    span = float(np.hypot(H, W)) + 4.0
    res = 4.0  # table samples per px of d
    d = (np.arange(int(2 * span * res) + 1, dtype=np.float32) / res - span)
    for c in creases:
        line = rng.uniform(0.1, 0.35) * np.exp(-(d / rng.uniform(1.0, 2.5)) ** 2)
        s = c.ridge_width
        side = rng.uniform(0.04, 0.12) * np.sign(rng.uniform(-1, 1)) * (d / s) * np.exp(-(d / s) ** 2) * 2.3
        table = (1.0 - line + side).astype(np.float32)[None, :]
        # table index = (n . p - offset + span) * res
        M = np.float32([[c.normal[0] * res, c.normal[1] * res, (span - c.offset) * res], [0, 0, 0]])
        prof = cv2.warpAffine(table, M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        g *= prof
    return g


def paper_alpha(rng: np.random.Generator, page_shape: tuple[int, int], n_tears: int, n_holes: int) -> tuple[np.ndarray, list[dict]]:
    """Where the paper still is (uint8 255) vs torn away / holed (0), page space, anti-aliased edges."""
    H, W = page_shape
    a = np.full(page_shape, 255, np.uint8)
    drawn = []
    for _ in range(n_tears):
        # a ragged cut from one edge point to another on the same or the adjacent edge (a corner)
        corner = rng.integers(4)
        cx, cy = [(0, 0), (W, 0), (W, H), (0, H)][corner]
        sx, sy = (1 if cx == 0 else -1), (1 if cy == 0 else -1)
        lx, ly = rng.uniform(0.05, 0.3) * W, rng.uniform(0.05, 0.35) * H
        n = 40
        t = np.linspace(0, 1, n)
        # a jagged path from (cx + sx*lx, cy) to (cx, cy + sy*ly), bulging inwards
        px = cx + sx * lx * (1 - t)
        py = cy + sy * ly * t
        bulge = rng.uniform(0.0, 0.4) * np.sin(np.pi * t)
        px = px + sx * bulge * lx * 0.5 + rng.normal(0, 4, n).cumsum() * 0.5
        py = py + sy * bulge * ly * 0.5 + rng.normal(0, 4, n).cumsum() * 0.5
        poly = np.concatenate([[[cx - sx * 50, cy - sy * 50]], [[px[0], cy - sy * 50]], np.stack([px, py], 1),
                               [[cx - sx * 50, py[-1]]]])
        cv2.fillPoly(a, [np.round(poly).astype(np.int32)], 0, lineType=cv2.LINE_AA)
        drawn.append({"kind": "tear", "corner": int(corner), "size": (float(lx), float(ly))})
    for _ in range(n_holes):
        r = float(rng.uniform(6, 45))
        x, y = rng.uniform(0, W), rng.uniform(0, H)
        m = rng.integers(8, 16)
        th = np.sort(rng.uniform(0, 2 * np.pi, m))
        rr = r * rng.uniform(0.6, 1.3, m)
        poly = np.stack([x + rr * np.cos(th), y + rr * np.sin(th)], 1)
        cv2.fillPoly(a, [np.round(poly).astype(np.int32)], 0, lineType=cv2.LINE_AA)
        drawn.append({"kind": "hole", "centre": (float(x), float(y)), "radius": r})
    return a, drawn


# ---------------------------------------------------------------- screens
def moire_gain(page_x: np.ndarray, page_y: np.ndarray, pitch: float, amplitude: float, angle: float) -> np.ndarray:
    """Screen pixel grid seen by a camera: RGB subpixel stripes in page (= screen) coordinates, sampled
    at image pixels, so that aliasing makes the moire. page_x/y: page coords of each (low-res) image pixel.
    Returns (h, w, 3) float32 gain."""
    ca, sa = np.cos(angle), np.sin(angle)
    u = (page_x * ca + page_y * sa) / pitch
    v = (-page_x * sa + page_y * ca) / pitch
    rows = 0.5 + 0.5 * np.cos(2 * np.pi * v)
    out = []
    for c in range(3):
        stripe = 0.5 + 0.5 * np.cos(2 * np.pi * (u - c / 3.0))
        out.append(1.0 - amplitude + amplitude * (0.3 + 0.7 * stripe * rows) * 1.2)
    return np.clip(np.stack(out, -1), 0, 1.3).astype(np.float32)
