"""What real PTB-XL records have and the dipole simulator's smooth signals lack.

Every figure below was measured on ../shared/realdev's truth (test_truth/*.csv, 86 records, the 41
drawn from 500 Hz sources for the spectrum) by tools/bench_fidelity.py --signal-stats:
- lead II's power spectral density above 40 Hz (Welch, 512 samples) per band, median over records,
  with a per-record spread of about x1.8 between the quartiles; the simulator's own muscle noise
  is 5-7x weaker at 40-80 Hz;
- baseline: peak-to-peak of lead II's 0.6 s running median 0.11 / 0.19 / 0.65 mV (10/50/90 %);
- a start transient (1.1-1.5 mV, held for 12-16 ms, gone after 40 ms, opposite signs across leads)
  in 3 of 86 records; source records of other PTB-XL printouts show it more often, so 10 %;
- the spread of the leads' amplitudes: std over the 12 leads of log(peak-to-peak) 0.48 (median
  record) against the simulator's 0.40;
- records drawn at 100 Hz (PTB-XL's records100): the printer joins samples with straight segments,
  so the page (and the truth derived from it) is the linear interpolation of 100 Hz samples.

Noise, wander and transients are added per ELECTRODE and turned into leads as the simulator does,
so I + III = II and aVR + aVL + aVF = 0 still hold; the amplitude spread scales the limb leads by one
factor and each chest lead by its own (electrode placement), which keeps the same identities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import LEADS
from .signals import leads_from_dipole
from .truth import EcgRecord

# (band lo Hz, band hi Hz, median PSD mV^2/Hz) of realdev's lead II, 500 Hz sources
HF_BANDS: tuple[tuple[float, float, float], ...] = (
    (40, 60, 5.17e-06), (60, 80, 1.46e-06), (80, 100, 4.73e-07), (100, 125, 2.43e-07),
    (125, 150, 1.46e-07), (150, 200, 5.98e-08), (200, 250, 1.06e-08),
)
_CHEST = [LEADS.index(v) for v in ("V1", "V2", "V3", "V4", "V5", "V6")]
_LIMB = [LEADS.index(v) for v in ("I", "II", "III", "aVR", "aVL", "aVF")]


@dataclass(frozen=True)
class SignalRealism:
    """What is added to a simulated record; SIGNAL_PLAIN turns all of it off."""

    hf_noise: float = 1.0  # scale on HF_BANDS' PSD (0: none)
    hf_log_sigma: float = 0.45  # per-record spread of the noise power (natural log of the amplitude)
    wander_mv: tuple[float, float] = (0.02, 0.3)  # per-electrode wander amplitude, log-uniform per record
    transient_prob: float = 0.1
    transient_mv: tuple[float, float] = (1.0, 1.5)  # the largest lead's start offset
    limb_gain_sigma: float = 0.12  # log-normal gain of all limb leads together
    chest_gain_sigma: float = 0.3  # log-normal gain of each chest lead
    # the rate the record was sampled at before printing (straight segments between its samples)
    draw_rates: tuple[int, ...] = (100, 250, 500)
    draw_rate_probs: tuple[float, ...] = (0.45, 0.05, 0.5)

    @property
    def active(self) -> bool:
        return (self.hf_noise > 0 or self.wander_mv[1] > 0 or self.transient_prob > 0 or self.limb_gain_sigma > 0
                or self.chest_gain_sigma > 0 or bool(self.draw_rates))


SIGNAL_REALISTIC = SignalRealism()
SIGNAL_PLAIN = SignalRealism(hf_noise=0.0, wander_mv=(0.0, 0.0), transient_prob=0.0, limb_gain_sigma=0.0,
                             chest_gain_sigma=0.0, draw_rates=(), draw_rate_probs=())


def hf_noise(rng: np.random.Generator, fs: int, shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Gaussian noise of shape (n, k) whose PSD follows HF_BANDS (nothing below 40 Hz), times scale."""
    n = shape[0]
    f = np.fft.rfftfreq(n, 1.0 / fs)
    psd = np.zeros_like(f)
    for lo, hi, p in HF_BANDS:
        psd[(f >= lo) & (f < hi)] = p
    # white noise of unit variance has a one-sided PSD of 2 / fs: shape it to psd
    amp = np.sqrt(psd * fs / 2.0) * scale
    spec = np.fft.rfft(rng.standard_normal(shape), axis=0) * amp[:, None]
    return np.fft.irfft(spec, n=n, axis=0)


def _transient(rng: np.random.Generator, fs: int, n: int, n_el: int, peak_mv: float) -> np.ndarray:
    """(n, n_el) electrode offsets held 12-16 ms, then a raised-cosine fall to 0 by 20-40 ms."""
    t = np.arange(n) / fs
    hold = rng.uniform(0.012, 0.016)
    end = hold + rng.uniform(0.008, 0.024)
    shape = np.where(t < hold, 1.0, np.where(t < end, 0.5 * (1 + np.cos(np.pi * (t - hold) / (end - hold))), 0.0))
    w = rng.normal(size=n_el)
    return np.outer(shape, w * peak_mv / max(float(np.abs(w).max()), 1e-6))


def _low_frequency(rng: np.random.Generator, t: np.ndarray, n_el: int, amp_mv: float) -> np.ndarray:
    """Per-electrode baseline wander: a few slow sines (breathing, movement), 0.05-0.6 Hz."""
    out = np.zeros((t.size, n_el))
    for _ in range(3):
        f = rng.uniform(0.05, 0.6, n_el)
        ph = rng.uniform(0, 2 * np.pi, n_el)
        out += amp_mv * rng.uniform(0.2, 1.0, n_el) * np.sin(2 * np.pi * np.outer(t, f) + ph)
    return out / np.sqrt(3.0)


def sampled_at(signals: np.ndarray, fs: int, draw_fs: int) -> np.ndarray:
    """`signals` (n, k) at fs as a draw_fs recording joined by straight segments, back at fs.

    Band-limited to 0.45 draw_fs first (a recorder's anti-alias filter), then sampled at k / draw_fs
    and linearly interpolated: the polyline the printer draws.
    """
    if draw_fs >= fs:
        return signals
    n = signals.shape[0]
    spec = np.fft.rfft(signals, axis=0)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec[f > 0.45 * draw_fs] = 0
    smooth = np.fft.irfft(spec, n=n, axis=0)
    t = np.arange(n) / fs
    tk = np.arange(int(np.ceil(t[-1] * draw_fs)) + 1) / draw_fs
    out = np.empty_like(signals)
    for j in range(signals.shape[1]):
        vk = np.interp(tk, t, smooth[:, j])
        out[:, j] = np.interp(t, tk, vk)
    return out


def apply_signal_realism(record: EcgRecord, rng: np.random.Generator,
                         realism: SignalRealism = SIGNAL_REALISTIC) -> EcgRecord:
    """The record with realdev's noise, wander, transients, lead spread and drawing rate added.

    Deterministic given rng's state; draws nothing when realism is SIGNAL_PLAIN.
    """
    if not realism.active:
        return record
    fs, n = record.fs, record.n_samples
    n_el = 9  # RA, LA, LL, V1..V6
    el = np.zeros((n, n_el))
    if realism.hf_noise > 0:
        scale = realism.hf_noise * float(np.exp(rng.normal(0.0, realism.hf_log_sigma)))
        # a lead is the difference of about two electrodes: half the PSD each
        el += hf_noise(rng, fs, (n, n_el), scale / np.sqrt(2.0))
    if realism.wander_mv[1] > 0:
        lo, hi = max(realism.wander_mv[0], 1e-4), realism.wander_mv[1]
        el += _low_frequency(rng, np.arange(n) / fs, n_el, float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))
    if realism.transient_prob > 0 and rng.random() < realism.transient_prob:
        el += _transient(rng, fs, n, n_el, float(rng.uniform(*realism.transient_mv)))
    sig = record.signals.astype(np.float64) + leads_from_dipole(np.zeros((n, 3)), el).astype(np.float64)
    gain = np.ones(12)
    if realism.limb_gain_sigma > 0:
        gain[_LIMB] = np.exp(rng.normal(0.0, realism.limb_gain_sigma))
    if realism.chest_gain_sigma > 0:
        gain[_CHEST] = np.exp(rng.normal(0.0, realism.chest_gain_sigma, len(_CHEST)))
    sig = sig * gain
    if realism.draw_rates:
        p = np.asarray(realism.draw_rate_probs, np.float64)
        draw_fs = int(realism.draw_rates[int(rng.choice(len(realism.draw_rates), p=p / p.sum()))])
        sig = sampled_at(sig, fs, draw_fs)
    return EcgRecord(record.record_id, fs, _limb_identities(sig.astype(np.float32)))


def _limb_identities(sig: np.ndarray) -> np.ndarray:
    """Recompute III, aVR, aVL, aVF from I and II in float32, so the identities hold as stored."""
    i, ii = sig[:, LEADS.index("I")], sig[:, LEADS.index("II")]
    sig[:, LEADS.index("III")] = ii - i
    sig[:, LEADS.index("aVR")] = -(i + ii) / np.float32(2)
    sig[:, LEADS.index("aVL")] = i - ii / np.float32(2)
    sig[:, LEADS.index("aVF")] = ii - i / np.float32(2)
    return sig
