"""The competition's modified SNR, as the host's metric code computes it, vectorized.

Per lead: mean-centre both, cross-correlate (host: scipy.signal.correlate(truth_c, pred_c, 'full') with
correlation_lags), keep |lag| <= int(fs * MAX_TIME_SHIFT_S), take the max (ties: smallest |lag|, then the
negative one, as the host's min over ascending lags does), shift the prediction so that
aligned[j] = pred[j - lag] (NaN where uncovered), subtract the mean of (aligned - truth) over the overlap
(the host's Brent minimisation of the same quadratic), then signal = sum(truth^2),
noise = sum((truth - aligned)^2) with NaN pads counted as 0. Per image the powers are summed over the
12 leads and snr = signal / noise capped at perfect_score; the score is 10 log10(mean snr), floored.

Here the correlation only evaluates the lag window (direct sums when small, batched FFT otherwise), and
leads of equal length are processed together, so 1000 images score in seconds.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import fft as sfft

from . import config

logger = logging.getLogger(__name__)

_DIRECT_MAX_WORK = 200_000  # (2L+1)*n below this: exact direct sums (exact ties, like the host's direct path)
_BATCH_ELEMENTS = 1 << 22  # rows*n per numpy pass (~32 MB per float64 temporary)


class MetricError(ValueError):
    """What the host raises as ParticipantVisibleError: the submission cannot be scored."""


@dataclass
class ImageScore:
    snr_linear: float
    snr_db: float
    signal: dict[str, float] = field(default_factory=dict)  # per lead sum(truth^2)
    noise: dict[str, float] = field(default_factory=dict)  # per lead sum((truth - aligned)^2)
    lags: dict[str, int] = field(default_factory=dict)  # per lead best shift, samples


@dataclass
class ScoreReport:
    score_db: float
    per_image: pd.DataFrame  # id, snr_linear, snr_db, signal, noise
    perfect_score: float


# ---------------------------------------------------------------- scalars
def max_shift_samples(fs: float) -> int:
    return int(fs * config.MAX_TIME_SHIFT_S)


def compute_snr(signal: float, noise: float, perfect_score: float = config.PERFECT_SCORE) -> float:
    if noise == 0:
        return float(perfect_score)
    if signal == 0:
        return 0.0
    return float(min(signal / noise, perfect_score))


def to_db(snr_linear: float, perfect_score: float = config.PERFECT_SCORE) -> float:
    """10 log10, floored at -perfect_score (log of 0 gives the floor)."""
    if snr_linear <= 0:
        return -float(perfect_score)
    return max(float(10.0 * np.log10(snr_linear)), -float(perfect_score))


# ---------------------------------------------------------------- batched core
def _xcorr_window(xc: np.ndarray, yc: np.ndarray, lag_max: int) -> np.ndarray:
    """(m, 2L+1): corr[:, k + L] = sum_i xc[:, i + k] * yc[:, i] for k in -L..L (scipy's 'full' lags)."""
    m, n = xc.shape
    out = np.empty((m, 2 * lag_max + 1))
    if (2 * lag_max + 1) * n <= _DIRECT_MAX_WORK:
        for k in range(-lag_max, lag_max + 1):
            if k >= 0:
                out[:, k + lag_max] = np.einsum("ij,ij->i", xc[:, k:], yc[:, : n - k])
            else:
                out[:, k + lag_max] = np.einsum("ij,ij->i", xc[:, : n + k], yc[:, -k:])
        return out
    nfft = sfft.next_fast_len(n + lag_max, real=True)  # >= n + L: no circular wrap inside the window
    c = sfft.irfft(sfft.rfft(xc, nfft, axis=1) * np.conj(sfft.rfft(yc, nfft, axis=1)), nfft, axis=1)
    out[:, lag_max:] = c[:, : lag_max + 1]
    if lag_max:
        out[:, :lag_max] = c[:, nfft - lag_max:]
    return out


def _best_lags(corr: np.ndarray, lag_max: int) -> np.ndarray:
    lags = np.arange(-lag_max, lag_max + 1)
    # host: every index equal to the max, then min(key=|lag|) -> first in ascending order on ties
    order_key = 2 * np.abs(lags) + (lags > 0)
    ties = corr == corr.max(axis=1, keepdims=True)
    return lags[np.argmin(np.where(ties, order_key[None, :], np.iinfo(np.int64).max), axis=1)]


def _powers_batch(truth: np.ndarray, pred: np.ndarray, max_shift: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """truth, pred: (m, n) finite float64 -> signal (m,), noise (m,), lag (m,)."""
    m, n = truth.shape
    lag_max = max(0, min(int(max_shift), n - 1))
    xc = truth - truth.mean(axis=1, keepdims=True)
    yc = pred - pred.mean(axis=1, keepdims=True)
    lag = _best_lags(_xcorr_window(xc, yc, lag_max), lag_max)
    src = np.arange(n)[None, :] - lag[:, None]  # aligned[j] = pred[j - lag]
    valid = (src >= 0) & (src < n)
    shifted = np.take_along_axis(pred, np.clip(src, 0, n - 1), axis=1)
    v = np.where(valid, shifted - truth, 0.0).sum(axis=1) / valid.sum(axis=1)
    resid = np.where(valid, truth - (shifted - v[:, None]), truth)  # pads count as a 0 prediction
    return (truth * truth).sum(axis=1), (resid * resid).sum(axis=1), lag


def _powers_many(truths: list[np.ndarray], preds: list[np.ndarray], max_shifts: list[int]):
    """Per-pair (signal, noise, lag) for many pairs; pairs of equal (n, max_shift) share numpy passes."""
    k = len(truths)
    sig, noi, lags = np.zeros(k), np.zeros(k), np.zeros(k, np.int64)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (t, s) in enumerate(zip(truths, max_shifts)):
        groups.setdefault((t.shape[0], int(s)), []).append(i)
    for (n, s), idx in groups.items():
        step = max(1, _BATCH_ELEMENTS // max(n, 1))
        for a in range(0, len(idx), step):
            sel = idx[a:a + step]
            T = np.stack([truths[i] for i in sel]).astype(np.float64, copy=False)
            P = np.stack([preds[i] for i in sel]).astype(np.float64, copy=False)
            s_, n_, l_ = _powers_batch(T, P, s)
            sig[sel], noi[sel], lags[sel] = s_, n_, l_
    return sig, noi, lags


def _check_pair(truth, pred, what: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(truth, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if t.ndim != 1 or p.ndim != 1:
        raise MetricError(f"{what}: inputs must be 1-D, got shapes {t.shape} and {p.shape}")
    if t.shape != p.shape:
        raise MetricError(f"{what}: truth has {t.shape[0]} samples, prediction {p.shape[0]}")
    if t.shape[0] == 0:
        raise MetricError(f"{what}: no samples")
    if not np.isfinite(t).all():
        raise MetricError(f"{what}: truth holds NaN/inf (cut short leads to their window: truth_windows())")
    if not np.isfinite(p).all():
        raise MetricError(f"{what}: prediction holds NaN/inf (the host rejects the whole submission)")
    return t, p


# ---------------------------------------------------------------- public API
def align_prediction(truth, pred, max_shift: int) -> np.ndarray:
    """The host's align_signals for equal lengths: shifted, offset-removed prediction, NaN where uncovered."""
    t, p = _check_pair(truth, pred, "align_prediction")
    _, _, lag = _powers_batch(t[None], p[None], max_shift)
    k, n = int(lag[0]), t.shape[0]
    src = np.arange(n) - k
    valid = (src >= 0) & (src < n)
    out = np.full(n, np.nan)
    out[valid] = p[src[valid]]
    out -= np.mean(out[valid] - t[valid])
    return out


def snr_per_lead(truth_1d, pred_1d, fs: float) -> tuple[float, float]:
    """(signal_power, noise_power) of one lead, as the host computes them."""
    t, p = _check_pair(truth_1d, pred_1d, "snr_per_lead")
    s, n, _ = _powers_batch(t[None], p[None], max_shift_samples(fs))
    return float(s[0]), float(n[0])


def truth_windows(series: pd.DataFrame, fs: int, image_id: str = "?") -> dict[str, np.ndarray]:
    """Series CSV (NaN outside short windows) -> lead -> the values of its own window (what test rows hold)."""
    out = {}
    for lead in config.LEADS:
        if lead not in series.columns:
            raise MetricError(f"image {image_id}: truth lacks lead {lead}")
        a, b = config.lead_window(lead, int(fs))
        col = series[lead].to_numpy(np.float64)
        if col.shape[0] < b:
            raise MetricError(f"image {image_id} lead {lead}: truth has {col.shape[0]} samples, window ends at {b}")
        w = col[a:b]
        if not np.isfinite(w).all():
            raise MetricError(f"image {image_id} lead {lead}: truth has NaN inside its window [{a}, {b})")
        out[lead] = w
    return out


def _check_fs(fs, n_lead_ii: int, image_id: str) -> None:
    if fs != int(n_lead_ii / 10):
        raise MetricError(f"image {image_id}: fs {fs} != (lead II rows {n_lead_ii}) / 10; "
                          "lead II must be complete (10 s)")


def score_image(truth: Mapping[str, np.ndarray], pred: Mapping[str, np.ndarray], fs: int,
                perfect_score: float = config.PERFECT_SCORE, image_id: str = "?",
                require_all_leads: bool = True) -> ImageScore:
    """One image: truth/pred lead -> equal-length window arrays."""
    leads = list(config.LEADS) if require_all_leads else [lead for lead in config.LEADS if lead in truth]
    ts, ps = [], []
    for lead in leads:
        if lead not in truth:
            raise MetricError(f"image {image_id}: truth lacks lead {lead}")
        if lead not in pred:
            raise MetricError(f"image {image_id}: prediction lacks lead {lead}")
        t, p = _check_pair(truth[lead], pred[lead], f"image {image_id} lead {lead}")
        ts.append(t)
        ps.append(p)
    if config.RHYTHM_LEAD in leads:
        _check_fs(fs, ts[leads.index(config.RHYTHM_LEAD)].shape[0], image_id)
    sig, noi, lag = _powers_many(ts, ps, [max_shift_samples(fs)] * len(ts))
    snr = compute_snr(float(sig.sum()), float(noi.sum()), perfect_score)
    return ImageScore(snr_linear=snr, snr_db=to_db(snr, perfect_score),
                      signal=dict(zip(leads, sig.tolist())), noise=dict(zip(leads, noi.tolist())),
                      lags=dict(zip(leads, lag.tolist())))


def _report(ids: list[str], sig: np.ndarray, noi: np.ndarray, perfect_score: float) -> ScoreReport:
    snr = np.array([compute_snr(s, n, perfect_score) for s, n in zip(sig, noi)])
    per = pd.DataFrame({"id": ids, "snr_linear": snr,
                        "snr_db": [to_db(x, perfect_score) for x in snr], "signal": sig, "noise": noi})
    final = to_db(float(snr.mean()), perfect_score) if len(snr) else float("nan")
    return ScoreReport(score_db=final, per_image=per, perfect_score=float(perfect_score))


def score_records(predictions: Mapping[str, Mapping[str, np.ndarray]],
                  truths: Mapping[str, tuple[pd.DataFrame, int]],
                  perfect_score: float = config.PERFECT_SCORE,
                  fill_missing: float | None = None) -> ScoreReport:
    """Score in-memory predictions (lead -> its window's values) against series truths (as in train csv).

    Every image of `truths` is scored; a missing image/lead raises MetricError unless fill_missing gives
    a constant to score in its place.
    """
    ids, ts, ps, shifts, owner = [], [], [], [], []
    for k, (image_id, (series, fs)) in enumerate(truths.items()):
        ids.append(str(image_id))
        tw = truth_windows(series, int(fs), str(image_id))
        pr = predictions.get(image_id, {})
        for lead in config.LEADS:
            t = tw[lead]
            if lead in pr:
                p = np.asarray(pr[lead], dtype=np.float64)
            elif fill_missing is not None:
                p = np.full(t.shape[0], float(fill_missing))
            else:
                raise MetricError(f"image {image_id}: no prediction for lead {lead}")
            t, p = _check_pair(t, p, f"image {image_id} lead {lead}")
            ts.append(t)
            ps.append(p)
            shifts.append(max_shift_samples(fs))
            owner.append(k)
        _check_fs(int(fs), tw[config.RHYTHM_LEAD].shape[0], str(image_id))
    sig, noi, _ = _powers_many(ts, ps, shifts)
    owner_a = np.asarray(owner, dtype=np.int64)
    return _report(ids, np.bincount(owner_a, sig, len(ids)), np.bincount(owner_a, noi, len(ids)), perfect_score)


def long_truth_from_series(image_id: str, series: pd.DataFrame, fs: int) -> pd.DataFrame:
    """The host's solution rows (id `{image}_{row}_{lead}`, value, fs) from a series CSV."""
    tw = truth_windows(series, int(fs), str(image_id))
    parts = []
    for lead in config.LEADS:
        v = tw[lead]
        parts.append(pd.DataFrame({
            "id": [f"{image_id}_{r}_{lead}" for r in range(v.shape[0])],
            "value": v, "fs": int(fs)}))
    return pd.concat(parts, ignore_index=True)


def score(submission: pd.DataFrame, truth: pd.DataFrame,
          perfect_score: float = config.PERFECT_SCORE) -> ScoreReport:
    """The host's score(solution=truth, submission): long frames, truth with columns id, value, fs.

    Like the host: NaN/inf in either frame is an error; the frames are inner-merged on id (truth rows
    without a submission row are dropped, with a warning here); every image needs all 12 leads and a
    complete lead II.
    """
    for name, df, cols in (("truth", truth, ("id", "value", "fs")), ("submission", submission, ("id", "value"))):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise MetricError(f"{name} lacks column(s) {missing}")
        vals = pd.to_numeric(df["value"], errors="coerce").to_numpy(np.float64)
        if np.isnan(vals).any():
            raise MetricError(f"NaN exists in {name} ({int(np.isnan(vals).sum())} value(s))")
        if not np.isfinite(vals).all():
            raise MetricError(f"Infinity exists in {name}")
    merged = pd.merge(truth[["id", "value", "fs"]], submission[["id", "value"]], on="id",
                      suffixes=("_true", "_pred"))
    if len(merged) < len(truth):
        logger.warning("%d truth row(s) have no submission row (dropped by the inner merge, as the host does)",
                       len(truth) - len(merged))
    parts = merged["id"].astype(str).str.split("_", n=2, expand=True)
    if parts.shape[1] != 3:
        raise MetricError("ids must look like '{image}_{row}_{lead}'")
    row_id = pd.to_numeric(parts[1], errors="coerce")
    if row_id.isna().any():
        raise MetricError(f"non-integer row in ids, e.g. {merged['id'][row_id.isna()].iloc[:3].tolist()}")
    merged = merged.assign(image_id=parts[0], row_id=row_id.astype(np.int64), lead=parts[2])
    merged = merged.sort_values(["image_id", "lead", "row_id"], kind="stable").reset_index(drop=True)

    ids, ts, ps, shifts, owner = [], [], [], [], []
    truth_v = merged["value_true"].to_numpy(np.float64)
    pred_v = merged["value_pred"].to_numpy(np.float64)
    for k, (image_id, g) in enumerate(merged.groupby("image_id", sort=True).indices.items()):
        ids.append(str(image_id))
        fs_values = pd.unique(merged["fs"].to_numpy()[g])
        if len(fs_values) != 1:
            raise MetricError(f"image {image_id}: sampling frequency should be consistent, got {fs_values}")
        fs = fs_values[0]
        lead_of = merged["lead"].to_numpy()[g]
        by_lead = {lead: g[lead_of == lead] for lead in config.LEADS}
        _check_fs(fs, len(by_lead[config.RHYTHM_LEAD]), str(image_id))
        for lead in config.LEADS:
            rows = by_lead[lead]
            if len(rows) == 0:
                raise MetricError(f"image {image_id}: no rows for lead {lead}")
            ts.append(truth_v[rows])
            ps.append(pred_v[rows])
            shifts.append(int(fs * config.MAX_TIME_SHIFT_S))
            owner.append(k)
    sig, noi, _ = _powers_many(ts, ps, shifts)
    owner_a = np.asarray(owner, dtype=np.int64)
    return _report(ids, np.bincount(owner_a, sig, len(ids)), np.bincount(owner_a, noi, len(ids)), perfect_score)
