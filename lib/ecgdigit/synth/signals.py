"""Physically consistent synthetic 12-lead ECGs from a moving heart dipole.

The heart is one 3-D dipole D(t) in Frank coordinates (x to the patient's left, y to the feet,
z to the back). Each beat adds Gaussian lobes (P, septal Q, R, S, T, ...) with their own 3-D
directions, in the spirit of McSharry's ECGSYN but in vector form. Leads I and II and the six chest
leads are projections of D by Dower's inverse transform; III, aVR, aVL, aVF follow from I and II by
Einthoven/Goldberger, so I + III = II and aVR + aVL + aVF = 0 hold to float32 rounding.
Noise (muscle, baseline wander, mains) is added per ELECTRODE and then turned into leads, so it
obeys the same lead algebra as a real recording.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.signal import lfilter

from ..config import DURATION_S, LEADS, SAMPLING_RATES
from .truth import EcgRecord

logger = logging.getLogger(__name__)

RHYTHMS: tuple[str, ...] = ("sinus", "sinus_arrhythmia", "afib", "pvc")
CONDUCTIONS: tuple[str, ...] = ("normal", "rbbb", "lbbb")

# Dower's inverse transform, Frank (x, y, z) -> lead voltage (Dower et al. 1980).
_DOWER = {
    "I": (0.632, -0.235, 0.059),
    "II": (0.235, 1.066, -0.132),
    "V1": (-0.515, 0.157, -0.917),
    "V2": (0.044, 0.164, -1.387),
    "V3": (0.882, 0.098, -1.277),
    "V4": (1.213, 0.127, -0.601),
    "V5": (1.125, 0.127, -0.086),
    "V6": (0.831, 0.076, 0.230),
}
_CHEST = ("V1", "V2", "V3", "V4", "V5", "V6")


@dataclass(frozen=True)
class SignalParams:
    """One random draw of the physiology and recording conditions of a record."""

    heart_rate: float = 72.0  # bpm (mean over the record)
    rhythm: str = "sinus"  # one of RHYTHMS
    conduction: str = "normal"  # one of CONDUCTIONS (bundle-branch-like wide QRS)
    qrs_axis_deg: float = 50.0  # frontal-plane direction of the main R force
    qrs_posterior: float = 0.4  # z/|xy| of the main R force (posterior is positive)
    r_mv: float = 1.5  # magnitude of the main R force (Frank mV)
    q_rel: float = 0.2  # septal force relative to R
    s_rel: float = 0.35  # late (S) force relative to R
    qrs_sigma_s: float = 0.011  # Gaussian width of the R lobe
    p_mv: float = 0.15
    p_axis_deg: float = 55.0
    pr_s: float = 0.16
    t_mv: float = 0.35
    t_axis_offset_deg: float = 10.0  # frontal T direction relative to the QRS axis
    t_anterior: float = 0.5  # anterior (-z) share of the T direction: upright T in V2-V4
    qtc_s: float = 0.40  # Fridericia-corrected QT
    voltage_scale: float = 1.0  # < 1 for low-voltage records
    pvc_prob: float = 0.0  # chance that a beat is a premature ventricular one
    pvc_axis_deg: float = 120.0
    af_mv: float = 0.0  # fibrillatory-wave amplitude (afib only)
    rr_cv: float = 0.01  # beat-to-beat RR variability (AF: much larger)
    resp_hz: float = 0.25
    emg_mv: float = 0.01  # per-electrode muscle noise std
    wander_mv: float = 0.1  # per-electrode baseline wander amplitude
    powerline_mv: float = 0.0
    powerline_hz: float = 50.0

    def __post_init__(self) -> None:
        if self.rhythm not in RHYTHMS:
            raise ValueError(f"SignalParams.rhythm={self.rhythm!r}; expected one of {RHYTHMS}")
        if self.conduction not in CONDUCTIONS:
            raise ValueError(f"SignalParams.conduction={self.conduction!r}; expected one of {CONDUCTIONS}")
        if not 20.0 <= self.heart_rate <= 250.0:
            raise ValueError(f"SignalParams.heart_rate={self.heart_rate} bpm is outside 20..250")


def draw_params(rng: np.random.Generator, **overrides) -> SignalParams:
    """A random, plausible SignalParams; keyword overrides fix any field."""
    names = {f.name for f in fields(SignalParams)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"unknown SignalParams field(s) {sorted(unknown)}; known: {sorted(names)}")
    u = rng.uniform
    # the fields below depend on the rhythm: draw them for the rhythm actually used
    rhythm = str(rng.choice(RHYTHMS, p=[0.55, 0.15, 0.15, 0.15]))
    rhythm = overrides.get("rhythm", rhythm)
    if rng.random() < 0.7:
        hr = float(np.clip(rng.normal(75, 14), 40, 180))
    else:
        hr = float(u(40, 180))
    conduction = str(rng.choice(CONDUCTIONS, p=[0.8, 0.1, 0.1]))
    p = SignalParams(
        heart_rate=hr,
        rhythm=rhythm,
        conduction=conduction,
        qrs_axis_deg=float(np.clip(rng.normal(45, 35), -60, 120)),
        qrs_posterior=float(u(0.1, 0.7)),
        r_mv=float(u(0.9, 2.3)),
        q_rel=float(u(0.08, 0.3)),
        s_rel=float(u(0.15, 0.5)),
        qrs_sigma_s=float(u(0.009, 0.013)),
        p_mv=float(u(0.08, 0.22)),
        p_axis_deg=float(u(30, 75)),
        pr_s=float(u(0.12, 0.21)),
        t_mv=float(u(0.15, 0.55)),
        t_axis_offset_deg=float(rng.normal(0, 20)),
        t_anterior=float(u(0.2, 0.8)),
        qtc_s=float(u(0.37, 0.45)),
        voltage_scale=float(u(0.3, 0.55)) if rng.random() < 0.08 else float(u(0.85, 1.15)),
        pvc_prob=float(u(0.05, 0.25)) if rhythm == "pvc" else 0.0,
        pvc_axis_deg=float(u(-120, 180)),
        af_mv=float(u(0.02, 0.1)) if rhythm == "afib" else 0.0,
        rr_cv=float(u(0.12, 0.25)) if rhythm == "afib" else float(u(0.005, 0.02)),
        resp_hz=float(u(0.15, 0.4)),
        emg_mv=float(np.exp(u(np.log(0.002), np.log(0.03)))),
        wander_mv=float(u(0.0, 0.12)),
        powerline_mv=float(u(0.005, 0.03)) if rng.random() < 0.15 else 0.0,
        powerline_hz=50.0 if rng.random() < 0.5 else 60.0,
    )
    return replace(p, **overrides)


# ---------------------------------------------------------------- beat model
def _direction(axis_deg: float, z: float) -> np.ndarray:
    a = np.deg2rad(axis_deg)
    v = np.array([np.cos(a), np.sin(a), z])
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class _Lobe:
    """One Gaussian bump of the dipole: centre (s from the R peak), width (s), vector (mV)."""

    centre: float
    sigma: float
    vector: np.ndarray


def _sinus_lobes(p: SignalParams, rr: float, with_p: bool) -> list[_Lobe]:
    r_dir = _direction(p.qrs_axis_deg, p.qrs_posterior)
    r = p.r_mv * r_dir
    w = p.qrs_sigma_s
    lobes: list[_Lobe] = []
    if with_p:
        pc = 0.01 - p.pr_s
        p_dir = _direction(p.p_axis_deg, -0.15)
        lobes.append(_Lobe(pc - 0.008, 0.02, p.p_mv * p_dir))
        # the left atrium depolarises later and backwards: the terminal negative P in V1
        lobes.append(_Lobe(pc + 0.022, 0.015, 0.35 * p.p_mv * _direction(p.p_axis_deg + 20, 1.2)))
    # QT shortens with rate (Fridericia); the T peak sits ~0.13 s before the QT's end
    qt = p.qtc_s * rr ** (1 / 3)
    t_peak = max(qt - 0.13, 0.09)
    t_dir = _direction(p.qrs_axis_deg + p.t_axis_offset_deg, -p.t_anterior)
    t_vec = p.t_mv * t_dir
    t_sig = 0.045 * rr ** (1 / 3)
    if p.conduction == "normal":
        lobes += [
            _Lobe(-2.6 * w, 0.75 * w, p.q_rel * p.r_mv * _direction(160, -1.2)),  # septum: right, anterior
            _Lobe(0.0, w, r),
            _Lobe(2.4 * w, 0.9 * w, p.s_rel * p.r_mv * _direction(-120, 1.3)),  # late basal forces
        ]
    elif p.conduction == "rbbb":
        lobes += [
            _Lobe(-2.6 * w, 0.75 * w, p.q_rel * p.r_mv * _direction(160, -1.2)),
            _Lobe(0.0, w, r),
            _Lobe(2.2 * w, 0.9 * w, 0.5 * p.r_mv * _direction(-120, 1.3)),
            # delayed right ventricle: a slow, rightward-anterior terminal force (R' in V1)
            _Lobe(5.5 * w, 2.0 * w, 0.7 * p.r_mv * _direction(170, -1.5)),
        ]
        t_vec = p.t_mv * _direction(p.qrs_axis_deg, 0.8)  # secondary T change in V1-V3
    else:  # lbbb: no septal q, broad notched leftward-posterior R
        l_dir = _direction(p.qrs_axis_deg - 20, 0.9)
        lobes += [
            _Lobe(-0.5 * w, 2.2 * w, 0.8 * p.r_mv * l_dir),
            _Lobe(3.5 * w, 2.2 * w, 0.9 * p.r_mv * _direction(p.qrs_axis_deg - 35, 1.1)),
        ]
        t_vec = -0.8 * p.t_mv * l_dir  # discordant T
        t_peak += 0.04
    lobes += [
        _Lobe(t_peak - 1.1 * t_sig, 1.3 * t_sig, 0.45 * t_vec),  # slow upstroke of T
        _Lobe(t_peak, t_sig, 0.8 * t_vec),
    ]
    return lobes


def _pvc_lobes(p: SignalParams) -> list[_Lobe]:
    d1 = _direction(p.pvc_axis_deg, -0.5)
    d2 = _direction(p.pvc_axis_deg + 40, 0.8)
    m = 1.4 * p.r_mv
    return [
        _Lobe(0.0, 0.028, m * d1),
        _Lobe(0.05, 0.03, 0.6 * m * d2),
        _Lobe(0.32, 0.06, -0.35 * m * d1),  # T opposite the QRS
    ]


def _beat_times(rng: np.random.Generator, p: SignalParams) -> list[tuple[float, str]]:
    """(R time, kind) for every beat touching [0, DURATION_S); kind is 'sinus' or 'pvc'."""
    rr0 = 60.0 / p.heart_rate
    phase = rng.uniform(0, 2 * np.pi)
    t = -rng.uniform(0.0, rr0)  # the first beat may start before the record
    beats: list[tuple[float, str]] = []
    last_was_pvc = False
    while t < DURATION_S + 0.6:
        rr = rr0
        if p.rhythm == "sinus_arrhythmia":
            rr *= 1.0 + 0.12 * np.sin(2 * np.pi * p.resp_hz * t + phase)
        if p.rhythm == "afib":
            rr *= float(np.clip(np.exp(rng.normal(0, p.rr_cv)), 0.55, 1.9))
        else:
            rr *= 1.0 + rng.normal(0, p.rr_cv)
        if p.rhythm == "pvc" and not last_was_pvc and beats and rng.random() < p.pvc_prob:
            coupling = rng.uniform(0.5, 0.75) * rr
            beats.append((t - rr + coupling, "pvc"))
            last_was_pvc = True
            t += rr  # compensatory pause: the next sinus beat keeps the sinus timing
            continue
        last_was_pvc = False
        beats.append((t, "sinus"))
        t += max(rr, 0.25)
    return beats


def _dipole(rng: np.random.Generator, p: SignalParams, fs: int, n: int) -> np.ndarray:
    """(n, 3) heart dipole in Frank mV at times k / fs."""
    beats = _beat_times(rng, p)
    rr0 = 60.0 / p.heart_rate
    acc = np.zeros((3, n), dtype=np.float64)
    # gather (centre time, sigma, vector) of every lobe of every beat, with beat-to-beat variation
    groups: dict[tuple, list[tuple[float, np.ndarray]]] = {}
    for k, (tb, kind) in enumerate(beats):
        rr = (beats[k + 1][0] - tb) if k + 1 < len(beats) else rr0
        if kind == "pvc":
            lobes = _pvc_lobes(p)
        else:
            lobes = _sinus_lobes(p, float(np.clip(rr0 if p.rhythm == "afib" else rr, 0.3, 2.0)),
                                 with_p=p.rhythm != "afib")
        resp = 1.0 + 0.05 * np.sin(2 * np.pi * p.resp_hz * tb)
        gain = resp * (1.0 + rng.normal(0, 0.03))
        wobble = _small_rotation(rng, np.deg2rad(3.0))
        for i, lb in enumerate(lobes):
            c = tb + lb.centre + rng.normal(0, 0.0015)
            key = (kind, i, round(lb.sigma, 6))
            groups.setdefault(key, []).append((c, gain * (wobble @ lb.vector)))
    for (kind, i, sigma), items in groups.items():
        centres = np.array([c for c, _ in items])
        vecs = np.stack([v for _, v in items])  # (m, 3)
        half = int(np.ceil(5 * sigma * fs))
        offs = np.arange(-half, half + 1)
        idx = np.round(centres * fs).astype(int)[:, None] + offs[None, :]  # (m, win)
        g = np.exp(-0.5 * ((idx / fs - centres[:, None]) / sigma) ** 2)
        ok = (idx >= 0) & (idx < n)
        flat_idx = idx[ok]
        for ax in range(3):
            acc[ax] += np.bincount(flat_idx, weights=(g * vecs[:, ax:ax + 1])[ok], minlength=n)
    if p.rhythm == "afib" and p.af_mv > 0:
        t = np.arange(n) / fs
        f_inst = rng.uniform(4.5, 8.0) + 0.8 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t)
        ph = 2 * np.pi * np.cumsum(f_inst) / fs + rng.uniform(0, 2 * np.pi)
        amp = p.af_mv * (1 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6)))
        wave = amp * (np.sin(ph) + 0.3 * np.sin(2 * ph + 1.0))
        acc += np.outer(_direction(rng.uniform(40, 110), rng.uniform(-1.5, -0.5)), wave)
    return (p.voltage_scale * acc).T


def _small_rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = rng.uniform(-max_angle, max_angle)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * (K @ K)


# ---------------------------------------------------------------- electrode noise
def _electrode_noise(rng: np.random.Generator, p: SignalParams, fs: int, n: int) -> np.ndarray:
    """(n, 9) potentials of RA, LA, LL, V1..V6 electrodes: muscle noise, wander, mains."""
    t = np.arange(n) / fs
    n_el = 9
    # muscle noise: white noise smoothed to ~fs/6 bandwidth, per-electrode level
    levels = p.emg_mv * rng.uniform(0.3, 1.0, n_el)
    emg = rng.normal(size=(n, n_el)) * levels
    a = np.exp(-2 * np.pi * 40.0 / fs)
    emg = lfilter([1 - a], [1, -a], emg, axis=0) * np.sqrt((1 + a) / (1 - a))
    out = emg
    if p.wander_mv > 0:
        for _ in range(2):
            f = rng.uniform(0.05, 0.5, n_el)
            ph = rng.uniform(0, 2 * np.pi, n_el)
            amp = p.wander_mv * rng.uniform(0.2, 1.0, n_el)
            out = out + amp * np.sin(2 * np.pi * np.outer(t, f) + ph)
    if p.powerline_mv > 0 and p.powerline_hz < fs / 2:
        ph = rng.uniform(0, 2 * np.pi, n_el)
        amp = p.powerline_mv * rng.uniform(0.3, 1.0, n_el)
        out = out + amp * np.sin(2 * np.pi * p.powerline_hz * t[:, None] + ph)
    return out


# ---------------------------------------------------------------- leads
def leads_from_dipole(dipole: np.ndarray, electrodes: np.ndarray | None = None) -> np.ndarray:
    """(n, 12) float32 leads in config.LEADS order from the (n, 3) dipole and optional (n, 9) noise."""
    dip = np.asarray(dipole, dtype=np.float64)
    lead_i = dip @ np.asarray(_DOWER["I"])
    lead_ii = dip @ np.asarray(_DOWER["II"])
    chest = dip @ np.asarray([_DOWER[v] for v in _CHEST]).T  # (n, 6)
    if electrodes is not None:
        ra, la, ll = electrodes[:, 0], electrodes[:, 1], electrodes[:, 2]
        lead_i = lead_i + (la - ra)
        lead_ii = lead_ii + (ll - ra)
        chest = chest + electrodes[:, 3:9] - ((ra + la + ll) / 3.0)[:, None]  # Wilson terminal
    i32 = lead_i.astype(np.float32)
    ii32 = lead_ii.astype(np.float32)
    # Einthoven / Goldberger, in float32 so the identities hold at the stored precision
    iii = ii32 - i32
    avr = -(i32 + ii32) / np.float32(2)
    avl = i32 - ii32 / np.float32(2)
    avf = ii32 - i32 / np.float32(2)
    limb = {"I": i32, "II": ii32, "III": iii, "aVR": avr, "aVL": avl, "aVF": avf}
    cols = [limb[name] if name in limb else chest[:, _CHEST.index(name)].astype(np.float32) for name in LEADS]
    return np.stack(cols, axis=1)


def simulate_record(rng: np.random.Generator, fs: int, record_id: str = "0",
                    params: SignalParams | None = None, **overrides) -> EcgRecord:
    """A random 10 s, 12-lead record at `fs` Hz (float32 mV, columns in config.LEADS order).

    `params` fixes the whole draw; otherwise SignalParams fields given as keywords override the
    random draw (e.g. rhythm="afib", heart_rate=150, emg_mv=0).
    """
    if int(fs) != fs or fs <= 0:
        raise ValueError(f"simulate_record: fs must be a positive integer, got {fs!r}")
    fs = int(fs)
    if fs not in SAMPLING_RATES:
        logger.debug("fs=%d is not a competition rate %s", fs, SAMPLING_RATES)
    if params is None:
        params = draw_params(rng, **overrides)
    elif overrides:
        params = replace(params, **overrides)
    n = int(round(DURATION_S * fs))
    dip = _dipole(rng, params, fs, n)
    noise = _electrode_noise(rng, params, fs, n)
    return EcgRecord(record_id=str(record_id), fs=fs, signals=leads_from_dipole(dip, noise))
