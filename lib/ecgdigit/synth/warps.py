"""Analytic page -> image warps for the synthetic degradations, with their numerical inverse.

The forward warp is a physical chain, every step smooth at the 8 px lattice scale so that a
CoordinateMap sampled from it is exact to well under 0.3 px:

    page point p (200 dpi page px)
      -> p + crease displacement (a fold pulls the paper together across its line: smooth steps)
      -> lifted to 3D with a height z(p) (a cylinder-ish curl plus ridges along the folds)
      -> a 3x4 camera matrix (perspective for photos, an affine similarity for scans)
      -> radial lens distortion about the frame centre
      -> k quarter turns (np.rot90 sense) of the finished frame.

Pixel centres sit at integer coordinates (x, y); sizes are (height, width), as everywhere in the kit.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.special import erf

from ..geometry.orientation import rotate_points, rotated_size

logger = logging.getLogger(__name__)

CURL_CLAMP = 1.6


@dataclass
class Crease:
    """A fold line n . p = c across the page (n a unit normal, in page px)."""

    normal: tuple[float, float]
    offset: float
    shift: float  # in-plane displacement amplitude (px): each side moves this much towards the line
    width: float  # smoothness of the step (px); >= ~15 keeps the lattice exact
    ridge: float = 0.0  # height of the fold's ridge (px), signed
    ridge_width: float = 40.0

    def signed_distance(self, p: np.ndarray) -> np.ndarray:
        return p[:, 0] * self.normal[0] + p[:, 1] * self.normal[1] - self.offset


@dataclass
class Curl:
    """Smooth page bending: z = a2 * u^2 + a3 * u^3 along a direction, u = (d . (p - centre)) / half-extent."""

    direction: tuple[float, float] = (1.0, 0.0)
    centre: tuple[float, float] = (1100.0, 850.0)
    half_extent: float = 1100.0
    a2: float = 0.0
    a3: float = 0.0
    corner_lift: float = 0.0  # an extra lift towards one corner (px)
    corner: tuple[float, float] = (0.0, 0.0)
    corner_radius: float = 800.0


@dataclass
class PageWarp:
    """The forward warp page -> image and its inverse; all parameters explicit (see module doc)."""

    page_size: tuple[int, int]
    frame_size: tuple[int, int]  # (h, w) of the frame before the quarter turn
    camera: np.ndarray  # (3, 4): homogeneous image point of (x, y, z, 1)
    orientation: int = 0
    creases: list[Crease] = field(default_factory=list)
    curl: Curl | None = None
    lens_k: tuple[float, float] = (0.0, 0.0)  # radial distortion, radius normalized by half the diagonal

    # ------------------------------------------------------------ pieces
    @property
    def image_size(self) -> tuple[int, int]:
        return rotated_size(self.frame_size, self.orientation)

    def displace(self, p: np.ndarray) -> np.ndarray:
        """In-plane crease displacement (page px -> page px)."""
        out = p.copy()
        for c in self.creases:
            d = c.signed_distance(p)
            # each side is pulled towards the line: -shift * sign(d), smoothed over `width`
            s = -c.shift * erf(d / c.width)
            out[:, 0] += s * c.normal[0]
            out[:, 1] += s * c.normal[1]
        return out

    def height(self, p: np.ndarray) -> np.ndarray:
        z = np.zeros(len(p))
        cu = self.curl
        if cu is not None:
            u = ((p[:, 0] - cu.centre[0]) * cu.direction[0] + (p[:, 1] - cu.centre[1]) * cu.direction[1]) / cu.half_extent
            # soft clamp: the page (|u| <~ 1.2) bends as drawn, far background stays bounded (no fold-back)
            u = CURL_CLAMP * np.tanh(u / CURL_CLAMP)
            z += cu.a2 * u ** 2 + cu.a3 * u ** 3
            if cu.corner_lift:
                r2 = ((p[:, 0] - cu.corner[0]) ** 2 + (p[:, 1] - cu.corner[1]) ** 2) / cu.corner_radius ** 2
                z += cu.corner_lift * np.exp(-r2)
        for c in self.creases:
            if c.ridge:
                d = c.signed_distance(p)
                z += c.ridge * np.exp(-(d / c.ridge_width) ** 2)
        return z

    def project(self, p: np.ndarray) -> np.ndarray:
        """Page px -> ideal (undistorted, unturned) frame px."""
        q = self.displace(p)
        z = self.height(q)
        P = self.camera
        hx = P[0, 0] * q[:, 0] + P[0, 1] * q[:, 1] + P[0, 2] * z + P[0, 3]
        hy = P[1, 0] * q[:, 0] + P[1, 1] * q[:, 1] + P[1, 2] * z + P[1, 3]
        hw = P[2, 0] * q[:, 0] + P[2, 1] * q[:, 1] + P[2, 2] * z + P[2, 3]
        return np.stack([hx / hw, hy / hw], axis=1)

    def _lens_centre_norm(self) -> tuple[np.ndarray, float]:
        h, w = self.frame_size
        return np.array([(w - 1) / 2.0, (h - 1) / 2.0]), 0.5 * float(np.hypot(w, h))

    def distort(self, q: np.ndarray) -> np.ndarray:
        k1, k2 = self.lens_k
        if k1 == 0 and k2 == 0:
            return q
        c, rn = self._lens_centre_norm()
        d = (q - c) / rn
        r2 = (d ** 2).sum(axis=1, keepdims=True)
        return c + d * (1 + k1 * r2 + k2 * r2 ** 2) * rn

    def undistort(self, q: np.ndarray) -> np.ndarray:
        k1, k2 = self.lens_k
        if k1 == 0 and k2 == 0:
            return q
        c, rn = self._lens_centre_norm()
        d = (q - c) / rn
        rd = np.sqrt((d ** 2).sum(axis=1))
        # the model is used only where it is monotonic (r below r_max); beyond lies far background
        rs = np.linspace(0, 3, 301)
        fps = 1 + 3 * k1 * rs ** 2 + 5 * k2 * rs ** 4
        r_max = rs[np.argmax(fps < 0.3)] if (fps < 0.3).any() else 3.0
        r = np.minimum(rd, r_max)
        for _ in range(8):  # Newton on r (1 + k1 r^2 + k2 r^4) = rd
            f = r * (1 + k1 * r ** 2 + k2 * r ** 4) - rd
            fp = 1 + 3 * k1 * r ** 2 + 5 * k2 * r ** 4
            r = np.clip(r - f / np.maximum(fp, 0.3), 0.0, r_max)
        ratio = np.where(rd > 1e-12, r / np.maximum(rd, 1e-12), 1.0)
        return c + d * ratio[:, None] * rn

    # ------------------------------------------------------------ whole warp
    def forward(self, pts: np.ndarray) -> np.ndarray:
        """Page points (N, 2) -> image points (N, 2), orientation included."""
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        q = self.distort(self.project(p))
        return rotate_points(q, self.orientation, self.frame_size)

    def forward_frame(self, pts: np.ndarray) -> np.ndarray:
        """Page points -> points of the frame before the quarter turn."""
        return self.distort(self.project(np.asarray(pts, dtype=np.float64).reshape(-1, 2)))

    def inverse_frame(self, q: np.ndarray, iters: int = 6, init: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frame points (before the turn) -> page points, and the final residual (px) of each.

        Exact steps are undone analytically (lens by Newton on the radius); the page part by Newton
        on the full chain with a finite-difference Jacobian, started from `init` (page points) or
        the z = 0 homography.
        """
        q = self.undistort(np.asarray(q, dtype=np.float64).reshape(-1, 2))
        P = self.camera
        H = P[:, [0, 1, 3]]
        p = _apply_h(np.linalg.inv(H), q) if init is None else np.array(init, dtype=np.float64).reshape(-1, 2)
        ph, pw = self.page_size
        # points near the horizon of the z = 0 plane have no sensible start: keep them far outside
        bad0 = ~np.isfinite(p).all(axis=1)
        p[bad0] = -10.0 * pw
        q = np.where(np.isfinite(q), q, -1e6)
        p[:, 0] = np.clip(p[:, 0], -3.0 * pw, 4.0 * pw)
        p[:, 1] = np.clip(p[:, 1], -3.0 * ph, 4.0 * ph)
        if self.creases or self.curl is not None:
            eps = 1e-2
            active = np.arange(len(p))
            for _ in range(iters):
                pa, qa = p[active], q[active]
                f = self.project(pa)
                r = f - qa
                fx = (self.project(pa + [eps, 0.0]) - f) / eps
                fy = (self.project(pa + [0.0, eps]) - f) / eps
                det = fx[:, 0] * fy[:, 1] - fy[:, 0] * fx[:, 1]
                det = np.where(np.abs(det) < 1e-9, 1e-9, det)
                dx = (fy[:, 1] * r[:, 0] - fy[:, 0] * r[:, 1]) / det
                dy = (-fx[:, 1] * r[:, 0] + fx[:, 0] * r[:, 1]) / det
                step = np.stack([dx, dy], axis=1)
                # damp wild steps (far background only); the page converges in 2-3 steps
                n = np.linalg.norm(step, axis=1)
                step *= np.minimum(1.0, 200.0 / np.maximum(n, 1e-12))[:, None]
                p[active] = pa - step
                active = active[n > 1e-3]  # only points still moving iterate again
                if not len(active):
                    break
        res = np.linalg.norm(self.project(p) - q, axis=1)
        res[bad0] = np.inf
        return p, res

    def inverse(self, pts: np.ndarray) -> np.ndarray:
        """Image points (orientation included) -> page points."""
        q = rotate_points(pts, -self.orientation % 4, self.image_size)
        return self.inverse_frame(q)[0]


def _apply_h(H: np.ndarray, p: np.ndarray) -> np.ndarray:
    hom = np.concatenate([p, np.ones((len(p), 1))], axis=1) @ H.T
    with np.errstate(divide="ignore", invalid="ignore"):
        out = hom[:, :2] / hom[:, 2:3]
    # the third component is 1/depth: points beyond the page plane's horizon are not on the page
    out[hom[:, 2] <= 0] = np.nan
    return out


# ---------------------------------------------------------------- cameras
def scan_camera(page_size: tuple[int, int], frame_size: tuple[int, int], rng: np.random.Generator,
                angle_deg: float, scale_jitter: float, shift_px: float) -> np.ndarray:
    """A flatbed scanner: similarity (plus a hint of anisotropy) placing the page in the frame."""
    ph, pw = page_size
    fh, fw = frame_size
    s = min(fh / ph, fw / pw) * (1.0 + rng.uniform(-scale_jitter, scale_jitter))
    sx = s * (1.0 + rng.uniform(-0.004, 0.004))  # scanner motor / sensor pitch mismatch
    a = np.deg2rad(angle_deg)
    A = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.diag([sx, s])
    centre_page = np.array([(pw - 1) / 2.0, (ph - 1) / 2.0])
    centre_frame = np.array([(fw - 1) / 2.0, (fh - 1) / 2.0]) + rng.uniform(-shift_px, shift_px, 2)
    t = centre_frame - A @ centre_page
    P = np.zeros((3, 4))
    P[:2, :2] = A
    P[:2, 3] = t
    P[2, 3] = 1.0
    return P


def photo_camera(page_size: tuple[int, int], rng: np.random.Generator, tilt_deg: float, roll_deg: float,
                 distance: float) -> np.ndarray:
    """Perspective camera (unit focal, not yet fitted to a frame) looking at the page centre.

    distance is in page widths; tilt is the angle between the page normal and the optical axis.
    """
    ph, pw = page_size
    az = rng.uniform(0, 2 * np.pi)  # direction of the tilt
    t = np.deg2rad(tilt_deg)
    ax = np.array([np.cos(az), np.sin(az), 0.0])  # rotation axis in the page plane
    K = np.array([[0, -ax[2], ax[1]], [ax[2], 0, -ax[0]], [-ax[1], ax[0], 0]])
    R_tilt = np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K
    r = np.deg2rad(roll_deg)
    R_roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    R = R_roll @ R_tilt
    T = np.eye(4)
    T[0, 3] = -(pw - 1) / 2.0
    T[1, 3] = -(ph - 1) / 2.0
    Rt = np.concatenate([R, np.array([[0.0], [0.0], [distance * pw]])], axis=1)
    return Rt @ T


def fit_camera_to_frame(camera: np.ndarray, warp_outline: np.ndarray, frame_size: tuple[int, int],
                        rng: np.random.Generator, fill: float) -> np.ndarray:
    """Scale and shift (in the image plane) so that the projected page outline fills `fill` of the frame."""
    fh, fw = frame_size
    lo = warp_outline.min(axis=0)
    hi = warp_outline.max(axis=0)
    bw, bh = hi - lo
    s = fill * min(fw / bw, fh / bh)
    slack_x = fw - s * bw
    slack_y = fh - s * bh
    ox = rng.uniform(0.2, 0.8) * slack_x - s * lo[0]
    oy = rng.uniform(0.2, 0.8) * slack_y - s * lo[1]
    S = np.array([[s, 0, ox], [0, s, oy], [0, 0, 1.0]])
    return S @ camera
